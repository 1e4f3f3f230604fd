//! The test harness: every test that starts procrun goes through it.
//!
//! A [`Test`] is a temporary app directory (Procfile, .env, other files),
//! procrun's arguments and environment. It then either runs to completion
//! and checks the exit code and output, or spawns procrun in the background
//! to interact with it. Either way the child's environment is scrubbed of
//! whatever would change procrun's behaviour ([`scrub`]: `PROCRUN_*`,
//! `NO_COLOR`, `PORT`, `PS`, `RUST_LOG`), so a developer's settings never
//! leak into a test; set what a test needs with [`Test::env`].
//!
//! Run to completion (bounded by [`TIMEOUT`]):
//!
//! ```ignore
//! mod support;
//! use support::Test;
//!
//! #[test]
//! fn a_bad_port_is_an_error() {
//!     Test::new()
//!         .procfile("web: a\n")
//!         .file(".env", "PORT=http\n")
//!         .args(["check"])
//!         .code(2)
//!         .stderr_has("is not a port number")
//!         .run();
//! }
//! ```
//!
//! Interact (every wait is bounded by [`WAIT`], or by the limit given):
//!
//! ```ignore
//! let mut r = Test::new()
//!     .procfile("web: echo ready; exec sleep 30\n")
//!     .start(&["-m", "web=2"]); // `start -p FREE_PORT --no-timestamp -m web=2`
//! r.wait_for("web.2  | ready");
//! let pid = r.pid_of("web.1"); // from "web.1 started with pid N"
//! r.signal(Signal::SIGTERM);
//! assert_eq!(r.wait_exit(), Some(143), "{}", r.transcript());
//! r.assert_no_leftovers(); // nothing procrun started is still alive
//! ```
//!
//! Several runs in one directory: build a [`Project`] and call
//! [`Project::test`] for each run. On a terminal: [`Test::pty`]. A shell
//! pipeline around procrun: [`Test::program`] with [`procrun_quoted`] in the
//! script (the environment is scrubbed the same way). Processes a test
//! learns about are killed when it ends, pass or fail ([`Running`]'s `Drop`,
//! [`Cleanup`]).
//!
//! Tests wait for events (a line, an exit), never for a fixed time, and make
//! no timing assertions.
#![allow(dead_code)]

pub mod pty;
pub mod running;
pub mod tmux;
pub mod wire;

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[allow(unused_imports)]
pub use running::{Cleanup, Running, alive, gone_within, number_after};

/// Hard limit for one whole procrun invocation: nothing may hang.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// How long a test waits for any one event (a line, an exit) by default.
pub const WAIT: Duration = Duration::from_secs(20);

/// The variable that marks every process a [`Running`] started (procrun and
/// everything that inherits its environment), to find leftovers by.
pub const MARK: &str = "TEST_HARNESS_MARK";

/// A temporary app directory with a Procfile and other files.
#[derive(Debug)]
pub struct Project {
    dir: tempfile::TempDir,
}

impl Default for Project {
    fn default() -> Self {
        Project::new()
    }
}

impl Project {
    /// An empty project.
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    /// A project whose Procfile holds `text`.
    pub fn with_procfile(text: &str) -> Self {
        Project::new().file("Procfile", text)
    }

    /// Writes `contents` to `name` inside the project (parents created).
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        write_file(self.dir.path(), name, contents.as_ref());
        self
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside the project.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A [`Test`] that runs in this project's directory (the project must
    /// outlive what the test starts).
    pub fn test(&self) -> Test {
        Test::in_dir(self.path())
    }

    /// `procrun` as an `assert_cmd` command in the project directory, with
    /// the scrubbed environment and [`TIMEOUT`]. Prefer [`Project::test`].
    pub fn procrun(&self) -> assert_cmd::Command {
        let mut cmd = procrun();
        cmd.current_dir(self.path());
        cmd
    }
}

fn write_file(dir: &Path, name: &str, contents: &[u8]) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent dirs");
    }
    std::fs::write(path, contents).expect("write file");
}

