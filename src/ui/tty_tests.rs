//! The connected view without a terminal or a socket: `Enter` in,
//! `attach` out; the connection's reports in, the emulated screen and the
//! typed bytes out; and a whole frame on ratatui's test backend.

use std::time::{Instant, SystemTime};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::style::{Color, Modifier};
use serde_json::json;

use super::*;
use crate::ui::keys::Intent;
use crate::ui::model::{Ended, Overlay};

/// web.1 on a terminal and running, worker.1 on pipes, db.1 on a
/// terminal but stopped.
fn app() -> Model {
    let mut m = Model::new("test".into(), false);
    m.apply_ps(
        serde_json::from_value(json!({
            "instances": [
                {"name":"web.1","type":"web","pid":41,"state":"running","tty":true},
                {"name":"worker.1","type":"worker","pid":42,"state":"running","tty":false},
                {"name":"db.1","type":"db","pid":null,"state":"stopped","tty":true},
            ],
        }))
        .expect("ps"),
    );
    m.pane.rows = 12;
    m.pane.cols = 60;
    m
}

fn key(code: KeyCode) -> KeyEvent {
    KeyEvent::new(code, KeyModifiers::NONE)
}

fn ctrl(c: char) -> KeyEvent {
    KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
}

fn said(m: &Model) -> String {
    m.message
        .as_ref()
        .map(|m| m.text.clone())
        .unwrap_or_default()
}

/// Selects web.1 and connects: attached as link 1.
fn connected() -> Model {
    let now = Instant::now();
    let mut m = app();
    m.apply(Intent::Select(1), now);
    let effects = m.apply(Intent::Connect, now);
    assert_eq!(
        effects,
        [Effect::Attach {
            link: 1,
            name: "web.1".into(),
            rows: 12,
            cols: 60
        }],
        "attached at the pane's inner size"
    );
    let attached = Event::Attached {
        link: 1,
        name: "web.1".into(),
        pid: Some(41),
    };
    assert!(m.apply_tty(attached, now).is_empty());
    m
}

#[test]
fn enter_on_a_tty_instance_connects_the_pane() {
    let now = Instant::now();
    let mut m = app();
    m.apply(Intent::Select(1), now);
    m.apply(Intent::Connect, now);
    let tty = m.tty.as_ref().expect("connecting");
    assert_eq!(tty.phase, Phase::Connecting);
    assert!(
        tty.title().contains("web.1 · connecting…"),
        "{}",
        tty.title()
    );
    assert_eq!(tty.screen().size().0.get(), 12);
    let m = connected();
    let tty = m.tty.as_ref().expect("connected");
    assert_eq!((tty.phase, tty.pid), (Phase::Connected, Some(41)));
    assert_eq!(
        tty.title(),
        " web.1 · connected (pid 41) · Ctrl-] detaches "
    );
    assert_eq!(
        said(&m),
        "connected to web.1: every key goes to it; Ctrl-] detaches"
    );
}

#[test]
fn enter_elsewhere_says_why_it_cannot_connect() {
    let now = Instant::now();
    let mut m = app();
    m.apply(Intent::Select(2), now);
    assert!(m.apply(Intent::Connect, now).is_empty());
    assert!(m.tty.is_none());
    assert_eq!(
        said(&m),
        "worker.1 runs without a terminal: start it with `procrun start --tty=worker` (or tty = true in procrun.toml) to connect to it"
    );
    assert!(m.message.as_ref().is_some_and(|m| m.error));
    m.apply(Intent::Select(1), now);
    assert!(m.apply(Intent::Connect, now).is_empty());
    assert_eq!(said(&m), "db.1 is stopped: no terminal to connect to");
    m.apply(Intent::Select(-9), now);
    assert!(m.apply(Intent::Connect, now).is_empty());
    assert!(said(&m).starts_with("select an instance that runs on a terminal"));
}

