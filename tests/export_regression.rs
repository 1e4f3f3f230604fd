//! Regression tests of `procrun export`'s hardening, each named after what
//! it reproduces, and one property test per format: arbitrary strings in
//! the env value and the command, read back by the engine's own parser
//! (or a faithful reimplementation of systemd's), must be exactly what
//! procrun meant, or the export must fail.

#[allow(dead_code)]
mod engines;
mod export_support;
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, TestRunner};

use engines::{find_tool, require, run};
use procrun::cli::ExportFormat;
use procrun::env::{EnvSet, EnvVar};
use procrun::export::quote::shell_script;
use procrun::export::{ExportOptions, check, render, write_all};
use procrun::plan::{Plan, PortSource, ProcessSpec, ProcessType};
use procrun::policy::Policy;
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
        assert!(
            stderr.contains("the command of `web` contains U+000D"),
            "{format}: {stderr}"
        );
    }
}

/// systemd refuses a unit file line of 1 MiB or more ("No buffer space
/// available"), so such a value is an error naming it, not a unit that
/// does not load.
#[test]
fn a_megabyte_value_is_refused_for_systemd_not_written() {
    let big = "x".repeat(1024 * 1024 + 100 * 1024);
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
    Command::new("/bin/sh")
        .arg("-c")
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

/// Files were renamed into place one by one, so a name the file system
/// refuses (ENAMETOOLONG) left half the units new. The swap is undone now:
/// the previous export is what is left, and no temporary file.
#[test]
fn a_name_too_long_midway_leaves_the_previous_export_whole() {
    let p = Project::with_procfile("a: sleep 1\nb: sleep 2\n").file(".env", "V=old\n");
    let out = procrun_after(&p, "", &["export", "systemd", "out", "--app", "shop"]);
    assert_eq!(out.status.code(), Some(0));
    let before = snapshot(&p.join("out"));
    let long = "z".repeat(250);
    let p = p
        .file(
            "Procfile",
            format!("a: sleep 1\nb: sleep 2\n{long}: sleep 3\n"),
        )
        .file(".env", "V=new\n");
    let out = procrun_after(&p, "", &["export", "systemd", "out", "--app", "shop"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("cannot move"), "{stderr}");
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

// ---------------------------------------------------------------------------
// Property tests: every field, arbitrary strings, the engine's parser.

/// Characters that break configuration formats, mixed with ordinary text.
fn hostile_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        3 => proptest::sample::select(vec![
            '%', '$', '\\', '"', '\'', ';', '#', '\n', '\r', '\t', '\0', ' ', '=', '[', ']', '`',
            '(', ')', '{', '}', '<', '>', '&', ':', '-', '\u{7f}', '\u{85}', '\u{9f}', '\u{a0}',
            '\u{2028}', '\u{2029}', '\u{feff}', '\u{fffe}', '\u{ffff}', '\u{fdd0}', '\u{1fffe}',
            'é', '\u{1b}', '\u{b}', '\u{c}', '\u{1c}',
        ]),
        1 => proptest::char::range('\0', '\u{1f}'),
        1 => any::<char>(),
    ]
}

/// Characters every format can carry (quotes, `%`, `$`, newlines, tabs,
/// non-ASCII), so that many cases get through the checks.
fn printable_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => proptest::char::range(' ', '~'),
        1 => proptest::sample::select(vec!['\n', '\t', '\r', 'é', '\u{a0}', '\u{1F600}', '\u{feff}']),
    ]
}

/// Half the strings hostile, half printable.
fn hostile_string() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::collection::vec(hostile_char(), 0..24),
        proptest::collection::vec(printable_char(), 0..24),
    ]
    .prop_map(|c| c.into_iter().collect())
}

/// One case: the env value of `V` and the command of type `t`.
#[derive(Clone, Debug)]
struct Case {
    value: String,
    command: String,
}

