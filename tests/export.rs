//! `procrun export` through the real binary: a snapshot of every format for
//! the hostile fixture (tests/export_support), and the error paths. The
//! engines themselves run the exports in tests/export_engines.rs.

mod export_support;
mod support;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use support::Project;

fn fixture() -> Project {
    let p = Project::new();
    export_support::write_app(p.path());
    p
}

/// Every file under `dir` (sorted), with its mode, NUL bytes shown as `\0`.
fn transcript(dir: &Path, root: &Path) -> String {
    let mut paths = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                paths.push(path.clone());
                stack.push(path);
            } else {
                paths.push(path);
            }
        }
    }
    paths.sort();
    let mut out = String::new();
    for path in paths {
        let rel = path
            .strip_prefix(dir)
            .expect("inside")
            .display()
            .to_string();
        let meta = std::fs::metadata(&path).expect("metadata");
        if meta.is_dir() {
            out.push_str(&format!("=== {rel}/\n"));
            continue;
        }
        let mode = meta.permissions().mode() & 0o777;
        let text = std::fs::read_to_string(&path).expect("utf-8 file");
        out.push_str(&format!(
            "=== {rel} ({mode:o})\n{}\n",
            text.replace('\0', "\\0")
        ));
    }
    out.replace(&root.display().to_string(), "[ROOT]")
}

fn export(p: &Project, format: &str, extra: &[&str]) -> (String, String) {
    export_with(p, format, export_support::FORMATION, extra)
}

fn export_with(p: &Project, format: &str, formation: &str, extra: &[&str]) -> (String, String) {
    let out = p
        .procrun()
        .args(["export", format, "out", "-m", formation])
        .args(["--app", "shop", "-p", "5000"])
        .args(extra)
        .assert()
        .success();
    let o = out.get_output();
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn every_format_snapshot() {
    for format in &export_support::FORMATS {
        let p = fixture();
        let extra: &[&str] = match *format {
            "kubernetes" => &["--image", "registry.example.com/shop:1.0"],
            "runit" | "systemd" | "supervisord" => &["--user", "deploy", "-t", "7.5"],
            _ => &[],
        };
        let (stdout, stderr) = export(&p, format, extra);
        let root = std::fs::canonicalize(p.path()).expect("canonical root");
        let text = format!(
            "--- stdout\n{stdout}--- stderr\n{stderr}--- files\n{}",
            transcript(&p.join("out"), &root)
        );
        insta::assert_snapshot!(format!("export_{format}"), text);
    }
}

#[test]
fn systemd_user_units_snapshot() {
    let p = fixture();
    export_with(&p, "systemd", "web=1", &["--user-units"]);
    let root = std::fs::canonicalize(p.path()).expect("canonical root");
    insta::assert_snapshot!(transcript(&p.join("out"), &root));
}

#[test]
fn procfile_example_exports_with_one_command() {
    // What the README promises: the example app, one command per target.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for format in &export_support::FORMATS {
        let out = tempfile::tempdir().expect("temp dir");
        let dir = out.path().join(format);
        let mut cmd = support::procrun();
        cmd.current_dir(repo).args([
            "export",
            format,
            dir.to_str().expect("utf-8"),
            "-f",
            "Procfile.example",
            "-e",
            ".env.example",
        ]);
        if *format == "kubernetes" {
            cmd.args(["--image", "example/app:1"]);
        }
        cmd.assert().success();
        assert!(
            std::fs::read_dir(&dir).expect("written").count() > 1,
            "{format}"
        );
    }
}

