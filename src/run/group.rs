//! Where `procrun run` and its command sit among process groups, so that a
//! signal sent to procrun's process group reaches the command exactly once.
//!
//! The caller (a shell, a CI runner, `timeout`) starts procrun in some process
//! group G and may signal G as a whole (`kill -TERM -G`, `killpg`). Without
//! procrun the command would be in G, so it stays there, and procrun steps
//! out of G into a group of its own before the command runs ([`Kind::Apart`]):
//!
//! - a signal sent to G reaches the command (and whatever else is in G: the
//!   script that runs procrun, a pager after it in a pipeline) once, from
//!   the kernel, and never procrun, which so never sends it a second time;
//! - a signal sent to procrun alone reaches only procrun, which forwards it;
//! - G stays the terminal's foreground group, so Ctrl-C, Ctrl-\, a window
//!   resize and reads from the terminal reach the command as they would
//!   without procrun, and procrun, in a background group, gets none of them.
//!
//! No guess about who sent a signal is needed: the kernel's delivery rules
//! make the split exact, however loaded the machine. (A forked process in G
//! that counted the signals it got could not: two copies of one signal that
//! reach it before it runs merge into one.)
//!
//! Stepping out. The leader of G (its id is the leader's pid, as for a job
//! of an interactive shell) cannot start a new group, whose id would be its
//! own pid, G again. So procrun forks an *anchor* whose pid names the new
//! group, joins it and reaps the anchor; a group id stays taken while a
//! process is in the group. The command is forked in G and, before exec,
//! waits in its pre-exec hook until procrun has left ([`Placement::spawn`]):
//! a signal sent to G before procrun leaves reaches both, but the forked
//! command cannot act on it before exec (the inherited handler swallows it,
//! or, once the hook has reset the dispositions, the default action applies)
//! and procrun forwards it after the exec; one sent after reaches only the
//! command. Once the command has exited, procrun goes back to G.
//!
//! Job control. Ctrl-Z stops G, the command with it, but not procrun, the
//! process the shell waits for: the shell would never see the job stop. So
//! when the command stops for the terminal (SIGTSTP, SIGTTIN, SIGTTOU)
//! procrun stops itself with the same signal, and a *relay* left in G
//! (`procrun-relay`, which ignores every other signal) passes the SIGCONT of
//! the shell's `fg` or `bg` on to procrun. Only with a controlling terminal:
//! without one no shell shows stopped jobs, and a command stopped and
//! continued by pid must not leave procrun stopped.
//!
//! A session leader (started by `setsid`, `ssh -t host procrun run …`, or as
//! a container's first process) cannot leave its group. Then the command
//! gets a group of its own instead ([`Kind::Own`]) and, if procrun's group
//! has the terminal, the terminal too (as a job-control shell gives it to a
//! job); a signal sent to procrun's group never reaches it, and procrun
//! forwards every signal it gets. There is no shell above a session leader
//! to show a stopped job, and a session leader's group is orphaned (the
//! kernel discards the terminal's stop signals for it), so a command stopped
//! by the terminal is continued at once (after getting the terminal, for a
//! read or a write).
//!
//! Over 400 lines because the placement, the helper processes it forks and
//! the stops they make possible are one mechanism; the comment above is a
//! good part of it.

use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd, RawFd};
use std::process::{Child, Command};
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, killpg, sigaction};
use nix::unistd::{ForkResult, Pid, getpgrp, getpid, getsid, setpgid, tcgetpgrp, tcsetpgrp};

/// How the command and procrun are placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    /// The command in procrun's original group, procrun out of it.
    Apart,
    /// The command in a group of its own (procrun leads its session).
    Own,
}

/// The placement of procrun and its command, from before the spawn until
/// procrun is back where it started.
#[derive(Debug)]
pub(super) struct Placement {
    kind: Kind,
    /// procrun's group when it started (G).
    original: Pid,
    /// Whether procrun has a controlling terminal (so job control applies).
    job_control: bool,
    /// The first of stdin, stdout, stderr that is the controlling terminal,
    /// when G is its foreground group (the command gets it in `Own`).
    foreground_tty: Option<RawFd>,
    /// `Apart`, when procrun leads G: the process whose pid names procrun's
    /// new group, until procrun is in it.
    anchor: Option<Helper>,
    /// `Apart` with job control: the relay in G.
    relay: Option<Helper>,
    /// The write end of the pipe the helpers read: they exit at its end of
    /// file, so they never outlive procrun.
    lifeline: Option<OwnedFd>,
    /// Whether procrun has left G.
    left: bool,
}

