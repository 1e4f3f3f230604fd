//! `.foreman`, foreman's defaults file, through the real binary: what it
//! sets, where it is read from, what wins over it, and its errors.

mod support;

use support::{Project, Test};

/// `procrun ARGS` in `dir` of the project; (code, stdout, stderr), the
/// project's path replaced by `[ROOT]`.
fn run(p: &Project, dir: &str, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut t = p.test().current_dir(dir).args(args);
    for (k, v) in env {
        t = t.env(k, v);
    }
    let out = t.run();
    let root = p.path().canonicalize().expect("root").display().to_string();
    (
        out.code().expect("exited"),
        out.stdout.replace(&root, "[ROOT]"),
        out.stderr.replace(&root, "[ROOT]"),
    )
}

/// The lines of `check`'s summary after its table.
fn settings(stdout: &str) -> String {
    stdout
        .lines()
        .skip_while(|l| !l.starts_with("base port:"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn chatwoot() -> Project {
    Project::new()
        .file("Procfile", "web: bundle exec rails s -p $PORT\n")
        .file(
            "Procfile.dev",
            "backend: bin/rails s -p $PORT\nworker: bundle exec sidekiq\nvite: bin/vite dev\n",
        )
        .file(".foreman", "procfile: Procfile.dev\nport: 3000\n")
}

#[test]
fn a_projects_foreman_file_picks_the_procfile_and_the_port() {
    let (code, stdout, stderr) = run(&chatwoot(), ".", &["check"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, "");
    insta::assert_snapshot!(stdout, @r"
    Procfile.dev is valid: 3 process types, 3 instances to start
      TYPE     COUNT  PORT  POLICY  COMMAND
      backend      1  3000  -       bin/rails s -p $PORT
      worker       1  3100  -       bundle exec sidekiq
      vite         1  3200  -       bin/vite dev
    base port: 3000 (from port in .foreman:2)
    app root:  [ROOT]
    env files: none
    config:    none
    procfile:  Procfile.dev (from procfile in .foreman:1)
    foreman:   .foreman
    ");
}

#[test]
fn flags_variables_and_procrun_toml_win_over_it() {
    let p = chatwoot()
        .file(
            ".foreman",
            "procfile: Procfile.dev\nport: 3000\ntimeout: 7\nformation: backend=2\n",
        )
        .file("procrun.toml", "[process.worker]\nstop_timeout = 9\n");
    let (_, stdout, _) = run(&p, ".", &["check"], &[]);
    assert!(
        stdout.contains("backend      2  3000-3001  stop=TERM/7s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("worker       0  -          stop=TERM/9s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("timeout:   7s (from timeout in .foreman:3)"),
        "{stdout}"
    );

    let (_, stdout, _) = run(
        &p,
        ".",
        &["check", "-p", "4000", "-t", "2", "-m", "all=1"],
        &[],
    );
    let s = settings(&stdout);
    assert!(s.starts_with("base port: 4000 (from --port)"), "{s}");
    assert!(s.contains("formation: all=1 (from --formation)"), "{s}");
    assert!(s.contains("timeout:   2s (from --timeout)"), "{s}");
    let (_, stdout, _) = run(
        &p,
        ".",
        &["check", "--config", ""],
        &[
            ("PROCRUN_PORT", "4100"),
            ("PROCRUN_PROCFILE", "Procfile"),
            ("PROCRUN_FORMATION", "all=1"),
        ],
    );
    let s = settings(&stdout);
    assert!(s.starts_with("base port: 4100 (from PROCRUN_PORT)"), "{s}");
    assert!(stdout.starts_with("Procfile is valid"), "{stdout}");
    assert!(
        s.contains("procfile:  Procfile (from PROCRUN_PROCFILE)"),
        "{s}"
    );
    // [defaults] in procrun.toml is above .foreman's timeout too.
    let p = p.file("procrun.toml", "[defaults]\nstop_timeout = 8\n");
    let (_, stdout, _) = run(&p, ".", &["check"], &[]);
    assert!(
        stdout.contains("backend      2  3000-3001  stop=TERM/8s"),
        "{stdout}"
    );
}

#[test]
fn it_is_read_from_the_app_root_and_its_paths_are_relative_to_it() {
    let p = Project::new()
        .file("app/Procfile.dev", "web: serve\n")
        .file("app/env/dev.env", "A=1\nB=2\n")
        .file(
            "app/.foreman",
            "procfile: Procfile.dev\nenv:\n  - env/dev.env\n",
        );
    let (code, stdout, stderr) = run(&p, ".", &["-d", "app", "check"], &[]);
    assert_eq!(code, 0, "{stderr}");
    let s = settings(&stdout);
    assert!(stdout.starts_with("app/Procfile.dev is valid"), "{stdout}");
    assert!(
        s.contains("env files: app/env/dev.env (2 variables, from env in app/.foreman:2)"),
        "{s}"
    );
    // From inside the app, as foreman reads it.
    let (code, stdout, stderr) = run(&p, "app", &["check"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.starts_with("Procfile.dev is valid"), "{stdout}");
    assert!(
        settings(&stdout).contains("env files: env/dev.env (2 variables"),
        "{stdout}"
    );
    // Not from elsewhere: without -d there is no Procfile here.
    let (code, _, stderr) = run(&p, ".", &["check"], &[]);
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn start_takes_its_colour_timestamp_and_formation() {
    let p = Project::new()
        .file("Procfile", "web: echo hi\nworker: echo ho\n")
        .file(
            ".foreman",
            "color: true\ntimestamp: false\nconcurrency: web=2,worker=0\n",
        );
    let port = support::free_port().to_string();
    // Both instances may finish: the first to end must not stop the other
    // before it has printed.
    let out = p
        .test()
        .args(["start", "-p", &port, "--any-can-die"])
        .code(0)
        .run();
    assert!(
        out.stdout.contains("\x1b[36mweb.2  |\x1b[0m hi"),
        "{:?}",
        out.stdout
    );
    assert!(!out.stdout.contains("worker"), "{}", out.stdout);
    // The command line still wins.
    let out = p
        .test()
        .args([
            "start",
            "-p",
            &port,
            "--no-color",
            "--timestamp",
            "-m",
            "worker=1",
        ])
        .code(0)
        .run();
    assert!(!out.stdout.contains('\x1b'), "{:?}", out.stdout);
    assert!(out.stdout.as_bytes()[2] == b':', "{}", out.stdout);
    assert!(out.stdout.contains("worker.1 | ho"), "{}", out.stdout);
}

#[test]
fn unknown_keys_warn_and_bad_values_are_located_errors() {
    let p = Project::with_procfile("web: a\n")
        .file(".foreman", "port: 3000\ncolour: true\ntemplate: x\n");
    let (code, stdout, stderr) = run(&p, ".", &["check"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("base port: 3000"), "{stdout}");
    assert!(
        stderr.contains("unknown key `colour`") && stderr.contains("did you mean `color`?"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`template` is a foreman option procrun has no counterpart for"),
        "{stderr}"
    );

    let p = Project::with_procfile("web: a\n").file(
        ".foreman",
        "port: http\ntimeout: soon\ncolor: maybe\nformation: web=x\nprocfile: [a, b]\n",
    );
    let (code, stdout, stderr) = run(&p, ".", &["check"], &[]);
    assert_eq!((code, stdout.as_str()), (2, ""), "{stderr}");
    insta::assert_snapshot!("bad_values", stderr);

    let p = Project::with_procfile("web: a\n").file(".foreman", "---\nprocfile:\n  nested: 1\n");
    let out = Test::in_dir(p.path()).args(["start"]).code(2).run();
    assert_eq!(out.stdout, "");
    let (_, _, stderr) = run(&p, ".", &["check"], &[]);
    assert!(
        stderr.contains(".foreman:3:3") && stderr.contains("an indented line"),
        "{stderr}"
    );
}

#[test]
fn other_commands_do_not_read_it() {
    let p = Project::with_procfile("web: a\n").file(".foreman", "port: http\n");
    let out = p.test().args(["completions", "bash"]).code(0).run();
    assert!(out.stdout.contains("procrun"));
}

/// The README's `bin/dev` line: exit 0 after Ctrl-C, like foreman, with
/// any other exit code kept.
const BIN_DEV: &str =
    r#"trap : INT; "$0" start --no-timestamp -p "$1" || { s=$?; [ $s -eq 130 ] || exit $s; }"#;

#[test]
fn the_bin_dev_workaround_exits_zero_after_ctrl_c_under_sh_and_bash() {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    // bash waits for procrun before it acts on the SIGINT it got too, so
    // the short form works there (without keeping the code).
    let bash_short = r#""$0" start --no-timestamp -p "$1" || [ $? -eq 130 ]"#;
    for (shell, script) in [("sh", BIN_DEV), ("bash", BIN_DEV), ("bash", bash_short)] {
        let port = support::free_port().to_string();
        let mut r = Test::new()
            .procfile("web: echo ready; exec sleep 30\n")
            .program(shell)
            .args(["-c", script])
            .arg(support::procrun_path())
            .arg(&port)
            .spawn();
        r.wait_for("web.1  | ready");
        // Ctrl-C: the terminal signals the whole foreground group.
        killpg(Pid::from_raw(r.pid()), Signal::SIGINT).expect("SIGINT");
        assert_eq!(r.wait_exit(), Some(0), "{shell}: {}", r.transcript());
        r.assert_no_leftovers();

        if script != BIN_DEV {
            continue;
        }
        let out = Test::new()
            .procfile("web: exit 3\n")
            .program(shell)
            .args(["-c", BIN_DEV])
            .arg(support::procrun_path())
            .arg(&port)
            .run();
        assert_eq!(out.code(), Some(3), "{shell}: {}", out.stdout);
    }
}
