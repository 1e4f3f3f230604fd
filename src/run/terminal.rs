//! The controlling terminal, as far as `procrun run` cares: whether there is
//! one, whether procrun's process group is in the foreground, and getting it
//! back there after an interactive child that took the terminal (a
//! job-control shell) died without returning it.

use std::io::IsTerminal as _;
use std::os::fd::{AsFd, AsRawFd as _, BorrowedFd, RawFd};

use nix::unistd::{Pid, getpgrp, tcgetpgrp, tcsetpgrp};

/// Calls `f` with the first of stdin, stdout, stderr that is a terminal.
fn with_terminal<R>(f: impl FnOnce(BorrowedFd<'_>) -> R) -> Option<R> {
    if std::io::stdin().is_terminal() {
        Some(f(std::io::stdin().as_fd()))
    } else if std::io::stdout().is_terminal() {
        Some(f(std::io::stdout().as_fd()))
    } else if std::io::stderr().is_terminal() {
        Some(f(std::io::stderr().as_fd()))
    } else {
        None
    }
}

/// Whether procrun's process group is the terminal's foreground group (so
/// the terminal's Ctrl-C reaches procrun's group).
pub(super) fn we_are_foreground() -> bool {
    with_terminal(|fd| tcgetpgrp(fd).is_ok_and(|g| g == getpgrp())) == Some(true)
}

/// Whether procrun has a controlling terminal (through any descriptor, even
/// with its standard streams redirected): then the terminal's job control
/// applies to it and its command.
pub(super) fn has_controlling_terminal() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .open("/dev/tty")
        .is_ok()
}

/// The first of stdin, stdout, stderr that is the controlling terminal,
/// when procrun's process group is its foreground group.
pub(super) fn foreground_fd() -> Option<RawFd> {
    with_terminal(|fd| {
        tcgetpgrp(fd)
            .is_ok_and(|g| g == getpgrp())
            .then(|| fd.as_raw_fd())
    })
    .flatten()
}

/// Remembers whether procrun owned the terminal when the child started.
#[derive(Debug)]
pub(super) struct Foreground {
    owned: Option<Pid>,
}

impl Foreground {
    /// Notes the current owner.
    pub(super) fn remember() -> Self {
        Foreground {
            owned: we_are_foreground().then(getpgrp),
        }
    }

    /// Takes the terminal back if procrun had it and the child kept it.
    /// Needs SIGTTOU ignored (see `signals`), else procrun would be stopped.
    pub(super) fn restore(&self) {
        let Some(ours) = self.owned else {
            return;
        };
        with_terminal(|fd| {
            if tcgetpgrp(fd).is_ok_and(|g| g != ours) {
                tracing::debug!("taking the terminal back from the child's process group");
                let _ = tcsetpgrp(fd, ours);
            }
        });
    }
}
