//! The readiness fixture of tests/export_support (every kind of `ready`
//! check, `after` with a one-shot that succeeds and one that fails, an
//! exec check full of quotes, `$`, `%`, `#` and a backslash) on every
//! format's real engine or validator: systemd units pass `systemd-analyze
//! verify` and boot in `systemd-nspawn` in order (a failed one-shot's
//! dependent never starts; dependents stop first); supervisord spawns its
//! programs by priority; runit runs the services; Kubernetes manifests
//! pass `kubernetes-validate --strict` with their probes; compose files
//! pass `docker compose config` with their healthchecks and `depends_on`,
//! and the generated health tests are run for real, with bash and without
//! (BusyBox's `wget`, OpenBSD's `nc`); launchd plists parse.
//!
//! The engines are installed by `.ci/install-export-engines`; a missing
//! one skips its test with a message, except under `CI=true`. Every wait
//! is bounded and polls for a state; only processes these tests start are
//! signalled. The helpers are in tests/engines/mod.rs.

mod engines;
mod export_support;
mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use engines::{
    Container, Engine, EngineTest, assert_lookups, children, find_tool, free_base_port, gone,
    http_get, inspect, is_root, lookup, run, wait_until,
};
use export_support::{READY_EXEC, write_ready_app};
use support::Project;

