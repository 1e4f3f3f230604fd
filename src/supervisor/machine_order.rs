//! The state machine's start order and readiness: which pending instance
//! starts next, who waits and who is skipped, ready timeouts, and stopping
//! level by level. Part of [`super`], in its own file for length only.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::{Action, Instance, Machine, State, Stop};
use crate::outcome::Outcome;
use crate::output::notice::{Key, Notice};
use crate::plan::ProcessSpec;

/// Whether a pending instance may start.
enum Deps {
    /// Everything it starts after is ready (or done).
    Met,
    /// These types are not ready yet.
    Wait(Vec<String>),
    /// This one-shot failed (its outcome), or was skipped (`None`).
    Skip(Key, Option<Outcome>),
}

/// How many instances may be being started at once: the spawner thread
/// starts the next while the dispatcher sets up the last one's unit
/// (`supervisor/spawner.rs`). Bounded, so that a stop during a big start
/// finds few spawns under way (each is stopped as soon as it reports).
pub const SPAWN_AHEAD: usize = 16;

impl Machine {
    /// Starts the pending instances whose dependencies are met, in order,
    /// while fewer than [`SPAWN_AHEAD`] are being started; says which
    /// wait, skips those whose one-shot dependency failed.
    pub(super) fn schedule(&mut self, now: Instant, out: &mut Vec<Action>) {
        loop {
            if self.stop.is_some() {
                return;
            }
            let mut spawning = self
                .instances
                .iter()
                .filter(|i| i.state == State::Spawning)
                .count();
            let mut skipped = false;
            for i in 0..self.instances.len() {
                if self.instances[i].state != State::Pending {
                    continue;
                }
                let key = Key(i as u32);
                match self.deps(i) {
                    Deps::Met => {
                        if spawning >= SPAWN_AHEAD {
                            return;
                        }
                        self.instances[i].state = State::Spawning;
                        out.push(Action::Spawn(key));
                        spawning += 1;
                    }
                    Deps::Wait(on) => {
                        let inst = &mut self.instances[i];
                        // Once the instances being started have said so:
                        // `web.1 waits for db` after `db.1 started`.
                        if !inst.announced && spawning == 0 {
                            inst.announced = true;
                            out.push(Action::Notice(Notice::Waiting { key, on }));
                        }
                    }
                    Deps::Skip(dependency, outcome) => {
                        let inst = &mut self.instances[i];
                        inst.state = State::Ended;
                        inst.skipped = true;
                        out.push(Action::Notice(Notice::Skipped {
                            key,
                            dependency,
                            outcome,
                        }));
                        if !inst.spec.policy.can_die {
                            let cause =
                                outcome.or(self.first_failure).unwrap_or(Outcome::Exited(1));
                            self.begin_stop(Stop::Instance(cause), now, out);
                            return;
                        }
                        // A skip may skip others in turn: look again.
                        skipped = true;
                    }
                }
            }
            if !skipped {
                break;
            }
        }
        if self.instances.iter().all(|i| i.state == State::Ended) {
            self.begin_stop(Stop::AllEnded, now, out);
        }
    }

    /// Whether pending instance `i` may start: every instance of each type
    /// in its `after` is ready, or for a type that can die (a one-shot) has
    /// exited 0.
    fn deps(&self, i: usize) -> Deps {
        let mut wait = Vec::new();
        for name in &self.instances[i].spec.readiness.after {
            let mut met = true;
            for (j, dep) in self.instances.iter().enumerate() {
                if dep.spec.type_name != *name || dep.removed {
                    continue;
                }
                let key = Key(j as u32);
                if dep.skipped {
                    return Deps::Skip(key, None);
                }
                if dep.spec.policy.can_die {
                    if dep.exited_ok {
                        continue;
                    }
                    if dep.state == State::Ended {
                        return Deps::Skip(key, dep.last);
                    }
                    met = false;
                } else if !(dep.ready && matches!(dep.state, State::Running { .. })) {
                    met = false;
                }
            }
            if !met {
                wait.push(name.clone());
            }
        }
        if wait.is_empty() {
            Deps::Met
        } else {
            Deps::Wait(wait)
        }
    }