#[test]
fn output_is_emulated_with_colours_and_the_cursor() {
    let now = Instant::now();
    let mut m = connected();
    let out = b"hello \x1b[1;31mred\x1b[0m\r\n\xe6\xbc\xa2x \x1b]0;title\x07prompt> ".to_vec();
    m.apply_tty(
        Event::Output {
            link: 1,
            bytes: out,
        },
        now,
    );
    let tty = m.tty.as_ref().expect("connected");
    let lines = tty.lines();
    assert_eq!(lines.len(), 12, "one line per row of the pane");
    let row = |i: usize| -> String { lines[i].spans.iter().map(|s| s.content.as_ref()).collect() };
    assert_eq!(row(0).trim_end(), "hello red");
    assert_eq!(row(0).chars().count(), 60, "the whole width");
    assert_eq!(
        row(1).trim_end(),
        "漢x prompt>",
        "a wide character, no title"
    );
    let red = lines[0]
        .spans
        .iter()
        .find(|s| s.content == "red")
        .expect("a span of its own");
    assert_eq!(red.style.fg, Some(Color::Red));
    assert!(red.style.add_modifier.contains(Modifier::BOLD));
    assert_eq!(
        tty.cursor(),
        Some((1, 12)),
        "after the wide character and the prompt"
    );
    m.apply_tty(
        Event::Output {
            link: 1,
            bytes: b"\x1b[?25l".to_vec(),
        },
        now,
    );
    assert_eq!(m.tty.as_ref().and_then(Tty::cursor), None, "hidden");
}

#[test]
fn the_emulator_keeps_no_scrollback() {
    let now = Instant::now();
    let mut m = connected();
    let many: Vec<u8> = (0..5_000)
        .flat_map(|i| format!("line {i}\r\n").into_bytes())
        .collect();
    m.apply_tty(
        Event::Output {
            link: 1,
            bytes: many,
        },
        now,
    );
    let screen = m.tty.as_ref().expect("connected").screen();
    assert_eq!(screen.scrollback_len(), 0);
    assert!(screen.contents().contains("line 4999"));
    assert!(!screen.contents().contains("line 4000"));
}

#[test]
fn every_key_goes_to_the_instance_until_ctrl_bracket() {
    let now = Instant::now();
    let mut m = connected();
    assert_eq!(
        m.apply_key(key(KeyCode::Char('q')), now),
        [Effect::Type(b"q".to_vec())]
    );
    assert_eq!(m.apply_key(ctrl('c'), now), [Effect::Type(vec![0x03])]);
    assert_eq!(m.apply_key(ctrl('z'), now), [Effect::Type(vec![0x1a])]);
    assert_eq!(
        m.apply_key(key(KeyCode::Enter), now),
        [Effect::Type(b"\r".to_vec())]
    );
    assert_eq!(m.apply_key(key(KeyCode::Char('?')), now).len(), 1);
    assert_eq!(m.overlay, Overlay::None, "no help over the terminal");
    // A full-screen program switches the arrows to application mode.
    m.apply_tty(
        Event::Output {
            link: 1,
            bytes: b"\x1b[?1h".to_vec(),
        },
        now,
    );
    assert_eq!(
        m.apply_key(key(KeyCode::Up), now),
        [Effect::Type(b"\x1bOA".to_vec())]
    );
    assert_eq!(m.apply_key(ctrl(']'), now), [Effect::Detach]);
    assert!(m.tty.is_none());
    assert_eq!(said(&m), "detached from web.1; it keeps running");
    // The dashboard's keys again.
    assert_eq!(m.apply_key(key(KeyCode::Char('q')), now), [Effect::Quit]);
}

#[test]
fn reports_of_an_earlier_connection_are_ignored() {
    let now = Instant::now();
    let mut m = connected();
    m.apply_key(ctrl('5'), now);
    let effects = m.apply(Intent::Connect, now);
    assert!(matches!(effects[..], [Effect::Attach { link: 2, .. }]));
    let old = [
        Event::Output {
            link: 1,
            bytes: b"stale".to_vec(),
        },
        Event::Ended {
            link: 1,
            failed: true,
            message: "lost".into(),
        },
        Event::Refused {
            link: 1,
            reason: "no".into(),
        },
    ];
    for event in old {
        assert!(m.apply_tty(event, now).is_empty());
    }
    let tty = m.tty.as_ref().expect("still connecting");
    assert_eq!((tty.link, tty.phase), (2, Phase::Connecting));
    assert!(!tty.screen().contents().contains("stale"));
}