fn main() -> std::process::ExitCode {
    engines::run_tests(&[
        EngineTest::new(
            "ready_units_pass_systemd_analyze_verify",
            &["systemd-analyze"],
            ready_units_pass_systemd_analyze_verify,
        ),
        EngineTest::new(
            "systemd_boots_the_ready_export_in_order_in_nspawn",
            &["systemd-nspawn", "nsenter", "timeout"],
            systemd_boots_the_ready_export_in_order_in_nspawn,
        )
        .also(needs_root),
        EngineTest::new(
            "supervisord_spawns_the_ready_export_by_priority",
            &["supervisord", "supervisorctl"],
            supervisord_spawns_the_ready_export_by_priority,
        ),
        EngineTest::new(
            "runit_runs_the_ready_export",
            &["runsvdir", "sv", "chpst", "svlogd"],
            runit_runs_the_ready_export,
        ),
        EngineTest::new("ready_plists_parse", &["python3"], ready_plists_parse),
        EngineTest::new(
            "ready_manifests_validate_strictly_with_their_probes",
            &["kubernetes-validate", "python"],
            ready_manifests_validate_strictly_with_their_probes,
        ),
        EngineTest::new(
            "ready_compose_file_passes_config_and_its_health_tests_work",
            &["docker-compose", "python3", "bash", "busybox", "nc"],
            ready_compose_file_passes_config_and_its_health_tests_work,
        ),
        EngineTest::new(
            "compose_http_test_reaches_an_ipv6_loopback",
            &["bash"],
            compose_http_test_reaches_an_ipv6_loopback,
        ),
        EngineTest::new(
            "compose_http_test_sends_a_hostile_path_as_it_is",
            &["bash"],
            compose_http_test_sends_a_hostile_path_as_it_is,
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

/// The fixture's types, in Procfile order, and their port offsets.
const TYPES: [(&str, u16); 6] = [
    ("db", 0),
    ("migrate", 100),
    ("broken", 200),
    ("web", 300),
    ("skipped", 400),
    ("worker", 500),
];

/// The readiness fixture exported by the binary as `shop` with base port
/// `base`, its marks in `marks` (`None`: `MARKS` is ROOT/marks): the
/// project, its canonical root, the output folder and the warnings.
fn exported(
    format: &str,
    base: u16,
    marks: Option<&str>,
    extra: &[&str],
) -> (Project, PathBuf, PathBuf, String) {
    let p = Project::new();
    let root = std::fs::canonicalize(p.path()).expect("canonical root");
    let marks = marks.map_or_else(|| root.join("marks").display().to_string(), str::to_owned);
    write_ready_app(&root, &marks);
    let out = p
        .procrun()
        .args(["export", format, "out", "--app", "shop"])
        .args(["-p", &base.to_string()])
        .args(extra)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&out.get_output().stderr).into_owned();
    let out = root.join("out");
    (p, root, out, stderr)
}

fn ready_units_pass_systemd_analyze_verify(tools: &[PathBuf]) {
    let (_p, _root, user, _) = exported("systemd", 5000, None, &["--user-units"]);
    let runtime = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run(Command::new(&tools[0])
        .arg("--user")
        .env("XDG_RUNTIME_DIR", runtime.path())
        .args(["verify", "--man=no"])
        .args(engines::systemd_units(&user)));
    assert_eq!(
        (code, stderr.as_str()),
        (0, ""),
        "--user-units: {stdout}{stderr}"
    );
    let (_p, _root, out, warnings) = exported("systemd", 5000, None, &[]);
    let units = engines::systemd_units(&out);
    assert_eq!(units.len(), 13, "{units:?}");
    let (code, stdout, stderr) = run(Command::new(&tools[0])
        .args(["verify", "--man=no"])
        .args(&units));
    assert_eq!((code, stderr.as_str()), (0, ""), "{stdout}{stderr}");
    let unit = |name: &str| std::fs::read_to_string(out.join(name)).expect("unit");
    let has = |name: &str, lines: &[&str]| {
        let text = unit(name);
        for line in lines {
            assert!(
                text.lines().any(|l| l == *line),
                "{line} in {name}:\n{text}"
            );
        }
    };
    has(
        "shop-web-1.service",
        &[
            "Type=simple",
            "After=shop-db.target",
            "Wants=shop-db.target",
            "After=shop-migrate-1.service",
            "Requires=shop-migrate-1.service",
        ],
    );
    has(
        "shop-migrate-1.service",
        &[
            "Type=oneshot",
            "RemainAfterExit=yes",
            "After=shop-db.target",
        ],
    );
    has(
        "shop-broken-1.service",
        &["Type=oneshot", "RemainAfterExit=yes"],
    );
    has(
        "shop-skipped-1.service",
        &[
            "After=shop-broken-1.service",
            "Requires=shop-broken-1.service",
        ],
    );
    assert!(!unit("shop-db-1.service").contains("\nAfter=shop-"));
    for name in ["db", "web", "skipped", "worker"] {
        assert!(
            warnings.contains(&format!("systemd cannot carry `{name}`'s ready = ")),
            "{name}: {warnings}"
        );
    }
}

/// A real systemd starts the units in order: `web` runs only if `migrate`
/// has exited before it started, `skipped` never starts because `broken`
/// failed, and stopping the app stops `web` before `db`.
fn systemd_boots_the_ready_export_in_order_in_nspawn(tools: &[PathBuf]) {
    let offsets: Vec<u16> = TYPES.iter().map(|(_, o)| *o).collect();
    let base = free_base_port(&offsets);
    let (_p, root, out, _) = exported("systemd", base, Some("/run/shop-marks"), &[]);
    let started = Instant::now();
    let container = Container::boot(tools, &out, &root, "shop.target");
    let want = [
        ("shop-db-1.service", "active"),
        ("shop-migrate-1.service", "active"),
        ("shop-web-1.service", "active"),
        ("shop-worker-1.service", "active"),
        ("shop-broken-1.service", "failed"),
        ("shop-skipped-1.service", "inactive"),
    ];
    let mut states = String::new();
    let settled = wait_until(Duration::from_secs(30), || {
        let mut args = vec!["systemctl", "is-active"];
        args.extend(want.iter().map(|(u, _)| *u));
        states = container.run(&args).1;
        states.lines().eq(want.iter().map(|(_, s)| *s))
    });
    if !settled {
        let listing = container
            .run(&["systemctl", "--no-pager", "status", "shop*"])
            .1;
        panic!(
            "units not as expected {want:?}:\n{states}\n{listing}\n{}",
            container.log()
        );
    }
    assert!(
        wait_until(Duration::from_secs(10), || http_get(base + 300).is_some()),
        "web does not answer"
    );
    let (code, ..) = container.run(&["test", "-e", "/run/shop-marks/skipped-ran"]);
    assert_ne!(code, 0, "skipped ran although broken failed");
    let journal = container
        .run(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "-u",
            "shop-skipped-1.service",
        ])
        .1;
    assert!(journal.contains("Dependency failed"), "{journal}");

    // Dependents first: web has stopped before db starts stopping.
    let (code, stdout, stderr) = container.run(&["systemctl", "stop", "shop.target"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let journal = container
        .run(&[
            "journalctl",
            "--no-pager",
            "-o",
            "cat",
            "-u",
            "shop-web-1.service",
            "-u",
            "shop-db-1.service",
        ])
        .1;
    let line = |needle: &str| {
        journal
            .lines()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in:\n{journal}"))
    };
    assert!(
        line("Stopped shop-web-1.service") < line("Stopping shop-db-1.service"),
        "{journal}"
    );
    let (exit, log) = container.halt();
    assert!(
        exit.is_some_and(|s| s.success()),
        "nspawn did not halt cleanly: {exit:?}\n{log}"
    );
    eprintln!(
        "systemd-nspawn (readiness): booted, checked and halted in {:.1}s",
        started.elapsed().as_secs_f64()
    );
}

fn supervisord_spawns_the_ready_export_by_priority(tools: &[PathBuf]) {
    let offsets: Vec<u16> = TYPES.iter().map(|(_, o)| *o).collect();
    let base = free_base_port(&offsets);
    let (_p, _root, out, warnings) = exported("supervisord", base, None, &[]);
    assert!(
        warnings.contains("supervisord cannot carry `web`'s after = [\"db\", \"migrate\"]"),
        "{warnings}"
    );
    let conf = out.join("supervisord.conf");
    let script = r#"
import sys
from supervisor.options import ServerOptions
o = ServerOptions()
o.realize(args=["-c", sys.argv[1]])
for g in o.process_group_configs:
    for p in g.process_configs:
        print(p.name, p.priority)
"#;
    let (code, stdout, stderr) = run(Command::new("/usr/bin/python3")
        .args(["-c", script])
        .arg(&conf));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut priorities: Vec<&str> = stdout.lines().collect();
    priorities.sort();
    assert_eq!(
        priorities,
        [
            "shop-broken-1 100",
            "shop-db-1 100",
            "shop-migrate-1 200",
            "shop-skipped-1 200",
            "shop-web-1 300",
            "shop-worker-1 200",
        ]
    );

    let mut engine = Engine::spawn(
        "supervisord",
        Command::new(&tools[0])
            .arg("-n")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let log = out.join("log/supervisord.log");
    let spawned = |name: &str| {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines()
            .position(|l| l.contains(&format!("spawned: 'shop-{name}-1'")))
    };
    let all = wait_until(Duration::from_secs(30), || {
        TYPES.iter().all(|(name, _)| spawned(name).is_some())
    });
    assert!(
        all,
        "not every program spawned:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let at = |name: &str| spawned(name).expect("spawned");
    assert!(at("db") < at("migrate") && at("migrate") < at("web"));
    assert!(at("broken") < at("skipped") && at("db") < at("worker"));
    assert!(
        wait_until(Duration::from_secs(10), || http_get(base).is_some()),
        "db does not answer"
    );
    let (code, stdout, stderr) = run(Command::new(&tools[1]).arg("-c").arg(&conf).arg("shutdown"));
    assert_eq!(code, 0, "shutdown: {stdout}{stderr}");
    let exit = engine.wait(Duration::from_secs(20));
    assert!(
        exit.is_some_and(|s| s.success()),
        "supervisord did not exit cleanly: {exit:?}"
    );
    assert!(
        wait_until(Duration::from_secs(5), || children(engine.pid()).is_empty()),
        "programs outlived supervisord"
    );
}

fn runit_runs_the_ready_export(tools: &[PathBuf]) {
    let offsets: Vec<u16> = TYPES.iter().map(|(_, o)| *o).collect();
    let base = free_base_port(&offsets);
    let (_p, _root, out, warnings) = exported("runit", base, None, &[]);
    assert!(
        warnings.contains("runit cannot carry `db`'s ready = \"port\", ready_timeout = 30"),
        "{warnings}"
    );
    let services: Vec<PathBuf> = TYPES
        .iter()
        .map(|(name, _)| out.join(format!("shop-{name}-1")))
        .collect();
    let sv = |args: &[&str]| run(Command::new(&tools[1]).args(args).args(&services));
    let mut engine = Engine::spawn(
        "runsvdir",
        Command::new(&tools[0])
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let mut status = String::new();
    let supervised = wait_until(Duration::from_secs(30), || {
        status = sv(&["status"]).1;
        status.lines().filter(|l| l.contains("; run: log:")).count() == TYPES.len()
    });
    assert!(supervised, "not every service is supervised:\n{status}");
    assert!(
        wait_until(Duration::from_secs(10), || http_get(base).is_some()),
        "db does not answer:\n{status}"
    );
    let (code, stdout, stderr) = sv(&["-w", "10", "down"]);
    assert_eq!(code, 0, "sv down: {stdout}{stderr}");
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

fn ready_plists_parse(tools: &[PathBuf]) {
    let (_p, _root, out, warnings) = exported("launchd", 5000, None, &[]);
    assert!(
        warnings.contains("launchd cannot carry `web`'s after = [\"db\", \"migrate\"]"),
        "{warnings}"
    );
    let plists: Vec<PathBuf> = TYPES
        .iter()
        .map(|(name, _)| out.join(format!("shop-{name}-1.plist")))
        .collect();
    let refs: Vec<&Path> = plists.iter().map(PathBuf::as_path).collect();
    let lines = inspect(&tools[0], "plist", &refs);
    for (name, _) in TYPES {
        let label = format!("shop-{name}-1");
        assert_eq!(lookup(&lines, "command", &label, "0"), Some("/bin/sh"));
    }
}

fn ready_manifests_validate_strictly_with_their_probes(tools: &[PathBuf]) {
    let (_p, root, out, warnings) = exported(
        "kubernetes",
        5000,
        None,
        &["--image", "registry.example.com/shop:1.0"],
    );
    for warning in [
        "kubernetes cannot carry `worker`'s ready = { log = \"worker up\" }",
        "kubernetes cannot carry `web`'s after = [\"db\", \"migrate\"]",
    ] {
        assert!(warnings.contains(warning), "{warning}: {warnings}");
    }
    let manifest = out.join("shop.yaml");
    let (code, stdout, stderr) = run(Command::new(&tools[0]).arg("--strict").arg(&manifest));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        !stdout.contains("WARN") && !stderr.contains("WARN"),
        "{stdout}{stderr}"
    );
    let lines = inspect(&tools[1], "k8s", &[&manifest]);
    assert_lookups(
        &lines,
        "probe",
        &[
            ("shop-db", "startupProbe", "tcpSocket"),
            ("shop-db", "startupProbe.port", "5000"),
            ("shop-db", "startupProbe.periodSeconds", "1"),
            ("shop-db", "startupProbe.timeoutSeconds", "2"),
            ("shop-db", "startupProbe.failureThreshold", "30"),
            ("shop-db", "readinessProbe", "tcpSocket"),
            ("shop-db", "readinessProbe.periodSeconds", "10"),
            ("shop-web", "startupProbe", "httpGet"),
            ("shop-web", "startupProbe.path", "/?probe=1"),
            ("shop-web", "startupProbe.port", "5300"),
            ("shop-web", "readinessProbe", "httpGet"),
            ("shop-skipped", "startupProbe", "exec"),
            ("shop-skipped", "startupProbe.command0", "/bin/sh"),
            ("shop-skipped", "startupProbe.periodSeconds", "2"),
            ("shop-skipped", "startupProbe.failureThreshold", "30"),
            ("shop-skipped", "readinessProbe", "exec"),
        ],
    );
    // A loopback URL is asked of the pod itself: no host.
    assert_eq!(
        lookup(&lines, "probe", "shop-web", "startupProbe.host"),
        None
    );
    for name in ["shop-worker", "shop-migrate", "shop-broken"] {
        assert_eq!(
            lookup(&lines, "probe", name, "startupProbe"),
            None,
            "{name}"
        );
        assert_eq!(
            lookup(&lines, "probe", name, "readinessProbe"),
            None,
            "{name}"
        );
    }
    // The kubelet turns `$$` into `$` in a probe's command too; what the
    // shell then gets must be the check, and work as one.
    let command = lookup(&lines, "probe", "shop-skipped", "startupProbe.command2")
        .expect("exec probe")
        .replace("$$", "$");
    assert_eq!(command, READY_EXEC);
    exec_check_works(&command, &root);
}

/// `command` (the exec check as an engine hands it to `sh -c`) passes
/// once `$MARKS/skipped-ran` exists, and not before.
fn exec_check_works(command: &str, root: &Path) {
    let marks = root.join("exec-marks");
    std::fs::create_dir_all(&marks).expect("mkdir");
    let check = || {
        run(Command::new("/bin/sh")
            .arg("-c")
            .arg(command)
            .env("MARKS", &marks)
            .env("PORT", "5400"))
        .0
    };
    assert_eq!(check(), 1, "passes without the mark");
    std::fs::write(marks.join("skipped-ran"), "").expect("mark");
    assert_eq!(check(), 0, "fails with the mark");
}

fn ready_compose_file_passes_config_and_its_health_tests_work(tools: &[PathBuf]) {
    let base = free_base_port(&[0, 300]);
    let (_p, root, out, warnings) = exported("compose", base, None, &[]);
    assert!(
        warnings.contains("compose cannot carry `worker`'s ready = { log = \"worker up\" }"),
        "{warnings}"
    );
    let file = out.join("compose.yaml");
    let lines = engines::compose_config(tools, &root, &file);
    assert_lookups(
        &lines,
        "depends",
        &[
            ("migrate", "db", "service_healthy"),
            ("web", "db", "service_healthy"),
            ("web", "migrate", "service_completed_successfully"),
            ("skipped", "broken", "service_completed_successfully"),
            ("worker", "db", "service_healthy"),
        ],
    );
    assert_eq!(lookup(&lines, "depends", "db", "web"), None);
    assert_lookups(
        &lines,
        "health",
        &[
            ("db", "test0", "CMD-SHELL"),
            ("db", "start_period", "30s"),
            ("db", "start_interval", "500ms"),
            ("db", "interval", "30s"),
            ("db", "timeout", "2s"),
            ("db", "retries", "3"),
            ("web", "start_period", "1m0s"),
            ("skipped", "timeout", "1.5s"),
        ],
    );
    for name in ["worker", "migrate", "broken"] {
        assert_eq!(lookup(&lines, "health", name, "test0"), None, "{name}");
    }
    // `config` prints the model re-escaped (`$` as `$$`).
    let test = |name: &str| {
        lookup(&lines, "health", name, "test1")
            .unwrap_or_else(|| panic!("no test for {name}"))
            .replace("$$", "$")
    };
    assert_eq!(test("skipped"), READY_EXEC);
    exec_check_works(&test("skipped"), &root);
    let path = std::env::var_os("PATH").unwrap_or_default();
    health_tests_work(&test("db"), &test("web"), base, &path);

    // A slim image without bash: BusyBox's wget and OpenBSD's nc.
    let slim = &tools[3..];
    let bin = root.join("slim-bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    for (name, target) in [
        ("sh", Path::new("/bin/sh")),
        ("wget", &slim[0]),
        ("nc", &slim[1]),
    ] {
        std::os::unix::fs::symlink(target, bin.join(name)).expect("symlink");
    }
    assert!(find_tool("bash").is_some());
    health_tests_work(&test("db"), &test("web"), base, bin.as_os_str());
}

/// The compose health tests of `db` (a TCP check of `base`) and `web` (a
/// GET of /?probe=1 on `base + 300`), run by `sh -c` with `path` as PATH:
/// each passes against a live listener and fails against a closed port or
/// a wrong answer.
fn health_tests_work(db: &str, web: &str, base: u16, path: &std::ffi::OsStr) {
    let check = |test: &str| {
        run(Command::new("/bin/sh")
            .arg("-c")
            .arg(test)
            .env_clear()
            .env("PATH", path))
        .0
    };
    assert_ne!(check(db), 0, "db passes with nothing listening");
    let listener = TcpListener::bind(("127.0.0.1", base)).expect("bind db port");
    assert_eq!(check(db), 0, "db fails while its port listens");
    drop(listener);

    assert_ne!(check(web), 0, "web passes with nothing listening");
    let server = Server::start(base + 300, "/elsewhere");
    assert_ne!(check(web), 0, "web passes on a 404");
    drop(server);
    let server = Server::start(base + 300, "/?probe=1");
    assert_eq!(check(web), 0, "web fails on a 200");
    let heads = server.stop();
    assert!(
        heads.iter().any(|h| h.starts_with("GET /?probe=1 HTTP/1.")
            && h.contains(&format!("Host: 127.0.0.1:{}", base + 300))),
        "{heads:?}"
    );
}

/// A tiny HTTP server on 127.0.0.1 for a test: 200 for one path, 404 for
/// any other; it keeps each request's head. It stops when stopped or
/// dropped, and after 60 s at the latest.
struct Server {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Server {
    fn start(port: u16, ok_path: &'static str) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind http port");
        Server::on(listener, ok_path)
    }

    fn on(listener: TcpListener, ok_path: &'static str) -> Server {
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut heads = Vec::new();
            let end = Instant::now() + Duration::from_secs(60);
            while !stopped.load(Ordering::Relaxed) && Instant::now() < end {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut head = Vec::new();
                let mut buf = [0u8; 512];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split(' ').nth(1).unwrap_or_default();
                let status = if path == ok_path {
                    "200 OK"
                } else {
                    "404 Not Found"
                };
                let _ = stream.write_all(
                    format!("HTTP/1.0 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes(),
                );
                heads.push(head);
            }
            heads
        });
        Server {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .map(|t| t.join().expect("server thread"))
            .unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The compose http test on an IPv6 URL reaches a server on [::1], with
/// bash and with BusyBox's wget.
fn compose_http_test_reaches_an_ipv6_loopback(_tools: &[PathBuf]) {
    let listener = match TcpListener::bind("[::1]:0") {
        Ok(l) => l,
        Err(e) => {
            // Not an engine that CI installs: the machine has no IPv6.
            eprintln!(
                "compose_http_test_reaches_an_ipv6_loopback: no IPv6 loopback here ({e}); not checked"
            );
            return;
        }
    };
    let port = listener.local_addr().expect("address").port();
    let target =
        procrun::readiness::HttpTarget::parse(&format!("http://[::1]:{port}/up"), 0).expect("url");
    let test = procrun::export::compose::http_test(&target);
    let server = Server::on(listener, "/up");
    let mut paths = vec![std::env::var_os("PATH").unwrap_or_default()];
    let dir = tempfile::tempdir().expect("temp dir");
    if let Some(busybox) = find_tool("busybox") {
        std::os::unix::fs::symlink("/bin/sh", dir.path().join("sh")).expect("symlink");
        std::os::unix::fs::symlink(busybox, dir.path().join("wget")).expect("symlink");
        paths.push(dir.path().as_os_str().to_owned());
    }
    for path in &paths {
        let (code, stdout, stderr) = run(Command::new("/bin/sh")
            .arg("-c")
            .arg(&test)
            .env_clear()
            .env("PATH", path));
        assert_eq!(code, 0, "PATH={path:?}: {test}\n{stdout}{stderr}");
    }
    let heads = server.stop();
    assert_eq!(heads.len(), paths.len(), "{heads:?}");
    assert!(
        heads.iter().all(|h| h.starts_with("GET /up HTTP/1.")
            && h.contains(&format!("Host: [::1]:{port}"))),
        "{heads:?}"
    );
}

/// A path with quotes, `$(…)`, `;`, `%` and backquotes reaches the server
/// as it was written: the compose http test passes it to bash (and wget)
/// as a quoted argument, never as shell code.
fn compose_http_test_sends_a_hostile_path_as_it_is(_tools: &[PathBuf]) {
    const PATH: &str = "/a'b\"c;$(touch${IFS}pwned)`id`%41&x=1|y";
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let target =
        procrun::readiness::HttpTarget::parse(&format!("http://127.0.0.1:{port}{PATH}"), 0)
            .expect("url");
    let test = procrun::export::compose::http_test(&target);
    let server = Server::on(listener, PATH);
    let dir = tempfile::tempdir().expect("temp dir");
    let (code, stdout, stderr) = run(Command::new("/bin/sh")
        .arg("-c")
        .arg(&test)
        .current_dir(dir.path()));
    assert_eq!(code, 0, "{test}\n{stdout}{stderr}");
    let heads = server.stop();
    assert!(
        heads[0].starts_with(&format!("GET {PATH} HTTP/1.0\r\n")),
        "{heads:?}"
    );
    assert!(!dir.path().join("pwned").exists());
}
