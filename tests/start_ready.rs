//! `procrun start` with `ready` checks and `after`: each kind of check
//! turns ready, a check that never succeeds fails the instance, `after`
//! orders the starts and the stops, a failed one-shot skips its
//! dependents, exec probes leave nothing behind; `check` is in
//! tests/check_ready.rs. The decisions are unit tested in
//! src/supervisor/machine_ready_tests.rs; these check the wiring.

mod support;

use nix::sys::signal::Signal;
use support::Test;

/// A TCP listener on `$PORT` (after a short pause, so the first probes
/// find nothing).
const LISTEN: &str = "python3 -c \"import os,socket,time; time.sleep(0.3); s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(os.environ['PORT']))); s.listen(); print('listening', flush=True); time.sleep(300)\"";

/// The index of the first line containing `needle`.
fn line_of(lines: &[String], needle: &str) -> usize {
    lines
        .iter()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line has {needle:?}:\n{}", lines.join("\n")))
}

#[test]
fn every_kind_of_check_turns_ready() {
    let procfile = format!(
        "port: {LISTEN}\n\
         http: exec python3 -m http.server --bind 127.0.0.1 $PORT\n\
         log: sleep 0.2; echo 'ready to accept'; exec sleep 300\n\
         regex: sleep 0.2; echo \"listening on 127.0.0.1:$PORT\" >&2; exec sleep 300\n\
         exec: sleep 0.2; touch flag; exec sleep 300\n"
    );
    let mut r = Test::new()
        .procfile(&procfile)
        .file(
            "procrun.toml",
            r#"[defaults]
ready_interval = 0.05

[process.port]
ready = "port"

[process.http]
ready = { http = "/" }

[process.log]
ready = { log = "ready to" }

[process.regex]
ready = { log_regex = "listening on .*:\\d+" }

[process.exec]
ready = { exec = "test -e flag" }
"#,
        )
        .start(&[]);
    for (name, what) in [
        ("port.1", "accepts connections)"),
        ("http.1", "succeeds)"),
        ("log.1", "(its output contains \"ready to\")"),
        ("regex.1", "(its output matches /listening on .*:\\d+/)"),
        ("exec.1", "(`test -e flag` exits 0)"),
    ] {
        r.wait_for_line(
            |l| l.contains(&format!("{name} is ready")) && l.contains(what),
            support::WAIT,
        );
    }
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    r.assert_no_leftovers();
}

/// An http check on an IPv6 URL: `web` serves only on [::1] (after a
/// pause, so the first probes find nothing), and `client` starts once the
/// probe got an answer there.
#[test]
fn an_http_check_on_an_ipv6_url_turns_ready() {
    let port = match std::net::TcpListener::bind("[::1]:0") {
        Ok(listener) => listener.local_addr().expect("address").port(),
        Err(e) => {
            eprintln!(
                "skipped an_http_check_on_an_ipv6_url_turns_ready: no IPv6 loopback here ({e})"
            );
            return;
        }
    };
    let out = Test::new()
        .procfile(&format!(
            "web: sleep 0.3; exec python3 -m http.server --bind ::1 {port}\n\
             client: echo client runs\n"
        ))
        .file(
            "procrun.toml",
            format!(
                "[process.web]\nready = {{ http = \"http://[::1]:{port}/\" }}\n\
                 ready_interval = 0.05\nready_timeout = 20\n\
                 [process.client]\nafter = [\"web\"]\n"
            ),
        )
        .args([
            "start",
            "--no-timestamp",
            "-p",
            &support::free_port().to_string(),
        ])
        .code(0)
        .run();
    let l = &out.lines;
    let ready = format!("web.1 is ready (GET http://[::1]:{port}/ succeeds)");
    assert!(line_of(l, "client.1 waits for web") < line_of(l, &ready));
    assert!(line_of(l, &ready) < line_of(l, "client.1 started"));
    assert!(line_of(l, "client.1 started") < line_of(l, "| client runs"));
}

