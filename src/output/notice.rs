//! procrun's own messages as typed events. The supervisor decides them;
//! the printer renders them, as a line under `system` or as a JSON record.
//!
//! Its unit tests are at the end; the code itself is about 330 lines.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::outcome::{Outcome, signal_name};
use crate::policy::format_seconds as seconds;

/// The stable identity of one instance for the lifetime of a run (`web.3`
/// keeps its key through restarts). Keys are never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key(pub u32);

impl Key {
    /// As an index into a table of instances.
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// What the printer needs to know of an instance to show its lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ident {
    /// Its key.
    pub key: Key,
    /// `web.3`.
    pub name: String,
    /// `web`.
    pub type_name: String,
    /// Position of the type in the Procfile: decides the colour.
    pub type_index: usize,
    /// `3`.
    pub number: u32,
}

/// What happens after an instance ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Nothing: it is done (or procrun is stopping anyway).
    Nothing,
    /// It is started again after `delay`; this is restart `count` of a
    /// streak limited to `max`.
    Restart {
        /// The wait before the restart.
        delay: Duration,
        /// Which consecutive restart this is (1-based).
        count: u32,
        /// The limit of consecutive restarts, if any.
        max: Option<u32>,
    },
}

/// One of procrun's own messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Notice {
    /// An instance started.
    Started {
        /// Which.
        key: Key,
        /// Its pid (its process group id).
        pid: Option<u32>,
        /// Its PORT, unless its type gets none.
        port: Option<u16>,
    },
    /// An instance could not be started.
    SpawnFailed {
        /// Which.
        key: Key,
        /// Why (the operating system's reason).
        reason: String,
        /// The command that was to run.
        command: String,
        /// Where.
        cwd: String,
    },
    /// An instance ended.
    Exited {
        /// Which.
        key: Key,
        /// How.
        outcome: Outcome,
        /// What follows.
        next: Next,
    },
    /// An instance kept ending too soon after starting: it is not restarted.
    Failed {
        /// Which.
        key: Key,
        /// How many restarts in a row it had.
        restarts: u32,
        /// Runs shorter than this counted.
        min_uptime: Duration,
    },
    /// procrun received a signal that stops it.
    Received {
        /// The signal.
        signal: i32,
    },
    /// The stop signal came again while stopping: kill at once.
    ReceivedAgain {
        /// The signal.
        signal: i32,
    },
    /// A signal procrun passes on was sent to every running instance.
    Forwarded {
        /// The signal.
        signal: Signal,
        /// To how many instances.
        count: usize,
    },
    /// procrun is stopping these instances.
    Stopping {
        /// Each with its stop signal and the time it gets before SIGKILL.
        targets: Vec<(Key, Signal, Duration)>,
    },
    /// These instances did not stop in time and get SIGKILL.
    Killing {
        /// Which.
        targets: Vec<Key>,
    },
    /// Something already listens on an instance's PORT.
    PortInUse {
        /// Which instance.
        key: Key,
        /// The port.
        port: u16,
    },
    /// Descendants survived SIGKILL; procrun leaves them.
    GaveUp,
    /// Ctrl-Z (SIGTSTP): every instance and procrun are stopped.
    Suspended {
        /// How many instances.
        count: usize,
    },
    /// procrun was continued, and so is every instance.
    Resumed {
        /// How many instances.
        count: usize,
    },
    /// An instance passed its readiness check.
    Ready {
        /// Which.
        key: Key,
        /// The check's kind: `port`, `http`, `log`, `log_regex`, `exec`.
        kind: &'static str,
        /// What succeeded: `port 5432 accepts connections`.
        what: String,
        /// How long after its start.
        after: Duration,
    },
    /// An instance was not ready within its timeout: it has failed.
    NotReady {
        /// Which.
        key: Key,
        /// The check's kind.
        kind: &'static str,
        /// What never succeeded.
        what: String,
        /// Its `ready_timeout`.
        timeout: Duration,
    },
    /// An instance waits for the types it starts after.
    Waiting {
        /// Which.
        key: Key,
        /// The types not ready yet.
        on: Vec<String>,
    },
    /// An instance is never started: a one-shot it starts after failed.
    Skipped {
        /// Which.
        key: Key,
        /// The instance that failed.
        dependency: Key,
        /// How it ended; `None`: it was skipped itself.
        outcome: Option<Outcome>,
    },
    /// A control client asked for something (`procrun restart web`).
    Control {
        /// What, e.g. `restart of web.1, web.2`.
        action: String,
        /// The client's pid, when the socket told it.
        from: Option<u32>,
    },
    /// `procrun logs -f` read too slowly: entries were left out.
    Dropped {
        /// How many.
        count: u64,
    },
}

