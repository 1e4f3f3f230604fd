//! `procrun start --tty`: instances on a terminal of their own (what they
//! see, their output as lines, stopping them, leaving nothing behind), and
//! `procrun connect` / `procrun send` reaching them through the control
//! socket, `connect` itself on a real pseudo-terminal. Every wait is
//! bounded.

mod support;

use std::time::Duration;

use nix::sys::signal::Signal;
use support::{Cleanup, Running, Runtime, Test, WAIT, alive, gone_within, number_after};

fn start(rt: &Runtime, procfile: &str, extra: &[&str]) -> Running {
    Test::new()
        .procfile(procfile)
        .env("XDG_RUNTIME_DIR", rt.path())
        .env_remove("COLUMNS")
        .env_remove("LINES")
        .start(extra)
}

/// A client command run beside `r`, to completion.
fn client(r: &Running, rt: &Runtime, args: &[&str]) -> support::Output {
    Test::in_dir(r.path())
        .env("XDG_RUNTIME_DIR", rt.path())
        .args(args)
        .run()
}

/// `procrun connect NAME` on a pseudo-terminal of its own.
fn connect(r: &Running, rt: &Runtime, name: &str) -> support::pty::PtyRun {
    Test::in_dir(r.path())
        .env("XDG_RUNTIME_DIR", rt.path())
        .env("COLUMNS", "120")
        .env("LINES", "40")
        .args(["connect", name])
        .pty()
}

/// An instance that answers each line it reads.
const ECHO: &str = "web: echo ready; while read line; do echo \"got: $line\"; done\n";

#[test]
fn a_tty_instance_sees_a_terminal_and_a_pipe_instance_does_not() {
    let rt = Runtime::new();
    let mut r = start(
        &rt,
        "web: [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo \"tty $(tty) TERM=$TERM\"; stty size; echo \"term $TERM\" >&2; exec sleep 30\n\
         worker: [ -t 0 ] || [ -t 1 ] || echo \"pipes\"; exec sleep 30\n",
        &["--tty=web"],
    );
    let line = r.wait_for("web.1    | tty /dev/");
    assert!(line.contains("TERM="), "{line}");
    r.wait_for("web.1    | 24 80");
    r.wait_for("web.1    | term ");
    r.wait_for("worker.1 | pipes");
    let out = client(&r, &rt, &["ps", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&out.stdout).expect("ps --json");
    assert_eq!(list[0]["tty"], true, "{list}");
    assert_eq!(list[1]["tty"], false, "{list}");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    r.assert_no_leftovers();
}

#[test]
fn term_is_inherited_else_xterm_256color_and_the_size_comes_from_columns_and_lines() {
    let procfile = "web: echo \"TERM=$TERM size=$(stty size)\"; exec sleep 30\n";
    let rt = Runtime::new();
    let mut r = Test::new()
        .procfile(procfile)
        .env("XDG_RUNTIME_DIR", rt.path())
        .env_remove("TERM")
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .start(&["--tty"]);
    r.wait_for("web.1  | TERM=xterm-256color size=30 100");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());

    let mut r = Test::new()
        .procfile(procfile)
        .env("TERM", "vt100")
        .env("PROCRUN_TTY", "1")
        .start(&[]);
    r.wait_for("web.1  | TERM=vt100 size=24 80");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}

#[test]
fn tty_per_type_in_procrun_toml_and_check_shows_it() {
    let out = Test::new()
        .procfile("web: a\nworker: b\n")
        .file("procrun.toml", "[process.web]\ntty = true\n")
        .args(["check"])
        .code(0)
        .run();
    let web = out
        .lines
        .iter()
        .find(|l| l.contains(" web "))
        .expect("web row");
    assert!(web.contains(" tty "), "{}", out.stdout);
    let worker = out
        .lines
        .iter()
        .find(|l| l.contains(" worker "))
        .expect("worker row");
    assert!(!worker.contains("tty"), "{}", out.stdout);

    let mut r = Test::new()
        .procfile("web: [ -t 1 ] && echo on-a-tty; exec sleep 30\n")
        .file("procrun.toml", "[process.web]\ntty = true\n")
        .start(&[]);
    r.wait_for("web.1  | on-a-tty");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}

