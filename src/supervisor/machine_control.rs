//! The state machine's answers to control requests (`procrun restart`,
//! `stop`, `scale`, `signal`, `quit`), and what `procrun ps` reads of it.
//! Part of [`super`], in its own file for length only.
//!
//! - a restart stops a running instance with its own stop signal and
//!   timeout and starts it again once it ended (same key, so the same name,
//!   PORT and PS); a waiting, stopped or ended one is started at once. Its
//!   restart streak starts over: a user's restart is not a crash;
//! - a stopped instance is held: never restarted, and its end does not stop
//!   the app; the app ends once no instance is left running;
//! - scaling adds instances (their specs come from the plan, through
//!   [`Machine::add`]) or holds and hides the highest-numbered ones.

use std::time::Instant;

use nix::sys::signal::Signal;

use super::{Action, Control, Machine, State, Stop};
use crate::outcome::Outcome;
use crate::output::notice::{Key, Notice};
use crate::plan::ProcessSpec;
use crate::readiness::Check;

/// An instance as `procrun ps` shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Its key.
    pub key: Key,
    /// Where it is: `starting`, `running`, `ready`, `backoff`, `stopping`,
    /// `stopped`, `exited`, `failed` or `skipped`.
    pub state: &'static str,
    /// Its pid while it runs.
    pub pid: Option<u32>,
    /// When its current run started (while it runs).
    pub since: Option<Instant>,
    /// How often it was restarted.
    pub restarts: u32,
    /// How its last run ended, once it ended.
    pub last: Option<Outcome>,
}

impl Machine {
    /// Adds instance `spec` (scaling up), not started yet; returns its key.
    /// Starting it is up to [`Control::Scale`].
    pub fn add(&mut self, spec: ProcessSpec) -> Key {
        let key = Key(self.instances.len() as u32);
        let mut inst = super::Instance::new(spec);
        inst.state = State::Ended;
        inst.held = true;
        inst.removed = true;
        if let Some(levels) = &mut self.levels {
            let level = self
                .instances
                .iter()
                .position(|i| i.spec.type_name == inst.spec.type_name)
                .map_or(0, |i| levels[i]);
            levels.push(level);
        }
        self.instances.push(inst);
        key
    }

    /// The instance `type_name.number`, if it exists (shown or not).
    pub fn find(&self, type_name: &str, number: u32) -> Option<Key> {
        self.instances
            .iter()
            .position(|i| i.spec.type_name == type_name && i.spec.number == number)
            .map(|i| Key(i as u32))
    }

