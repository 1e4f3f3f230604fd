//! `procrun start` with per-type policies from `procrun.toml` and the
//! policy flags: restarts with backoff, giving up, can-die, stop signals
//! and timeouts, types without PORT. The decisions themselves are unit
//! tested in src/supervisor/machine_tests.rs; these check the wiring.

mod support;

use nix::sys::signal::Signal;
use support::Test;

/// Counts the lines of `text` that contain `needle`.
fn count(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

#[test]
fn a_crashing_worker_is_restarted_with_backoff_until_it_fails() {
    // Every run is short: 1 run + 2 restarts, then it has failed and, not
    // allowed to die, stops the app with its code.
    let out = Test::new()
        .procfile("worker: echo \"run as $PS on $PORT\"; exit 3\nweb: exec sleep 300\n")
        .file(
            "procrun.toml",
            "[process.worker]\nrestart = \"on-failure\"\nbackoff = { initial = 0.01, max = 0.02 }\nmax_restarts = 2\n",
        )
        .args(["start", "--no-timestamp", "-p", "7300"])
        .code(3)
        .run();
    let t = &out.stdout;
    assert_eq!(count(t, "worker.1 | run as worker.1 on 7300"), 3, "{t}");
    assert!(
        t.contains("worker.1 exited with code 3; restarting in 0.01s (restart 1 of 2)"),
        "{t}"
    );
    assert!(
        t.contains("worker.1 exited with code 3; restarting in 0.02s (restart 2 of 2)"),
        "{t}"
    );
    assert!(
        t.contains("worker.1 failed: 2 restarts in a row ran less than 10s"),
        "{t}"
    );
    assert!(t.contains("web.1 killed by SIGTERM"), "{t}");
    assert_eq!(
        count(t, "web.1 started"),
        1,
        "web.1 was never restarted: {t}"
    );
}

#[test]
fn auto_restart_flag_restarts_after_success_too() {
    let mut r = Test::new()
        .procfile("tick: echo tick; exit 0\n")
        .file(
            "procrun.toml",
            "[defaults]\nbackoff = { initial = 0.01, max = 0.01 }\n",
        )
        .start(&["--auto-restart", "tick"]);
    for _ in 0..3 {
        r.wait_for("tick.1 exited with code 0; restarting in 0.01s");
    }
    r.wait_for_line(
        |l| l.contains("tick.1 exited with code 0; restarting") && l.contains("(restart 3 of 10)"),
        support::WAIT,
    );
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    r.assert_no_leftovers();
}

#[test]
fn ctrl_c_during_a_backoff_does_not_wait_for_it() {
    // A 60 s backoff: the test would hit its bound if the stop waited.
    let mut r = Test::new()
        .procfile("worker: exit 1\nweb: exec sleep 300\n")
        .file(
            "procrun.toml",
            "[process.worker]\nrestart = \"always\"\nbackoff = { initial = 60, max = 60 }\n",
        )
        .start(&[]);
    r.wait_for("restarting in 60s");
    r.signal(Signal::SIGINT);
    assert_eq!(
        r.wait_exit_within(std::time::Duration::from_secs(10)),
        Some(130),
        "{}",
        r.transcript()
    );
    assert_eq!(count(&r.transcript(), "worker.1 started"), 1);
}

#[test]
fn can_die_types_let_the_app_run_and_the_first_failure_decides() {
    let mut r = Test::new()
        .procfile("migrate: echo migrated; exit 0\nseed: exit 4\nweb: echo up; exec sleep 300\n")
        .start(&["--can-die", "migrate,seed"]);
    r.wait_for("migrate.1 exited with code 0");
    r.wait_for("seed.1 exited with code 4");
    r.wait_for_line(
        |l| l.starts_with("web.1 ") && l.ends_with("| up"),
        support::WAIT,
    );
    assert!(r.status().is_none(), "web still runs: {}", r.transcript());
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());

    // When every type may die, procrun ends with the last of them, with the
    // code of the first that failed.
    Test::new()
        .procfile("a: exit 0\nb: exit 5\nc: exit 6\n")
        .args(["start", "--any-can-die"])
        .code(5)
        .run();
    Test::new()
        .procfile("a: exit 0\nb: exit 0\n")
        .args(["start", "--any-can-die"])
        .code(0)
        .run();
}

#[test]
fn each_type_gets_its_own_stop_signal_and_timeout() {
    let mut r = Test::new()
        .procfile(
            "db: trap 'echo db got INT; exit 0' INT; trap '' TERM; echo ready; while :; do sleep 0.05; done\n\
             web: trap '' TERM; echo ready; while :; do sleep 0.05; done\n",
        )
        .file("procrun.toml", "[process.web]\nstop_timeout = 0.2\n")
        .start(&["--stop-signal", "db=INT", "-t", "30"]);
    r.wait_for_line(
        |l| l.starts_with("db.1 ") && l.ends_with("| ready"),
        support::WAIT,
    );
    r.wait_for_line(
        |l| l.starts_with("web.1 ") && l.ends_with("| ready"),
        support::WAIT,
    );
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    let t = r.transcript();
    assert!(
        t.contains(
            "stopping 2 processes: SIGINT to db.1 (SIGKILL after 30s); SIGTERM to web.1 (SIGKILL after 200ms)"
        ),
        "{t}"
    );
    assert!(t.contains("db got INT"), "{t}");
    assert!(t.contains("sending SIGKILL to web.1"), "{t}");
    assert!(!t.contains("sending SIGKILL to db.1"), "{t}");
    r.assert_no_leftovers();
}

#[test]
fn a_type_without_port_gets_none_not_even_procruns_own() {
    let out = Test::new()
        .procfile("clock: echo \"port=[${PORT-unset}] ps=$PS\"\n")
        .file("procrun.toml", "[process.clock]\nport = false\n")
        .env("PORT", "9999")
        .args(["start", "--no-timestamp"])
        .code(0)
        .run();
    assert!(
        out.stdout.contains("clock.1 | port=[unset] ps=clock.1"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("clock.1 started with pid "),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("(PORT="), "{}", out.stdout);
}

#[test]
fn restarts_appear_in_json_as_exit_then_restart() {
    let out = Test::new()
        .procfile("w: exit 2\n")
        .file(
            "procrun.toml",
            "[process.w]\nrestart = \"always\"\nbackoff = { initial = 0.01, max = 0.01 }\nmax_restarts = 1\n",
        )
        .args(["start", "--log-format", "json"])
        .code(2)
        .run();
    let events: Vec<String> = out
        .lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON"))
        .filter_map(|v| v["event"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(
        events,
        ["start", "exit", "restart", "start", "exit", "failed"],
        "{}",
        out.stdout
    );
}
