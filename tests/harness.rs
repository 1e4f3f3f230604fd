//! The test harness itself (tests/support): what every other test relies on.

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{Test, WAIT, alive};

#[test]
fn the_childs_environment_is_scrubbed() {
    // Meaningful when the suite runs with PROCRUN_* or NO_COLOR set, as
    // `PROCRUN_COLOR=always cargo test` does.
    let out = Test::new().program("env").code(0).run();
    for line in out.lines {
        let key = line.split('=').next().unwrap_or_default();
        assert!(
            !key.starts_with("PROCRUN_") && !["NO_COLOR", "PORT", "PS", "RUST_LOG"].contains(&key),
            "{line}"
        );
    }
    // What a test sets is kept.
    Test::new()
        .program("sh")
        .args(["-c", "printf %s \"$PROCRUN_COLOR\""])
        .env("PROCRUN_COLOR", "never")
        .stdout("never")
        .run();
}

#[test]
fn run_checks_code_and_output_and_feeds_stdin() {
    let out = Test::new()
        .procfile("web: true\n")
        .stdin("a\nb")
        .args(["run", "sh", "-c", "cat; echo; echo oops >&2; exit 3"])
        .code(3)
        .stdout("a\nb\n")
        .stderr_has("oops")
        .run();
    assert_eq!(out.lines, ["a", "b"]);
}

#[test]
fn a_failed_expectation_fails_the_test() {
    let failed = std::panic::catch_unwind(|| {
        Test::new().args(["run", "true"]).code(1).run();
    });
    assert!(failed.is_err());
}

#[test]
fn waits_see_earlier_lines_and_unfinished_last_lines() {
    let mut r = Test::new()
        .args(["run", "sh", "-c", "echo one; echo two >&2; printf three"])
        .spawn();
    r.wait_for_stderr("two");
    assert_eq!(r.wait_exit(), Some(0));
    // Already seen lines count; the last line needs no newline.
    assert_eq!(r.wait_for("one"), "one");
    assert_eq!(r.wait_for("thr"), "three");
    assert_eq!(r.lines(), ["one", "three"]);
}

#[test]
fn a_wait_for_a_line_that_never_comes_fails_within_its_bound() {
    let mut r = Test::new().args(["run", "sleep", "30"]).spawn();
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        r.wait_for_line(|l| l == "never", Duration::from_millis(100));
    }));
    assert!(failed.is_err());
}

#[test]
fn leftovers_are_found_and_killed_when_the_run_is_dropped() {
    // A process that leaves procrun's group and session: only the mark in
    // its environment ties it to the run.
    let mut r = Test::new()
        .program("sh")
        .args([
            "-c",
            "setsid sleep 300 >/dev/null 2>&1 & echo \"pid $!\"; exec sleep 300",
        ])
        .spawn();
    let line = r.wait_for("pid ");
    let orphan = support::number_after(&line, "pid ");
    r.signal(Signal::SIGKILL);
    assert_eq!(r.wait_exit(), None);
    // The orphan may still be between its two execs (setsid, then sleep),
    // when its environment cannot be read: wait, within a bound, to see it.
    let deadline = Instant::now() + WAIT;
    while !r.leftovers().contains(&orphan) {
        assert!(
            Instant::now() < deadline,
            "{orphan} not found: {:?}",
            r.leftovers()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(r);
    assert!(support::gone_within(orphan, WAIT), "{orphan} survived");
    assert!(!alive(orphan));
}

#[test]
fn free_ports_are_free() {
    let port = support::free_port();
    for offset in [0, 1, 100, 200] {
        std::net::TcpListener::bind(("127.0.0.1", port + offset)).expect("free");
    }
}
