//! Regression tests of `procrun export`, each named after what it
//! reproduces. The property tests of what each format can carry are in
//! tests/export_properties.rs.

mod export_support;
mod support;

use std::path::Path;
use std::process::Command;

use support::Project;

/// `procrun export FORMAT out` in `p` must fail with exit 2 (invalid
/// input) and write nothing: its stderr.
fn refused(p: &Project, format: &str) -> String {
    let out = p
        .procrun()
        .args(["export", format, "out", "--image", "img:1"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{format}: {stderr}");
    assert!(!p.path().join("out").exists(), "{format} wrote files");
    stderr
}

/// A Procfile line with a bare `\r` used to pass `check` and land raw in
/// supervisord's config, where Python reads it as a line break: the line
/// could add a `[program:…]` section. No format writes one now.
#[test]
fn carriage_return_in_a_command_cannot_add_a_supervisord_program() {
    let p = Project::with_procfile(
        "web: echo hi\r[program:evil]\rcommand=/usr/bin/touch /tmp/procrun-evil\n",
    );
    for format in export_support::FORMATS {
        let stderr = refused(&p, format);
        // The Procfile parser refuses it now, before any format sees it.
        assert!(
            stderr.contains("carriage return (`\\r`) inside a line"),
            "{format}: {stderr}"
        );
    }
}

/// systemd refuses a unit file line of 1 MiB or more ("No buffer space
/// available"), so such a value is an error naming it, not a unit that
/// does not load.
#[test]
fn a_megabyte_value_is_refused_for_systemd_not_written() {
    // Just under the cap on one env value (1 MiB), over systemd's line limit
    // once `Environment="BIG=…"` is around it.
    let big = "x".repeat(1024 * 1024 - 8);
    let p = Project::with_procfile("web: sleep 1000\n").file(".env", format!("BIG={big}\n"));
    let out = p
        .procrun()
        .args(["export", "systemd", "out"])
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the value of BIG is too long for systemd"),
        "{stderr}"
    );
    assert!(!p.path().join("out").exists());
}

/// Types `web` and `-web` both became component `web`: the Deployments
/// and the Service selected each other's pods. Every format that
/// normalises names refuses two that come out the same, naming both.
#[test]
fn web_and_dash_web_would_select_each_others_pods() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "web: sleep 1\n-web: sleep 2\n",
            "kubernetes",
            "process types `web` and `-web` would both be the Kubernetes component `web`",
        ),
        (
            "web: sleep 1\nweb_: sleep 2\n",
            "kubernetes",
            "process types `web` and `web_` would both be the Kubernetes component `web`",
        ),
        (
            "web: sleep 1\nWeb: sleep 2\n",
            "kubernetes",
            "process types `web` and `Web` would both be the Kubernetes component `web`",
        ),
        (
            "web: sleep 1\nWeb: sleep 2\n",
            "compose",
            "process types `web` and `Web` would both be the Compose service host name `web`",
        ),
        (
            "web: sleep 1\nWeb: sleep 2\n",
            "launchd",
            "process types `web` and `Web` would both be the launchd plist",
        ),
    ];
    for (procfile, format, message) in cases {
        let stderr = refused(&Project::with_procfile(procfile), format);
        assert!(stderr.contains(message), "{format}: {stderr}");
    }
}

/// `procrun ARGS` in `p` through `/bin/sh`, after the shell ran `prelude`
/// (a umask, a file size limit).
fn procrun_after(p: &Project, prelude: &str, args: &[&str]) -> std::process::Output {
    let mut cmd = Command::new("/bin/sh");
    // The developer's PROCRUN_* settings must not reach the procrun it runs.
    support::scrub(&mut cmd);
    cmd.arg("-c")
        .arg(format!("{prelude}\nexec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_procrun"))
        .args(args)
        .current_dir(p.path())
        .env_remove("PORT")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("runs")
}

/// Every file under `dir`, relative, with its mode.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            let meta = std::fs::symlink_metadata(&path).expect("stat");
            if meta.is_dir() {
                stack.push(path.clone());
            }
            let rel = path.strip_prefix(dir).expect("under").display().to_string();
            out.push((rel, meta.permissions().mode() & 0o7777));
        }
    }
    out.sort();
    out
}

