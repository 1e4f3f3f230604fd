//! The state machine driven by fake children and a fake clock: a spawn
//! "succeeds" with a made-up pid at once (or fails, when told to), time
//! moves only when a test says so, and every action is recorded.

use std::collections::HashSet;
use std::path::PathBuf;

use super::*;
use crate::policy::{Backoff, Policy};
use crate::readiness::Readiness;

fn spec(name: &str, policy: Policy) -> ProcessSpec {
    let (type_name, number) = name.split_once('.').expect("name.N");
    ProcessSpec {
        name: name.to_owned(),
        type_name: type_name.to_owned(),
        type_index: 0,
        number: number.parse().expect("number"),
        command: format!("run {name}"),
        port: 5000,
        cwd: PathBuf::from("/app"),
        env: Vec::new(),
        policy,
        readiness: Readiness::default(),
    }
}

fn restarting(restart: Restart) -> Policy {
    Policy {
        restart,
        backoff: Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        },
        max_restarts: Some(3),
        min_uptime: Duration::from_secs(10),
        ..Policy::default()
    }
}

/// A machine with fake children and a fake clock.
struct Sim {
    m: Machine,
    t0: Instant,
    now: Duration,
    next_pid: u32,
    /// Keys whose next spawn fails.
    fail_spawn: HashSet<Key>,
    /// Every action, in order.
    log: Vec<Action>,
    /// How often each key was spawned.
    spawns: Vec<u32>,
}

impl Sim {
    fn new(specs: Vec<ProcessSpec>) -> Sim {
        let n = specs.len();
        let mut sim = Sim {
            m: Machine::new(specs),
            t0: Instant::now(),
            now: Duration::ZERO,
            next_pid: 100,
            fail_spawn: HashSet::new(),
            log: Vec::new(),
            spawns: vec![0; n],
        };
        let actions = sim.m.start(sim.t0);
        sim.apply(actions);
        sim
    }

    fn at(&self) -> Instant {
        self.t0 + self.now
    }

    /// Performs actions like the dispatcher does, answering spawns at once,
    /// in order; a spawn whose turn comes once the app stops is cancelled,
    /// as the spawner thread does.
    fn apply(&mut self, actions: Vec<Action>) {
        let mut queue = std::collections::VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            if let Action::Spawn(key) = action {
                if self.m.stop().is_some() {
                    queue.extend(self.m.handle(Input::SpawnCancelled { key }, self.at()));
                    self.log.push(action);
                    continue;
                }
                if self.spawns.len() <= key.index() {
                    self.spawns.resize(key.index() + 1, 0);
                }
                self.spawns[key.index()] += 1;
                let input = if self.fail_spawn.contains(&key) {
                    Input::SpawnFailed {
                        key,
                        reason: "No such file or directory".into(),
                    }
                } else {
                    self.next_pid += 1;
                    Input::Started {
                        key,
                        pid: Some(self.next_pid),
                    }
                };
                queue.extend(self.m.handle(input, self.at()));
            }
            self.log.push(action);
        }
    }

    fn send(&mut self, input: Input) {
        let actions = self.m.handle(input, self.at());
        self.apply(actions);
    }

    fn exit(&mut self, key: u32, outcome: Outcome) {
        self.send(Input::Exited {
            key: Key(key),
            outcome,
        });
    }

    /// Moves the clock to `secs` after the start and ticks.
    fn advance_to(&mut self, secs: f64) {
        self.now = Duration::from_secs_f64(secs);
        self.send(Input::Tick);
    }

    /// Moves the clock to the next deadline, if any, and ticks.
    fn run_to_deadline(&mut self) -> bool {
        match self.m.next_deadline() {
            Some(t) => {
                self.now = t - self.t0;
                self.send(Input::Tick);
                true
            }
            None => false,
        }
    }

    fn notices(&self) -> Vec<String> {
        let names: Vec<String> = self.m.specs().map(|(_, s)| s.name.clone()).collect();
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::Notice(n) => Some(n.text(&|k: Key| names[k.index()].clone())),
                _ => None,
            })
            .collect()
    }

    /// The signals sent to `key`, without the SIGCONT after each stop
    /// signal (see `stops_are_followed_by_sigcont`).
    fn signals_to(&self, key: u32) -> Vec<Signal> {
        self.log
            .iter()
            .filter_map(|a| match a {
                Action::Signal(k, s) if *k == Key(key) && *s != Signal::SIGCONT => Some(*s),
                _ => None,
            })
            .collect()
    }

    /// Acts as the instances would after a signal: every instance still
    /// stopping exits, killed by `signal`.
    fn all_die_of(&mut self, signal: i32) {
        for i in 0..self.spawns.len() {
            if matches!(self.m.state(Key(i as u32)), State::Stopping { .. }) {
                self.exit(i as u32, Outcome::Killed(signal));
            }
        }
    }
}

