//! Starting a process the way `posix_spawn` does, without `fork()`, and
//! without copying procrun's descriptor table (Linux).
//!
//! `fork()` copies procrun's page tables for a child that throws them away
//! at `exec`; `clone(CLONE_VM | CLONE_VFORK)` runs the child on procrun's
//! memory while procrun's thread waits, until the child has called
//! `execve` or exited. That is what glibc's `posix_spawn` does, but it
//! offers no parent-death signal and no resource limit for the child, and
//! Rust's std falls back to `fork()` as soon as a `pre_exec` hook asks for
//! them (docs/design.md, pitfall 9). Here the child does exactly what
//! procrun needs between clone and exec, in a short function that makes
//! system calls and nothing else.
//!
//! The descriptor table: a child that does not share it gets a copy, and
//! `execve` then closes every close-on-exec descriptor of the copy, one by
//! one. procrun holds two pipes and a pidfd per running instance, so the
//! k-th spawn would copy and close ~3k descriptors: a cost that grows with
//! the formation (the profile in bench/RESULTS.md). Instead the child
//! shares procrun's table (`CLONE_FILES`) and its first call,
//! `close_range(keep, ~0, CLOSE_RANGE_UNSHARE)`, gives it a private table
//! holding only the descriptors below `keep` (the kernel copies no more).
//! Three of those are *slots* procrun reserved at start: before each spawn
//! procrun puts the child's stdout and stderr pipe ends into two of them,
//! the third always holds `/dev/null` for stdin; after the spawn procrun
//! puts `/dev/null` back, so that it holds no write end of the pipes.
//!
//! Signals: the child runs on procrun's memory, so none of procrun's
//! signal handlers may run in it. procrun blocks every signal around the
//! clone; the child sets every handled signal (and SIGPIPE, which Rust
//! ignores) back to its default action before unblocking them, as
//! `posix_spawn` does.

use std::borrow::Cow;
use std::ffi::{CStr, CString};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd, RawFd};
use std::sync::Mutex;

/// The child's stack: it makes a few system calls, nothing deeper.
const STACK: usize = 64 * 1024;

/// A program to start: `path` with `argv` and `envp`, in `cwd`.
#[derive(Debug)]
pub struct Program<'a> {
    /// The executable (not searched in `PATH`).
    pub path: CString,
    /// Its arguments, `argv[0]` first.
    pub argv: Vec<CString>,
    /// Its whole environment, `NAME=value` (entries shared by every spawn
    /// are borrowed).
    pub envp: Vec<Cow<'a, CStr>>,
    /// Its working directory.
    pub cwd: CString,
    /// The open-files limit to give it, if not procrun's own.
    pub nofile: Option<(libc::rlim_t, libc::rlim_t)>,
}

/// A started child: its pid, a pidfd to wait on, and the reading ends of
/// its stdout and stderr pipes (non-blocking, close-on-exec).
#[derive(Debug)]
pub struct Started {
    /// Its pid, which is also its process group.
    pub pid: u32,
    /// A pidfd of it (readable once it has exited).
    pub pidfd: OwnedFd,
    /// The reading end of its stdout.
    pub stdout: OwnedFd,
    /// The reading end of its stderr.
    pub stderr: OwnedFd,
}

/// The reserved descriptors, and whether the kernel can unshare a table
/// with only the low descriptors.
#[derive(Debug)]
struct Slots {
    null: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    /// The lowest descriptor the child does not need.
    keep: libc::c_uint,
    /// The child's stack, the same for every spawn (they are serialised,
    /// and procrun waits while the child uses it): allocated once, it
    /// leaves no 64 KiB hole in the heap per spawn.
    stack: Box<[MaybeUninit<u8>]>,
}

/// procrun's launcher: spawns are serialised, because the slots are shared.
#[derive(Debug)]
pub struct Launcher {
    slots: Mutex<Slots>,
    /// procrun's pid: a child whose parent changed before exec gives up.
    parent: libc::pid_t,
}

/// Whether the kernel has what this launcher needs: `close_range` with
/// `CLOSE_RANGE_UNSHARE` (both Linux 5.9) and `CLONE_PIDFD` (5.2).
fn supported() -> bool {
    // Closing a range past every descriptor closes nothing; ENOSYS says
    // the call is missing. Not with CLOSE_RANGE_UNSHARE here: that would
    // give this thread a table of its own, apart from procrun's others.
    // SAFETY: close_range with integer arguments only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            libc::c_uint::MAX,
            libc::c_uint::MAX,
            0,
        )
    };
    r == 0
}

