//! `procrun start`: stopping in the hard cases — a stopped child, SIGQUIT,
//! a tree that keeps respawning itself, a stdout that cannot be written.

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{Test, WAIT, procrun_quoted};

/// The state letter of `/proc/PID/stat` (`S`, `T`, …).
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().next()?.chars().next()
}

#[cfg(target_os = "linux")]
#[test]
fn a_stopped_child_gets_its_stop_signal_without_waiting_for_sigkill() {
    // The shell stops itself; without SIGCONT it would see SIGTERM only
    // when SIGKILL comes, 60 s later.
    let mut r = Test::new()
        .procfile(
            "web: trap 'echo got TERM; exit 0' TERM; echo ready; kill -STOP $$; echo resumed\n",
        )
        .start(&["-t", "60"]);
    let pid = r.pid_of("web.1");
    r.wait_for("ready");
    let until = Instant::now() + WAIT;
    while state(pid) != Some('T') {
        assert!(Instant::now() < until, "web.1 never stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    let t = r.transcript();
    assert!(t.contains("got TERM"), "{t}");
    assert!(!t.contains("sending SIGKILL"), "{t}");
    r.assert_no_leftovers();
}

#[test]
fn sigquit_stops_gracefully_like_sigterm() {
    let mut r = Test::new()
        .procfile(
            "web: trap 'echo cleaned up; exit 0' TERM; echo ready; while :; do sleep 0.05; done\n",
        )
        .start(&[]);
    r.wait_for("ready");
    r.signal(Signal::SIGQUIT);
    assert_eq!(r.wait_exit(), Some(131), "{}", r.transcript());
    let t = r.transcript();
    assert!(t.contains("SIGQUIT received"), "{t}");
    assert!(t.contains("cleaned up"), "{t}");
    r.assert_no_leftovers();
}

/// A daemon that keeps spawning detached daemons (each in a new session,
/// ignoring SIGTERM), which spawn detached daemons too: between listing
/// the processes and killing them, new ones appear. Bounded, so that a
/// broken procrun cannot flood the machine.
const RESPAWNER: &str = r#"
import os, signal, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
print('respawning', flush=True)
def detach():
    if os.fork() != 0:
        return False
    os.setsid()
    if os.fork() != 0:
        os._exit(0)
    return True
for _ in range(300):
    time.sleep(0.001)
    if detach():
        for _ in range(2):
            time.sleep(0.005)
            if detach():
                time.sleep(300)
                os._exit(0)
        time.sleep(300)
        os._exit(0)
time.sleep(300)
"#;

#[cfg(target_os = "linux")]
#[test]
fn a_respawning_daemon_leaves_nothing_behind() {
    for round in 0..3 {
        let mut r = Test::new()
            .procfile("daemon: python3 respawner.py\nweb: echo up; exec sleep 300\n")
            .file("respawner.py", RESPAWNER)
            .start(&["-t", "0.2"]);
        r.wait_for("respawning");
        r.wait_for("up");
        r.signal(Signal::SIGTERM);
        r.wait_exit();
        let t = r.transcript();
        assert!(!t.contains("giving up"), "round {round}: {t}");
        r.assert_no_leftovers();
    }
}

#[test]
fn an_unwritable_stdout_is_a_failure_not_a_success() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    // The app would exit 3; with nowhere to write, procrun must not claim
    // success, nor pass the app's code off as its own.
    let out = Test::new()
        .procfile("web: echo hello; exec sleep 300\n")
        .program("sh")
        .args([
            "-c",
            &format!(
                "exec {} start -p {} > /dev/full",
                procrun_quoted(),
                support::free_port()
            ),
        ])
        .code(1)
        .stderr_has("writing the output failed: No space left on device")
        .run();
    assert_eq!(
        out.stderr.matches("writing the output failed").count(),
        1,
        "{}",
        out.stderr
    );
}
