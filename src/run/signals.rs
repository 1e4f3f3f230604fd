//! Signal handling while `procrun run` waits for its child.
//!
//! The child stays in procrun's process group, so everything the terminal
//! sends to the foreground group (Ctrl-C, Ctrl-\, a window resize) already
//! reaches it. procrun must not send those a second time: many programs treat
//! a second Ctrl-C as "stop now" (nodejs, psql, rails console, ...). Signals
//! *sent to procrun* by another process (`kill`, a process manager, a CI
//! runner's timeout) reach only procrun and are forwarded to the child.
//!
//! To tell the two apart procrun gets each signal's origin (its `siginfo`)
//! from signal-hook's [`WithOrigin`]. On Linux the terminal driver sends with
//! `si_code == SI_KERNEL` ([`Cause::Kernel`]), `kill(2)`, `sigqueue` and the
//! like as a process ([`Cause::Sent`]). Elsewhere, where `si_code` is less
//! uniform, a terminal-generated signal (INT, QUIT, WINCH) is assumed to come
//! from the terminal while procrun's group is the terminal's foreground group
//! (uv, astral-sh/uv#11009, uses "stdin is a terminal"; the foreground test
//! also covers `cmd | procrun run …` at a prompt). If the child has left
//! procrun's group (e.g. a job-control shell), the terminal no longer reaches
//! it through procrun's group and every signal is forwarded.
//!
//! A signal *sent to procrun's whole group* (`kill -TERM -PGID`, `killpg`, as
//! CI runners and shells do) has reached the child already, like the
//! terminal's, but its `siginfo` is the same as that of a `kill` of procrun
//! alone. So procrun keeps a witness ([`Witness`]): a small forked process
//! in its group that counts the forwarded signals it receives. For each
//! signal procrun catches, it asks the witness whether it got the same one
//! (and claims it); if so, the signal went to the group and is not
//! forwarded. Before asking, procrun waits out a group kill still in
//! progress: on Linux `setpgid` takes the task-list lock that `kill(-pgrp)`
//! holds while it signals each member, so once `setpgid` returns the
//! witness has been sent the signal if the group was.
//!
//! signal-hook's handler only queues the `siginfo` (up to five deliveries per
//! signal; more are dropped, as the kernel merges pending signals anyway) and
//! wakes a thread through a self-pipe (async-signal-safe); that thread calls
//! `kill`. That thread and the waiting thread share the child's pid behind a
//! mutex, and the child is only reaped after the pid has been withdrawn under
//! that mutex: once reaped, the pid is free for the system to give to an
//! unrelated process, which must never receive a forwarded signal.
//! The thread then ends through signal-hook's [`Handle::close`].
//!
//! A signal that was ignored when procrun started (`nohup procrun run …`, a
//! background job of a non-interactive shell) gets no handler and stays
//! ignored, so the child inherits the ignore as it would without procrun. A
//! handled signal needs nothing: exec resets it to the default in the child.

use std::io::{Read as _, Write as _};
use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::{ForkResult, Pid, getpgid, getpgrp, setpgid};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::{Cause, Origin};

/// Signals forwarded to the child (unless the terminal already delivered
/// them). SIGPIPE is left out: procrun's own writes could raise it.
const FORWARDED: [Signal; 8] = [
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
    Signal::SIGALRM,
];

/// Signals that would stop procrun when the child takes over the terminal
/// (a background process group writing with `tostop`, or calling
/// `tcsetpgrp`): procrun ignores them, the child gets the default back.
const TERMINAL_STOPS: [Signal; 2] = [Signal::SIGTTOU, Signal::SIGTTIN];

/// Signal handling set up before the child is spawned.
#[derive(Debug)]
pub(super) struct Installed {
    /// The handlers of the forwarded signals not ignored at start, and what
    /// they caught so far.
    signals: SignalsInfo<WithOrigin>,
    /// Signals procrun set to "ignore" that the child must get back as
    /// "default" (raw numbers, for the async-signal-safe `pre_exec`).
    reset_in_child: Vec<libc::c_int>,
    /// Tells a signal sent to procrun's group from one sent to procrun.
    witness: Option<Witness>,
}

/// The child's pid while it may still be signalled; `None` once it is about
/// to be reaped.
type Target = Arc<Mutex<Option<Pid>>>;

