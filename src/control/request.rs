//! What the control server asks the dispatcher, and what it answers: the
//! only way from a client into the running supervisor. The dispatcher
//! resolves names and applies requests to the state machine; nothing else
//! of the supervisor is reachable from a socket.

use std::time::SystemTime;

use nix::sys::signal::Signal;
use tokio::sync::oneshot;

use crate::control::wire::WireError;
use crate::output::notice::Key;

/// A request for the dispatcher, with where to send the answer.
#[derive(Debug)]
pub struct Request {
    /// What.
    pub command: Command,
    /// The client's pid (from the socket's peer credentials).
    pub from: Option<u32>,
    /// The answer.
    pub reply: oneshot::Sender<Result<Reply, WireError>>,
}

/// What a client asks for. Names are types (`web`: every instance) or
/// instances (`web.2`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// Every instance's status.
    Ps,
    /// Restart these (none: every instance); returns once they started.
    Restart(Vec<String>),
    /// Stop these; returns once they ended.
    Stop(Vec<String>),
    /// Run this many instances of each type; returns once they settled.
    Scale(Vec<(String, u32)>),
    /// Send a signal to these.
    Signal(Signal, Vec<String>),
    /// Stop the app; returns once `start` is done.
    Quit,
    /// The keys these names select (none: every instance), for `logs`.
    Select(Vec<String>),
    /// The terminal of the one instance this name selects, for `attach`
    /// and `send` (named by what: `connect`, `send`).
    Terminal {
        /// `web.1`, or a type with one instance.
        name: String,
        /// `connect` or `send`, for the notice in `start`'s output.
        what: &'static str,
    },
}

/// An answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// The instances concerned, as they are now.
    Instances(Vec<InstanceStatus>),
    /// The keys selected.
    Keys(Vec<Key>),
    /// `start` finished with this exit code.
    Quit(i32),
    /// The instance's terminal.
    Terminal(TerminalRef),
}

/// A running tty instance's terminal, handed to the control server: the
/// only part of an instance a client reaches, and only to read its output,
/// type into it and set its window size.
#[derive(Clone, Debug)]
pub struct TerminalRef(pub std::sync::Arc<crate::supervisor::pty::Terminal>);

impl PartialEq for TerminalRef {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for TerminalRef {}

/// One instance as `ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceStatus {
    /// Its key.
    pub key: Key,
    /// `web.2`.
    pub name: String,
    /// `web`.
    pub type_name: String,
    /// `2`.
    pub number: u32,
    /// While it runs.
    pub pid: Option<u32>,
    /// `starting`, `running`, `ready`, `backoff`, `stopping`, `stopped`,
    /// `exited`, `failed` or `skipped`.
    pub state: &'static str,
    /// Its PORT, unless its type gets none.
    pub port: Option<u16>,
    /// How often it was restarted.
    pub restarts: u32,
    /// When its current run started.
    pub started_at: Option<SystemTime>,
    /// How its last run ended (128+N for signal N), once it ended.
    pub exit_code: Option<i32>,
    /// Whether it runs on a terminal of its own (`procrun connect` reaches
    /// it).
    pub tty: bool,
}

/// The `no_match` error for `name`, listing what exists.
pub fn no_match(name: &str, known: Vec<String>) -> WireError {
    WireError {
        code: "no_match".into(),
        message: format!("no process type or instance is named `{name}`"),
        known,
    }
}
