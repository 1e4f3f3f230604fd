//! `procrun check` and `export` with `ready` and `after` in
//! `procrun.toml`: the start order, located errors for bad values, unknown
//! names and cycles, and the warnings.

mod support;

use support::Test;

#[test]
fn check_shows_the_start_order() {
    let out = Test::new()
        .procfile("web: w\nworker: k\ndb: d\nmigrate: m\n")
        .file(
            "procrun.toml",
            "[process.db]\nready = \"port\"\n\
             [process.migrate]\ncan_die = true\nafter = [\"db\"]\n\
             [process.web]\nafter = [\"db\", \"migrate\"]\nready = { http = \"/health\" }\n\
             [process.worker]\nafter = [\"migrate\"]\n",
        )
        .args(["check"])
        .code(0)
        .run();
    let summary: String = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with("app root:"))
        .collect::<Vec<_>>()
        .join("\n");
    insta::assert_snapshot!(summary);
}

#[test]
fn unknown_names_and_cycles_in_after_are_errors() {
    let out = Test::new()
        .procfile("web: w\nworker: k\ndb: d\n")
        .file(
            "procrun.toml",
            "[process.web]\nafter = [\"worker\", \"dbb\"]\n\
             [process.worker]\nafter = [\"db\"]\n\
             [process.db]\nafter = [\"web\"]\n",
        )
        .args(["check"])
        .code(2)
        .run();
    insta::assert_snapshot!(out.stderr);
    let out = Test::new()
        .procfile("web: w\n")
        .file("procrun.toml", "[process.web]\nafter = [\"web\"]\n")
        .args(["start"])
        .code(2)
        .run();
    assert!(
        out.stderr.contains("error: `after` has a cycle: web → web"),
        "{}",
        out.stderr
    );
}

#[test]
fn export_maps_ready_and_after_and_warns_about_the_rest() {
    let p = support::Project::with_procfile("db: d\nweb: w\n").file(
        "procrun.toml",
        "[process.db]\nready = \"port\"\n[process.web]\nafter = [\"db\"]\n",
    );
    let out = p
        .procrun()
        .args(["export", "systemd", "out", "--app", "a"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr);
    assert!(
        stderr.contains("warning: systemd cannot carry `db`'s ready = \"port\": "),
        "{stderr}"
    );
    assert!(!stderr.contains("not exported"), "{stderr}");
    let web = std::fs::read_to_string(p.join("out/a-web-1.service")).expect("unit");
    assert!(
        web.contains("\nAfter=a-db.target\nWants=a-db.target\n"),
        "{web}"
    );
}

#[test]
fn bad_readiness_values_are_located_errors() {
    let out = Test::new()
        .procfile("db: d\nweb: w\n")
        .file(
            "procrun.toml",
            "[defaults]\nready = \"port\"\n\
             [process.db]\nready = { htp = \"/\" }\nready_timeout = 0\nready_interval = 0\n\
             [process.web]\nport = false\nready = \"port\"\nafter = \"db\"\n",
        )
        .args(["check"])
        .code(2)
        .run();
    insta::assert_snapshot!("bad_values", out.stderr);
    // Found once the file reads well.
    let out = Test::new()
        .procfile("db: d\nweb: w\n")
        .file(
            "procrun.toml",
            "[defaults]\nready = \"port\"\n\
             [process.db]\nready_timeout = 0\nready_interval = 0\n\
             [process.web]\nport = false\nready = \"port\"\n",
        )
        .args(["check"])
        .code(2)
        .run();
    insta::assert_snapshot!("bad_settings", out.stderr);
}

#[test]
fn a_one_shot_with_a_ready_check_is_waited_for_until_it_exits() {
    let out = Test::new()
        .procfile("seed: echo seeded; exit 0\nweb: w\n")
        .file(
            "procrun.toml",
            "[process.seed]\ncan_die = true\nready = { log = \"seeded\" }\n\
             [process.web]\nafter = [\"seed\"]\n",
        )
        .args(["check"])
        .code(0)
        .run();
    assert!(
        out.stderr.contains(
            "warning: `seed` can die, so `web` waits for it to exit with code 0, not for its `ready` check"
        ),
        "{}",
        out.stderr
    );
}

#[test]
fn http_urls_are_checked_where_they_are_written() {
    for (url, why) in [
        ("http://::1:8080/", "an IPv6 address goes in brackets"),
        ("http://[::1/", "its IPv6 address lacks the closing `]`"),
        ("http://db:0/", "`0` is not a port number"),
        ("http://db/a b", "its path holds a space"),
    ] {
        let out = Test::new()
            .procfile("web: w\n")
            .file(
                "procrun.toml",
                format!("[process.web]\nready = {{ http = \"{url}\" }}\n"),
            )
            .args(["check"])
            .code(2)
            .run();
        assert!(
            out.stderr
                .contains(&format!("error: `ready.http` cannot be used: {why}"))
                && out.stderr.contains("procrun.toml:2:"),
            "{url}: {}",
            out.stderr
        );
    }
    // An IPv6 URL is fine, and `check` shows it.
    let out = Test::new()
        .procfile("web: w\n")
        .file(
            "procrun.toml",
            "[process.web]\nready = { http = \"http://[::1]:8080/health\" }\n",
        )
        .args(["check"])
        .code(0)
        .run();
    assert!(
        out.stdout.contains("ready=http:http://[::1]:8080/health"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_exec_check_with_a_nul_byte_is_a_located_error() {
    let out = Test::new()
        .procfile("web: w\n")
        .file(
            "procrun.toml",
            "[process.web]\nready = { exec = \"true\\u0000\" }\n",
        )
        .args(["check"])
        .code(2)
        .run();
    assert!(
        out.stderr.contains(
            "error: `ready.exec` contains a NUL byte, which no command can hold\n --> procrun.toml:2:18"
        ),
        "{}",
        out.stderr
    );
}
