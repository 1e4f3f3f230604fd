//! Every export format on its real engine or validator, with the hostile
//! fixture of tests/export_support: supervisord and runit run the exports
//! and their web instances answer with exactly the env, arguments and
//! working directory they should have; systemd units pass
//! `systemd-analyze verify` (exit 0 and empty stderr) and boot in
//! `systemd-nspawn`; Kubernetes manifests pass `kubernetes-validate --strict`
//! and compose files `docker compose config`, both plus checks no schema can
//! make; launchd plists parse with the right keys and types.
//!
//! The engines are installed by `.ci/install-export-engines`. A test whose
//! engine is missing is reported as ignored, with the reason, and counted
//! in the summary, except under `CI=true`, where it runs and fails (see
//! [`engines::run_tests`]; this file has its own `main`). Every wait is bounded and polls for a state; only processes
//! these tests start are signalled.
//!
//! The helpers they share are in tests/engines/mod.rs. The tests stay in
//! this one file (about 500 lines): each is one engine's whole scenario,
//! read top to bottom, and splitting them would only rename them.

mod engines;
mod export_support;
mod support;

use engines::EngineTest;

fn main() -> std::process::ExitCode {
    let rsv = &["runsvdir", "sv", "chpst", "svlogd"][..];
    let k8s = &["kubernetes-validate", "python"][..];
    let compose = &["docker-compose", "python3"][..];
    engines::run_tests(&[
        EngineTest::new(
            "supervisord_runs_the_export",
            &["supervisord", "supervisorctl"],
            supervisord_runs_the_export,
        ),
        EngineTest::new(
            "supervisord_config_loads_in_supervisors_own_parser",
            &["supervisord"],
            supervisord_config_loads_in_supervisors_own_parser,
        ),
        EngineTest::new("runit_runs_the_export", rsv, runit_runs_the_export),
        EngineTest::new(
            "systemd_units_verify_cleanly",
            &["systemd-analyze"],
            systemd_units_verify_cleanly,
        ),
        EngineTest::new(
            "systemd_boots_the_export_in_nspawn",
            &["systemd-nspawn", "nsenter", "timeout"],
            systemd_boots_the_export_in_nspawn,
        )
        .also(needs_root),
        EngineTest::new(
            "kubernetes_manifests_validate_strictly",
            k8s,
            kubernetes_manifests_validate_strictly,
        ),
        EngineTest::new(
            "compose_file_passes_docker_compose_config",
            compose,
            compose_file_passes_docker_compose_config,
        ),
        EngineTest::new(
            "compose_file_passes_the_compose_spec_schema",
            &["check-jsonschema"],
            compose_file_passes_the_compose_spec_schema,
        ),
        EngineTest::new(
            "launchd_plists_parse_with_the_required_keys",
            &["python3"],
            launchd_plists_parse_with_the_required_keys,
        ),
        EngineTest::new(
            "policies_pass_systemd_analyze_verify",
            &["systemd-analyze"],
            policies_pass_systemd_analyze_verify,
        ),
        EngineTest::new(
            "policies_load_in_supervisors_own_parser",
            &["supervisord"],
            policies_load_in_supervisors_own_parser,
        ),
        EngineTest::new(
            "policies_pass_kubernetes_validate",
            k8s,
            policies_pass_kubernetes_validate,
        ),
        EngineTest::new(
            "policies_pass_docker_compose_config",
            compose,
            policies_pass_docker_compose_config,
        ),
        EngineTest::new(
            "policies_parse_in_plistlib",
            &["python3"],
            policies_parse_in_plistlib,
        ),
        EngineTest::new(
            "runit_control_t_sends_the_stop_signal",
            rsv,
            runit_control_t_sends_the_stop_signal,
        ),
    ])
}

/// systemd-nspawn boots a container only for root.
fn needs_root() -> Result<(), String> {
    if is_root() {
        Ok(())
    } else {
        Err("needs root".to_owned())
    }
}

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use engines::{
    Container, Engine, exported, free_base_port, gone, http_get, inspect, is_root, lookup, run,
    wait_until, web_script, webs_answer, worker_line, worker_logged,
};
use export_support::{EXPECTED_ENV, expected_self};

