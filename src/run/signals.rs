//! Signal handling while `procrun run` waits for its child.
//!
//! Signals *sent to procrun* by another process (`kill`, a process manager,
//! a CI runner's timeout) reach only procrun and are forwarded to the child.
//! What the terminal sends (Ctrl-C, Ctrl-\, a window resize) and what is
//! sent to procrun's whole process group (`kill -TERM -PGID`, as CI runners
//! and shells do) reaches the child directly, and must not reach it a second
//! time: many programs treat a second Ctrl-C as "stop now" (nodejs, psql,
//! rails console, ...). `run/group.rs` places procrun and the child so that
//! such a signal never reaches procrun as well, or never reaches the child
//! directly; so every signal procrun catches is forwarded, exactly once.
//!
//! signal-hook's handler only queues the `siginfo` (up to five deliveries per
//! signal; more are dropped, as the kernel merges pending signals anyway) and
//! wakes a thread through a self-pipe (async-signal-safe); that thread calls
//! `kill`. The origin (signal-hook's [`WithOrigin`]) matters in one case:
//! when the child has a group of its own, a signal from the terminal
//! (`si_code == SI_KERNEL` on Linux, [`Cause::Kernel`]) reached procrun's
//! group instead of the child's, so it goes to the child's whole group, as
//! the terminal would have sent it.
//!
//! The forwarding thread and the waiting thread share the child's pid behind
//! a mutex, and the child is only reaped after the pid has been withdrawn
//! under that mutex: once reaped, the pid is free for the system to give to
//! an unrelated process, which must never receive a forwarded signal.
//! The thread then ends through signal-hook's [`Handle::close`].
//!
//! A signal that was ignored when procrun started (`nohup procrun run …`, a
//! background job of a non-interactive shell) gets no handler and stays
//! ignored, so the child inherits the ignore as it would without procrun. A
//! handled signal needs nothing: exec resets it to the default in the child.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, killpg, sigaction};
use nix::unistd::Pid;
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::{Handle, SignalsInfo};
use signal_hook::low_level::siginfo::{Cause, Origin};

use super::group::Kind;

/// Signals forwarded to the child. SIGPIPE is left out: procrun's own
/// writes could raise it.
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
    /// The handled signals (raw numbers).
    handled: Vec<libc::c_int>,
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
    let signals = SignalsInfo::<WithOrigin>::new(&handled)?;

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
        handled,
        reset_in_child,
    })
}

impl Installed {
    /// The signals the child must get back with their default disposition
    /// before exec, when `everything`: those procrun ignores, and those it
    /// handles (exec would reset these, but the child may wait before exec;
    /// see `run/group.rs`). Else only those procrun ignores (an ignore
    /// survives exec).
    pub(super) fn child_reset(&self, everything: bool) -> Vec<libc::c_int> {
        let mut reset = self.reset_in_child.clone();
        if everything {
            reset.extend(&self.handled);
        }
        reset
    }

    /// Starts forwarding to `pid`. [`Forwarder::stop`] must be called before
    /// the child is reaped. If no thread can be started the child still
    /// runs, without forwarding: abandoning it would be worse.
    pub(super) fn forward_to(self, pid: Pid, kind: Kind) -> Forwarder {
        let target: Target = Arc::new(Mutex::new(Some(pid)));
        let shared = Arc::clone(&target);
        let handle = self.signals.handle();
        let mut signals = self.signals;
        let spawned = std::thread::Builder::new()
            .name("signal-forwarder".into())
            .spawn(move || {
                for origin in signals.forever() {
                    forward(&shared, &origin, kind);
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
/// target is gone. With a group of its own, the child gets a signal from
/// the terminal as the terminal sends it: to its whole group.
fn forward(target: &Target, origin: &Origin, kind: Kind) {
    let Ok(signal) = Signal::try_from(origin.signal) else {
        return;
    };
    let sender = origin.process.map(|p| p.pid);
    let guard = target.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(pid) = *guard else {
        tracing::debug!("{signal} after the command exited: nothing to forward");
        return;
    };
    if kind == Kind::Own && origin.cause == Cause::Kernel {
        tracing::debug!(
            ?sender,
            "forwarding {signal} from the terminal to group {pid}"
        );
        let _ = killpg(pid, signal);
    } else {
        tracing::debug!(?sender, "forwarding {signal} to {pid}");
        let _ = kill(pid, signal);
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