impl Notice {
    /// The instances the notice is about (none: procrun as a whole).
    pub fn keys(&self) -> Vec<Key> {
        match self {
            Notice::Started { key, .. }
            | Notice::SpawnFailed { key, .. }
            | Notice::Exited { key, .. }
            | Notice::Failed { key, .. }
            | Notice::PortInUse { key, .. }
            | Notice::Ready { key, .. }
            | Notice::NotReady { key, .. }
            | Notice::Waiting { key, .. } => vec![*key],
            Notice::Skipped {
                key, dependency, ..
            } => vec![*key, *dependency],
            Notice::Stopping { targets } => targets.iter().map(|t| t.0).collect(),
            Notice::Killing { targets } => targets.clone(),
            Notice::Received { .. }
            | Notice::ReceivedAgain { .. }
            | Notice::Forwarded { .. }
            | Notice::GaveUp
            | Notice::Suspended { .. }
            | Notice::Resumed { .. }
            | Notice::Control { .. }
            | Notice::Dropped { .. } => Vec::new(),
        }
    }

    /// The notice as the text shown under `system`; `name` resolves keys.
    pub fn text(&self, name: &dyn Fn(Key) -> String) -> String {
        match self {
            Notice::Started { key, pid, port } => {
                let pid = pid.map_or_else(|| "?".to_owned(), |p| p.to_string());
                match port {
                    Some(port) => format!("{} started with pid {pid} (PORT={port})", name(*key)),
                    None => format!("{} started with pid {pid}", name(*key)),
                }
            }
            Notice::SpawnFailed {
                key,
                reason,
                command,
                cwd,
            } => format!(
                "{} failed to start: {reason} (command `{command}` in {cwd})",
                name(*key)
            ),
            Notice::Exited { key, outcome, next } => match next {
                Next::Nothing => format!("{} {}", name(*key), outcome.describe()),
                Next::Restart { delay, count, max } => format!(
                    "{} {}; restarting in {} (restart {count}{})",
                    name(*key),
                    outcome.describe(),
                    seconds(*delay),
                    max.map_or_else(String::new, |m| format!(" of {m}"))
                ),
            },
            Notice::Failed {
                key,
                restarts,
                min_uptime,
            } => format!(
                "{} failed: {restarts} restart{} in a row ran less than {}",
                name(*key),
                if *restarts == 1 { "" } else { "s" },
                seconds(*min_uptime)
            ),
            Notice::Received { signal } => format!("{} received", signal_name(*signal)),
            Notice::ReceivedAgain { signal } => {
                format!("{} received again: killing at once", signal_name(*signal))
            }
            Notice::Forwarded { signal, count } => format!(
                "{} received: forwarded to {count} process{}",
                signal.as_str(),
                plural_es(*count)
            ),
            Notice::Stopping { targets } => stopping_text(targets, name),
            Notice::Killing { targets } => {
                let names: Vec<String> = targets.iter().map(|k| name(*k)).collect();
                format!("sending SIGKILL to {}", names.join(", "))
            }
            Notice::PortInUse { key, port } => format!(
                "warning: PORT {port} of {} is already in use on this machine",
                name(*key)
            ),
            Notice::GaveUp => "processes still not gone after SIGKILL; giving up on them".into(),
            Notice::Suspended { count } => format!(
                "SIGTSTP received: suspending {count} process{} and procrun (fg resumes them)",
                plural_es(*count)
            ),
            Notice::Resumed { count } => {
                format!("continued: resuming {count} process{}", plural_es(*count))
            }
            Notice::Ready {
                key, what, after, ..
            } => format!(
                "{} is ready ({what}) after {:.2}s",
                name(*key),
                after.as_secs_f64()
            ),
            Notice::NotReady {
                key, what, timeout, ..
            } => format!(
                "{} not ready within {} (waited until {what}): it has failed",
                name(*key),
                seconds(*timeout)
            ),
            Notice::Waiting { key, on } => format!("{} waits for {}", name(*key), on.join(", ")),
            Notice::Skipped {
                key,
                dependency,
                outcome,
            } => match outcome {
                Some(outcome) => format!(
                    "{} skipped: {} {}",
                    name(*key),
                    name(*dependency),
                    outcome.describe()
                ),
                None => format!("{} skipped: {} was skipped", name(*key), name(*dependency)),
            },
            Notice::Control { action, from } => match from {
                Some(pid) => format!("{action} requested from pid {pid}"),
                None => format!("{action} requested"),
            },
            Notice::Dropped { count } => format!(
                "{count} entr{} left out here: this client read too slowly",
                if *count == 1 { "y" } else { "ies" }
            ),
        }
    }
}

fn plural_es(n: usize) -> &'static str {
    if n == 1 { "" } else { "es" }
}

