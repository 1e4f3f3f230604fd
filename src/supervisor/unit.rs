//! One running instance: a task that owns the child, waits for it and
//! signals its process group on request, and two reader tasks that pump its
//! stdout and stderr into the printer (one that reads its terminal, for an
//! instance on a pty: [`super::pty::pump`]).
//!
//! Only this task reaps the child, so it alone knows whether the pid is
//! still the child's: signals requested after the child was reaped are
//! dropped, never sent to a process that recycled its pid.
//!
//! "Exited" is not tied to end-of-file: after the child exits,
//! its pipes are drained only while data keeps coming, at most
//! [`DRAIN_IDLE`] without data and [`DRAIN_TOTAL`] in all, because a
//! grandchild may hold them open forever.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::outcome::Outcome;
use crate::output::json::Stream;
use crate::output::lines::LineBuffer;
use crate::output::notice::Key;
use crate::output::pipe_size;
use crate::output::printer::OutputSender;
use crate::supervisor::child::Child;
use crate::supervisor::probe::LogMatch;
use crate::supervisor::signals::kill_group;

/// After the child exited: give up on a pipe that stays silent this long.
pub const DRAIN_IDLE: Duration = Duration::from_millis(100);

/// After the child exited: give up on a pipe after this long in all.
pub const DRAIN_TOTAL: Duration = Duration::from_secs(2);

/// What a unit tells the dispatcher.
#[derive(Debug)]
pub enum Event {
    /// Instance `unit` ended and its output has been delivered.
    Exited {
        /// Which instance.
        key: Key,
        /// How it ended.
        outcome: Outcome,
    },
    /// stdout can no longer be written: the reader went away.
    OutputClosed,
    /// Writing stdout failed otherwise (a full disk, an I/O error).
    OutputFailed(String),
    /// The readiness probe numbered `serial` of instance `key` succeeded.
    Ready {
        /// Which instance.
        key: Key,
        /// Which probe (an older one's success is stale).
        serial: u64,
    },
}

/// Runs instance `key` until it has exited and its output is delivered.
pub async fn run(
    key: Key,
    mut child: Child,
    terminal: Option<crate::supervisor::pty::Reader>,
    mut control: mpsc::UnboundedReceiver<Signal>,
    events: mpsc::UnboundedSender<Event>,
    output: OutputSender,
    log_match: Option<Arc<LogMatch>>,
) {
    let (exited_tx, exited_rx) = watch::channel(false);
    let mut pumps = Vec::with_capacity(2);
    if let Some(reader) = terminal {
        pumps.push(tokio::spawn(crate::supervisor::pty::pump(
            reader,
            key,
            output.clone(),
            exited_rx.clone(),
            log_match.clone(),
        )));
    }
    if let Some(stdout) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(
            stdout,
            key,
            Stream::Stdout,
            output.clone(),
            exited_rx.clone(),
            log_match.clone(),
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(
            stderr,
            key,
            Stream::Stderr,
            output,
            exited_rx,
            log_match,
        )));
    }

    let status = loop {
        tokio::select! {
            biased;
            status = child.wait() => break status,
            Some(signal) = control.recv() => {
                // `id()` is None once reaped; until `wait` returns here the
                // child is at worst a zombie, whose pid cannot be reused.
                if let Some(pid) = child.id() {
                    tracing::debug!("instance {}: {signal} to process group {pid}", key.0);
                    kill_group(pid, signal);
                }
            }
        }
    };
    drop(control);
    let _ = exited_tx.send(true);
    for p in pumps {
        let _ = p.await;
    }
    let outcome = match status {
        Ok(status) => Outcome::from_status(status),
        Err(e) => {
            tracing::warn!("waiting for instance {}: {e}", key.0);
            Outcome::Exited(1)
        }
    };
    let _ = events.send(Event::Exited { key, outcome });
}

/// Reads what `pipe` holds into the free capacity of `buf`. A read that
/// did not fill the room it was given emptied the pipe: its readiness is
/// cleared at once, so that the next wait is a real one rather than a
/// read that fails with EAGAIN (a third of all reads with 16 busy
/// writers).
fn read_some(pipe: &pipe::Receiver, buf: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut emptied = None;
    let read = pipe.try_io(|| {
        let room = buf.spare_capacity_mut();
        // SAFETY: reads at most `room.len()` bytes into the vector's free
        // capacity, which is then marked as filled by exactly that much.
        let n = unsafe { libc::read(pipe.as_raw_fd(), room.as_mut_ptr().cast(), room.len()) };
        if n < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = n as usize;
        let full = n == room.len();
        // SAFETY: the kernel wrote `n` bytes there.
        unsafe { buf.set_len(buf.len() + n) };
        if full {
            Ok(n)
        } else {
            emptied = Some(n);
            Err(std::io::ErrorKind::WouldBlock.into())
        }
    });
    match emptied {
        Some(n) => Ok(n),
        None => read,
    }
}

/// Reads one pipe into whole lines until end-of-file, or until the drain
/// limits after the child's exit. It waits for the pipe to be readable
/// before it takes a buffer, and lets the buffer go again when no partial
/// line is left in it: an instance that is quiet holds no memory here.
async fn pump(
    pipe: pipe::Receiver,
    key: Key,
    stream: Stream,
    output: OutputSender,
    mut exited: watch::Receiver<bool>,
    log_match: Option<Arc<LogMatch>>,
) {
    let mut lines = LineBuffer::new();
    let mut chunks = Vec::new();
    let mut drain_until: Option<Instant> = None;
    let mut pace = output.pacing().stream();
    // A stream that writes flat out gets a larger pipe (within a budget).
    let mut grown = None;
    loop {
        let read = match drain_until {
            None => {
                tokio::select! {
                    biased;
                    ready = pipe.readable() => ready.and_then(|()| read_some(&pipe, lines.spare())),
                    _ = exited.wait_for(|e| *e) => {
                        drain_until = Some(Instant::now() + DRAIN_TOTAL);
                        continue;
                    }
                }
            }
            Some(until) => {
                let deadline = (Instant::now() + DRAIN_IDLE).min(until);
                match tokio::time::timeout_at(deadline, pipe.readable()).await {
                    Ok(ready) => ready.and_then(|()| read_some(&pipe, lines.spare())),
                    Err(_) => {
                        tracing::debug!("instance {}: pipe still open after exit, left", key.0);
                        break;
                    }
                }
            }
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                pace.read(n);
                if n >= pipe_size::BUSY_READ && grown.is_none() {
                    grown = pipe_size::grow_busy(pipe.as_raw_fd());
                    if grown.is_some() {
                        lines.allow_large_reads();
                    }
                }
                lines.filled(&mut chunks);
                for chunk in chunks.drain(..) {
                    match &log_match {
                        Some(m) if m.scan(&chunk) => {
                            output.lines(key, stream, chunk).await;
                            m.report();
                        }
                        _ => output.lines(key, stream, chunk).await,
                    }
                }
                lines.idle();
            }
            // Readiness was stale (tokio cleared it).
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => lines.idle(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!("instance {}: reading output: {e}", key.0);
                break;
            }
        }
    }
    if let Some(last) = lines.finish() {
        let found = log_match.as_ref().is_some_and(|m| m.scan(&last));
        output.lines(key, stream, last).await;
        if let Some(m) = log_match.as_ref().filter(|_| found) {
            m.report();
        }
    }
}
