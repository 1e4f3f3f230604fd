//! `start`'s prefix width: long process names are shortened in the middle
//! to `--prefix-width` (default 20), stay distinct, and 0 turns it off.

mod support;
use support::Test;

const PROCFILE: &str = "very-long-name-web: echo web\nvery-long-name-worker: echo worker\nalpha-service-background-worker: echo alpha\ngamma-service-background-worker: echo gamma\n";

/// `start --any-can-die EXTRA…` to its end; the child lines only (not
/// `system`'s), sorted.
fn lines(extra: &[&str], env: &[(&str, &str)]) -> Vec<String> {
    let port = support::free_port().to_string();
    let mut t = Test::new()
        .procfile(PROCFILE)
        .args(["start", "--no-timestamp", "--any-can-die", "-p", &port])
        .args(extra);
    for (k, v) in env {
        t = t.env(k, v);
    }
    let out = t.code(0).run();
    let mut lines: Vec<String> = out
        .lines
        .into_iter()
        .filter(|l| !l.starts_with("system") && !l.is_empty())
        .collect();
    lines.sort();
    lines
}

#[test]
fn long_names_are_shortened_to_twenty_columns_by_default() {
    assert_eq!(
        lines(&[], &[]),
        [
            "alpha-ser…d-worker.1 | alpha",
            "gamma-ser…d-worker.1 | gamma",
            "very-long-name-web.1 | web",
            "very-long…e-worker.1 | worker",
        ]
    );
}

#[test]
fn names_that_would_look_alike_stay_distinct() {
    let got = lines(&["--prefix-width", "12"], &[]);
    let prefixes: Vec<&str> = got
        .iter()
        .map(|l| l.split(" | ").next().expect("prefix"))
        .collect();
    let mut unique = prefixes.clone();
    unique.dedup();
    assert_eq!(unique.len(), 4, "{got:?}");
    for p in &prefixes {
        assert_eq!(p.chars().count(), 12, "{got:?}");
    }
    // The two `…-background-worker.1` types differ in their head.
    assert!(prefixes.iter().all(|p| p.contains('…')), "{got:?}");
}

#[test]
fn the_width_is_configurable_and_zero_is_no_limit() {
    assert_eq!(
        lines(&["--prefix-width", "0"], &[]),
        [
            "alpha-service-background-worker.1 | alpha",
            "gamma-service-background-worker.1 | gamma",
            "very-long-name-web.1              | web",
            "very-long-name-worker.1           | worker",
        ]
    );
    assert_eq!(
        lines(&[], &[("PROCRUN_PREFIX_WIDTH", "0")])[0],
        "alpha-service-background-worker.1 | alpha"
    );
    assert_eq!(
        lines(&[], &[("PROCRUN_PREFIX_WIDTH", "16")])[2],
        "very-lo…me-web.1 | web"
    );
}

#[test]
fn system_messages_keep_the_full_names() {
    let port = support::free_port().to_string();
    let out = Test::new()
        .procfile(PROCFILE)
        .args(["start", "--no-timestamp", "--any-can-die", "-p", &port])
        .code(0)
        .run();
    assert!(
        out.stdout
            .contains("system               | very-long-name-worker.1 exited with code 0"),
        "{}",
        out.stdout
    );
}