#[test]
fn colours_are_kept_with_color_always_and_stripped_otherwise() {
    let procfile = "web: printf '\\033[31mred\\033[0m \\033]0;title\\007plain\\n'; printf '10%%\\r100%%\\n'; exit 3\n";
    let coloured = Test::new()
        .procfile(procfile)
        .args(["start", "--no-timestamp", "--tty", "--color=always"])
        .code(3)
        .run();
    assert!(
        coloured.stdout.contains("\x1b[31mred\x1b[0m plain\n"),
        "{:?}",
        coloured.stdout
    );
    assert!(!coloured.stdout.contains("title"), "{:?}", coloured.stdout);
    assert!(
        coloured.stdout.contains("\x1b[0m 100%\n"),
        "{:?}",
        coloured.stdout
    );

    let plain = Test::new()
        .procfile(procfile)
        .args(["start", "--no-timestamp", "--tty"])
        .code(3)
        .run();
    assert!(
        plain.stdout.contains("web.1  | red plain\n"),
        "{:?}",
        plain.stdout
    );
    assert!(
        plain.stdout.contains("web.1  | 100%\n"),
        "{:?}",
        plain.stdout
    );
    assert!(!plain.stdout.contains('\x1b'), "{:?}", plain.stdout);
    assert!(!plain.stdout.contains('\r'), "{:?}", plain.stdout);
}

#[test]
fn json_records_of_a_tty_instance_have_stream_pty() {
    let out = Test::new()
        .procfile("web: echo out; echo err >&2; printf 'prompt> '; sleep 1; exit 0\n")
        .args(["start", "--tty", "--log-format", "json"])
        .code(0)
        .run();
    let records: Vec<serde_json::Value> = out
        .lines
        .iter()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|r: &serde_json::Value| r["name"] == "web.1" && r["msg"].is_string())
        .filter(|r| r["stream"] != "system")
        .collect();
    let msgs: Vec<&str> = records.iter().filter_map(|r| r["msg"].as_str()).collect();
    assert_eq!(msgs, ["out", "err", "prompt> "], "{}", out.stdout);
    assert!(records.iter().all(|r| r["stream"] == "pty"), "{records:?}");
    assert_eq!(records[2]["partial"], true, "a prompt has no newline");
}

#[test]
fn line_buffered_python_output_arrives_while_it_runs() {
    let mut r = Test::new()
        .procfile("web: python3 app.py\n")
        .file(
            "app.py",
            "import os, time\nprint('first', os.environ.get('PYTHONUNBUFFERED'))\nwhile not os.path.exists('go'):\n    time.sleep(0.01)\nprint('second')\n",
        )
        .env_remove("PYTHONUNBUFFERED")
        .start(&["--tty"]);
    // Printed without a flush: on a pipe Python would hold it back until
    // it exits; on a terminal it writes each line.
    r.wait_for("web.1  | first None");
    std::fs::write(r.join("go"), "").expect("go");
    r.wait_for("web.1  | second");
    assert_eq!(r.wait_exit(), Some(0), "{}", r.transcript());
}

#[test]
fn a_tty_instance_that_ignores_sigterm_is_killed_and_leaves_nothing() {
    let mut r = Test::new()
        .procfile(
            "web: trap '' TERM; sleep 300 & echo \"grandchild $!\"; wait\nother: exec sleep 300\n",
        )
        .start(&["--tty=web", "-t", "0.5"]);
    let mut cleanup = Cleanup::default();
    let shell = cleanup.add(r.pid_of("web.1"));
    let line = r.wait_for("grandchild ");
    let grandchild = cleanup.add(number_after(&line, "grandchild "));
    assert!(alive(grandchild));
    // A session leader of its own, whose group is its pid.
    let sid = nix::unistd::getsid(Some(nix::unistd::Pid::from_raw(shell))).expect("getsid");
    assert_eq!(sid.as_raw(), shell, "the tty instance leads its session");
    r.signal(Signal::SIGTERM);
    r.wait_for("web.1 killed by SIGKILL");
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    assert!(gone_within(shell, Duration::from_secs(1)));
    assert!(
        gone_within(grandchild, Duration::from_secs(1)),
        "grandchild survived"
    );
    r.assert_no_leftovers();
}

