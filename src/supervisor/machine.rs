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
//! - an instance whose type has `after` starts only once every instance of
//!   those types is ready (a one-shot, `can_die`, once it exited 0); a
//!   one-shot that ends otherwise skips its dependents (and, unless they can
//!   die too, stops everything); a type with a `ready` check is probed from
//!   its start until the check succeeds, and one not ready within its
//!   `ready_timeout` is stopped and its exit counts as a failure;
//! - a stop (signal, closed stdout, an instance's end) sends every running
//!   instance its stop signal, SIGKILL after its stop timeout, cancels any
//!   pending restart at once; the stop signal again kills at once. When
//!   some type has `after`, the levels of the start order are stopped from
//!   the top down, each once the one above has ended.
//!
//! The states, the inputs and the transitions read together here; the
//! start order and readiness (which instance starts next, waits and skips,
//! ready timeouts, stopping level by level) are in `machine_order.rs`. The
//! tests are in `machine_tests.rs` and `machine_ready_tests.rs`. It is one
//! file of about 630 lines on purpose, so that every transition reads
//! together.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::exit_code::ExitCode;
use crate::outcome::Outcome;
use crate::output::notice::{Key, Next, Notice};
use crate::plan::ProcessSpec;
use crate::policy::Restart;
use crate::readiness::Check;

pub use control::{Status, parse_signal};
pub use order::SPAWN_AHEAD;

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
    /// The instance asked for by [`Action::Spawn`] was not started: the
    /// app began to stop before its turn came.
    SpawnCancelled {
        /// Which.
        key: Key,
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
    /// The readiness check asked for by [`Action::Probe`] succeeded.
    Ready {
        /// Which.
        key: Key,
    },
    /// A control client's request (`procrun restart web`, …).
    Control {
        /// What it asks for.
        request: Control,
        /// The client's pid, when the socket told it.
        from: Option<u32>,
    },
}

/// What a control client may ask the machine for (see `machine_control.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Control {
    /// Stop these instances, then start each again; a stopped or ended one
    /// is simply started.
    Restart(Vec<Key>),
    /// Stop these instances for good: they are not restarted, and their
    /// exit does not stop the app.
    Stop(Vec<Key>),
    /// Run instances 1..=count of this type: start those not running, stop
    /// (and hide) the higher-numbered ones. Instances that do not exist yet
    /// are added with [`Machine::add`] first.
    Scale {
        /// The process type.
        type_name: String,
        /// How many instances.
        count: u32,
    },
    /// Send this signal to these instances' groups.
    Signal(Vec<Key>, Signal),
    /// Stop the whole app, as SIGTERM to procrun would.
    Quit,
}

/// What the effects layer is asked to do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Start this instance (its spec is [`Machine::spec`]) and report
    /// [`Input::Started`] or [`Input::SpawnFailed`] (or, once the app
    /// stops, possibly [`Input::SpawnCancelled`]).
    Spawn(Key),
    /// Send a signal to this instance's process group.
    Signal(Key, Signal),
    /// Send a signal to the descendants that left every instance's group:
    /// SIGTERM only to those outside a live group, SIGKILL to all.
    SignalStrays(Signal),
    /// Show one of procrun's messages.
    Notice(Notice),
    /// Run this instance's readiness check until it succeeds, then report
    /// [`Input::Ready`].
    Probe(Key),
    /// Stop running this instance's readiness check.
    CancelProbe(Key),
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
    /// When the current run started.
    started_at: Option<Instant>,
    /// The current run passed its readiness check.
    ready: bool,
    /// Not ready by then: the current run has failed (`None`: not probed).
    ready_by: Option<Instant>,
    /// The current run is being stopped because it was not ready in time.
    timed_out: bool,
    /// Some run exited with code 0 (what a one-shot in `after` waits for).
    exited_ok: bool,
    /// How the last run ended.
    last: Option<Outcome>,
    /// It was never started: something it starts after failed.
    skipped: bool,
    /// "waits for" was shown for its current wait.
    announced: bool,
    /// A control client stopped it: it stays ended, and its end does not
    /// stop the app.
    held: bool,
    /// Scaled away: held, and not shown by `ps`.
    removed: bool,
    /// A control client asked for a restart: started again once it ended.
    restart_asked: bool,
    /// How often it was started.
    runs: u32,
    /// procrun (not the instance itself) ended its current run.
    stopped: bool,
}

