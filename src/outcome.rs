//! How a child process ended, and the exit code procrun reports for it:
//! shared by `start` (the first instance to end) and `run` (the command).

use std::os::unix::process::ExitStatusExt as _;
use std::process::ExitStatus;

use nix::sys::signal::Signal;

use crate::exit_code::ExitCode;

/// `SIGTERM` for 15, `signal 99` for an unknown number.
pub fn signal_name(signal: i32) -> String {
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
    /// It could not be started (counts as [`ExitCode::NOT_FOUND`], like a
    /// shell's "not found").
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
            Outcome::Killed(sig) => ExitCode::SIGNAL_BASE + sig,
            Outcome::FailedToStart => ExitCode::NOT_FOUND,
        }
    }

    /// `exited with code 3`, `killed by SIGKILL`.
    pub fn describe(self) -> String {
        match self {
            Outcome::Exited(code) => format!("exited with code {code}"),
            Outcome::Killed(sig) => format!("killed by {}", signal_name(sig)),
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
        assert_eq!(signal_name(2), "SIGINT");
        assert_eq!(signal_name(99), "signal 99");
    }
}
