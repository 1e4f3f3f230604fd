//! `procrun start`: the small things that make daily use pleasant —
//! Python output without delay, what `-v` tells.

mod support;

use support::Test;

#[test]
fn python_gets_unbuffered_output_unless_told_otherwise() {
    let out = Test::new()
        .procfile("web: echo \"[${PYTHONUNBUFFERED-unset}]\"\n")
        .args(["start", "--no-timestamp"])
        .code(0)
        .run();
    assert!(out.stdout.contains("web.1  | [1]"), "{}", out.stdout);

    // Set to empty in an env file (or procrun's environment): Python's own
    // buffering is kept.
    let out = Test::new()
        .procfile("web: echo \"[${PYTHONUNBUFFERED-unset}]\"\n")
        .dotenv("PYTHONUNBUFFERED=\n")
        .args(["start", "--no-timestamp"])
        .code(0)
        .run();
    assert!(out.stdout.contains("web.1  | []"), "{}", out.stdout);
    let out = Test::new()
        .procfile("web: echo \"[${PYTHONUNBUFFERED-unset}]\"\n")
        .env("PYTHONUNBUFFERED", "0")
        .args(["start", "--no-timestamp"])
        .code(0)
        .run();
    assert!(out.stdout.contains("web.1  | [0]"), "{}", out.stdout);
}

#[test]
fn verbose_start_shows_spawns_with_secrets_masked() {
    let out = Test::new()
        .procfile("web: echo hi\n")
        .dotenv("API_TOKEN=hunter2\nRAILS_ENV=development\n")
        .args(["-vv", "start", "--no-timestamp"])
        .code(0)
        .run();
    let e = &out.stderr;
    assert!(e.contains("web.1: pid "), "{e}");
    assert!(e.contains("/bin/sh -c \"exec echo hi\""), "{e}");
    assert!(e.contains("API_TOKEN=***"), "{e}");
    assert!(e.contains("RAILS_ENV=\"development\""), "{e}");
    assert!(!e.contains("hunter2"), "{e}");
    assert!(e.contains("app root "), "{e}");

    let out = Test::new()
        .procfile("web: echo hi\n")
        .dotenv("API_TOKEN=hunter2\n")
        .args(["-vvv", "start", "--no-timestamp"])
        .code(0)
        .run();
    assert!(
        out.stderr.contains("API_TOKEN=\"hunter2\""),
        "{}",
        out.stderr
    );

    let out = Test::new()
        .procfile("web: echo hi\n")
        .args(["start", "--no-timestamp"])
        .code(0)
        .run();
    assert_eq!(out.stderr, "", "quiet without -v");
}

#[test]
fn an_entry_starting_with_assignments_is_execd_and_shows_its_own_port() {
    // `FOO=bar PORT=3999 sh -c …` runs as `FOO=bar PORT=3999 exec sh -c …`:
    // the pid procrun shows is the program's, and its graceful exit on
    // SIGTERM is reported as such, not as the shell killed by SIGTERM.
    let mut r = Test::new()
        .procfile(
            "web: FOO=bar PORT=3999 sh -c 'trap \"exit 0\" TERM; echo \"pid $$ $FOO $PORT\"; while :; do sleep 0.05; done'\n",
        )
        .start(&[]);
    let line = r.wait_for("web.1 started with pid ");
    assert!(line.ends_with("(PORT=3999)"), "{line}");
    let pid = r.pid_of("web.1");
    r.wait_for(&format!("pid {pid} bar 3999"));
    r.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    assert!(
        r.transcript().contains("web.1 exited with code 0"),
        "{}",
        r.transcript()
    );
    assert!(
        r.stderr().contains("`web` sets PORT=3999 in its command"),
        "{}",
        r.stderr()
    );
}

#[cfg(target_os = "linux")]
#[test]
fn the_watchdog_is_named_in_ps() {
    let mut r = Test::new()
        .procfile("web: echo up; exec sleep 300\n")
        .start(&[]);
    r.wait_for("up");
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", r.pid())).expect("children");
    let names: Vec<String> = children
        .split_whitespace()
        .map(|pid| {
            let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&raw)
                .trim_end_matches('\0')
                .to_owned()
        })
        .collect();
    assert!(
        names.iter().any(|n| n == "procrun-watch"),
        "procrun's children: {names:?}"
    );
    r.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143));
}

#[test]
fn port_and_ps_in_an_env_value_are_each_instances_own() {
    // The README's example, literally.
    let port = support::free_port();
    let mut r = Test::new()
        .procfile("web: echo \"$PS url=$URL pw=$PASSWORD\"; exec sleep 30\n")
        .dotenv("URL=http://${HOST:-localhost}:$PORT/path\nPASSWORD=abc$def\n")
        .env_remove("HOST")
        .args([
            "start",
            "-p",
            &port.to_string(),
            "--no-timestamp",
            "-m",
            "web=2",
        ])
        .spawn();
    r.wait_for(&format!(
        "web.1  | web.1 url=http://localhost:{port}/path pw=abc$def"
    ));
    r.wait_for(&format!(
        "web.2  | web.2 url=http://localhost:{}/path pw=abc$def",
        port + 1
    ));
    r.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
    r.assert_no_leftovers();

    // `run ENTRY` gets the first instance's; `run PROGRAM` procrun's own
    // environment's (no PORT from procrun: the reference stays as written).
    Test::new()
        .procfile("web: echo \"url=$URL\"\n")
        .dotenv("URL=http://${HOST:-localhost}:$PORT/path\n")
        .env_remove("HOST")
        .args(["run", "-p", "6000", "web"])
        .stdout("url=http://localhost:6000/path\n")
        .code(0)
        .run();
    Test::new()
        .procfile("web: true\n")
        .dotenv("URL=http://${HOST:-localhost}:$PORT/path\n")
        .env_remove("HOST")
        .args(["run", "printenv", "URL"])
        .stdout("http://localhost:$PORT/path\n")
        .code(0)
        .run();
}