#[test]
fn instances_start_in_plan_order() {
    let sim = Sim::new(vec![
        spec("web.1", Policy::default()),
        spec("web.2", Policy::default()),
        spec("worker.1", Policy::default()),
    ]);
    let spawned: Vec<Key> = sim
        .log
        .iter()
        .filter_map(|a| match a {
            Action::Spawn(k) => Some(*k),
            _ => None,
        })
        .collect();
    assert_eq!(spawned, [Key(0), Key(1), Key(2)]);
    assert!(sim.notices()[0].starts_with("web.1 started with pid 101 (PORT=5000)"));
    assert!(!sim.m.finished());
}

/// The keys of the spawns among `actions`.
fn spawned_keys(actions: &[Action]) -> Vec<u32> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Spawn(k) => Some(k.0),
            _ => None,
        })
        .collect()
}

#[test]
fn starts_are_asked_for_ahead_of_their_answers_but_not_unboundedly() {
    let n = SPAWN_AHEAD as u32 + 5;
    let specs: Vec<ProcessSpec> = (1..=n)
        .map(|i| spec(&format!("w.{i}"), Policy::default()))
        .collect();
    let mut m = Machine::new(specs);
    let t0 = Instant::now();
    // Asked for at once, in order, up to the window.
    let first = spawned_keys(&m.start(t0));
    assert_eq!(first, (0..SPAWN_AHEAD as u32).collect::<Vec<_>>());
    // Each answer lets one more start.
    let next = m.handle(
        Input::Started {
            key: Key(0),
            pid: Some(100),
        },
        t0,
    );
    assert_eq!(spawned_keys(&next), [SPAWN_AHEAD as u32]);
    // A stop now: nothing more is asked for; the starts under way are
    // stopped when they report, or end if cancelled before their turn.
    let stop = m.handle(Input::Signal(libc::SIGTERM), t0);
    assert!(spawned_keys(&stop).is_empty());
    assert!(stop.contains(&Action::Signal(Key(0), Signal::SIGTERM)));
    let late = m.handle(
        Input::Started {
            key: Key(1),
            pid: Some(101),
        },
        t0,
    );
    assert!(late.contains(&Action::Signal(Key(1), Signal::SIGTERM)));
    for k in 2..=SPAWN_AHEAD as u32 {
        assert!(spawned_keys(&m.handle(Input::SpawnCancelled { key: Key(k) }, t0)).is_empty());
        assert_eq!(m.state(Key(k)), State::Ended);
    }
    assert!(!m.finished(), "two still run");
    for k in 0..2 {
        m.handle(
            Input::Exited {
                key: Key(k),
                outcome: Outcome::Killed(15),
            },
            t0,
        );
    }
    assert!(m.finished());
    assert_eq!(m.exit_code(), 128 + 15);
}

