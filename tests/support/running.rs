//! A procrun process running in the background, for tests that interact
//! with it while it runs (send it signals, wait for a line).
//!
//! procrun is started in its own process group, so that a test that times out
//! can kill procrun and everything it started, and nothing else.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use crate::support::TIMEOUT;

/// `program` in `dir` with procrun's settings removed from the environment,
/// as `support::procrun()` does, for tests that need a `std` command.
pub fn clean_command(program: impl AsRef<OsStr>, dir: &Path) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(dir);
    crate::support::scrub(&mut cmd);
    cmd
}

/// `procrun run sh -c SCRIPT` in `dir`.
pub fn procrun_run_sh(dir: &Path, script: &str) -> Command {
    let mut cmd = clean_command(crate::support::procrun_path(), dir);
    cmd.args(["run", "sh", "-c", script]);
    cmd
}

/// A running procrun whose stdout is read line by line.
pub struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
    reaped: bool,
}

impl Running {
    /// Starts `command` (built with `support::procrun_path()`), stdout piped,
    /// stdin closed, stderr piped, in a new process group.
    pub fn start(mut command: Command) -> Running {
        use std::os::unix::process::CommandExt as _;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command.spawn().expect("spawn procrun");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
            reaped: false,
        }
    }

    /// procrun's pid.
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Waits (at most [`TIMEOUT`]) for a stdout line equal to `want`.
    pub fn expect_line(&mut self, want: &str) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line == want;
                    self.seen.push(line);
                    if done {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "timed out waiting for {want:?}; stdout so far: {:?}",
                        self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("stdout closed before {want:?}; stdout: {:?}", self.seen)
                }
            }
        }
    }

    /// Sends `signal` to procrun itself (not its group).
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal procrun");
    }

    /// Waits (at most [`TIMEOUT`]) for procrun to exit; returns its status,
    /// the rest of stdout (lines) and all of stderr.
    pub fn finish(mut self) -> (ExitStatus, Vec<String>, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "procrun did not exit within {TIMEOUT:?}; stdout: {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        self.reaped = true;
        let mut rest = std::mem::take(&mut self.seen);
        while let Ok(line) = self.lines.recv_timeout(TIMEOUT) {
            rest.push(line);
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            use std::io::Read as _;
            let _ = pipe.read_to_string(&mut stderr);
        }
        (status, rest, stderr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped {
            // procrun's own group: procrun and what it started, nothing else.
            let _ = killpg(self.pid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}