/// Every exported file was chmod-ed to 0644 (0755), even under `umask
/// 077` with a 0600 `.env` full of secrets. Now the umask narrows every
/// mode and nothing widens it; files that hold env values are 0600.
#[test]
fn umask_077_and_a_private_env_file_keep_the_export_private() {
    let p = Project::with_procfile("web: sleep 1000\n").file(".env", "SECRET=hunter2\n");
    for format in export_support::FORMATS {
        let out = procrun_after(
            &p,
            "umask 077",
            &["export", format, format, "--image", "i:1"],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{format}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        for (path, mode) in modes(&p.join(format)) {
            assert_eq!(
                mode & 0o077,
                0,
                "{format}: {path} is {mode:o} under umask 077"
            );
        }
    }
    // Under the usual umask, what holds env values is still 0600.
    let out = procrun_after(&p, "umask 022", &["export", "runit", "runit022"]);
    assert_eq!(out.status.code(), Some(0));
    let found = modes(&p.join("runit022"));
    let mode = |name: &str| {
        found
            .iter()
            .find(|(p, _)| p.ends_with(name))
            .map(|(_, m)| *m)
    };
    assert_eq!(mode("env/SECRET"), Some(0o600), "{found:?}");
    assert_eq!(mode("web-1/run"), Some(0o755), "{found:?}");
    for format in ["systemd", "launchd", "compose", "kubernetes", "supervisord"] {
        let out = procrun_after(
            &p,
            "umask 022",
            &["export", format, "o022", "--image", "i:1"],
        );
        assert_eq!(out.status.code(), Some(0));
        for (path, mode) in modes(&p.join("o022")) {
            let secret = std::fs::read_to_string(p.join("o022").join(&path))
                .is_ok_and(|text| text.contains("hunter2"));
            if secret {
                assert_eq!(mode, 0o600, "{format}: {path}");
            }
        }
        std::fs::remove_dir_all(p.join("o022")).expect("clean");
    }
}

/// The files of an export folder (not the manifest), with their contents.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = modes(dir)
        .into_iter()
        .filter(|(p, _)| !p.ends_with(".procrun-export"))
        .filter_map(|(p, _)| std::fs::read(dir.join(&p)).ok().map(|c| (p, c)))
        .collect();
    out.sort();
    out
}

fn leftovers(dir: &Path) -> Vec<String> {
    modes(dir)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.contains(".procrun-tmp"))
        .collect()
}