#[test]
fn unknown_format_lists_the_known_ones() {
    let p = fixture();
    let out = p
        .procrun()
        .args(["export", "upstart", "out"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for format in &export_support::FORMATS {
        assert!(stderr.contains(format), "{stderr}");
    }
    assert!(!p.join("out").exists());
}

#[test]
fn kubernetes_needs_an_image_and_writes_nothing_without() {
    let p = fixture();
    let out = p
        .procrun()
        .args(["export", "kubernetes", "out"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("--image"), "{stderr}");
    assert!(!p.join("out").exists());
}

#[test]
fn runit_rejects_a_value_it_would_truncate() {
    let p = fixture().file(".env", "TRAILING='x '\nEMPTY=\n");
    let out = p
        .procrun()
        .args(["export", "runit", "out"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("TRAILING ends in a blank"), "{stderr}");
    assert!(stderr.contains("EMPTY is empty"), "{stderr}");
    assert!(!p.join("out").exists());
}

#[test]
fn launchd_rejects_control_characters_xml_cannot_hold() {
    let p = fixture().file(".env", "BELL=\"a\\u0007\"\nESC='\u{1b}[0m'\n");
    let out = p
        .procrun()
        .args(["export", "launchd", "out"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("ESC contains a control character"),
        "{stderr}"
    );
}

#[test]
fn unwritable_output_dir_is_an_error() {
    let p = fixture().file("blocker", "a file, not a directory");
    let out = p
        .procrun()
        .args(["export", "systemd", "blocker/out"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("error: cannot create the output directory"),
        "{stderr}"
    );
}

#[test]
fn a_failed_write_leaves_the_previous_export_intact() {
    let p = fixture();
    export(&p, "systemd", &[]);
    let unit = p.join("out/shop-web-1.service");
    let before = std::fs::read_to_string(&unit).expect("unit written");
    // A directory where a new unit must go makes the write fail.
    std::fs::create_dir(p.join("out/shop-web-3.service")).expect("mkdir");
    let out = p
        .procrun()
        .args(["export", "systemd", "out", "-m", "web=3", "--app", "shop"])
        .args(["-p", "6000"])
        .assert()
        .code(1);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(stderr.contains("error: "), "{stderr}");
    assert_eq!(std::fs::read_to_string(&unit).expect("still there"), before);
    let leftovers: Vec<_> = std::fs::read_dir(p.join("out"))
        .expect("read")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".procrun-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn re_export_removes_what_is_no_longer_exported() {
    let p = fixture();
    export(&p, "runit", &[]);
    assert!(p.join("out/shop-web-2/env/QUOTES").exists());
    std::fs::write(p.join("mine.txt"), "").expect("write");
    std::fs::write(p.join("out/notes.txt"), "the user's own file").expect("write");
    // runsv's own state inside a service that will go away.
    std::fs::create_dir(p.join("out/shop-web-2/supervise")).expect("mkdir");
    let p = p.file(".env", "ONLY=1\n");
    let out = p
        .procrun()
        .args(["export", "runit", "out", "-m", "web=1", "--app", "shop"])
        .assert()
        .success();
    assert!(p.join("out/shop-web-1/env/ONLY").exists());
    assert!(!p.join("out/shop-web-1/env/QUOTES").exists());
    assert!(!p.join("out/shop-web-2/run").exists());
    assert!(!p.join("out/shop-web-2/env").exists());
    assert!(!p.join("out/shop-worker-1").exists());
    assert!(p.join("out/notes.txt").exists());
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("shop-web-2` is no longer part of the export"),
        "{stderr}"
    );
    assert!(!stderr.contains("shop-worker-1"), "{stderr}");
}

#[test]
fn options_come_from_the_environment_too() {
    let p = fixture();
    p.procrun()
        .args(["export", "kubernetes", "out"])
        .env("PROCRUN_IMAGE", "img:2")
        .env("PROCRUN_APP", "envapp")
        .env("PROCRUN_FORMATION", "web=3")
        .assert()
        .success();
    let yaml = std::fs::read_to_string(p.join("out/envapp.yaml")).expect("written");
    assert!(yaml.contains("image: \"img:2\""), "{yaml}");
    assert!(yaml.contains("replicas: 3"), "{yaml}");
}

#[test]
fn default_output_dir_and_app_name() {
    let p = fixture();
    let out = p.procrun().args(["export", "compose"]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).into_owned();
    assert!(stdout.contains("wrote 1 file to compose:"), "{stdout}");
    let yaml = std::fs::read_to_string(p.join("compose/compose.yaml")).expect("written");
    let root = std::fs::canonicalize(p.path()).expect("root");
    let expected = export::default_name(&root);
    assert!(yaml.contains(&format!("name: \"{expected}\"")), "{yaml}");
    assert!(yaml.contains("build: \"..\""), "{yaml}");
}

mod export {
    pub fn default_name(root: &std::path::Path) -> String {
        procrun::export::default_app_name(root)
    }
}

/// The options of the pure render tests: fixed paths, app `shop`.
fn pure_options() -> procrun::export::ExportOptions {
    use std::path::PathBuf;
    procrun::export::ExportOptions {
        app: "shop".into(),
        user: None,
        log_dir: Some(PathBuf::from("/var/log/shop")),
        image: Some("registry.example.com/shop:2.0".into()),
        user_units: false,
        output_dir: PathBuf::from("/srv/shop/deploy"),
    }
}

/// The pure renderers on a plan with a fixed root, no binary or file
/// system involved: the same fixture, stable paths.
#[test]
fn pure_renderers_snapshot() {
    use procrun::cli::ExportFormat;
    use procrun::export::{FileKind, render};
    use std::path::PathBuf;

    let procfile =
        procrun::procfile::parse(Path::new("Procfile"), export_support::PROCFILE).expect("parses");
    let env = procrun::env::parse(".env", export_support::ENV, &|_| None).expect("parses");
    let request = procrun::plan::PlanRequest {
        formation: procrun::formation::parse(export_support::FORMATION).expect("parses"),
        selected: vec![],
        port: Some(8000),
        root: PathBuf::from("/srv/shop"),
    };
    let plan = procrun::plan::build(&procfile, &env, &request, &|_| None).expect("plans");
    let options = pure_options();
    for format in [
        ExportFormat::Systemd,
        ExportFormat::Supervisord,
        ExportFormat::Runit,
        ExportFormat::Launchd,
        ExportFormat::Compose,
        ExportFormat::Kubernetes,
    ] {
        let files = render(format, &plan, &options);
        let mut text = String::new();
        for f in &files {
            let kind = match f.kind {
                FileKind::File => "file",
                FileKind::Private => "private",
                FileKind::Executable => "executable",
                FileKind::Dir => "dir",
            };
            text.push_str(&format!(
                "=== {} ({kind})\n{}\n",
                f.path,
                f.contents.replace('\0', "\\0")
            ));
        }
        insta::assert_snapshot!(
            format!("pure_{}", procrun::export::format_name(format)),
            text
        );
    }
}

#[test]
fn option_conflicts_and_unusable_names_are_errors() {
    let p = fixture();
    let cases: &[(&[&str], &str)] = &[
        (
            &["systemd", "out", "--user-units", "--user", "deploy"],
            "--user cannot be used with --user-units",
        ),
        (
            &["systemd", "out", "--app", "my app"],
            "`my app` is not usable as an app name",
        ),
        (
            &["runit", "out", "--user", "x;id"],
            "`x;id` is not usable as a user name",
        ),
    ];
    for (args, message) in cases {
        let out = p.procrun().arg("export").args(*args).assert().code(2);
        let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
    let p = fixture().file(".env", "A.B=1\n");
    let out = p
        .procrun()
        .args(["export", "supervisord", "out"])
        .assert()
        .code(2);
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    assert!(
        stderr.contains("`A.B` is not a shell variable name"),
        "{stderr}"
    );
    assert!(!p.join("out").exists());
}

#[test]
fn procfile_and_env_warnings_are_shown_once() {
    // `web:cmd` (no blank after the colon) warns in the Procfile, a key set
    // twice warns in the env file; the export adds its own for `-t`, and
    // that runit restarts what procrun would not.
    let p = Project::with_procfile("web:sleep 1000\n").file(".env", "A=1\nA=2\n");
    let out = p
        .procrun()
        .args(["export", "runit", "out", "-t", "3"])
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    for warning in [
        "no blank after the `:` of `web`",
        "`A` is set twice in `.env`",
        "runit cannot carry `web`'s stop_timeout = 3",
        "runit cannot carry `web`'s restart = \"no\"",
    ] {
        assert_eq!(stderr.matches(warning).count(), 1, "{warning}: {stderr}");
    }
    assert_eq!(stderr.matches("warning:").count(), 4, "{stderr}");
}

/// Every format on a plan whose types carry policies: what each writes
/// (snapshots) and the warnings for what its engine cannot carry, each
/// naming the type and the key.
#[test]
fn policies_are_mapped_or_warned_per_format() {
    use procrun::cli::ExportFormat;
    use procrun::export::{check, format_name, render};

    let plan = export_support::policy_plan(Path::new("/srv/shop"), 8000);
    let options = pure_options();
    let mut warnings = String::new();
    for format in <ExportFormat as clap::ValueEnum>::value_variants()
        .iter()
        .copied()
    {
        let name = format_name(format);
        let found = check(format, &plan, &options);
        assert!(!found.iter().any(|d| d.is_error()), "{name}: {found:?}");
        warnings.push_str(&format!("=== {name}\n"));
        for d in &found {
            warnings.push_str(&format!("{}\n", d.message));
        }
        let files = render(format, &plan, &options);
        let mut text = String::new();
        for f in &files {
            text.push_str(&format!(
                "=== {} ({:?})\n{}\n",
                f.path,
                f.kind,
                f.contents.replace('\0', "\\0")
            ));
        }
        insta::assert_snapshot!(format!("policies_{name}"), text);
    }
    insta::assert_snapshot!("policies_warnings", warnings);
}

/// `procrun.toml` through the binary gives every format exactly the export
/// of the same policies set in code (export_support::policy_plan).
#[test]
fn procrun_toml_policies_reach_every_format() {
    use procrun::cli::ExportFormat;
    use procrun::export::{ExportOptions, FileKind, format_name, render};

    let p = fixture().file("procrun.toml", export_support::POLICY_CONFIG);
    let root = std::fs::canonicalize(p.path()).expect("canonical");
    let plan = export_support::policy_plan(&root, 5000);
    let image = "registry.example.com/shop:1.0";
    for format in <ExportFormat as clap::ValueEnum>::value_variants()
        .iter()
        .copied()
    {
        let name = format_name(format);
        let out = format!("out-{name}");
        p.procrun()
            .args([
                "export", &name, &out, "--app", "shop", "-p", "5000", "--image", image,
            ])
            .args(["-m", export_support::POLICY_FORMATION])
            .assert()
            .success();
        let options = ExportOptions {
            app: "shop".into(),
            user: None,
            log_dir: None,
            image: Some(image.into()),
            user_units: false,
            output_dir: root.join(&out),
        };
        for f in render(format, &plan, &options) {
            if f.kind == FileKind::Dir {
                continue;
            }
            let written = std::fs::read_to_string(root.join(&out).join(&f.path)).expect("written");
            assert_eq!(written, f.contents, "{name}: {}", f.path);
        }
    }
}

/// The readiness fixture (every kind of check, `after` with one-shots)
/// through the binary in every format: what each writes for `ready` and
/// `after` (snapshots; runit and launchd write nothing for them) and the
/// warnings for what its engine cannot carry. Their engines run these
/// exports in tests/export_engines_ready.rs.
#[test]
fn readiness_is_mapped_or_warned_per_format() {
    for format in &export_support::FORMATS {
        let p = Project::new();
        export_support::write_ready_app(p.path(), "/srv/marks");
        let (stdout, stderr) = export_with(
            &p,
            format,
            "all=1",
            &["--image", "registry.example.com/shop:1.0"],
        );
        let root = std::fs::canonicalize(p.path()).expect("canonical root");
        let files = match *format {
            "runit" | "launchd" => String::new(),
            _ => transcript(&p.join("out"), &root),
        };
        let text = format!("--- stdout\n{stdout}--- stderr\n{stderr}--- files\n{files}");
        insta::assert_snapshot!(format!("readiness_{format}"), text);
    }
}
