//! What the engine tests (tests/export_engines.rs) share: finding the
//! engines (or skipping), free ports, bounded waits, the exported fixture, an
//! engine process that is always stopped, and checks of what the web and
//! worker instances report. The Python scripts beside it are what the
//! exports run and what reads them back.
// Shared by the export engine and property tests, which each use only some
// of it.
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::export_support::{EXPECTED_ENV, FORMATION, decode_lines, expected_args, expected_self};
use crate::support::Project;

/// The venv and tools that `.ci/install-export-engines` installs.
pub fn tools_dir() -> PathBuf {
    std::env::var_os("PROCRUN_EXPORT_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/procrun-export-tools"))
}

/// `name` in the tools venv, else on PATH (plus the sbin folders).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    let venv = tools_dir().join("venv/bin").join(name);
    if venv.is_file() {
        return Some(venv);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// One engine test: the tools it needs, anything else it needs (a check
/// that says why not), and its body, which gets the tools' paths.
pub struct EngineTest {
    name: &'static str,
    tools: &'static [&'static str],
    also: Option<fn() -> Result<(), String>>,
    body: fn(&[PathBuf]),
}

impl EngineTest {
    pub fn new(name: &'static str, tools: &'static [&'static str], body: fn(&[PathBuf])) -> Self {
        EngineTest {
            name,
            tools,
            also: None,
            body,
        }
    }

    /// What else the test needs (root, a Python module).
    pub fn also(self, check: fn() -> Result<(), String>) -> Self {
        EngineTest {
            also: Some(check),
            ..self
        }
    }

    /// The tools' paths, or why the test cannot run here.
    fn ready(&self) -> Result<Vec<PathBuf>, String> {
        let found: Vec<Option<PathBuf>> = self.tools.iter().map(|n| find_tool(n)).collect();
        let missing: Vec<&str> = self
            .tools
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "{} not installed; run .ci/install-export-engines",
                missing.join(", ")
            ));
        }
        if let Some(check) = self.also {
            check()?;
        }
        Ok(found.into_iter().flatten().collect())
    }
}

