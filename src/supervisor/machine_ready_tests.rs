//! Readiness and start order in the state machine: `after`, one-shots,
//! skips, ready timeouts and readiness through restarts, with the fake
//! children and clock of `machine_tests.rs`.

use super::*;
use crate::readiness::{Check, Readiness};

fn with(mut s: ProcessSpec, check: Check, after: &[&str]) -> ProcessSpec {
    s.readiness = Readiness {
        check,
        timeout: Duration::from_secs(5),
        after: after.iter().map(|a| (*a).to_owned()).collect(),
        ..Readiness::default()
    };
    s
}

fn one_shot() -> Policy {
    Policy {
        can_die: true,
        ..Policy::default()
    }
}

fn probes(sim: &Sim) -> Vec<&Action> {
    sim.log
        .iter()
        .filter(|a| matches!(a, Action::Probe(_) | Action::CancelProbe(_)))
        .collect()
}

#[test]
fn a_type_without_ready_is_ready_once_started() {
    let sim = Sim::new(vec![spec("web.1", Policy::default())]);
    assert!(sim.m.is_ready(Key(0)));
    assert!(probes(&sim).is_empty());
    assert!(!sim.notices().iter().any(|n| n.contains("ready")));
}

#[test]
fn a_dependent_starts_once_its_dependency_is_ready() {
    let mut sim = Sim::new(vec![
        with(
            spec("db.1", Policy::default()),
            Check::Port(Some(5432)),
            &[],
        ),
        with(spec("web.1", Policy::default()), Check::Started, &["db"]),
    ]);
    assert_eq!(sim.spawns, [1, 0]);
    assert_eq!(probes(&sim), [&Action::Probe(Key(0))]);
    assert!(!sim.m.is_ready(Key(0)));
    sim.now = Duration::from_millis(420);
    sim.send(Input::Ready { key: Key(0) });
    assert_eq!(sim.spawns, [1, 1]);
    let n = sim.notices();
    assert_eq!(
        n,
        [
            "db.1 started with pid 101 (PORT=5000)",
            "web.1 waits for db",
            "db.1 is ready (port 5432 accepts connections) after 0.42s",
            "web.1 started with pid 102 (PORT=5000)",
        ]
    );
    // A second success changes nothing.
    sim.send(Input::Ready { key: Key(0) });
    assert_eq!(sim.notices().len(), 4);
}

#[test]
fn every_instance_of_a_dependency_must_be_ready() {
    let mut sim = Sim::new(vec![
        with(spec("db.1", Policy::default()), Check::Port(None), &[]),
        with(spec("db.2", Policy::default()), Check::Port(None), &[]),
        with(spec("web.1", Policy::default()), Check::Started, &["db"]),
    ]);
    sim.send(Input::Ready { key: Key(1) });
    assert_eq!(sim.spawns, [1, 1, 0]);
    sim.send(Input::Ready { key: Key(0) });
    assert_eq!(sim.spawns, [1, 1, 1]);
}

#[test]
fn a_one_shot_dependency_is_done_when_it_exits_0() {
    let mut sim = Sim::new(vec![
        spec("migrate.1", one_shot()),
        with(
            spec("web.1", Policy::default()),
            Check::Started,
            &["migrate"],
        ),
    ]);
    // Started is not enough for a one-shot.
    assert_eq!(sim.spawns, [1, 0]);
    sim.exit(0, Outcome::Exited(0));
    assert_eq!(sim.spawns, [1, 1]);
    assert!(!sim.m.finished());
    assert!(sim.m.stop().is_none());
}

#[test]
fn a_failed_one_shot_skips_its_dependents_and_stops_the_app() {
    let mut sim = Sim::new(vec![
        spec("migrate.1", one_shot()),
        spec("db.1", Policy::default()),
        with(
            spec("web.1", Policy::default()),
            Check::Started,
            &["migrate"],
        ),
    ]);
    sim.exit(0, Outcome::Exited(1));
    assert_eq!(sim.spawns, [1, 1, 0]);
    assert_eq!(sim.m.state(Key(2)), State::Ended);
    let n = sim.notices();
    assert!(
        n.contains(&"web.1 skipped: migrate.1 exited with code 1".to_owned()),
        "{n:?}"
    );
    // web cannot die: procrun stops as for any failure, with its code.
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM]);
    sim.all_die_of(15);
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 1);
}

