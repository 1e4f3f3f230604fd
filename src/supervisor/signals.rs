//! Sending signals to process groups and processes. How a process ended,
//! and the exit code that follows, is [`crate::outcome`]'s.

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Sends `signal` to the process group led by `pgid`. A group that is
/// already gone (ESRCH) is not an error.
///
/// Callers must only pass the pid of a child they have not reaped yet, so
/// the id cannot have been recycled (docs/design.md, pitfall 12).
pub fn kill_group(pgid: u32, signal: Signal) {
    let Ok(pgid) = i32::try_from(pgid) else {
        return;
    };
    if pgid <= 1 {
        return; // never signal "every process" or init by mistake
    }
    match nix::sys::signal::killpg(Pid::from_raw(pgid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::debug!("killpg({pgid}, {signal}): {e}"),
    }
}

/// Sends `signal` to one process; a process already gone is fine.
pub fn kill_process(pid: i32, signal: Signal) {
    if pid <= 1 {
        return;
    }
    match nix::sys::signal::kill(Pid::from_raw(pid), signal) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
        Err(e) => tracing::debug!("kill({pid}, {signal}): {e}"),
    }
}