#[test]
fn first_exit_stops_everything_with_its_code() {
    let mut sim = Sim::new(vec![
        spec("web.1", Policy::default()),
        spec("bad.1", Policy::default()),
    ]);
    sim.exit(1, Outcome::Exited(3));
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM]);
    assert!(!sim.m.finished());
    sim.all_die_of(15);
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 3);
    let n = sim.notices();
    assert!(n.contains(&"bad.1 exited with code 3".to_owned()), "{n:?}");
    assert!(
        n.contains(&"stopping 1 process: SIGTERM, then SIGKILL after 5s".to_owned()),
        "{n:?}"
    );
    assert!(n.contains(&"web.1 killed by SIGTERM".to_owned()), "{n:?}");
}

#[test]
fn spawn_failure_stops_the_rest_and_starts_no_more() {
    let specs = vec![
        spec("a.1", Policy::default()),
        spec("b.1", Policy::default()),
        spec("c.1", Policy::default()),
    ];
    // Build by hand: b fails on its first spawn.
    let mut sim = Sim {
        m: Machine::new(specs),
        t0: Instant::now(),
        now: Duration::ZERO,
        next_pid: 100,
        fail_spawn: [Key(1)].into(),
        log: Vec::new(),
        spawns: vec![0; 3],
    };
    let actions = sim.m.start(sim.t0);
    sim.apply(actions);
    assert_eq!(sim.spawns, [1, 1, 0]);
    assert_eq!(sim.m.state(Key(2)), State::Ended);
    sim.all_die_of(15);
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 127);
    assert!(
        sim.notices().iter().any(|n| n.starts_with(
            "b.1 failed to start: No such file or directory (command `run b.1` in /app)"
        )),
        "{:?}",
        sim.notices()
    );
}

#[test]
fn signal_stops_then_again_kills_at_once() {
    let mut sim = Sim::new(vec![spec("web.1", Policy::default())]);
    sim.send(Input::Signal(libc::SIGINT));
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM]);
    sim.send(Input::Signal(libc::SIGINT));
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM, Signal::SIGKILL]);
    assert!(sim.log.contains(&Action::SignalStrays(Signal::SIGKILL)));
    // A third one changes nothing.
    sim.send(Input::Signal(libc::SIGINT));
    assert_eq!(sim.signals_to(0).len(), 2);
    sim.exit(0, Outcome::Killed(9));
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 130);
    let n = sim.notices();
    assert!(n.contains(&"SIGINT received".to_owned()));
    assert!(n.contains(&"SIGINT received again: killing at once".to_owned()));
    assert!(n.contains(&"sending SIGKILL to web.1".to_owned()));
}

#[test]
fn stop_timeout_then_sigkill_per_instance() {
    let slow = Policy {
        stop_signal: Signal::SIGINT,
        stop_timeout: Duration::from_secs(10),
        ..Policy::default()
    };
    let mut sim = Sim::new(vec![spec("db.1", slow), spec("web.1", Policy::default())]);
    sim.send(Input::Signal(libc::SIGTERM));
    assert_eq!(sim.signals_to(0), [Signal::SIGINT]);
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM]);
    assert_eq!(sim.m.next_deadline(), Some(sim.t0 + Duration::from_secs(5)));
    sim.advance_to(5.0);
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM, Signal::SIGKILL]);
    assert_eq!(sim.signals_to(0), [Signal::SIGINT], "db.1 still has time");
    sim.exit(1, Outcome::Killed(9));
    sim.advance_to(10.0);
    assert_eq!(sim.signals_to(0), [Signal::SIGINT, Signal::SIGKILL]);
    assert!(sim.log.contains(&Action::SignalStrays(Signal::SIGKILL)));
    sim.exit(0, Outcome::Killed(9));
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 143);
    let n = sim.notices();
    assert!(
        n.contains(&"stopping 2 processes: SIGINT to db.1 (SIGKILL after 10s); SIGTERM to web.1 (SIGKILL after 5s)".to_owned()),
        "{n:?}"
    );
    assert!(n.contains(&"sending SIGKILL to web.1".to_owned()), "{n:?}");
    assert!(n.contains(&"sending SIGKILL to db.1".to_owned()), "{n:?}");
}

