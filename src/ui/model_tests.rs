//! The model without a terminal: `ps` answers and log lines in, keys'
//! intents in, requests out.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::ui::keys::Intent;
use crate::ui::logs::{Incoming, Kind};
use crate::ui::model::{
    Call, Effect, Ended, MAX_IN_FLIGHT, Model, Overlay, Ps, Row, Selected, State,
};

fn ps(list: Value) -> Ps {
    serde_json::from_value(list).expect("a ps answer")
}

/// web.1 running, web.2 stopped, worker at 0.
fn app(foreground: bool) -> Model {
    let mut m = Model::new("test".into(), foreground);
    m.apply_ps(ps(json!({
        "instances": [
            {"name":"web.1","type":"web","pid":41,"state":"running","port":5000,"restarts":0,
             "started_at":"2026-01-01T00:00:00Z","cpu_percent":1.5,"rss_bytes":1024,"future":true},
            {"name":"web.2","type":"web","pid":null,"state":"stopped","port":5001,"restarts":2},
        ],
        "types": [{"name":"web","count":2},{"name":"worker","count":0}],
    })));
    m
}

fn calls(effects: &[Effect]) -> Vec<&Call> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Call(c) => Some(c),
            _ => None,
        })
        .collect()
}

fn line(name: &str, text: &str) -> Incoming<'static> {
    Incoming {
        time: None,
        name: name.to_owned().into(),
        kind: Kind::Out,
        text: text.into(),
    }
}

#[test]
fn rows_are_all_the_instances_and_the_types_without_one() {
    let m = app(false);
    let rows = m.rows();
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0], Row::All);
    assert!(
        matches!(rows[1], Row::Instance(i) if i.name == "web.1" && i.state() == State::Running)
    );
    assert!(matches!(rows[3], Row::Type(t) if t.name == "worker"));
    assert_eq!(m.type_index("worker"), Some(1));
    let web1 = m.instances[0].clone();
    assert_eq!(web1.cpu_percent, Some(1.5));
    assert!(web1.uptime(std::time::SystemTime::now()).is_some());
}

#[test]
fn the_selection_follows_its_instance_and_falls_back_to_its_type() {
    let now = Instant::now();
    let mut m = app(false);
    m.apply(Intent::Select(2), now);
    assert_eq!(m.selected, Selected::Instance("web.2".into()));
    // A refresh with web.1 gone: web.2 stays selected.
    m.apply_ps(ps(
        json!({"instances":[{"name":"web.2","type":"web","state":"stopped"}]}),
    ));
    assert_eq!(m.selected, Selected::Instance("web.2".into()));
    // web scaled to 0: its type's row.
    m.apply_ps(ps(
        json!({"instances":[], "types":[{"name":"web","count":0}]}),
    ));
    assert_eq!(m.selected, Selected::Type("web".into()));
    m.apply(Intent::Select(-5), now);
    assert_eq!(m.selected, Selected::All);
}

#[test]
fn keys_on_an_instance_become_requests() {
    let now = Instant::now();
    let mut m = app(false);
    m.apply(Intent::Select(1), now);
    let e = m.apply(Intent::Restart, now);
    assert_eq!(calls(&e)[0].method, "restart");
    assert_eq!(calls(&e)[0].params, json!({"names":["web.1"]}));
    let e = m.apply(Intent::Stop, now);
    assert_eq!(calls(&e)[0].method, "stop");
    // S on a running instance, s on a stopped one: refused, said why.
    assert!(m.apply(Intent::Start, now).is_empty());
    assert!(
        m.message(now)
            .is_some_and(|msg| msg.error && msg.text.contains("r restarts"))
    );
    m.apply(Intent::Select(1), now);
    assert!(m.apply(Intent::Stop, now).is_empty());
    assert!(
        m.message(now)
            .is_some_and(|msg| msg.text == "web.2 is already stopped")
    );
    let e = m.apply(Intent::Start, now);
    assert_eq!(
        calls(&e)[0].method,
        "restart",
        "a stopped instance is started by a restart"
    );
    assert_eq!(calls(&e)[0].label, "start of web.2");
    assert_eq!(m.in_flight, 3);
    let done = m.apply_done(calls(&e)[0], Ok(json!({})), now);
    assert_eq!(done, vec![Effect::Poll]);
    assert_eq!(m.in_flight, 2);
    assert!(
        m.message(now + Duration::from_secs(60)).is_none(),
        "messages expire"
    );
}