/// A descriptor of `/dev/null` at 3 or above (0, 1 and 2 may be closed),
/// close-on-exec.
fn null_at_or_above_3(null: &OwnedFd) -> io::Result<RawFd> {
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own returns a new one.
    let fd = unsafe { libc::fcntl(null.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 3) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

impl Launcher {
    /// Reserves the slots. `None` where the kernel lacks what is needed
    /// (procrun then spawns through std).
    pub fn new() -> Option<Launcher> {
        if !supported() {
            return None;
        }
        let null = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")
            .ok()?;
        let null = OwnedFd::from(null);
        let slots = [
            null_at_or_above_3(&null).ok()?,
            null_at_or_above_3(&null).ok()?,
            null_at_or_above_3(&null).ok()?,
        ];
        drop(null);
        let keep = slots.iter().copied().max().unwrap_or(2) + 1;
        Some(Launcher {
            slots: Mutex::new(Slots {
                null: slots[0],
                stdout: slots[1],
                stderr: slots[2],
                keep: keep as libc::c_uint,
                stack: Box::new_uninit_slice(STACK),
            }),
            parent: std::process::id() as libc::pid_t,
        })
    }

    /// Starts `program` in a process group of its own, stdin from
    /// `/dev/null`, stdout and stderr on two new pipes, with
    /// `PR_SET_PDEATHSIG` = SIGKILL. Must be called from a thread that
    /// outlives the child (the parent-death signal follows the thread).
    pub fn spawn(&self, program: &Program) -> io::Result<Started> {
        let argv = pointers(&program.argv);
        let envp = pointers(&program.envp);
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        // The write ends go into the slots; the child finds them there.
        place(out_w.as_raw_fd(), slots.stdout)?;
        place(err_w.as_raw_fd(), slots.stderr)?;
        drop((out_w, err_w));
        let mut args = ChildArgs {
            path: program.path.as_ptr(),
            argv: argv.as_ptr(),
            envp: envp.as_ptr(),
            cwd: program.cwd.as_ptr(),
            stdin: slots.null,
            stdout: slots.stdout,
            stderr: slots.stderr,
            keep: slots.keep,
            parent: self.parent,
            nofile: program.nofile.map(|(soft, hard)| libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            }),
            sigmax: libc::SIGRTMAX(),
            error: 0,
        };
        let started = clone_child(&mut args, &mut slots.stack);
        // Whatever happened, the slots give the pipes' write ends back.
        let restored = place(slots.null, slots.stdout).and(place(slots.null, slots.stderr));
        drop(slots);
        let (pid, pidfd) = started?;
        if let Err(e) = restored {
            // Holding a write end would hide the child's end of output.
            reap(pid);
            return Err(e);
        }
        if args.error != 0 {
            reap(pid);
            return Err(io::Error::from_raw_os_error(args.error));
        }
        Ok(Started {
            pid: pid as u32,
            pidfd,
            stdout: out_r,
            stderr: err_r,
        })
    }
}

/// `dup3(from, to, O_CLOEXEC)`.
fn place(from: RawFd, to: RawFd) -> io::Result<()> {
    // SAFETY: dup3 between descriptors this module owns.
    if unsafe { libc::dup3(from, to, libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A close-on-exec pipe whose reading end is non-blocking (procrun reads
/// it through the runtime) and whose writing end blocks (the child's).
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two new descriptors into the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both are new descriptors that nothing else owns.
    let (r, w) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: fcntl on a descriptor we own.
    if unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((r, w))
}

/// NULL-terminated pointers to `strings`, which must outlive them.
fn pointers(strings: &[impl AsRef<CStr>]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ref().as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// Waits for a child that failed before exec.
fn reap(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: waiting for our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
}

/// What the child needs, prepared by procrun: pointers into procrun's
/// memory, valid while procrun waits for the child.
#[repr(C)]
struct ChildArgs {
    path: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    keep: libc::c_uint,
    parent: libc::pid_t,
    nofile: Option<libc::rlimit>,
    /// The highest signal number.
    sigmax: libc::c_int,
    /// Set by the child when a step fails (errno); it then exits 127.
    error: libc::c_int,
}

/// Clones the child with every signal blocked; returns its pid and pidfd
/// once it has exec'd or exited.
fn clone_child(
    args: &mut ChildArgs,
    stack: &mut [MaybeUninit<u8>],
) -> io::Result<(libc::pid_t, OwnedFd)> {
    // The stack grows down, from its end, aligned to 16 bytes.
    let top = {
        let end = stack.as_mut_ptr_range().end as usize;
        (end & !15) as *mut libc::c_void
    };
    let mut pidfd: libc::c_int = -1;
    let flags =
        libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES | libc::CLONE_PIDFD | libc::SIGCHLD;
    // SAFETY: `all` and `old` are plain sets on this stack; the child runs
    // `child_main` on its own stack with `args`, which outlive it (this
    // thread waits until the child has exec'd or exited: CLONE_VFORK);
    // `child_main` makes only system calls.
    let pid = unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        let mut old: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_SETMASK, &all, &mut old);
        let pid = libc::clone(
            child_main,
            top,
            flags,
            (args as *mut ChildArgs).cast(),
            &mut pidfd as *mut libc::c_int,
        );
        let error = io::Error::last_os_error();
        libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        if pid < 0 {
            return Err(error);
        }
        pid
    };
    // SAFETY: CLONE_PIDFD stored a new close-on-exec pidfd of the child.
    Ok((pid, unsafe { OwnedFd::from_raw_fd(pidfd) }))
}

/// The child, between clone and exec: system calls only (it runs on
/// procrun's memory; no allocation, no lock, no panic).
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the ChildArgs procrun passed, alive while it waits.
    let args = unsafe { &mut *arg.cast::<ChildArgs>() };
    // SAFETY: each call is a plain system call on values prepared above.
    unsafe {
        // A table of its own, with only the descriptors below `keep`.
        if libc::syscall(
            libc::SYS_close_range,
            args.keep,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        ) != 0
        {
            fail(args);
        }
        // No handler of procrun's may run here: default actions, then
        // unblock (procrun blocked everything around the clone).
        let mut action: libc::sigaction = std::mem::zeroed();
        for sig in 1..=args.sigmax {
            if libc::sigaction(sig, std::ptr::null(), &mut action) != 0 {
                continue; // a signal libc keeps to itself
            }
            let handler = action.sa_sigaction;
            if handler != libc::SIG_DFL && (handler != libc::SIG_IGN || sig == libc::SIGPIPE) {
                let mut default: libc::sigaction = std::mem::zeroed();
                default.sa_sigaction = libc::SIG_DFL;
                libc::sigaction(sig, &default, std::ptr::null_mut());
            }
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if libc::setpgid(0, 0) != 0 {
            fail(args);
        }
        // If procrun dies, even by SIGKILL, the kernel kills this child.
        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
            fail(args);
        }
        // procrun may have died before the prctl: then nobody would kill us.
        if libc::getppid() != args.parent {
            args.error = libc::ESRCH;
            libc::_exit(127);
        }
        for (from, to) in [(args.stdin, 0), (args.stdout, 1), (args.stderr, 2)] {
            if libc::dup2(from, to) < 0 {
                fail(args);
            }
        }
        if let Some(limit) = &args.nofile {
            // Failure leaves the higher limit, which is harmless.
            libc::setrlimit(libc::RLIMIT_NOFILE, limit);
        }
        if libc::chdir(args.cwd) != 0 {
            fail(args);
        }
        libc::execve(args.path, args.argv, args.envp);
        fail(args)
    }
}

/// Records errno for procrun and exits.
fn fail(args: &mut ChildArgs) -> ! {
    // SAFETY: errno of this thread; _exit ends the child at once.
    unsafe {
        args.error = (*libc::__errno_location()).max(1);
        libc::_exit(127)
    }
}

/// `NAME=value` for execve.
pub fn env_entry(name: &[u8], value: &[u8]) -> io::Result<CString> {
    let mut entry = Vec::with_capacity(name.len() + value.len() + 1);
    entry.extend_from_slice(name);
    entry.push(b'=');
    entry.extend_from_slice(value);
    c_string(&entry, "an environment variable")
}

/// A C string of `bytes`, or an error naming `what` if it holds a NUL.
pub fn c_string(bytes: &[u8], what: &str) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{what} contains a NUL byte"),
        )
    })
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use std::io::Read as _;

    /// `/bin/sh -c script` in `/` with the test's environment.
    pub(in crate::supervisor) fn program(script: &str) -> Program<'static> {
        let env: Vec<Cow<'static, CStr>> = std::env::vars_os()
            .filter_map(|(k, v)| {
                use std::os::unix::ffi::OsStrExt as _;
                env_entry(k.as_bytes(), v.as_bytes()).ok().map(Cow::Owned)
            })
            .collect();
        Program {
            path: c"/bin/sh".to_owned(),
            argv: vec![
                c"sh".to_owned(),
                c"-c".to_owned(),
                c_string(script.as_bytes(), "script").expect("no NUL"),
            ],
            envp: env,
            cwd: c"/".to_owned(),
            nofile: None,
        }
    }

    fn wait(pid: u32) -> i32 {
        let mut status = 0;
        // SAFETY: waiting for our own child.
        unsafe { libc::waitpid(pid as i32, &mut status, 0) };
        status
    }

    #[test]
    fn kernels_since_5_9_have_what_it_needs() {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").expect("osrelease");
        let mut parts = release
            .split(['.', '-'])
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let version = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        if version >= (5, 9) {
            assert!(Launcher::new().is_some(), "Linux {release}");
        }
    }

    #[test]
    fn runs_a_child_in_its_own_group_with_its_pipes() {
        let Some(launcher) = Launcher::new() else {
            return; // an old kernel: procrun spawns through std there
        };
        let started = launcher
            .spawn(&program(
                "echo out; echo err >&2; cut -d' ' -f5 /proc/$$/stat; pwd; read x || echo eof",
            ))
            .expect("spawn");
        let mut out = String::new();
        let mut err = String::new();
        let mut stdout = std::fs::File::from(started.stdout);
        let mut stderr = std::fs::File::from(started.stderr);
        // Non-blocking: read after the child is gone.
        assert_eq!(wait(started.pid), 0);
        stdout.read_to_string(&mut out).expect("stdout");
        stderr.read_to_string(&mut err).expect("stderr");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "out");
        assert_eq!(lines[1].trim(), started.pid.to_string(), "its own group");
        assert_eq!(lines[2], "/");
        assert_eq!(lines[3], "eof", "stdin is /dev/null");
        assert_eq!(err, "err\n");
    }

    #[test]
    fn the_child_gets_none_of_procruns_descriptors() {
        let Some(launcher) = Launcher::new() else {
            return;
        };
        // A descriptor without close-on-exec would leak into a forked
        // child; the unshared table holds only those below the slots.
        let keep = launcher.slots.lock().expect("slots").keep as i32;
        // SAFETY: a copy of stdin at `keep` or above, closed below.
        let leaked = unsafe { libc::fcntl(0, libc::F_DUPFD, keep) };
        assert!(leaked >= keep);
        let started = launcher.spawn(&program("ls /proc/self/fd")).expect("spawn");
        let mut out = String::new();
        assert_eq!(wait(started.pid), 0);
        std::fs::File::from(started.stdout)
            .read_to_string(&mut out)
            .expect("stdout");
        // SAFETY: closing the descriptor dup'd above.
        unsafe { libc::close(leaked) };
        let fds: Vec<i32> = out.lines().filter_map(|l| l.parse().ok()).collect();
        assert!(!fds.contains(&leaked), "{fds:?} holds {leaked}");
    }

    #[test]
    fn the_child_blocks_no_signal_and_gets_sigpipe_back() {
        let Some(launcher) = Launcher::new() else {
            return;
        };
        let started = launcher
            .spawn(&program("exec cat /proc/self/status"))
            .expect("spawn");
        let mut out = String::new();
        assert_eq!(wait(started.pid), 0);
        std::fs::File::from(started.stdout)
            .read_to_string(&mut out)
            .expect("stdout");
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        };
        // procrun blocks every signal around the clone.
        assert_eq!(field("SigBlk:"), Some(0));
        // Rust ignores SIGPIPE; a child gets its default action back.
        let ignored = field("SigIgn:").expect("SigIgn");
        assert_eq!(ignored & (1 << (libc::SIGPIPE - 1)), 0, "{ignored:#x}");
    }

    #[test]
    fn the_child_dies_with_the_thread_that_spawned_it() {
        let Some(launcher) = Launcher::new() else {
            return;
        };
        let launcher = std::sync::Arc::new(launcher);
        let spawner = std::sync::Arc::clone(&launcher);
        let pid = std::thread::spawn(move || {
            spawner.spawn(&program("exec sleep 30")).expect("spawn").pid
        })
        .join()
        .expect("thread");
        // The thread is gone: the kernel sent its child SIGKILL.
        let status = wait(pid);
        assert!(libc::WIFSIGNALED(status), "{status:#x}");
        assert_eq!(libc::WTERMSIG(status), libc::SIGKILL);
    }

    #[test]
    fn a_missing_directory_is_an_error_not_a_child() {
        let Some(launcher) = Launcher::new() else {
            return;
        };
        let mut p = program("true");
        p.cwd = c"/no/such/directory".to_owned();
        let e = launcher.spawn(&p).expect_err("no such directory");
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }
}
