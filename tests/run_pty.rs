//! `procrun run` at a terminal: procrun runs on a pseudo-terminal as a
//! session leader in the foreground, as under an interactive shell. What is
//! typed reaches the command; Ctrl-C reaches it exactly once.

mod support;

use nix::sys::signal::Signal;
use support::Test;

/// `procrun run sh -c SCRIPT` in a new directory.
fn run_sh(script: &str) -> Test {
    Test::new().args(["run", "sh", "-c", script])
}

#[test]
fn an_interactive_command_reads_from_the_terminal() {
    let mut r = run_sh(
        "[ -t 0 ] && [ -t 1 ] && echo on-a-tty; printf 'name? '; read name; echo \"hello, $name\"",
    )
    .pty();
    r.expect("on-a-tty");
    r.expect("name? ");
    r.send(b"world\n");
    r.expect("hello, world");
    let (status, output) = r.finish();
    assert_eq!(status.code(), Some(0), "{output}");
}

#[test]
fn ctrl_c_reaches_the_command_exactly_once() {
    // The command counts SIGINTs. SIGUSR1, forwarded by procrun after
    // anything procrun would itself have forwarded for the Ctrl-C, prints the
    // count and ends it.
    let mut r = run_sh(
        "n=0; trap 'n=$((n+1)); echo \"INT number $n\"' INT; \
         trap 'echo \"total $n\"; exit 0' USR1; \
         echo ready; while :; do sleep 0.05; done",
    )
    .pty();
    r.expect("ready");
    // Two SIGINTs sent close together merge into one pending signal, which
    // would hide a second delivery. So procrun is held stopped while the
    // terminal's SIGINT reaches the command, and only then sees its own.
    r.signal(Signal::SIGSTOP);
    wait_until_stopped(r.pid());
    r.send(b"\x03");
    r.expect("INT number 1");
    r.signal(Signal::SIGCONT);
    r.signal(Signal::SIGUSR1);
    r.expect("total ");
    let (status, output) = r.finish();
    assert!(output.contains("total 1"), "{output:?}");
    assert!(!output.contains("INT number 2"), "{output:?}");
    assert_eq!(status.code(), Some(0), "{output:?}");
}

/// Polls (at most `support::TIMEOUT`) until the child `pid` is stopped.
fn wait_until_stopped(pid: nix::unistd::Pid) {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    loop {
        match waitpid(pid, Some(WaitPidFlag::WUNTRACED | WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Stopped(..)) => return,
            Ok(WaitStatus::StillAlive) => {}
            other => panic!("procrun did not stop: {other:?}"),
        }
        assert!(std::time::Instant::now() < deadline, "procrun did not stop");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

#[test]
fn procrun_is_not_stopped_when_the_command_takes_the_terminal() {
    // As under an interactive shell: the outer bash (job control on) runs
    // procrun as a foreground job in its own process group. The command is a
    // job-control shell that gives the terminal to its own job and is then
    // killed, leaving procrun in a background group with `tostop` set.
    // Writing its message and taking the terminal back would stop procrun
    // with SIGTTOU if it did not ignore it; the outer bash would then report
    // a stopped job (exit status 150) instead of 137.
    let inner = r#"stty tostop; set -m; sh -c "kill -KILL \$PPID"; :"#;
    let outer = format!(
        "set -m; {} --color never run bash -c '{inner}'; echo \"procrun exited $?\"; stty -tostop",
        support::procrun_quoted()
    );
    let r = Test::new()
        .program("bash")
        .args(["--norc", "--noprofile", "-c", &outer])
        .pty();
    r.expect("procrun exited");
    let (status, output) = r.finish();
    assert!(output.contains("procrun exited 137"), "{output:?}");
    assert!(
        output.contains("procrun: `bash` was terminated by SIGKILL: exit code 137"),
        "{output:?}"
    );
    assert_eq!(status.code(), Some(0), "{output:?}");
}

#[test]
fn procrun_takes_the_terminal_back_from_a_command_that_died_holding_it() {
    // A non-job-control shell script runs procrun, then reads from the
    // terminal. The command gives the terminal to a job of its own and is
    // killed; unless procrun takes the terminal back, the script's `read`
    // runs in a background group and fails.
    let inner = r#"set -m; sh -c "kill -KILL \$PPID"; :"#;
    let outer = format!(
        "{} --color never run bash -c '{inner}'; echo \"code $?\"; read x; echo \"read $x\"",
        support::procrun_quoted()
    );
    let mut r = Test::new().program("sh").args(["-c", &outer]).pty();
    r.expect("code 137");
    r.send(b"hi\n");
    let (status, output) = r.finish();
    assert!(output.contains("read hi"), "{output:?}");
    assert_eq!(status.code(), Some(0), "{output:?}");
}

#[test]
fn ctrl_z_stops_procrun_and_the_command_together_and_fg_resumes_both() {
    // A bash with job control runs procrun as a foreground job; after
    // Ctrl-Z stops the job, the script resumes it with `fg`. (A script, not
    // an interactive bash: readline may drop keys typed while it resets the
    // terminal after a stop.)
    let job = "echo ready; read x; echo \"got $x\"";
    let script = format!(
        "set -m; {} run sh -c '{job}'; echo \"stopped with $?\"; fg; echo \"status $?\"",
        support::procrun_quoted()
    );
    let mut r = Test::new()
        .program("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .pty();
    r.expect("ready");
    r.send(b"\x1a");
    // 148 = 128 + SIGTSTP: bash saw the job (procrun) stop.
    r.expect("stopped with 148");
    // `fg` prints the job's command line when it resumes it.
    r.expect(job);
    r.send(b"resumed\n");
    r.expect("got resumed");
    let (status, output) = r.finish();
    assert!(output.contains("status 0"), "{output:?}");
    assert_eq!(status.code(), Some(0), "{output:?}");
}

#[test]
fn a_background_job_that_reads_the_terminal_stops_and_fg_resumes_it() {
    // The command reads from the terminal while its job is in the
    // background: the terminal stops it (SIGTTIN), procrun stops with it so
    // that bash sees the job stop, and `fg` resumes both.
    let job = "read x; echo \"got $x\"";
    let script = format!(
        "set -m; {} run sh -c '{job}' & wait $!; echo \"stopped with $?\"; fg; echo \"status $?\"",
        support::procrun_quoted()
    );
    let mut r = Test::new()
        .program("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .pty();
    // 149 = 128 + SIGTTIN.
    r.expect("stopped with 149");
    r.expect(job);
    r.send(b"later\n");
    r.expect("got later");
    let (status, output) = r.finish();
    assert!(output.contains("status 0"), "{output:?}");
    assert_eq!(status.code(), Some(0), "{output:?}");
}
