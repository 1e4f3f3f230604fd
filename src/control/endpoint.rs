//! Where a running `procrun start` listens, and the lock that makes it the
//! only one for its app.
//!
//! The socket's default path is derived from the canonical app root, so
//! every procrun command run for the same app finds it:
//! `$XDG_RUNTIME_DIR/procrun/<id>.sock`, else `/tmp/procrun-<uid>/<id>.sock`,
//! `<id>` being the root's last component and a hash of the whole path. The
//! directory is the user's own (0700, checked: a directory someone else
//! made in /tmp is refused), the socket 0600.
//!
//! Beside the socket, `<id>.lock` is `flock`ed for the whole run and holds
//! who runs (pid, root, start time, version). A second `start` for the app
//! finds the lock taken and says who holds it. The kernel drops the lock
//! when its holder dies, however it dies, so a socket left behind by a
//! SIGKILLed procrun is known to be stale and is replaced without a word.

use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// How lock files are opened: a symlink is not followed, and a FIFO
/// someone put there does not block the open (nor, once it is refused for
/// not being a file, a read).
const OPEN_FLAGS: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK;

/// The longest socket path the kernel takes (`sun_path` holds 108 bytes
/// with the final NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// A socket path and its lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The socket.
    pub socket: PathBuf,
    /// The lock file beside it.
    pub lock: PathBuf,
    /// Whether the path was given (`--socket`, `PROCRUN_SOCKET`).
    pub explicit: bool,
}

/// What the lock file says about the procrun that holds it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// Its pid.
    pub pid: u32,
    /// Its app root.
    pub root: String,
    /// Its socket.
    pub socket: String,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// Its version.
    pub version: String,
}

/// The endpoint of the app at `root`: `explicit` if given, else the default.
pub fn endpoint(root: &Path, explicit: Option<&Path>) -> Endpoint {
    match explicit {
        Some(path) => {
            let mut lock = path.as_os_str().to_owned();
            lock.push(".lock");
            Endpoint {
                socket: path.to_owned(),
                lock: PathBuf::from(lock),
                explicit: true,
            }
        }
        None => {
            let id = app_id(root);
            let dir = runtime_dir(&id);
            Endpoint {
                socket: dir.join(format!("{id}.sock")),
                lock: dir.join(format!("{id}.lock")),
                explicit: false,
            }
        }
    }
}

/// `<last component>-<16 hex digits of a hash of the whole root>`.
pub fn app_id(root: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    // FNV-1a: stable across versions and machines, unlike std's hasher.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in root.as_os_str().as_bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let name: String = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(24)
        .collect();
    if name.is_empty() {
        format!("app-{hash:016x}")
    } else {
        format!("{name}-{hash:016x}")
    }
}

/// The directory of the default sockets: `$XDG_RUNTIME_DIR/procrun` when
/// set (and short enough for `id`), else `/tmp/procrun-<uid>`.
fn runtime_dir(id: &str) -> PathBuf {
    let tmp = PathBuf::from(format!("/tmp/procrun-{}", nix::unistd::geteuid()));
    match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(dir) if dir.is_absolute() => {
            let dir = dir.join("procrun");
            let len = dir.as_os_str().len() + id.len() + "/.sock".len();
            if len <= MAX_SOCKET_PATH { dir } else { tmp }
        }
        _ => tmp,
    }
}

/// Makes sure `dir` exists and is the user's alone (0700).
fn own_dir(dir: &Path) -> Result<(), String> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(format!(
                "creating {}: {}",
                dir.display(),
                crate::error::io_reason(&e)
            ));
        }
    }
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| format!("{}: {}", dir.display(), crate::error::io_reason(&e)))?;
    if !meta.is_dir() {
        return Err(format!("{} is not a directory", dir.display()));
    }
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "{} belongs to uid {}, not to you (uid {me}): refusing to put the control socket there",
            dir.display(),
            meta.uid()
        ));
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
            format!(
                "making {} private: {}",
                dir.display(),
                crate::error::io_reason(&e)
            )
        })?;
    }
    Ok(())
}

/// Why the endpoint could not be taken.
#[derive(Debug)]
pub enum Refused {
    /// Another procrun holds the lock.
    Running(Option<Holder>),
    /// Anything else (permissions, path length, …).
    Failed(String),
}

/// The endpoint taken: the lock held and the socket bound. Dropping it
/// removes both.
#[derive(Debug)]
pub struct Taken {
    endpoint: Endpoint,
    _lock: Flock<File>,
}

impl Taken {
    /// The socket path.
    pub fn socket(&self) -> &Path {
        &self.endpoint.socket
    }
}

impl Drop for Taken {
    fn drop(&mut self) {
        // Still ours: nobody can bind or lock while the lock is held.
        let _ = std::fs::remove_file(&self.endpoint.socket);
        let _ = std::fs::remove_file(&self.endpoint.lock);
    }
}