/// Where a test runs: a directory of its own, or one that somebody else
/// keeps alive.
#[derive(Debug)]
enum Dir {
    Owned(Project),
    Borrowed(PathBuf),
}

/// One procrun invocation: directory, arguments, environment, and what to
/// expect if it is run to completion.
#[derive(Debug)]
#[must_use = "a Test does nothing until .run(), .spawn(), .start() or .pty()"]
pub struct Test {
    dir: Dir,
    program: Option<OsString>,
    args: Vec<OsString>,
    env: Vec<(OsString, Option<OsString>)>,
    current_dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    expect_code: Option<i32>,
    expect_stdout: Option<String>,
    expect_stderr: Option<String>,
    stdout_has: Vec<String>,
    stderr_has: Vec<String>,
}

impl Default for Test {
    fn default() -> Self {
        Test::new()
    }
}

impl Test {
    /// A test in a new, empty temporary directory.
    pub fn new() -> Test {
        Test::with_dir(Dir::Owned(Project::new()))
    }

    /// A test that runs in `dir` (kept alive by the caller).
    pub fn in_dir(dir: impl Into<PathBuf>) -> Test {
        Test::with_dir(Dir::Borrowed(dir.into()))
    }

    fn with_dir(dir: Dir) -> Test {
        Test {
            dir,
            program: None,
            args: Vec::new(),
            env: Vec::new(),
            current_dir: None,
            stdin: None,
            expect_code: None,
            expect_stdout: None,
            expect_stderr: None,
            stdout_has: Vec::new(),
            stderr_has: Vec::new(),
        }
    }

    /// The test's directory.
    pub fn path(&self) -> &Path {
        match &self.dir {
            Dir::Owned(p) => p.path(),
            Dir::Borrowed(p) => p,
        }
    }

    /// Writes the Procfile.
    pub fn procfile(self, text: &str) -> Test {
        self.file("Procfile", text)
    }

    /// Writes `.env`.
    pub fn dotenv(self, text: &str) -> Test {
        self.file(".env", text)
    }

    /// Writes `contents` to `name` in the test's directory.
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Test {
        write_file(self.path(), name, contents.as_ref());
        self
    }

