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
//! A write error is reported through the `closed` callback, with the error,
//! and from then on output is discarded: a closed pipe (`procrun start |
//! head -1`, EPIPE) means the reader went away; any other error (a full
//! disk, EIO) is a failure. When
//! stdout is a pipe, a watcher thread also reports the reader going away
//! at once, without waiting for procrun's next line, which may be long in
//! coming when the processes are quiet.

use std::io::Write;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::output::json::{self, Stream};
use crate::output::lines::{Chunk, MAX_LINE, Tail};
use crate::output::notice::{Ident, Key, Notice};
use crate::output::pacing::Pacing;
use crate::output::style::{Clock, Prefix, SYSTEM};

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

/// The sending side, cloned into every reader.
#[derive(Clone, Debug)]
pub struct OutputSender {
    tx: mpsc::UnboundedSender<Message>,
    permits: Arc<Semaphore>,
    pacing: Pacing,
}

impl OutputSender {
    /// Queues lines of instance `key`, waiting while [`IN_FLIGHT`] chunks
    /// are already queued.
    pub async fn lines(&self, key: Key, stream: Stream, chunk: Chunk) {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(tokio::sync::TryAcquireError::Closed) => return,
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                let _waiting = self.pacing.waiting();
                let Ok(permit) = self.permits.clone().acquire_owned().await else {
                    return;
                };
                permit
            }
        };
        let _ = self.tx.send(Message::Output {
            key,
            stream,
            chunk,
            permit,
        });
    }

    /// Makes an instance known to the printer (its prefix, its colour).
    pub fn register(&self, ident: Ident) {
        let _ = self.tx.send(Message::Register(ident));
    }

    /// Queues one of procrun's messages. Never waits: they are few, and the
    /// dispatcher must stay responsive.
    pub fn notice(&self, notice: Notice) {
        let _ = self.tx.send(Message::Notice(notice));
    }

    /// The run's output pacing (see [`crate::output::pacing`]).
    pub fn pacing(&self) -> &Pacing {
        &self.pacing
    }
}

/// How output is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Looks {
    /// Colour the prefixes (text only).
    pub color: bool,
    /// Lines start with `HH:MM:SS` (text only).
    pub timestamps: bool,
    /// NDJSON records instead of prefixed lines.
    pub json: bool,
}

/// An instance as the printer knows it.
#[derive(Debug)]
struct Entry {
    ident: Ident,
    prefix: Prefix,
    /// Its JSON envelope after `ts` (name, type, instance, pid).
    head: Vec<u8>,
    /// Records written so far (JSON `seq`).
    seq: u64,
}

fn prefix_of(ident: &Ident, width: usize, looks: Looks) -> Prefix {
    Prefix::instance(
        &ident.name,
        ident.type_index,
        width,
        looks.color,
        looks.timestamps,
    )
}

/// Formats messages: keeps every instance's prefix, pid and sequence
/// number, registered as instances appear.
#[derive(Debug)]
pub struct Renderer {
    looks: Looks,
    entries: Vec<Option<Entry>>,
    /// The width names are padded to: the longest name seen, and `system`.
    width: usize,
    system: Prefix,
    procrun_head: Vec<u8>,
    procrun_seq: u64,
    clock: Clock,
}

impl Renderer {
    /// A renderer that knows no instance yet.
    pub fn new(looks: Looks) -> Self {
        let width = SYSTEM.len();
        Renderer {
            looks,
            entries: Vec::new(),
            width,
            system: Prefix::system(width, looks.color, looks.timestamps),
            procrun_head: json::procrun_head(),
            procrun_seq: 0,
            clock: Clock::default(),
        }
    }

