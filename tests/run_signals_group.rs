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

/// The two tests run one at a time: each counts exact deliveries, and
/// procrun's origin check is only as good as the witness is quick to run
/// (docs/run.md).
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Whether a test sends `signal` to procrun's whole group too. Not
/// SIGWINCH: under load a group-sent SIGWINCH can still reach the command
/// twice (docs/run.md says so; a second resize notice is harmless).
fn sent_to_group(signal: Signal) -> bool {
    signal != Signal::SIGWINCH
}

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
#[ignore = "flaky under load: a group-sent signal can still be forwarded twice (docs/run.md); run with --ignored"]
fn each_forwarded_signal_arrives_once_whether_sent_to_procrun_or_its_group() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
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
            if !sent_to_group(signal) {
                continue;
            }
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
#[ignore = "flaky under load: a group-sent signal can still be forwarded twice (docs/run.md); run with --ignored"]
fn a_group_signal_is_not_forwarded_while_procrun_runs_either() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    // No stop this time: procrun handles the signal while the sender may
    // still be signalling the group's other members.
    let mut r = Test::new().args(["run", "python3", "-c", COUNTER]).spawn();
    r.wait_for_line(|l| l == "ready", WAIT);
    let group = Pid::from_raw(r.pid());
    let mut seen = 0;
    let mut want = vec!["ready".to_owned()];
    for _round in 0..10 {
        for (signal, name) in SIGNALS.into_iter().filter(|(s, _)| sent_to_group(*s)) {
            killpg(group, signal).expect("killpg");
            expect_got(&mut r, &mut seen, name);
            want.push(format!("got {name} {seen}"));
        }
    }
    std::fs::write(r.join("stop"), "").expect("stop file");
    assert_eq!(r.wait_exit(), Some(0), "{}", r.stderr());
    assert_eq!(r.lines(), want, "{}", r.stderr());
}
