//! Signal handling while `procrun run` waits for its child (issue #4).
//!
//! The child stays in procrun's process group, so everything the terminal
//! sends to the foreground group (Ctrl-C, Ctrl-\, a window resize) already
//! reaches it. procrun must not send those a second time: many programs treat
//! a second Ctrl-C as "stop now" (nodejs, psql, rails console, ...). Signals
//! *sent to procrun* by another process (`kill`, a process manager, a CI
//! runner's timeout) reach only procrun and are forwarded to the child.
//!
//! To tell the two apart procrun reads the origin from `siginfo` on Linux: the
//! terminal driver sends with `si_code == SI_KERNEL`, `kill(2)` with
//! `si_code <= 0`. Elsewhere, where `si_code` is less uniform, a
//! terminal-generated signal (INT, QUIT, WINCH) is assumed to come from the
//! terminal while procrun's group is the terminal's foreground group (uv,
//! astral-sh/uv#11009, uses "stdin is a terminal"; the foreground test also
//! covers `cmd | procrun run …` at a prompt). If the child has left procrun's
//! group (e.g. a job-control shell), the terminal no longer reaches it through
//! procrun's group and every signal is forwarded.
//!
//! The handler only writes one byte to a pipe (async-signal-safe); a thread
//! reads it and calls `kill`. That thread and the waiting thread share the
//! child's pid behind a mutex, and the child is only reaped after the pid has
//! been withdrawn under that mutex, so a recycled pid is never signalled
//! (STYLE.md pitfall 12).
//!
//! A signal that was ignored when procrun started (`nohup procrun run …`, a
//! background job of a non-interactive shell) stays ignored, so the child
//! inherits the ignore as it would without procrun.

use std::io::Read as _;
use std::os::fd::{AsRawFd as _, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, kill, sigaction};
use nix::unistd::{Pid, getpgid, getpgrp};

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

/// Set in the byte written by the handler when the kernel (the terminal
/// driver), not a process, sent the signal.
const FROM_KERNEL: u8 = 0x80;

/// The write end of the self-pipe, for the handler.
static PIPE: AtomicI32 = AtomicI32::new(-1);

/// Signal handling set up before the child is spawned.
#[derive(Debug)]
pub(super) struct Installed {
    reader: UnixStream,
    /// Signals procrun set to "ignore" that the child must get back as
    /// "default" (raw numbers, for the async-signal-safe `pre_exec`).
    reset_in_child: Vec<libc::c_int>,
}

/// The child's pid while it may still be signalled; `None` once it is about
/// to be reaped.
pub(super) type Target = Arc<Mutex<Option<Pid>>>;

/// Installs the handlers. Call once, before spawning: a signal that arrives
/// between now and the spawn is queued in the pipe and forwarded after.
pub(super) fn install() -> std::io::Result<Installed> {
    let (reader, writer) = UnixStream::pair()?;
    writer.set_nonblocking(true)?;
    // The write end lives as long as procrun: the handlers use it until exit.
    PIPE.store(writer.as_raw_fd(), Ordering::SeqCst);
    std::mem::forget(writer);

    let handler = SigAction::new(
        SigHandler::SigAction(on_signal),
        SaFlags::SA_RESTART | SaFlags::SA_SIGINFO,
        SigSet::empty(),
    );
    for signal in FORWARDED {
        if is_ignored(signal)? {
            continue;
        }
        // SAFETY: `on_signal` only does async-signal-safe work (an atomic
        // load and write(2)), and preserves errno.
        unsafe { sigaction(signal, &handler) }?;
    }

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
        reader,
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

    /// Starts forwarding to `pid`. The returned target must be cleared
    /// before the child is reaped. If no thread can be started the child
    /// still runs, without forwarding: abandoning it would be worse.
    pub(super) fn forward_to(self, pid: Pid) -> Target {
        let target: Target = Arc::new(Mutex::new(Some(pid)));
        let shared = Arc::clone(&target);
        let mut reader = self.reader;
        let spawned = std::thread::Builder::new()
            .name("signal-forwarder".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                while reader.read_exact(&mut byte).is_ok() {
                    forward(&shared, byte[0]);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("cannot forward signals to the command: {e}");
        }
        target
    }
}

/// Forwards the signal encoded in `byte` (by [`on_signal`]) to the target,
/// unless the target is gone or the terminal already delivered it.
fn forward(target: &Target, byte: u8) {
    let from_kernel = byte & FROM_KERNEL != 0;
    let Ok(signal) = Signal::try_from(i32::from(byte & !FROM_KERNEL)) else {
        return;
    };
    let guard = target.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(pid) = *guard else {
        tracing::debug!("{signal} after the command exited: nothing to forward");
        return;
    };
    if delivered_by_terminal(signal, from_kernel, pid) {
        tracing::debug!("{signal} came from the terminal and already reached the command");
        return;
    }
    tracing::debug!("forwarding {signal} to {pid}");
    let _ = kill(pid, signal);
}

/// Whether the terminal (or the kernel) already sent `signal` to procrun's
/// whole process group, child included.
fn delivered_by_terminal(signal: Signal, from_kernel: bool, child: Pid) -> bool {
    let child_in_our_group = getpgid(Some(child)).is_ok_and(|g| g == getpgrp());
    if !child_in_our_group {
        return false;
    }
    if cfg!(any(target_os = "linux", target_os = "android")) {
        from_kernel
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

/// Whether `info` says the kernel (on a terminal's behalf) sent the signal,
/// rather than a process (kill, sigqueue, tgkill: `si_code <= 0` on Linux).
/// Always false elsewhere; see [`delivered_by_terminal`].
fn sent_by_kernel(info: &libc::siginfo_t) -> bool {
    cfg!(any(target_os = "linux", target_os = "android")) && info.si_code > 0
}

extern "C" fn on_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let saved = nix::errno::Errno::last_raw();
    // SAFETY: the kernel passes a valid siginfo with SA_SIGINFO; null is
    // checked anyway.
    let from_kernel = unsafe { info.as_ref() }.is_some_and(sent_by_kernel);
    let byte = (signal as u8 & !FROM_KERNEL) | if from_kernel { FROM_KERNEL } else { 0 };
    let fd: RawFd = PIPE.load(Ordering::SeqCst);
    if fd >= 0 {
        // SAFETY: write(2) is async-signal-safe; the fd stays open for the
        // life of the process. A full pipe drops the byte (non-blocking).
        let _ = unsafe { libc::write(fd, (&raw const byte).cast(), 1) };
    }
    nix::errno::Errno::set_raw(saved);
}