    /// Appends one argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Test {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Appends arguments.
    pub fn args<I, S>(mut self, args: I) -> Test
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets a variable in the child's environment (after the scrub).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Test {
        self.env
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes a variable from the child's environment.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Test {
        self.env.push((key.as_ref().to_owned(), None));
        self
    }

    /// Runs in `dir`, relative to the test's directory (or absolute).
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Test {
        self.current_dir = Some(dir.into());
        self
    }

    /// Feeds `bytes` to stdin, then closes it (default: stdin is /dev/null).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Test {
        self.stdin = Some(bytes.into());
        self
    }

    /// Runs `program` instead of procrun, with the same scrubbed
    /// environment: a shell around procrun (use [`procrun_quoted`]).
    pub fn program(mut self, program: impl AsRef<OsStr>) -> Test {
        self.program = Some(program.as_ref().to_owned());
        self
    }

    /// [`Test::run`] expects this exit code.
    pub fn code(mut self, code: i32) -> Test {
        self.expect_code = Some(code);
        self
    }

    /// [`Test::run`] expects exactly this stdout.
    pub fn stdout(mut self, text: &str) -> Test {
        self.expect_stdout = Some(text.to_owned());
        self
    }

    /// [`Test::run`] expects exactly this stderr.
    pub fn stderr(mut self, text: &str) -> Test {
        self.expect_stderr = Some(text.to_owned());
        self
    }

    /// [`Test::run`] expects stdout to contain `text`.
    pub fn stdout_has(mut self, text: &str) -> Test {
        self.stdout_has.push(text.to_owned());
        self
    }

    /// [`Test::run`] expects stderr to contain `text`.
    pub fn stderr_has(mut self, text: &str) -> Test {
        self.stderr_has.push(text.to_owned());
        self
    }

    /// The command this test would run, environment scrubbed and marked.
    fn launch(self) -> Launch {
        let dir = match &self.current_dir {
            Some(d) => self.path().join(d),
            None => self.path().to_owned(),
        };
        let program = self
            .program
            .clone()
            .unwrap_or_else(|| procrun_path().into_os_string());
        let mut cmd = std::process::Command::new(program);
        cmd.args(&self.args).current_dir(&dir);
        scrub(&mut cmd);
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let mark = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        cmd.env(MARK, &mark);
        let owned = match self.dir {
            Dir::Owned(p) => Some(p),
            Dir::Borrowed(_) => None,
        };
        Launch {
            cmd,
            dir,
            owned,
            stdin: self.stdin,
            mark,
        }
    }

    /// Starts procrun in the background, stdout and stderr collected as they
    /// arrive; see [`Running`].
    pub fn spawn(self) -> Running {
        Running::spawn(self.launch())
    }

    /// `procrun start -p FREE_PORT --no-timestamp EXTRA…` in the background.
    pub fn start(self, extra: &[&str]) -> Running {
        let port = free_port().to_string();
        self.args(["start", "-p", &port, "--no-timestamp"])
            .args(extra)
            .spawn()
    }

    /// Starts procrun on a new pseudo-terminal, as from an interactive
    /// shell; see [`pty::PtyRun`].
    pub fn pty(self) -> pty::PtyRun {
        pty::PtyRun::start(self.launch())
    }

    /// Runs procrun to completion (at most [`TIMEOUT`]), checks what was
    /// asked for, and returns the outcome for further checks.
    #[track_caller]
    pub fn run(mut self) -> Output {
        let args = self.args.clone();
        let expect_code = self.expect_code.take();
        let expect_stdout = self.expect_stdout.take();
        let expect_stderr = self.expect_stderr.take();
        let stdout_has = std::mem::take(&mut self.stdout_has);
        let stderr_has = std::mem::take(&mut self.stderr_has);
        let mut r = self.spawn();
        r.wait_exit_within(TIMEOUT);
        let out = Output {
            status: r.status().expect("exited"),
            stdout_bytes: r.stdout_bytes(),
            stdout: r.stdout(),
            stderr: r.stderr(),
            lines: r.lines(),
        };
        let report = || {
            format!(
                "procrun {args:?}\nexit: {:?}\n--- stdout\n{}\n--- stderr\n{}",
                out.status, out.stdout, out.stderr
            )
        };
        if let Some(code) = expect_code {
            assert_eq!(out.code(), Some(code), "exit code\n{}", report());
        }
        if let Some(text) = expect_stdout {
            assert_eq!(out.stdout, text, "stdout\n{}", report());
        }
        if let Some(text) = expect_stderr {
            assert_eq!(out.stderr, text, "stderr\n{}", report());
        }
        for text in stdout_has {
            assert!(
                out.stdout.contains(&text),
                "stdout lacks {text:?}\n{}",
                report()
            );
        }
        for text in stderr_has {
            assert!(
                out.stderr.contains(&text),
                "stderr lacks {text:?}\n{}",
                report()
            );
        }
        out
    }
}

/// A command ready to start, and what its run keeps.
#[derive(Debug)]
pub(crate) struct Launch {
    pub cmd: std::process::Command,
    /// Where it runs.
    pub dir: PathBuf,
    /// The test's own directory, removed when the run is dropped.
    pub owned: Option<Project>,
    pub stdin: Option<Vec<u8>>,
    /// The value of [`MARK`] in its environment.
    pub mark: String,
}

/// What a finished [`Test::run`] produced.
#[derive(Debug)]
pub struct Output {
    /// How procrun ended.
    pub status: ExitStatus,
    /// Stdout, decoded lossily.
    pub stdout: String,
    /// Stdout as written.
    pub stdout_bytes: Vec<u8>,
    /// Stdout split on `\n` (the last line even without one).
    pub lines: Vec<String>,
    /// Stderr, decoded lossily.
    pub stderr: String,
}