#[test]
fn what_is_hard_to_take_back_asks_first() {
    let now = Instant::now();
    let mut m = app(false);
    // Restart from "all": every instance, after a yes.
    assert!(m.apply(Intent::Restart, now).is_empty());
    assert!(
        matches!(&m.overlay, Overlay::Confirm { question, .. } if question == "Restart all 2 instances?")
    );
    let e = m.apply(Intent::Answer(true), now);
    assert_eq!(calls(&e)[0].params, json!({"names":[]}));
    assert_eq!(m.overlay, Overlay::None);
    // SIGKILL: a no sends nothing.
    m.apply(Intent::Select(1), now);
    assert!(m.apply(Intent::Kill, now).is_empty());
    assert!(matches!(&m.overlay, Overlay::Confirm { question, .. } if question.contains("pid 41")));
    assert!(m.apply(Intent::Answer(false), now).is_empty());
    m.apply(Intent::Kill, now);
    let e = m.apply(Intent::Answer(true), now);
    assert_eq!(
        calls(&e)[0].params,
        json!({"signal":"KILL","names":["web.1"]})
    );
    // Nothing to kill on a stopped instance.
    m.apply(Intent::Select(1), now);
    assert!(m.apply(Intent::Kill, now).is_empty());
    assert_eq!(m.overlay, Overlay::None);
}

#[test]
fn scaling_counts_from_what_was_asked_until_ps_shows_it() {
    let now = Instant::now();
    let mut m = app(false);
    m.apply(Intent::Select(1), now);
    let e = m.apply(Intent::ScaleUp, now);
    assert_eq!(calls(&e)[0].params, json!({"counts":{"web":3}}));
    let e = m.apply(Intent::ScaleUp, now);
    assert_eq!(
        calls(&e)[0].params,
        json!({"counts":{"web":4}}),
        "twice before ps: 4"
    );
    // The type row of a type at 0 scales it up.
    m.apply(Intent::Select(10), now);
    assert_eq!(m.selected, Selected::Type("worker".into()));
    assert!(m.apply(Intent::ScaleDown, now).is_empty(), "below 0");
    let e = m.apply(Intent::ScaleUp, now);
    assert_eq!(calls(&e)[0].params, json!({"counts":{"worker":1}}));
    assert!(m.apply(Intent::Restart, now).is_empty());
    // From "all": no type.
    m.apply(Intent::Select(-10), now);
    assert!(m.apply(Intent::ScaleUp, now).is_empty());
}

#[test]
fn requests_in_flight_are_bounded() {
    let now = Instant::now();
    let mut m = app(false);
    m.apply(Intent::Select(1), now);
    for _ in 0..MAX_IN_FLIGHT {
        assert_eq!(calls(&m.apply(Intent::Restart, now)).len(), 1);
    }
    assert!(m.apply(Intent::Restart, now).is_empty());
    assert!(m.message(now).is_some_and(|msg| msg.error));
}

#[test]
fn quitting_leaves_the_app_running_unless_in_the_foreground() {
    let now = Instant::now();
    let mut m = app(false);
    assert_eq!(m.apply(Intent::Quit, now), vec![Effect::Quit]);

    let mut m = app(true);
    assert!(m.apply(Intent::Quit, now).is_empty());
    assert!(
        matches!(&m.overlay, Overlay::Confirm { question, .. } if question.contains("1 process running"))
    );
    let e = m.apply(Intent::Answer(true), now);
    assert_eq!(calls(&e)[0].method, "quit");
    assert!(m.quitting);
    assert!(m.apply(Intent::Quit, now).is_empty(), "a second q waits");
    let call = calls(&e)[0].clone();
    assert_eq!(
        m.apply_done(&call, Ok(json!({"exit_code":143})), now),
        vec![Effect::Quit]
    );
    assert_eq!(m.ended.as_ref().and_then(|e| e.exit_code), Some(143));

    // Nothing running: no question.
    let mut m = Model::new("t".into(), true);
    m.apply_ps(ps(
        json!({"instances":[{"name":"a.1","type":"a","state":"exited"}]}),
    ));
    assert_eq!(calls(&m.apply(Intent::Quit, now)).len(), 1);
}