/// Runs engine tests with libtest's command line, output and summary (the
/// test files that call it have `harness = false`). A test that cannot run
/// here is reported as `ignored`, named with its reason, and counted in the
/// summary line, never a silent "ok"; `--include-ignored` runs it anyway
/// (and it fails). Under `CI=true` nothing is ignored: a missing engine
/// fails its test.
pub fn run_tests(tests: &[EngineTest]) -> std::process::ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    let trials = tests
        .iter()
        .map(|t| {
            let (name, body) = (t.name, t.body);
            let ready = t.ready();
            let skipped = match &ready {
                Err(why) if !ci => Some(format!("skipped: {why}")),
                _ => None,
            };
            let trial = libtest_mimic::Trial::test(name, move || {
                let tools = ready.map_err(|why| {
                    let ci = if ci {
                        " (CI=true: engine tests must run)"
                    } else {
                        ""
                    };
                    format!("{name}: {why}{ci}")
                })?;
                body(&tools);
                Ok(())
            });
            match skipped {
                Some(kind) => trial.with_kind(kind).with_ignored_flag(true),
                None => trial,
            }
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A base port such that every offset in `offsets` is free on loopback, so
/// that parallel tests and other work on the machine don't clash.
pub fn free_base_port(offsets: &[u16]) -> u16 {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    for attempt in 0..500u64 {
        let base = 20_000
            + ((seed.wrapping_mul(6_364_136_223_846_793_005) + attempt * 7_919) % 40_000) as u16;
        let listeners: Vec<_> = offsets
            .iter()
            .map(|o| TcpListener::bind(("127.0.0.1", base + o)))
            .collect();
        if listeners.iter().all(Result::is_ok) {
            return base;
        }
    }
    panic!("no free port range on 127.0.0.1");
}

/// Polls `f` every 100 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET /` on 127.0.0.1:`port`: the body of a 200 answer.
pub fn http_get(port: u16) -> Option<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .ok()?;
    stream
        .write_all(b"GET / HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_owned())
}

/// Checks what web instance `ps` on `port` received: every hostile value
/// byte for byte, PORT, PS, its arguments and its working directory.
pub fn check_web(port: u16, ps: &str, root: &Path) -> Result<(), String> {
    let body = http_get(port).ok_or_else(|| format!("{ps}: no answer on port {port}"))?;
    let lines = decode_lines(&body);
    let env = |key: &str| {
        lines
            .iter()
            .find(|(kind, name, _, _)| kind == "env" && name == key)
            .map(|(_, _, _, v)| v.clone())
    };
    let mut problems = Vec::new();
    for (key, want) in EXPECTED_ENV {
        if env(key).as_deref() != Some(want) {
            problems.push(format!("{key}: got {:?}, want {want:?}", env(key)));
        }
    }
    let own = expected_self(port, ps);
    if env("SELF").as_deref() != Some(own.as_str()) {
        problems.push(format!("SELF: got {:?}, want {own:?}", env("SELF")));
    }
    if env("EVIL").is_some() {
        problems.push("EVIL was injected".into());
    }
    if env("PORT") != Some(port.to_string()) {
        problems.push(format!("PORT: got {:?}", env("PORT")));
    }
    if env("PS").as_deref() != Some(ps) {
        problems.push(format!("PS: got {:?}, want {ps}", env("PS")));
    }
    let args: Vec<String> = lines
        .iter()
        .filter(|(kind, _, _, _)| kind == "arg")
        .map(|(_, _, _, v)| v.clone())
        .collect();
    if args != expected_args(port) {
        problems.push(format!(
            "argv: got {args:?}, want {:?}",
            expected_args(port)
        ));
    }
    let cwd = lines
        .iter()
        .find(|(kind, _, _, _)| kind == "cwd")
        .map(|(_, _, _, v)| PathBuf::from(v));
    if cwd.as_deref() != Some(root) {
        problems.push(format!("cwd: got {cwd:?}, want {}", root.display()));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{ps} on port {port}:\n  {}", problems.join("\n  ")))
    }
}

/// The fixture app, exported to `FORMAT` in `out/` with app name `shop`.
pub fn exported(format: &str, base: u16, extra: &[&str]) -> (Project, PathBuf, PathBuf) {
    let p = Project::new();
    crate::export_support::write_app(p.path());
    p.procrun()
        .args(["export", format, "out", "-m", FORMATION, "--app", "shop"])
        .args(["-p", &base.to_string(), "-t", "3"])
        .args(extra)
        .assert()
        .success();
    let root = std::fs::canonicalize(p.path()).expect("canonical root");
    let out = root.join("out");
    (p, root, out)
}

/// A process these tests started, in its own process group; dropped, the
/// group is killed (if the test failed before stopping it cleanly).
pub struct Engine {
    child: Child,
    name: &'static str,
}

impl Engine {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> Engine {
        let child = cmd
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Engine { child, name }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions; the pid is our
        // own child, not yet reaped (try_wait below reaps it).
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Waits up to `timeout` for the engine to exit.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let mut status = None;
        wait_until(timeout, || {
            status = self.child.try_wait().ok().flatten();
            status.is_some()
        });
        status
    }
}

impl Drop for Engine {
    /// A test that failed half-way: ask the engine to stop (nspawn halts the
    /// container on SIGTERM), then kill it and everything it started. The
    /// services of runsv, supervisord and nspawn live in sessions of their
    /// own, so the process group alone would not reach them: every
    /// descendant is collected first (SIGKILL on a container's init ends
    /// its whole PID namespace).
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_some() {
            return;
        }
        eprintln!("stopping {} (pid {})", self.name, self.pid());
        let descendants = children(self.pid());
        self.signal(libc::SIGTERM);
        let exited = self.wait(Duration::from_secs(5)).is_some();
        let leftovers = descendants.into_iter().filter(|p| !gone(*p));
        let group = (!exited).then(|| -self.pid());
        for pid in leftovers.chain(group) {
            // SAFETY: as above; these are processes this test started.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        let _ = self.child.wait();
    }
}

/// Whether process `pid` is gone (or a zombie nobody cares about).
pub fn gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

pub fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The `exec …` script each format must hand to `/bin/sh -c` for `web`.
pub fn web_script() -> String {
    let line = crate::export_support::PROCFILE
        .lines()
        .next()
        .expect("web line");
    format!("exec {}", line.trim_start_matches("web: "))
}

/// The instances of the fixture formation: (PS, port offset).
const WEBS: &[(&str, u16)] = &[("web.1", 0), ("web.2", 1)];

/// Every web instance of the fixture answers on its PORT (waiting up to
/// 10 s for each), with its PS, environment and working directory.
pub fn webs_answer(base: u16, root: &Path) {
    for (ps, offset) in WEBS {
        let mut last = Err(String::new());
        wait_until(Duration::from_secs(10), || {
            last = check_web(base + offset, ps, root);
            last.is_ok()
        });
        last.unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The line the fixture's worker prints at start, for a base port.
pub fn worker_line(base: u16) -> String {
    format!("worker worker.1 starting; 50% done, PORT={}", base + 100)
}

/// Waits up to 5 s for the worker's line in the log file `log`.
pub fn worker_logged(log: &Path, base: u16) {
    let want = worker_line(base);
    assert!(
        wait_until(Duration::from_secs(5), || std::fs::read_to_string(log)
            .is_ok_and(|l| l.contains(&want))),
        "worker log {} lacks {want:?}",
        log.display()
    );
}

/// Removes an empty folder when dropped.
pub struct RemoveDirOnDrop(pub PathBuf);

impl Drop for RemoveDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// Every descendant of `pid`.
pub fn children(pid: i32) -> Vec<i32> {
    let mut all = Vec::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        let kids =
            std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")).unwrap_or_default();
        for kid in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
            all.push(kid);
            queue.push(kid);
        }
    }
    all
}

/// The runsv children of runsvdir `pid`.
pub fn runsvs(pid: i32) -> Vec<i32> {
    children(pid)
        .into_iter()
        .filter(|p| comm(*p).as_deref() == Some("runsv"))
        .collect()
}

pub fn comm(pid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

/// `docker compose config` (`tools[0]`) accepts `file` without a word,
/// and its normalised form, as `inspect_export.py` (run by `tools[1]`)
/// reads it.
pub fn compose_config(
    tools: &[PathBuf],
    root: &Path,
    file: &Path,
) -> Vec<(String, String, String, String)> {
    let config_dir = root.join("docker-config");
    std::fs::create_dir_all(&config_dir).expect("mkdir");
    let compose = |args: &[&str]| {
        run(Command::new(&tools[0])
            .env("DOCKER_CONFIG", &config_dir)
            .env_remove("COMPOSE_PROJECT_NAME")
            .env_remove("COMPOSE_FILE")
            .arg("-f")
            .arg(file)
            .args(args))
    };
    let (code, stdout, stderr) = compose(&["config", "-q"]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");
    let (code, json, stderr) = compose(&["config", "--format", "json"]);
    assert_eq!(code, 0, "{stderr}");
    let json_file = root.join("compose.json");
    std::fs::write(&json_file, json).expect("write json");
    inspect(&tools[1], "compose", &[&json_file])
}

/// `inspect_export.py KIND ARGS…` with `python`: its decoded lines.
pub fn inspect(python: &Path, kind: &str, args: &[&Path]) -> Vec<(String, String, String, String)> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines/inspect_export.py");
    let (code, stdout, stderr) = run(Command::new(python).arg(script).arg(kind).args(args));
    assert_eq!(code, 0, "inspect_export.py {kind}: {stderr}");
    decode_lines(&stdout)
}

/// The `.service` and `.target` files of a systemd export, sorted.
pub fn systemd_units(out: &Path) -> Vec<PathBuf> {
    let mut units: Vec<PathBuf> = std::fs::read_dir(out)
        .expect("read export")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "service" || x == "target")
        })
        .collect();
    units.sort();
    units
}