fn supervisord_runs_the_export(tools: &[PathBuf]) {
    let base = free_base_port(&[0, 1, 100]);
    let (_p, root, out) = exported("supervisord", base, &[]);
    let conf = out.join("supervisord.conf");
    let ctl = |args: &[&str]| run(Command::new(&tools[1]).arg("-c").arg(&conf).args(args));

    let started = Instant::now();
    let mut engine = Engine::spawn(
        "supervisord",
        Command::new(&tools[0])
            .arg("-n")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let mut status = String::new();
    let all_running = wait_until(Duration::from_secs(30), || {
        status = ctl(&["status"]).1;
        status.lines().filter(|l| l.contains(" RUNNING ")).count() == 3
    });
    assert!(all_running, "not every program is RUNNING:\n{status}");
    // supervisorctl's exit code is 0 even in BACKOFF: read the states.
    assert_eq!(status.lines().count(), 3, "unexpected programs:\n{status}");
    for name in ["shop:shop-web-1", "shop:shop-web-2", "shop:shop-worker-1"] {
        assert!(status.contains(name), "{name} missing:\n{status}");
    }
    webs_answer(base, &root);
    worker_logged(&out.join("log/shop-worker-1.log"), base);
    let pids: Vec<i32> = ctl(&["pid", "all"])
        .1
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(pids.len(), 3, "pids: {pids:?}");

    let (code, stdout, stderr) = ctl(&["shutdown"]);
    assert_eq!(code, 0, "shutdown: {stdout}{stderr}");
    let exit = engine.wait(Duration::from_secs(20));
    assert!(
        exit.is_some_and(|s| s.success()),
        "supervisord did not exit cleanly: {exit:?}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || pids.iter().all(|p| gone(*p))),
        "programs outlived supervisord: {pids:?}"
    );
    eprintln!(
        "supervisord: up, checked and down in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn supervisord_config_loads_in_supervisors_own_parser(_tools: &[PathBuf]) {
    let (_p, _root, out) = exported("supervisord", 5000, &[]);
    let script = r#"
import sys
from supervisor.options import ServerOptions
o = ServerOptions()
o.realize(args=["-c", sys.argv[1]])
for g in o.process_group_configs:
    for p in g.process_configs:
        print(g.name, p.name, sorted(p.environment or {}))
"#;
    let (code, stdout, stderr) = run(Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(out.join("supervisord.conf")));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "shop shop-web-1 ['PS']\nshop shop-web-2 ['PS']\nshop shop-worker-1 ['PS']\n"
    );
}

fn runit_runs_the_export(tools: &[PathBuf]) {
    let base = free_base_port(&[0, 1, 100]);
    let (_p, root, out) = exported("runit", base, &[]);
    let services: Vec<PathBuf> = ["shop-web-1", "shop-web-2", "shop-worker-1"]
        .iter()
        .map(|s| out.join(s))
        .collect();
    let sv = |args: &[&str]| run(Command::new(&tools[1]).args(args).args(&services));

    let started = Instant::now();
    let mut engine = Engine::spawn(
        "runsvdir",
        Command::new(&tools[0])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let mut status = String::new();
    let all_up = wait_until(Duration::from_secs(30), || {
        status = sv(&["status"]).1;
        // Up for a second or more, with the log service up too.
        status
            .lines()
            .filter(|l| l.starts_with("run: ") && l.contains("; run: log:") && !l.contains(") 0s;"))
            .count()
            == 3
    });
    assert!(all_up, "not every service is up:\n{status}");
    webs_answer(base, &root);
    worker_logged(&out.join("shop-worker-1/log/main/current"), base);
    let pids: Vec<i32> = status
        .lines()
        .filter_map(|l| {
            let rest = l.split_once("(pid ")?.1;
            rest.split_once(')')?.0.parse().ok()
        })
        .collect();
    assert_eq!(pids.len(), 3, "{status}");

    let (code, stdout, stderr) = sv(&["-w", "10", "down"]);
    assert_eq!(code, 0, "sv down: {stdout}{stderr}");
    // The runsv that supervise now: runsvdir rescans its folder every few
    // seconds and may start new ones for services it still sees.
    let runsvs = engines::runsvs(engine.pid());
    let (code, stdout, stderr) = sv(&["exit"]);
    assert_eq!(code, 0, "sv exit: {stdout}{stderr}");
    assert!(
        wait_until(Duration::from_secs(10), || pids.iter().all(|p| gone(*p))),
        "processes outlived sv down: {pids:?}"
    );
    // runsvdir exits (111) on HUP once its runsv are gone.
    assert!(
        wait_until(Duration::from_secs(10), || runsvs.iter().all(|p| gone(*p))),
        "runsv still running after sv exit"
    );
    engine.signal(libc::SIGHUP);
    let exit = engine.wait(Duration::from_secs(10));
    assert!(exit.is_some(), "runsvdir did not exit on HUP");
    eprintln!(
        "runit: up, checked and down in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn systemd_units_verify_cleanly(tools: &[PathBuf]) {
    for extra in [&[][..], &["--user-units"][..]] {
        let (_p, _root, out) = exported("systemd", 5000, extra);
        let units = engines::systemd_units(&out);
        assert_eq!(units.len(), 6, "{units:?}");
        let mut cmd = Command::new(&tools[0]);
        let runtime = tempfile::tempdir().expect("temp dir");
        if extra.contains(&"--user-units") {
            // The user manager needs a runtime directory, even offline.
            cmd.arg("--user").env("XDG_RUNTIME_DIR", runtime.path());
        }
        let (code, stdout, stderr) = run(cmd.args(["verify", "--man=no"]).args(&units));
        // Warnings exit 0 too, so stderr must be empty.
        assert_eq!(
            (code, stderr.as_str()),
            (0, ""),
            "systemd-analyze verify {extra:?}:\n{stdout}{stderr}"
        );
    }
}

fn systemd_boots_the_export_in_nspawn(tools: &[PathBuf]) {
    let base = free_base_port(&[0, 1, 100]);
    let (_p, root, out) = exported("systemd", base, &[]);
    let started = Instant::now();
    let container = Container::boot(tools, &out, &root, "shop.target");
    let in_ct = |args: &[&str]| container.run(args);
    let units = [
        "shop.target",
        "shop-web.target",
        "shop-worker.target",
        "shop-web-1.service",
        "shop-web-2.service",
        "shop-worker-1.service",
    ];
    let mut states = String::new();
    let active = wait_until(Duration::from_secs(30), || {
        let mut args = vec!["systemctl", "is-active"];
        args.extend(units);
        states = in_ct(&args).1;
        states.lines().filter(|l| *l == "active").count() == units.len()
    });
    if !active {
        let listing = in_ct(&["systemctl", "--no-pager", "status", "shop*"]).1;
        panic!(
            "not every unit is active:\n{states}\n{listing}\n{}",
            container.log()
        );
    }
    webs_answer(base, &root);
    let journal = in_ct(&["journalctl", "--no-pager", "-u", "shop-worker-1.service"]).1;
    let want = worker_line(base);
    assert!(
        journal.contains(&want),
        "journal lacks {want:?}:\n{journal}"
    );

    let (exit, log) = container.halt();
    assert!(
        exit.is_some_and(|s| s.success()),
        "nspawn did not halt cleanly: {exit:?}\n{log}",
    );
    assert!(
        wait_until(Duration::from_secs(5), || http_get(base).is_none()),
        "web still answers after the container halted"
    );
    eprintln!(
        "systemd-nspawn: booted, checked and halted in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn kubernetes_manifests_validate_strictly(tools: &[PathBuf]) {
    let (_p, _root, out) = exported(
        "kubernetes",
        5000,
        &["--image", "registry.example.com/shop:1.0"],
    );
    let manifest = out.join("shop.yaml");
    let (code, stdout, stderr) = run(Command::new(&tools[0]).arg("--strict").arg(&manifest));
    assert_eq!(code, 0, "{stdout}{stderr}");
    // An unknown kind or apiVersion is only a WARN with exit 0.
    assert!(
        !stdout.contains("WARN") && !stderr.contains("WARN"),
        "{stdout}{stderr}"
    );
    assert_eq!(
        stdout.matches(" passed for resource ").count(),
        5,
        "{stdout}"
    );

    // What the schema can't check: replicas, selectors, values, commands.
    let lines = inspect(&tools[1], "k8s", &[&manifest]);
    for (name, replicas) in [("shop-web", "2"), ("shop-worker", "1"), ("shop-clock", "0")] {
        assert_eq!(
            lookup(&lines, "deployment", name, "replicas"),
            Some(replicas),
            "{name}"
        );
    }
    assert_eq!(lookup(&lines, "service", "shop-web", "-"), Some("shop-web"));
    assert_eq!(lookup(&lines, "port", "shop-web", "-"), Some("5000"));
    for (key, want) in EXPECTED_ENV {
        assert_eq!(
            lookup(&lines, "config", "shop-env", key),
            Some(*want),
            "{key}"
        );
    }
    assert_eq!(lookup(&lines, "env", "shop-web", "PORT"), Some("5000"));
    assert_eq!(lookup(&lines, "env", "shop-worker", "PORT"), Some("5100"));
    // A value that refers to PORT and PS, expanded per type; the kubelet
    // turns `$$` into `$` in `env:` values.
    for (name, port, ps) in [("shop-web", 5000, "web"), ("shop-worker", 5100, "worker")] {
        assert_eq!(
            lookup(&lines, "env", name, "SELF").map(|v| v.replace("$$", "$")),
            Some(expected_self(port, ps)),
            "{name}"
        );
        assert_eq!(lookup(&lines, "config", "shop-env", "SELF"), None);
    }
    // The kubelet turns `$$` into `$` in a command.
    let script = lookup(&lines, "command", "shop-web", "2").expect("command");
    assert_eq!(script.replace("$$", "$"), web_script());
}

/// The compose-spec schema, beside `docker compose config` (and where
/// Docker is not installed).
fn compose_file_passes_the_compose_spec_schema(tools: &[PathBuf]) {
    let (_p, _root, out) = exported("compose", 5000, &[]);
    let (code, stdout, stderr) = run(Command::new(&tools[0])
        .args(["--builtin-schema", "vendor.compose-spec"])
        .arg(out.join("compose.yaml")));
    assert_eq!(code, 0, "{stdout}{stderr}");
}

fn compose_file_passes_docker_compose_config(tools: &[PathBuf]) {
    let (_p, root, out) = exported("compose", 5000, &[]);
    let file = out.join("compose.yaml");
    let lines = engines::compose_config(tools, &root, &file);
    for (name, replicas) in [("web", "2"), ("worker", "1"), ("clock", "0")] {
        assert_eq!(
            lookup(&lines, "service", name, "replicas"),
            Some(replicas),
            "{name}"
        );
    }
    // `config` prints the model re-escaped (`$` as `$$`), so a value that
    // Compose interpolated would differ here; undo the escape to compare.
    let unescaped = |v: Option<&str>| v.map(|v| v.replace("$$", "$"));
    for (key, want) in EXPECTED_ENV {
        assert_eq!(
            unescaped(lookup(&lines, "env", "web", key)).as_deref(),
            Some(*want),
            "{key}"
        );
    }
    assert_eq!(lookup(&lines, "env", "web", "PORT"), Some("5000"));
    assert_eq!(
        unescaped(lookup(&lines, "env", "web", "SELF")),
        Some(expected_self(5000, "web"))
    );
    assert_eq!(
        unescaped(lookup(&lines, "env", "worker", "SELF")),
        Some(expected_self(5100, "worker"))
    );
    assert_eq!(lookup(&lines, "port", "web", "-"), Some("5000"));
    assert_eq!(
        unescaped(lookup(&lines, "command", "web", "2")),
        Some(web_script())
    );
}

fn launchd_plists_parse_with_the_required_keys(tools: &[PathBuf]) {
    let (_p, root, out) = exported("launchd", 5000, &[]);
    let plists: Vec<PathBuf> = ["shop-web-1", "shop-web-2", "shop-worker-1"]
        .iter()
        .map(|l| out.join(format!("{l}.plist")))
        .collect();
    let refs: Vec<&Path> = plists.iter().map(PathBuf::as_path).collect();
    let lines = inspect(&tools[0], "plist", &refs);
    for (key, want) in EXPECTED_ENV {
        assert_eq!(
            lookup(&lines, "env", "shop-web-2", key),
            Some(*want),
            "{key}"
        );
    }
    assert_eq!(lookup(&lines, "env", "shop-web-2", "PORT"), Some("5001"));
    assert_eq!(lookup(&lines, "env", "shop-web-2", "PS"), Some("web.2"));
    assert_eq!(
        lookup(&lines, "env", "shop-web-2", "SELF"),
        Some(expected_self(5001, "web.2").as_str())
    );
    assert_eq!(
        lookup(&lines, "command", "shop-web-1", "0"),
        Some("/bin/sh")
    );
    assert_eq!(
        lookup(&lines, "command", "shop-web-1", "2"),
        Some(web_script().as_str())
    );
    let root_text = root.display().to_string();
    assert_eq!(
        lookup(&lines, "cwd", "shop-web-1", "-"),
        Some(root_text.as_str())
    );
}

/// A plan whose types carry policies (what `procrun.toml` sets), rendered
/// by the library into a fresh folder: its files and that folder.
fn policy_export(format: procrun::cli::ExportFormat) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical");
    export_support::write_app(&root);
    let plan = export_support::policy_plan(&root, 5000);
    let out = root.join("out");
    let options = procrun::export::ExportOptions {
        app: "shop".into(),
        user: None,
        log_dir: None,
        image: Some("registry.example.com/shop:1.0".into()),
        user_units: false,
        output_dir: out.clone(),
    };
    let found = procrun::export::check(format, &plan, &options);
    assert!(!found.iter().any(|d| d.is_error()), "{found:?}");
    let files = procrun::export::render(format, &plan, &options);
    procrun::export::write_all(&out, &options.app, &files).expect("writes");
    (dir, out)
}

fn policies_pass_systemd_analyze_verify(tools: &[PathBuf]) {
    let (_dir, out) = policy_export(procrun::cli::ExportFormat::Systemd);
    let units = engines::systemd_units(&out);
    let (code, stdout, stderr) = run(Command::new(&tools[0])
        .args(["verify", "--man=no"])
        .args(&units));
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}{stderr}");
    let web = std::fs::read_to_string(out.join("shop-web-1.service")).expect("unit");
    for line in [
        "Restart=always",
        "RestartSec=2",
        "StartLimitIntervalSec=0",
        "KillSignal=SIGINT",
        "TimeoutStopSec=7",
    ] {
        assert!(web.lines().any(|l| l == line), "{line} in\n{web}");
    }
    let worker = std::fs::read_to_string(out.join("shop-worker-1.service")).expect("unit");
    for line in [
        "Restart=on-failure",
        "StartLimitBurst=4",
        "StartLimitIntervalSec=12",
        "TimeoutStopSec=1500ms",
    ] {
        assert!(worker.lines().any(|l| l == line), "{line} in\n{worker}");
    }
    assert!(!worker.contains("Environment=\"PORT="), "{worker}");
    let clock = std::fs::read_to_string(out.join("shop-clock-1.service")).expect("unit");
    assert!(clock.lines().any(|l| l == "Restart=no"), "{clock}");
}

fn policies_load_in_supervisors_own_parser(_tools: &[PathBuf]) {
    let (_dir, out) = policy_export(procrun::cli::ExportFormat::Supervisord);
    let script = r#"
import sys
from supervisor.options import ServerOptions
o = ServerOptions()
o.realize(args=["-c", sys.argv[1]])
for g in o.process_group_configs:
    for p in g.process_configs:
        print(p.name, getattr(p.autorestart, "__name__", p.autorestart),
              p.exitcodes, p.startsecs, p.startretries, p.stopsignal, p.stopwaitsecs,
              "PORT=$((" in p.command)
"#;
    let (code, stdout, stderr) = run(Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(out.join("supervisord.conf")));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        stdout,
        format!(
            "shop-web-1 RestartUnconditionally [0] 5 {m} 2 7 True\n\
             shop-web-2 RestartUnconditionally [0] 5 {m} 2 7 True\n\
             shop-worker-1 RestartWhenExitUnexpected [0] 2 3 15 2 False\n\
             shop-clock-1 False [0] 0 0 15 5 False\n",
            m = i32::MAX
        )
    );
}

fn policies_pass_kubernetes_validate(tools: &[PathBuf]) {
    let (_dir, out) = policy_export(procrun::cli::ExportFormat::Kubernetes);
    let manifest = out.join("shop.yaml");
    let (code, stdout, stderr) = run(Command::new(&tools[0]).arg("--strict").arg(&manifest));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        !stdout.contains("WARN") && !stderr.contains("WARN"),
        "{stdout}{stderr}"
    );
    let lines = inspect(&tools[1], "k8s", &[&manifest]);
    // The one-shot `clock` (restart = "no", can_die) is a Job.
    assert_eq!(lookup(&lines, "policy", "shop-clock", "kind"), Some("Job"));
    assert_eq!(
        lookup(&lines, "policy", "shop-clock", "restartPolicy"),
        Some("Never")
    );
    assert_eq!(
        lookup(&lines, "policy", "shop-clock", "backoffLimit"),
        Some("0")
    );
    assert_eq!(lookup(&lines, "policy", "shop-web", "grace"), Some("7"));
    assert_eq!(lookup(&lines, "policy", "shop-worker", "grace"), Some("2"));
    assert_eq!(lookup(&lines, "env", "shop-web", "PORT"), Some("5000"));
    assert_eq!(lookup(&lines, "env", "shop-worker", "PORT"), None);
    assert_eq!(lookup(&lines, "port", "shop-worker", "-"), None);
}