/// Installs the handlers. Call once, before spawning: a signal that arrives
/// between now and the spawn waits in signal-hook's queue and is forwarded
/// after.
pub(super) fn install() -> std::io::Result<Installed> {
    let mut handled = Vec::new();
    for signal in FORWARDED {
        if !is_ignored(signal)? {
            handled.push(signal as libc::c_int);
        }
    }
    // Forked before any thread of procrun's starts (the forwarder starts
    // after the spawn).
    let witness = Witness::start(&handled);
    let signals = SignalsInfo::<WithOrigin>::new(handled)?;

    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    let mut reset_in_child = Vec::new();
    for signal in TERMINAL_STOPS {
        if is_ignored(signal)? {
            continue;
        }
        // SAFETY: installing SIG_IGN runs no code in signal context.
        unsafe { sigaction(signal, &ignore) }?;
        reset_in_child.push(signal as libc::c_int);
    }
    Ok(Installed {
        signals,
        reset_in_child,
        witness,
    })
}

impl Installed {
    /// What the child must run between fork and exec: restore the default
    /// disposition of the signals procrun ignores (an ignore survives exec).
    /// Handled signals need nothing: exec resets them.
    pub(super) fn child_reset(&self) -> impl Fn() -> std::io::Result<()> + Send + Sync + 'static {
        let signals = self.reset_in_child.clone();
        move || {
            for &signal in &signals {
                // SAFETY: signal(2) with SIG_DFL is async-signal-safe, as
                // pre_exec requires.
                if unsafe { libc::signal(signal, libc::SIG_DFL) } == libc::SIG_ERR {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        }
    }

    /// Starts forwarding to `pid`. [`Forwarder::stop`] must be called before
    /// the child is reaped. If no thread can be started the child still
    /// runs, without forwarding: abandoning it would be worse.
    pub(super) fn forward_to(self, pid: Pid) -> Forwarder {
        let target: Target = Arc::new(Mutex::new(Some(pid)));
        let shared = Arc::clone(&target);
        let handle = self.signals.handle();
        let mut signals = self.signals;
        let mut witness = self.witness;
        let spawned = std::thread::Builder::new()
            .name("signal-forwarder".into())
            .spawn(move || {
                for origin in signals.forever() {
                    forward(&shared, &origin, &mut witness);
                }
            });
        let thread = spawned
            .inspect_err(|e| tracing::warn!("cannot forward signals to the command: {e}"))
            .ok();
        Forwarder {
            target,
            handle,
            thread,
        }
    }
}

/// Forwarding to a running child, from [`Installed::forward_to`].
#[derive(Debug)]
pub(super) struct Forwarder {
    target: Target,
    /// Ends the thread's iteration over the caught signals.
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl Forwarder {
    /// Withdraws the child's pid, so that it is never signalled again, and
    /// ends the forwarding thread. Call once the child has exited, before
    /// reaping it. The handlers stay installed (signal-hook does not remove
    /// them), so from now on these signals are dropped while procrun
    /// finishes.
    pub(super) fn stop(self) {
        self.target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.handle.close();
        if let Some(thread) = self.thread
            && thread.join().is_err()
        {
            tracing::debug!("the signal forwarder panicked");
        }
    }
}

/// Forwards the signal described by `origin` to the target, unless the
/// target is gone or the signal already reached it (from the terminal, or
/// sent to procrun's whole group).
fn forward(target: &Target, origin: &Origin, witness: &mut Option<Witness>) {
    let Ok(signal) = Signal::try_from(origin.signal) else {
        return;
    };
    // Asked for every signal, also one that is not forwarded, so that the
    // witness never keeps a stale one pending.
    let to_group = match witness.as_mut().map(|w| w.got(signal)) {
        Some(Ok(got)) => got,
        Some(Err(e)) => {
            tracing::debug!("the signal witness is gone ({e}): forwarding every sent signal");
            *witness = None;
            false
        }
        None => false,
    };
    let sender = origin.process.map(|p| p.pid);
    let guard = target.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(pid) = *guard else {
        tracing::debug!("{signal} after the command exited: nothing to forward");
        return;
    };
    let child_in_our_group = getpgid(Some(pid)).is_ok_and(|g| g == getpgrp());
    if child_in_our_group && to_group {
        tracing::debug!(
            ?sender,
            "{signal} was sent to procrun's group: it reached the command"
        );
        return;
    }
    if child_in_our_group && delivered_by_terminal(signal, origin.cause) {
        tracing::debug!("{signal} came from the terminal and already reached the command");
        return;
    }
    tracing::debug!(?sender, "forwarding {signal} to {pid}");
    let _ = kill(pid, signal);
}

/// Whether the terminal (or the kernel) sent `signal` to procrun's whole
/// process group, which the child is in.
fn delivered_by_terminal(signal: Signal, cause: Cause) -> bool {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        cause == Cause::Kernel
    } else {
        matches!(signal, Signal::SIGINT | Signal::SIGQUIT | Signal::SIGWINCH)
            && super::terminal::we_are_foreground()
    }
}

/// A forked process in procrun's process group that counts the forwarded
/// signals it receives: one sent to the whole group reaches it too, and
/// procrun asks it, signal by signal, whether it got one. The witness ends when
/// procrun closes its end of the pipe or dies, and is killed when the
/// forwarding ends.
#[derive(Debug)]
struct Witness {
    pid: Pid,
    /// procrun writes a signal number; the witness answers on `answers`.
    questions: std::fs::File,
    /// One byte per question: 1 if the witness had an unclaimed delivery of
    /// the signal (now claimed).
    answers: std::fs::File,
}

/// How long procrun waits for the witness's answer, in milliseconds: it
/// answers at once unless it is stopped or gone.
const WITNESS_PATIENCE_MS: u16 = 1000;

impl Witness {
    /// Forks the witness. `None` if it cannot be started: then a signal sent
    /// to the group is forwarded too.
    fn start(signals: &[libc::c_int]) -> Option<Witness> {
        let (question_r, question_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        let (answer_r, answer_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        // SAFETY: the child only makes async-signal-safe calls (`witness`)
        // and never returns.
        match unsafe { nix::unistd::fork() } {
            Ok(ForkResult::Child) => witness(&question_r, &answer_w, signals),
            Ok(ForkResult::Parent { child }) => Some(Witness {
                pid: child,
                questions: question_w.into(),
                answers: answer_r.into(),
            }),
            Err(e) => {
                tracing::debug!("cannot start the signal witness: {e}");
                None
            }
        }
    }

    /// Whether `signal` was also sent to procrun's group; the witness
    /// consumes it. An error means the witness cannot be asked any more.
    fn got(&mut self, signal: Signal) -> std::io::Result<bool> {
        // Waits out a kill(-pgrp) in progress (see the module's comment);
        // putting the witness in the group it is already in changes nothing.
        let _ = setpgid(self.pid, getpgrp());
        self.questions.write_all(&[signal as u8])?;
        let mut fds = [nix::poll::PollFd::new(
            self.answers.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        let ready = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(WITNESS_PATIENCE_MS))?;
        if ready == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer",
            ));
        }
        let mut answer = [0u8];
        self.answers.read_exact(&mut answer)?;
        Ok(answer[0] == 1)
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        // Killed rather than told: a stopped witness would never read EOF.
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Deliveries the witness has seen and procrun has not asked about yet, by
/// signal number. Counted by a handler rather than left pending, so that two
/// deliveries of one signal are two even if procrun asks late (pending
/// signals of one kind merge into one).
static SEEN: [AtomicU32; 65] = [const { AtomicU32::new(0) }; 65];

extern "C" fn count(signal: libc::c_int) {
    if let Some(seen) = usize::try_from(signal).ok().and_then(|s| SEEN.get(s)) {
        seen.fetch_add(1, Ordering::SeqCst);
    }
}

/// The witness's whole life, in the forked child: count `signals`, then
/// answer each question until procrun's end of the pipe closes. Only
/// async-signal-safe calls, and no allocation: procrun's other state is not
/// to be trusted after fork.
fn witness(questions: &OwnedFd, answers: &OwnedFd, signals: &[libc::c_int]) -> ! {
    // SAFETY: plain system calls on descriptors this process owns and on
    // structures on the stack; the handler only touches atomics.
    unsafe {
        #[cfg(target_os = "linux")]
        libc::prctl(libc::PR_SET_NAME, c"procrun-witness".as_ptr(), 0, 0, 0);
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = count as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut action.sa_mask);
        for &signal in signals {
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
        // Let go of procrun's stdio: `procrun run cmd | head` must see EOF
        // once procrun and the command are done.
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            for fd in 0..3 {
                libc::dup2(null, fd);
            }
        }
        loop {
            // A signal generated before the question was written is handled
            // before this read returns: the kernel runs pending handlers on
            // every return to user space.
            let mut question = 0u8;
            let n = libc::read(questions.as_raw_fd(), (&raw mut question).cast(), 1);
            if n == 0 {
                libc::_exit(0);
            }
            if n < 0 {
                if nix::errno::Errno::last() == nix::errno::Errno::EINTR {
                    continue;
                }
                libc::_exit(0);
            }
            let had = SEEN.get(usize::from(question)).is_some_and(|seen| {
                seen.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            });
            let answer = u8::from(had);
            libc::write(answers.as_raw_fd(), (&raw const answer).cast(), 1);
        }
    }
}

fn is_ignored(signal: Signal) -> std::io::Result<bool> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null new action only reads the current disposition into
    // `old`, which is fully written on success.
    let rc = unsafe { libc::sigaction(signal as libc::c_int, std::ptr::null(), old.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: initialised by the successful call above.
    let old = unsafe { old.assume_init() };
    Ok(old.sa_sigaction == libc::SIG_IGN)
}
