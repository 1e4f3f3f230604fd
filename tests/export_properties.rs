//! One property test per format: arbitrary strings in the env value and
//! the command, exported, then read back by the engine's own parser (or,
//! for systemd, a faithful reimplementation of its reader plus
//! `systemd-analyze verify`), must be exactly what procrun meant, or the
//! export must fail; for compose and Kubernetes, also as the command of an
//! `exec` readiness check. Each batch of cases goes through one engine
//! process.

mod engines;
mod export_support;
mod support;
#[path = "engines/systemd_reader.rs"]
mod systemd_reader;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use proptest::prelude::*;
use proptest::strategy::ValueTree as _;
use proptest::test_runner::{Config, TestRunner};

use engines::{find_tool, run};
use procrun::cli::ExportFormat;
use procrun::env::{EnvSet, EnvVar};
use procrun::export::quote::shell_script;
use procrun::export::{ExportOptions, check, render, write_all};
use procrun::plan::{Plan, PortSource, ProcessSpec, ProcessType};
use procrun::policy::Policy;

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
            readiness: Default::default(),
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
            readiness: Default::default(),
        }],
        base_port: 5000,
        port_source: PortSource::Default,
        env,
        warnings: vec![],
    }
}

use systemd_reader::Started;

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
        write_all(&out, &options.app, &render(format, &plan, &options)).expect("writes");
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

use engines::EngineTest;

fn main() -> std::process::ExitCode {
    engines::run_tests(&[
        EngineTest::new(
            "supervisord_reads_back_every_exported_string",
            &["supervisord"],
            supervisord_reads_back_every_exported_string,
        ),
        EngineTest::new(
            "runit_reads_back_every_exported_string",
            &["python3"],
            runit_reads_back_every_exported_string,
        ),
        EngineTest::new(
            "launchd_plistlib_reads_back_every_exported_string",
            &["python3"],
            launchd_plistlib_reads_back_every_exported_string,
        ),
        EngineTest::new(
            "compose_yaml_reads_back_every_exported_string",
            &["python"],
            compose_yaml_reads_back_every_exported_string,
        )
        .also(has_ruamel),
        EngineTest::new(
            "kubernetes_yaml_reads_back_every_exported_string",
            &["python"],
            kubernetes_yaml_reads_back_every_exported_string,
        )
        .also(has_ruamel),
        // The reader needs no engine; `systemd-analyze verify` runs too
        // where it is installed.
        EngineTest::new(
            "systemd_reads_back_every_exported_string",
            &[],
            systemd_reads_back_every_exported_string,
        ),
        EngineTest::new(
            "exec_checks_read_back_in_compose_and_kubernetes",
            &["python"],
            exec_checks_read_back_in_compose_and_kubernetes,
        )
        .also(has_ruamel),
    ])
}

fn sh_c(script: String) -> Vec<String> {
    vec!["/bin/sh".into(), "-c".into(), script]
}

