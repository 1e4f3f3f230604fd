//! The supervisor's decisions, as a pure state machine: every event (an
//! instance started, exited or could not start; a signal; the clock) goes
//! into [`Machine::handle`] with the current time, and what to do comes out
//! as [`Action`]s. Nothing here touches a process, the clock or the
//! terminal, so the policies (restart, backoff, can-die, stop signals and
//! timeouts) are tested with fake children and a fake clock (see the tests
//! at the end); [`super::dispatcher`] performs the actions.
//!
//! Lifecycle:
//! - instances are started one after the other, in plan order;
//! - an instance that ends is restarted if its policy says so (with a
//!   backoff that doubles per consecutive restart and resets after a run of
//!   `min_uptime`), until too many short runs in a row: then it has failed;
//! - an instance that ends for good stops everything unless it can die;
//!   then procrun ends when every instance has ended, with the code of the
//!   first one that failed;
//! - a stop (signal, closed stdout, an instance's end) sends every running
//!   instance its stop signal, SIGKILL after its stop timeout, cancels any
//!   pending restart at once; the stop signal again kills at once.
//!
//! It is one file on purpose: the states, the inputs and every transition
//! read together; its tests are in `machine_tests.rs`.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::exit_code::ExitCode;
use crate::outcome::Outcome;
use crate::output::notice::{Key, Next, Notice};
use crate::plan::ProcessSpec;
use crate::policy::Restart;

/// What happened, as the machine is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input {
    /// The instance asked for by [`Action::Spawn`] is running.
    Started {
        /// Which.
        key: Key,
        /// Its pid.
        pid: Option<u32>,
    },
    /// The instance asked for by [`Action::Spawn`] could not be started.
    SpawnFailed {
        /// Which.
        key: Key,
        /// Why.
        reason: String,
    },
    /// A running instance ended (its output has been delivered).
    Exited {
        /// Which.
        key: Key,
        /// How.
        outcome: Outcome,
    },
    /// procrun received a signal that stops it (SIGINT, SIGTERM, SIGHUP).
    Signal(i32),
    /// procrun received a signal it passes on (SIGUSR1, SIGUSR2).
    Forward(Signal),
    /// stdout can no longer be written: its reader went away.
    OutputClosed,
    /// Writing stdout failed (a full disk, an I/O error): procrun fails.
    OutputFailed,
    /// Every instance's task is gone without saying so (never expected).
    UnitsGone,
    /// Time passed: a deadline may be due.
    Tick,
}

/// What the effects layer is asked to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start this instance (its spec is [`Machine::spec`]) and report
    /// [`Input::Started`] or [`Input::SpawnFailed`].
    Spawn(Key),
    /// Send a signal to this instance's process group.
    Signal(Key, Signal),
    /// Send a signal to the descendants that left every instance's group:
    /// SIGTERM only to those outside a live group, SIGKILL to all.
    SignalStrays(Signal),
    /// Show one of procrun's messages.
    Notice(Notice),
}

/// Why procrun stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// An instance that cannot die ended (or failed) for good.
    Instance(Outcome),
    /// Every instance ended, each allowed to.
    AllEnded,
    /// procrun received this signal.
    Signal(i32),
    /// stdout was closed.
    OutputClosed,
    /// stdout could not be written.
    OutputFailed,
}

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Not started yet.
    Pending,
    /// Asked to start; waiting for the result.
    Spawning,
    /// Running since `since`.
    Running {
        /// Its pid.
        pid: Option<u32>,
        /// When it started.
        since: Instant,
    },
    /// Sent its stop signal; SIGKILL at `kill_at` (`None`: already sent).
    Stopping {
        /// Its pid.
        pid: Option<u32>,
        /// When it gets SIGKILL.
        kill_at: Option<Instant>,
    },
    /// Waiting to be restarted.
    Waiting {
        /// When.
        until: Instant,
    },
    /// Done for good.
    Ended,
}

/// One instance and its history.
#[derive(Debug)]
struct Instance {
    spec: ProcessSpec,
    state: State,
    /// Consecutive restarts since the last run of at least `min_uptime`.
    streak: u32,
    /// Every restart.
    restarts: u32,
}

