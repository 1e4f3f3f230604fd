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
        ("export", ".procrun-export"),
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
