//! Controlling a running `procrun start` from other commands: a real
//! `start` in a temporary app, real clients (`ps`, `restart`, `stop`,
//! `scale`, `logs`, `signal`, `quit`) run beside it, and the socket itself
//! spoken to directly for the protocol's refusals. Every wait is bounded.

mod support;

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::net::UnixStream;

use nix::sys::signal::Signal;
use serde_json::Value;
use support::wire::{frame, json_frame, send_json};
use support::{Running, Runtime, Test, WAIT};

/// A long-running instance that says where it is.
const UP: &str = "web: echo \"up $PORT $PS\"; exec sleep 60\n";

/// A client command run in the app's directory, with the same runtime dir.
fn client(r: &Running, rt: &Runtime, args: &[&str]) -> support::Output {
    Test::in_dir(r.path())
        .env("XDG_RUNTIME_DIR", rt.path())
        .args(args)
        .run()
}

fn start(rt: &Runtime, procfile: &str, extra: &[&str]) -> Running {
    Test::new()
        .procfile(procfile)
        .env("XDG_RUNTIME_DIR", rt.path())
        .start(extra)
}

fn ps(r: &Running, rt: &Runtime) -> Vec<Value> {
    let out = client(r, rt, &["ps", "--json"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    serde_json::from_str::<Value>(&out.stdout)
        .expect("ps --json prints JSON")
        .as_array()
        .cloned()
        .expect("a list")
}

fn count(r: &Running, needle: &str) -> usize {
    r.lines().iter().filter(|l| l.contains(needle)).count()
}

/// Waits (at most [`WAIT`]) until `needle` has been printed `n` times
/// (the predicate sees each line once).
fn wait_count(r: &mut Running, needle: &str, n: usize) {
    let seen = std::cell::Cell::new(0);
    r.wait_for_line(
        |l| {
            if l.contains(needle) {
                seen.set(seen.get() + 1);
            }
            seen.get() >= n
        },
        WAIT,
    );
}

#[test]
fn ps_lists_every_instance_with_its_pid_state_and_port() {
    let rt = Runtime::new();
    let mut r = start(&rt, UP, &["-m", "web=2"]);
    r.wait_for("web.2  | up");
    let pid = r.pid_of("web.2");
    let list = ps(&r, &rt);
    assert_eq!(list.len(), 2, "{list:?}");
    let web2 = &list[1];
    assert_eq!(web2["name"], "web.2");
    assert_eq!(web2["type"], "web");
    assert_eq!(web2["instance"], 2);
    assert_eq!(web2["pid"], pid);
    assert_eq!(web2["state"], "running");
    assert_eq!(web2["restarts"], 0);
    assert!(web2["exit_code"].is_null());
    assert!(
        web2["started_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    assert!(web2["rss_bytes"].as_u64().is_some_and(|b| b > 0), "{web2}");
    assert_eq!(
        web2["port"].as_u64(),
        list[0]["port"].as_u64().map(|p| p + 1),
        "consecutive ports"
    );
    let table = client(&r, &rt, &["ps"]);
    assert!(table.stdout.starts_with("NAME"), "{}", table.stdout);
    assert!(
        table.stdout.contains(&format!("web.2  web   {pid}")),
        "{}",
        table.stdout
    );
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    r.assert_no_leftovers();
}

#[test]
fn restart_keeps_port_and_ps_and_gets_a_new_pid() {
    let rt = Runtime::new();
    let mut r = start(&rt, UP, &["-m", "web=2"]);
    let line = r.wait_for("web.1  | up");
    r.wait_for("web.2  | up");
    let old = r.pid_of("web.1");
    let out = client(&r, &rt, &["restart", "web.1"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.starts_with("restarted web.1: running, pid "),
        "{}",
        out.stdout
    );
    let new = support::number_after(&out.stdout, "pid ");
    assert_ne!(new, old);
    wait_count(&mut r, &line, 2);
    r.wait_for("restart of web.1 requested from pid");
    assert!(!support::alive(old), "the old process is gone");
    assert_eq!(count(&r, "web.2 started"), 1, "web.2 ran on");
    // All of a type, and everything.
    let out = client(&r, &rt, &["restart"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    wait_count(&mut r, "web.2  | up", 2);
    let list = ps(&r, &rt);
    assert_eq!(list[0]["restarts"], 2);
    assert_eq!(list[1]["restarts"], 1);
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    r.assert_no_leftovers();
}

#[test]
fn stop_does_not_end_the_app_until_nothing_is_left() {
    let rt = Runtime::new();
    let mut r = start(&rt, UP, &["-m", "web=2"]);
    r.wait_for("web.2  | up");
    let out = client(&r, &rt, &["stop", "web.1"]);
    assert_eq!(out.stdout, "stopped web.1: stopped\n", "{}", out.stderr);
    let list = ps(&r, &rt);
    assert_eq!(list[0]["state"], "stopped");
    assert!(list[0]["pid"].is_null());
    assert_eq!(list[1]["state"], "running");
    // Started again on request.
    let out = client(&r, &rt, &["restart", "web.1"]);
    assert!(
        out.stdout.contains("restarted web.1: running"),
        "{}",
        out.stdout
    );
    let out = client(&r, &rt, &["stop", "web"]);
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    assert_eq!(r.wait_exit(), Some(0), "{}", r.transcript());
    r.assert_no_leftovers();
}

#[test]
fn scale_starts_the_next_ports_and_stops_the_highest_first() {
    let rt = Runtime::new();
    let mut r = start(
        &rt,
        "web: echo \"up $PORT $PS\"; exec sleep 60\nworker: echo \"w $PORT $PS\"; exec sleep 60\n",
        &["-m", "web=1,worker=0"],
    );
    let line = r.wait_for("web.1  | up");
    let base: u64 = line
        .split_whitespace()
        .nth(3)
        .and_then(|p| p.parse().ok())
        .expect("a port");
    let out = client(&r, &rt, &["scale", "web=3,worker=1"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    r.wait_for(&format!("| up {} web.3", base + 2));
    r.wait_for(&format!("| w {} worker.1", base + 100));
    let names: Vec<Value> = ps(&r, &rt).iter().map(|i| i["name"].clone()).collect();
    assert_eq!(names, ["web.1", "web.2", "web.3", "worker.1"]);
    let out = client(&r, &rt, &["scale", "web=1"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("scaled web.3: stopped"),
        "{}",
        out.stdout
    );
    let names: Vec<Value> = ps(&r, &rt).iter().map(|i| i["name"].clone()).collect();
    assert_eq!(names, ["web.1", "worker.1"]);
    assert!(r.stdout().contains("scale of web to 1 requested"));
    // Bad counts: a usage error naming what exists.
    let out = client(&r, &rt, &["scale", "nope=2"]);
    assert_eq!(out.code(), Some(2));
    assert!(
        out.stderr.contains("no process type is named `nope`"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("web, worker"), "{}", out.stderr);
    let out = client(&r, &rt, &["scale", "web=70000"]);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    // The type's own limit is the one named, before the app's total.
    assert!(
        out.stderr.contains("at most 1000 per type"),
        "{}",
        out.stderr
    );
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    r.assert_no_leftovers();
}

#[test]
fn logs_shows_the_last_lines_and_follows() {
    let rt = Runtime::new();
    let mut r = start(
        &rt,
        "web: for i in 1 2 3 4 5; do echo line$i; done; exec sleep 60\nother: echo hi; exec sleep 60\n",
        &[],
    );
    r.wait_for("web.1   | line5");
    r.wait_for("other.1 | hi");
    let out = client(&r, &rt, &["logs", "-n", "2", "web"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert!(
        out.stdout.contains("web.1   | line4\nweb.1   | line5\n"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("line3") && !out.stdout.contains("other.1 |"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("web.1 started with pid"),
        "system events: {}",
        out.stdout
    );
    let out = client(&r, &rt, &["logs", "--json", "-n", "1", "web.1"]);
    let records: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON record"))
        .collect();
    assert!(
        records
            .iter()
            .any(|v| v["msg"] == "line5" && v["stream"] == "stdout"),
        "{records:?}"
    );
    // Follow: the replay, then what comes later.
    let mut f = Test::in_dir(r.path())
        .env("XDG_RUNTIME_DIR", rt.path())
        .args(["logs", "-f", "-n", "1", "web"])
        .spawn();
    f.wait_for("web.1   | line5");
    let out = client(&r, &rt, &["restart", "web"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    f.wait_for("web.1   | line1");
    let out = client(&r, &rt, &["logs", "nope"]);
    assert_eq!(out.code(), Some(2));
    assert!(
        out.stderr.contains("known: web.1, other.1"),
        "{}",
        out.stderr
    );
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    assert_eq!(f.wait_exit(), Some(0), "a follower ends with the app");
    r.assert_no_leftovers();
}

#[test]
fn signal_reaches_the_named_instances_group() {
    let rt = Runtime::new();
    let mut r = start(
        &rt,
        "web: trap 'echo got HUP' HUP; echo ready; while :; do sleep 0.05; done\nquiet: exec sleep 60\n",
        &[],
    );
    r.wait_for("web.1   | ready");
    let out = client(&r, &rt, &["signal", "HUP", "web"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    r.wait_for("web.1   | got HUP");
    r.wait_for("SIGHUP to web.1 requested from pid");
    let out = client(&r, &rt, &["signal", "NOPE", "web"]);
    assert_eq!(out.code(), Some(2));
    assert!(out.stderr.contains("not a signal"), "{}", out.stderr);
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    r.assert_no_leftovers();
}

#[test]
fn quit_stops_the_app_and_waits_for_it() {
    let rt = Runtime::new();
    let mut r = start(&rt, UP, &[]);
    r.wait_for("web.1  | up");
    let out = client(&r, &rt, &["quit"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(out.stdout, "procrun start stopped (exit code 143)\n");
    assert_eq!(r.wait_exit(), Some(143));
    assert!(rt.sockets().is_empty(), "the socket is removed");
    let out = client(&r, &rt, &["ps"]);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("procrun is not running for"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("(no socket at "), "{}", out.stderr);
    r.assert_no_leftovers();
}

#[test]
fn the_socket_is_private_and_a_second_start_is_refused() {
    let rt = Runtime::new();
    let mut r = start(&rt, UP, &[]);
    r.wait_for("web.1  | up");
    let dir = rt.path().join("procrun");
    let mode = std::fs::metadata(&dir)
        .expect("the dir")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o700);
    let sockets = rt.sockets();
    assert_eq!(sockets.len(), 1, "{sockets:?}");
    let mode = std::fs::metadata(&sockets[0])
        .expect("the socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    let second = Test::in_dir(r.path())
        .env("XDG_RUNTIME_DIR", rt.path())
        .args(["start", "--no-timestamp"])
        .run();
    assert_eq!(second.code(), Some(2), "{}", second.stdout);
    assert!(
        second.stderr.contains(&format!(
            "procrun is already running for {}",
            std::fs::canonicalize(r.path()).expect("a path").display()
        )),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("(pid {})", r.pid())),
        "{}",
        second.stderr
    );
    assert!(
        second.stdout.is_empty(),
        "nothing started: {}",
        second.stdout
    );
    // Another socket runs a second one.
    let other = r.path().join("other.sock");
    let mut two = Test::in_dir(r.path())
        .env("XDG_RUNTIME_DIR", rt.path())
        .args(["--socket", other.to_str().expect("utf-8")])
        .start(&[]);
    two.wait_for("web.1  | up");
    let out = Test::in_dir(r.path())
        .args(["--socket", other.to_str().expect("utf-8"), "quit"])
        .run();
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    assert_eq!(two.wait_exit(), Some(143));
    assert!(!other.exists());
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
}

#[test]
fn a_socket_left_by_a_killed_procrun_is_replaced() {
    let rt = Runtime::new();
    let mut r = start(&rt, UP, &[]);
    r.wait_for("web.1  | up");
    let child = r.pid_of("web.1");
    r.signal(Signal::SIGKILL);
    r.wait_exit();
    assert_eq!(rt.sockets().len(), 1, "SIGKILL leaves the socket behind");
    assert!(
        support::gone_within(child, WAIT),
        "the watchdog stops the app"
    );
    let out = client(&r, &rt, &["ps"]);
    assert_eq!(out.code(), Some(1));
    assert!(
        out.stderr.contains("procrun is not running for") && out.stderr.contains("is stale"),
        "{}",
        out.stderr
    );
    let mut again = Test::in_dir(r.path())
        .env("XDG_RUNTIME_DIR", rt.path())
        .start(&[]);
    again.wait_for("web.1  | up");
    assert!(
        !again.stderr().contains("already running"),
        "{}",
        again.stderr()
    );
    let list = ps(&again, &rt);
    assert_eq!(list.len(), 1);
    again.signal(Signal::SIGTERM);
    assert_eq!(again.wait_exit(), Some(143));
    again.assert_no_leftovers();
}

#[test]
fn garbage_gets_an_error_and_the_app_runs_on() {
    let rt = Runtime::new();
    let mut r = start(&rt, UP, &[]);
    r.wait_for("web.1  | up");
    let socket = rt.sockets().pop().expect("a socket");
    let connect = || {
        let s = UnixStream::connect(&socket).expect("connected");
        s.set_read_timeout(Some(WAIT)).expect("a timeout");
        s
    };
    // Text where a frame should be: refused, connection closed.
    let mut s = connect();
    let hello = json_frame(&mut s);
    assert_eq!(hello["type"], "hello");
    assert_eq!(hello["protocol"], 1);
    s.write_all(b"hello procrun, restart everything please\n")
        .expect("sent");
    let reply = json_frame(&mut s);
    assert_eq!(reply["error"]["code"], "bad_frame", "{reply}");
    // Valid frames, invalid messages: errors, and the connection goes on.
    let mut s = connect();
    json_frame(&mut s);
    send_json(&mut s, r#"{"type":"request","id":1,"method":"ps"}"#);
    assert_eq!(json_frame(&mut s)["error"]["code"], "expected_hello");
    send_json(&mut s, r#"{"type":"hello","protocol":1}"#);
    send_json(&mut s, "{not json");
    assert_eq!(json_frame(&mut s)["error"]["code"], "bad_request");
    send_json(&mut s, r#"{"type":"request","id":2,"method":"explode"}"#);
    let reply = json_frame(&mut s);
    assert_eq!(reply["id"], 2);
    assert_eq!(reply["error"]["code"], "unknown_method");
    send_json(
        &mut s,
        r#"{"type":"request","id":3,"method":"scale","params":{"counts":{"web":"lots"}}}"#,
    );
    assert_eq!(json_frame(&mut s)["error"]["code"], "invalid_params");
    send_json(
        &mut s,
        r#"{"type":"request","id":4,"method":"restart","params":{"names":["nope"]}}"#,
    );
    let reply = json_frame(&mut s);
    assert_eq!(reply["error"]["code"], "no_match");
    assert_eq!(reply["error"]["known"][0], "web.1");
    send_json(&mut s, r#"{"type":"request","id":5,"method":"ps"}"#);
    let reply = json_frame(&mut s);
    assert_eq!(reply["id"], 5);
    assert_eq!(reply["result"]["instances"][0]["state"], "running");
    // A frame announcing 2 GiB: refused before reading it.
    let mut s = connect();
    json_frame(&mut s);
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 0]).expect("sent");
    assert_eq!(json_frame(&mut s)["error"]["code"], "bad_frame");
    // A client that leaves in the middle of a follow.
    let mut s = connect();
    json_frame(&mut s);
    send_json(&mut s, r#"{"type":"hello","protocol":1}"#);
    send_json(
        &mut s,
        r#"{"type":"request","id":1,"method":"logs","params":{"follow":true}}"#,
    );
    assert_eq!(json_frame(&mut s)["result"]["follow"], true);
    drop(s);
    assert_eq!(count(&r, "web.1 started"), 1, "nothing was restarted");
    assert_eq!(ps(&r, &rt)[0]["state"], "running", "the app runs on");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    r.assert_no_leftovers();
}

#[test]
fn ps_lists_every_type_and_a_followers_bye_carries_the_exit_code() {
    let rt = Runtime::new();
    let procfile = "web: echo \"up $PS\"; exec sleep 60\nworker: exec sleep 60\n";
    let mut r = start(&rt, procfile, &["-m", "web=2,worker=0"]);
    r.wait_for("web.2  | up");
    let socket = rt.sockets().pop().expect("a socket");
    let connect = || {
        let mut s = UnixStream::connect(&socket).expect("connected");
        s.set_read_timeout(Some(WAIT)).expect("a timeout");
        json_frame(&mut s);
        send_json(&mut s, r#"{"type":"hello","protocol":1}"#);
        s
    };
    let mut s = connect();
    send_json(&mut s, r#"{"type":"request","id":1,"method":"ps"}"#);
    let reply = json_frame(&mut s);
    assert_eq!(
        reply["result"]["types"],
        serde_json::json!([{"name":"web","count":2},{"name":"worker","count":0}]),
        "{reply}"
    );
    // Other methods answer as before: instances only.
    send_json(
        &mut s,
        r#"{"type":"request","id":2,"method":"signal","params":{"signal":"CONT","names":["web"]}}"#,
    );
    let reply = json_frame(&mut s);
    assert!(reply["result"].get("types").is_none(), "{reply}");

    let mut follower = connect();
    send_json(
        &mut follower,
        r#"{"type":"request","id":1,"method":"logs","params":{"follow":true,"json":true}}"#,
    );
    assert_eq!(json_frame(&mut follower)["result"]["follow"], true);
    let out = client(&r, &rt, &["quit"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    let bye = loop {
        let (kind, payload) = frame(&mut follower);
        if kind == 0 {
            break serde_json::from_slice::<Value>(&payload).expect("JSON");
        }
    };
    assert_eq!(bye["type"], "bye", "{bye}");
    assert_eq!(bye["code"], "app_ended");
    assert_eq!(bye["exit_code"], 143, "{bye}");
    assert_eq!(r.wait_exit(), Some(143));
    r.assert_no_leftovers();
}

/// What a `"format":"lines"` follower reads: the instances' ids and
/// names, their chunks (id, stream, bytes) and procrun's records.
#[derive(Debug, Default)]
struct LinesFeed {
    names: std::collections::HashMap<u64, String>,
    chunks: Vec<(u64, u8, Vec<u8>)>,
    records: Vec<Value>,
    bye: Option<Value>,
}

impl LinesFeed {
    /// Reads frames until `done` holds (at most [`WAIT`]).
    fn read_until(&mut self, s: &mut UnixStream, done: impl Fn(&LinesFeed) -> bool) {
        let deadline = std::time::Instant::now() + WAIT;
        while !done(self) {
            assert!(std::time::Instant::now() < deadline, "never came: {self:?}");
            let (kind, payload) = frame(s);
            match kind {
                0 => {
                    let v: Value = serde_json::from_slice(&payload).expect("JSON");
                    match v["type"].as_str() {
                        Some("instance") => {
                            let id = v["id"].as_u64().expect("an id");
                            let name = v["name"].as_str().expect("a name");
                            self.names.insert(id, name.to_owned());
                        }
                        Some("bye") => self.bye = Some(v),
                        _ => panic!("unexpected message {v}"),
                    }
                }
                1 => self.records.extend(
                    payload
                        .split(|&b| b == b'\n')
                        .filter(|l| !l.is_empty())
                        .map(|l| serde_json::from_slice::<Value>(l).expect("a record")),
                ),
                3 => {
                    // The documented header: id, stream, tail, time in ms.
                    assert!(payload.len() >= 14, "{payload:?}");
                    let id = u64::from(u32::from_be_bytes(payload[..4].try_into().expect("4")));
                    assert!(self.names.contains_key(&id), "id {id} announced first");
                    assert_eq!(payload[5], 0, "whole lines");
                    let ms = u64::from_be_bytes(payload[6..14].try_into().expect("8"));
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .expect("after 1970")
                        .as_millis() as u64;
                    assert!(ms <= now && now - ms < 600_000, "a recent time: {ms}");
                    self.chunks.push((id, payload[4], payload[14..].to_vec()));
                }
                other => panic!("a frame of kind {other}"),
            }
        }
    }

    /// The lines `name` wrote, in order.
    fn lines_of(&self, name: &str) -> Vec<Vec<u8>> {
        self.chunks
            .iter()
            .filter(|(id, ..)| self.names.get(id).map(String::as_str) == Some(name))
            .flat_map(|(_, _, bytes)| {
                bytes
                    .strip_suffix(b"\n")
                    .unwrap_or(bytes)
                    .split(|&b| b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn starts(&self) -> usize {
        self.records
            .iter()
            .filter(|r| r["event"] == "start")
            .count()
    }
}

#[test]
fn a_lines_follower_gets_the_raw_lines_across_a_restart() {
    let rt = Runtime::new();
    let procfile = "web: printf 'caf\\351\\n'; echo \"up $PS\"; exec sleep 60\nother: echo hi; exec sleep 60\n";
    let mut r = start(&rt, procfile, &[]);
    r.wait_for("web.1   | up web.1");
    r.wait_for("other.1 | hi");
    let socket = rt.sockets().pop().expect("a socket");
    let mut s = UnixStream::connect(&socket).expect("connected");
    s.set_read_timeout(Some(WAIT)).expect("a timeout");
    json_frame(&mut s);
    send_json(&mut s, r#"{"type":"hello","protocol":1}"#);
    send_json(
        &mut s,
        r#"{"type":"request","id":1,"method":"logs","params":{"follow":true,"format":"lines","lines":10,"names":["web"]}}"#,
    );
    let reply = json_frame(&mut s);
    assert_eq!(reply["result"]["follow"], true, "{reply}");
    assert_eq!(reply["result"]["format"], "lines", "{reply}");
    let mut feed = LinesFeed::default();
    // The replay: the bytes as written (not UTF-8: not replaced), and
    // procrun's records.
    feed.read_until(&mut s, |f| {
        f.lines_of("web.1").len() >= 2 && f.starts() >= 1
    });
    let up: &[&[u8]] = &[b"caf\xe9", b"up web.1"];
    assert_eq!(feed.lines_of("web.1"), up);
    assert!(feed.chunks.iter().all(|c| c.1 == 0), "stdout: {feed:?}");
    assert!(
        feed.lines_of("other.1").is_empty(),
        "only what was asked for"
    );
    let out = client(&r, &rt, &["restart", "web"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    feed.read_until(&mut s, |f| {
        f.lines_of("web.1").len() >= 4 && f.starts() >= 2
    });
    assert_eq!(feed.lines_of("web.1"), [up, up].concat(), "{feed:?}");
    assert!(
        feed.records
            .iter()
            .any(|r| r["event"] == "exit" && r["name"] == "web.1"),
        "{:?}",
        feed.records
    );
    // A format nobody knows is refused, and the connection goes on.
    let mut s2 = UnixStream::connect(&socket).expect("connected");
    s2.set_read_timeout(Some(WAIT)).expect("a timeout");
    json_frame(&mut s2);
    send_json(&mut s2, r#"{"type":"hello","protocol":1}"#);
    send_json(
        &mut s2,
        r#"{"type":"request","id":1,"method":"logs","params":{"format":"yaml"}}"#,
    );
    assert_eq!(json_frame(&mut s2)["error"]["code"], "invalid_params");
    let out = client(&r, &rt, &["quit"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    feed.read_until(&mut s, |f| f.bye.is_some());
    assert_eq!(
        feed.bye.as_ref().map(|b| b["exit_code"].clone()),
        Some(143.into())
    );
    assert_eq!(r.wait_exit(), Some(143));
    r.assert_no_leftovers();
}
