//! `procrun start`: exit codes, signals and stopping.

mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use support::{Cleanup, Running, Test, gone_within};

/// `procrun start -p FREE_PORT --no-timestamp EXTRA…` on `procfile`.
fn start(procfile: &str, extra: &[&str]) -> Running {
    Test::new().procfile(procfile).start(extra)
}

#[test]
fn the_first_exit_code_is_procruns() {
    let mut r = start("bad: sleep 0.1; exit 3\nslow: exec sleep 30\n", &[]);
    let mut cleanup = Cleanup::default();
    let slow = cleanup.add(r.pid_of("slow.1"));
    assert_eq!(r.wait_exit(), Some(3), "{}", r.transcript());
    let t = r.transcript();
    assert!(t.contains("system | bad.1 exited with code 3"), "{t}");
    assert!(t.contains("system | slow.1 killed by SIGTERM"), "{t}");
    assert!(gone_within(slow, Duration::from_secs(2)));
}

#[test]
fn exit_zero_is_zero() {
    let mut r = start("done: true\nslow: exec sleep 30\n", &[]);
    assert_eq!(r.wait_exit(), Some(0), "{}", r.transcript());
    assert!(r.transcript().contains("done.1 exited with code 0"));
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let mut r = start("victim: kill -9 $$\nslow: exec sleep 30\n", &[]);
    assert_eq!(r.wait_exit(), Some(137), "{}", r.transcript());
    assert!(
        r.transcript().contains("victim.1 killed by SIGKILL"),
        "{}",
        r.transcript()
    );
}

#[test]
fn a_process_that_cannot_start_counts_as_127() {
    // execve refuses an argument of 4 MiB (E2BIG: over Linux's 128 KiB per
    // string, over macOS's 1 MiB in all): spawning `sh -c COMMAND` fails.
    let procfile = format!("ok: exec sleep 30\nbroken: echo {}\n", "a".repeat(4 << 20));
    let mut r = start(&procfile, &[]);
    let mut cleanup = Cleanup::default();
    let ok = cleanup.add(r.pid_of("ok.1"));
    assert_eq!(r.wait_exit(), Some(127), "{}", r.transcript());
    assert!(
        r.transcript()
            .contains("system   | broken.1 failed to start: "),
        "{}",
        r.transcript()
    );
    assert!(gone_within(ok, Duration::from_secs(2)));
}

fn stops_everything_on(signal: Signal, code: i32) {
    let mut r = start(
        "a: exec sleep 30\nb: exec sleep 30\nc: sleep 30; echo never\n",
        &[],
    );
    let mut cleanup = Cleanup::default();
    let pids: Vec<i32> = ["a.1", "b.1", "c.1"]
        .iter()
        .map(|n| cleanup.add(r.pid_of(n)))
        .collect();
    let sent = Instant::now();
    r.signal(signal);
    assert_eq!(r.wait_exit(), Some(code), "{}", r.transcript());
    assert!(
        sent.elapsed() < Duration::from_secs(4),
        "took {:?}",
        sent.elapsed()
    );
    for pid in pids {
        assert!(gone_within(pid, Duration::from_secs(1)), "{pid} survived");
    }
    let t = r.transcript();
    assert!(t.contains(&format!("{} received", signal.as_str())), "{t}");
    assert!(
        !t.contains("sending SIGKILL") && !t.contains("killed by SIGKILL"),
        "a cooperative stop needs no SIGKILL: {t}"
    );
}

#[test]
fn sigint_stops_everything() {
    stops_everything_on(Signal::SIGINT, 130);
}

#[test]
fn sigterm_stops_everything() {
    stops_everything_on(Signal::SIGTERM, 143);
}

#[test]
fn sighup_stops_everything() {
    stops_everything_on(Signal::SIGHUP, 129);
}

/// A child that ignores SIGTERM (and so does its own child).
const STUBBORN: &str = "stubborn: trap '' TERM; echo ready; sleep 30; echo never\n";

#[test]
fn a_child_ignoring_sigterm_is_killed_after_the_timeout() {
    let mut r = start(STUBBORN, &["-t", "0.5"]);
    let mut cleanup = Cleanup::default();
    let pid = cleanup.add(r.pid_of("stubborn.1"));
    r.wait_for("stubborn.1 | ready");
    let sent = Instant::now();
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    let took = sent.elapsed();
    assert!(
        took >= Duration::from_millis(500),
        "killed too early: {took:?}"
    );
    assert!(took < Duration::from_secs(5), "took {took:?}");
    let t = r.transcript();
    assert!(t.contains("sending SIGKILL to stubborn.1"), "{t}");
    assert!(t.contains("stubborn.1 killed by SIGKILL"), "{t}");
    assert!(!t.contains("never"), "{t}");
    assert!(gone_within(pid, Duration::from_secs(1)));
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let mut r = start(STUBBORN, &["-t", "60"]);
    r.wait_for("stubborn.1 | ready");
    r.signal(Signal::SIGINT);
    r.wait_for("stopping 1 process");
    let second = Instant::now();
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    assert!(second.elapsed() < Duration::from_secs(5));
    assert!(
        r.transcript()
            .contains("SIGINT received again: killing at once"),
        "{}",
        r.transcript()
    );
}