/// A batch of cases (one engine process reads a whole batch).
fn batches(n: u32) -> Vec<Vec<Case>> {
    let mut runner = TestRunner::new(Config {
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(
        (hostile_string(), hostile_string()).prop_map(|(value, command)| Case {
            value,
            command: if command.trim().is_empty() {
                format!("x{command}")
            } else {
                command
            },
        }),
        48,
    );
    (0..n)
        .map(|_| strategy.new_tree(&mut runner).expect("generates").current())
        .collect()
}

/// The plan of a case: app root `/srv/p`, one type `t` with one instance.
fn plan_of(case: &Case) -> Plan {
    let mut env = EnvSet::default();
    env.vars.insert(
        "V".into(),
        EnvVar {
            value: case.value.clone(),
            source: ".env".into(),
            line: 1,
        },
    );
    let root = PathBuf::from("/srv/p");
    Plan {
        root: root.clone(),
        types: vec![ProcessType {
            name: "t".into(),
            command: case.command.clone(),
            index: 0,
            count: 1,
            port: 5000,
            policy: Policy::default(),
        }],
        instances: vec![ProcessSpec {
            name: "t.1".into(),
            type_name: "t".into(),
            type_index: 0,
            number: 1,
            command: case.command.clone(),
            port: 5000,
            cwd: root,
            env: vec![
                ("V".into(), case.value.clone()),
                ("PORT".into(), "5000".into()),
                ("PS".into(), "t.1".into()),
            ],
            policy: Policy::default(),
        }],
        base_port: 5000,
        port_source: PortSource::Default,
        env,
        warnings: vec![],
    }
}

/// What the engine starts: argv and the variables procrun sets.
#[derive(Debug, PartialEq, Eq)]
struct Started {
    argv: Vec<String>,
    env: BTreeMap<String, String>,
}

/// Exports every case of `batch` into its own folder under `dir` (app
/// `app(n)`); the cases exported, with their folder, and how many the
/// export refused.
fn export_batch(
    format: ExportFormat,
    batch: &[Case],
    dir: &Path,
    app: impl Fn(usize) -> String,
) -> (Vec<(Case, PathBuf)>, usize) {
    let mut exported = Vec::new();
    let mut refused = 0;
    for (n, case) in batch.iter().enumerate() {
        let out = dir.join(format!("case{n}"));
        let plan = plan_of(case);
        let options = ExportOptions {
            app: app(n),
            user: None,
            log_dir: None,
            image: Some("registry.example.com/p:1".into()),
            user_units: false,
            output_dir: out.clone(),
        };
        if check(format, &plan, &options).iter().any(|d| d.is_error()) {
            refused += 1;
            continue;
        }
        write_all(&out, &render(format, &plan, &options)).expect("writes");
        exported.push((case.clone(), out));
    }
    (exported, refused)
}

/// Reads `dirs` back with `readback.py FORMAT` (one process).
fn read_back(python: &Path, format: &str, dirs: &[&Path]) -> Vec<Result<Started, String>> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines/readback.py");
    let (code, stdout, stderr) = run(Command::new(python).arg(script).arg(format).args(dirs));
    assert_eq!(code, 0, "readback.py {format}: {stderr}");
    stdout
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).expect("json line");
            if let Some(e) = v.get("error") {
                return Err(e.as_str().unwrap_or_default().to_owned());
            }
            let argv = v["argv"]
                .as_array()
                .expect("argv")
                .iter()
                .map(|a| a.as_str().expect("string argument").to_owned())
                .collect();
            let env = v["env"]
                .as_object()
                .expect("env")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string value").to_owned()))
                .collect();
            Ok(Started { argv, env })
        })
        .collect()
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Runs `batches` of cases through `format`, reads each export back with
/// `python` and compares with `expected(case, dir)`.
fn property(
    format: ExportFormat,
    name: &str,
    python: &Path,
    expected: impl Fn(&Case, &Path) -> Started,
) {
    let mut accepted = 0;
    for batch in batches(3) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (exported, _refused) = export_batch(format, &batch, dir.path(), |_| "p".into());
        let dirs: Vec<&Path> = exported.iter().map(|(_, d)| d.as_path()).collect();
        let found = read_back(python, name, &dirs);
        assert_eq!(found.len(), exported.len());
        for ((case, out), found) in exported.iter().zip(found) {
            let want = expected(case, out);
            match found {
                Ok(started) => assert_eq!(started, want, "{name}: {case:?}"),
                Err(e) => panic!("{name} refused what procrun exported for {case:?}: {e}"),
            }
        }
        accepted += exported.len();
    }
    // Hostile strings may be refused, but not everything.
    assert!(accepted > 20, "{name}: only {accepted} cases exported");
}

fn sh_c(script: String) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script]
}

