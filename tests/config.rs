//! `procrun.toml` and the policy flags through the real binary: what
//! `check` shows for each way of setting a policy (file, flags, `PROCRUN_*`),
//! their precedence, and the errors as the user sees them.

use std::path::Path;
use std::time::Duration;

/// A temporary app directory.
struct App {
    dir: tempfile::TempDir,
}

impl App {
    fn new(procfile: &str) -> Self {
        let app = App {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        app.file("Procfile", procfile)
    }

    fn file(self, name: &str, contents: &str) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create dirs");
        }
        std::fs::write(path, contents).expect("write file");
        self
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `procrun ARGS` in the app, in an environment free of procrun's
    /// settings; returns (exit code, stdout, stderr).
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
        let mut cmd = assert_cmd::Command::cargo_bin("procrun").expect("binary");
        for (key, _) in std::env::vars_os() {
            let k = key.to_string_lossy();
            if k.starts_with("PROCRUN_") || k == "NO_COLOR" || k == "PORT" || k == "RUST_LOG" {
                cmd.env_remove(&key);
            }
        }
        cmd.current_dir(self.path())
            .args(args)
            .envs(env.iter().copied())
            .timeout(Duration::from_secs(60));
        let out = cmd.output().expect("procrun runs");
        (
            out.status.code().expect("procrun exited normally"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `procrun check ARGS` that succeeds; returns its table, the app root
    /// replaced by `[ROOT]`.
    fn check(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut all = vec!["check"];
        all.extend_from_slice(args);
        let (code, stdout, stderr) = self.run(&all, env);
        assert_eq!(code, 0, "stderr: {stderr}");
        let root = self.path().canonicalize().expect("root");
        stdout.replace(&root.display().to_string(), "[ROOT]")
    }

    /// `procrun ARGS` that fails with exit 2 and prints nothing on stdout;
    /// returns stderr.
    fn fails(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let (code, stdout, stderr) = self.run(args, env);
        assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
        assert_eq!(stdout, "");
        stderr
    }
}

const PROCFILE: &str = "web: serve $PORT\nworker: work\nclock: tick\n";

/// The POLICY column of `check`'s table, one `type: policy` per line.
fn policies(table: &str) -> String {
    let mut lines = table.lines().skip(1);
    let header = lines.next().expect("header");
    let start = header.find("POLICY").expect("POLICY column");
    let end = header.find("COMMAND").expect("COMMAND column");
    lines
        .take_while(|l| l.starts_with("  "))
        .map(|l| {
            let name = l.split_whitespace().next().expect("name");
            format!("{name}: {}", l[start..end].trim())
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn check_shows_the_policies_of_procrun_toml() {
    let app = App::new(PROCFILE).file(
        "procrun.toml",
        r#"
[defaults]
stop_timeout = 8

[process.web]
restart = "on-failure"
can_die = true
stop_signal = "INT"
stop_timeout = 10

[process.worker]
restart = "always"
backoff = { initial = 0.5, max = 60 }
max_restarts = "unlimited"
port = false
"#,
    );
    insta::assert_snapshot!(app.check(&[], &[]), @r"
    Procfile is valid: 3 process types, 3 instances to start
      TYPE    COUNT  PORT  POLICY                                                                            COMMAND
      web         1  5000  restart=on-failure, can-die, stop=INT/10s                                         serve $PORT
      worker      1  -     restart=always, backoff=0.5s..60s, max-restarts=unlimited, stop=TERM/8s, no-port  work
      clock       1  5200  stop=TERM/8s                                                                      tick
    base port: 5000 (default)
    app root:  [ROOT]
    env files: none
    config:    procrun.toml
    ");
}

#[test]
fn without_a_config_every_policy_is_the_default() {
    let app = App::new(PROCFILE);
    let table = app.check(&[], &[]);
    assert_eq!(policies(&table), "web: -\nworker: -\nclock: -");
    assert!(table.ends_with("config:    none\n"), "{table}");
}

/// Arguments, environment, and the POLICY column they give.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

#[test]
fn each_flag_and_its_variable() {
    let app = App::new(PROCFILE);
    let cases: &[Case] = &[
        (
            &["--can-die", "web,clock"],
            &[],
            "web: can-die\nworker: -\nclock: can-die",
        ),
        (
            &[],
            &[("PROCRUN_CAN_DIE", "worker")],
            "web: -\nworker: can-die\nclock: -",
        ),
        (
            &["--any-can-die"],
            &[],
            "web: can-die\nworker: can-die\nclock: can-die",
        ),
        (
            &[],
            &[("PROCRUN_ANY_CAN_DIE", "true")],
            "web: can-die\nworker: can-die\nclock: can-die",
        ),
        (
            &["--auto-restart", "worker"],
            &[],
            "web: -\nworker: restart=always\nclock: -",
        ),
        (
            &[],
            &[("PROCRUN_AUTO_RESTART", "all")],
            "web: restart=always\nworker: restart=always\nclock: restart=always",
        ),
        (
            &["--stop-signal", "web=INT", "--stop-signal", "clock=quit"],
            &[],
            "web: stop=INT/5s\nworker: -\nclock: stop=QUIT/5s",
        ),
        (
            &[],
            &[("PROCRUN_STOP_SIGNAL", "all=HUP,web=2")],
            "web: stop=INT/5s\nworker: stop=HUP/5s\nclock: stop=HUP/5s",
        ),
        (
            &["-t", "2.5"],
            &[],
            "web: stop=TERM/2.5s\nworker: stop=TERM/2.5s\nclock: stop=TERM/2.5s",
        ),
        (
            &[],
            &[("PROCRUN_TIMEOUT", "7")],
            "web: stop=TERM/7s\nworker: stop=TERM/7s\nclock: stop=TERM/7s",
        ),
    ];
    for (args, env, want) in cases {
        assert_eq!(policies(&app.check(args, env)), *want, "{args:?} {env:?}");
    }
}

#[test]
fn flags_win_over_the_file_and_the_file_over_timeout() {
    let app = App::new(PROCFILE).file(
        "procrun.toml",
        "[defaults]\nstop_timeout = 8\n\n[process.web]\nrestart = \"on-failure\"\nstop_signal = \"INT\"\nstop_timeout = 20\n",
    );
    assert_eq!(
        policies(&app.check(
            &[
                "-t",
                "3",
                "--auto-restart",
                "web",
                "--stop-signal",
                "web=QUIT"
            ],
            &[]
        )),
        "web: restart=always, stop=QUIT/20s\nworker: stop=TERM/3s\nclock: stop=TERM/3s"
    );
    // A flag on the command line wins over its variable.
    assert_eq!(
        policies(&app.check(&["-t", "3"], &[("PROCRUN_TIMEOUT", "4")])),
        "web: restart=on-failure, stop=INT/20s\nworker: stop=TERM/3s\nclock: stop=TERM/3s"
    );
}

#[test]
fn the_config_file_can_be_named_or_turned_off() {
    let app = App::new(PROCFILE)
        .file("procrun.toml", "[process.web]\ncan_die = true\n")
        .file("conf/ci.toml", "[process.worker]\ncan_die = true\n");
    let table = app.check(&["--config", "conf/ci.toml"], &[]);
    assert_eq!(policies(&table), "web: -\nworker: can-die\nclock: -");
    assert!(
        table.ends_with("config:    conf/ci.toml (from --config)\n"),
        "{table}"
    );
    let table = app.check(&[], &[("PROCRUN_CONFIG", "conf/ci.toml")]);
    assert_eq!(policies(&table), "web: -\nworker: can-die\nclock: -");
    assert!(
        table.ends_with("config:    conf/ci.toml (from PROCRUN_CONFIG)\n"),
        "{table}"
    );
    // An empty name reads no config file at all.
    let table = app.check(&["--config", ""], &[]);
    assert_eq!(policies(&table), "web: -\nworker: -\nclock: -");
    assert!(
        table.ends_with("config:    none (from --config)\n"),
        "{table}"
    );
}

#[test]
fn the_default_file_is_in_the_app_root() {
    let app = App::new("")
        .file("app/Procfile", PROCFILE)
        .file("app/procrun.toml", "[process.clock]\nport = false\n");
    let table = app.check(&["-d", "app"], &[]);
    assert_eq!(policies(&table), "web: -\nworker: -\nclock: no-port");
    assert!(table.contains("  clock       1  -     no-port"), "{table}");
    assert!(table.ends_with("config:    app/procrun.toml\n"), "{table}");
}

#[test]
fn a_missing_named_config_is_an_error() {
    let app = App::new(PROCFILE);
    insta::assert_snapshot!(app.fails(&["check", "--config", "nope.toml"], &[]), @r"
    error: cannot read config file `nope.toml`: No such file or directory
     --> nope.toml
     = help: --config/PROCRUN_CONFIG names a file that must exist; without it procrun reads `procrun.toml` in the app root when there is one
    ");
}

#[test]
fn every_input_is_reported_together() {
    let app = App::new("web: serve\nworker: work\n")
        .file(".env", "OK=1\nNOT VALID\n")
        .file(
            "procrun.toml",
            "[process.web]\nrestart = \"sometimes\"\nready = \"tcp:5000\"\n\n[process.wrker]\ncan_die = true\n",
        );
    insta::assert_snapshot!(app.fails(
        &[
            "check",
            "-m",
            "web=x",
            "--can-die",
            "clok",
            "--stop-signal",
            "web=STOP"
        ],
        &[]
    ));
    // Without the formation error, the names are checked against the
    // Procfile too.
    insta::assert_snapshot!(
        "every_input_names_checked",
        app.fails(&["check", "--can-die", "clok"], &[])
    );
}

#[test]
fn warnings_do_not_fail_the_check() {
    let app = App::new(PROCFILE).file(
        "procrun.toml",
        "[process.web]\nstop_signal = \"KILL\"\nmin_uptime = 3\n",
    );
    let (code, stdout, stderr) = app.run(&["check"], &[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("stop=KILL/5s"), "{stdout}");
    insta::assert_snapshot!(stderr);
}

#[test]
fn start_and_export_load_the_same_config() {
    let app = App::new(PROCFILE).file("procrun.toml", "[process.web]\nrestart = \"often\"\n");
    let start = app.fails(&["start"], &[]);
    assert!(
        start.contains("error: unknown restart value \"often\"\n --> procrun.toml:2:11"),
        "{start}"
    );
    let export = app.fails(&["export", "systemd", "out"], &[]);
    assert_eq!(export, start);
    assert!(!app.path().join("out").exists());
    // Both accept the policy flags.
    let app = App::new(PROCFILE);
    let stderr = app.fails(&["start", "--can-die", "db"], &[]);
    assert!(
        stderr.contains("unknown process type `db` in --can-die"),
        "{stderr}"
    );
    let (code, _, stderr) = app.run(
        &[
            "export",
            "systemd",
            "out",
            "--any-can-die",
            "--stop-signal",
            "web=INT",
        ],
        &[],
    );
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn a_type_without_port_gets_no_port() {
    let app = App::new(
        "web: echo \"web port=${PORT-unset}\"\nworker: echo \"worker port=${PORT-unset}\"\n",
    )
    .file("procrun.toml", "[process.web]\nport = false\n");
    let (code, stdout, stderr) = app.run(&["run", "web"], &[]);
    assert_eq!((code, stdout.as_str()), (0, "web port=unset\n"), "{stderr}");
    let (code, stdout, stderr) = app.run(&["run", "worker"], &[]);
    assert_eq!(
        (code, stdout.as_str()),
        (0, "worker port=5100\n"),
        "{stderr}"
    );
}

#[test]
fn run_of_a_plain_command_ignores_the_config() {
    // procrun.toml only matters to Procfile entries.
    let app = App::new(PROCFILE).file("procrun.toml", "[process.nope]\n");
    let (code, stdout, stderr) = app.run(&["run", "echo", "hi"], &[]);
    assert_eq!((code, stdout.as_str()), (0, "hi\n"), "{stderr}");
    let stderr = app.fails(&["run", "web"], &[]);
    assert!(
        stderr.contains("`[process.nope]` names no process type"),
        "{stderr}"
    );
}

#[test]
fn durations_take_units_on_the_command_line_and_in_the_file() {
    let app = App::new(PROCFILE).file(
        "procrun.toml",
        "[process.web]\nstop_timeout = \"1.5s\"\n\n[process.worker]\nrestart = \"always\"\nbackoff = { initial = \"500ms\", max = \"2m\" }\nmin_uptime = \"1m\"\n",
    );
    assert_eq!(
        policies(&app.check(&["-t", "2m"], &[])),
        "web: stop=TERM/1.5s\nworker: restart=always, backoff=0.5s..120s, min-uptime=60s, stop=TERM/120s\nclock: stop=TERM/120s"
    );
    for t in ["500ms", "0.5s", "0.5"] {
        assert!(
            policies(&app.check(&["-t", t], &[])).contains("clock: stop=TERM/0.5s"),
            "-t {t}"
        );
        assert!(
            policies(&app.check(&[], &[("PROCRUN_TIMEOUT", t)])).contains("clock: stop=TERM/0.5s"),
            "PROCRUN_TIMEOUT={t}"
        );
    }
    let err = app.fails(&["check", "-t", "2min"], &[]);
    assert!(err.contains("`2min` is not a duration"), "{err}");
    let err = app.fails(&["start", "-t", "25h"], &[]);
    assert!(err.contains("out of range"), "{err}");

    let bad = App::new(PROCFILE).file("procrun.toml", "[defaults]\nstop_timeout = \"2 minutes\"\n");
    let err = bad.fails(&["check"], &[]);
    assert!(
        err.contains("`stop_timeout` is not a duration: the string \"2 minutes\"")
            && err.contains("procrun.toml:2:16"),
        "{err}"
    );
    let long = App::new(PROCFILE).file("procrun.toml", "[defaults]\nmin_uptime = \"25h\"\n");
    let err = long.fails(&["check"], &[]);
    assert!(err.contains("`min_uptime` is too long"), "{err}");
}