#[test]
fn zero_timeout_kills_at_once_without_a_message() {
    let now = Policy {
        stop_timeout: Duration::ZERO,
        ..Policy::default()
    };
    let mut sim = Sim::new(vec![spec("web.1", now)]);
    sim.send(Input::Signal(libc::SIGINT));
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM, Signal::SIGKILL]);
    assert!(sim.log.contains(&Action::SignalStrays(Signal::SIGKILL)));
    assert!(
        !sim.notices()
            .iter()
            .any(|n| n.starts_with("sending SIGKILL"))
    );
}

#[test]
fn usr1_is_forwarded_to_every_running_instance() {
    let mut sim = Sim::new(vec![
        spec("web.1", Policy::default()),
        spec("web.2", Policy::default()),
    ]);
    sim.send(Input::Forward(Signal::SIGUSR1));
    assert_eq!(sim.signals_to(0), [Signal::SIGUSR1]);
    assert_eq!(sim.signals_to(1), [Signal::SIGUSR1]);
    assert!(
        sim.notices()
            .contains(&"SIGUSR1 received: forwarded to 2 processes".to_owned())
    );
    assert!(sim.m.stop().is_none());
}

#[test]
fn output_closed_stops_quietly_with_zero() {
    let mut sim = Sim::new(vec![spec("web.1", Policy::default())]);
    sim.send(Input::OutputClosed);
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM]);
    assert!(!sim.notices().iter().any(|n| n.starts_with("stopping")));
    sim.all_die_of(15);
    assert_eq!(sim.m.exit_code(), 0);
}

#[test]
fn on_failure_restarts_with_doubling_backoff_then_fails() {
    let mut sim = Sim::new(vec![
        spec("worker.1", restarting(Restart::OnFailure)),
        spec("web.1", Policy::default()),
    ]);
    // max_restarts = 3: four runs in all, each shorter than min_uptime.
    let mut delays = Vec::new();
    for run in 1..=4 {
        assert_eq!(sim.spawns[0], run, "run {run}");
        let exit_at = sim.now.as_secs_f64() + 1.0;
        sim.advance_to(exit_at);
        sim.exit(0, Outcome::Exited(1));
        if let State::Waiting { until } = sim.m.state(Key(0)) {
            delays.push((until - sim.at()).as_secs());
            assert!(sim.run_to_deadline());
        }
    }
    assert_eq!(delays, [1, 2, 4]);
    assert_eq!(sim.spawns[0], 4);
    assert_eq!(sim.m.restarts(Key(0)), 3);
    let n = sim.notices();
    assert!(
        n.contains(&"worker.1 exited with code 1; restarting in 2s (restart 2 of 3)".to_owned()),
        "{n:?}"
    );
    assert!(
        n.contains(&"worker.1 failed: 3 restarts in a row ran less than 10s".to_owned()),
        "{n:?}"
    );
    // Failed and not allowed to die: everything stops, with its code.
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM]);
    sim.all_die_of(15);
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 1);
}

#[test]
fn on_failure_does_not_restart_after_success() {
    let mut sim = Sim::new(vec![
        spec("job.1", restarting(Restart::OnFailure)),
        spec("web.1", Policy::default()),
    ]);
    sim.exit(0, Outcome::Exited(0));
    assert_eq!(sim.m.state(Key(0)), State::Ended);
    assert_eq!(sim.m.stop(), Some(Stop::Instance(Outcome::Exited(0))));
}

#[test]
fn signal_death_counts_as_failure() {
    let mut sim = Sim::new(vec![spec("worker.1", restarting(Restart::OnFailure))]);
    sim.exit(0, Outcome::Killed(9));
    assert!(matches!(sim.m.state(Key(0)), State::Waiting { .. }));
}