    fn register(&mut self, ident: Ident) {
        let index = ident.key.index();
        if self.entries.len() <= index {
            self.entries.resize_with(index + 1, || None);
        }
        if ident.name.len() > self.width {
            // A longer name widens every prefix, so columns stay aligned
            // from here on.
            self.width = ident.name.len();
            self.system = Prefix::system(self.width, self.looks.color, self.looks.timestamps);
            let (width, looks) = (self.width, self.looks);
            for entry in self.entries.iter_mut().flatten() {
                entry.prefix = prefix_of(&entry.ident, width, looks);
            }
        }
        self.entries[index] = Some(Entry {
            prefix: prefix_of(&ident, self.width, self.looks),
            head: json::instance_head(&ident, None),
            seq: 0,
            ident,
        });
    }

    fn name(&self, key: Key) -> String {
        match self.entries.get(key.index()) {
            Some(Some(entry)) => entry.ident.name.clone(),
            _ => format!("instance {}", key.0),
        }
    }

    /// Appends the formatted `message` to `out`.
    pub fn render(&mut self, message: &Message, out: &mut Vec<u8>) {
        match message {
            Message::Register(ident) => self.register(ident.clone()),
            Message::Output {
                key, stream, chunk, ..
            } => {
                if self.looks.json {
                    self.output_json(*key, *stream, chunk, out);
                } else {
                    self.output_text(*key, chunk, out);
                }
            }
            Message::Notice(notice) => {
                if let Notice::Started { key, pid, .. } = notice
                    && let Some(Some(entry)) = self.entries.get_mut(key.index())
                {
                    entry.head = json::instance_head(&entry.ident, *pid);
                }
                if self.looks.json {
                    self.notice_json(notice, out);
                } else {
                    let text = notice.text(&|k| self.name(k));
                    let time: &[u8] = if self.looks.timestamps {
                        self.clock.now()
                    } else {
                        b""
                    };
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

    fn output_text(&mut self, key: Key, chunk: &Chunk, out: &mut Vec<u8>) {
        let Some(Some(entry)) = self.entries.get(key.index()) else {
            return;
        };
        let prefix = &entry.prefix;
        let time: &[u8] = if self.looks.timestamps {
            self.clock.now()
        } else {
            b""
        };
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

    fn output_json(&mut self, key: Key, stream: Stream, chunk: &Chunk, out: &mut Vec<u8>) {
        let Some(Some(entry)) = self.entries.get_mut(key.index()) else {
            return;
        };
        let ts = json::timestamp();
        let eof = chunk.tail == Tail::Eof;
        let lines = memchr::memchr_iter(b'\n', &chunk.data).count()
            + usize::from(chunk.tail != Tail::Lines);
        let mut n = 0;
        chunk.for_each_line(|line, split| {
            n += 1;
            entry.seq += 1;
            let end = if split {
                json::End::Split
            } else if eof && n == lines {
                json::End::Partial
            } else {
                json::End::Newline
            };
            json::line(out, &ts, &entry.head, stream, entry.seq, line, end);
        });
    }

    fn notice_json(&mut self, notice: &Notice, out: &mut Vec<u8>) {
        let events = json::events(notice, &|n| n.text(&|k| self.name(k)));
        let ts = json::timestamp();
        for event in &events {
            let subject = event
                .subject
                .and_then(|k| self.entries.get_mut(k.index()))
                .and_then(Option::as_mut);
            match subject {
                Some(entry) => {
                    entry.seq += 1;
                    json::event(out, &ts, &entry.head, entry.seq, event);
                }
                None => {
                    self.procrun_seq += 1;
                    json::event(out, &ts, &self.procrun_head, self.procrun_seq, event);
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
    /// accepting output: with the write error, or with `None` when the
    /// reader of the stdout pipe went away.
    pub fn start(
        looks: Looks,
        tty: bool,
        closed: impl Fn(Option<std::io::Error>) + Send + Sync + 'static,
    ) -> std::io::Result<(OutputSender, Printer)> {
        let closed = Arc::new(closed);
        if stdout_is_pipe() {
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
        let sender = OutputSender {
            tx,
            permits: Arc::new(Semaphore::new(IN_FLIGHT)),
            pacing: Pacing::default(),
        };
        let thread = std::thread::Builder::new()
            .name("printer".into())
            .spawn(move || {
                print_loop(
                    Renderer::new(looks),
                    tty,
                    rx,
                    std::io::stdout().lock(),
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

fn print_loop(
    mut renderer: Renderer,
    tty: bool,
    mut rx: mpsc::UnboundedReceiver<Message>,
    mut out: impl Write,
    closed: impl FnOnce(std::io::Error),
) {
    let mut buf = Vec::with_capacity(if tty { 4096 } else { BATCH });
    let mut closed = Some(closed);
    while let Some(message) = rx.blocking_recv() {
        if closed.is_none() {
            continue; // stdout is gone: drop output, release permits
        }
        renderer.render(&message, &mut buf);
        drop(message);
        if !tty {
            while buf.len() < BATCH {
                let Ok(more) = rx.try_recv() else { break };
                renderer.render(&more, &mut buf);
            }
        }
        let written = out.write_all(&buf).and_then(|()| out.flush());
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ident(key: u32, name: &str, type_index: usize) -> Ident {
        let (type_name, number) = name.split_once('.').expect("name.N");
        Ident {
            key: Key(key),
            name: name.into(),
            type_name: type_name.into(),
            type_index,
            number: number.parse().expect("number"),
        }
    }

    fn output(key: u32, stream: Stream, data: &[u8], tail: Tail) -> Message {
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

    fn renderer(timestamps: bool, json: bool) -> Renderer {
        let mut r = Renderer::new(Looks {
            color: false,
            timestamps,
            json,
        });
        let mut sink = Vec::new();
        r.render(&Message::Register(ident(0, "web.1", 0)), &mut sink);
        r.render(&Message::Register(ident(1, "worker.1", 1)), &mut sink);
        assert!(sink.is_empty(), "registering prints nothing");
        r
    }

    fn text(r: &mut Renderer, message: Message) -> String {
        let mut out = Vec::new();
        r.render(&message, &mut out);
        String::from_utf8(out).expect("printer output is UTF-8")
    }

    #[test]
    fn lines_get_aligned_prefixes() {
        let mut r = renderer(false, false);
        assert_eq!(
            text(&mut r, output(0, Stream::Stdout, b"a\nb\r\n", Tail::Lines)),
            "web.1    | a\nweb.1    | b\n"
        );
        assert_eq!(
            text(&mut r, output(1, Stream::Stderr, b"end", Tail::Eof)),
            "worker.1 | end\n"
        );
        assert_eq!(
            text(&mut r, Message::Notice(Notice::GaveUp)),
            "system   | processes still not gone after SIGKILL; giving up on them\n"
        );
    }

    #[test]
    fn a_longer_name_registered_later_widens_every_prefix() {
        let mut r = renderer(false, false);
        text(&mut r, Message::Register(ident(2, "scheduler.10", 2)));
        assert_eq!(
            text(&mut r, output(0, Stream::Stdout, b"a\n", Tail::Lines)),
            "web.1        | a\n"
        );
        assert_eq!(
            text(&mut r, output(2, Stream::Stdout, b"b\n", Tail::Lines)),
            "scheduler.10 | b\n"
        );
    }

    #[test]
    fn timestamps_lead() {
        let mut r = renderer(true, false);
        let t = text(&mut r, output(0, Stream::Stdout, b"a\n", Tail::Lines));
        assert_eq!(t.len(), "HH:MM:SS web.1    | a\n".len(), "{t}");
        assert!(t.ends_with(" web.1    | a\n"), "{t}");
    }

    #[test]
    fn invalid_utf8_is_replaced_in_text() {
        let mut r = renderer(false, false);
        assert_eq!(
            text(
                &mut r,
                output(0, Stream::Stdout, b"ok\nbad \xff\n", Tail::Lines)
            ),
            "web.1    | ok\nweb.1    | bad \u{fffd}\n"
        );
    }

    #[test]
    fn split_pieces_are_marked() {
        let mut r = renderer(false, false);
        assert_eq!(
            text(&mut r, output(0, Stream::Stdout, b"abc", Tail::Split)),
            format!("web.1    | abc{SPLIT_MARK}\n")
        );
    }

    fn records(t: &str) -> Vec<serde_json::Value> {
        t.lines()
            .map(|l| serde_json::from_str(l).expect("a JSON record"))
            .collect()
    }

    #[test]
    fn json_counts_records_per_instance_and_marks_the_partial_line() {
        let mut r = renderer(false, true);
        let started = Notice::Started {
            key: Key(0),
            pid: Some(42),
            port: Some(5000),
        };
        let mut all = records(&text(&mut r, Message::Notice(started)));
        all.extend(records(&text(
            &mut r,
            output(0, Stream::Stdout, b"one\ntwo\nthree", Tail::Eof),
        )));
        all.extend(records(&text(
            &mut r,
            output(1, Stream::Stderr, b"x\n", Tail::Lines),
        )));
        assert_eq!(all[0]["event"], "start");
        assert_eq!(all[0]["port"], 5000);
        assert_eq!(all[0]["pid"], 42);
        let seqs: Vec<i64> = all
            .iter()
            .map(|v| v["seq"].as_i64().expect("seq"))
            .collect();
        assert_eq!(seqs, [1, 2, 3, 4, 1]);
        assert_eq!(all[1]["msg"], "one");
        assert_eq!(all[1]["pid"], 42, "lines carry the current pid");
        assert!(all[2].get("partial").is_none());
        assert_eq!(all[3]["msg"], "three");
        assert_eq!(all[3]["partial"], true);
        assert_eq!(all[4]["stream"], "stderr");
        assert_eq!(all[4]["name"], "worker.1");
        assert!(all[4].get("pid").is_none(), "not started: no pid");
    }

    #[test]
    fn json_system_records_of_procrun_itself() {
        let mut r = renderer(false, true);
        let all = records(&text(
            &mut r,
            Message::Notice(Notice::Received { signal: 2 }),
        ));
        assert_eq!(all[0]["name"], "procrun");
        assert_eq!(all[0]["stream"], "system");
        assert_eq!(all[0]["event"], "stop");
        assert_eq!(all[0]["signal"], "SIGINT");
        assert_eq!(all[0]["seq"], 1);
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
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tx.send(Message::Register(ident(0, "web.1", 0)))
            .expect("open");
        tx.send(output(0, Stream::Stdout, b"a\n", Tail::Lines))
            .expect("open");
        tx.send(output(0, Stream::Stdout, b"b\n", Tail::Lines))
            .expect("open");
        drop(tx);
        let mut sink = Failing {
            ok: usize::MAX,
            written: Vec::new(),
        };
        print_loop(Renderer::new(looks), false, rx, &mut sink, |_| {});
        assert_eq!(sink.written, b"web.1  | a\nweb.1  | b\n");

        let (tx, rx) = mpsc::unbounded_channel();
        let permits = Arc::new(Semaphore::new(4));
        tx.send(Message::Register(ident(0, "web.1", 0)))
            .expect("open");
        for _ in 0..3 {
            let permit = permits.clone().try_acquire_owned().expect("a permit");
            tx.send(Message::Output {
                key: Key(0),
                stream: Stream::Stdout,
                chunk: Chunk {
                    data: b"x\n".to_vec(),
                    tail: Tail::Lines,
                },
                permit,
            })
            .expect("open");
        }
        drop(tx);
        let calls = std::cell::Cell::new(0);
        let mut sink = Failing {
            ok: 0,
            written: Vec::new(),
        };
        // On a terminal every message is its own write: the first fails.
        print_loop(Renderer::new(looks), true, rx, &mut sink, |e| {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
            calls.set(calls.get() + 1)
        });
        assert_eq!(calls.get(), 1, "closed is reported once");
        assert_eq!(permits.available_permits(), 4, "every permit came back");
    }
}
