//! Signals: sending them to process groups, naming them, and turning exit
//! statuses into exit codes.

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use nix::sys::signal::Signal;
use nix::unistd::Pid;

/// Sends `signal` to the process group led by `pgid`. A group that is
/// already gone (ESRCH) is not an error.
///
/// Callers must only pass the pid of a child they have not reaped yet, so
/// the id cannot have been recycled (pitfall 12).
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

/// `SIGTERM` for 15, `signal 99` for an unknown number.
pub fn name(signal: i32) -> String {
    Signal::try_from(signal)
        .map(|s| s.as_str().to_owned())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// How an instance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It exited with this code.
    Exited(i32),
    /// A signal killed it.
    Killed(i32),
    /// It could not be started (counts as 127, like a shell's "not found").
    FailedToStart,
}

impl Outcome {
    /// From a wait status.
    pub fn from_status(status: ExitStatus) -> Self {
        match (status.code(), status.signal()) {
            (Some(code), _) => Outcome::Exited(code),
            (None, Some(sig)) => Outcome::Killed(sig),
            (None, None) => Outcome::Exited(1),
        }
    }

    /// The exit code procrun reports for it: the code, or 128+n.
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Exited(code) => code,
            Outcome::Killed(sig) => 128 + sig,
            Outcome::FailedToStart => 127,
        }
    }

    /// `exited with code 3`, `killed by SIGKILL`.
    pub fn describe(self) -> String {
        match self {
            Outcome::Exited(code) => format!("exited with code {code}"),
            Outcome::Killed(sig) => format!("killed by {}", name(sig)),
            Outcome::FailedToStart => "failed to start".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        assert_eq!(Outcome::Exited(3).exit_code(), 3);
        assert_eq!(Outcome::Killed(9).exit_code(), 137);
        assert_eq!(Outcome::Killed(9).describe(), "killed by SIGKILL");
        assert_eq!(Outcome::Exited(0).describe(), "exited with code 0");
        assert_eq!(Outcome::FailedToStart.exit_code(), 127);
        assert_eq!(name(2), "SIGINT");
        assert_eq!(name(99), "signal 99");
    }
}