/// Asserts `lookup(lines, kind, name, key) == want` for each row.
pub fn assert_lookups(
    lines: &[(String, String, String, String)],
    kind: &str,
    rows: &[(&str, &str, &str)],
) {
    for (name, key, want) in rows {
        assert_eq!(
            lookup(lines, kind, name, key),
            Some(*want),
            "{kind} {name} {key}"
        );
    }
}

pub fn lookup<'a>(
    lines: &'a [(String, String, String, String)],
    kind: &str,
    name: &str,
    key: &str,
) -> Option<&'a str> {
    lines
        .iter()
        .find(|(k, n, key2, _)| k == kind && n == name && key2 == key)
        .map(|(_, _, _, v)| v.as_str())
}

/// A real systemd booted in `systemd-nspawn` from the host's `/usr`
/// (volatile root), with a systemd export bound at /srv/export as a unit
/// folder and the app root bound read-only at its own path. Dropped, the
/// container is killed (a test that failed half-way).
pub struct Container {
    // Declared first so that it is dropped (the container stopped) before
    // the propagation folder is removed: a killed nspawn leaves it behind.
    engine: Engine,
    _propagate: RemoveDirOnDrop,
    init: String,
    log: PathBuf,
    nsenter: PathBuf,
    timeout: PathBuf,
}