impl Instance {
    fn new(spec: ProcessSpec) -> Self {
        Instance {
            spec,
            state: State::Pending,
            streak: 0,
            restarts: 0,
            started_at: None,
            ready: false,
            ready_by: None,
            timed_out: false,
            exited_ok: false,
            last: None,
            skipped: false,
            announced: false,
            held: false,
            removed: false,
            restart_asked: false,
            runs: 0,
            stopped: false,
        }
    }
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
    /// Each instance's level in the start order (0: starts after nothing);
    /// `None` when no type has `after`: then everything stops at once.
    levels: Option<Vec<usize>>,
    /// While stopping level by level: the level being stopped.
    stop_level: Option<usize>,
}

impl Machine {
    /// A machine for these instances; their keys are their positions.
    pub fn new(specs: impl IntoIterator<Item = ProcessSpec>) -> Self {
        let specs: Vec<ProcessSpec> = specs.into_iter().collect();
        let levels = specs
            .iter()
            .any(|s| !s.readiness.after.is_empty())
            .then(|| order::start_levels(&specs));
        Machine {
            levels,
            stop_level: None,
            instances: specs.into_iter().map(Instance::new).collect(),
            stop: None,
            first_failure: None,
            strays_kill_at: None,
            killed_all: false,
        }
    }