#[test]
fn the_end_of_the_instance_or_the_app_leaves_the_view() {
    let now = Instant::now();
    let mut m = connected();
    let ended = Event::Ended {
        link: 1,
        failed: false,
        message: "web.1 has exited".into(),
    };
    assert_eq!(m.apply_tty(ended, now), [Effect::Detach, Effect::Poll]);
    assert!(m.tty.is_none());
    assert_eq!(said(&m), "web.1 has exited: disconnected");
    assert!(!m.message.as_ref().is_some_and(|m| m.error));

    let mut m = connected();
    let effects = m.apply_end(Ended {
        exit_code: Some(0),
        reason: "the app has stopped (exit code 0)".into(),
    });
    assert_eq!(effects, [Effect::Detach]);
    assert!(m.tty.is_none());
    assert_eq!(said(&m), "disconnected from web.1: the app has ended");

    let mut m = app();
    m.apply(Intent::Select(1), now);
    m.apply(Intent::Connect, now);
    let refused = Event::Refused {
        link: 1,
        reason: "web.1 is not running (stopped)".into(),
    };
    assert_eq!(m.apply_tty(refused, now), [Effect::Detach]);
    assert!(m.tty.is_none());
    assert_eq!(said(&m), "web.1 is not running (stopped)");
    assert!(m.message.as_ref().is_some_and(|m| m.error));
}

#[test]
fn a_new_pane_size_is_given_to_the_instance_once() {
    let mut m = connected();
    assert_eq!(m.take_tty_resize(), None, "attached at this size");
    let tty = m.tty.as_mut().expect("connected");
    tty.fit(12, 60);
    assert_eq!(tty.take_resize(), None);
    tty.fit(30, 100);
    let (rows, cols) = tty.screen().size();
    assert_eq!((rows.get(), cols.get()), (30, 100), "the emulator at once");
    assert_eq!(
        m.take_tty_resize(),
        Some(Effect::Resize {
            rows: 30,
            cols: 100
        })
    );
    assert_eq!(m.take_tty_resize(), None);
}

#[test]
fn a_frame_shows_the_terminal_in_the_pane_with_its_cursor() {
    let now = Instant::now();
    let mut m = connected();
    m.apply_tty(
        Event::Output {
            link: 1,
            bytes: b"got: \x1b[32mhi\x1b[m\r\n$ ".to_vec(),
        },
        now,
    );
    let mut t = Terminal::new(TestBackend::new(80, 24)).expect("a test terminal");
    t.draw(|f| crate::ui::view::draw(f, &mut m, now, SystemTime::now()))
        .expect("drawn");
    let buffer = t.backend().buffer().clone();
    let row = |y: u16| -> String { (0..80).map(|x| buffer[(x, y)].symbol()).collect() };
    let top = (0..24)
        .find(|&y| row(y).contains("web.1 · connected (pid 41)"))
        .expect("the pane's title");
    assert!(row(top).contains("Ctrl-] detaches"), "{}", row(top));
    assert!(row(top + 1).starts_with("│got: hi "), "{}", row(top + 1));
    assert_eq!(buffer[(6, top + 1)].fg, Color::Green);
    assert!(row(23).starts_with("connected to web.1"), "{}", row(23));
    // The emulator took the pane's inner size; the cursor is after `$ `.
    let tty = m.tty.as_ref().expect("connected");
    let (rows, cols) = tty.screen().size();
    assert_eq!((cols.get(), rows.get()), (78, 24 - 1 - top - 2));
    t.backend_mut().assert_cursor_position((1 + 2, top + 2));
    assert!(m.take_tty_resize().is_some(), "a new size for the instance");
}

#[test]
fn a_terminal_too_small_says_how_to_detach() {
    let mut m = connected();
    let mut t = Terminal::new(TestBackend::new(20, 5)).expect("a test terminal");
    t.draw(|f| crate::ui::view::draw(f, &mut m, Instant::now(), SystemTime::now()))
        .expect("drawn");
    let buffer = t.backend().buffer().clone();
    let text: String = buffer.content().iter().map(|c| c.symbol()).collect();
    assert!(text.contains("Ctrl-] detaches"), "{text}");
}