    /// The instances `procrun ps` shows (not those scaled away), in order.
    pub fn shown(&self) -> impl Iterator<Item = Key> + '_ {
        self.instances
            .iter()
            .enumerate()
            .filter(|(_, i)| !i.removed)
            .map(|(i, _)| Key(i as u32))
    }

    /// How often instance `key` was started.
    pub fn runs(&self, key: Key) -> u32 {
        self.instances[key.index()].runs
    }

    /// Whether instance `key` is waiting for the types it starts after.
    pub fn waits(&self, key: Key) -> bool {
        let inst = &self.instances[key.index()];
        inst.state == State::Pending && inst.announced
    }

    /// What `procrun ps` shows of instance `key`.
    pub fn status(&self, key: Key) -> Status {
        let inst = &self.instances[key.index()];
        let (state, pid, since) = match inst.state {
            State::Pending | State::Spawning => ("starting", None, None),
            State::Running { pid, since } => {
                let checked = inst.spec.readiness.check != Check::Started;
                let state = if checked && inst.ready {
                    "ready"
                } else {
                    "running"
                };
                (state, pid, Some(since))
            }
            State::Stopping { pid, .. } => ("stopping", pid, inst.started_at),
            State::Waiting { .. } => ("backoff", None, None),
            State::Ended => {
                let state = if inst.skipped {
                    "skipped"
                } else if inst.held || inst.stopped {
                    "stopped"
                } else if inst.last == Some(Outcome::Exited(0)) {
                    "exited"
                } else {
                    "failed"
                };
                (state, None, None)
            }
        };
        Status {
            key,
            state,
            pid,
            since,
            restarts: inst.restarts,
            last: inst.last,
        }
    }

    /// Handles a control request.
    pub(super) fn control(
        &mut self,
        request: Control,
        from: Option<u32>,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        if self.stop.is_some() {
            // Stopping anyway: nothing to start, stop or scale.
            return;
        }
        let action = self.describe(&request);
        out.push(Action::Notice(Notice::Control { action, from }));
        match request {
            Control::Restart(keys) => {
                let mut stopping = Vec::new();
                for key in keys {
                    self.restart(key, &mut stopping, out);
                }
                self.stop_keys(&stopping, now, out);
            }
            Control::Stop(keys) => self.hold(&keys, now, out),
            Control::Scale { type_name, count } => {
                let mut up = Vec::new();
                let mut down = Vec::new();
                for (i, inst) in self.instances.iter().enumerate() {
                    if inst.spec.type_name != type_name {
                        continue;
                    }
                    let key = Key(i as u32);
                    if inst.spec.number <= count {
                        if inst.removed {
                            up.push(key);
                        }
                    } else if !inst.removed {
                        down.push(key);
                    }
                }
                for &key in &up {
                    let inst = &mut self.instances[key.index()];
                    inst.removed = false;
                    let mut ignored = Vec::new();
                    self.restart(key, &mut ignored, out);
                }
                for &key in &down {
                    self.instances[key.index()].removed = true;
                }
                self.hold(&down, now, out);
            }
            Control::Signal(keys, signal) => {
                for key in keys {
                    if matches!(
                        self.instances[key.index()].state,
                        State::Running { .. } | State::Stopping { .. }
                    ) {
                        out.push(Action::Signal(key, signal));
                    }
                }
            }
            Control::Quit => self.begin_stop(Stop::Signal(libc::SIGTERM), now, out),
        }
    }

    /// The request as `start`'s output names it: `restart of web.1, web.2`.
    fn describe(&self, request: &Control) -> String {
        let names = |keys: &[Key]| {
            keys.iter()
                .map(|k| self.instances[k.index()].spec.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        match request {
            Control::Restart(keys) => format!("restart of {}", names(keys)),
            Control::Stop(keys) => format!("stop of {}", names(keys)),
            Control::Scale { type_name, count } => format!("scale of {type_name} to {count}"),
            Control::Signal(keys, signal) => format!("{} to {}", signal.as_str(), names(keys)),
            Control::Quit => "quit".to_owned(),
        }
    }

    /// Instance `key` is to run again: a running one is stopped first (its
    /// key goes to `stopping`), any other is started as soon as what it
    /// starts after allows.
    fn restart(&mut self, key: Key, stopping: &mut Vec<Key>, out: &mut Vec<Action>) {
        let inst = &mut self.instances[key.index()];
        if inst.removed {
            return;
        }
        inst.held = false;
        match inst.state {
            State::Running { .. } => {
                inst.restart_asked = true;
                stopping.push(key);
            }
            State::Stopping { .. } => inst.restart_asked = true,
            State::Waiting { .. } | State::Ended => {
                if inst.state == State::Ended && inst.runs > 0 {
                    inst.restarts += 1;
                }
                inst.state = State::Pending;
                inst.streak = 0;
                inst.skipped = false;
                inst.announced = false;
                inst.timed_out = false;
            }
            State::Pending | State::Spawning => {}
        }
        let _ = out;
    }

    /// Holds these instances: running ones get their stop signal, waiting
    /// ones end at once.
    fn hold(&mut self, keys: &[Key], now: Instant, out: &mut Vec<Action>) {
        let mut stopping = Vec::new();
        for &key in keys {
            let inst = &mut self.instances[key.index()];
            inst.held = true;
            inst.restart_asked = false;
            match inst.state {
                State::Running { .. } => stopping.push(key),
                State::Pending | State::Waiting { .. } => inst.state = State::Ended,
                // Stopped once it reports that it started.
                State::Spawning | State::Stopping { .. } | State::Ended => {}
            }
        }
        self.stop_keys(&stopping, now, out);
        self.end_if_all_ended(now, out);
    }

    /// Sends these running instances their stop signal, with one notice.
    fn stop_keys(&mut self, keys: &[Key], now: Instant, out: &mut Vec<Action>) {
        if keys.is_empty() {
            return;
        }
        let mut targets = Vec::new();
        let mut signals = Vec::new();
        for &key in keys {
            self.stop_instance(key, now, &mut targets, &mut signals);
        }
        if !targets.is_empty() {
            out.push(Action::Notice(Notice::Stopping { targets }));
        }
        out.append(&mut signals);
    }
}

/// A signal a client may send: its name with or without `SIG`, or its
/// number.
pub fn parse_signal(text: &str) -> Option<Signal> {
    let upper = text.trim().to_ascii_uppercase();
    if let Ok(n) = upper.parse::<i32>() {
        return Signal::try_from(n).ok();
    }
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse().ok()
}
