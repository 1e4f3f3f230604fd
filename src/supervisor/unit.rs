//! One running instance: a task that owns the child, waits for it and
//! signals its process group on request, and one reader task that pumps
//! its stdout and stderr into the printer (one that reads its terminal, for
//! an instance on a pty: [`super::pty::pump`]).
//!
//! Only this task reaps the child, so it alone knows whether the pid is
//! still the child's: signals requested after the child was reaped are
//! dropped, never sent to a process that recycled its pid.
//!
//! "Exited" is not tied to end-of-file: after the child exits,
//! its pipes are drained only while data keeps coming, at most
//! [`DRAIN_IDLE`] without data and [`DRAIN_TOTAL`] in all, because a
//! grandchild may hold them open forever.

use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::net::unix::pipe;
use tokio::sync::{Notify, mpsc};
use tokio::time::Instant;

use crate::outcome::Outcome;
use crate::output::json::Stream;
use crate::output::lines::{Chunk, LineBuffer};
use crate::output::notice::Key;
use crate::output::pacing::Pace;
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

/// What a unit shares with the dispatcher and its readers: the signals the
/// dispatcher asks for, in order, and whether the child has exited. One
/// small allocation per instance, where a tokio mpsc channel (cache-padded)
/// and a watch channel (nine `Notify`s) took about 850 bytes.
#[derive(Debug, Default)]
pub struct Link {
    signals: Mutex<VecDeque<Signal>>,
    signalled: Notify,
    exited: AtomicBool,
    exit: Notify,
}