/// `stopping 2 processes: SIGTERM, then SIGKILL after 5s` when every
/// target stops alike, else one clause per kind of stop.
fn stopping_text(targets: &[(Key, Signal, Duration)], name: &dyn Fn(Key) -> String) -> String {
    let n = targets.len();
    let mut kinds: Vec<(Signal, Duration, Vec<Key>)> = Vec::new();
    for &(key, signal, timeout) in targets {
        match kinds
            .iter_mut()
            .find(|(s, t, _)| *s == signal && *t == timeout)
        {
            Some((_, _, keys)) => keys.push(key),
            None => kinds.push((signal, timeout, vec![key])),
        }
    }
    if let [(signal, timeout, _)] = kinds.as_slice() {
        return format!(
            "stopping {n} process{}: {}, then SIGKILL after {timeout:?}",
            plural_es(n),
            signal.as_str()
        );
    }
    let clauses: Vec<String> = kinds
        .iter()
        .map(|(signal, timeout, keys)| {
            let names: Vec<String> = keys.iter().map(|k| name(*k)).collect();
            format!(
                "{} to {} (SIGKILL after {timeout:?})",
                signal.as_str(),
                names.join(", ")
            )
        })
        .collect();
    format!(
        "stopping {n} process{}: {}",
        plural_es(n),
        clauses.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(k: Key) -> String {
        ["web.1", "worker.1", "db.1"][k.index()].to_owned()
    }

    #[test]
    fn texts_match_what_procrun_always_printed() {
        let t = |n: Notice| n.text(&name);
        assert_eq!(
            t(Notice::Started {
                key: Key(0),
                pid: Some(42),
                port: Some(5000)
            }),
            "web.1 started with pid 42 (PORT=5000)"
        );
        assert_eq!(
            t(Notice::Exited {
                key: Key(1),
                outcome: Outcome::Killed(15),
                next: Next::Nothing
            }),
            "worker.1 killed by SIGTERM"
        );
        assert_eq!(
            t(Notice::Stopping {
                targets: vec![
                    (Key(0), Signal::SIGTERM, Duration::from_secs(5)),
                    (Key(1), Signal::SIGTERM, Duration::from_secs(5))
                ]
            }),
            "stopping 2 processes: SIGTERM, then SIGKILL after 5s"
        );
        assert_eq!(
            t(Notice::Forwarded {
                signal: Signal::SIGUSR1,
                count: 1
            }),
            "SIGUSR1 received: forwarded to 1 process"
        );
        assert_eq!(
            t(Notice::ReceivedAgain { signal: 2 }),
            "SIGINT received again: killing at once"
        );
        assert_eq!(
            t(Notice::Killing {
                targets: vec![Key(0), Key(2)]
            }),
            "sending SIGKILL to web.1, db.1"
        );
    }

    #[test]
    fn restart_texts() {
        let t = |n: Notice| n.text(&name);
        assert_eq!(
            t(Notice::Exited {
                key: Key(1),
                outcome: Outcome::Exited(1),
                next: Next::Restart {
                    delay: Duration::from_secs(2),
                    count: 2,
                    max: Some(10)
                }
            }),
            "worker.1 exited with code 1; restarting in 2s (restart 2 of 10)"
        );
        assert_eq!(
            t(Notice::Failed {
                key: Key(1),
                restarts: 10,
                min_uptime: Duration::from_secs(10)
            }),
            "worker.1 failed: 10 restarts in a row ran less than 10s"
        );
        assert_eq!(
            t(Notice::Stopping {
                targets: vec![
                    (Key(2), Signal::SIGINT, Duration::from_secs(10)),
                    (Key(0), Signal::SIGTERM, Duration::from_millis(500)),
                ]
            }),
            "stopping 2 processes: SIGINT to db.1 (SIGKILL after 10s); SIGTERM to web.1 (SIGKILL after 500ms)"
        );
    }

    #[test]
    fn readiness_texts() {
        let t = |n: Notice| n.text(&name);
        assert_eq!(
            t(Notice::Ready {
                key: Key(2),
                kind: "port",
                what: "port 5432 accepts connections".into(),
                after: Duration::from_millis(420),
            }),
            "db.1 is ready (port 5432 accepts connections) after 0.42s"
        );
        assert_eq!(
            t(Notice::Waiting {
                key: Key(0),
                on: vec!["db".into(), "migrate".into()]
            }),
            "web.1 waits for db, migrate"
        );
        assert_eq!(
            t(Notice::Skipped {
                key: Key(0),
                dependency: Key(1),
                outcome: Some(Outcome::Exited(1))
            }),
            "web.1 skipped: worker.1 exited with code 1"
        );
        assert_eq!(
            t(Notice::NotReady {
                key: Key(2),
                kind: "port",
                what: "port 5432 accepts connections".into(),
                timeout: Duration::from_secs(60),
            }),
            "db.1 not ready within 60s (waited until port 5432 accepts connections): it has failed"
        );
    }

    #[test]
    fn seconds_read_naturally() {
        assert_eq!(seconds(Duration::from_secs(2)), "2s");
        assert_eq!(seconds(Duration::from_millis(500)), "0.5s");
        assert_eq!(seconds(Duration::from_millis(1250)), "1.25s");
        assert_eq!(seconds(Duration::from_millis(10)), "0.01s");
        assert_eq!(seconds(Duration::ZERO), "0s");
    }
}
