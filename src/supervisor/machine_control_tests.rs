//! Control requests driven through the fake children and clock of
//! [`super::Sim`].

use super::*;

fn control(sim: &mut Sim, request: Control) {
    sim.send(Input::Control {
        request,
        from: Some(77),
    });
}

fn two_webs() -> Sim {
    Sim::new(vec![
        spec("web.1", Policy::default()),
        spec("web.2", Policy::default()),
    ])
}

#[test]
fn restart_stops_with_the_stop_signal_then_starts_the_same_instance() {
    let mut sim = two_webs();
    control(&mut sim, Control::Restart(vec![Key(0)]));
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM]);
    assert!(sim.signals_to(1).is_empty(), "the other one runs on");
    sim.exit(0, Outcome::Killed(15));
    assert_eq!(sim.spawns, [2, 1], "started again, at once");
    assert!(!sim.m.finished());
    assert!(sim.m.stop().is_none(), "a requested stop is not an exit");
    assert_eq!(sim.m.status(Key(0)).state, "running");
    assert_eq!(sim.m.restarts(Key(0)), 1);
    let n = sim.notices();
    assert!(
        n.contains(&"restart of web.1 requested from pid 77".to_owned()),
        "{n:?}"
    );
}

#[test]
fn a_second_restart_while_stopping_joins_the_first() {
    let mut sim = two_webs();
    control(&mut sim, Control::Restart(vec![Key(0)]));
    control(&mut sim, Control::Restart(vec![Key(0)]));
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM], "one stop signal");
    sim.exit(0, Outcome::Killed(15));
    assert_eq!(sim.spawns, [2, 1], "one new start");
}

#[test]
fn restart_gets_sigkill_after_the_stop_timeout() {
    let mut sim = two_webs();
    control(&mut sim, Control::Restart(vec![Key(1)]));
    assert!(sim.run_to_deadline());
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM, Signal::SIGKILL]);
    sim.exit(1, Outcome::Killed(9));
    assert_eq!(sim.spawns, [1, 2]);
}

#[test]
fn stopped_instances_stay_stopped_and_the_app_ends_when_none_is_left() {
    let mut sim = two_webs();
    control(&mut sim, Control::Stop(vec![Key(0)]));
    sim.exit(0, Outcome::Killed(15));
    assert_eq!(sim.m.status(Key(0)).state, "stopped");
    assert!(sim.m.stop().is_none(), "web.2 runs on");
    assert_eq!(sim.spawns, [1, 1], "not restarted");
    control(&mut sim, Control::Stop(vec![Key(1)]));
    sim.exit(1, Outcome::Killed(15));
    assert!(sim.m.finished(), "nothing is left running");
    assert_eq!(sim.m.exit_code(), 0);
}

#[test]
fn restart_starts_a_stopped_instance() {
    let mut sim = two_webs();
    control(&mut sim, Control::Stop(vec![Key(0)]));
    sim.exit(0, Outcome::Killed(15));
    control(&mut sim, Control::Restart(vec![Key(0)]));
    assert_eq!(sim.spawns, [2, 1]);
    assert_eq!(sim.m.status(Key(0)).state, "running");
    // Its end now counts again.
    sim.exit(0, Outcome::Exited(4));
    assert_eq!(sim.m.stop(), Some(Stop::Instance(Outcome::Exited(4))));
}

#[test]
fn restart_of_an_instance_in_backoff_starts_it_now_with_a_fresh_streak() {
    let mut sim = Sim::new(vec![spec("web.1", restarting(Restart::Always))]);
    sim.exit(0, Outcome::Exited(1));
    assert_eq!(sim.m.status(Key(0)).state, "backoff");
    control(&mut sim, Control::Restart(vec![Key(0)]));
    assert_eq!(sim.spawns, [2], "no wait for the backoff");
    sim.exit(0, Outcome::Exited(1));
    let n = sim.notices();
    assert!(
        n.last().is_some_and(|l| l.contains("restart 1 of 3")),
        "the streak started over: {n:?}"
    );
}