fn supervisord_reads_back_every_exported_string(_tools: &[PathBuf]) {
    property(
        ExportFormat::Supervisord,
        "supervisord",
        Path::new("/usr/bin/python3"),
        |case, out| {
            let mut argv = sh_c(format!(
                "PORT=$((5000 + 1 - 1)) && export PORT && . \"$0\" && {}",
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

fn runit_reads_back_every_exported_string(tools: &[PathBuf]) {
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

fn launchd_plistlib_reads_back_every_exported_string(tools: &[PathBuf]) {
    property(ExportFormat::Launchd, "launchd", &tools[0], |case, _| {
        Started {
            argv: sh_c(shell_script(&case.command)),
            env: env(&[("V", &case.value), ("PORT", "5000"), ("PS", "t.1")]),
        }
    });
}

/// The venv's python has ruamel.yaml (YAML 1.2).
fn has_ruamel() -> Result<(), String> {
    let python = find_tool("python").ok_or("no python")?;
    let (code, _, _) = run(Command::new(&python).args(["-c", "import ruamel.yaml"]));
    if code == 0 {
        Ok(())
    } else {
        Err("ruamel.yaml missing; run .ci/install-export-engines".to_owned())
    }
}

fn compose_yaml_reads_back_every_exported_string(tools: &[PathBuf]) {
    let python = tools[0].as_path();
    // Compose turns `$$` into `$` after parsing the YAML.
    property(ExportFormat::Compose, "compose", python, |case, _| {
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

fn kubernetes_yaml_reads_back_every_exported_string(tools: &[PathBuf]) {
    let python = tools[0].as_path();
    // The kubelet turns `$$` into `$` in a command; ConfigMap values are
    // used as they are.
    property(ExportFormat::Kubernetes, "kubernetes", python, |case, _| {
        Started {
            argv: sh_c(shell_script(&case.command).replace('$', "$$")),
            env: env(&[("V", &case.value), ("PORT", "5000"), ("PS", "t")]),
        }
    });
}

/// The formats that write an `exec` readiness check (as a healthcheck
/// test or a probe's command): arbitrary strings as that command read back
/// exactly, `$` doubled where the engine turns `$$` into `$`, or the
/// export refuses them.
fn exec_checks_read_back_in_compose_and_kubernetes(tools: &[PathBuf]) {
    let python = tools[0].as_path();
    for (format, name) in [
        (ExportFormat::Compose, "compose_ready"),
        (ExportFormat::Kubernetes, "kubernetes_ready"),
    ] {
        let mut accepted = 0;
        for batch in batches(2) {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut exported = Vec::new();
            for (n, case) in batch.iter().enumerate() {
                let out = dir.path().join(format!("case{n}"));
                let mut plan = plan_of(&Case {
                    value: String::new(),
                    command: "x".into(),
                });
                let check = procrun::readiness::Check::Exec(case.command.clone());
                plan.types[0].readiness.check = check.clone();
                plan.instances[0].readiness.check = check;
                let options = ExportOptions {
                    app: "p".into(),
                    user: None,
                    log_dir: None,
                    image: Some("registry.example.com/p:1".into()),
                    user_units: false,
                    output_dir: out.clone(),
                };
                let found = check_plan(format, &plan, &options);
                if case.command.contains('\0') {
                    assert!(found, "{name}: a NUL was not refused: {case:?}");
                    continue;
                }
                assert!(!found, "{name}: refused {case:?}");
                write_all(&out, &options.app, &render(format, &plan, &options)).expect("writes");
                exported.push((case.command.replace('$', "$$"), out));
            }
            let dirs: Vec<&Path> = exported.iter().map(|(_, d)| d.as_path()).collect();
            let found = read_back(python, name, &dirs);
            assert_eq!(found.len(), exported.len());
            for ((command, _), found) in exported.iter().zip(found) {
                let argv = found
                    .unwrap_or_else(|e| panic!("{name}: {command:?}: {e}"))
                    .argv;
                let want: Vec<String> = match format {
                    ExportFormat::Compose => vec!["CMD-SHELL".into(), command.clone()],
                    _ => [sh_c(command.clone()), sh_c(command.clone())].concat(),
                };
                assert_eq!(argv, want, "{name}");
            }
            accepted += exported.len();
        }
        assert!(accepted > 20, "{name}: only {accepted} cases exported");
    }
}

/// Whether `check` finds an error.
fn check_plan(format: ExportFormat, plan: &Plan, options: &ExportOptions) -> bool {
    check(format, plan, options).iter().any(|d| d.is_error())
}

/// systemd reads back every exported string (the reimplementation below),
/// and `systemd-analyze verify` accepts every unit of the batch with
/// nothing on stderr.
fn systemd_reads_back_every_exported_string(_: &[PathBuf]) {
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
            let found = systemd_reader::read_service(&text)
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
