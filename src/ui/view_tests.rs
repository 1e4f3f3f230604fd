//! The layout, the list's columns and the output pane's rows, and whole
//! frames drawn on ratatui's test backend at several sizes.

use std::time::{Instant, SystemTime};

use ratatui::Terminal;
use ratatui::backend::TestBackend;
use serde_json::json;

use super::*;
use crate::ui::keys::Intent;
use crate::ui::logs::Incoming;

fn app() -> Model {
    let mut m = Model::new("procrun · /srv/shop".into(), false);
    m.apply_ps(
        serde_json::from_value(json!({
            "instances": [
                {"name":"web.1","type":"web","pid":41,"state":"running","port":5000,"restarts":1,
                 "started_at":"2026-01-01T00:00:00Z","cpu_percent":1.5,"rss_bytes":10_485_760},
                {"name":"worker.1","type":"worker","pid":null,"state":"failed","port":5100,"restarts":3,"exit_code":1},
            ],
            "types": [{"name":"web","count":1},{"name":"worker","count":1},{"name":"clock","count":0}],
        }))
        .expect("ps"),
    );
    m
}

fn push(m: &mut Model, name: &str, text: &str) {
    m.apply_lines(vec![Incoming {
        time: None,
        name: name.to_owned().into(),
        kind: crate::ui::logs::Kind::Out,
        text: text.into(),
    }]);
}

