//! The control socket against careless and hostile use from outside: a
//! `--socket` that names something else, and clients that connect and
//! never go away. Real `start`s, raw connections; every wait is bounded.

mod support;

use std::io::Write as _;
use std::os::unix::net::UnixStream;

use nix::sys::signal::Signal;
use support::wire::{json_bytes, json_frame, send_json};
use support::{Test, WAIT};

const UP: &str = "web: echo up; exec sleep 60\n";

/// A `start` refused for its `--socket` leaves nothing behind and
/// changes nothing that was there: not the file the path names, not a
/// file of the user's that happens to be at `PATH.lock`, not a symlink.
#[test]
fn a_refused_socket_path_leaves_and_clobbers_nothing() {
    let t = Test::new().procfile(UP);
    let dir = t.path().to_owned();
    let refused = |socket: &std::path::Path| {
        let out = Test::in_dir(&dir)
            .args(["--socket", socket.to_str().expect("utf-8"), "start"])
            .run();
        assert_eq!(out.code(), Some(2), "{}{}", out.stdout, out.stderr);
        assert!(out.stdout.is_empty(), "nothing started: {}", out.stdout);
        out.stderr
    };
    let lock_of = |p: &std::path::Path| {
        let mut s = p.as_os_str().to_owned();
        s.push(".lock");
        std::path::PathBuf::from(s)
    };

    // A regular file, a directory, a symlink at the socket's path.
    let file = dir.join("notes.txt");
    std::fs::write(&file, "mine").expect("written");
    let sub = dir.join("sub");
    std::fs::create_dir(&sub).expect("a dir");
    let link = dir.join("link.sock");
    std::os::unix::fs::symlink(&file, &link).expect("a symlink");
    for path in [&file, &sub, &link] {
        let err = refused(path);
        assert!(err.contains("is not a socket"), "{err}");
        assert!(
            !lock_of(path).exists(),
            "a refused start left {}",
            lock_of(path).display()
        );
    }
    assert_eq!(std::fs::read_to_string(&file).expect("kept"), "mine");
    assert!(std::fs::symlink_metadata(&link).is_ok_and(|m| m.file_type().is_symlink()));

    // A file of the user's where the lock would go (`--socket Cargo`
    // names `Cargo.lock`): neither overwritten nor removed.
    let socket = dir.join("Cargo");
    let lock = dir.join("Cargo.lock");
    std::fs::write(&lock, "# a file that is not procrun's\n").expect("written");
    let err = refused(&socket);
    assert!(err.contains("Cargo.lock"), "{err}");
    assert!(err.contains("not procrun's lock"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&lock).expect("kept"),
        "# a file that is not procrun's\n"
    );
    assert!(!socket.exists(), "no socket bound");
}

/// A stale lock a killed procrun left (its holder record, or nothing yet
/// written) is still taken, and removed at the end.
#[test]
fn a_stale_lock_is_taken_and_removed() {
    let t = Test::new().procfile(UP);
    let dir = t.path().to_owned();
    let socket = dir.join("s.sock");
    let lock = dir.join("s.sock.lock");
    for stale in [
        "",
        r#"{"pid":1,"root":"/x","socket":"/x/s.sock","started_at":"2020-01-01T00:00:00Z","version":"0.0.1"}"#,
    ] {
        std::fs::write(&lock, stale).expect("written");
        let mut r = Test::in_dir(&dir)
            .args(["--socket", socket.to_str().expect("utf-8")])
            .start(&[]);
        r.wait_for("web.1  | up");
        r.signal(Signal::SIGTERM);
        assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
        assert!(!lock.exists() && !socket.exists());
    }
}

