//! `procrun run` and signals sent to procrun by other processes (`kill`):
//! they are forwarded to the command. Each test waits for the command to say
//! it is ready before signalling; none relies on a fixed delay.

#[path = "support/running.rs"]
mod running;
mod support;

use nix::sys::signal::Signal;
use running::{Running, procrun_run_sh};
use support::Project;

#[test]
fn sigterm_to_procrun_reaches_the_command() {
    let p = Project::new();
    // The command traps TERM, says so and exits 0: procrun exits 0 too.
    let mut r = Running::start(procrun_run_sh(
        p.path(),
        "trap 'echo got TERM; exit 0' TERM; echo ready; while :; do sleep 0.05; done",
    ));
    r.expect_line("ready");
    r.signal(Signal::SIGTERM);
    r.expect_line("got TERM");
    let (status, _, stderr) = r.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
}

#[test]
fn a_command_killed_by_a_forwarded_sigterm_gives_143() {
    let p = Project::new();
    let mut r = Running::start(procrun_run_sh(p.path(), "echo ready; exec sleep 30"));
    r.expect_line("ready");
    r.signal(Signal::SIGTERM);
    let (status, _, stderr) = r.finish();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(stderr.contains("terminated by SIGTERM"), "{stderr}");
}

#[test]
fn hup_quit_usr1_usr2_winch_alrm_and_a_sent_int_are_forwarded() {
    let p = Project::new();
    let names = ["HUP", "QUIT", "USR1", "USR2", "WINCH", "ALRM", "INT"];
    let mut script = String::new();
    for name in names {
        script.push_str(&format!("trap 'echo got {name}' {name}; "));
    }
    script.push_str("trap 'echo bye; exit 0' TERM; echo ready; while :; do sleep 0.05; done");
    let mut r = Running::start(procrun_run_sh(p.path(), &script));
    r.expect_line("ready");
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
        r.expect_line(&format!("got {name}"));
    }
    r.signal(Signal::SIGTERM);
    let (status, stdout, stderr) = r.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    // One line per signal: nothing delivered twice.
    let mut want: Vec<String> = names.iter().map(|n| format!("got {n}")).collect();
    want.insert(0, "ready".into());
    want.push("bye".into());
    assert_eq!(stdout, want);
}

#[test]
fn signals_ignored_when_procrun_starts_stay_ignored_for_the_command() {
    // `nohup procrun run …`: the command must survive SIGHUP, as it would
    // under nohup without procrun.
    let p = Project::new();
    let mut cmd = procrun_run_sh(p.path(), "kill -HUP $$; echo survived");
    // SAFETY: signal(2) is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt as _;
        cmd.pre_exec(|| {
            libc::signal(libc::SIGHUP, libc::SIG_IGN);
            Ok(())
        });
    }
    let (status, stdout, stderr) = Running::start(cmd).finish();
    assert_eq!(stdout, ["survived"], "{stderr}");
    assert_eq!(status.code(), Some(0));
}

#[cfg(target_os = "linux")]
#[test]
fn the_command_gets_default_sigttou_and_sigttin() {
    // procrun ignores SIGTTOU/SIGTTIN so that a command taking over the
    // terminal cannot stop it; an ignore survives exec, so procrun must give
    // the command the defaults back (interactive programs rely on them).
    let p = Project::new();
    let out = support::procrun()
        .current_dir(p.path())
        .args(["run", "grep", "^SigIgn:", "/proc/self/status"])
        .output()
        .expect("runs");
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
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
    let p =
        Project::with_procfile("web: sh -c 'echo $$ > program.pid; echo ready; exec sleep 300'\n");
    let mut command = running::clean_command(support::procrun_path(), p.path());
    command.args(["run", "web"]);
    let mut r = Running::start(command);
    r.expect_line("ready");
    let pid: i32 = std::fs::read_to_string(p.join("program.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("a pid");
    let program = nix::unistd::Pid::from_raw(pid);
    r.signal(Signal::SIGTERM);
    let (status, _, stderr) = r.finish();
    let still_alive = nix::sys::signal::kill(program, None).is_ok();
    if still_alive {
        let _ = nix::sys::signal::kill(program, Signal::SIGKILL);
    }
    assert!(!still_alive, "the program survived procrun: {stderr}");
    assert_eq!(status.code(), Some(143), "{stderr}");
}