#[test]
fn supervisord_reads_back_every_exported_string() {
    if require(
        "supervisord_reads_back_every_exported_string",
        &["supervisord"],
    )
    .is_none()
    {
        return;
    }
    property(
        ExportFormat::Supervisord,
        "supervisord",
        Path::new("/usr/bin/python3"),
        |case, out| {
            let mut argv = sh_c(format!(
                ". \"$0\" && PORT=$((5000 + 1 - 1)) && export PORT && {}",
                shell_script(&case.command)
            ));
            argv.push(format!("{}/p.env", out.display()));
            Started {
                argv,
                env: env(&[("V", &case.value)]),
            }
        },
    );
}

#[test]
fn runit_reads_back_every_exported_string() {
    let Some(tools) = require("runit_reads_back_every_exported_string", &["python3"]) else {
        return;
    };
    // An empty value unsets the variable under chpst -e (the export warns).
    property(ExportFormat::Runit, "runit", &tools[0], |case, _| {
        let mut vars = vec![("PORT", "5000"), ("PS", "t.1")];
        if !case.value.is_empty() {
            vars.push(("V", &case.value));
        }
        Started {
            argv: sh_c(shell_script(&case.command)),
            env: env(&vars),
        }
    });
}

#[test]
fn launchd_plistlib_reads_back_every_exported_string() {
    let Some(tools) = require(
        "launchd_plistlib_reads_back_every_exported_string",
        &["python3"],
    ) else {
        return;
    };
    property(ExportFormat::Launchd, "launchd", &tools[0], |case, _| {
        Started {
            argv: sh_c(shell_script(&case.command)),
            env: env(&[("V", &case.value), ("PORT", "5000"), ("PS", "t.1")]),
        }
    });
}

/// The venv's python, which has ruamel.yaml (YAML 1.2).
fn yaml_python(test: &str) -> Option<PathBuf> {
    let python = require(test, &["python"])?.remove(0);
    let (code, _, _) = run(Command::new(&python).args(["-c", "import ruamel.yaml"]));
    if code != 0 {
        engines::skip(&format!(
            "{test}: ruamel.yaml missing; run .ci/install-export-engines"
        ));
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{test}: ruamel.yaml missing under CI=true");
        }
        return None;
    }
    Some(python)
}

#[test]
fn compose_yaml_reads_back_every_exported_string() {
    let Some(python) = yaml_python("compose_yaml_reads_back_every_exported_string") else {
        return;
    };
    // Compose turns `$$` into `$` after parsing the YAML.
    property(ExportFormat::Compose, "compose", &python, |case, _| {
        Started {
            argv: sh_c(shell_script(&case.command).replace('$', "$$")),
            env: env(&[
                ("V", &case.value.replace('$', "$$")),
                ("PORT", "5000"),
                ("PS", "t"),
            ]),
        }
    });
}

#[test]
fn kubernetes_yaml_reads_back_every_exported_string() {
    let Some(python) = yaml_python("kubernetes_yaml_reads_back_every_exported_string") else {
        return;
    };
    // The kubelet turns `$$` into `$` in a command; ConfigMap values are
    // used as they are.
    property(
        ExportFormat::Kubernetes,
        "kubernetes",
        &python,
        |case, _| Started {
            argv: sh_c(shell_script(&case.command).replace('$', "$$")),
            env: env(&[("V", &case.value), ("PORT", "5000"), ("PS", "t")]),
        },
    );
}

/// systemd reads back every exported string (the reimplementation below),
/// and `systemd-analyze verify` accepts every unit of the batch with
/// nothing on stderr.
#[test]
fn systemd_reads_back_every_exported_string() {
    let analyze = find_tool("systemd-analyze");
    let mut accepted = 0;
    for batch in batches(3) {
        let dir = tempfile::tempdir().expect("temp dir");
        let (exported, _) = export_batch(ExportFormat::Systemd, &batch, dir.path(), |n| {
            format!("p{n}")
        });
        let mut units = Vec::new();
        for (case, out) in &exported {
            let name = out
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("case"))
                .expect("case folder");
            let unit = out.join(format!("p{name}-t-1.service"));
            let text = std::fs::read(&unit).expect("unit");
            let found = systemd::read_service(&text)
                .unwrap_or_else(|e| panic!("systemd refuses the unit of {case:?}: {e}"));
            let want = Started {
                argv: sh_c(shell_script(&case.command)),
                env: env(&[("V", &case.value), ("PORT", "5000"), ("PS", "t.1")]),
            };
            assert_eq!(found, want, "{case:?}");
            units.push(unit);
            for entry in std::fs::read_dir(out).expect("read") {
                let path = entry.expect("entry").path();
                if path.extension().is_some_and(|x| x == "target") {
                    units.push(path);
                }
            }
        }
        accepted += exported.len();
        if let Some(analyze) = &analyze {
            let (code, stdout, stderr) = run(Command::new(analyze)
                .args(["verify", "--man=no"])
                .args(&units));
            assert_eq!(
                (code, stderr.as_str()),
                (0, ""),
                "systemd-analyze verify:\n{stdout}{stderr}"
            );
        }
    }
    assert!(accepted > 20, "only {accepted} cases exported");
}

