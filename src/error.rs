//! procrun's errors, each with the exit code it ends procrun with (see
//! [`crate::exit_code`]).

use crate::diagnostic::Diagnostic;
use crate::exit_code::ExitCode;

/// An error that ends a procrun command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Problems in the user's input or command, each located, rendered on
    /// stderr as they are.
    #[error("invalid configuration")]
    Diagnostics(Diagnostics),
    /// An operating-system error while doing `context`.
    #[error("{context}: {}", io_reason(.source))]
    Io {
        /// What procrun was doing.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// The diagnostics of an [`Error::Diagnostics`] and the exit code they end
/// procrun with. Derefs to the list.
#[derive(Debug)]
pub struct Diagnostics {
    /// The problems, in the order they are shown.
    pub list: Vec<Diagnostic>,
    /// [`ExitCode::USAGE`] for invalid input; `run`'s
    /// [`ExitCode::NOT_FOUND`] or [`ExitCode::NOT_EXECUTABLE`] for a command
    /// it cannot start.
    pub code: i32,
}

impl std::ops::Deref for Diagnostics {
    type Target = [Diagnostic];

    fn deref(&self) -> &[Diagnostic] {
        &self.list
    }
}

impl Error {
    /// The exit code this error ends procrun with.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Diagnostics(d) => d.code,
            Error::Io { .. } => ExitCode::FAILURE,
        }
    }

    /// Wraps an I/O error with what procrun was doing.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// One problem that ends procrun with `code` instead of
    /// [`ExitCode::USAGE`].
    pub fn with_code(diagnostic: Diagnostic, code: i32) -> Self {
        Error::Diagnostics(Diagnostics {
            list: vec![diagnostic],
            code,
        })
    }
}

impl From<Vec<Diagnostic>> for Error {
    fn from(list: Vec<Diagnostic>) -> Self {
        Error::Diagnostics(Diagnostics {
            list,
            code: ExitCode::USAGE,
        })
    }
}

impl From<Diagnostic> for Error {
    fn from(d: Diagnostic) -> Self {
        vec![d].into()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_carry_their_exit_code() {
        assert_eq!(
            Error::from(Diagnostic::error("bad")).exit_code(),
            ExitCode::USAGE
        );
        let not_found = Error::with_code(Diagnostic::error("nope"), ExitCode::NOT_FOUND);
        assert_eq!(not_found.exit_code(), 127);
        let io = Error::io("x", std::io::Error::other("y"));
        assert_eq!(io.exit_code(), ExitCode::FAILURE);
    }
}