#[test]
fn the_end_of_the_app_waits_for_a_key() {
    let now = Instant::now();
    let mut m = app(false);
    m.apply(Intent::Help, now);
    let ended = Ended {
        exit_code: Some(1),
        reason: "the app has stopped (exit code 1)".into(),
    };
    assert!(m.apply_end(ended).is_empty());
    assert_eq!(m.overlay, Overlay::None);
    assert!(m.apply(Intent::None, now).is_empty());
    assert_eq!(m.apply(Intent::Restart, now), vec![Effect::Quit]);
    m.apply_ps_failed("gone", now);
    assert!(
        m.message(now).is_none(),
        "after the end, a failed ps is no news"
    );
}

#[test]
fn scrolling_stops_following_and_stays_on_its_lines() {
    let now = Instant::now();
    let mut m = app(false);
    m.pane.rows = 10;
    m.apply_lines((0..100).map(|i| line("web.1", &format!("{i}"))));
    assert!(m.pane.follow);
    m.apply(Intent::PageUp, now);
    assert_eq!((m.pane.offset, m.pane.follow), (9, false));
    m.apply_lines(vec![line("web.1", "new"), line("web.2", "other")]);
    assert_eq!(m.pane.offset, 11, "in all, both lines push the view");
    m.apply(Intent::ScrollDown(100), now);
    assert_eq!((m.pane.offset, m.pane.follow), (0, true));
    m.apply(Intent::Top, now);
    assert_eq!(m.pane.offset, 102 - 10);
    // Another instance's view: only its own lines count.
    m.apply(Intent::Select(1), now);
    assert!(m.pane.follow, "a new selection follows");
    m.apply(Intent::HalfUp, now);
    let before = m.pane.offset;
    m.apply_lines(vec![line("web.2", "not mine")]);
    assert_eq!(m.pane.offset, before);
    m.apply(Intent::Follow, now);
    assert_eq!((m.pane.offset, m.pane.follow), (0, true));
}

#[test]
fn search_moves_between_matches_older_and_newer() {
    let now = Instant::now();
    let mut m = app(false);
    m.pane.rows = 4;
    let texts = [
        "boot",
        "ERROR one",
        "ok",
        "error two",
        "ok",
        "ok",
        "ok",
        "ok",
    ];
    m.apply_lines(texts.iter().map(|t| line("web.1", t)));
    m.apply(Intent::SearchStart, now);
    for c in "error".chars() {
        m.apply(Intent::SearchType(c), now);
    }
    m.apply(Intent::SearchErase, now);
    m.apply(Intent::SearchType('r'), now);
    assert_eq!(m.overlay, Overlay::Search("error".into()));
    m.apply(Intent::SearchSubmit, now);
    assert_eq!(m.search.as_deref(), Some("error"));
    // The newest match, mid-pane: line 3, with 2 lines below it.
    assert_eq!((m.pane.offset, m.pane.follow), (2, false));
    m.apply(Intent::NextMatch, now);
    assert_eq!(m.pane.offset, 4, "line 1");
    m.apply(Intent::NextMatch, now);
    assert!(
        m.message(now)
            .is_some_and(|msg| msg.text == "no older match: error")
    );
    m.apply(Intent::PreviousMatch, now);
    assert_eq!(m.pane.offset, 2);
    m.apply(Intent::Close, now);
    assert_eq!(m.search, None);
    m.apply(Intent::SearchStart, now);
    m.apply(Intent::SearchType('x'), now);
    m.apply(Intent::SearchSubmit, now);
    assert!(m.message(now).is_some_and(|msg| msg.text == "not found: x"));
}
