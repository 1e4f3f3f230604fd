//! The printer: the one writer of stdout.
//!
//! Every instance's lines, and procrun's own messages, arrive on one FIFO
//! channel; a dedicated thread formats them (`HH:MM:SS web.1  | text`) and
//! writes them. A thread rather than a task, so a slow or stopped terminal
//! blocks only the printer, never the dispatcher that handles signals.
//!
//! Memory stays bounded: each chunk of output holds one of
//! [`IN_FLIGHT`] permits until it has been formatted, so when stdout is slow
//! the instances' readers wait, their pipes fill, and the children block on
//! write — back-pressure instead of buffering.
//!
//! On a terminal every batch of lines is written as soon as it arrives. On a
//! pipe or file, the lines already queued are gathered into one write of up
//! to [`BATCH`] bytes; a line is never held back waiting for more.
//!
//! A write error (a closed pipe: `procrun start | head -1`) is reported
//! through the `closed` callback and from then on output is discarded. When
//! stdout is a pipe, a watcher thread also reports the reader going away
//! at once, without waiting for procrun's next line, which may be long in
//! coming when the processes are quiet.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::output::lines::{Chunk, MAX_LINE};
use crate::output::style::{Clock, Prefix};

/// Chunks of output that may wait for the printer at once.
pub const IN_FLIGHT: usize = 32;

/// The largest single write when stdout is not a terminal.
pub const BATCH: usize = 128 * 1024;

/// Shown after a piece of a line longer than [`MAX_LINE`].
pub const SPLIT_MARK: &str = " [procrun: line longer than 1 MiB, continued on the next line]";

const _: () = assert!(MAX_LINE == 1024 * 1024, "SPLIT_MARK names the cap");

/// What the printer prints.
#[derive(Debug)]
pub enum Message {
    /// Lines of instance number `unit`.
    Output {
        /// Index of the instance in the plan.
        unit: usize,
        /// Its lines.
        chunk: Chunk,
        /// Released once formatted.
        permit: OwnedSemaphorePermit,
    },
    /// One of procrun's own messages, shown under `system`.
    System(String),
}

/// Readers waiting for a permit, in every printer of the process.
static WAITING: AtomicUsize = AtomicUsize::new(0);

/// Whether a reader is waiting for the printer (stdout is the bottleneck).
/// Its pipe keeps signalling new data that it cannot take yet, so the
/// runtime would wake for nothing (see `supervisor::unit::gather`).
pub fn backlogged() -> bool {
    WAITING.load(Ordering::Relaxed) > 0
}

/// Counts a waiting reader while alive (also if its future is dropped).
struct Waiting;

impl Waiting {
    fn new() -> Self {
        WAITING.fetch_add(1, Ordering::Relaxed);
        Waiting
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        WAITING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The sending side, cloned into every reader.
#[derive(Clone, Debug)]
pub struct OutputSender {
    tx: mpsc::UnboundedSender<Message>,
    permits: Arc<Semaphore>,
}

impl OutputSender {
    /// Queues lines of instance `unit`, waiting while [`IN_FLIGHT`] chunks
    /// are already queued.
    pub async fn lines(&self, unit: usize, chunk: Chunk) {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let _waiting = Waiting::new();
                let Ok(permit) = self.permits.clone().acquire_owned().await else {
                    return;
                };
                permit
            }
        };
        let _ = self.tx.send(Message::Output {
            unit,
            chunk,
            permit,
        });
    }

    /// Queues a message under `system`. Never waits: procrun's own messages
    /// are few, and the dispatcher must stay responsive.
    pub fn system(&self, text: impl Into<String>) {
        let _ = self.tx.send(Message::System(text.into()));
    }
}

/// How lines are shown.
#[derive(Debug)]
pub struct Format {
    /// One prefix per instance, in plan order.
    pub instances: Vec<Prefix>,
    /// The prefix of `system`.
    pub system: Prefix,
    /// Whether lines start with `HH:MM:SS`.
    pub timestamps: bool,
}

impl Format {
    /// Appends the formatted lines of `message` to `out`.
    pub fn render(&self, clock: &mut Clock, message: &Message, out: &mut Vec<u8>) {
        match message {
            Message::Output { unit, chunk, .. } => {
                let prefix = &self.instances[*unit];
                let time: &[u8] = if self.timestamps { clock.now() } else { b"" };
                let valid = std::str::from_utf8(&chunk.data).is_ok();
                chunk.for_each_line(|line, split| {
                    out.extend_from_slice(&prefix.before);
                    out.extend_from_slice(time);
                    out.extend_from_slice(&prefix.after);
                    if valid {
                        out.extend_from_slice(line);
                    } else {
                        out.extend_from_slice(String::from_utf8_lossy(line).as_bytes());
                    }
                    if split {
                        out.extend_from_slice(SPLIT_MARK.as_bytes());
                    }
                    out.push(b'\n');
                });
            }
            Message::System(text) => {
                let time: &[u8] = if self.timestamps { clock.now() } else { b"" };
                for line in text.lines() {
                    out.extend_from_slice(&self.system.before);
                    out.extend_from_slice(time);
                    out.extend_from_slice(&self.system.after);
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
            }
        }
    }
}

/// The running printer.
#[derive(Debug)]
pub struct Printer {
    thread: JoinHandle<()>,
}

impl Printer {
    /// Starts the printer thread writing to stdout. `tty` chooses per-batch
    /// writes; `closed` is called (perhaps more than once) when stdout stops
    /// accepting output.
    pub fn start(
        format: Format,
        tty: bool,
        closed: impl Fn() + Send + Sync + 'static,
    ) -> std::io::Result<(OutputSender, Printer)> {
        let closed = Arc::new(closed);
        if stdout_is_pipe() {
            let notify = Arc::clone(&closed);
            std::thread::Builder::new()
                .name("stdout-watch".into())
                .spawn(move || {
                    if wait_for_reader_gone() {
                        notify();
                    }
                })?;
        }
        let closed = move || closed();
        let (tx, rx) = mpsc::unbounded_channel();
        let sender = OutputSender {
            tx,
            permits: Arc::new(Semaphore::new(IN_FLIGHT)),
        };
        let thread = std::thread::Builder::new()
            .name("printer".into())
            .spawn(move || print_loop(format, tty, rx, std::io::stdout().lock(), closed))?;
        Ok((sender, Printer { thread }))
    }