/// How systemd reads a service: the config parser (src/shared/conf-parser.c),
/// specifier expansion, word extraction with C unescaping
/// (src/basic/extract-word.c, escape.c), the validity of an environment
/// assignment (src/basic/env-util.c, utf8.c) and `$$` in ExecStart=
/// (replace_env_argv).
mod systemd {
    use super::Started;
    use std::collections::BTreeMap;

    /// Lines end at `\n`, `\r` (or `\r\n`) and NUL (read_line()).
    fn lines(text: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut line = Vec::new();
        let mut i = 0;
        while i < text.len() {
            match text[i] {
                b'\r' => {
                    out.push(std::mem::take(&mut line));
                    if text.get(i + 1) == Some(&b'\n') {
                        i += 1;
                    }
                }
                b'\n' | b'\0' => out.push(std::mem::take(&mut line)),
                b => line.push(b),
            }
            i += 1;
        }
        if !line.is_empty() {
            out.push(line);
        }
        out
    }

    fn strip(mut s: &[u8]) -> &[u8] {
        let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        while s.first().is_some_and(ws) {
            s = &s[1..];
        }
        while s.last().is_some_and(ws) {
            s = &s[..s.len() - 1];
        }
        s
    }

    /// `key=value` assignments of a section, continuation lines joined.
    fn assignments(text: &[u8], section: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
        let mut out = Vec::new();
        let mut current = String::new();
        let mut continuation: Option<Vec<u8>> = None;
        for raw in lines(text) {
            if raw.len() >= 1024 * 1024 {
                return Err("line too long".into());
            }
            let l = strip(&raw);
            if l.first().is_some_and(|b| *b == b'#' || *b == b';') {
                continue;
            }
            let mut l = match continuation.take() {
                Some(mut c) => {
                    c.extend_from_slice(l);
                    c
                }
                None => l.to_vec(),
            };
            let mut escaped = false;
            for b in &l {
                escaped = !escaped && *b == b'\\';
            }
            if escaped {
                let n = l.len();
                l[n - 1] = b' ';
                continuation = Some(l);
                continue;
            }
            let l = strip(&l);
            if l.is_empty() {
                continue;
            }
            if l[0] == b'[' {
                current = String::from_utf8_lossy(&l[1..l.len() - 1]).into_owned();
                continue;
            }
            let eq = l
                .iter()
                .position(|b| *b == b'=')
                .ok_or("a line without =")?;
            if current == section {
                let key = String::from_utf8_lossy(strip(&l[..eq])).into_owned();
                out.push((key, strip(&l[eq + 1..]).to_vec()));
            }
        }
        Ok(out)
    }

    /// Specifiers: procrun writes only `%%`.
    fn specifiers(v: &[u8]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < v.len() {
            if v[i] == b'%' {
                if v.get(i + 1) != Some(&b'%') {
                    return Err(format!("specifier %{:?}", v.get(i + 1).map(|b| *b as char)));
                }
                i += 1;
            }
            out.push(v[i]);
            i += 1;
        }
        Ok(out)
    }

    fn hex(b: u8) -> Option<u32> {
        (b as char).to_digit(16)
    }

