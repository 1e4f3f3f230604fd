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

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::{Pid, getpgid, getpgrp};
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
        let spawned = std::thread::Builder::new()
            .name("signal-forwarder".into())
            .spawn(move || {
                for origin in signals.forever() {
                    forward(&shared, &origin);
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
/// target is gone or the terminal already delivered it.
fn forward(target: &Target, origin: &Origin) {
    let Ok(signal) = Signal::try_from(origin.signal) else {
        return;
    };
    let sender = origin.process.map(|p| p.pid);
    let guard = target.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(pid) = *guard else {
        tracing::debug!("{signal} after the command exited: nothing to forward");
        return;
    };
    if delivered_by_terminal(signal, origin.cause, pid) {
        tracing::debug!("{signal} came from the terminal and already reached the command");
        return;
    }
    tracing::debug!(?sender, "forwarding {signal} to {pid}");
    let _ = kill(pid, signal);
}

/// Whether the terminal (or the kernel) already sent `signal` to procrun's
/// whole process group, child included.
fn delivered_by_terminal(signal: Signal, cause: Cause, child: Pid) -> bool {
    let child_in_our_group = getpgid(Some(child)).is_ok_and(|g| g == getpgrp());
    if !child_in_our_group {
        return false;
    }
    if cfg!(any(target_os = "linux", target_os = "android")) {
        cause == Cause::Kernel
    } else {
        matches!(signal, Signal::SIGINT | Signal::SIGQUIT | Signal::SIGWINCH)
            && super::terminal::we_are_foreground()
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
