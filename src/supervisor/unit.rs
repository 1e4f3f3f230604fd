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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt as _};
use tokio::process::Child;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::outcome::Outcome;
use crate::output::lines::LineBuffer;
use crate::output::printer::{OutputSender, backlogged};
use crate::supervisor::signals::kill_group;

/// After the child exited: give up on a pipe that stays silent this long.
pub const DRAIN_IDLE: Duration = Duration::from_millis(100);

/// After the child exited: give up on a pipe after this long in all.
pub const DRAIN_TOTAL: Duration = Duration::from_secs(2);

/// A read shorter than this left the pipe far from full (64 KiB): there
/// was room to wait for more.
const SMALL_READ: usize = 48 * 1024;

/// A stream writing faster than this (bytes per second) would fill much of
/// its pipe even in the shortest pause, so it asks for none.
const FAST_RATE: f64 = 400e6;

/// How often a stream re-estimates its rate.
const RATE_WINDOW: Duration = Duration::from_millis(1);

/// A pause lasts as long as the stream that asked for it takes to write
/// this much (half its pipe, so it never has to wait for the reader)...
const GATHER_FILL: f64 = 32.0 * 1024.0;

/// ... but never longer than this.
pub const GATHER_MAX: Duration = Duration::from_millis(1);

/// The pause while a reader waits for the printer (see [`gather`]).
pub const GATHER_BACKLOGGED: Duration = Duration::from_micros(100);

/// The shortest pause asked for since the runtime last parked, in
/// nanoseconds; `u64::MAX` when none was.
static GATHER_NS: AtomicU64 = AtomicU64::new(u64::MAX);

/// Called by the runtime before its thread parks (waits for I/O). After a
/// small read it first sleeps a little, so that a writer that trickles (a
/// line-buffered program: one line per `write(2)`) has put many lines into
/// its pipe by the next read: one wake-up, one read and one chunk for the
/// printer per batch instead of per few lines. The pause is the shortest
/// any stream read since the last park asked for (see [`Pace`]), at most
/// [`GATHER_MAX`]; a stream faster than [`FAST_RATE`] asks for none, so it
/// is never slowed down, nor is any stream read alongside it.
///
/// While a reader waits for the printer (stdout is slower than the
/// children), its pipe keeps reporting new data that no task can take, and
/// the runtime would wake for each write of the children; then it pauses
/// [`GATHER_BACKLOGGED`] (the printer has up to `IN_FLIGHT` chunks queued).
pub fn gather() {
    let ns = GATHER_NS.swap(u64::MAX, Ordering::Relaxed);
    if ns != u64::MAX && ns > 0 {
        std::thread::sleep(Duration::from_nanos(ns));
    } else if ns == u64::MAX && backlogged() {
        std::thread::sleep(GATHER_BACKLOGGED);
    }
}

/// A stream's rate, and the pause it asks for after each read.
#[derive(Debug)]
struct Pace {
    window: std::time::Instant,
    window_bytes: usize,
    /// Bytes per second in the last complete window.
    rate: f64,
}

impl Pace {
    fn new() -> Self {
        Pace {
            window: std::time::Instant::now(),
            window_bytes: 0,
            rate: 0.0,
        }
    }

    /// Records a read of `n` bytes and asks for the pause it allows.
    fn read(&mut self, n: usize) {
        self.window_bytes += n;
        let elapsed = self.window.elapsed();
        if elapsed >= RATE_WINDOW {
            self.rate = self.window_bytes as f64 / elapsed.as_secs_f64();
            self.window += elapsed;
            self.window_bytes = 0;
        }
        let ns = if self.rate > FAST_RATE {
            0
        } else if n < SMALL_READ {
            let max = GATHER_MAX.as_nanos() as f64;
            (GATHER_FILL * 1e9 / self.rate).min(max) as u64
        } else {
            return;
        };
        GATHER_NS.fetch_min(ns, Ordering::Relaxed);
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
    let mut pace = Pace::new();
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
                pace.read(n);
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