/// Takes the endpoint for this run: the lock, then a fresh socket (an old
/// one is stale once the lock is ours). `holder` is written into the lock.
pub fn take(endpoint: &Endpoint, holder: &Holder) -> Result<(Taken, UnixListener), Refused> {
    use std::os::unix::ffi::OsStrExt as _;
    if endpoint.socket.as_os_str().as_bytes().len() > MAX_SOCKET_PATH {
        return Err(Refused::Failed(format!(
            "the socket path {} is {} bytes long; the limit is {MAX_SOCKET_PATH}",
            endpoint.socket.display(),
            endpoint.socket.as_os_str().len()
        )));
    }
    if !endpoint.explicit
        && let Some(dir) = endpoint.socket.parent()
    {
        if let Some(parent) = dir.parent()
            && !parent.exists()
        {
            return Err(Refused::Failed(format!(
                "{} does not exist",
                parent.display()
            )));
        }
        own_dir(dir).map_err(Refused::Failed)?;
    }
    // Refused before the lock file is made, so that nothing is left
    // beside what the path names (checked again once the lock is held).
    socket_there(&endpoint.socket)?;
    // Tries left while the lock is held but not by a live procrun.
    let mut patience = BUSY_TRIES;
    let lock = loop {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(OPEN_FLAGS)
            .open(&endpoint.lock)
            .map_err(|e| {
                Refused::Failed(format!(
                    "opening the lock {}: {}",
                    endpoint.lock.display(),
                    crate::error::io_reason(&e)
                ))
            })?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((mut file, nix::errno::Errno::EWOULDBLOCK)) => {
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let holder: Option<Holder> = serde_json::from_str(&text).ok();
                // Held, but its record names no live procrun: another
                // app's start sweeping a stale lock holds it for a moment,
                // or its holder has not written the record yet.
                let alive = record_pid(&text).is_some_and(pid_alive);
                if !alive && patience > 0 {
                    patience -= 1;
                    std::thread::sleep(BUSY_PAUSE);
                    continue;
                }
                return Err(Refused::Running(holder));
            }
            Err((_, e)) => {
                return Err(Refused::Failed(format!(
                    "locking {}: {e}",
                    endpoint.lock.display()
                )));
            }
        };
        // The previous holder may have removed the file between our open
        // and our lock: then the lock is on a file nobody else will see.
        let same = match (lock.metadata(), std::fs::symlink_metadata(&endpoint.lock)) {
            (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
            _ => false,
        };
        if !same {
            continue;
        }
        // `--socket Cargo` names `Cargo.lock`: a file of the user's that
        // is not to be overwritten, nor removed at the end. A lock a
        // killed procrun left holds its record, or nothing yet; any
        // version's record (an object with a pid) counts, so that a lock
        // left by an older procrun never blocks the next start.
        let mut before = String::new();
        let theirs = !lock.metadata().is_ok_and(|m| m.is_file())
            || match lock.read_to_string(&mut before) {
                Ok(_) => !before.is_empty() && record_pid(&before).is_none(),
                Err(_) => true,
            };
        if theirs {
            return Err(Refused::Failed(format!(
                "{} exists and is not procrun's lock: refusing to overwrite it",
                endpoint.lock.display()
            )));
        }
        let text = serde_json::to_string(holder).unwrap_or_default();
        let written = lock
            .set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| lock.write_all(text.as_bytes()))
            .and_then(|()| lock.flush());
        if let Err(e) = written {
            tracing::debug!("writing {}: {e}", endpoint.lock.display());
        }
        break lock;
    };
    let bound = socket_there(&endpoint.socket).and_then(|there| {
        if there {
            // Not procrun's, whose would hold the lock: a program that
            // listens there keeps its socket (`--socket` naming another
            // program's); one nobody listens on is stale.
            if listened_on(&endpoint.socket) {
                return Err(Refused::Failed(format!(
                    "{} is the socket of a running program: refusing to replace it",
                    endpoint.socket.display()
                )));
            }
            let _ = std::fs::remove_file(&endpoint.socket);
        }
        // Created 0600 from the start: the umask applies to bind. procrun
        // has no other thread creating files at this point.
        let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(&endpoint.socket);
        nix::sys::stat::umask(old);
        bound.map_err(|e| {
            Refused::Failed(format!(
                "listening on {}: {}",
                endpoint.socket.display(),
                crate::error::io_reason(&e)
            ))
        })
    });
    let listener = match bound {
        Ok(l) => l,
        Err(e) => {
            // Ours while we hold it: a refused start leaves no lock behind.
            let _ = std::fs::remove_file(&endpoint.lock);
            return Err(e);
        }
    };
    let taken = Taken {
        endpoint: endpoint.clone(),
        _lock: lock,
    };
    if !endpoint.explicit
        && let Some(dir) = endpoint.socket.parent()
    {
        sweep(dir, &endpoint.lock);
    }
    Ok((taken, listener))
}

