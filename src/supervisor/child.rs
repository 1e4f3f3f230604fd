//! A running instance's process as its unit task holds it: the pid, a way
//! to wait for its exit, and its two output pipes.
//!
//! On Linux the process comes from [`super::vfork`] and is waited for
//! through its pidfd, which the runtime watches like any descriptor (the
//! kernel makes it readable when the process exits); elsewhere, or on a
//! kernel without what `vfork` needs, it is a `tokio::process::Child`.

use std::io;
use std::os::fd::OwnedFd;
use std::process::ExitStatus;

use tokio::net::unix::pipe;

/// How the exit is waited for.
#[derive(Debug)]
enum Waiter {
    /// A pidfd registered with the runtime.
    #[cfg(target_os = "linux")]
    Pidfd(tokio::io::unix::AsyncFd<OwnedFd>),
    /// tokio reaps it. Boxed, as is its wait below: this fallback would
    /// otherwise make every instance's unit task larger (~200 bytes).
    Tokio(Box<tokio::process::Child>),
}

/// One child process.
#[derive(Debug)]
pub struct Child {
    /// Its pid until it has been reaped.
    pid: Option<u32>,
    waiter: Waiter,
    /// The reading end of its stdout, until taken.
    pub stdout: Option<pipe::Receiver>,
    /// The reading end of its stderr, until taken.
    pub stderr: Option<pipe::Receiver>,
}

impl Child {
    /// A child started by [`super::vfork`]. Must be called within the
    /// runtime.
    #[cfg(target_os = "linux")]
    pub fn from_started(started: super::vfork::Started) -> io::Result<Child> {
        // SAFETY: an OwnedFd stays open, the same descriptor, as long as
        // the AsyncFd that owns it.
        let pidfd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                started.pidfd,
                tokio::io::Interest::READABLE,
            )
        }
        .map_err(io::Error::from)?;
        Ok(Child {
            pid: Some(started.pid),
            waiter: Waiter::Pidfd(pidfd),
            // Non-blocking pipes, made by vfork.
            stdout: Some(pipe::Receiver::from_owned_fd_unchecked(started.stdout)?),
            stderr: Some(pipe::Receiver::from_owned_fd_unchecked(started.stderr)?),
        })
    }

    /// A child tokio started, with piped stdout and stderr.
    pub fn from_tokio(mut child: tokio::process::Child) -> io::Result<Child> {
        let receiver = |fd: io::Result<OwnedFd>| fd.and_then(pipe::Receiver::from_owned_fd);
        let stdout = child.stdout.take().map(|s| receiver(s.into_owned_fd()));
        let stderr = child.stderr.take().map(|s| receiver(s.into_owned_fd()));
        Ok(Child {
            pid: child.id(),
            waiter: Waiter::Tokio(Box::new(child)),
            stdout: stdout.transpose()?,
            stderr: stderr.transpose()?,
        })
    }

    /// Its pid, `None` once reaped (the pid may belong to another process
    /// by then).
    pub fn id(&self) -> Option<u32> {
        self.pid
    }

    /// Waits for it to exit and reaps it. Cancel-safe: dropping the future
    /// before it completes loses nothing.
    pub async fn wait(&mut self) -> io::Result<ExitStatus> {
        match &mut self.waiter {
            #[cfg(target_os = "linux")]
            Waiter::Pidfd(fd) => {
                let Some(pid) = self.pid else {
                    return Err(io::Error::other("already reaped"));
                };
                loop {
                    let mut ready = fd.readable().await?;
                    let mut status = 0;
                    // SAFETY: waiting for our own child, without blocking.
                    let r = unsafe { libc::waitpid(pid as i32, &mut status, libc::WNOHANG) };
                    if r == pid as i32 {
                        self.pid = None;
                        use std::os::unix::process::ExitStatusExt as _;
                        return Ok(ExitStatus::from_raw(status));
                    }
                    if r < 0 {
                        let e = io::Error::last_os_error();
                        if e.kind() != io::ErrorKind::Interrupted {
                            return Err(e);
                        }
                        continue;
                    }
                    // Readable but not yet reapable (it cannot be, once
                    // readable: the kernel signals the exit first).
                    ready.clear_ready();
                }
            }
            Waiter::Tokio(child) => {
                let status = Box::pin(child.wait()).await;
                if status.is_ok() {
                    self.pid = None;
                }
                status
            }
        }
    }
}