fn policies_pass_docker_compose_config(tools: &[PathBuf]) {
    let (dir, out) = policy_export(procrun::cli::ExportFormat::Compose);
    let config_dir = dir.path().join("docker-config");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    let (code, json, stderr) = run(Command::new(&tools[0])
        .env("DOCKER_CONFIG", &config_dir)
        .env_remove("COMPOSE_PROJECT_NAME")
        .env_remove("COMPOSE_FILE")
        .arg("-f")
        .arg(out.join("compose.yaml"))
        .args(["config", "--format", "json"]));
    assert_eq!(code, 0, "{stderr}");
    let json_file = dir.path().join("compose.json");
    std::fs::write(&json_file, json).expect("write json");
    let lines = inspect(&tools[1], "compose", &[&json_file]);
    engines::assert_lookups(
        &lines,
        "policy",
        &[
            ("web", "restart", "always"),
            ("web", "stop_signal", "SIGINT"),
            ("web", "stop_grace_period", "7s"),
            ("worker", "restart", "on-failure:3"),
            ("worker", "stop_grace_period", "1.5s"),
            ("clock", "restart", "no"),
        ],
    );
    assert_eq!(lookup(&lines, "env", "worker", "PORT"), None);
    assert_eq!(lookup(&lines, "env", "web", "PORT"), Some("5000"));
}

