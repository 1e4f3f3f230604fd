//! What `ps` says of the app (docs/control.md), as the dashboard reads it:
//! the instances, the process types, and each state with a symbol that
//! reads without colour. Fields the dashboard does not know are ignored.

use std::time::{Duration, SystemTime};

use serde::Deserialize;

/// An instance as `ps` reports it (docs/control.md); other fields ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Instance {
    /// `web.2`.
    pub name: String,
    /// `web`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// While it runs.
    pub pid: Option<u32>,
    /// `running`, `stopped`, …
    pub state: String,
    /// Its PORT.
    pub port: Option<u16>,
    /// How often it was restarted.
    pub restarts: u32,
    /// RFC 3339, while it runs.
    pub started_at: Option<String>,
    /// How its last run ended.
    pub exit_code: Option<i32>,
    /// Since the previous `ps`.
    pub cpu_percent: Option<f64>,
    /// Resident memory.
    pub rss_bytes: Option<u64>,
    /// It runs on a terminal of its own (`start --tty`).
    pub tty: bool,
}

impl Instance {
    /// Its state.
    pub fn state(&self) -> State {
        State::parse(&self.state)
    }

    /// How long its current run has lasted.
    pub fn uptime(&self, now: SystemTime) -> Option<Duration> {
        let started = humantime::parse_rfc3339(self.started_at.as_deref()?).ok()?;
        Some(now.duration_since(started).unwrap_or_default())
    }
}

/// A process type and how many instances it has.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct TypeCount {
    /// `web`.
    pub name: String,
    /// Its instances.
    pub count: u32,
}

/// The `ps` result the dashboard reads.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Ps {
    /// Every instance shown.
    pub instances: Vec<Instance>,
    /// Every type (absent from an older procrun: then derived).
    pub types: Vec<TypeCount>,
}

/// An instance's state, with a symbol that reads without colour.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started yet, or waiting for what it starts after.
    Starting,
    /// Running.
    Running,
    /// Running, and its `ready` check passed.
    Ready,
    /// Waiting to be restarted.
    Backoff,
    /// Asked to stop.
    Stopping,
    /// Stopped by procrun or a user.
    Stopped,
    /// Ended with code 0.
    Exited,
    /// Ended otherwise.
    Failed,
    /// Never started.
    Skipped,
    /// A state this dashboard does not know.
    Unknown,
}

impl State {
    /// From `ps`'s word.
    pub fn parse(word: &str) -> State {
        match word {
            "starting" => State::Starting,
            "running" => State::Running,
            "ready" => State::Ready,
            "backoff" => State::Backoff,
            "stopping" => State::Stopping,
            "stopped" => State::Stopped,
            "exited" => State::Exited,
            "failed" => State::Failed,
            "skipped" => State::Skipped,
            _ => State::Unknown,
        }
    }

    /// One character that tells the states apart without colour.
    pub fn symbol(self) -> &'static str {
        match self {
            State::Starting => "◌",
            State::Running => "●",
            State::Ready => "✓",
            State::Backoff => "↻",
            State::Stopping => "◑",
            State::Stopped => "■",
            State::Exited => "○",
            State::Failed => "✗",
            State::Skipped => "–",
            State::Unknown => "?",
        }
    }

    /// Whether a process of it is alive (or about to be): what `stop` and
    /// quitting would end.
    pub fn is_live(self) -> bool {
        matches!(
            self,
            State::Starting | State::Running | State::Ready | State::Backoff | State::Stopping
        )
    }
}