impl Link {
    /// Asks the unit to signal its process group; dropped once the child
    /// has exited.
    pub fn signal(&self, signal: Signal) {
        if self.exited.load(Ordering::Acquire) {
            return;
        }
        self.queue().push_back(signal);
        self.signalled.notify_one();
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Signal>> {
        self.signals.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next signal asked for. Cancel-safe: a signal leaves the queue
    /// only when it is returned.
    async fn next_signal(&self) -> Signal {
        loop {
            let notified = self.signalled.notified();
            if let Some(signal) = self.queue().pop_front() {
                return signal;
            }
            notified.await;
        }
    }

    /// The child has exited (or its unit is gone): the readers drain.
    fn set_exited(&self) {
        self.exited.store(true, Ordering::Release);
        self.exit.notify_waiters();
    }

    /// Waits until the child has exited.
    pub async fn exited(&self) {
        loop {
            // Created before the check, so a `notify_waiters` after it
            // still wakes this wait.
            let notified = self.exit.notified();
            if self.exited.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }
}

/// Tells the readers of the exit when dropped: also if the unit's task is.
struct ExitOnDrop(Arc<Link>);

impl Drop for ExitOnDrop {
    fn drop(&mut self) {
        self.0.set_exited();
    }
}

/// Runs instance `key` until it has exited and its output is delivered.
///
/// This and `pump` return async blocks rather than being `async fn`s:
/// an `async fn`'s future keeps its arguments twice (as given, and moved
/// into its body), ~170 bytes here in every instance's task.
#[allow(clippy::manual_async_fn)]
pub fn run(
    key: Key,
    mut child: Child,
    terminal: Option<crate::supervisor::pty::Reader>,
    link: Arc<Link>,
    events: mpsc::UnboundedSender<Event>,
    output: OutputSender,
    log_match: Option<Arc<LogMatch>>,
) -> impl Future<Output = ()> {
    async move {
        let exit = ExitOnDrop(link.clone());
        let mut pumps = Vec::with_capacity(2);
        if let Some(reader) = terminal {
            pumps.push(tokio::spawn(crate::supervisor::pty::pump(
                reader,
                key,
                output.clone(),
                link.clone(),
                log_match.clone(),
            )));
        }
        let pipes = [
            child
                .stdout
                .take()
                .map(|p| Pipe::new(p, Stream::Stdout, &output)),
            child
                .stderr
                .take()
                .map(|p| Pipe::new(p, Stream::Stderr, &output)),
        ];
        pumps.push(tokio::spawn(pump(
            pipes,
            key,
            output,
            link.clone(),
            log_match,
        )));

        let status = loop {
            tokio::select! {
                biased;
                status = child.wait() => break status,
                signal = link.next_signal() => {
                    // `id()` is None once reaped; until `wait` returns here the
                    // child is at worst a zombie, whose pid cannot be reused.
                    if let Some(pid) = child.id() {
                        tracing::debug!("instance {}: {signal} to process group {pid}", key.0);
                        kill_group(pid, signal);
                    }
                }
            }
        };
        drop(exit);
        drop(link);
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

/// One of the child's pipes as its reader holds it.
struct Pipe {
    pipe: pipe::Receiver,
    stream: Stream,
    lines: LineBuffer,
    pace: Pace,
    /// Its share of the pipe budget, once it was enlarged.
    grown: Option<pipe_size::Grown>,
    /// After the child's exit: when this pipe is given up if silent.
    idle_until: Option<Instant>,
}

impl Pipe {
    fn new(pipe: pipe::Receiver, stream: Stream, output: &OutputSender) -> Self {
        Pipe {
            pipe,
            stream,
            lines: LineBuffer::new(),
            pace: output.pacing().stream(),
            grown: None,
            idle_until: None,
        }
    }

    /// Reads what the pipe holds; `Ok(0)` at end-of-file.
    fn read(&mut self) -> std::io::Result<usize> {
        let n = read_some(&self.pipe, self.lines.spare())?;
        self.pace.read(n);
        if n >= pipe_size::BUSY_READ && self.grown.is_none() {
            // A stream that writes flat out gets a larger pipe (within a
            // budget), and reads to match.
            self.grown = pipe_size::grow_busy(self.pipe.as_raw_fd());
            if self.grown.is_some() {
                self.lines.allow_large_reads();
            }
        }
        Ok(n)
    }
}

/// Waits until `pipe` (if still open) is readable; never for a closed one.
async fn readable(pipe: &Option<Pipe>) -> std::io::Result<()> {
    match pipe {
        Some(p) => p.pipe.readable().await,
        None => std::future::pending().await,
    }
}

/// Reads the child's two pipes into whole lines until end-of-file, or
/// until the drain limits after the child's exit. One task for both: a
/// task per pipe cost another kilobyte per instance. It waits for a pipe
/// to be readable before it takes a buffer, and lets the buffer go again
/// when no partial line is left in it: an instance that is quiet holds no
/// memory here.
#[allow(clippy::manual_async_fn)] // see `run`
fn pump(
    mut pipes: [Option<Pipe>; 2],
    key: Key,
    output: OutputSender,
    link: Arc<Link>,
    log_match: Option<Arc<LogMatch>>,
) -> impl Future<Output = ()> {
    async move {
        // Kept from read to read (~170 bytes once an instance has written):
        // made anew per read, a single writer flat out moved 5–15 % less.
        let mut chunks = Vec::new();
        let mut drain_until: Option<Instant> = None;
        let far = Instant::now() + Duration::from_secs(86_400 * 365);
        // The drain's timer, made at the exit: boxed, so that a running
        // instance's pump does not hold room for one.
        let mut timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>> = None;
        while pipes.iter().any(Option::is_some) {
            // After the exit: the earliest moment a pipe is given up.
            let give_up = pipes
                .iter()
                .flatten()
                .filter_map(|p| p.idle_until)
                .min()
                .map_or(far, |idle| drain_until.map_or(idle, |all| idle.min(all)));
            if give_up < far {
                match timer.as_mut() {
                    Some(t) => t.as_mut().reset(give_up),
                    None => timer = Some(Box::pin(tokio::time::sleep_until(give_up))),
                }
            }
            let [first, second] = &pipes;
            // Not biased: a pipe written flat out must not starve the other.
            let which = tokio::select! {
                ready = readable(first) => (0, ready),
                ready = readable(second) => (1, ready),
                () = link.exited(), if drain_until.is_none() => {
                    let now = Instant::now();
                    drain_until = Some(now + DRAIN_TOTAL);
                    for p in pipes.iter_mut().flatten() {
                        p.idle_until = Some(now + DRAIN_IDLE);
                    }
                    continue;
                }
                () = async {
                    match timer.as_mut() {
                        Some(t) => t.as_mut().await,
                        None => std::future::pending().await,
                    }
                }, if give_up < far => {
                    let now = Instant::now();
                    for slot in &mut pipes {
                        let expired = slot.as_ref().is_some_and(|p| {
                            drain_until.is_some_and(|all| now >= all)
                                || p.idle_until.is_some_and(|idle| now >= idle)
                        });
                        if expired {
                            tracing::debug!("instance {}: pipe still open after exit, left", key.0);
                            if let Some(p) = slot.take() {
                                Box::pin(finish(p, key, &output, &log_match)).await;
                            }
                        }
                    }
                    continue;
                }
            };
            let (i, ready) = which;
            let Some(p) = pipes[i].as_mut() else { continue };
            let read = ready.and_then(|()| p.read());
            match read {
                Ok(0) => {}
                Ok(_) => {
                    if drain_until.is_some() {
                        p.idle_until = Some(Instant::now() + DRAIN_IDLE);
                    }
                    let stream = p.stream;
                    p.lines.filled(&mut chunks);
                    // Before waiting for the printer: a thousand instances
                    // waiting with a read buffer each were most of procrun's
                    // memory at start.
                    p.lines.idle();
                    for chunk in chunks.drain(..) {
                        send(key, stream, chunk, &output, &log_match).await;
                    }
                    continue;
                }
                // Readiness was stale (tokio cleared it).
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    p.lines.idle();
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => tracing::debug!("instance {}: reading output: {e}", key.0),
            }
            // End of file, or an error: this pipe is done.
            if let Some(p) = pipes[i].take() {
                // Boxed, as above: once per pipe, and the pump's future, which
                // every instance keeps, need not hold room for it.
                Box::pin(finish(p, key, &output, &log_match)).await;
            }
        }
    }
}

/// Sends a chunk to the printer, telling the log check when it matched.
async fn send(
    key: Key,
    stream: Stream,
    chunk: Chunk,
    output: &OutputSender,
    log_match: &Option<Arc<LogMatch>>,
) {
    match log_match {
        Some(m) if m.scan(&chunk) => {
            output.lines(key, stream, chunk).await;
            m.report();
        }
        _ => output.lines(key, stream, chunk).await,
    }
}

/// A pipe ended: its last line, if it had no newline, goes out.
async fn finish(mut p: Pipe, key: Key, output: &OutputSender, log_match: &Option<Arc<LogMatch>>) {
    if let Some(last) = p.lines.finish() {
        send(key, p.stream, last, output, log_match).await;
    }
}
