//! procrun on a pseudo-terminal, as a user at a terminal would run it: procrun
//! is a session leader whose controlling terminal is the pty, and its process
//! group is the terminal's foreground group, so bytes such as `\x03` written
//! to the master make the kernel send SIGINT to that group.
//!
//! Built on `nix::pty::openpty` (nix is already a dependency) rather than an
//! expect-style crate: the tests only need "write bytes" and "wait until the
//! output contains a string", with a hard deadline.
#![allow(dead_code)]

use std::fs::File;
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::{Launch, Project, TIMEOUT};

/// Appended to the output once the pty reports the end (every slave closed).
const EOF: &str = "\0EOF";

/// A process running on a pty.
pub struct PtyRun {
    child: Child,
    master: File,
    output: Arc<(Mutex<Vec<u8>>, Condvar)>,
    reaped: bool,
    mark: String,
    dir: PathBuf,
    _owned: Option<Project>,
}

impl PtyRun {
    /// Starts the command with stdin, stdout and stderr on a new pty.
    pub(crate) fn start(launch: Launch) -> PtyRun {
        let Launch {
            cmd: mut command,
            dir,
            owned,
            mark,
            ..
        } = launch;
        use std::os::unix::process::CommandExt as _;
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        for fd in [&slave, &pty.master] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .expect("close-on-exec");
        }
        command
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                nix::unistd::setsid()?;
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn on pty");
        // The parent's copies of the slave are gone with `command`.
        drop(command);
        let master = File::from(pty.master);
        let output = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let mut reader = master.try_clone().expect("dup master");
        let shared = Arc::clone(&output);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            loop {
                // EIO once every slave fd is closed: the end.
                let n = match reader.read(&mut buf) {
                    Ok(0) | Err(_) => 0,
                    Ok(n) => n,
                };
                let (lock, cond) = &*shared;
                let mut out = lock
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if n == 0 {
                    out.extend_from_slice(EOF.as_bytes());
                    cond.notify_all();
                    return;
                }
                out.extend_from_slice(&buf[..n]);
                cond.notify_all();
            }
        });
        PtyRun {
            child,
            master,
            output,
            reaped: false,
            mark,
            dir,
            _owned: owned,
        }
    }

    /// procrun's pid (also its process group and session).
    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// The app directory.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Everything the terminal showed so far.
    pub fn output(&self) -> String {
        let out = self.output.0.lock().expect("lock");
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Waits (at most [`TIMEOUT`]) until the terminal has shown `want`.
    pub fn expect(&self, want: &str) {
        self.expect_times(want, 1);
    }

    /// Waits (at most [`TIMEOUT`]) until the terminal has shown `want` at
    /// least `times` times.
    pub fn expect_times(&self, want: &str, times: usize) {
        let deadline = Instant::now() + TIMEOUT;
        let (lock, cond) = &*self.output;
        let mut out = lock.lock().expect("lock");
        while String::from_utf8_lossy(&out).matches(want).count() < times {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {want:?}; terminal: {:?}",
                String::from_utf8_lossy(&out)
            );
            out = cond.wait_timeout(out, left).expect("wait").0;
        }
    }

    /// Types `bytes` at the terminal.
    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to pty");
        self.master.flush().expect("flush pty");
    }

    /// Sends `signal` to procrun only.
    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).expect("signal procrun");
    }

    /// Waits (at most [`TIMEOUT`]) for procrun to exit; returns its status
    /// and what the terminal showed.
    pub fn finish(mut self) -> (ExitStatus, String) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                self.reaped = true;
                // The last output may still be in the pty: read to the end.
                self.expect(EOF);
                let output = self.output().replace(EOF, "");
                return (status, output);
            }
            assert!(
                Instant::now() < deadline,
                "procrun did not exit within {TIMEOUT:?}; terminal: {:?}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The raw fd of the master (for terminal ioctls in tests).
    pub fn master_fd(&self) -> i32 {
        self.master.as_raw_fd()
    }
}

impl Drop for PtyRun {
    fn drop(&mut self) {
        if !self.reaped {
            // procrun's session and group: only what this test started.
            let _ = killpg(self.pid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
        for pid in super::running::marked(&self.mark) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}