impl Output {
    /// The exit code (`None` after a death by signal).
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }
}

/// The real `procrun` binary as an `assert_cmd` command, with the scrubbed
/// environment and [`TIMEOUT`]. Prefer [`Test`].
pub fn procrun() -> assert_cmd::Command {
    let mut cmd = std::process::Command::new(procrun_path());
    scrub(&mut cmd);
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.timeout(TIMEOUT);
    cmd
}

/// Removes what would change procrun's behaviour from `cmd`'s environment:
/// its own settings (`PROCRUN_*`), colour and log settings, `PORT` (the base
/// port) and `PS` (what `run` of a plain command would pass on). The child
/// also starts with every signal at its default disposition and none
/// blocked ([`reset_signals`]).
pub fn scrub(cmd: &mut std::process::Command) {
    use std::os::unix::process::CommandExt as _;
    // SAFETY: the closure only calls sigaction and sigprocmask, which are
    // async-signal-safe, and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            reset_signals();
            Ok(())
        });
    }
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("PROCRUN_") || ["NO_COLOR", "PORT", "PS", "RUST_LOG"].contains(&k.as_ref())
        {
            cmd.env_remove(&key);
        }
    }
}

/// Sets every catchable signal to its default disposition and empties the
/// signal mask, in a child between fork and exec. An ignored signal stays
/// ignored across exec: under `nohup cargo test` (SIGHUP ignored) or from a
/// shell that traps a signal, procrun and its children would inherit that,
/// and tests that send the signal would wait for an end that never comes.
/// Rust's `Command` itself only resets SIGPIPE and the mask.
pub fn reset_signals() {
    // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument; the
    // standard signals are 1 to 31, and one that cannot be changed only
    // makes the call fail, which changes nothing.
    unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = libc::SIG_DFL;
        libc::sigemptyset(&mut action.sa_mask);
        for signal in 1..32 {
            if signal != libc::SIGKILL && signal != libc::SIGSTOP {
                libc::sigaction(signal, &action, std::ptr::null_mut());
            }
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
}

/// Path of the built binary.
pub fn procrun_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_procrun"))
}

/// The binary's path quoted for a `sh -c` script.
pub fn procrun_quoted() -> String {
    format!("'{}'", procrun_path().display())
}

/// A base port whose block is free right now: the base and the next few
/// ports of the first few process types (type `i`'s instance `j` gets
/// base + 100 × i + j). Nothing holds them, so another program may still
/// take one; procrun only warns when a port is in use.
pub fn free_port() -> u16 {
    use std::net::TcpListener;
    for _ in 0..100 {
        let Ok(probe) = TcpListener::bind("127.0.0.1:0") else {
            continue;
        };
        let Ok(base) = probe.local_addr().map(|a| a.port()) else {
            continue;
        };
        drop(probe);
        if u32::from(base) + 300 > u32::from(u16::MAX) {
            continue;
        }
        let block = (0..3).flat_map(|t| (0..3).map(move |i| base + 100 * t + i));
        let held: Option<Vec<TcpListener>> = block
            .map(|port| TcpListener::bind(("127.0.0.1", port)).ok())
            .collect();
        if held.is_some() {
            return base;
        }
    }
    panic!("no free block of ports found");
}

/// A private runtime directory (`XDG_RUNTIME_DIR` for the procruns of a
/// test), so that the test knows where the control sockets are and clients
/// find them.
#[derive(Debug)]
pub struct Runtime {
    dir: tempfile::TempDir,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new()
    }
}

impl Runtime {
    /// A new, empty one.
    pub fn new() -> Runtime {
        Runtime {
            dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The sockets in `$XDG_RUNTIME_DIR/procrun`.
    pub fn sockets(&self) -> Vec<PathBuf> {
        let dir = self.path().join("procrun");
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "sock"))
            .collect()
    }
}