fn screen(m: &mut Model, width: u16, height: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(width, height)).expect("a test terminal");
    t.draw(|f| draw(f, m, Instant::now(), SystemTime::now()))
        .expect("drawn");
    let buffer = t.backend().buffer().clone();
    let mut out = String::new();
    for y in 0..height {
        for x in 0..width {
            out.push_str(buffer[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn text(rows: &[Vec<(String, Style)>]) -> Vec<String> {
    rows.iter()
        .map(|r| r.iter().map(|(t, _)| t.as_str()).collect())
        .collect()
}

#[test]
fn narrow_terminals_stack_the_list_above_the_output() {
    let a = layout(Rect::new(0, 0, 80, 24), 4, 8);
    assert_eq!(a.status, Rect::new(0, 23, 80, 1));
    assert_eq!(
        a.list,
        Rect::new(0, 0, 80, 7),
        "4 rows, a header, two borders"
    );
    assert_eq!(a.pane, Rect::new(0, 7, 80, 16));
    // Many rows: at most two fifths of the height.
    let a = layout(Rect::new(0, 0, 80, 24), 50, 8);
    assert_eq!(a.list.height, 9);
    let wide = layout(Rect::new(0, 0, 160, 40), 50, 8);
    assert_eq!(wide.list.height, 39, "beside the output from 120 columns");
    assert_eq!(wide.list.width, full_width(8) + 2);
    assert_eq!(wide.pane.x, wide.list.width);
}

#[test]
fn columns_give_way_from_the_right_and_the_name_stays() {
    let all: Vec<Column> = columns(78, 8).iter().map(|c| c.0).collect();
    assert_eq!(all, COLUMNS.to_vec());
    let some: Vec<Column> = columns(32, 8).iter().map(|c| c.0).collect();
    assert_eq!(
        some,
        vec![Column::Name, Column::State, Column::Port, Column::Uptime]
    );
    let least = columns(8, 20);
    assert_eq!(least, vec![(Column::Name, 8)]);
}

#[test]
fn the_list_scrolls_to_keep_the_selection() {
    assert_eq!(list_top(0, 3, 5), 0);
    assert_eq!(list_top(0, 7, 5), 3);
    assert_eq!(list_top(4, 2, 5), 2);
    assert_eq!(list_top(9, 2, 0), 0);
}

#[test]
fn cells_show_a_symbol_a_state_and_dashes_for_nothing() {
    let m = app();
    let cols = columns(78, 8);
    let rows = m.rows();
    let now = SystemTime::now();
    let web: Vec<String> = cells(&m, &rows[1], &cols, now)
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(web[0], "● web.1");
    assert_eq!(&web[1..4], ["running", "5000", "1"]);
    assert_eq!(&web[5..], ["1.5", "10.0M"]);
    let worker: Vec<String> = cells(&m, &rows[2], &cols, now)
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(worker, ["✗ worker.1", "failed", "5100", "3", "-", "-", "-"]);
    let all: Vec<String> = cells(&m, &rows[0], &cols, now)
        .into_iter()
        .map(|c| c.0)
        .collect();
    assert_eq!(&all[..2], ["* all", "1/2 up"]);
    assert!(matches!(rows[3], Row::Type(_)));
    assert_eq!(cut("a-very-long-name.1", 8), "a-very-…");
    assert_eq!(cut("漢字漢字", 5), "漢字…");
    assert_eq!(cut("short", 8), "short");
}

#[test]
fn long_lines_wrap_by_columns_or_are_cut() {
    let p = vec![
        ("12345".to_owned(), Style::new()),
        ("漢字x".to_owned(), Style::new()),
    ];
    assert_eq!(text(&wrap(p.clone(), 6, true)), ["12345", "漢字x"]);
    assert_eq!(text(&wrap(p.clone(), 4, true)), ["1234", "5漢", "字x"]);
    assert_eq!(text(&wrap(p, 6, false)), ["12345"]);
}

#[test]
fn the_pane_shows_the_newest_lines_or_the_oldest_when_scrolled_up() {
    let mut m = app();
    m.pane.rows = 3;
    m.apply(Intent::Select(1), Instant::now());
    for i in 0..10 {
        push(&mut m, "web.1", &format!("line {i}"));
    }
    let (rows, offset) = pane_rows(&m, 20, 3);
    assert_eq!(text(&rows), ["line 7", "line 8", "line 9"]);
    assert_eq!(offset, 0);
    m.apply(Intent::ScrollUp(100), Instant::now());
    let (rows, offset) = pane_rows(&m, 20, 3);
    assert_eq!(text(&rows), ["line 0", "line 1", "line 2"]);
    assert_eq!(offset, 7, "the offset shown");
    // "all" prefixes each line with its name, as start does.
    m.apply(Intent::Select(-1), Instant::now());
    let (rows, _) = pane_rows(&m, 40, 1);
    assert_eq!(text(&rows), ["web.1    | line 9"]);
}

#[test]
fn a_frame_at_80_by_24_shows_every_instance_and_the_keys() {
    let mut m = app();
    push(&mut m, "web.1", "listening");
    let s = screen(&mut m, 80, 24);
    for want in [
        "procrun · /srv/shop",
        "* all",
        "● web.1",
        "running",
        "✗ worker.1",
        "clock",
        "all · following",
        "web.1    | listening",
        "q quit",
        "? help",
        "r restart",
    ] {
        assert!(s.contains(want), "{want:?} not in\n{s}");
    }
    assert_eq!(m.pane.rows, 24 - 1 - 7 - 2);
    m.apply(Intent::Help, Instant::now());
    let s = screen(&mut m, 80, 24);
    assert!(s.contains("send SIGKILL"), "{s}");
    m.apply(Intent::Close, Instant::now());
    m.apply(Intent::Select(1), Instant::now());
    m.apply(Intent::Kill, Instant::now());
    let s = screen(&mut m, 80, 24);
    assert!(s.contains("Send SIGKILL to web.1 (pid 41)?"), "{s}");
}

#[test]
fn any_size_draws_and_a_tiny_one_says_so() {
    let mut m = app();
    for i in 0..50 {
        push(&mut m, "worker.1", &"wrapped text ".repeat(i));
    }
    for (w, h) in [(30, 8), (80, 24), (119, 30), (120, 30), (250, 80)] {
        let s = screen(&mut m, w, h);
        assert!(s.contains("web.1"), "{w}×{h}\n{s}");
    }
    let s = screen(&mut m, 20, 5);
    assert!(s.contains("too small"), "{s}");
    m.apply_end(crate::ui::model::Ended {
        exit_code: Some(0),
        reason: "the app has stopped (exit code 0)".into(),
    });
    let s = screen(&mut m, 80, 24);
    assert!(
        s.contains("the app has stopped (exit code 0)") && s.contains("press any key"),
        "{s}"
    );
}
