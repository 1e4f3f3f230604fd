//! The printer: the one writer of stdout.
//!
//! Every instance's lines, and procrun's own messages, arrive on one FIFO
//! channel; a dedicated thread formats them (`HH:MM:SS web.1  | text`) and
//! writes them. A thread rather than a task, so a slow or stopped terminal
//! blocks only the printer, never the dispatcher that handles signals.
//!
//! The channel carries batches: the senders queue messages in one shared
//! list, which goes to the printer when the runtime is about to wait for
//! I/O ([`OutputSender::flush`], called from the runtime's park hook), when
//! it holds a [`BATCH`] of output or 256 messages, and when a reader must
//! wait for a permit. So the printer is woken once per round of reads,
//! not once per chunk: on a busy machine each wake-up of the other thread
//! costs more than formatting the chunk (bench/RESULTS.md). The order of
//! messages is the order they were queued in.
//!
//! Memory stays bounded: each chunk of output holds one of
//! [`IN_FLIGHT`] permits per [`PERMIT_BYTES`] until it has been formatted,
//! so when stdout is slow
//! the instances' readers wait, their pipes fill, and the children block on
//! write — back-pressure instead of buffering.
//!
//! On a terminal every batch of lines is written as soon as it arrives. On a
//! pipe or file, the lines already queued are gathered into one write of up
//! to [`BATCH`] bytes; a line is never held back waiting for more.
//!
//! A write error is reported through the `closed` callback, with the error,
//! and from then on output is discarded: a closed pipe (`procrun start |
//! head -1`, EPIPE) means the reader went away; any other error (a full
//! disk, EIO) is a failure. When
//! stdout is a pipe, a watcher thread also reports the reader going away
//! at once, without waiting for procrun's next line, which may be long in
//! coming when the processes are quiet.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::output::json::Stream;
use crate::output::lines::{Chunk, MAX_LINE};
use crate::output::notice::{Ident, Key, Notice};
use crate::output::pacing::Pacing;
pub use crate::output::render::{Looks, Renderer};
use crate::output::ring::Ring;

/// Units of output that may wait for the printer at once.
pub const IN_FLIGHT: usize = 32;

/// The output one permit covers: a chunk holds one permit per started
/// 64 KiB (2 MiB in flight at most, however large the reads).
pub const PERMIT_BYTES: usize = 64 * 1024;

/// The largest single write when stdout is not a terminal.
pub const BATCH: usize = 128 * 1024;

/// Messages queued at most before they go to the printer, if the runtime
/// has not waited for I/O meanwhile (a busy runtime must not hold
/// procrun's notices back).
const BATCH_MESSAGES: usize = 256;

/// Shown after a piece of a line longer than [`MAX_LINE`].
pub const SPLIT_MARK: &str = " [procrun: line longer than 1 MiB, continued on the next line]";

const _: () = assert!(MAX_LINE == 1024 * 1024, "SPLIT_MARK names the cap");

/// What the printer prints.
#[derive(Debug)]
pub enum Message {
    /// A new instance: from now on its lines and notices may arrive.
    Register(Ident),
    /// Lines of one instance's stream.
    Output {
        /// Which instance.
        key: Key,
        /// Which of its pipes.
        stream: Stream,
        /// Its lines.
        chunk: Chunk,
        /// Released once formatted.
        permit: OwnedSemaphorePermit,
    },
    /// One of procrun's own messages.
    Notice(Notice),
}

/// Messages queued for the printer, not yet sent.
#[derive(Debug, Default)]
struct Pending {
    messages: Vec<Message>,
    /// Bytes of output among them.
    bytes: usize,
}

/// What every clone of the sender shares.
#[derive(Debug)]
struct Shared {
    tx: mpsc::UnboundedSender<Vec<Message>>,
    pending: Mutex<Pending>,
}

impl Shared {
    /// Queues `message`; true when the queue should go now.
    fn push(&self, message: Message, bytes: usize) -> bool {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        pending.messages.push(message);
        pending.bytes += bytes;
        pending.bytes >= BATCH || pending.messages.len() >= BATCH_MESSAGES
    }

    fn flush(&self) {
        let batch = {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.messages.is_empty() {
                return;
            }
            pending.bytes = 0;
            std::mem::take(&mut pending.messages)
        };
        let _ = self.tx.send(batch);
    }
}

impl Drop for Shared {
    /// The last sender is gone: what is still queued goes out.
    fn drop(&mut self) {
        self.flush();
    }
}

/// The sending side, cloned into every reader.
#[derive(Clone, Debug)]
pub struct OutputSender {
    shared: Arc<Shared>,
    permits: Arc<Semaphore>,
    pacing: Pacing,
}