impl Placement {
    /// Decides the placement and forks its helpers. Call before any thread
    /// is started and before any signal handler is installed: the helpers
    /// are forked copies of procrun.
    pub(super) fn prepare() -> Placement {
        let original = getpgrp();
        let me = getpid();
        let job_control = super::terminal::has_controlling_terminal();
        let foreground_tty = super::terminal::foreground_fd();
        let session_leader = getsid(None).is_ok_and(|s| s == me);
        let mut placement = Placement {
            kind: if session_leader {
                Kind::Own
            } else {
                Kind::Apart
            },
            original,
            job_control,
            foreground_tty,
            anchor: None,
            relay: None,
            lifeline: None,
            left: false,
        };
        let needs_anchor = original == me;
        if placement.kind == Kind::Own || !(needs_anchor || job_control) {
            return placement;
        }
        let Ok((read, write)) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) else {
            placement.kind = Kind::Own;
            return placement;
        };
        if needs_anchor {
            match Helper::fork(&read, Role::Anchor) {
                Some(anchor) => placement.anchor = Some(anchor),
                None => {
                    placement.kind = Kind::Own;
                    return placement;
                }
            }
        }
        if job_control {
            // Without a relay a mirrored stop would never end: then procrun
            // does not mirror stops.
            placement.relay = Helper::fork(&read, Role::Relay { to: me });
        }
        placement.lifeline = Some(write);
        placement
    }

    pub(super) fn kind(&self) -> Kind {
        self.kind
    }

    /// Spawns `command` placed as decided. `reset` lists the signals whose
    /// default disposition the command must get back before exec (procrun
    /// ignores or handles them).
    pub(super) fn spawn(
        &mut self,
        command: &mut Command,
        reset: Vec<libc::c_int>,
    ) -> std::io::Result<Child> {
        use std::os::unix::process::CommandExt as _;
        match self.kind {
            Kind::Own => {
                let tty = self.foreground_tty;
                // SAFETY: setpgid, tcsetpgrp (an ioctl) and signal are
                // async-signal-safe, as pre_exec requires.
                unsafe {
                    command.pre_exec(move || {
                        if libc::setpgid(0, 0) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        // While SIGTTOU is still ignored: a background group
                        // may then take the terminal. Best effort: without
                        // it the command still runs, and a read stops it
                        // until procrun hands the terminal over.
                        if let Some(fd) = tty {
                            libc::tcsetpgrp(fd, libc::getpid());
                        }
                        reset_to_default(&reset)
                    });
                }
                command.spawn()
            }
            Kind::Apart => self.spawn_apart(command, reset),
        }
    }

    /// Spawns the command in G, leaving G while it waits before exec.
    fn spawn_apart(
        &mut self,
        command: &mut Command,
        reset: Vec<libc::c_int>,
    ) -> std::io::Result<Child> {
        use std::os::unix::process::CommandExt as _;
        let cloexec = nix::fcntl::OFlag::O_CLOEXEC;
        let (ready_r, ready_w) = nix::unistd::pipe2(cloexec)?;
        let (go_r, go_w) = nix::unistd::pipe2(cloexec)?;
        let (ready_fd, go_fd) = (ready_w.as_raw_fd(), go_r.as_raw_fd());
        // SAFETY: only signal, write and read, which are async-signal-safe.
        unsafe {
            command.pre_exec(move || {
                reset_to_default(&reset)?;
                let byte = 1u8;
                libc::write(ready_fd, (&raw const byte).cast(), 1);
                // Until procrun has left G, or gave up (end of file).
                let mut answer = 0u8;
                while libc::read(go_fd, (&raw mut answer).cast(), 1) < 0
                    && nix::errno::Errno::last() == nix::errno::Errno::EINTR
                {}
                Ok(())
            });
        }
        std::thread::scope(|scope| {
            let leaver = scope.spawn(move || {
                let mut ready = std::fs::File::from(ready_r);
                let mut go = std::fs::File::from(go_w);
                let mut byte = [0u8];
                // End of file: the command failed before its hook ran.
                if matches!(ready.read(&mut byte), Ok(1)) {
                    self.leave();
                    let _ = go.write_all(&byte);
                }
            });
            let spawned = command.spawn();
            // The hook's copies are the only ones left: end of file for the
            // leaver if the command never got as far as the hook.
            drop(ready_w);
            drop(go_r);
            if leaver.join().is_err() {
                tracing::debug!("the thread that leaves procrun's group panicked");
            }
            spawned
        })
    }

    /// Moves procrun out of G into a group of its own.
    fn leave(&mut self) {
        let joined = match self.anchor.take() {
            // The anchor is its own group's only member until procrun
            // joins; it is reaped only after.
            Some(anchor) => setpgid(Pid::from_raw(0), anchor.pid),
            None => setpgid(Pid::from_raw(0), Pid::from_raw(0)),
        };
        match joined {
            Ok(()) => {
                self.left = true;
                tracing::debug!("left process group {} for {}", self.original, getpgrp());
            }
            Err(e) => tracing::debug!("cannot leave process group {}: {e}", self.original),
        }
    }

    /// Waits until `child` has exited, leaving it unreaped (`WNOWAIT`), and
    /// handles its stops on the way (see the module's comment).
    pub(super) fn wait(&self, child: Pid) -> std::io::Result<()> {
        loop {
            let info = wait_info(child, libc::WEXITED | libc::WSTOPPED | libc::WNOWAIT)?;
            if info.si_code != libc::CLD_STOPPED {
                return Ok(());
            }
            // Consumes the stop report, or the next wait sees it again.
            let _ = wait_info(child, libc::WSTOPPED | libc::WNOHANG);
            self.child_stopped(child, stop_signal(&info));
        }
    }

    fn child_stopped(&self, child: Pid, signal: libc::c_int) {
        let for_terminal = matches!(signal, libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU);
        if !self.job_control || !for_terminal {
            return;
        }
        match self.kind {
            Kind::Apart if self.left && self.relay.is_some() => {
                tracing::debug!("the command stopped ({signal}): stopping procrun too");
                stop_self(signal);
                tracing::debug!("procrun continued");
            }
            Kind::Apart => {}
            Kind::Own => {
                if signal != libc::SIGTSTP
                    && let Some(fd) = self.foreground_tty
                {
                    // SAFETY: fd is one of procrun's standard streams, open
                    // for procrun's whole life.
                    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
                    if tcgetpgrp(fd).is_ok_and(|g| g == self.original) {
                        let _ = tcsetpgrp(fd, child);
                    }
                }
                tracing::debug!("the command stopped ({signal}): continuing it");
                let _ = killpg(child, Signal::SIGCONT);
            }
        }
    }

    /// Puts procrun back in G (after the command has exited) and ends the
    /// helpers.
    pub(super) fn finish(mut self) {
        if self.left {
            let back = if self.original == getpid() {
                setpgid(Pid::from_raw(0), Pid::from_raw(0))
            } else {
                setpgid(Pid::from_raw(0), self.original)
            };
            if let Err(e) = back {
                tracing::debug!("cannot go back to process group {}: {e}", self.original);
            }
            self.left = false;
        }
        self.relay = None;
        self.anchor = None;
        self.lifeline = None;
    }
}

