//! `procrun check` through the real binary: the summary, every diagnostic's
//! exact text (insta snapshots), warnings, exit codes and PROCRUN_* settings.

mod support;

use support::Project;

/// Runs `procrun ARGS` in the project; returns (exit code, stdout, stderr).
fn run(p: &Project, args: &[&str]) -> (i32, String, String) {
    let out = p.procrun().args(args).output().expect("procrun runs");
    (
        out.status.code().expect("procrun exited normally"),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `procrun check ARGS` that must fail with exit 2 and print nothing on
/// stdout; returns stderr.
fn check_fails(p: &Project, args: &[&str]) -> String {
    let mut all = vec!["check"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = run(p, &all);
    assert_eq!(code, 2, "stderr: {stderr}");
    assert_eq!(stdout, "");
    stderr
}

#[test]
fn valid_procfile_prints_the_plan() {
    let p =
        Project::with_procfile("web: python3 -m http.server $PORT\nworker: sleep 1\nclock: date\n")
            .file(".env", "GREETING=hi\n");
    let (code, stdout, stderr) = run(&p, &["check", "-m", "web=2, worker=1"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr, "");
    let stdout = stdout.replace(
        &p.path().canonicalize().expect("path").display().to_string(),
        "[ROOT]",
    );
    insta::assert_snapshot!(stdout, @r"
    Procfile is valid: 3 process types, 3 instances to start
      TYPE    COUNT  PORT       POLICY  COMMAND
      web         2  5000-5001  -       python3 -m http.server $PORT
      worker      1  5100       -       sleep 1
      clock       0  -          -       date
    base port: 5000 (default)
    app root:  [ROOT]
    env files: .env (1 variable)
    config:    none
    formation: web=2, worker=1 (from --formation)
    ");
}

#[test]
fn example_procfile_checks() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = support::procrun()
        .current_dir(root)
        .args(["check", "-f", "Procfile.example", "-e", ".env.example"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.starts_with("Procfile.example is valid: 3 process types"),
        "{stdout}"
    );
}

#[test]
fn malformed_lines_are_all_reported() {
    let p = Project::with_procfile("web python3 app.py\nworker: ok\n: nameless\nw.b: x\nempty:\n");
    insta::assert_snapshot!(check_fails(&p, &[]));
}

#[test]
fn duplicate_names_point_at_both_lines() {
    let p = Project::with_procfile("web: a\nworker: b\nweb: c\n");
    insta::assert_snapshot!(check_fails(&p, &[]));
}

#[test]
fn procfile_without_entries() {
    let p = Project::with_procfile("# nothing here\n\n");
    insta::assert_snapshot!(check_fails(&p, &[]));
}

#[test]
fn missing_procfile() {
    let p = Project::new();
    insta::assert_snapshot!(check_fails(&p, &[]));
}

#[test]
fn procfile_that_is_a_directory() {
    let p = Project::new().file("Procfile/x", "");
    let stderr = check_fails(&p, &[]);
    assert!(
        stderr.contains("cannot read Procfile `Procfile`"),
        "{stderr}"
    );
}

#[test]
fn invalid_utf8_in_procfile() {
    let p = Project::new().file("Procfile", b"web: ok\nworker: caf\xe9\n");
    insta::assert_snapshot!(check_fails(&p, &[]));
}

#[test]
fn malformed_env_file() {
    let p = Project::with_procfile("web: a\n").file(".env", "OK=1\nNOT VALID\nQ='open\nR=2\n");
    insta::assert_snapshot!(check_fails(&p, &[]));
}

#[test]
fn missing_explicit_env_file() {
    let p = Project::with_procfile("web: a\n");
    insta::assert_snapshot!(check_fails(&p, &["-e", "prod.env"]));
}

#[test]
fn absent_default_env_file_is_fine() {
    let p = Project::with_procfile("web: a\n");
    let (code, stdout, _) = run(&p, &["check"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("env files: none"), "{stdout}");
}

#[test]
fn errors_from_procfile_and_env_file_come_together() {
    let p = Project::with_procfile("web a\n").file(".env", "=1\n");
    let stderr = check_fails(&p, &[]);
    assert!(stderr.contains("Procfile:1:5"), "{stderr}");
    assert!(stderr.contains(".env:1:1"), "{stderr}");
    assert!(stderr.contains("aborting due to 2 errors"), "{stderr}");
}

#[test]
fn unknown_formation_name_lists_known_ones() {
    let p = Project::with_procfile("web: a\nworker: b\n");
    insta::assert_snapshot!(check_fails(&p, &["-m", "web=1,wrk=2"]));
}

#[test]
fn bad_formation_syntax() {
    let p = Project::with_procfile("web: a\n");
    insta::assert_snapshot!(check_fails(&p, &["-m", "web=two"]));
}

#[test]
fn formation_selecting_nothing() {
    let p = Project::with_procfile("web: a\n");
    insta::assert_snapshot!(check_fails(&p, &["-m", "all=0"]));
}

#[test]
fn port_out_of_range() {
    let p = Project::with_procfile("web: a\nworker: b\n");
    let (code, _, stderr) = run(&p, &["check", "-p", "70000"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("70000 is not in 1..=65535"), "{stderr}");
    insta::assert_snapshot!(check_fails(&p, &["-p", "65500"]));
}

#[test]
fn bad_port_in_env_file() {
    let p = Project::with_procfile("web: a\n").file(".env", "PORT=http\n");
    let stderr = check_fails(&p, &[]);
    assert!(
        stderr.contains("PORT=\"http\" in `.env` is not a port number"),
        "{stderr}"
    );
    assert!(stderr.contains(".env:1"), "{stderr}");
}

#[test]
fn bad_port_in_environment() {
    let p = Project::with_procfile("web: a\n");
    let out = p
        .procrun()
        .arg("check")
        .env("PORT", "0")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("PORT=\"0\" in the environment"));
}

#[test]
fn warnings_do_not_fail() {
    let p = Project::with_procfile("web:python3 app.py\n").file(".env", "PORT=3000\nA=1\nA=2\n");
    let (code, stdout, stderr) = run(&p, &["check"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("base port: 3000 (from PORT in .env)"),
        "{stdout}"
    );
    insta::assert_snapshot!(stderr);
}

#[test]
fn unknown_option_value_is_a_usage_error() {
    let p = Project::with_procfile("web: a\n");
    let (code, _, stderr) = run(&p, &["check", "--color", "sometimes"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("invalid value 'sometimes'"), "{stderr}");
}

#[test]
fn options_come_from_procrun_environment_variables() {
    let p = Project::new()
        .file("Procfile.dev", "web: a\nworker: b\n")
        .file("dev.env", "PORT=8000\n");
    let out = p
        .procrun()
        .arg("check")
        .env("PROCRUN_PROCFILE", "Procfile.dev")
        .env("PROCRUN_ENV", "dev.env")
        .env("PROCRUN_FORMATION", "worker=2")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("Procfile.dev is valid"), "{stdout}");
    assert!(stdout.contains("8100-8101"), "{stdout}");

    // A flag wins over the environment.
    let out = p
        .procrun()
        .args(["check", "-p", "9000", "-f", "Procfile.dev"])
        .env("PROCRUN_PROCFILE", "missing")
        .env("PROCRUN_PORT", "8000")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("base port: 9000 (from --port)"), "{stdout}");
}

#[test]
fn root_and_procfile_locations() {
    let p = Project::new()
        .file("app/Procfile", "web: a\n")
        .file("app/.env", "X=1\n");
    // -d DIR finds DIR/Procfile and DIR/.env.
    let (code, stdout, stderr) = run(&p, &["check", "-d", "app"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.contains("env files: app/.env (1 variable)"),
        "{stdout}"
    );
    // -f DIR/Procfile makes DIR the root.
    let (code, stdout, _) = run(&p, &["check", "-f", "app/Procfile"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("app/.env"), "{stdout}");
    // A missing root is a clear error.
    let (code, _, stderr) = run(&p, &["check", "-d", "nowhere"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("app root `nowhere` is not usable"),
        "{stderr}"
    );
}

#[test]
fn several_env_files_later_wins() {
    let p = Project::with_procfile("web: a\n")
        .file("a.env", "PORT=6000\nX=1\n")
        .file("b.env", "PORT=7000\n");
    let (_, stdout, _) = run(&p, &["check", "-e", "a.env,b.env"]);
    assert!(
        stdout.contains("base port: 7000 (from PORT in b.env)"),
        "{stdout}"
    );
    let (_, stdout, _) = run(&p, &["check", "-e", "b.env", "-e", "a.env"]);
    assert!(
        stdout.contains("base port: 6000 (from PORT in a.env)"),
        "{stdout}"
    );
}

#[test]
fn env_file_errors_and_formation_errors_come_together() {
    let p = Project::with_procfile("web: a\n").file(".env", "BROKEN\n");
    let stderr = check_fails(&p, &["-m", "wbe=1"]);
    assert!(stderr.contains(".env:1:1"), "{stderr}");
    assert!(stderr.contains("unknown process type `wbe`"), "{stderr}");
}

#[test]
fn completions_are_generated_from_the_cli_definition() {
    let out = support::procrun()
        .args(["completions", "bash"])
        .output()
        .expect("runs");
    assert!(out.status.success());
    let script = String::from_utf8_lossy(&out.stdout);
    assert!(script.contains("procrun"), "{script}");
    assert!(script.contains("--procfile"), "{script}");
}

#[test]
fn a_mistyped_type_name_gets_a_suggestion_wherever_it_is_given() {
    let p = Project::with_procfile("web: a\nworker: b\nclock: c\n");
    let cases: &[&[&str]] = &[
        &["start", "wbe"],
        &["check", "-m", "wbe=2"],
        &["export", "systemd", "-m", "wbe=1"],
        &["check", "--can-die", "wbe"],
        &["check", "--auto-restart", "wbe"],
        &["check", "--stop-signal", "wbe=INT"],
    ];
    for args in cases {
        let (code, stdout, stderr) = run(&p, args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stdout, "", "{args:?}");
        assert!(
            stderr.contains("unknown process type `wbe`")
                && stderr
                    .contains("help: did you mean `web`? `Procfile` defines: web, worker, clock"),
            "{args:?}: {stderr}"
        );
    }
    // Nothing close: only the list.
    let (_, _, stderr) = run(&p, &["start", "database"]);
    assert!(
        stderr.contains("help: `Procfile` defines: web, worker, clock")
            && !stderr.contains("did you mean"),
        "{stderr}"
    );
    let out = support::procrun()
        .current_dir(p.path())
        .args(["check"])
        .env("PROCRUN_FORMATION", "wrker=1")
        .output()
        .expect("procrun runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("did you mean `worker`?"), "{stderr}");
}

#[test]
fn check_names_where_each_setting_came_from() {
    let p = Project::with_procfile("web: a\n")
        .file("app/Procfile", "web: a\n")
        .file("app/.env", "A=1\n")
        .file("a.env", "A=1\n");
    let root = p.path().canonicalize().expect("root").display().to_string();
    let tail = |args: &[&str], env: &[(&str, &str)]| {
        let out = p
            .procrun()
            .args(args)
            .envs(env.iter().copied())
            .output()
            .expect("procrun runs");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout).replace(&root, "[ROOT]");
        stdout
            .lines()
            .skip_while(|l| !l.starts_with("base port:"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(
        tail(&["check"], &[]),
        "base port: 5000 (default)\napp root:  [ROOT]\nenv files: none\nconfig:    none"
    );
    assert_eq!(
        tail(&["check"], &[("PROCRUN_PORT", "3000")]),
        "base port: 3000 (from PROCRUN_PORT)\napp root:  [ROOT]\nenv files: none\nconfig:    none"
    );
    // The command line wins, and says so, also before the command's name.
    for args in [&["check", "-p", "3001"][..], &["check", "--port=3001"][..]] {
        assert!(
            tail(args, &[("PROCRUN_PORT", "3000")]).starts_with("base port: 3001 (from --port)"),
            "{args:?}"
        );
    }
    assert_eq!(
        tail(&["check", "-e", "a.env"], &[("PROCRUN_ROOT", "app")]),
        "base port: 5000 (default)\napp root:  [ROOT]/app (from PROCRUN_ROOT)\nenv files: a.env (1 variable, from --env)\nconfig:    none"
    );
    assert_eq!(
        tail(&["-d", "app", "check"], &[("PROCRUN_ENV", "a.env")]),
        "base port: 5000 (default)\napp root:  [ROOT]/app (from --root)\nenv files: a.env (1 variable, from PROCRUN_ENV)\nconfig:    none"
    );
}

#[test]
fn unset_references_in_env_files_and_commands_are_warned_with_their_place() {
    // `PASSWORD=abc$def` as a foreman user writes it: kept as written (what
    // foreman and honcho pass on), never silently cut to `abc`.
    let p = Project::with_procfile(
        "web: bin/rails s -e $RAILS_ENV -p $PORT\nworker: X=1; echo $X $PS ${MISSING:-ok} '$NF'\n",
    )
    .file(
        ".env",
        "PASSWORD=abc$def\nURL=http://${HOST:-localhost}:$PORT/path\n",
    );
    let (code, _, stderr) = run(&p, &["check"]);
    assert_eq!(code, 0, "{stderr}");
    insta::assert_snapshot!(stderr, @r"
    warning: `def` is not set, so `$def` is kept as written
     --> .env:1:13
      |
    1 | PASSWORD=abc$def
      |             ^^^^
      = help: for a literal `$`, write `\$` or single-quote the value; to expand it, set `def` above this line or in procrun's environment, or give a default: `${def:-}`

    warning: `$RAILS_ENV` in the command of `web` is not set: the shell expands it to nothing
     --> Procfile:1:21
      |
    1 | web: bin/rails s -e $RAILS_ENV -p $PORT
      |                     ^^^^^^^^^^
      = help: set RAILS_ENV in an env file or in procrun's environment, or give it a default: `${RAILS_ENV:-…}`
    ");

    // Set in the environment or an env file: nothing to say.
    let p = p.file(".env", "PASSWORD='abc$def'\nRAILS_ENV=development\n");
    let (code, _, stderr) = run(&p, &["check"]);
    assert_eq!((code, stderr.as_str()), (0, ""));
}