    /// Sends the running instances that `which` selects (by index) their
    /// stop signal, with one notice for all.
    pub(super) fn stop_where(
        &mut self,
        which: impl Fn(usize) -> bool,
        now: Instant,
        out: &mut Vec<Action>,
    ) {
        let mut targets = Vec::new();
        let mut signals = Vec::new();
        for i in 0..self.instances.len() {
            // Spawning: stopped when it reports it started.
            if which(i) && matches!(self.instances[i].state, State::Running { .. }) {
                self.stop_instance(Key(i as u32), now, &mut targets, &mut signals);
            }
        }
        let quiet = matches!(self.stop, Some(Stop::OutputClosed | Stop::OutputFailed));
        if !targets.is_empty() && !quiet {
            out.push(Action::Notice(Notice::Stopping { targets }));
        }
        out.append(&mut signals);
    }

    /// Descendants outside every live group would not get the group
    /// signal; they get their own, once, and SIGKILL after the longest
    /// stop timeout.
    pub(super) fn signal_strays(&mut self, now: Instant, out: &mut Vec<Action>) {
        let longest = self
            .instances
            .iter()
            .map(|i| i.spec.policy.stop_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        out.push(Action::SignalStrays(Signal::SIGTERM));
        self.strays_kill_at = Some(now + longest);
        if longest.is_zero() {
            self.strays_kill_at = None;
            out.push(Action::SignalStrays(Signal::SIGKILL));
        }
    }

    /// Stopping level by level: once no instance of the level being
    /// stopped (or above) is alive, stops the next level down that has
    /// running instances; after the last, the stray descendants.
    pub(super) fn advance_stop(&mut self, now: Instant, out: &mut Vec<Action>) {
        let Some(current) = self.stop_level else {
            return;
        };
        let alive = |inst: &Instance| {
            matches!(
                inst.state,
                State::Running { .. } | State::Stopping { .. } | State::Spawning
            )
        };
        if (0..self.instances.len()).any(|i| self.level(i) >= current && alive(&self.instances[i]))
        {
            return;
        }
        let next = (0..current).rev().find(|&l| {
            (0..self.instances.len()).any(|i| {
                self.level(i) == l && matches!(self.instances[i].state, State::Running { .. })
            })
        });
        match next {
            Some(level) => {
                self.stop_level = Some(level);
                let levels = self.levels.clone().unwrap_or_default();
                self.stop_where(|i| levels[i] == level, now, out);
            }
            None => {
                self.stop_level = None;
                if !self.killed_all {
                    self.signal_strays(now, out);
                }
            }
        }
    }

    /// Stops the instances not ready by their deadline: their exit then
    /// counts as a failure.
    pub(super) fn ready_timeouts(&mut self, now: Instant, out: &mut Vec<Action>) {
        let late: Vec<Key> = (0..self.instances.len())
            .filter(|&i| {
                let inst = &self.instances[i];
                matches!(inst.state, State::Running { .. })
                    && inst.ready_by.is_some_and(|t| t <= now)
            })
            .map(|i| Key(i as u32))
            .collect();
        for key in late {
            let inst = &mut self.instances[key.index()];
            inst.timed_out = true;
            let r = &inst.spec.readiness;
            out.push(Action::Notice(Notice::NotReady {
                key,
                kind: r.check.kind(),
                what: r.check.describe(crate::readiness::probe_port(&inst.spec)),
                timeout: r.timeout,
            }));
            let mut targets = Vec::new();
            let mut signals = Vec::new();
            self.stop_instance(key, now, &mut targets, &mut signals);
            out.push(Action::Notice(Notice::Stopping { targets }));
            out.append(&mut signals);
        }
    }
}

/// Each instance's level in the start order of its type.
pub(super) fn start_levels(specs: &[ProcessSpec]) -> Vec<usize> {
    let mut types: Vec<(&str, &[String])> = Vec::new();
    for s in specs {
        if !types.iter().any(|(n, _)| *n == s.type_name) {
            types.push((&s.type_name, &s.readiness.after));
        }
    }
    let levels = crate::readiness::levels(&types);
    specs
        .iter()
        .map(|s| {
            levels
                .iter()
                .position(|names| names.contains(&s.type_name.as_str()))
                .unwrap_or(0)
        })
        .collect()
}