impl Container {
    /// Boots `unit` with `tools` = systemd-nspawn, nsenter, timeout; waits
    /// (up to 30 s) for its init and then for the boot to finish.
    pub fn boot(tools: &[PathBuf], out: &Path, root: &Path, unit: &str) -> Container {
        let log = root.join("nspawn.log");
        let machine = format!("procrun-test-{}", std::process::id());
        let propagate = RemoveDirOnDrop(PathBuf::from(format!(
            "/run/systemd/nspawn/propagate/{machine}"
        )));
        let engine = Engine::spawn(
            "systemd-nspawn",
            Command::new(&tools[0])
                .args(["-D", "/", "--volatile=yes", "--register=no", "--keep-unit"])
                .arg(format!("--machine={machine}"))
                .arg("--console=pipe")
                .arg(format!("--bind-ro={}:/srv/export", out.display()))
                .arg("--setenv=SYSTEMD_UNIT_PATH=/srv/export:")
                .arg(format!("--bind-ro={}", root.display()))
                .args([
                    "-b",
                    &format!("systemd.unit={unit}"),
                    "systemd.mask=systemd-firstboot.service",
                ])
                .stdout(std::fs::File::create(&log).expect("log file"))
                .stderr(Stdio::from(
                    std::fs::File::options()
                        .append(true)
                        .open(&log)
                        .expect("log file"),
                )),
        );
        // The container's init: the `systemd` child of nspawn.
        let mut init = None;
        let found = wait_until(Duration::from_secs(30), || {
            init = children(engine.pid())
                .into_iter()
                .find(|p| comm(*p).as_deref() == Some("systemd"));
            init.is_some()
        });
        let container = Container {
            engine,
            _propagate: propagate,
            init: init.map(|p| p.to_string()).unwrap_or_default(),
            log,
            nsenter: tools[1].clone(),
            timeout: tools[2].clone(),
        };
        assert!(found, "no systemd inside nspawn:\n{}", container.log());
        container.run(&["systemctl", "is-system-running", "--wait"]);
        container
    }

    /// Runs a command inside the container (at most 30 s).
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        run(Command::new(&self.timeout)
            .args([
                "30",
                &self.nsenter.display().to_string(),
                "-t",
                &self.init,
                "-m",
                "-u",
                "-i",
                "-p",
            ])
            .args(args))
    }

    /// What nspawn and the container's console printed.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// An orderly halt (SIGTERM to nspawn): its exit status, if it exited
    /// within 30 s, and the log.
    pub fn halt(mut self) -> (Option<std::process::ExitStatus>, String) {
        self.engine.signal(libc::SIGTERM);
        let exit = self.engine.wait(Duration::from_secs(30));
        (exit, self.log())
    }
}