#[test]
fn an_exit_before_the_signal_keeps_its_code() {
    let mut r = start(
        "quitter: echo bye; exit 4\nstubborn: trap '' TERM; echo ready; sleep 30\n",
        &["-t", "60"],
    );
    r.wait_for("quitter.1 exited with code 4");
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(4), "{}", r.transcript());
}

#[test]
fn usr1_and_usr2_are_forwarded_to_every_group() {
    let mut r = start(
        "a: trap 'echo got USR1' USR1; trap 'echo got USR2' USR2; echo ready; while :; do sleep 0.05; done\n",
        &["-m", "a=2"],
    );
    r.wait_for("a.1    | ready");
    r.wait_for("a.2    | ready");
    r.signal(Signal::SIGUSR1);
    r.wait_for("a.1    | got USR1");
    r.wait_for("a.2    | got USR1");
    r.signal(Signal::SIGUSR2);
    r.wait_for("a.2    | got USR2");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
    // Exactly once each.
    assert_eq!(r.transcript().matches("a.1    | got USR1").count(), 1);
}

#[test]
fn the_shell_is_replaced_by_simple_commands() {
    // With `exec`, the pid procrun reports is the program itself: SIGTERM
    // reaches it, and the exit shows as its own death by SIGTERM.
    let mut r = start("web: sleep 30\n", &[]);
    let pid = r.pid_of("web.1");
    if cfg!(target_os = "linux") {
        // The shell execs `sleep` within moments of starting.
        let comm = || std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(5);
        while comm().trim() != "sleep" && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(comm().trim(), "sleep");
    }
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130));
    assert!(r.transcript().contains("web.1 killed by SIGTERM"));
}

/// Ctrl-C typed in a real terminal: the terminal signals its foreground
/// process group. Children have groups of their own, so each gets exactly
/// one signal — procrun's SIGTERM — and never the terminal's SIGINT too.
#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_in_a_terminal_reaches_children_once() {
    let mut r = Test::new()
        .procfile(
            "a: trap 'echo got INT' INT; trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done\n",
        )
        .args([
            "start",
            "-p",
            &support::free_port().to_string(),
            "--no-timestamp",
            "--color",
            "never",
        ])
        .pty();
    r.expect("a.1    | ready");
    r.send(b"\x03");
    r.expect("a.1 exited with code 0");
    let (status, seen) = r.finish();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("SIGINT received"), "{seen}");
    assert_eq!(seen.matches("got TERM").count(), 1, "{seen}");
    assert!(
        !seen.contains("got INT"),
        "the child got the terminal's SIGINT too: {seen}"
    );
}

/// 40 instances need more than 64 descriptors: procrun raises its own
/// soft limit to the hard one, and gives children the limit it started
/// with.
#[cfg(target_os = "linux")]
#[test]
fn many_instances_start_under_a_low_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if hard < 1024 {
        eprintln!("hard limit {hard} too low for this test: skipped");
        return;
    }
    let script = format!(
        "ulimit -Sn 64 && exec {} start -m w=40 -p {} --no-timestamp",
        support::procrun_quoted(),
        support::free_port()
    );
    let mut r = Test::new()
        .procfile("w: echo \"limit $(ulimit -n)\"; exec sleep 30\n")
        .program("sh")
        .args(["-c", &script])
        .spawn();
    for i in 1..=40 {
        r.wait_for(&format!("{:<6} | limit 64", format!("w.{i}")));
    }
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    assert!(!r.transcript().contains("failed to start"));
}

#[test]
fn instances_that_end_at_once_are_each_reaped_by_their_own() {
    // Spawns are answered on the dispatcher's thread after the exec: a
    // process may already have ended (and raised SIGCHLD) by then. It is
    // still its unit's to reap, never a stray's.
    let mut r = start(
        "quick: exit 7\nidle: exec sleep 30\n",
        &["-m", "quick=40,idle=1", "--can-die", "quick"],
    );
    let mut cleanup = Cleanup::default();
    let idle = cleanup.add(r.pid_of("idle.1"));
    for n in 1..=40 {
        r.wait_for(&format!("quick.{n} exited with code "));
    }
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(128 + 15), "{}", r.transcript());
    let t = r.transcript();
    assert!(!r.stderr().contains("No child processes"), "{}", r.stderr());
    assert_eq!(t.matches("exited with code 7").count(), 40, "{t}");
    assert!(gone_within(idle, Duration::from_secs(2)));
}