#[test]
fn skips_cascade_through_dependents_that_can_die() {
    let mut sim = Sim::new(vec![
        spec("migrate.1", one_shot()),
        with(spec("seed.1", one_shot()), Check::Started, &["migrate"]),
        with(spec("report.1", one_shot()), Check::Started, &["seed"]),
    ]);
    sim.exit(0, Outcome::Killed(9));
    let n = sim.notices();
    assert!(
        n.contains(&"seed.1 skipped: migrate.1 killed by SIGKILL".to_owned()),
        "{n:?}"
    );
    assert!(
        n.contains(&"report.1 skipped: seed.1 was skipped".to_owned()),
        "{n:?}"
    );
    assert_eq!(sim.spawns, [1, 0, 0]);
    // Everything ended, each allowed to: the first failure decides.
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 137);
}

#[test]
fn not_ready_in_time_is_a_failure_of_the_instance() {
    let mut sim = Sim::new(vec![
        with(spec("db.1", Policy::default()), Check::Port(None), &[]),
        with(spec("web.1", Policy::default()), Check::Started, &["db"]),
    ]);
    assert_eq!(sim.m.next_deadline(), Some(sim.t0 + Duration::from_secs(5)));
    sim.advance_to(4.9);
    assert!(sim.signals_to(0).is_empty());
    sim.advance_to(5.0);
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM]);
    assert_eq!(
        probes(&sim),
        [&Action::Probe(Key(0)), &Action::CancelProbe(Key(0))]
    );
    // The program exits 0 on SIGTERM: still a failure.
    sim.exit(0, Outcome::Exited(0));
    let n = sim.notices();
    assert!(
        n.contains(
            &"db.1 not ready within 5s (waited until port 5000 accepts connections): it has failed"
                .to_owned()
        ),
        "{n:?}"
    );
    assert!(sim.m.finished(), "{n:?}");
    assert_eq!(sim.m.exit_code(), 1);
    assert_eq!(sim.spawns, [1, 0]);
}

#[test]
fn a_ready_timeout_goes_through_the_restart_policy() {
    let mut sim = Sim::new(vec![
        with(
            spec("db.1", restarting(Restart::OnFailure)),
            Check::Port(None),
            &[],
        ),
        with(spec("web.1", Policy::default()), Check::Started, &["db"]),
    ]);
    sim.advance_to(5.0);
    sim.exit(0, Outcome::Killed(15));
    assert!(
        sim.notices()
            .contains(&"db.1 killed by SIGTERM; restarting in 1s (restart 1 of 3)".to_owned()),
        "{:?}",
        sim.notices()
    );
    sim.advance_to(6.0);
    assert_eq!(sim.spawns, [2, 0]);
    // The new run is probed again, with a new deadline.
    assert_eq!(
        sim.m.next_deadline(),
        Some(sim.t0 + Duration::from_secs(11))
    );
    sim.send(Input::Ready { key: Key(0) });
    assert_eq!(sim.spawns, [2, 1]);
}

#[test]
fn a_restarted_dependency_must_be_ready_again() {
    let mut sim = Sim::new(vec![
        with(
            spec("db.1", restarting(Restart::Always)),
            Check::Port(None),
            &[],
        ),
        with(
            spec("web.1", restarting(Restart::Always)),
            Check::Started,
            &["db"],
        ),
    ]);
    sim.send(Input::Ready { key: Key(0) });
    assert_eq!(sim.spawns, [1, 1]);
    sim.now = Duration::from_secs(1);
    sim.exit(0, Outcome::Exited(1));
    sim.exit(1, Outcome::Exited(1));
    assert!(!sim.m.is_ready(Key(0)));
    sim.advance_to(2.0);
    // db runs again but is not ready yet: web waits for it anew.
    assert_eq!(sim.spawns, [2, 1]);
    assert_eq!(
        sim.notices()
            .iter()
            .filter(|n| *n == "web.1 waits for db")
            .count(),
        2
    );
    sim.send(Input::Ready { key: Key(0) });
    assert_eq!(sim.spawns, [2, 2]);
}

#[test]
fn a_ready_report_for_a_run_not_probed_is_ignored() {
    let mut sim = Sim::new(vec![with(
        spec("db.1", Policy::default()),
        Check::Port(None),
        &[],
    )]);
    sim.send(Input::Ready { key: Key(0) });
    let before = sim.notices().len();
    sim.send(Input::Ready { key: Key(0) });
    assert_eq!(sim.notices().len(), before);
}

#[test]
fn stopping_cancels_probes_and_pending_dependents() {
    let mut sim = Sim::new(vec![
        with(spec("db.1", Policy::default()), Check::Port(None), &[]),
        with(spec("web.1", Policy::default()), Check::Started, &["db"]),
    ]);
    sim.send(Input::Signal(libc::SIGINT));
    assert_eq!(
        probes(&sim),
        [&Action::Probe(Key(0)), &Action::CancelProbe(Key(0))]
    );
    assert_eq!(sim.m.state(Key(1)), State::Ended);
    sim.all_die_of(2);
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 130);
}