/// How often, and how far apart, a lock held by no live procrun is tried
/// again: a sweep holds one for microseconds, so 50 ms is plenty.
const BUSY_TRIES: u32 = 10;
const BUSY_PAUSE: std::time::Duration = std::time::Duration::from_millis(5);

/// Whether process `pid` exists (it may be another user's).
fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    pid > 0
        && !matches!(
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
            Err(nix::errno::Errno::ESRCH)
        )
}

/// The pid of a lock's holder record, of this version or another (a JSON
/// object with a pid); `None` for anything else.
fn record_pid(text: &str) -> Option<u32> {
    let record = serde_json::from_str::<serde_json::Value>(text).ok()?;
    u32::try_from(record.get("pid")?.as_u64()?).ok()
}

/// Whether a socket is at `socket`; anything else there (a file, a
/// directory, a symlink: never followed nor replaced) is refused.
fn socket_there(socket: &Path) -> Result<bool, Refused> {
    match std::fs::symlink_metadata(socket) {
        Ok(meta) if std::os::unix::fs::FileTypeExt::is_socket(&meta.file_type()) => Ok(true),
        Ok(_) => Err(Refused::Failed(format!(
            "{} exists and is not a socket: refusing to replace it",
            socket.display()
        ))),
        Err(_) => Ok(false),
    }
}

/// Whether a program listens on the socket at `path`: a connection
/// without waiting is taken, or waits in its queue (a full one included).
fn listened_on(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let bytes = path.as_os_str().as_bytes();
    // SAFETY: a zeroed sockaddr_un is valid; the path, shorter than
    // sun_path (checked by `take`), is copied in with its NUL after it.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    if bytes.len() >= addr.sun_path.len() {
        return false;
    }
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    for (d, &b) in addr.sun_path.iter_mut().zip(bytes) {
        *d = b as libc::c_char;
    }
    // SAFETY: plain system calls on a descriptor this function owns and
    // closes; `addr` outlives the connect that reads it.
    unsafe {
        let fd = libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return false;
        }
        let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
        let r = libc::connect(fd, (&raw const addr).cast(), len);
        let errno = std::io::Error::last_os_error().raw_os_error();
        libc::close(fd);
        r == 0 || matches!(errno, Some(libc::EAGAIN | libc::EINPROGRESS))
    }
}

/// Removes the socket and lock pairs that killed procruns left in the
/// user's own directory (`ours` aside): a lock nobody holds is stale, and
/// so is its socket. Safe against a `start` taking one of them at the same
/// moment: it finds the lock file gone after locking, and makes a new one.
fn sweep(dir: &Path, ours: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten().take(10_000) {
        let path = entry.path();
        if path == ours || path.extension().is_none_or(|x| x != "lock") {
            continue;
        }
        let Ok(file) = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(OPEN_FLAGS)
            .open(&path)
        else {
            continue;
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            continue;
        }
        if let Ok(_held) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            let _ = std::fs::remove_file(path.with_extension("sock"));
            let _ = std::fs::remove_file(&path);
            tracing::debug!("removed the stale {}", path.display());
        }
    }
}

/// Who holds the lock of `endpoint`, if someone does (for clients that
/// could not connect).
pub fn holder(endpoint: &Endpoint) -> Option<Option<Holder>> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(OPEN_FLAGS)
        .open(&endpoint.lock)
        .ok()?;
    match Flock::lock(file, FlockArg::LockSharedNonblock) {
        Ok(_free) => None,
        Err((mut file, _)) => {
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            Some(serde_json::from_str(&text).ok())
        }
    }
}