impl OutputSender {
    /// A sender whose batches go to `tx`.
    fn new(tx: mpsc::UnboundedSender<Vec<Message>>) -> Self {
        OutputSender {
            shared: Arc::new(Shared {
                tx,
                pending: Mutex::default(),
            }),
            permits: Arc::new(Semaphore::new(IN_FLIGHT)),
            pacing: Pacing::default(),
        }
    }

    /// Queues lines of instance `key`, waiting while [`IN_FLIGHT`] permits
    /// are taken by output already queued.
    pub async fn lines(&self, key: Key, stream: Stream, chunk: Chunk) {
        let units = (chunk.data.len() / PERMIT_BYTES + 1).min(IN_FLIGHT) as u32;
        let permit = match self.permits.clone().try_acquire_many_owned(units) {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                // The printer may be idle, with our chunks still queued.
                self.flush();
                let _waiting = self.pacing.waiting();
                // Boxed: only a reader that waits pays for the wait's room,
                // not every idle instance's reader task.
                let acquire = Box::pin(self.permits.clone().acquire_many_owned(units));
                let Ok(permit) = acquire.await else {
                    return;
                };
                permit
            }
        };
        let bytes = chunk.data.len();
        let message = Message::Output {
            key,
            stream,
            chunk,
            permit,
        };
        if self.shared.push(message, bytes) {
            self.flush();
        }
    }

    /// Makes an instance known to the printer (its prefix, its colour).
    pub fn register(&self, ident: Ident) {
        if self.shared.push(Message::Register(ident), 0) {
            self.flush();
        }
    }

    /// Queues one of procrun's messages (sent with the round's output, in
    /// order). Never waits: the dispatcher must stay responsive.
    pub fn notice(&self, notice: Notice) {
        if self.shared.push(Message::Notice(notice), 0) {
            self.flush();
        }
    }

    /// Sends what is queued to the printer. The runtime calls it before it
    /// waits for I/O.
    pub fn flush(&self) {
        self.shared.flush();
    }

    /// The run's output pacing (see [`crate::output::pacing`]).
    pub fn pacing(&self) -> &Pacing {
        &self.pacing
    }
}

/// The running printer.
#[derive(Debug)]
pub struct Printer {
    thread: JoinHandle<()>,
}

