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
