//! `procrun check` through the real binary.

mod support;

use support::Project;

#[test]
fn valid_procfile_prints_the_plan() {
    let p = Project::with_procfile("web: python3 -m http.server $PORT\nworker: sleep 1\n");
    let out = p
        .procrun()
        .args(["check", "-m", "web=2,worker=1"])
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(
        stdout.contains("Procfile is valid: 2 process types, 3 instances"),
        "{stdout}"
    );
    assert!(stdout.contains("5000-5001"), "{stdout}");
    assert!(stdout.contains("5100"), "{stdout}");
}
