//! procrun's errors and exit codes.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | procrun failed at run time (an I/O error such as an unwritable output directory) |
//! | 2 | invalid input: a bad flag, Procfile, env file, formation or port |
//! | N | `start`: the code of the first process that exited; `run`: the command's code |
//! | 128+N | `start`/`run`: stopped by, or the process died from, signal N (130 after Ctrl-C) |
//! | 126, 127 | `run`: the command is not executable / not found |

use crate::diagnostic::Diagnostic;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: procrun itself failed while running.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: invalid usage or configuration.
pub const EXIT_USAGE: i32 = 2;

/// An error that ends a procrun command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in the user's input, each located.
    #[error("invalid configuration")]
    Diagnostics(Vec<Diagnostic>),
    /// An operating-system error while doing `context`.
    #[error("{context}: {}", io_reason(.source))]
    Io {
        /// What procrun was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl Error {
    /// The exit code this error ends procrun with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Diagnostics(_) => EXIT_USAGE,
            Error::Io { .. } => EXIT_FAILURE,
        }
    }

    /// Wraps an I/O error with what procrun was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

impl From<Vec<Diagnostic>> for Error {
    fn from(d: Vec<Diagnostic>) -> Self {
        Error::Diagnostics(d)
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        Error::Diagnostics(vec![d])
    }
}

/// An I/O error's reason without Rust's `(os error N)` suffix.
pub fn io_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}
