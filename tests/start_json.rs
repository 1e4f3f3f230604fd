//! `procrun start --log-format json`: every stdout line is one JSON record,
//! checked field by field.

mod support;

use std::collections::HashMap;

use base64::Engine as _;
use nix::sys::signal::Signal;
use serde_json::Value;
use support::Test;

fn records(stdout: &[u8]) -> Vec<Value> {
    assert_eq!(stdout.last(), Some(&b'\n'), "records end with a newline");
    stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice(l)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(l)))
        })
        .collect()
}

fn of<'a>(all: &'a [Value], name: &str) -> Vec<&'a Value> {
    all.iter().filter(|r| r["name"] == name).collect()
}

#[test]
fn child_lines_and_events_are_records() {
    // `say` writes stdout, stderr, a line that is not UTF-8 and a last line
    // without newline, then exits 3: that stops `idle`.
    let out = Test::new()
        .procfile(
            "say: printf 'one\\n'; printf 'oops\\n' >&2; printf 'bad \\377 byte\\n'; printf 'no newline'; exit 3\n\
             idle: exec sleep 30\n",
        )
        .args(["start", "--log-format", "json", "-p", "7400"])
        .code(3)
        .run();
    let all = records(&out.stdout_bytes);
    for r in &all {
        let ts = r["ts"].as_str().expect("ts");
        assert!(ts.len() == 27 && ts.ends_with('Z'), "{r}");
        assert!(r["seq"].as_u64().is_some(), "{r}");
        assert!(r.get("level").is_none(), "no invented level: {r}");
    }

    let say = of(&all, "say.1");
    let seqs: Vec<u64> = say
        .iter()
        .map(|r| r["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>(), "{say:?}");
    assert_eq!(say[0]["event"], "start");
    assert_eq!(say[0]["stream"], "system");
    assert_eq!(say[0]["port"], 7400);
    assert_eq!(say[0]["type"], "say");
    assert_eq!(say[0]["instance"], 1);
    let pid = say[0]["pid"].as_u64().expect("pid");

    let lines: Vec<&&Value> = say.iter().filter(|r| r["stream"] != "system").collect();
    assert_eq!(lines.len(), 4, "{lines:?}");
    let stdout: Vec<&&&Value> = lines.iter().filter(|r| r["stream"] == "stdout").collect();
    assert_eq!(stdout[0]["msg"], "one");
    assert_eq!(stdout[0]["pid"], pid);
    let raw = base64::engine::general_purpose::STANDARD
        .decode(stdout[1]["msg_b64"].as_str().expect("msg_b64"))
        .expect("base64");
    assert_eq!(raw, b"bad \xff byte");
    assert!(stdout[1].get("msg").is_none());
    assert_eq!(stdout[2]["msg"], "no newline");
    assert_eq!(stdout[2]["partial"], true);
    assert!(stdout[0].get("partial").is_none());
    let stderr: Vec<&&&Value> = lines.iter().filter(|r| r["stream"] == "stderr").collect();
    assert_eq!(stderr.len(), 1);
    assert_eq!(stderr[0]["msg"], "oops");

    let exit = say.iter().find(|r| r["event"] == "exit").expect("exit");
    assert_eq!(exit["code"], 3);

    let idle = of(&all, "idle.1");
    let events: Vec<&str> = idle.iter().filter_map(|r| r["event"].as_str()).collect();
    assert_eq!(events, ["start", "stop", "exit"], "{idle:?}");
    let stop = idle.iter().find(|r| r["event"] == "stop").expect("stop");
    assert_eq!(stop["signal"], "SIGTERM");
    assert_eq!(stop["timeout_ms"], 5000);
    assert_eq!(stop["port"], Value::Null);
    let exit = idle.iter().find(|r| r["event"] == "exit").expect("exit");
    assert_eq!(exit["signal"], "SIGTERM");
    assert!(exit.get("code").is_none());
}

#[test]
fn every_line_is_one_record_even_when_written_in_bursts() {
    // 3000 lines from one fast writer, and 3000 from a second one at once.
    let script = "i=0; while [ $i -lt 3000 ]; do echo \"line $i of $PS\"; i=$((i+1)); done";
    let out = Test::new()
        .procfile(&format!("a: {script}\nb: {script}\n"))
        .args(["start", "--log-format", "json"])
        .run();
    let all = records(&out.stdout_bytes);
    let mut per: HashMap<String, Vec<String>> = HashMap::new();
    for r in all.iter().filter(|r| r["stream"] == "stdout") {
        per.entry(r["name"].as_str().expect("name").to_owned())
            .or_default()
            .push(r["msg"].as_str().expect("msg").to_owned());
    }
    // The first to finish stops the other, so only it is complete.
    let complete = per
        .iter()
        .find(|(_, v)| v.len() == 3000)
        .unwrap_or_else(|| panic!("no writer delivered all 3000 lines: {:?}", per.keys()));
    for (i, msg) in complete.1.iter().enumerate() {
        assert_eq!(msg, &format!("line {i} of {}", complete.0));
    }
    for v in per.values() {
        for (i, msg) in v.iter().enumerate() {
            assert!(msg.starts_with(&format!("line {i} of ")), "{msg}");
        }
    }
}

#[test]
fn a_signal_to_procrun_is_a_record_of_procrun() {
    let mut r = Test::new()
        .procfile("web: echo up; exec sleep 30\n")
        .start(&["--log-format", "json"]);
    r.wait_for("\"msg\":\"up\"");
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    let all = records(&r.stdout_bytes());
    let own = of(&all, "procrun");
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0]["event"], "stop");
    assert_eq!(own[0]["signal"], "SIGINT");
    assert_eq!(own[0]["stream"], "system");
    assert_eq!(own[0]["seq"], 1);
    assert!(own[0]["pid"].as_u64().is_some());
    r.assert_no_leftovers();
}

#[test]
fn an_unknown_log_format_is_refused() {
    Test::new()
        .procfile("web: true\n")
        .args(["start", "--log-format", "xml"])
        .code(2)
        .stderr_has("invalid value 'xml'")
        .run();
}
