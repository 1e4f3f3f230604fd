//! The command line as a whole: help, version, usage errors.

mod support;

#[test]
fn version_and_help_exit_zero() {
    let out = support::procrun().arg("--version").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("procrun "));
    let out = support::procrun().arg("--help").output().expect("runs");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("PROCRUN_PROCFILE"));
}

#[test]
fn usage_errors_exit_two_with_one_message() {
    for args in [
        &[][..],
        &["frobnicate"][..],
        &["check", "--no-such-flag"][..],
    ] {
        let out = support::procrun().args(args).output().expect("runs");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("Usage:"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn global_options_work_after_the_command() {
    let p = support::Project::new().file("other/Pfile", "web: a\n");
    let out = p
        .procrun()
        .args(["check", "-f", "other/Pfile"])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn boolean_options_from_the_environment_accept_1_and_0() {
    let p = support::Project::with_procfile("a: echo hi\n");
    for (value, stamped) in [("1", false), ("yes", false), ("true", false), ("0", true)] {
        let out = p
            .procrun()
            .arg("start")
            .env("PROCRUN_NO_TIMESTAMP", value)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{value}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(!stdout.starts_with("system"), stamped, "{value}: {stdout}");
    }
}

#[test]
fn an_option_from_the_environment_set_but_empty_counts_as_unset() {
    let p = support::Project::with_procfile("web: echo hi\n");
    let out = p
        .procrun()
        .arg("check")
        .env("PROCRUN_PORT", "")
        .env("PROCRUN_TIMEOUT", "")
        .env("PROCRUN_ENV", "")
        .env("PROCRUN_NO_TIMESTAMP", "")
        .output()
        .expect("runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("base port: 5000 (default)"), "{stdout}");
    // The same variable with a bad value is still an error.
    let out = p
        .procrun()
        .arg("check")
        .env("PROCRUN_PORT", "x")
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn man_page_is_generated_from_the_cli_definition() {
    let out = support::procrun().arg("man").output().expect("runs");
    assert!(out.status.success());
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(
        page.starts_with(".ie") || page.contains(".TH procrun"),
        "{page}"
    );
    assert!(page.contains("procfile"), "{page}");
}

#[test]
fn every_command_has_a_long_help_and_a_short_one() {
    for (command, long) in [
        ("check", "file:line:col"),
        ("start", "SIGKILL"),
        ("run", "128+N"),
        ("export", ".procrun-export-APP"),
        ("man", "roff"),
        ("completions", "bash"),
    ] {
        let out = support::Test::new()
            .args([command, "--help"])
            .code(0)
            .stdout_has(&format!("Usage: procrun {command}"))
            .stdout_has(long)
            .run();
        assert_eq!(out.stderr, "", "{command}");
        // -h is the summary: the first paragraph only.
        let short = support::Test::new().args([command, "-h"]).code(0).run();
        assert!(short.stdout.len() < out.stdout.len(), "{command}");
    }
}

#[test]
fn the_top_level_help_and_man_page_carry_the_reference() {
    let help = support::Test::new().arg("--help").code(0).run().stdout;
    let man = support::Test::new().arg("man").code(0).run().stdout;
    for text in ["PROCRUN_<LONG_NAME>", "Exit codes: 0 success", "126"] {
        assert!(help.contains(text), "--help lacks {text:?}");
        assert!(man.contains(text), "man lacks {text:?}");
    }
    for command in ["check", "start", "run", "export", "man", "completions"] {
        assert!(man.contains(&format!("procrun\\-{command}")), "{command}");
    }
}

#[test]
fn the_exit_code_table_is_one_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .expect("README.md");
    assert!(
        readme.contains(procrun::exit_code::TABLE),
        "README.md's exit-code table differs from src/exit_code.rs:\n{}",
        procrun::exit_code::TABLE
    );
    let out = support::procrun().arg("--help").output().expect("runs");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit status:"), "{help}");
    assert!(help.contains("128+N"), "{help}");
}

#[test]
fn each_command_has_a_manual_page() {
    let out = support::procrun()
        .args(["man", "start"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(0));
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH procrun-start 1"), "{page}");
    assert!(page.contains("log\\-format"), "{page}");
    let out = support::procrun()
        .args(["man", "stat"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no command `stat`"), "{stderr}");
    assert!(stderr.contains("check, start, run"), "{stderr}");
}

/// `procrun ARGS` in a project with one quick entry; returns (code,
/// stdout, stderr).
fn foreman_run(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String, String) {
    let mut t = support::Test::new().procfile("web: echo hi\n").args(args);
    for (k, v) in env {
        t = t.env(k, v);
    }
    let out = t.run();
    (out.code(), out.stdout, out.stderr)
}

/// Arguments, environment, and whether the output should show it.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], bool);

#[test]
fn foremans_colour_and_timestamp_flags_are_accepted() {
    let coloured = |stdout: &str| stdout.contains("\x1b[");
    let stamped = |stdout: &str| {
        let b = stdout.as_bytes();
        b.len() > 8 && b[2] == b':' && b[5] == b':' && b[8] == b' '
    };
    // stdout is a pipe, so `auto` would not colour.
    let cases: &[Case] = &[
        (&["start", "-c"], &[], true),
        (&["-c", "start"], &[], true),
        (&["start", "--color"], &[], true),
        (&["start", "--color=always"], &[], true),
        (&["start", "--color", "always"], &[], true),
        (&["start", "--color", "never", "-c"], &[], true),
        (&["start", "-c", "--color=never"], &[], false),
        (&["start", "-c", "--no-color"], &[], false),
        (
            &["start", "--no-color"],
            &[("PROCRUN_COLOR", "always")],
            false,
        ),
        (&["start", "-c"], &[("PROCRUN_COLOR", "never")], true),
        (&["start", "-c", "web"], &[], true),
        (&["start"], &[], false),
    ];
    for (args, env, want) in cases {
        let (code, stdout, stderr) = foreman_run(args, env);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(coloured(&stdout), *want, "{args:?} {env:?}: {stdout:?}");
    }
    let cases: &[Case] = &[
        (&["start"], &[], true),
        (&["start", "--no-timestamp"], &[], false),
        (&["start", "--timestamp"], &[], true),
        (&["start", "--no-timestamp", "--timestamp"], &[], true),
        (&["start", "--timestamp", "--no-timestamp"], &[], false),
        (
            &["start", "--timestamp"],
            &[("PROCRUN_NO_TIMESTAMP", "1")],
            true,
        ),
    ];
    for (args, env, want) in cases {
        let (code, stdout, stderr) = foreman_run(args, env);
        assert_eq!(code, Some(0), "{args:?}: {stderr}");
        assert_eq!(stamped(&stdout), *want, "{args:?} {env:?}: {stdout:?}");
    }
}

#[test]
fn a_bare_color_before_a_word_explains_itself() {
    let (code, stdout, stderr) = foreman_run(&["start", "--color", "web"], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("invalid value 'web' for '--color'")
            && stderr.contains("-c or --color=always"),
        "{stderr}"
    );
}

#[test]
fn run_passes_dash_c_to_the_command() {
    let (code, stdout, stderr) =
        foreman_run(&["run", "sh", "-c", "echo [$0] [$1]", "x", "-c"], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "[x] [-c]\n");
    // Before the command, -c is procrun's own.
    let (code, stdout, stderr) = foreman_run(&["run", "-c", "sh", "-c", "echo ok"], &[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout, "ok\n");
}

/// A message procrun cannot write (stderr on a full disk, a closed pipe, a
/// terminal that hung up) never turns into a panic: the exit code still
/// says what happened.
#[test]
fn an_unwritable_stderr_keeps_the_exit_code() {
    let Ok(full) = std::fs::File::create("/dev/full") else {
        return; // not Linux: no /dev/full
    };
    let status = std::process::Command::new(support::procrun_path())
        .args(["check", "-f", "no/such/Procfile"])
        .stdout(std::process::Stdio::null())
        .stderr(full)
        .status()
        .expect("runs");
    assert_eq!(status.code(), Some(2));
}