/// Sets `signals` back to their default disposition (in the forked child).
fn reset_to_default(signals: &[libc::c_int]) -> std::io::Result<()> {
    for &signal in signals {
        // SAFETY: signal(2) with SIG_DFL is async-signal-safe.
        if unsafe { libc::signal(signal, libc::SIG_DFL) } == libc::SIG_ERR {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// `waitid` on `child`, retried when interrupted.
fn wait_info(child: Pid, flags: libc::c_int) -> std::io::Result<libc::siginfo_t> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid out-parameter for waitid.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t; the pid is our
        // unreaped child.
        let rc =
            unsafe { libc::waitid(libc::P_PID, child.as_raw() as libc::id_t, &mut info, flags) };
        if rc == 0 {
            return Ok(info);
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// The signal that stopped the child, from a `CLD_STOPPED` report.
fn stop_signal(info: &libc::siginfo_t) -> libc::c_int {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        // SAFETY: waitid filled in a child's status.
        unsafe { info.si_status() }
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    {
        info.si_status
    }
}

/// Stops procrun with `signal` until a SIGCONT, then restores the signal's
/// disposition (procrun ignores SIGTTIN and SIGTTOU).
fn stop_self(signal: libc::c_int) {
    let Ok(signal) = Signal::try_from(signal) else {
        return;
    };
    let default = SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty());
    // SAFETY: installing SIG_DFL runs no code in signal context; the old
    // action, put back below, is whatever procrun had installed.
    let Ok(old) = (unsafe { sigaction(signal, &default) }) else {
        return;
    };
    // Stops the whole process; returns once it is continued.
    let _ = nix::sys::signal::raise(signal);
    // SAFETY: as above.
    let _ = unsafe { sigaction(signal, &old) };
}

/// What a helper does.
#[derive(Clone, Copy, Debug)]
enum Role {
    /// Names procrun's new group; does nothing else.
    Anchor,
    /// Stays in G and passes each SIGCONT on to procrun (`to`).
    Relay { to: Pid },
}

/// A forked helper process, killed and reaped when dropped.
#[derive(Debug)]
struct Helper {
    pid: Pid,
}

impl Helper {
    /// Forks a helper that exits at the end of file of `lifeline`, and
    /// returns once its signals are set: a relay not yet running when the
    /// shell's `fg` comes would let that SIGCONT go by (the default action
    /// ignores it), and procrun would stay stopped. Under load the command
    /// could stop for the terminal, and the shell continue it, before the
    /// relay had run at all.
    fn fork(lifeline: &OwnedFd, role: Role) -> Option<Helper> {
        let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        // SAFETY: procrun has no other thread yet (see `prepare`); the child
        // only makes async-signal-safe calls (`helper`) and never returns.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => helper(lifeline.as_raw_fd(), role, ready_w.as_raw_fd()),
            Ok(ForkResult::Parent { child }) => {
                if let Role::Anchor = role {
                    // Also done by the anchor itself: whichever runs first.
                    let _ = setpgid(child, child);
                }
                drop(ready_w);
                // A byte once it is set up, or end of file if it died first.
                let mut ready = std::fs::File::from(ready_r);
                let mut byte = [0u8];
                while let Err(e) = ready.read(&mut byte) {
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        break;
                    }
                }
                Some(Helper { pid: child })
            }
            Err(e) => {
                tracing::debug!("cannot start a helper process: {e}");
                None
            }
        }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// The relay's target, for its SIGCONT handler.
static RELAY_TO: AtomicI32 = AtomicI32::new(0);

extern "C" fn relay_continue(_: libc::c_int) {
    let to = RELAY_TO.load(Ordering::Relaxed);
    // SAFETY: getppid and kill are async-signal-safe. Only while procrun,
    // the parent, is alive: its pid is not anyone else's yet.
    unsafe {
        if to > 0 && libc::getppid() == to {
            libc::kill(to, libc::SIGCONT);
        }
    }
}

/// A helper's whole life, in the forked child: ignore every signal (a
/// relay passes SIGCONT on), let go of procrun's stdio, and wait for the
/// lifeline to end. Only async-signal-safe calls, no allocation.
fn helper(lifeline: RawFd, role: Role, ready: RawFd) -> ! {
    // SAFETY: plain system calls on descriptors this process owns and on
    // structures on the stack; the handler only reads an atomic and calls
    // async-signal-safe functions.
    unsafe {
        for signal in 1..32 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP && signal != libc::SIGCONT {
                libc::signal(signal, libc::SIG_IGN);
            }
        }
        let name = match role {
            Role::Anchor => {
                libc::setpgid(0, 0);
                c"procrun-anchor"
            }
            Role::Relay { to } => {
                RELAY_TO.store(to.as_raw(), Ordering::Relaxed);
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction =
                    relay_continue as extern "C" fn(libc::c_int) as libc::sighandler_t;
                action.sa_flags = libc::SA_RESTART;
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(libc::SIGCONT, &action, std::ptr::null_mut());
                c"procrun-relay"
            }
        };
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_NAME, name.as_ptr(), 0, 0, 0);
        #[cfg(not(target_os = "linux"))]
        let _ = name;
        // Set up: procrun may go on (`Helper::fork`).
        let byte = 1u8;
        libc::write(ready, (&raw const byte).cast(), 1);
        libc::close(ready);
        // Keep only the lifeline, as descriptor 3: a copy of its write end
        // (or of any pipe procrun holds) would keep it open. And let go of
        // procrun's stdio: `procrun run cmd | head` must see end of file
        // once procrun and the command are done.
        const LIFELINE: libc::c_int = 3;
        if lifeline != LIFELINE && libc::dup2(lifeline, LIFELINE) < 0 {
            libc::_exit(0);
        }
        close_from(LIFELINE + 1);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
            if null > LIFELINE {
                libc::close(null);
            }
        }
        loop {
            let mut byte = 0u8;
            let n = libc::read(LIFELINE, (&raw mut byte).cast(), 1);
            if n >= 0 || nix::errno::Errno::last() != nix::errno::Errno::EINTR {
                libc::_exit(0);
            }
        }
    }
}

/// Closes every descriptor from `first` on (in a forked helper).
fn close_from(first: libc::c_int) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: close_range only closes descriptors of this process.
        if unsafe { libc::syscall(libc::SYS_close_range, first, libc::c_uint::MAX, 0) } == 0 {
            return;
        }
    }
    // SAFETY: as above, one descriptor at a time.
    let last = unsafe { libc::sysconf(libc::_SC_OPEN_MAX) }.clamp(256, 65_536) as libc::c_int;
    for fd in first..last {
        // SAFETY: as above.
        unsafe { libc::close(fd) };
    }
}
