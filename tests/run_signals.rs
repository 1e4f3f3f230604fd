//! `procrun run` and signals sent to procrun by other processes (`kill`):
//! they are forwarded to the command. Each test waits for the command to say
//! it is ready before signalling; none relies on a fixed delay.

mod support;

use nix::sys::signal::Signal;
use support::{Running, Test, WAIT};

/// `procrun run sh -c SCRIPT` in the background, in a new directory.
fn run_sh(script: &str) -> Running {
    Test::new().args(["run", "sh", "-c", script]).spawn()
}

/// Waits for a stdout line that is exactly `want`.
fn expect_line(r: &mut Running, want: &str) {
    r.wait_for_line(|l| l == want, WAIT);
}

#[test]
fn sigterm_to_procrun_reaches_the_command() {
    // The command traps TERM, says so and exits 0: procrun exits 0 too.
    let mut r =
        run_sh("trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done");
    expect_line(&mut r, "ready");
    r.signal(Signal::SIGTERM);
    expect_line(&mut r, "got TERM");
    assert_eq!(r.wait_exit(), Some(0), "{}", r.stderr());
}

#[test]
fn a_command_killed_by_a_forwarded_sigterm_gives_143() {
    let mut r = run_sh("echo ready; exec sleep 30");
    expect_line(&mut r, "ready");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.stderr());
    assert!(
        r.stderr().contains("terminated by SIGTERM"),
        "{}",
        r.stderr()
    );
}

#[test]
fn hup_quit_usr1_usr2_winch_alrm_and_a_sent_int_are_forwarded() {
    let names = ["HUP", "QUIT", "USR1", "USR2", "WINCH", "ALRM", "INT"];
    let mut script = String::new();
    for name in names {
        script.push_str(&format!("trap 'echo got {name}' {name}; "));
    }
    script.push_str("trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done");
    let mut r = run_sh(&script);
    expect_line(&mut r, "ready");
    let signals = [
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGWINCH,
        Signal::SIGALRM,
        // Sent by a process, not typed at a terminal: the command did not
        // get it, so procrun forwards it.
        Signal::SIGINT,
    ];
    for (signal, name) in signals.into_iter().zip(names) {
        r.signal(signal);
        expect_line(&mut r, &format!("got {name}"));
    }
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(0), "{}", r.stderr());
    // One line per signal: nothing delivered twice.
    let mut want: Vec<String> = names.iter().map(|n| format!("got {n}")).collect();
    want.insert(0, "ready".into());
    want.push("bye".into());
    assert_eq!(r.lines(), want);
}

#[test]
fn signals_ignored_when_procrun_starts_stay_ignored_for_the_command() {
    // `nohup procrun run …`: the command must survive SIGHUP, as it would
    // under nohup without procrun.
    // As nohup does: the shell ignores SIGHUP, and the ignore survives exec.
    let script = format!(
        "trap '' HUP; exec {} run sh -c 'kill -HUP $$; echo survived'",
        support::procrun_quoted()
    );
    let out = Test::new().program("sh").args(["-c", &script]).run();
    assert_eq!(out.lines, ["survived"], "{}", out.stderr);
    assert_eq!(out.code(), Some(0));
}

#[cfg(target_os = "linux")]
#[test]
fn the_command_gets_default_sigttou_and_sigttin() {
    // procrun ignores SIGTTOU/SIGTTIN so that a command taking over the
    // terminal cannot stop it; an ignore survives exec, so procrun must give
    // the command the defaults back (interactive programs rely on them).
    let out = Test::new()
        .args(["run", "grep", "^SigIgn:", "/proc/self/status"])
        .run();
    let line = out.stdout;
    let mask = u64::from_str_radix(line.trim().trim_start_matches("SigIgn:").trim(), 16)
        .unwrap_or_else(|_| panic!("parse {line:?}"));
    for signal in [libc::SIGTTOU, libc::SIGTTIN, libc::SIGINT, libc::SIGTERM] {
        assert_eq!(
            mask & (1 << (signal - 1)),
            0,
            "signal {signal} ignored: {line}"
        );
    }
}

/// Regression: `procrun run ENTRY` ran a simple entry as `sh -c CMD`; a
/// forwarded SIGTERM killed the shell and left the program running. Simple
/// entries are `exec`ed, as under `start`.
#[test]
fn sigterm_reaches_the_program_of_a_simple_procfile_entry() {
    let mut r = Test::new()
        .procfile("web: sh -c 'echo $$ > program.pid; echo ready; exec sleep 300'\n")
        .args(["run", "web"])
        .spawn();
    expect_line(&mut r, "ready");
    let pid: i32 = std::fs::read_to_string(r.join("program.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    let program = nix::unistd::Pid::from_raw(pid);
    r.signal(Signal::SIGTERM);
    let code = r.wait_exit();
    let stderr = r.stderr();
    let still_alive = nix::sys::signal::kill(program, None).is_ok();
    if still_alive {
        let _ = nix::sys::signal::kill(program, Signal::SIGKILL);
    }
    assert!(!still_alive, "the program survived procrun: {stderr}");
    assert_eq!(code, Some(143), "{stderr}");
}