#[test]
fn a_check_that_never_succeeds_fails_the_instance() {
    // Nothing listens on db's PORT; its SIGTERM exit counts as a failure
    // and, db not allowed to die, stops the app with its code.
    let out = Test::new()
        .procfile("db: exec sleep 300\nweb: echo never\n")
        .file(
            "procrun.toml",
            "[process.db]\nready = \"port\"\nready_timeout = 0.5\nready_interval = 0.05\n\
             [process.web]\nafter = [\"db\"]\n",
        )
        .args([
            "start",
            "--no-timestamp",
            "-p",
            &support::free_port().to_string(),
        ])
        .code(143)
        .run();
    let t = &out.stdout;
    assert!(t.contains("web.1 waits for db"), "{t}");
    assert!(
        t.contains("db.1 not ready within 0.5s (waited until port"),
        "{t}"
    );
    assert!(t.contains("db.1 killed by SIGTERM"), "{t}");
    assert!(!t.contains("web.1 started"), "{t}");
    assert!(!t.contains("never"), "{t}");
}

#[test]
fn a_failing_exec_probe_is_retried_then_times_out() {
    let out = Test::new()
        .procfile("db: exec sleep 300\n")
        .file(
            "procrun.toml",
            "[process.db]\nready = { exec = \"echo probe >> probes; exit 1\" }\n\
             ready_timeout = 0.5\nready_interval = 0.05\nrestart = \"on-failure\"\nmax_restarts = 0\n",
        )
        .args(["start", "--no-timestamp", "-p", &support::free_port().to_string()])
        .code(143)
        .run();
    assert!(
        out.stdout.contains("db.1 not ready within 0.5s"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("db.1 failed: 0 restarts"),
        "{}",
        out.stdout
    );
}

#[test]
fn after_starts_a_type_once_its_dependencies_are_ready() {
    // web only runs a command that exits 0, which then stops the app: the
    // order is read from the output, never from timing.
    let out = Test::new()
        .procfile(
            "web: echo web runs\n\
             db: sleep 0.2; echo 'db up'; exec sleep 300\n\
             migrate: echo migrating; exit 0\n",
        )
        .file(
            "procrun.toml",
            "[process.db]\nready = { log = \"db up\" }\n\
             [process.migrate]\ncan_die = true\nafter = [\"db\"]\n\
             [process.web]\nafter = [\"db\", \"migrate\"]\n",
        )
        .args([
            "start",
            "--no-timestamp",
            "-p",
            &support::free_port().to_string(),
        ])
        .code(0)
        .run();
    let l = &out.lines;
    assert!(line_of(l, "web.1 waits for db, migrate") < line_of(l, "db.1 is ready"));
    // The matching line is shown before the check's success.
    assert!(line_of(l, "| db up") < line_of(l, "db.1 is ready"));
    assert!(line_of(l, "db.1 is ready") < line_of(l, "migrate.1 started"));
    assert!(line_of(l, "migrate.1 exited with code 0") < line_of(l, "web.1 started"));
    assert!(line_of(l, "web.1 started") < line_of(l, "| web runs"));
}

#[test]
fn a_failed_one_shot_skips_its_dependents() {
    let out = Test::new()
        .procfile("migrate: echo migrating; exit 1\nweb: echo never\nworker: echo never\n")
        .file(
            "procrun.toml",
            "[process.migrate]\ncan_die = true\n\
             [process.web]\nafter = [\"migrate\"]\n\
             [process.worker]\nafter = [\"migrate\"]\ncan_die = true\n",
        )
        .args([
            "start",
            "--no-timestamp",
            "-p",
            &support::free_port().to_string(),
        ])
        .code(1)
        .run();
    let t = &out.stdout;
    assert!(
        t.contains("web.1 skipped: migrate.1 exited with code 1"),
        "{t}"
    );
    assert!(!t.contains("never"), "{t}");
    assert!(!t.contains("web.1 started"), "{t}");
}

#[test]
fn json_has_ready_waiting_and_skipped_events() {
    let out = Test::new()
        .procfile("db: echo up; exec sleep 300\nmigrate: exit 2\nweb: echo never\n")
        .file(
            "procrun.toml",
            "[process.db]\nready = { log = \"up\" }\n\
             [process.migrate]\ncan_die = true\nafter = [\"db\"]\n\
             [process.web]\nafter = [\"migrate\"]\n",
        )
        .args([
            "start",
            "--log-format",
            "json",
            "-p",
            &support::free_port().to_string(),
        ])
        .code(2)
        .run();
    let records: Vec<serde_json::Value> = out
        .lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let event = |name: &str, event: &str| {
        records
            .iter()
            .find(|r| r["name"] == name && r["event"] == event)
            .unwrap_or_else(|| panic!("no {event} of {name}: {}", out.stdout))
            .clone()
    };
    let ready = event("db.1", "ready");
    assert_eq!(ready["check"], "log");
    assert!(ready["after_ms"].is_u64());
    assert_eq!(
        event("web.1", "waiting")["after"],
        serde_json::json!(["migrate"])
    );
    assert_eq!(
        event("web.1", "skipped")["msg"],
        "web.1 skipped: migrate.1 exited with code 2"
    );
}

#[test]
fn with_after_dependents_stop_before_their_dependencies() {
    let mut r = Test::new()
        .procfile("db: echo up; exec sleep 300\nweb: echo web; exec sleep 300\n")
        .file(
            "procrun.toml",
            "[process.db]\nready = { log = \"up\" }\n[process.web]\nafter = [\"db\"]\n",
        )
        .start(&[]);
    r.wait_for_line(|l| l.ends_with("| web"), support::WAIT);
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    let lines = r.lines();
    assert!(line_of(&lines, "web.1 killed by SIGTERM") < line_of(&lines, "db.1 killed by SIGTERM"));
    r.assert_no_leftovers();
}

#[test]
fn a_dependency_without_instances_holds_nobody_up() {
    let out = Test::new()
        .procfile("db: exec sleep 300\nweb: echo web runs\n")
        .file("procrun.toml", "[process.web]\nafter = [\"db\"]\n")
        .args([
            "start",
            "--no-timestamp",
            "-m",
            "web=1,db=0",
            "-p",
            &support::free_port().to_string(),
        ])
        .code(0)
        .run();
    assert!(out.stdout.contains("| web runs"), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("`web` starts after `db`, which runs no instance here"),
        "{}",
        out.stderr
    );
}

#[test]
fn exec_probes_that_hang_or_fork_leave_nothing_behind() {
    // Each attempt forks a sleeper and hangs past the interval: both are
    // killed with the probe's group, attempt after attempt.
    let mut r = Test::new()
        .procfile("db: exec sleep 300\n")
        .file(
            "procrun.toml",
            "[process.db]\nready = { exec = \"echo x >> attempts; sleep 300 & sleep 300\" }\n\
             ready_timeout = 60\nready_interval = 0.1\n",
        )
        .start(&[]);
    let deadline = std::time::Instant::now() + support::WAIT;
    while std::fs::read_to_string(r.join("attempts")).map_or(0, |t| t.lines().count()) < 5 {
        assert!(std::time::Instant::now() < deadline, "{}", r.transcript());
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    // db itself, and at most the current attempt's two sleepers.
    let sleepers = sleepers_under(r.pid());
    assert!(sleepers <= 3, "{sleepers} sleep processes: attempts leak");
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    r.assert_no_leftovers();
}

/// How many `sleep` processes descend from `pid` (from `/proc`).
fn sleepers_under(pid: i32) -> usize {
    let mut procs = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some(close) = stat.rfind(')') else {
            continue;
        };
        let comm = stat[..close]
            .split_once('(')
            .map_or("", |(_, c)| c)
            .to_owned();
        let mut rest = stat[close + 1..].split_whitespace();
        let state = rest.next().unwrap_or("");
        let ppid: i32 = rest.next().and_then(|x| x.parse().ok()).unwrap_or(0);
        if state != "Z" {
            procs.push((p, ppid, comm));
        }
    }
    let mut under = vec![pid];
    let mut count = 0;
    while let Some(parent) = under.pop() {
        for (p, ppid, comm) in &procs {
            if *ppid == parent {
                under.push(*p);
                count += usize::from(comm == "sleep");
            }
        }
    }
    count
}