/// Files were renamed into place one by one, so a file that could not be
/// moved into place (ENAMETOOLONG, an immutable file; here a folder in the
/// way) left half the units new. The swap is undone now: the previous
/// export is what is left, and no temporary file.
#[test]
fn a_file_that_cannot_be_replaced_leaves_the_previous_export_whole() {
    let p = Project::with_procfile("a: sleep 1\nb: sleep 2\n").file(".env", "V=old\n");
    let out = procrun_after(&p, "", &["export", "systemd", "out", "--app", "shop"]);
    assert_eq!(out.status.code(), Some(0));
    // A non-empty folder where the new type's unit must go: renaming the
    // unit onto it fails after the other units were moved.
    let blocker = p.join("out").join("shop-zz-1.service");
    std::fs::create_dir_all(blocker.join("keep")).expect("mkdir");
    let before = snapshot(&p.join("out"));
    let p = p
        .file("Procfile", "a: sleep 1\nb: sleep 2\nzz: sleep 3\n")
        .file(".env", "V=new\n");
    let out = procrun_after(&p, "", &["export", "systemd", "out", "--app", "shop"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot replace") || stderr.contains("cannot move"),
        "{stderr}"
    );
    assert_eq!(snapshot(&p.join("out")), before);
    assert_eq!(leftovers(&p.join("out")), Vec::<String>::new());
}

/// A write that failed half-way (ENOSPC; here EFBIG from a file size
/// limit) left `.procrun-tmp-*` files holding env values. Every error path
/// removes them now, and the folders it created.
#[test]
fn a_failed_write_leaves_no_temporary_file_with_env_values() {
    let big = "s".repeat(4096);
    let p = Project::with_procfile("web: sleep 1\n").file(".env", format!("SECRET={big}\n"));
    for format in export_support::FORMATS {
        // 1 block of 512 bytes; SIGXFSZ ignored, so the write fails.
        let out = procrun_after(
            &p,
            "ulimit -f 1; trap '' XFSZ",
            &["export", format, "out", "--image", "i:1"],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{format}: {stderr}");
        assert!(
            !p.join("out").exists(),
            "{format}: left {:?}",
            modes(&p.join("out"))
        );
    }
    // Into an existing export: it stays as it was.
    let p = p.file(".env", "SECRET=small\n");
    let out = procrun_after(&p, "", &["export", "runit", "out"]);
    assert_eq!(out.status.code(), Some(0));
    let before = snapshot(&p.join("out"));
    let p = p.file(".env", format!("SECRET={big}\n"));
    let out = procrun_after(&p, "ulimit -f 1; trap '' XFSZ", &["export", "runit", "out"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(snapshot(&p.join("out")), before);
    assert_eq!(leftovers(&p.join("out")), Vec::<String>::new());
}

/// A symbolic link inside the export folder was followed: writes went to
/// where it points, and a re-export removed stale files there. Now a link
/// where a folder must be is an error, and stale files behind one stay.
#[test]
fn symlinks_in_the_export_folder_are_never_followed() {
    let p = Project::with_procfile("web: sleep 1000\n");
    let out = procrun_after(
        &p,
        "",
        &["export", "runit", "out", "-m", "web=2", "--app", "shop"],
    );
    assert_eq!(out.status.code(), Some(0));

    // Stale files behind a link: shop-web-2 now points elsewhere.
    std::fs::rename(p.join("out/shop-web-2"), p.join("elsewhere")).expect("move");
    std::os::unix::fs::symlink(p.join("elsewhere"), p.join("out/shop-web-2")).expect("link");
    let out = procrun_after(
        &p,
        "",
        &["export", "runit", "out", "-m", "web=1", "--app", "shop"],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(p.join("elsewhere/run").exists());
    assert!(p.join("elsewhere/env/PORT").exists());

    // A write through a link: shop-web-3 points at a victim folder.
    std::fs::create_dir(p.join("victim")).expect("mkdir");
    std::os::unix::fs::symlink(p.join("victim"), p.join("out/shop-web-3")).expect("link");
    let before = snapshot(&p.join("out"));
    let out = procrun_after(
        &p,
        "",
        &["export", "runit", "out", "-m", "web=3", "--app", "shop"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(p.join("victim")).expect("read").count(),
        0
    );
    assert_eq!(snapshot(&p.join("out")), before);
}

/// The app root is written as it is into systemd's `WorkingDirectory=`
/// and supervisord's `directory=`: a trailing backslash joined systemd's
/// next line, and both strip blanks at either end. Such a root is refused.
#[test]
fn an_app_root_ending_in_a_backslash_or_blank_is_refused() {
    let p = Project::new()
        .file("app\\/Procfile", "web: sleep 1\n")
        .file("app /Procfile", "web: sleep 1\n");
    for (root, format) in [
        ("app\\", "systemd"),
        ("app ", "systemd"),
        ("app ", "supervisord"),
    ] {
        let out = procrun_after(
            &p,
            "",
            &[
                "export",
                format,
                "out",
                "-d",
                root,
                "-f",
                &format!("{root}/Procfile"),
            ],
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{format} {root:?}: {stderr}");
        assert!(stderr.contains("blank"), "{stderr}");
        assert!(!p.join("out").exists());
    }
}

/// `stop_timeout = 0` means SIGKILL at once, but systemd's
/// `TimeoutStopSec=0` and launchd's `ExitTimeOut` 0 mean no timeout at
/// all: those get the shortest wait each has instead.
#[test]
fn a_zero_stop_timeout_never_becomes_an_infinite_one() {
    let p = Project::with_procfile("web: sleep 1000\n")
        .file("procrun.toml", "[defaults]\nstop_timeout = 0\n");
    for (format, file, want) in [
        ("systemd", "app-web-1.service", "TimeoutStopSec=1us\n"),
        (
            "launchd",
            "app-web-1.plist",
            "<key>ExitTimeOut</key>\n  <integer>1</integer>",
        ),
        ("supervisord", "app.conf", "stopwaitsecs=0\n"),
        ("compose", "compose.yaml", "stop_grace_period: \"0ms\""),
        (
            "kubernetes",
            "app.yaml",
            "terminationGracePeriodSeconds: 0\n",
        ),
    ] {
        let out = procrun_after(
            &p,
            "",
            &["export", format, format, "--app", "app", "--image", "i:1"],
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = std::fs::read_to_string(p.join(format).join(file)).expect("written");
        assert!(text.contains(want), "{format}: {text}");
    }
}

/// Docker reads `restart: on-failure:0` as "no limit", the opposite of
/// `max_restarts = 0`; such a type gets `restart: "no"` and a warning.
#[test]
fn max_restarts_0_is_not_docker_unlimited_on_failure_0() {
    let p = Project::with_procfile("web: sleep 1000\n").file(
        "procrun.toml",
        "[process.web]\nrestart = \"on-failure\"\nmax_restarts = 0\n",
    );
    let out = procrun_after(&p, "", &["export", "compose", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let yaml = std::fs::read_to_string(p.join("out/compose.yaml")).expect("written");
    assert!(yaml.contains("restart: \"no\""), "{yaml}");
    assert!(stderr.contains("max_restarts = 0"), "{stderr}");
}
