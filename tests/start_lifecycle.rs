//! `procrun start`: exit codes, signals and stopping (issue 3,
//! "Lifecycle and exit code").

#[path = "support/processes.rs"]
mod processes;
mod support;

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use processes::{Cleanup, Running, gone_within, unique_port};
use support::Project;

fn start(p: &Project, extra: &[&str]) -> Running {
    Running::start_app(p, extra)
}

#[test]
fn the_first_exit_code_is_procruns() {
    let p = Project::with_procfile("bad: sleep 0.1; exit 3\nslow: exec sleep 30\n");
    let mut r = start(&p, &[]);
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
    let p = Project::with_procfile("done: true\nslow: exec sleep 30\n");
    let mut r = start(&p, &[]);
    assert_eq!(r.wait_exit(), Some(0), "{}", r.transcript());
    assert!(r.transcript().contains("done.1 exited with code 0"));
}

#[test]
fn death_by_signal_is_128_plus_n() {
    let p = Project::with_procfile("victim: kill -9 $$\nslow: exec sleep 30\n");
    let mut r = start(&p, &[]);
    assert_eq!(r.wait_exit(), Some(137), "{}", r.transcript());
    assert!(
        r.transcript().contains("victim.1 killed by SIGKILL"),
        "{}",
        r.transcript()
    );
}

#[test]
fn a_process_that_cannot_start_counts_as_127() {
    // A NUL byte cannot be passed to exec: spawning fails.
    let p = Project::with_procfile("ok: exec sleep 30\nbroken: echo a\0b\n");
    let mut r = start(&p, &[]);
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
    let p = Project::with_procfile("a: exec sleep 30\nb: exec sleep 30\nc: sleep 30; echo never\n");
    let mut r = start(&p, &[]);
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
    let p = Project::with_procfile(STUBBORN);
    let mut r = start(&p, &["-t", "0.5"]);
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
    let p = Project::with_procfile(STUBBORN);
    let mut r = start(&p, &["-t", "60"]);
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
    let p = Project::with_procfile(
        "quitter: echo bye; exit 4\nstubborn: trap '' TERM; echo ready; sleep 30\n",
    );
    let mut r = start(&p, &["-t", "60"]);
    r.wait_for("quitter.1 exited with code 4");
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(4), "{}", r.transcript());
}

#[test]
fn usr1_and_usr2_are_forwarded_to_every_group() {
    let p = Project::with_procfile(
        "a: trap 'echo got USR1' USR1; trap 'echo got USR2' USR2; echo ready; while :; do sleep 0.05; done\n",
    );
    let mut r = start(&p, &["-m", "a=2"]);
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
    let p = Project::with_procfile("web: sleep 30\n");
    let mut r = start(&p, &[]);
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
/// one signal — procrun's SIGTERM — and never the terminal's SIGINT too
/// (pitfall 1).
#[cfg(target_os = "linux")]
#[test]
fn ctrl_c_in_a_terminal_reaches_children_once() {
    use std::io::{Read as _, Write as _};
    use std::os::unix::process::CommandExt as _;
    use std::sync::mpsc;

    let p = Project::with_procfile(
        "a: trap 'echo got INT' INT; trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done\n",
    );
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut cmd = std::process::Command::new(support::procrun_path());
    cmd.args([
        "start",
        "-p",
        &unique_port(),
        "--no-timestamp",
        "--color",
        "never",
    ])
    .current_dir(p.path())
    .stdin(std::process::Stdio::from(
        pty.slave.try_clone().expect("dup slave"),
    ))
    .stdout(std::process::Stdio::from(
        pty.slave.try_clone().expect("dup slave"),
    ))
    .stderr(std::process::Stdio::null());
    // SAFETY: setsid and ioctl are async-signal-safe; the child becomes a
    // session leader whose controlling terminal is the pty, procrun in its
    // foreground process group, as in a shell.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY as _, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn procrun");
    drop(cmd);
    drop(pty.slave);
    let mut master = std::fs::File::from(pty.master);
    let mut writer = master.try_clone().expect("dup master");
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0
                || tx
                    .send(String::from_utf8_lossy(&buf[..n]).into_owned())
                    .is_err()
            {
                break;
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |needle: &str, seen: &mut String| {
        let deadline = Instant::now() + processes::WAIT;
        while !seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(text) => seen.push_str(&text),
                Err(_) => panic!("no {needle:?} on the terminal: {seen}"),
            }
        }
    };
    wait_for("a.1    | ready", &mut seen);
    writer.write_all(b"\x03").expect("type Ctrl-C");
    wait_for("a.1 exited with code 0", &mut seen);
    let deadline = Instant::now() + processes::WAIT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("try_wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("procrun did not exit: {seen}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    while let Ok(text) = rx.recv_timeout(Duration::from_millis(200)) {
        seen.push_str(&text);
    }
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
    let p = Project::with_procfile("w: echo \"limit $(ulimit -n)\"; exec sleep 30\n");
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "ulimit -Sn 64 && exec '{}' start -m w=40 -p {} --no-timestamp",
            support::procrun_path().display(),
            unique_port()
        ))
        .current_dir(p.path())
        .env_remove("PROCRUN_FORMATION");
    let mut r = Running::spawn(cmd);
    for i in 1..=40 {
        r.wait_for(&format!("{:<6} | limit 64", format!("w.{i}")));
    }
    r.signal(Signal::SIGINT);
    assert_eq!(r.wait_exit(), Some(130), "{}", r.transcript());
    assert!(!r.transcript().contains("failed to start"));
}
