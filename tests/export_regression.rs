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
        .filter(|(p, _)| !p.contains(".procrun-export-"))
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

/// `procrun export ARGS` in `p`, expected to succeed: its stdout.
fn exported(p: &Project, args: &[&str]) -> String {
    let mut all = vec!["export"];
    all.extend(args);
    let out = procrun_after(p, "", &all);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The README's own `--user-units` into `~/.config/systemd/user`, twice:
/// the second app's export deleted the first app's units, silently,
/// because one manifest per folder listed them. Each app has its own now,
/// and an export names what it removes.
#[test]
fn a_second_app_exported_into_the_same_folder_leaves_the_first_apps_files_alone() {
    let p = Project::with_procfile("web: sleep 1\nworker: sleep 2\n");
    for format in ["systemd", "runit", "launchd", "kubernetes"] {
        let out = format!("{format}-out");
        exported(&p, &[format, &out, "--app", "one", "--image", "i:1"]);
        let first = snapshot(&p.join(&out));
        let stdout = exported(&p, &[format, &out, "--app", "two", "--image", "i:1"]);
        assert!(!stdout.contains("removed"), "{format}: {stdout}");
        let both = snapshot(&p.join(&out));
        for file in &first {
            assert!(both.contains(file), "{format}: {} is gone", file.0);
        }
        assert!(both.len() > first.len(), "{format}: two wrote nothing");
        if format == "kubernetes" {
            // One file per app: nothing of it can go stale.
            continue;
        }
        // `one` drops its worker: only `one`'s worker files go, each named.
        std::fs::write(p.join("Procfile"), "web: sleep 1\n").expect("Procfile");
        let stdout = exported(&p, &[format, &out, "--app", "one", "--image", "i:1"]);
        let after = snapshot(&p.join(&out));
        let gone: Vec<&String> = both
            .iter()
            .filter(|f| !after.iter().any(|a| a.0 == f.0))
            .map(|f| &f.0)
            .collect();
        assert!(!gone.is_empty(), "{format}: nothing removed");
        for path in gone {
            assert!(path.contains("one"), "{format}: removed {path}");
            assert!(
                stdout.contains(path.as_str()),
                "{format}: {path} not named: {stdout}"
            );
        }
        assert!(stdout.contains("removed"), "{format}: {stdout}");
        std::fs::write(p.join("Procfile"), "web: sleep 1\nworker: sleep 2\n").expect("Procfile");
    }
}

/// Files whose names do not carry the app (supervisord's
/// `supervisord.conf`, `compose.yaml`) were overwritten by a second app's
/// export. Such a clash is refused now, naming the app that owns the file.
#[test]
fn a_second_app_never_overwrites_a_file_of_the_first() {
    let p = Project::with_procfile("web: sleep 1\n");
    for format in ["supervisord", "compose"] {
        let out = format!("{format}-out");
        exported(&p, &[format, &out, "--app", "one"]);
        let before = snapshot(&p.join(&out));
        let run = procrun_after(&p, "", &["export", format, &out, "--app", "two"]);
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{format}: {stderr}");
        assert!(stderr.contains("`one`"), "{format}: {stderr}");
        assert_eq!(snapshot(&p.join(&out)), before, "{format}");
        assert_eq!(leftovers(&p.join(&out)), Vec::<String>::new());
    }
}

/// Exporting straight into `~/.config/systemd/user` printed "next: cp
/// DIR/* ~/.config/systemd/user/", a copy of the folder onto itself. The
/// hint fits where the files already are now.
#[test]
fn the_next_hint_after_exporting_into_the_units_folder_copies_nothing() {
    let p = Project::with_procfile("web: sleep 1\n");
    let home = p.join("home");
    let units = home.join(".config/systemd/user");
    let agents = home.join("Library/LaunchAgents");
    for (format, dir, extra) in [
        ("systemd", &units, Some("--user-units")),
        ("launchd", &agents, None),
    ] {
        let dir = dir.display().to_string();
        let mut args = vec!["export", format, &dir, "--app", "shop"];
        args.extend(extra);
        let out = procrun_after(
            &p,
            &format!("HOME='{}'; export HOME", home.display()),
            &args,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{format}: {stdout}");
        let next = stdout
            .lines()
            .find(|l| l.starts_with("next:"))
            .unwrap_or_default();
        assert!(!next.contains("cp "), "{format}: {next}");
        assert!(next.contains("shop"), "{format}: {next}");
    }
    // Elsewhere, the copy is still the first step.
    let stdout = exported(&p, &["systemd", "units", "--user-units", "--app", "shop"]);
    assert!(
        stdout.contains("next: cp units/* ~/.config/systemd/user/"),
        "{stdout}"
    );
}

/// A SIGKILLed export leaves its `.procrun-tmp-*` files (which hold env
/// values) and backups behind: nothing can remove them on the way out. The
/// next export into the folder removes those of exports that are no longer
/// running, and nothing else.
#[test]
fn temporary_files_of_a_killed_export_are_swept_by_the_next() {
    let p = Project::with_procfile("web: sleep 1\n").file(".env", "SECRET=hunter2\n");
    exported(&p, &["runit", "out", "--app", "shop"]);
    // A pid that was just reaped is not running (the system does not hand
    // it out again this soon).
    let mut gone = Command::new("true").spawn().expect("spawn");
    let dead = gone.id();
    gone.wait().expect("wait");
    let live = std::process::id();
    let planted = [
        format!("out/.procrun-tmp-{dead}-0"),
        format!("out/.procrun-tmp-{dead}-manifest"),
        format!("out/shop-web-1/env/.procrun-tmp-{dead}-old-3"),
        format!("out/shop-web-9/.procrun-tmp-{dead}-1"),
    ];
    let kept = [
        // A running export's.
        format!("out/.procrun-tmp-{live}-0"),
        // Not procrun's names.
        "out/.procrun-tmp-notes".to_owned(),
        "out/my.procrun-tmp-1-0".to_owned(),
        format!("out/.procrun-tmp-{dead}-0.bak"),
    ];
    for path in planted.iter().chain(&kept) {
        let path = p.join(path);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, "SECRET=hunter2\n").expect("plant");
    }
    exported(&p, &["runit", "out", "--app", "shop"]);
    for path in &planted {
        assert!(!p.join(path).exists(), "{path} is still there");
    }
    for path in &kept {
        assert!(p.join(path).exists(), "{path} was removed");
    }
}

/// The swap's rollback was only reached through a check made before any
/// rename. Here a rename itself fails half-way: the output folder is so
/// deep that a long unit name passes `PATH_MAX` while the short ones, and
/// every temporary name, fit. The units already renamed are put back.
#[cfg(target_os = "linux")]
#[test]
fn a_rename_that_fails_half_way_puts_back_the_files_already_renamed() {
    let p = Project::with_procfile("web: sleep 1\n").file(".env", "V=old\n");
    // Folders of 200 bytes until the path is 4040 bytes long.
    let mut deep = p.path().to_path_buf();
    while deep.as_os_str().len() < 4040 - 201 {
        deep.push("d".repeat(200));
    }
    let last = 4040 - deep.as_os_str().len() - 1;
    deep.push("e".repeat(last));
    std::fs::create_dir_all(&deep).expect("deep folder");
    let out = deep.display().to_string();
    exported(&p, &["systemd", &out, "--app", "a"]);
    let before = snapshot(&deep);
    assert!(!before.is_empty());

    // `a.target` and `a-web*` fit; `a-{long}-1.service` does not.
    let long = "l".repeat(60);
    let p = p
        .file("Procfile", format!("web: sleep 1\n{long}: sleep 2\n"))
        .file(".env", "V=new\n");
    let run = procrun_after(&p, "", &["export", "systemd", &out, "--app", "a"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot move"), "{stderr}");
    assert_eq!(snapshot(&deep), before);
    assert_eq!(leftovers(&deep), Vec::<String>::new());

    // Into a folder with no export yet: nothing is left at all.
    let fresh = deep.with_file_name("f".repeat(last));
    std::fs::create_dir(&fresh).expect("fresh folder");
    let run = procrun_after(
        &p,
        "",
        &[
            "export",
            "systemd",
            &fresh.display().to_string(),
            "--app",
            "a",
        ],
    );
    assert_eq!(run.status.code(), Some(1));
    assert_eq!(modes(&fresh), Vec::<(String, u32)>::new());
}