/// The error of a second `start` for the same app.
pub fn already_running(root: &Path, holder: Option<&Holder>) -> Error {
    let pid = holder.map_or_else(String::new, |h| format!(" (pid {})", h.pid));
    crate::diagnostic::Diagnostic::error(format!(
        "procrun is already running for {}{pid}; stop it first, or pass --socket to run another",
        root.display()
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_stable_readable_and_short() {
        let id = app_id(Path::new("/home/me/src/my app!"));
        assert!(id.starts_with("myapp-"), "{id}");
        assert_eq!(id, app_id(Path::new("/home/me/src/my app!")));
        assert_ne!(id, app_id(Path::new("/home/you/src/my app!")));
        let long = app_id(Path::new(&format!("/{}", "x".repeat(300))));
        assert!(long.len() <= 24 + 17, "{long}");
        let e = endpoint(Path::new("/srv/app"), None);
        assert!(e.socket.as_os_str().len() <= MAX_SOCKET_PATH);
        assert_eq!(e.lock.extension().and_then(|x| x.to_str()), Some("lock"));
    }

    #[test]
    fn a_lock_left_by_any_version_is_procruns_and_other_files_are_not() {
        let ours = serde_json::to_string(&holder_for(Path::new("/srv/app"))).expect("serialized");
        assert_eq!(record_pid(&ours), Some(std::process::id()));
        // An older or newer procrun's record, with other fields.
        assert_eq!(record_pid(r#"{"pid":4242,"root":"/srv/app"}"#), Some(4242));
        assert_eq!(
            record_pid(r#"{"pid":4242,"host":"x","root":"/a","socket":"/s"}"#),
            Some(4242)
        );
        // Cargo.lock and its kin are not.
        assert!(record_pid("# This file is automatically @generated by Cargo.\n").is_none());
        assert!(record_pid(r#"{"name":"x"}"#).is_none());
        assert!(record_pid(r#"{"pid":"4242"}"#).is_none());
        assert!(record_pid("[1,2]").is_none());
    }

    fn holder_for(dir: &Path) -> Holder {
        Holder {
            pid: std::process::id(),
            root: dir.display().to_string(),
            socket: String::new(),
            started_at: String::new(),
            version: "test".into(),
        }
    }

    #[test]
    fn one_holder_at_a_time_and_everything_removed_after() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let e = endpoint(dir.path(), Some(&dir.path().join("s.sock")));
        let (taken, _listener) = take(&e, &holder_for(dir.path())).expect("taken");
        let mode = std::fs::metadata(taken.socket()).expect("socket").mode() & 0o777;
        assert_eq!(mode, 0o600);
        match take(&e, &holder_for(dir.path())) {
            Err(Refused::Running(Some(h))) => assert_eq!(h.pid, std::process::id()),
            other => panic!("expected the lock to be held: {other:?}"),
        }
        assert!(matches!(holder(&e), Some(Some(_))));
        drop(taken);
        assert!(!e.socket.exists() && !e.lock.exists());
        assert!(holder(&e).is_none());
    }

    #[test]
    fn stale_pairs_are_swept_and_live_ones_kept() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let live = endpoint(dir.path(), Some(&dir.path().join("live.sock")));
        let (_taken, _l) = take(&live, &holder_for(dir.path())).expect("taken");
        std::fs::write(dir.path().join("dead.lock"), "{}").expect("written");
        drop(UnixListener::bind(dir.path().join("dead.sock")).expect("bound"));
        sweep(dir.path(), &dir.path().join("mine.lock"));
        assert!(!dir.path().join("dead.lock").exists());
        assert!(!dir.path().join("dead.sock").exists());
        assert!(live.lock.exists() && live.socket.exists(), "held: kept");
    }

    #[test]
    fn a_lock_held_for_a_dead_holder_is_tried_again_then_refused() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let e = endpoint(dir.path(), Some(&dir.path().join("s.sock")));
        let mut dead = std::process::Command::new("true").spawn().expect("true");
        let dead_pid = dead.id();
        dead.wait().expect("reaped");
        assert!(!pid_alive(dead_pid) && pid_alive(std::process::id()));
        // Another start's sweep holds the lock of a procrun that is gone.
        let record = Holder {
            pid: dead_pid,
            ..holder_for(dir.path())
        };
        std::fs::write(&e.lock, serde_json::to_string(&record).expect("serialized"))
            .expect("written");
        let file = std::fs::File::open(&e.lock).expect("opened");
        let _held = Flock::lock(file, FlockArg::LockExclusiveNonblock).expect("locked");
        let began = std::time::Instant::now();
        match take(&e, &holder_for(dir.path())) {
            Err(Refused::Running(Some(h))) => assert_eq!(h.pid, dead_pid),
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert!(
            began.elapsed() >= BUSY_PAUSE * BUSY_TRIES,
            "tried again before refusing"
        );
        assert!(!e.socket.exists(), "nothing bound");
    }

    #[test]
    fn a_stale_socket_is_replaced_but_not_a_file() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let e = endpoint(dir.path(), Some(&dir.path().join("s.sock")));
        let stale = UnixListener::bind(&e.socket).expect("bound");
        drop(stale);
        let (_taken, _l) = take(&e, &holder_for(dir.path())).expect("replaced");
        let other = endpoint(dir.path(), Some(&dir.path().join("file")));
        std::fs::write(&other.socket, "data").expect("written");
        assert!(matches!(
            take(&other, &holder_for(dir.path())),
            Err(Refused::Failed(_))
        ));
        assert_eq!(
            std::fs::read_to_string(&other.socket).expect("kept"),
            "data"
        );
    }
}