    /// One C escape after a backslash (cunescape_one): the bytes and how
    /// many input bytes it took.
    fn unescape_one(s: &[u8]) -> Result<(Vec<u8>, usize), String> {
        let simple = |b: u8| Ok((vec![b], 1));
        match s.first().copied().ok_or("a trailing backslash")? {
            b'a' => simple(7),
            b'b' => simple(8),
            b'f' => simple(12),
            b'n' => simple(b'\n'),
            b'r' => simple(b'\r'),
            b't' => simple(b'\t'),
            b'v' => simple(11),
            b'\\' => simple(b'\\'),
            b'"' => simple(b'"'),
            b'\'' => simple(b'\''),
            b's' => simple(b' '),
            b'x' => {
                let (a, b) = (
                    s.get(1).copied().and_then(hex),
                    s.get(2).copied().and_then(hex),
                );
                match (a, b) {
                    (Some(a), Some(b)) if a * 16 + b != 0 => Ok((vec![(a * 16 + b) as u8], 3)),
                    _ => Err("bad \\x escape".into()),
                }
            }
            b'u' | b'U' => {
                let n = if s[0] == b'u' { 4 } else { 8 };
                let mut c = 0u32;
                for i in 1..=n {
                    c = c * 16 + s.get(i).copied().and_then(hex).ok_or("bad \\u escape")?;
                }
                let c = char::from_u32(c)
                    .filter(|c| *c != '\0')
                    .ok_or("bad \\u escape")?;
                Ok((c.to_string().into_bytes(), n + 1))
            }
            b'0'..=b'7' => {
                let mut c = 0u32;
                for i in 0..3 {
                    let d = s.get(i).copied().filter(|b| (b'0'..=b'7').contains(b));
                    c = c * 8 + u32::from(d.ok_or("bad octal escape")? - b'0');
                }
                if c == 0 || c > 255 {
                    return Err("bad octal escape".into());
                }
                Ok((vec![c as u8], 3))
            }
            b => Err(format!("unknown escape \\{}", b as char)),
        }
    }

    /// Words with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE.
    fn words(v: &[u8]) -> Result<Vec<Vec<u8>>, String> {
        let mut out = Vec::new();
        let mut i = 0;
        let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
        loop {
            while i < v.len() && ws(v[i]) {
                i += 1;
            }
            if i == v.len() {
                return Ok(out);
            }
            let mut word = Vec::new();
            let mut quote: Option<u8> = None;
            while i < v.len() {
                let b = v[i];
                if b == b'\\' {
                    let (bytes, n) = unescape_one(&v[i + 1..])?;
                    word.extend(bytes);
                    i += 1 + n;
                    continue;
                }
                match quote {
                    Some(q) if b == q => quote = None,
                    Some(_) => word.push(b),
                    None if b == b'"' || b == b'\'' => quote = Some(b),
                    None if ws(b) => break,
                    None => word.push(b),
                }
                i += 1;
            }
            if quote.is_some() {
                return Err("an unterminated quote".into());
            }
            out.push(word);
        }
    }

    /// utf8_is_valid(): valid UTF-8 without noncharacters.
    fn text(bytes: Vec<u8>) -> Result<String, String> {
        let s = String::from_utf8(bytes).map_err(|_| "invalid UTF-8")?;
        if s.chars().any(|c| {
            let n = c as u32;
            (0xFDD0..=0xFDEF).contains(&n) || (n & 0xFFFE) == 0xFFFE
        }) {
            return Err("a noncharacter".into());
        }
        Ok(s)
    }

    /// `$$` → `$`; procrun writes no other `$`.
    fn dollars(s: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c == '$' && chars.next() != Some('$') {
                return Err("a variable reference".into());
            }
            out.push(c);
        }
        Ok(out)
    }

    /// What a service starts: ExecStart='s argv and Environment='s
    /// variables (an invalid assignment is ignored by systemd, so it is
    /// an error here).
    pub fn read_service(unit: &[u8]) -> Result<Started, String> {
        let mut env = BTreeMap::new();
        let mut argv = None;
        for (key, value) in assignments(unit, "Service")? {
            match key.as_str() {
                "Environment" => {
                    for word in words(&specifiers(&value)?)? {
                        let word = text(word)?;
                        let (k, v) = word.split_once('=').ok_or("an assignment without =")?;
                        env.insert(k.to_owned(), v.to_owned());
                    }
                }
                "ExecStart" => {
                    let args: Result<Vec<String>, String> = words(&specifiers(&value)?)?
                        .into_iter()
                        .map(|w| text(w).and_then(|s| dollars(&s)))
                        .collect();
                    argv = Some(args?);
                }
                _ => {}
            }
        }
        Ok(Started {
            argv: argv.ok_or("no ExecStart=")?,
            env,
        })
    }
}
