//! One running instance: a task that owns the child, waits for it and
//! signals its process group on request, and two reader tasks that pump its
//! stdout and stderr into the printer.
//!
//! Only this task reaps the child, so it alone knows whether the pid is
//! still the child's: signals requested after the child was reaped are
//! dropped, never sent to a recycled pid (pitfall 12).
//!
//! "Exited" is not tied to end-of-file (pitfall 5): after the child exits,
//! its pipes are drained only while data keeps coming, at most
//! [`DRAIN_IDLE`] without data and [`DRAIN_TOTAL`] in all, because a
//! grandchild may hold them open forever.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::output::lines::LineBuffer;
use crate::output::printer::OutputSender;
use crate::supervisor::signals::{Outcome, kill_group};

/// After the child exited: give up on a pipe that stays silent this long.
pub const DRAIN_IDLE: Duration = Duration::from_millis(100);

/// After the child exited: give up on a pipe after this long in all.
pub const DRAIN_TOTAL: Duration = Duration::from_secs(2);

/// A read shorter than this left the pipe far from full (64 KiB): there
/// was room to wait for more.
const SMALL_READ: usize = 48 * 1024;

/// A stream writing faster than this (bytes per second) would fill its
/// pipe during a pause, so it never asks for one.
const FAST_RATE: f64 = 400e6;

/// How often a stream re-estimates its rate.
const RATE_WINDOW: Duration = Duration::from_millis(1);

/// How long the runtime waits before parking after a small read (see
/// [`gather`]).
pub const GATHER: Duration = Duration::from_micros(100);

/// Set by a reader whose read was small, cleared by [`gather`].
static TRICKLING: AtomicBool = AtomicBool::new(false);

/// Called by the runtime before its thread parks (waits for I/O). After a
/// small read it first sleeps [`GATHER`], so that a writer that trickles
/// (a line-buffered program: one line per `write(2)`) has filled its pipe
/// with many lines by the next read: one wake-up, one read and one chunk
/// for the printer per batch instead of per few lines. A line waits at most
/// `GATHER` longer. A stream faster than [`FAST_RATE`] (which would fill
/// its pipe and be slowed by the pauses) asks for none.
pub fn gather() {
    if TRICKLING.swap(false, Ordering::Relaxed) {
        std::thread::sleep(GATHER);
    }
}

/// What a unit tells the dispatcher.
#[derive(Debug)]
pub enum Event {
    /// Instance `unit` ended and its output has been delivered.
    Exited {
        /// Index of the instance in the plan.
        unit: usize,
        /// How it ended.
        outcome: Outcome,
    },
    /// stdout can no longer be written (the reader went away).
    OutputClosed,
}

/// Runs instance `unit` until it has exited and its output is delivered.
pub async fn run(
    unit: usize,
    mut child: Child,
    mut control: mpsc::UnboundedReceiver<Signal>,
    events: mpsc::UnboundedSender<Event>,
    output: OutputSender,
) {
    let (exited_tx, exited_rx) = watch::channel(false);
    let mut pumps = Vec::with_capacity(2);
    if let Some(stdout) = child.stdout.take() {
        pumps.push(tokio::spawn(pump(
            stdout,
            unit,
            output.clone(),
            exited_rx.clone(),
        )));
    }
    if let Some(stderr) = child.stderr.take() {
        pumps.push(tokio::spawn(pump(stderr, unit, output, exited_rx)));
    }

    let status = loop {
        tokio::select! {
            biased;
            status = child.wait() => break status,
            Some(signal) = control.recv() => {
                // `id()` is None once reaped; until `wait` returns here the
                // child is at worst a zombie, whose pid cannot be reused.
                if let Some(pid) = child.id() {
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
            tracing::warn!("waiting for instance {unit}: {e}");
            Outcome::Exited(1)
        }
    };
    let _ = events.send(Event::Exited { unit, outcome });
}

/// Reads one pipe into whole lines until end-of-file, or until the drain
/// limits after the child's exit.
async fn pump(
    mut pipe: impl AsyncRead + Unpin,
    unit: usize,
    output: OutputSender,
    mut exited: watch::Receiver<bool>,
) {
    let mut lines = LineBuffer::new();
    let mut chunks = Vec::new();
    let mut drain_until: Option<Instant> = None;
    // The stream's rate, estimated over windows of RATE_WINDOW.
    let mut window = std::time::Instant::now();
    let mut window_bytes = 0;
    let mut fast = false;
    loop {
        let read = match drain_until {
            None => {
                tokio::select! {
                    biased;
                    read = pipe.read_buf(lines.spare()) => read,
                    _ = exited.wait_for(|e| *e) => {
                        drain_until = Some(Instant::now() + DRAIN_TOTAL);
                        continue;
                    }
                }
            }
            Some(until) => {
                let deadline = (Instant::now() + DRAIN_IDLE).min(until);
                match tokio::time::timeout_at(deadline, pipe.read_buf(lines.spare())).await {
                    Ok(read) => read,
                    Err(_) => {
                        tracing::debug!("instance {unit}: pipe still open after exit, left");
                        break;
                    }
                }
            }
        };
        match read {
            Ok(0) => break,
            Ok(n) => {
                window_bytes += n;
                let elapsed = window.elapsed();
                if elapsed >= RATE_WINDOW {
                    fast = window_bytes as f64 > FAST_RATE * elapsed.as_secs_f64();
                    window += elapsed;
                    window_bytes = 0;
                }
                if !fast && n < SMALL_READ {
                    TRICKLING.store(true, Ordering::Relaxed);
                }
                lines.filled(&mut chunks);
                for chunk in chunks.drain(..) {
                    output.lines(unit, chunk).await;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!("instance {unit}: reading output: {e}");
                break;
            }
        }
    }
    if let Some(last) = lines.finish() {
        output.lines(unit, last).await;
    }
}