/// Clients that connect and never leave cannot take the descriptors the
/// app needs: past a number of connections the server refuses more
/// (`busy`), and a restart still starts its process.
#[cfg(target_os = "linux")]
#[test]
fn idle_connections_do_not_take_the_apps_descriptors() {
    use nix::sys::resource::{Resource, getrlimit};
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < 1024 {
        eprintln!("open-files limit {soft} too low for this test: skipped");
        return;
    }
    let sock = tempfile::tempdir().expect("a temp dir");
    let socket = sock.path().join("s.sock");
    // A hard limit `start` cannot raise: 256 descriptors in all.
    let script = format!(
        "ulimit -n 256 && exec {} --socket '{}' start -p {} --no-timestamp",
        support::procrun_quoted(),
        socket.display(),
        support::free_port()
    );
    let mut r = Test::new()
        .procfile(UP)
        .program("sh")
        .args(["-c", &script])
        .spawn();
    r.wait_for("web.1  | up");
    let connect = || {
        let s = UnixStream::connect(&socket).expect("connected");
        s.set_read_timeout(Some(WAIT)).expect("a timeout");
        s
    };
    let mut first = connect();
    json_frame(&mut first);
    send_json(&mut first, r#"{"type":"hello","protocol":1}"#);
    // More connections than the server has descriptors, each of which
    // greets (so that none is dropped for its silence) and says no more.
    // A connect blocks while the listener's queue is full:
    // on a thread, so that a server that stops accepting fails the test
    // instead of hanging it.
    let (tx, rx) = std::sync::mpsc::channel();
    let path = socket.clone();
    std::thread::spawn(move || {
        let all: Vec<UnixStream> = (0..400)
            .map(|_| {
                let mut s = UnixStream::connect(&path).expect("connected");
                // A client turned away may be closed already.
                let _ = s.write_all(&json_bytes(r#"{"type":"hello","protocol":1}"#));
                s
            })
            .collect();
        let _ = tx.send(all);
    });
    let idle = rx
        .recv_timeout(WAIT)
        .expect("400 connections made: the server goes on accepting");
    // The last is refused as soon as the server gets to it (in order:
    // the listener's queue is first in, first out).
    let mut last = connect();
    let reply = json_frame(&mut last);
    assert_eq!(reply["type"], "response", "{reply}");
    assert_eq!(reply["error"]["code"], "busy", "{reply}");
    send_json(
        &mut first,
        r#"{"type":"request","id":1,"method":"restart","params":{"names":["web"]}}"#,
    );
    let reply = json_frame(&mut first);
    assert_eq!(reply["id"], 1, "{reply}");
    assert_eq!(
        reply["result"]["instances"][0]["state"],
        "running",
        "{reply}\n{}",
        r.transcript()
    );
    drop(idle);
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    assert!(!r.transcript().contains("failed to start"));
    r.assert_no_leftovers();
}

/// A FIFO where a lock file would be blocks nothing: not the `start` that
/// sweeps the runtime directory for stale locks, not a client that asks
/// who holds its app's lock, not a `start` that would take it.
#[test]
fn a_fifo_for_a_lock_blocks_nothing() {
    let rt = support::Runtime::new();
    let dir = rt.path().join("procrun");
    std::fs::create_dir(&dir).expect("a dir");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .expect("private");
    let fifo = |path: &std::path::Path| {
        nix::unistd::mkfifo(path, nix::sys::stat::Mode::S_IRWXU).expect("a fifo");
    };
    fifo(&dir.join("other-0123456789abcdef.lock"));
    let mut r = Test::new()
        .procfile(UP)
        .env("XDG_RUNTIME_DIR", rt.path())
        .start(&[]);
    r.wait_for("web.1  | up");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());

    let t = Test::new().procfile(UP);
    let socket = t.path().join("s.sock");
    fifo(&t.path().join("s.sock.lock"));
    let socket = socket.to_str().expect("utf-8");
    let out = Test::in_dir(t.path())
        .args(["--socket", socket, "ps"])
        .run();
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("is not running"), "{}", out.stderr);
    let out = Test::in_dir(t.path())
        .args(["--socket", socket, "start"])
        .run();
    assert_eq!(out.code(), Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("not procrun's lock"), "{}", out.stderr);
}

/// `--socket` naming another program's socket (an X server's, a
/// daemon's) leaves it to that program: only a socket nobody listens on
/// is stale.
#[test]
fn another_programs_socket_is_not_replaced() {
    let t = Test::new().procfile(UP);
    let path = t.path().join("daemon.sock");
    let daemon = std::os::unix::net::UnixListener::bind(&path).expect("bound");
    let out = Test::in_dir(t.path())
        .args(["--socket", path.to_str().expect("utf-8"), "start"])
        .run();
    assert_eq!(out.code(), Some(2), "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("running program"), "{}", out.stderr);
    assert!(!t.path().join("daemon.sock.lock").exists());
    UnixStream::connect(&path).expect("the program's socket still answers");
    daemon.accept().expect("its connection");
}

/// `signal` to an instance that is not running sends nothing, and says so
/// instead of "sent".
#[test]
fn a_signal_to_a_stopped_instance_is_not_reported_sent() {
    let rt = support::Runtime::new();
    let mut r = Test::new()
        .procfile("web: echo up; exec sleep 60\nother: exec sleep 60\n")
        .env("XDG_RUNTIME_DIR", rt.path())
        .start(&[]);
    r.wait_for("web.1   | up");
    let client = |args: &[&str]| {
        Test::in_dir(r.path())
            .env("XDG_RUNTIME_DIR", rt.path())
            .args(args)
            .run()
    };
    let out = client(&["stop", "web"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let out = client(&["signal", "CONT", "web", "other"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("not sent to web.1: stopped"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("sent CONT to other.1: running"),
        "{}",
        out.stdout
    );
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    r.assert_no_leftovers();
}