    /// Waits until everything queued has been written (every sender must be
    /// gone).
    pub fn join(self) {
        let _ = self.thread.join();
    }
}

/// Whether stdout is a pipe (or FIFO).
fn stdout_is_pipe() -> bool {
    use std::os::unix::fs::FileTypeExt as _;
    let stdout = std::io::stdout();
    std::os::fd::AsFd::as_fd(&stdout)
        .try_clone_to_owned()
        .map(std::fs::File::from)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.file_type().is_fifo())
}

/// Blocks until the reading end of the stdout pipe is closed; true then.
/// Asking for no event at all makes poll report only errors and hang-ups,
/// which is what a pipe whose reader left signals.
fn wait_for_reader_gone() -> bool {
    loop {
        let mut fd = libc::pollfd {
            fd: 1,
            events: 0,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no timeout.
        let n = unsafe { libc::poll(&mut fd, 1, -1) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return false;
        }
        if fd.revents & (libc::POLLERR | libc::POLLHUP) != 0 {
            return true;
        }
        if fd.revents & libc::POLLNVAL != 0 {
            return false;
        }
    }
}

fn print_loop(
    format: Format,
    tty: bool,
    mut rx: mpsc::UnboundedReceiver<Message>,
    mut out: impl Write,
    closed: impl FnOnce(),
) {
    let mut clock = Clock::default();
    let mut buf = Vec::with_capacity(if tty { 4096 } else { BATCH });
    let mut closed = Some(closed);
    while let Some(message) = rx.blocking_recv() {
        if closed.is_none() {
            continue; // stdout is gone: drop output, release permits
        }
        format.render(&mut clock, &message, &mut buf);
        drop(message);
        if !tty {
            while buf.len() < BATCH {
                let Ok(more) = rx.try_recv() else { break };
                format.render(&mut clock, &more, &mut buf);
            }
        }
        let written = out.write_all(&buf).and_then(|()| out.flush());
        buf.clear();
        if buf.capacity() > 4 * BATCH {
            buf.shrink_to(BATCH);
        }
        if written.is_err()
            && let Some(notify) = closed.take()
        {
            notify();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::lines::Tail;

    fn format(timestamps: bool) -> Format {
        Format {
            instances: vec![
                Prefix::instance("web.1", 0, 8, false, timestamps),
                Prefix::instance("worker.1", 1, 8, false, timestamps),
            ],
            system: Prefix::system(8, false, timestamps),
            timestamps,
        }
    }

    fn render(f: &Format, unit: usize, data: &[u8], tail: Tail) -> String {
        let permit = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a permit");
        let message = Message::Output {
            unit,
            chunk: Chunk {
                data: data.to_vec(),
                tail,
            },
            permit,
        };
        let mut out = Vec::new();
        f.render(&mut Clock::default(), &message, &mut out);
        String::from_utf8(out).expect("printer output is UTF-8")
    }

    #[test]
    fn lines_get_aligned_prefixes() {
        let f = format(false);
        assert_eq!(
            render(&f, 0, b"a\nb\r\n", Tail::Lines),
            "web.1    | a\nweb.1    | b\n"
        );
        assert_eq!(render(&f, 1, b"end", Tail::Eof), "worker.1 | end\n");
        let mut out = Vec::new();
        f.render(
            &mut Clock::default(),
            &Message::System("hi".into()),
            &mut out,
        );
        assert_eq!(out, b"system   | hi\n");
    }

    #[test]
    fn timestamps_lead() {
        let text = render(&format(true), 0, b"a\n", Tail::Lines);
        assert_eq!(text.len(), "HH:MM:SS web.1    | a\n".len(), "{text}");
        assert!(text.ends_with(" web.1    | a\n"), "{text}");
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let f = format(false);
        assert_eq!(
            render(&f, 0, b"ok\nbad \xff\n", Tail::Lines),
            "web.1    | ok\nweb.1    | bad \u{fffd}\n"
        );
    }

    #[test]
    fn split_pieces_are_marked() {
        let f = format(false);
        assert_eq!(
            render(&f, 0, b"abc", Tail::Split),
            format!("web.1    | abc{SPLIT_MARK}\n")
        );
    }
}