#[test]
fn with_after_dependents_stop_first_each_level_with_its_timeout() {
    let quick = Policy {
        stop_timeout: Duration::from_secs(2),
        ..Policy::default()
    };
    let mut sim = Sim::new(vec![
        spec("db.1", Policy::default()),
        with(spec("web.1", quick), Check::Started, &["db"]),
        with(
            spec("worker.1", Policy::default()),
            Check::Started,
            &["web"],
        ),
        spec("clock.1", Policy::default()),
    ]);
    assert_eq!(sim.spawns, [1, 1, 1, 1]);
    sim.send(Input::Signal(libc::SIGTERM));
    // Level 3 (worker) first; nothing else yet.
    assert_eq!(sim.signals_to(2), [Signal::SIGTERM]);
    assert!(sim.signals_to(1).is_empty());
    assert!(sim.signals_to(0).is_empty());
    assert!(!sim.log.contains(&Action::SignalStrays(Signal::SIGTERM)));
    sim.exit(2, Outcome::Killed(15));
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM]);
    assert!(sim.signals_to(0).is_empty());
    // web has 2 s before SIGKILL, its own timeout.
    sim.run_to_deadline();
    assert_eq!(sim.now, Duration::from_secs(2));
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM, Signal::SIGKILL]);
    sim.exit(1, Outcome::Killed(9));
    // Then db and clock, level 1, together; then the strays.
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM]);
    assert_eq!(sim.signals_to(3), [Signal::SIGTERM]);
    sim.exit(0, Outcome::Killed(15));
    assert!(!sim.log.contains(&Action::SignalStrays(Signal::SIGTERM)));
    sim.exit(3, Outcome::Killed(15));
    assert!(sim.log.contains(&Action::SignalStrays(Signal::SIGTERM)));
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 143);
    let stops: Vec<String> = sim
        .notices()
        .into_iter()
        .filter(|n| n.starts_with("stopping"))
        .collect();
    assert_eq!(
        stops,
        [
            "stopping 1 process: SIGTERM, then SIGKILL after 5s",
            "stopping 1 process: SIGTERM, then SIGKILL after 2s",
            "stopping 2 processes: SIGTERM, then SIGKILL after 5s",
        ]
    );
}

#[test]
fn the_stop_signal_again_kills_every_level_at_once() {
    let mut sim = Sim::new(vec![
        spec("db.1", Policy::default()),
        with(spec("web.1", Policy::default()), Check::Started, &["db"]),
    ]);
    sim.send(Input::Signal(libc::SIGINT));
    assert!(sim.signals_to(0).is_empty());
    sim.send(Input::Signal(libc::SIGINT));
    assert_eq!(sim.signals_to(0), [Signal::SIGKILL]);
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM, Signal::SIGKILL]);
    sim.all_die_of(9);
    assert!(sim.m.finished());
}

#[test]
fn an_ended_dependency_does_not_hold_up_the_stop() {
    // db (can die) has ended: stopping web goes straight to the strays.
    let mut sim = Sim::new(vec![
        spec("migrate.1", one_shot()),
        with(
            spec("web.1", Policy::default()),
            Check::Started,
            &["migrate"],
        ),
    ]);
    sim.exit(0, Outcome::Exited(0));
    sim.send(Input::Signal(libc::SIGTERM));
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM]);
    sim.exit(1, Outcome::Killed(15));
    assert!(sim.log.contains(&Action::SignalStrays(Signal::SIGTERM)));
    assert!(sim.m.finished());
}

#[test]
fn a_one_shot_that_cannot_start_skips_its_dependents() {
    let mut sim = Sim {
        m: Machine::new(vec![
            spec("migrate.1", one_shot()),
            with(spec("web.1", one_shot()), Check::Started, &["migrate"]),
        ]),
        t0: Instant::now(),
        now: Duration::ZERO,
        next_pid: 100,
        fail_spawn: [Key(0)].into(),
        log: Vec::new(),
        spawns: vec![0; 2],
    };
    let actions = sim.m.start(sim.t0);
    sim.apply(actions);
    assert_eq!(sim.spawns, [1, 0]);
    let n = sim.notices();
    assert!(
        n.contains(&"web.1 skipped: migrate.1 failed to start".to_owned()),
        "{n:?}"
    );
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 127);
}
