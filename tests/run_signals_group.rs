//! `procrun run` and signals sent to procrun's whole process group (`kill
//! -SIG -PGID`, as CI runners and shells do): the command is in that group
//! and gets each one directly, so procrun must not forward it again. The
//! same signals sent to procrun alone are forwarded, exactly once.
#![cfg(target_os = "linux")]

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use support::{Running, Test, WAIT};

/// Counts every delivery (Python's wakeup fd gets one byte per signal
/// delivered, so repeated ones are not merged into one handler run) and
/// prints `got NAME K` for the K-th delivery; exits when the file `stop`
/// appears.
const COUNTER: &str = r#"
import os, select, signal
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w)
for s in ("HUP", "QUIT", "USR1", "USR2", "WINCH", "ALRM", "INT", "TERM"):
    signal.signal(getattr(signal, "SIG" + s), lambda *a: None)
print("ready", flush=True)
k = 0
while not os.path.exists("stop"):
    if select.select([r], [], [], 0.02)[0]:
        for n in os.read(r, 64):
            k += 1
            print("got", signal.Signals(n).name[3:], k, flush=True)
"#;

const SIGNALS: [(Signal, &str); 8] = [
    (Signal::SIGTERM, "TERM"),
    (Signal::SIGHUP, "HUP"),
    (Signal::SIGQUIT, "QUIT"),
    (Signal::SIGUSR1, "USR1"),
    (Signal::SIGUSR2, "USR2"),
    (Signal::SIGWINCH, "WINCH"),
    (Signal::SIGALRM, "ALRM"),
    (Signal::SIGINT, "INT"),
];

/// Waits (at most [`WAIT`]) until `pid` is stopped or, with `stopped`
/// false, running again.
fn wait_state(pid: i32, stopped: bool) {
    let deadline = Instant::now() + WAIT;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next());
        if (state == Some("T")) == stopped {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "procrun never got to stopped={stopped}: {stat}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits for the next delivery (the `seen + 1`-th), which must be `name`.
#[track_caller]
fn expect_got(r: &mut Running, seen: &mut usize, name: &str) {
    *seen += 1;
    let suffix = format!(" {seen}");
    let line = r.wait_for_line(|l| l.starts_with("got ") && l.ends_with(&suffix), WAIT);
    assert_eq!(line, format!("got {name} {seen}"), "{}", r.transcript());
}

#[test]
fn each_forwarded_signal_arrives_once_whether_sent_to_procrun_or_its_group() {
    let mut r = Test::new().args(["run", "python3", "-c", COUNTER]).spawn();
    r.wait_for_line(|l| l == "ready", WAIT);
    let procrun = Pid::from_raw(r.pid());
    let mut seen = 0;
    let mut want = vec!["ready".to_owned()];
    for _round in 0..5 {
        for (signal, name) in SIGNALS {
            // To procrun alone: it forwards the signal.
            kill(procrun, signal).expect("kill");
            expect_got(&mut r, &mut seen, name);
            want.push(format!("got {name} {seen}"));

            // To the group, while procrun is stopped: the command gets it at
            // once; procrun sees it only when continued, and must not send
            // it again (a second delivery would come well after the first,
            // so it cannot merge with it).
            kill(procrun, Signal::SIGSTOP).expect("stop");
            wait_state(r.pid(), true);
            killpg(procrun, signal).expect("killpg");
            expect_got(&mut r, &mut seen, name);
            want.push(format!("got {name} {seen}"));
            kill(procrun, Signal::SIGCONT).expect("cont");
            wait_state(r.pid(), false);
        }
    }
    std::fs::write(r.join("stop"), "").expect("stop file");
    assert_eq!(r.wait_exit(), Some(0), "{}", r.stderr());
    // Exactly one line per signal sent: nothing was delivered twice.
    assert_eq!(r.lines(), want, "{}", r.stderr());
}

#[test]
fn a_group_signal_is_not_forwarded_while_procrun_runs_either() {
    // No stop this time: procrun handles the signal while the sender may
    // still be signalling the group's other members.
    let mut r = Test::new().args(["run", "python3", "-c", COUNTER]).spawn();
    r.wait_for_line(|l| l == "ready", WAIT);
    let group = Pid::from_raw(r.pid());
    let mut seen = 0;
    let mut want = vec!["ready".to_owned()];
    for _round in 0..10 {
        for (signal, name) in SIGNALS {
            killpg(group, signal).expect("killpg");
            expect_got(&mut r, &mut seen, name);
            want.push(format!("got {name} {seen}"));
        }
    }
    std::fs::write(r.join("stop"), "").expect("stop file");
    assert_eq!(r.wait_exit(), Some(0), "{}", r.stderr());
    assert_eq!(r.lines(), want, "{}", r.stderr());
}

/// Field `n` (1-based, after the command name) of `/proc/PID/stat`.
fn stat_field(pid: i32, n: usize) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit(')')
        .next()?
        .split_whitespace()
        .nth(n - 1)?
        .parse()
        .ok()
}

#[test]
fn the_command_keeps_procruns_process_group_and_procrun_steps_out_of_it() {
    let mut r = Test::new()
        .args([
            "run",
            "python3",
            "-c",
            "import os, time\nprint('pgid', os.getpgrp(), flush=True)\n\
             while not os.path.exists('stop'): time.sleep(0.02)",
        ])
        .spawn();
    // The harness starts procrun as the leader of a group of its own.
    let group = r.pid();
    let line = r.wait_for("pgid ");
    assert_eq!(line, format!("pgid {group}"), "{}", r.transcript());
    let procrun_group = stat_field(r.pid(), 4).expect("procrun's stat");
    assert_ne!(procrun_group, group, "procrun is still in its first group");
    std::fs::write(r.join("stop"), "").expect("stop file");
    assert_eq!(r.wait_exit(), Some(0), "{}", r.stderr());
}

#[test]
fn a_sigkill_to_procruns_group_kills_the_command_and_procrun_reports_137() {
    let mut r = Test::new().args(["run", "python3", "-c", COUNTER]).spawn();
    r.wait_for_line(|l| l == "ready", WAIT);
    killpg(Pid::from_raw(r.pid()), Signal::SIGKILL).expect("killpg");
    assert_eq!(r.wait_exit(), Some(137), "{}", r.transcript());
    assert!(
        r.stderr().contains("terminated by SIGKILL: exit code 137"),
        "{}",
        r.stderr()
    );
    r.assert_no_leftovers();
}

#[test]
fn on_a_terminal_as_a_session_leader_each_group_signal_arrives_once() {
    // procrun leads its session (as under `ssh -t` or `setsid`) and cannot
    // leave its group: the command gets a group of its own, and procrun
    // forwards what reaches procrun's group.
    let r = Test::new().args(["run", "python3", "-c", COUNTER]).pty();
    r.expect("ready");
    let mut seen = 0;
    for _round in 0..3 {
        for (signal, name) in SIGNALS {
            killpg(r.pid(), signal).expect("killpg");
            seen += 1;
            // A second copy of an earlier signal would have taken this
            // number.
            r.expect(&format!("got {name} {seen}\r\n"));
        }
    }
    std::fs::write(r.path().join("stop"), "").expect("stop file");
    let (status, output) = r.finish();
    assert_eq!(status.code(), Some(0), "{output}");
    assert_eq!(output.matches("got ").count(), seen, "{output}");
}