    /// The level of instance `i` in the start order.
    fn level(&self, i: usize) -> usize {
        self.levels.as_ref().map_or(0, |l| l[i])
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

    /// Whether instance `key`'s current run passed its readiness check.
    pub fn is_ready(&self, key: Key) -> bool {
        self.instances[key.index()].ready
    }

    /// Why procrun stops, once it does.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// The actions that begin the run.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        self.schedule(now, &mut out);
        self.advance_stop(now, &mut out);
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
            State::Running { .. } => i.ready_by,
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
                    inst.started_at = Some(now);
                    inst.runs += 1;
                    inst.stopped = false;
                    // A command that sets PORT itself gets that one.
                    let own = crate::readiness::own_port(&inst.spec);
                    let port = own.or(inst.spec.policy.port.then_some(inst.spec.port));
                    out.push(Action::Notice(Notice::Started { key, pid, port }));
                    if inst.spec.readiness.check == Check::Started {
                        inst.ready = true;
                    } else {
                        inst.ready_by = Some(now + inst.spec.readiness.timeout);
                        out.push(Action::Probe(key));
                    }
                    if self.stop.is_some() || inst.held {
                        // Stopped while it was being started: stop it too,
                        // with its notice, as the others were.
                        self.stop_where(|i| i == key.index(), now, &mut out);
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
            Input::SpawnCancelled { key } => {
                let inst = &mut self.instances[key.index()];
                if inst.state == State::Spawning {
                    // As `begin_stop` leaves a pending one; only a stop
                    // cancels.
                    inst.state = match self.stop {
                        Some(_) => State::Ended,
                        None => State::Pending,
                    };
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
            Input::Control { request, from } => self.control(request, from, now, &mut out),
            Input::Ready { key } => {
                let inst = &mut self.instances[key.index()];
                if matches!(inst.state, State::Running { .. }) && inst.ready_by.is_some() {
                    inst.ready_by = None;
                    inst.ready = true;
                    let r = &inst.spec.readiness;
                    out.push(Action::Notice(Notice::Ready {
                        key,
                        kind: r.check.kind(),
                        what: r.check.describe(crate::readiness::probe_port(&inst.spec)),
                        after: inst
                            .started_at
                            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t)),
                    }));
                }
            }
        }
        self.schedule(now, &mut out);
        self.advance_stop(now, &mut out);
        out
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
        if matches!(inst.state, State::Running { .. } | State::Stopping { .. }) {
            inst.ready = false;
            if inst.ready_by.take().is_some() {
                out.push(Action::CancelProbe(key));
            }
            inst.last = Some(outcome);
            inst.exited_ok |= outcome == Outcome::Exited(0);
        }
        let timed_out = std::mem::take(&mut inst.timed_out);
        let since = match inst.state {
            State::Stopping { .. } if timed_out => inst.started_at.unwrap_or(now),
            State::Stopping { .. } => {
                // procrun asked it to stop: never a failure, never restarted
                // (unless a client asked for a restart).
                inst.state = State::Ended;
                inst.stopped = true;
                out.push(Action::Notice(Notice::Exited {
                    key,
                    outcome,
                    next: Next::Nothing,
                }));
                if std::mem::take(&mut inst.restart_asked) && self.stop.is_none() {
                    inst.state = State::Pending;
                    inst.streak = 0;
                    inst.restarts += 1;
                    inst.announced = false;
                } else {
                    self.end_if_all_ended(now, out);
                }
                return;
            }
            State::Running { since, .. } => since,
            _ => return,
        };
        let policy = inst.spec.policy;
        // Not ready in time is a failure, however the stopped run ended.
        let cause = match outcome {
            Outcome::Exited(0) if timed_out => Outcome::Exited(1),
            other => other,
        };
        let failure = !matches!(cause, Outcome::Exited(0));
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
        if cause.exit_code() != 0 && self.first_failure.is_none() {
            self.first_failure = Some(cause);
        }
        if std::mem::take(&mut inst.restart_asked) && self.stop.is_none() {
            // It ended on its own before the asked-for stop: start it again.
            inst.state = State::Pending;
            inst.streak = 0;
            inst.restarts += 1;
            inst.announced = false;
            return;
        }
        if !policy.can_die && !inst.held {
            self.begin_stop(Stop::Instance(cause), now, out);
        } else {
            self.end_if_all_ended(now, out);
        }
    }

    /// When no instance is left to run (each ended, was stopped by a
    /// client, or can die and did), procrun ends.
    fn end_if_all_ended(&mut self, now: Instant, out: &mut Vec<Action>) {
        if self.stop.is_none() && self.instances.iter().all(|i| i.state == State::Ended) {
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
        for inst in &mut self.instances {
            if matches!(inst.state, State::Pending | State::Waiting { .. }) {
                inst.state = State::Ended;
            }
        }
        match &self.levels {
            // Dependents first: the levels are stopped from the top down,
            // each once the one above has ended (see `advance_stop`).
            Some(levels) => self.stop_level = Some(levels.iter().max().map_or(0, |m| m + 1)),
            None => {
                self.stop_where(|_| true, now, out);
                self.signal_strays(now, out);
            }
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
        if inst.ready_by.take().is_some() {
            out.push(Action::CancelProbe(key));
        }
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
                    // Started again once what it starts after is ready.
                    inst.state = State::Pending;
                    inst.announced = false;
                }
                _ => {}
            }
        }
        if !named.is_empty() {
            out.push(Action::Notice(Notice::Killing { targets: named }));
        }
        out.append(&mut signals);
        if self.stop.is_none() {
            self.ready_timeouts(now, out);
        }
        if self.strays_kill_at.is_some_and(|t| t <= now) {
            self.strays_kill_at = None;
            out.push(Action::SignalStrays(Signal::SIGKILL));
        }
    }
}

#[path = "machine_order.rs"]
mod order;

#[path = "machine_control.rs"]
mod control;

#[cfg(test)]
#[path = "machine_tests.rs"]
mod tests;