#[test]
fn always_restarts_after_success_too() {
    let mut sim = Sim::new(vec![spec("tick.1", restarting(Restart::Always))]);
    sim.exit(0, Outcome::Exited(0));
    assert!(matches!(sim.m.state(Key(0)), State::Waiting { .. }));
    assert!(sim.run_to_deadline());
    assert_eq!(sim.spawns[0], 2);
    assert!(matches!(sim.m.state(Key(0)), State::Running { .. }));
}

#[test]
fn a_long_run_resets_the_backoff_and_the_count() {
    let mut sim = Sim::new(vec![spec("worker.1", restarting(Restart::Always))]);
    sim.advance_to(1.0);
    sim.exit(0, Outcome::Exited(1)); // restart 1, delay 1s
    assert!(sim.run_to_deadline()); // t = 2
    sim.advance_to(3.0);
    sim.exit(0, Outcome::Exited(1)); // restart 2, delay 2s
    assert!(sim.run_to_deadline()); // t = 5
    sim.advance_to(20.0); // ran 15s >= min_uptime
    sim.exit(0, Outcome::Exited(1));
    let State::Waiting { until } = sim.m.state(Key(0)) else {
        panic!("not waiting: {:?}", sim.m.state(Key(0)));
    };
    assert_eq!(until - sim.at(), Duration::from_secs(1), "backoff reset");
    assert!(
        sim.notices()
            .last()
            .is_some_and(|n| n.ends_with("(restart 1 of 3)")),
        "{:?}",
        sim.notices()
    );
    assert_eq!(sim.m.restarts(Key(0)), 3, "the total keeps counting");
}

#[test]
fn backoff_is_capped() {
    let policy = Policy {
        backoff: Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(3),
        },
        max_restarts: None,
        ..restarting(Restart::Always)
    };
    let mut sim = Sim::new(vec![spec("w.1", policy)]);
    let mut delays = Vec::new();
    for _ in 0..5 {
        sim.exit(0, Outcome::Exited(1));
        let State::Waiting { until } = sim.m.state(Key(0)) else {
            panic!("not waiting");
        };
        delays.push((until - sim.at()).as_secs());
        assert!(sim.run_to_deadline());
    }
    assert_eq!(delays, [1, 2, 3, 3, 3]);
    assert!(
        sim.notices()
            .iter()
            .any(|n| n.ends_with("restarting in 3s (restart 5)")),
        "unlimited restarts show no maximum: {:?}",
        sim.notices()
    );
}

#[test]
fn max_restarts_zero_means_one_run() {
    let policy = Policy {
        max_restarts: Some(0),
        can_die: true,
        ..restarting(Restart::Always)
    };
    let mut sim = Sim::new(vec![spec("w.1", policy), spec("web.1", Policy::default())]);
    sim.exit(0, Outcome::Exited(2));
    assert_eq!(sim.m.state(Key(0)), State::Ended);
    assert!(sim.m.stop().is_none(), "it can die");
    assert!(
        sim.notices()
            .contains(&"w.1 failed: 0 restarts in a row ran less than 10s".to_owned())
    );
}

#[test]
fn a_stop_during_backoff_cancels_the_restart_at_once() {
    let mut sim = Sim::new(vec![
        spec("worker.1", restarting(Restart::Always)),
        spec("web.1", Policy::default()),
    ]);
    sim.exit(0, Outcome::Exited(1));
    assert!(matches!(sim.m.state(Key(0)), State::Waiting { .. }));
    sim.send(Input::Signal(libc::SIGINT));
    assert_eq!(sim.m.state(Key(0)), State::Ended);
    sim.all_die_of(2);
    assert!(sim.m.finished(), "nothing waits for the backoff");
    assert_eq!(sim.m.exit_code(), 130);
    assert_eq!(sim.spawns[0], 1);
    // No deadline of the cancelled restart remains.
    assert!(sim.m.next_deadline().is_none_or(|t| t > sim.at()));
}