/// The supervisor's state.
#[derive(Debug)]
pub struct Machine {
    instances: Vec<Instance>,
    stop: Option<Stop>,
    /// The first instance that ended for good with a non-zero code.
    first_failure: Option<Outcome>,
    /// When the descendants outside every group get SIGKILL.
    strays_kill_at: Option<Instant>,
    /// Everything got SIGKILL (a second stop signal).
    killed_all: bool,
}

impl Machine {
    /// A machine for these instances; their keys are their positions.
    pub fn new(specs: impl IntoIterator<Item = ProcessSpec>) -> Self {
        Machine {
            instances: specs
                .into_iter()
                .map(|spec| Instance {
                    spec,
                    state: State::Pending,
                    streak: 0,
                    restarts: 0,
                })
                .collect(),
            stop: None,
            first_failure: None,
            strays_kill_at: None,
            killed_all: false,
        }
    }

    /// Every instance's key and spec.
    pub fn specs(&self) -> impl Iterator<Item = (Key, &ProcessSpec)> {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (Key(i as u32), &inst.spec))
    }

    /// The spec of instance `key`.
    pub fn spec(&self, key: Key) -> &ProcessSpec {
        &self.instances[key.index()].spec
    }

    /// Where instance `key` is.
    pub fn state(&self, key: Key) -> State {
        self.instances[key.index()].state
    }

    /// How often instance `key` was restarted.
    pub fn restarts(&self, key: Key) -> u32 {
        self.instances[key.index()].restarts
    }

    /// Why procrun stops, once it does.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// The actions that begin the run.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.schedule(now, &mut out);
        out
    }

    /// Whether procrun is done: it is stopping and no instance is left.
    pub fn finished(&self) -> bool {
        self.stop.is_some()
            && self
                .instances
                .iter()
                .all(|i| matches!(i.state, State::Ended | State::Pending))
    }

    /// procrun's exit code, once finished.
    pub fn exit_code(&self) -> i32 {
        match self.stop {
            Some(Stop::Instance(outcome)) => outcome.exit_code(),
            Some(Stop::AllEnded) => self.first_failure.map_or(0, Outcome::exit_code),
            Some(Stop::Signal(n)) => ExitCode::SIGNAL_BASE + n,
            Some(Stop::OutputFailed) => ExitCode::FAILURE,
            Some(Stop::OutputClosed) | None => ExitCode::OK,
        }
    }

    /// The next time [`Input::Tick`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let instances = self.instances.iter().filter_map(|i| match i.state {
            State::Stopping { kill_at, .. } => kill_at,
            State::Waiting { until } => Some(until),
            _ => None,
        });
        instances.chain(self.strays_kill_at).min()
    }

    /// Decides what follows `input` at time `now`.
    pub fn handle(&mut self, input: Input, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Started { key, pid } => {
                let inst = &mut self.instances[key.index()];
                if inst.state == State::Spawning {
                    inst.state = State::Running { pid, since: now };
                    // A command that sets PORT itself gets that one.
                    let own = crate::shell::leading_assignments(&inst.spec.command)
                        .into_iter()
                        .find(|(name, _)| *name == "PORT")
                        .and_then(|(_, value)| crate::plan::parse_port(value));
                    let port = own.or(inst.spec.policy.port.then_some(inst.spec.port));
                    out.push(Action::Notice(Notice::Started { key, pid, port }));
                    if self.stop.is_some() {
                        // Stopped while it was being started: stop it too.
                        self.stop_instance(key, now, &mut Vec::new(), &mut out);
                    }
                }
            }
            Input::SpawnFailed { key, reason } => {
                let inst = &mut self.instances[key.index()];
                if inst.state == State::Spawning {
                    out.push(Action::Notice(Notice::SpawnFailed {
                        key,
                        reason,
                        command: inst.spec.command.clone(),
                        cwd: inst.spec.cwd.display().to_string(),
                    }));
                    inst.state = State::Running {
                        pid: None,
                        since: now,
                    };
                    self.ended(key, Outcome::FailedToStart, now, &mut out, false);
                }
            }
            Input::Exited { key, outcome } => self.ended(key, outcome, now, &mut out, true),
            Input::Signal(signal) => {
                if self.stop.is_none() {
                    out.push(Action::Notice(Notice::Received { signal }));
                    self.begin_stop(Stop::Signal(signal), now, &mut out);
                } else if !self.killed_all {
                    out.push(Action::Notice(Notice::ReceivedAgain { signal }));
                    self.kill_all(&mut out);
                }
            }
            Input::Forward(signal) => {
                let mut count = 0;
                for (i, inst) in self.instances.iter().enumerate() {
                    if matches!(inst.state, State::Running { .. } | State::Stopping { .. }) {
                        out.push(Action::Signal(Key(i as u32), signal));
                        count += 1;
                    }
                }
                out.push(Action::Notice(Notice::Forwarded { signal, count }));
            }
            Input::OutputClosed => self.begin_stop(Stop::OutputClosed, now, &mut out),
            Input::OutputFailed => {
                // The output is lost either way: it must not pass for a
                // success, nor for one of the children's codes.
                if self.stop.is_none() {
                    self.begin_stop(Stop::OutputFailed, now, &mut out);
                } else {
                    self.stop = Some(Stop::OutputFailed);
                }
            }
            Input::UnitsGone => {
                for inst in &mut self.instances {
                    inst.state = State::Ended;
                }
                self.begin_stop(Stop::OutputClosed, now, &mut out);
            }
            Input::Tick => self.tick(now, &mut out),
        }
        self.schedule(now, &mut out);
        out
    }

    /// Starts the next pending instance, unless one is being started.
    fn schedule(&mut self, _now: Instant, out: &mut Vec<Action>) {
        if self.stop.is_some() || self.instances.iter().any(|i| i.state == State::Spawning) {
            return;
        }
        if let Some(i) = self
            .instances
            .iter()
            .position(|i| i.state == State::Pending)
        {
            self.instances[i].state = State::Spawning;
            out.push(Action::Spawn(Key(i as u32)));
        }
    }

    /// Instance `key` ended with `outcome`; `ran` is false when it never
    /// started.
    fn ended(
        &mut self,
        key: Key,
        outcome: Outcome,
        now: Instant,
        out: &mut Vec<Action>,
        ran: bool,
    ) {
        let inst = &mut self.instances[key.index()];
        let since = match inst.state {
            State::Stopping { .. } => {
                // procrun asked it to stop: never a failure, never restarted.
                inst.state = State::Ended;
                out.push(Action::Notice(Notice::Exited {
                    key,
                    outcome,
                    next: Next::Nothing,
                }));
                return;
            }
            State::Running { since, .. } => since,
            _ => return,
        };
        let policy = inst.spec.policy;
        let failure = !matches!(outcome, Outcome::Exited(0));
        let restart = match policy.restart {
            Restart::No => false,
            Restart::OnFailure => failure,
            Restart::Always => true,
        };
        if restart && self.stop.is_none() {
            if ran && now.saturating_duration_since(since) >= policy.min_uptime {
                inst.streak = 0;
            }
            if policy.max_restarts.is_none_or(|max| inst.streak < max) {
                inst.streak += 1;
                inst.restarts += 1;
                let delay = policy.backoff.delay(inst.streak);
                inst.state = State::Waiting { until: now + delay };
                out.push(Action::Notice(Notice::Exited {
                    key,
                    outcome,
                    next: Next::Restart {
                        delay,
                        count: inst.streak,
                        max: policy.max_restarts,
                    },
                }));
                return;
            }
            out.push(Action::Notice(Notice::Exited {
                key,
                outcome,
                next: Next::Nothing,
            }));
            out.push(Action::Notice(Notice::Failed {
                key,
                restarts: inst.streak,
                min_uptime: policy.min_uptime,
            }));
        } else {
            out.push(Action::Notice(Notice::Exited {
                key,
                outcome,
                next: Next::Nothing,
            }));
        }
        inst.state = State::Ended;
        if outcome.exit_code() != 0 && self.first_failure.is_none() {
            self.first_failure = Some(outcome);
        }
        if !policy.can_die {
            self.begin_stop(Stop::Instance(outcome), now, out);
        } else if self.instances.iter().all(|i| i.state == State::Ended) {
            self.begin_stop(Stop::AllEnded, now, out);
        }
    }

    /// Stop signals to every running instance, SIGKILL after each one's
    /// timeout; pending starts and restarts are cancelled.
    fn begin_stop(&mut self, reason: Stop, now: Instant, out: &mut Vec<Action>) {
        if self.stop.is_some() {
            return;
        }
        self.stop = Some(reason);
        let mut targets = Vec::new();
        let mut signals = Vec::new();
        let mut longest = Duration::ZERO;
        for i in 0..self.instances.len() {
            let key = Key(i as u32);
            longest = longest.max(self.instances[i].spec.policy.stop_timeout);
            match self.instances[i].state {
                State::Pending | State::Waiting { .. } => self.instances[i].state = State::Ended,
                State::Running { .. } => self.stop_instance(key, now, &mut targets, &mut signals),
                // Spawning: stopped when it reports it started.
                _ => {}
            }
        }
        if !targets.is_empty() && !matches!(reason, Stop::OutputClosed | Stop::OutputFailed) {
            out.push(Action::Notice(Notice::Stopping { targets }));
        }
        out.append(&mut signals);
        // Descendants outside every live group would not get the group
        // signal; they get their own, once.
        out.push(Action::SignalStrays(Signal::SIGTERM));
        self.strays_kill_at = Some(now + longest);
        if longest.is_zero() {
            self.strays_kill_at = None;
            out.push(Action::SignalStrays(Signal::SIGKILL));
        }
    }

    /// Sends running instance `key` its stop signal (SIGKILL at once with
    /// a zero timeout).
    fn stop_instance(
        &mut self,
        key: Key,
        now: Instant,
        targets: &mut Vec<(Key, Signal, Duration)>,
        out: &mut Vec<Action>,
    ) {
        let inst = &mut self.instances[key.index()];
        let State::Running { pid, .. } = inst.state else {
            return;
        };
        let policy = inst.spec.policy;
        targets.push((key, policy.stop_signal, policy.stop_timeout));
        out.push(Action::Signal(key, policy.stop_signal));
        if !matches!(policy.stop_signal, Signal::SIGKILL | Signal::SIGCONT) {
            // A stopped process (SIGSTOP, Ctrl-Z in a child) would see its
            // stop signal only once continued, i.e. never before SIGKILL;
            // systemd sends SIGCONT after the stop signal for the same reason.
            out.push(Action::Signal(key, Signal::SIGCONT));
        }
        if policy.stop_timeout.is_zero() {
            out.push(Action::Signal(key, Signal::SIGKILL));
            inst.state = State::Stopping { pid, kill_at: None };
        } else {
            inst.state = State::Stopping {
                pid,
                kill_at: Some(now + policy.stop_timeout),
            };
        }
    }

    /// SIGKILL to every instance still alive and to every descendant.
    fn kill_all(&mut self, out: &mut Vec<Action>) {
        self.killed_all = true;
        let mut named = Vec::new();
        let mut signals = Vec::new();
        for (i, inst) in self.instances.iter_mut().enumerate() {
            let key = Key(i as u32);
            match inst.state {
                State::Running { pid, .. } | State::Stopping { pid, .. } => {
                    if !inst.spec.policy.stop_timeout.is_zero() {
                        named.push(key);
                    }
                    signals.push(Action::Signal(key, Signal::SIGKILL));
                    inst.state = State::Stopping { pid, kill_at: None };
                }
                _ => {}
            }
        }
        if !named.is_empty() {
            out.push(Action::Notice(Notice::Killing { targets: named }));
        }
        out.append(&mut signals);
        out.push(Action::SignalStrays(Signal::SIGKILL));
        self.strays_kill_at = None;
    }

    /// Whatever is due at `now`: SIGKILLs and restarts.
    fn tick(&mut self, now: Instant, out: &mut Vec<Action>) {
        let mut named = Vec::new();
        let mut signals = Vec::new();
        for (i, inst) in self.instances.iter_mut().enumerate() {
            let key = Key(i as u32);
            match inst.state {
                State::Stopping {
                    pid,
                    kill_at: Some(t),
                } if t <= now => {
                    named.push(key);
                    signals.push(Action::Signal(key, Signal::SIGKILL));
                    inst.state = State::Stopping { pid, kill_at: None };
                }
                State::Waiting { until } if until <= now && self.stop.is_none() => {
                    inst.state = State::Spawning;
                    signals.push(Action::Spawn(key));
                }
                _ => {}
            }
        }
        if !named.is_empty() {
            out.push(Action::Notice(Notice::Killing { targets: named }));
        }
        out.append(&mut signals);
        if self.strays_kill_at.is_some_and(|t| t <= now) {
            self.strays_kill_at = None;
            out.push(Action::SignalStrays(Signal::SIGKILL));
        }
    }
}

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
