//! Driving a long-running `procrun start` from a test: read its output line
//! by line as it comes, send it signals, wait for events with hard
//! deadlines, and check which processes are still alive.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::support::{Project, procrun_path};

/// How long a test waits for any one event before failing.
pub const WAIT: Duration = Duration::from_secs(20);

/// A base port unlikely to collide with other tests running at the same
/// time on this machine (each type uses base + 100 × index).
pub fn unique_port() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let slot = (std::process::id().wrapping_mul(7919).wrapping_add(n * 131)) % 300;
    (20_000 + slot * 128).to_string()
}

/// A running `procrun start`, its stdout read by a thread.
pub struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line seen so far.
    pub seen: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    status: Option<ExitStatus>,
}

impl Running {
    /// Starts `procrun ARGS…` in the project directory with a clean
    /// environment (see `support::procrun`), plus `extra_env`.
    pub fn start(project: &Project, args: &[&str], extra_env: &[(&str, &str)]) -> Running {
        Running::start_in(project.path(), args, extra_env)
    }

    /// `procrun start --no-timestamp` on a base port of its own, plus
    /// `extra` arguments.
    pub fn start_app(project: &Project, extra: &[&str]) -> Running {
        let port = unique_port();
        let mut args = vec!["start", "-p", &port, "--no-timestamp"];
        args.extend_from_slice(extra);
        Running::start(project, &args, &[])
    }

    /// Like [`Running::start`], in directory `dir`.
    pub fn start_in(dir: &Path, args: &[&str], extra_env: &[(&str, &str)]) -> Running {
        let mut cmd = std::process::Command::new(procrun_path());
        cmd.args(args).current_dir(dir);
        crate::support::scrub(&mut cmd);
        cmd.envs(extra_env.iter().copied());
        Running::spawn(cmd)
    }

    /// Runs `cmd` (which must run procrun) with its stdout and stderr read.
    pub fn spawn(mut cmd: std::process::Command) -> Running {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn procrun");
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.strip_suffix('\n').unwrap_or(&text).to_owned();
                        if tx.send(text).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        Running {
            child,
            lines: rx,
            seen: Vec::new(),
            stderr: Some(stderr),
            status: None,
        }
    }

    /// procrun's pid.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Waits for a stdout line containing `needle`; returns it.
    pub fn wait_for(&mut self, needle: &str) -> String {
        self.wait_until(|l| l.contains(needle), needle)
    }

    /// Waits for a stdout line matching `pred`; returns it.
    pub fn wait_until(&mut self, pred: impl Fn(&str) -> bool, what: &str) -> String {
        if let Some(l) = self.seen.iter().find(|l| pred(l)) {
            return l.clone();
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(_) => {
                    let seen = self.seen.join("\n");
                    self.kill();
                    panic!("no line with {what:?} within {WAIT:?}; output so far:\n{seen}");
                }
            }
        }
    }

    /// Sends `signal` to procrun.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid()), signal)
            .expect("signal procrun");
    }

    /// Waits for procrun to exit (killing it after [`WAIT`]), then collects
    /// the rest of its output. Returns the exit code (`None` if killed).
    pub fn wait_exit(&mut self) -> Option<i32> {
        self.wait_exit_within(WAIT)
    }

    /// Like [`Running::wait_exit`] with another limit.
    pub fn wait_exit_within(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let seen = self.seen.join("\n");
                self.kill();
                panic!("procrun did not exit within {limit:?}; output so far:\n{seen}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.status = Some(status);
        // stdout closes when procrun and every holder of the pipe are gone.
        let deadline = Instant::now() + Duration::from_secs(5);
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        status.code()
    }

    /// procrun's stderr (after exit).
    pub fn stderr(&mut self) -> String {
        self.stderr
            .take()
            .map(|h| h.join().unwrap_or_default())
            .unwrap_or_default()
    }

    /// The output as one string.
    pub fn transcript(&self) -> String {
        self.seen.join("\n")
    }

    /// The pid in a `NAME started with pid N` line.
    pub fn pid_of(&mut self, name: &str) -> i32 {
        let line = self.wait_for(&format!("{name} started with pid "));
        number_after(&line, "started with pid ")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill();
        }
    }
}

/// The number right after `marker` in `line`.
pub fn number_after(line: &str, marker: &str) -> i32 {
    let start = line
        .find(marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| {
            panic!("{marker:?} not in {line:?}");
        });
    line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {marker:?} in {line:?}"))
}

/// Whether `pid` is a live process (a zombie counts as dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => {
            // No /proc (not Linux): ask the kernel.
            !std::path::Path::new("/proc/self").exists()
                && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        }
    }
}

/// Waits until `pid` is dead; false if it is still alive after `limit`.
pub fn gone_within(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Kills processes a test started, when it ends (pass or fail), so nothing
/// leaks from a failing test. Only pids the test itself learned are used.
#[derive(Default)]
pub struct Cleanup(pub Vec<i32>);

impl Cleanup {
    /// Also kill `pid` at the end.
    pub fn add(&mut self, pid: i32) -> i32 {
        self.0.push(pid);
        pid
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if pid > 1 && alive(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}