fn policies_parse_in_plistlib(tools: &[PathBuf]) {
    let (_dir, out) = policy_export(procrun::cli::ExportFormat::Launchd);
    let plists: Vec<PathBuf> = ["shop-web-1", "shop-worker-1", "shop-clock-1"]
        .iter()
        .map(|l| out.join(format!("{l}.plist")))
        .collect();
    let refs: Vec<&Path> = plists.iter().map(PathBuf::as_path).collect();
    let lines = inspect(&tools[0], "plist", &refs);
    engines::assert_lookups(
        &lines,
        "policy",
        &[
            ("shop-web-1", "KeepAlive", "True"),
            ("shop-web-1", "ExitTimeOut", "7"),
            ("shop-web-1", "ThrottleInterval", "2"),
            (
                "shop-worker-1",
                "KeepAlive",
                "Crashed=True,SuccessfulExit=False",
            ),
            ("shop-worker-1", "ExitTimeOut", "2"),
            ("shop-clock-1", "KeepAlive", "False"),
        ],
    );
    assert_eq!(lookup(&lines, "env", "shop-worker-1", "PORT"), None);
}

/// runit's `control/t` stops a type with its own stop signal: `sv down`
/// makes runsv run it instead of sending SIGTERM.
fn runit_control_t_sends_the_stop_signal(tools: &[PathBuf]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = std::fs::canonicalize(dir.path()).expect("canonical");
    let marker = root.join("marker");
    let procfile = procrun::procfile::parse(
        Path::new("Procfile"),
        "t: trap 'echo INT > \"$M\"; exit 0' INT; trap 'echo TERM > \"$M\"; exit 0' TERM; echo up > \"$M\"; while :; do sleep 0.1; done\n",
    )
    .expect("parses");
    let env = procrun::env::parse(".env", &format!("M={}\n", marker.display()), &|_| None)
        .expect("parses");
    let request = procrun::plan::PlanRequest {
        formation: procrun::formation::Formation::default(),
        selected: vec![],
        port: Some(5000),
        root: root.clone(),
    };
    let mut plan = procrun::plan::build(&procfile, &env, &request, &|_| None).expect("plans");
    for t in &mut plan.types {
        t.policy.stop_signal = nix::sys::signal::Signal::SIGINT;
    }
    for i in &mut plan.instances {
        i.policy.stop_signal = nix::sys::signal::Signal::SIGINT;
    }
    let out = root.join("out");
    let options = procrun::export::ExportOptions {
        app: "p".into(),
        user: None,
        log_dir: None,
        image: None,
        user_units: false,
        output_dir: out.clone(),
    };
    let files = procrun::export::render(procrun::cli::ExportFormat::Runit, &plan, &options);
    procrun::export::write_all(&out, &options.app, &files).expect("writes");
    let service = out.join("p-t-1");
    let sv = |args: &[&str]| run(Command::new(&tools[1]).args(args).arg(&service));
    let mut engine = Engine::spawn(
        "runsvdir",
        Command::new(&tools[0])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let read = || std::fs::read_to_string(&marker).unwrap_or_default();
    assert!(
        wait_until(Duration::from_secs(30), || read() == "up\n"),
        "the service did not start: {:?}",
        sv(&["status"])
    );
    let (code, stdout, stderr) = sv(&["-w", "10", "down"]);
    assert_eq!(code, 0, "sv down: {stdout}{stderr}");
    assert!(
        wait_until(Duration::from_secs(10), || read() != "up\n"),
        "nothing stopped it"
    );
    assert_eq!(read(), "INT\n");
    // The runsv that supervise now: runsvdir rescans its folder every few
    // seconds and may start new ones for services it still sees.
    let runsvs = engines::runsvs(engine.pid());
    let (code, stdout, stderr) = sv(&["exit"]);
    assert_eq!(code, 0, "sv exit: {stdout}{stderr}");
    assert!(
        wait_until(Duration::from_secs(10), || runsvs.iter().all(|p| gone(*p))),
        "runsv still running after sv exit"
    );
    engine.signal(libc::SIGHUP);
    assert!(
        engine.wait(Duration::from_secs(10)).is_some(),
        "runsvdir did not exit on HUP"
    );
}