#[test]
fn a_sigkilled_procrun_takes_its_tty_instances_with_it() {
    let mut r = Test::new()
        .procfile("web: trap '' TERM HUP INT; sleep 300 & echo \"grandchild $!\"; wait\n")
        .start(&["--tty", "-m", "web=2"]);
    let mut cleanup = Cleanup::default();
    let mut watched = Vec::new();
    for name in ["web.1", "web.2"] {
        let shell = cleanup.add(r.pid_of(name));
        let line = r.wait_for_line(|l| l.starts_with(&format!("{name}  | grandchild ")), WAIT);
        watched.extend([shell, cleanup.add(number_after(&line, "grandchild "))]);
    }
    r.signal(Signal::SIGKILL);
    assert_eq!(r.wait_exit(), None);
    for pid in watched {
        assert!(
            gone_within(pid, WAIT),
            "{} outlived procrun",
            support::running::describe(pid)
        );
    }
    r.assert_no_leftovers();
}

#[test]
fn connect_types_into_the_instance_shows_its_answer_and_detaches_with_ctrl_bracket() {
    let rt = Runtime::new();
    let mut r = start(&rt, ECHO, &["--tty"]);
    r.wait_for("web.1  | ready");
    let mut c = connect(&r, &rt, "web.1");
    c.expect("connected to web.1");
    c.expect("detach with Ctrl-]");
    c.expect("ready"); // the recent output, replayed
    c.send(b"hello\r");
    c.expect("got: hello");
    // start's own output shows the instance's lines as usual.
    r.wait_for("web.1  | got: hello");
    r.wait_for("connect to web.1 requested from pid");
    c.send(b"\x1d");
    let (status, output) = c.finish();
    assert_eq!(status.code(), Some(0), "{output:?}");
    assert!(
        output.contains("detached from web.1; it keeps running"),
        "{output:?}"
    );
    // It runs on, and takes lines from `send`.
    let out = client(&r, &rt, &["send", "web.1", "still", "here"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    r.wait_for("web.1  | got: still here");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    r.assert_no_leftovers();
}

#[test]
fn ctrl_c_through_connect_reaches_the_program_not_procrun() {
    let rt = Runtime::new();
    let mut r = start(
        &rt,
        "web: trap 'echo caught INT' INT; echo ready; while :; do sleep 0.05; done\n",
        &["--tty"],
    );
    r.wait_for("web.1  | ready");
    let mut c = connect(&r, &rt, "web");
    c.expect("connected to web.1");
    c.send(b"\x03");
    c.expect("caught INT");
    // The terminal echoes the key as ^C.
    r.wait_for("caught INT");
    c.send(b"\x1d");
    assert_eq!(c.finish().0.code(), Some(0));
    assert!(r.status().is_none(), "procrun stopped: {}", r.transcript());
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}

#[test]
fn the_window_size_follows_the_connected_client_and_comes_back_after() {
    let rt = Runtime::new();
    let mut r = Test::new()
        .procfile(
            "web: trap 'echo \"size $(stty size)\"' WINCH; echo \"size $(stty size)\"; while :; do sleep 0.05; done\n",
        )
        .env("XDG_RUNTIME_DIR", rt.path())
        .env("COLUMNS", "100")
        .env("LINES", "30")
        .start(&["--tty"]);
    r.wait_for("web.1  | size 30 100");
    let mut c = connect(&r, &rt, "web.1");
    c.expect("size 40 120");
    let ws = nix::pty::Winsize {
        ws_row: 50,
        ws_col: 132,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
    let set = unsafe { libc::ioctl(c.master_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(set, 0, "resizing the client's terminal");
    c.expect("size 50 132");
    c.send(b"\x1d");
    assert_eq!(c.finish().0.code(), Some(0));
    r.wait_for("web.1  | size 30 100");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}

#[test]
fn two_clients_both_see_the_output_and_both_can_type() {
    let rt = Runtime::new();
    let mut r = start(&rt, ECHO, &["--tty"]);
    r.wait_for("web.1  | ready");
    let mut a = connect(&r, &rt, "web.1");
    a.expect("connected to web.1");
    let mut b = connect(&r, &rt, "web.1");
    b.expect("connected to web.1");
    a.send(b"one\r");
    a.expect("got: one");
    b.expect("got: one");
    b.send(b"two\r");
    a.expect("got: two");
    b.expect("got: two");
    for c in [a, b] {
        let mut c = c;
        c.send(b"\x1d");
        assert_eq!(c.finish().0.code(), Some(0));
    }
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}

#[test]
fn connect_ends_when_the_instance_exits_and_restores_the_terminal() {
    let rt = Runtime::new();
    let mut r = start(
        &rt,
        "web: echo ready; read line; echo \"bye $line\"\nother: exec sleep 300\n",
        &["--tty=web", "--can-die=web"],
    );
    r.wait_for("web.1   | ready");
    // The terminal's settings before and after connect, compared by a shell
    // on the same pty.
    let script = format!(
        "before=$(stty -g); {} connect web.1; code=$?; [ \"$(stty -g)\" = \"$before\" ] && echo \"restored $code\"",
        support::procrun_quoted()
    );
    let mut c = Test::in_dir(r.path())
        .env("XDG_RUNTIME_DIR", rt.path())
        .program("sh")
        .args(["-c", &script])
        .pty();
    c.expect("connected to web.1");
    c.send(b"now\r");
    c.expect("bye now");
    c.expect("web.1 has exited");
    c.expect("restored 0");
    let (status, _) = c.finish();
    assert_eq!(status.code(), Some(0));
    r.wait_for("web.1   | bye now");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}

#[test]
fn connect_when_start_stops_exits_with_a_message_and_restores_the_terminal() {
    let rt = Runtime::new();
    let mut r = start(&rt, ECHO, &["--tty"]);
    r.wait_for("web.1  | ready");
    let script = format!(
        "before=$(stty -g); {} connect web.1; code=$?; [ \"$(stty -g)\" = \"$before\" ] && echo \"restored $code\"",
        support::procrun_quoted()
    );
    let c = Test::in_dir(r.path())
        .env("XDG_RUNTIME_DIR", rt.path())
        .program("sh")
        .args(["-c", &script])
        .pty();
    c.expect("connected to web.1");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    c.expect("restored ");
    let (_, output) = c.finish();
    assert!(
        output.contains("web.1 has exited") || output.contains("the app has stopped"),
        "{output:?}"
    );
}

#[test]
fn connect_and_send_refuse_what_has_no_terminal() {
    let rt = Runtime::new();
    let mut r = start(
        &rt,
        "web: echo ready; exec sleep 30\nworker: exec sleep 30\n",
        &["--tty=web", "-m", "web=2,worker=1"],
    );
    r.wait_for("web.2    | ready");
    let out = client(&r, &rt, &["send", "worker.1", "x"]);
    assert_eq!(out.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("worker.1 does not run on a terminal"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--tty"), "{}", out.stderr);
    let out = client(&r, &rt, &["send", "web", "x"]);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(
        out.stderr.contains("`web` has 2 instances"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("web.1, web.2"), "{}", out.stderr);
    // stdin is not a terminal here.
    let out = client(&r, &rt, &["connect", "web.1"]);
    assert_eq!(out.code(), Some(2), "{}", out.stderr);
    assert!(out.stderr.contains("needs a terminal"), "{}", out.stderr);
    let c = connect(&r, &rt, "worker.1");
    c.expect("does not run on a terminal");
    assert_eq!(c.finish().0.code(), Some(1));
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}

#[test]
fn a_log_ready_check_reads_a_tty_instances_lines() {
    let mut r = Test::new()
        .procfile(
            "web: printf '\\033[32mlistening\\033[0m on %s\\r\\n' \"$PORT\"; exec sleep 30\nworker: echo after-web; exec sleep 30\n",
        )
        .file(
            "procrun.toml",
            "[process.web]\ntty = true\nready = { log = \"listening on\" }\n\n[process.worker]\nafter = [\"web\"]\n",
        )
        .start(&["--color=always"]);
    r.wait_for("web.1 is ready");
    r.wait_for("after-web");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}

#[test]
fn the_window_size_follows_procruns_own_terminal() {
    let r = Test::new()
        .procfile(
            "web: trap 'echo \"size $(stty size)\"' WINCH; echo \"size $(stty size)\"; while :; do sleep 0.05; done\n",
        )
        .env_remove("COLUMNS")
        .env_remove("LINES")
        .args(["start", "--tty", "--no-timestamp", "-p", &support::free_port().to_string()])
        .pty();
    // A new pty has no size yet: the default.
    r.expect("size 24 80");
    let ws = nix::pty::Winsize {
        ws_row: 33,
        ws_col: 99,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer. The
    // kernel then sends SIGWINCH to procrun, the terminal's foreground.
    let set = unsafe { libc::ioctl(r.master_fd(), libc::TIOCSWINSZ, &ws) };
    assert_eq!(set, 0, "resizing procrun's terminal");
    r.expect("size 33 99");
    r.signal(Signal::SIGTERM);
    let (status, output) = r.finish();
    assert_eq!(status.code(), Some(143), "{output:?}");
}

#[test]
fn a_restart_gives_a_new_terminal_and_ends_the_connection_to_the_old_one() {
    let rt = Runtime::new();
    let mut r = start(&rt, ECHO, &["--tty"]);
    r.wait_for("web.1  | ready");
    let c = connect(&r, &rt, "web.1");
    c.expect("connected to web.1");
    let out = client(&r, &rt, &["restart", "web.1"]);
    assert_eq!(out.code(), Some(0), "{}", out.stderr);
    c.expect("web.1 has exited");
    assert_eq!(c.finish().0.code(), Some(0));
    let mut c = connect(&r, &rt, "web.1");
    c.expect("connected to web.1");
    c.send(b"again\r");
    c.expect("got: again");
    c.send(b"\x1d");
    assert_eq!(c.finish().0.code(), Some(0));
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}

#[test]
fn a_pdb_prompt_can_be_reached_with_connect() {
    let rt = Runtime::new();
    let mut r = Test::new()
        .procfile("web: python3 app.py\nother: exec sleep 300\n")
        .file(
            "app.py",
            "answer = 42\nbreakpoint()\nprint('after', answer)\nimport time\ntime.sleep(300)\n",
        )
        .env("XDG_RUNTIME_DIR", rt.path())
        .env_remove("PYTHONBREAKPOINT")
        .start(&["--tty=web"]);
    // The prompt has no newline: start shows it once the program waits.
    r.wait_for("web.1   | (Pdb) ");
    let mut c = connect(&r, &rt, "web.1");
    c.expect("(Pdb)");
    c.send(b"p answer * 2\r");
    c.expect("84");
    c.send(b"c\r");
    c.expect("after 42");
    c.send(b"\x1d");
    assert_eq!(c.finish().0.code(), Some(0));
    // start showed the session as lines, prompt and all.
    r.wait_for("web.1   | (Pdb) p answer * 2");
    r.wait_for("web.1   | 84");
    r.wait_for("web.1   | after 42");
    r.signal(Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
}