#[test]
fn scale_up_adds_instances_and_scale_down_stops_the_highest_first() {
    let mut sim = two_webs();
    let third = sim.m.add(spec("web.3", Policy::default()));
    assert_eq!(third, Key(2));
    assert_eq!(sim.m.find("web", 3), Some(third));
    assert_eq!(
        sim.m.shown().count(),
        2,
        "added, not shown before the scale"
    );
    control(
        &mut sim,
        Control::Scale {
            type_name: "web".into(),
            count: 3,
        },
    );
    assert_eq!(sim.spawns, [1, 1, 1]);
    assert_eq!(sim.m.shown().count(), 3);
    control(
        &mut sim,
        Control::Scale {
            type_name: "web".into(),
            count: 1,
        },
    );
    assert_eq!(sim.signals_to(2), [Signal::SIGTERM]);
    assert_eq!(sim.signals_to(1), [Signal::SIGTERM]);
    assert!(sim.signals_to(0).is_empty());
    sim.exit(1, Outcome::Killed(15));
    sim.exit(2, Outcome::Killed(15));
    assert!(sim.m.stop().is_none(), "scaled away is not an exit");
    assert_eq!(sim.m.shown().collect::<Vec<_>>(), [Key(0)]);
    // Scaling up again brings back the same instance (same key, PORT, PS).
    control(
        &mut sim,
        Control::Scale {
            type_name: "web".into(),
            count: 2,
        },
    );
    assert_eq!(sim.spawns, [1, 2, 1]);
}

#[test]
fn signal_reaches_only_the_named_running_instances() {
    let mut sim = two_webs();
    control(&mut sim, Control::Signal(vec![Key(1)], Signal::SIGHUP));
    assert_eq!(sim.signals_to(1), [Signal::SIGHUP]);
    assert!(sim.signals_to(0).is_empty());
    assert!(sim.m.stop().is_none());
    assert!(
        sim.notices()
            .contains(&"SIGHUP to web.2 requested from pid 77".to_owned())
    );
}

#[test]
fn quit_stops_like_sigterm() {
    let mut sim = two_webs();
    control(&mut sim, Control::Quit);
    assert_eq!(sim.signals_to(0), [Signal::SIGTERM]);
    sim.all_die_of(15);
    assert!(sim.m.finished());
    assert_eq!(sim.m.exit_code(), 143);
}

#[test]
fn requests_while_stopping_are_ignored() {
    let mut sim = two_webs();
    sim.send(Input::Signal(libc::SIGINT));
    control(&mut sim, Control::Restart(vec![Key(0)]));
    sim.all_die_of(15);
    assert!(sim.m.finished(), "nothing was started again");
    assert_eq!(sim.spawns, [1, 1]);
}

#[test]
fn a_restarted_dependency_must_be_ready_again() {
    let mut db = spec("db.1", Policy::default());
    db.readiness.check = Check::Port(None);
    let mut web = spec("web.1", Policy::default());
    web.readiness.after = vec!["db".into()];
    let mut sim = Sim::new(vec![db, web]);
    sim.send(Input::Ready { key: Key(0) });
    assert_eq!(sim.spawns, [1, 1]);
    assert_eq!(sim.m.status(Key(0)).state, "ready");
    control(&mut sim, Control::Restart(vec![Key(0)]));
    sim.exit(0, Outcome::Killed(15));
    assert_eq!(sim.spawns, [2, 1]);
    assert_eq!(sim.m.status(Key(0)).state, "running", "not ready yet");
}

#[test]
fn signal_names_parse_with_or_without_sig_or_as_numbers() {
    assert_eq!(parse_signal("HUP"), Some(Signal::SIGHUP));
    assert_eq!(parse_signal("sigusr1"), Some(Signal::SIGUSR1));
    assert_eq!(parse_signal("9"), Some(Signal::SIGKILL));
    assert_eq!(parse_signal("NOPE"), None);
    assert_eq!(parse_signal("0"), None);
}