#[test]
fn instances_stopped_by_procrun_are_not_restarted() {
    let mut sim = Sim::new(vec![spec("worker.1", restarting(Restart::Always))]);
    sim.send(Input::Signal(libc::SIGTERM));
    sim.exit(0, Outcome::Killed(15));
    assert_eq!(sim.spawns[0], 1);
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 143);
}

#[test]
fn can_die_lets_the_others_run_and_ends_with_the_first_failure() {
    let may = Policy {
        can_die: true,
        ..Policy::default()
    };
    let mut sim = Sim::new(vec![
        spec("migrate.1", may),
        spec("seed.1", may),
        spec("setup.1", may),
    ]);
    sim.exit(1, Outcome::Exited(4));
    assert!(sim.m.stop().is_none());
    sim.exit(0, Outcome::Exited(0));
    assert!(sim.m.stop().is_none());
    sim.exit(2, Outcome::Exited(5));
    assert_eq!(sim.m.stop(), Some(Stop::AllEnded));
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 4, "the first failure decides");
}

#[test]
fn can_die_all_succeeding_exits_zero() {
    let may = Policy {
        can_die: true,
        ..Policy::default()
    };
    let mut sim = Sim::new(vec![spec("a.1", may), spec("b.1", may)]);
    sim.exit(0, Outcome::Exited(0));
    sim.exit(1, Outcome::Exited(0));
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 0);
}

#[test]
fn can_die_beside_one_that_cannot() {
    let may = Policy {
        can_die: true,
        ..Policy::default()
    };
    let mut sim = Sim::new(vec![
        spec("migrate.1", may),
        spec("web.1", Policy::default()),
    ]);
    sim.exit(0, Outcome::Exited(1));
    assert!(sim.m.stop().is_none());
    assert!(matches!(sim.m.state(Key(1)), State::Running { .. }));
    sim.send(Input::Signal(libc::SIGINT));
    sim.all_die_of(2);
    assert_eq!(sim.m.exit_code(), 130);
}

#[test]
fn spawn_failure_goes_through_the_restart_policy() {
    let policy = Policy {
        max_restarts: Some(2),
        ..restarting(Restart::OnFailure)
    };
    let mut sim = Sim::new(vec![spec("w.1", policy)]);
    sim.fail_spawn.insert(Key(0));
    sim.exit(0, Outcome::Exited(1));
    while sim.run_to_deadline() && !sim.m.finished() {}
    assert_eq!(sim.spawns[0], 3, "the first run and 2 restarts");
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 127);
}

#[test]
fn a_type_without_port_says_so_when_started() {
    let policy = Policy {
        port: false,
        ..Policy::default()
    };
    let sim = Sim::new(vec![spec("clock.1", policy)]);
    assert_eq!(sim.notices(), ["clock.1 started with pid 101"]);
}

#[test]
fn stops_are_followed_by_sigcont() {
    let mut sim = Sim::new(vec![spec("web.1", Policy::default())]);
    sim.send(Input::Signal(libc::SIGTERM));
    let sent: Vec<&Action> = sim
        .log
        .iter()
        .filter(|a| matches!(a, Action::Signal(..)))
        .collect();
    assert_eq!(
        sent,
        [
            &Action::Signal(Key(0), Signal::SIGTERM),
            &Action::Signal(Key(0), Signal::SIGCONT)
        ]
    );
}

#[test]
fn a_failing_stdout_fails_the_run() {
    let mut sim = Sim::new(vec![spec("web.1", Policy::default())]);
    sim.send(Input::OutputFailed);
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM]);
    sim.all_die_of(15);
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 1);
    // Also when procrun was stopping for another reason already.
    let mut sim = Sim::new(vec![spec("web.1", Policy::default())]);
    sim.exit(0, Outcome::Exited(3));
    sim.send(Input::OutputFailed);
    assert_eq!(sim.m.exit_code(), 1);
}

#[path = "machine_ready_tests.rs"]
mod ready;

#[path = "machine_control_tests.rs"]
mod control;