impl Printer {
    /// Starts the printer thread writing to stdout. `tty` chooses per-batch
    /// writes; every message written is then kept in `ring`; `closed` is called (perhaps more than once) when stdout stops
    /// accepting output: with the write error, or with `None` when the
    /// reader of the stdout pipe went away.
    pub fn start(
        looks: Looks,
        tty: bool,
        ring: Option<Arc<Ring>>,
        closed: impl Fn(Option<std::io::Error>) + Send + Sync + 'static,
    ) -> std::io::Result<(OutputSender, Printer)> {
        let closed = Arc::new(closed);
        if stdout_is_pipe() {
            // Fewer, larger writes and reads on both sides of it.
            crate::output::pipe_size::grow(1);
            let notify = Arc::clone(&closed);
            std::thread::Builder::new()
                .name("stdout-watch".into())
                .spawn(move || {
                    if wait_for_reader_gone() {
                        notify(None);
                    }
                })?;
        }
        let closed = move |e: std::io::Error| closed(Some(e));
        let (tx, rx) = mpsc::unbounded_channel();
        let sender = OutputSender::new(tx);
        let thread = std::thread::Builder::new()
            .name("printer".into())
            .spawn(move || {
                print_loop(
                    Renderer::new(looks),
                    tty,
                    rx,
                    std::io::stdout().lock(),
                    ring.as_deref(),
                    closed,
                )
            })?;
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

/// The printer thread: every message, every chunk of every instance with
/// its key and stream, passes through `renderer.render` here, in order.
fn print_loop(
    mut renderer: Renderer,
    tty: bool,
    mut rx: mpsc::UnboundedReceiver<Vec<Message>>,
    mut out: impl Write,
    ring: Option<&Ring>,
    closed: impl FnOnce(std::io::Error),
) {
    let mut buf = Vec::with_capacity(if tty { 4096 } else { BATCH });
    let mut closed = Some(closed);
    // Kept once formatted (formatting a message never needs it again): in
    // the ring, which gives back the buffers it lets go of, or recycled for
    // another read at once.
    let keep = |message: Message| match ring {
        Some(ring) => ring.record(message, crate::output::lines::recycle),
        None => {
            if let Message::Output { chunk, .. } = message {
                crate::output::lines::recycle(chunk.data);
            }
        }
    };
    while let Some(batch) = rx.blocking_recv() {
        let mut batch = Some(batch);
        while let Some(messages) = batch.take() {
            for message in messages {
                if closed.is_none() {
                    keep(message); // stdout is gone: only the ring gets output
                    continue;
                }
                renderer.render(&message, &mut buf);
                // Its permit goes back now (readers need not wait for the
                // write), and its buffer to the ring or for another read.
                keep(message);
                if tty || buf.len() >= BATCH {
                    write_out(&mut out, &mut buf, &mut closed);
                }
            }
            if !tty && buf.len() < BATCH {
                batch = rx.try_recv().ok();
            }
        }
        if !buf.is_empty() {
            write_out(&mut out, &mut buf, &mut closed);
        }
    }
}

/// Writes `buf` and empties it; the first error goes to `closed`.
fn write_out<F: FnOnce(std::io::Error)>(
    out: &mut impl Write,
    buf: &mut Vec<u8>,
    closed: &mut Option<F>,
) {
    let written = out.write_all(buf).and_then(|()| out.flush());
    buf.clear();
    if buf.capacity() > 4 * BATCH {
        buf.shrink_to(BATCH);
    }
    if let Err(e) = written
        && let Some(notify) = closed.take()
    {
        notify(e);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::output::json::Stream;
    use crate::output::lines::Tail;
    use crate::output::notice::{Ident, Key};

    /// The ident of `name` (`web.1`), with key `key`.
    pub(crate) fn ident(key: u32, name: &str, type_index: usize) -> Ident {
        let (type_name, number) = name.split_once('.').expect("name.N");
        Ident {
            key: Key(key),
            name: name.into(),
            type_name: type_name.into(),
            type_index,
            number: number.parse().expect("number"),
        }
    }

    /// A chunk of output of instance `key`, holding a permit of its own.
    pub(crate) fn output(key: u32, stream: Stream, data: &[u8], tail: Tail) -> Message {
        let permit = Arc::new(Semaphore::new(1))
            .try_acquire_owned()
            .expect("a permit");
        Message::Output {
            key: Key(key),
            stream,
            chunk: Chunk {
                data: data.to_vec(),
                tail,
            },
            permit,
        }
    }

    #[test]
    fn the_sender_queues_in_order_and_sends_a_batch_when_flushed_or_dropped() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sender = OutputSender::new(tx);
        sender.register(ident(0, "web.1", 0));
        sender.notice(Notice::GaveUp);
        assert!(rx.try_recv().is_err(), "queued until the flush");
        sender.flush();
        let batch = rx.try_recv().expect("one batch");
        assert!(matches!(
            batch[..],
            [Message::Register(_), Message::Notice(Notice::GaveUp)]
        ));
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        // A BATCH of output goes at once.
        rt.block_on(sender.lines(
            Key(0),
            Stream::Stdout,
            Chunk {
                data: vec![b'x'; BATCH],
                tail: Tail::Lines,
            },
        ));
        assert_eq!(rx.try_recv().expect("sent").len(), 1);
        // The last sender gone, what is queued goes too.
        let clone = sender.clone();
        drop(sender);
        clone.notice(Notice::GaveUp);
        assert!(rx.try_recv().is_err());
        drop(clone);
        assert_eq!(rx.try_recv().expect("sent on drop").len(), 1);
    }

    /// A writer that fails after `ok` writes.
    struct Failing {
        ok: usize,
        written: Vec<u8>,
    }

    impl Write for Failing {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if self.ok == 0 {
                return Err(std::io::ErrorKind::BrokenPipe.into());
            }
            self.ok -= 1;
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn print_loop_batches_and_reports_a_closed_stdout_once() {
        let looks = Looks {
            color: false,
            timestamps: false,
            json: false,
            prefix_width: 0,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(vec![
            Message::Register(ident(0, "web.1", 0)),
            output(0, Stream::Stdout, b"a\n", Tail::Lines),
        ])
        .expect("open");
        tx.send(vec![output(0, Stream::Stdout, b"b\n", Tail::Lines)])
            .expect("open");
        drop(tx);
        let mut sink = Failing {
            ok: usize::MAX,
            written: Vec::new(),
        };
        print_loop(Renderer::new(looks), false, rx, &mut sink, None, |_| {});
        assert_eq!(sink.written, b"web.1  | a\nweb.1  | b\n");

        let (tx, rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(4));
        tx.send(vec![Message::Register(ident(0, "web.1", 0))])
            .expect("open");
        for _ in 0..3 {
            let permit = permits.clone().try_acquire_owned().expect("a permit");
            tx.send(vec![Message::Output {
                key: Key(0),
                stream: Stream::Stdout,
                chunk: Chunk {
                    data: b"x\n".to_vec(),
                    tail: Tail::Lines,
                },
                permit,
            }])
            .expect("open");
        }
        drop(tx);
        let calls = std::cell::Cell::new(0);
        let mut sink = Failing {
            ok: 0,
            written: Vec::new(),
        };
        // On a terminal every message is its own write: the first fails.
        print_loop(Renderer::new(looks), true, rx, &mut sink, None, |e| {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
            calls.set(calls.get() + 1)
        });
        assert_eq!(calls.get(), 1, "closed is reported once");
        assert_eq!(permits.available_permits(), 4, "every permit came back");
    }
}
