//! The dashboard at run time: one thread draws and owns the model; the
//! others only wait and hand it messages, so nothing they wait on (a
//! restart that takes the stop timeout, a slow socket) ever freezes the
//! screen.
//!
//! - input: the terminal's keys and resizes;
//! - follow: `logs` with `follow` and `"format":"lines"` on a connection
//!   of its own, handed on in batches of whole frames, read into lines on
//!   the drawing thread (a bounded channel: a dashboard that cannot keep up
//!   slows this reader, and then the server leaves entries out for it,
//!   never the app);
//! - poll: `ps` once a second, and soon after anything changed (a request
//!   answered, an instance's event);
//! - one thread per request (`restart`, `stop`, …), each on a connection of
//!   its own, since the server answers a connection's requests in order and
//!   a restart is answered only once the instance runs again;
//! - while the pane is connected to an instance's terminal, the two of its
//!   connection ([`super::tty_link`]).
//!
//! Redraws are coalesced: at most one per [`FRAME`], and one a second when
//! nothing happens (uptimes move).

use std::collections::HashMap;
use std::os::fd::AsFd as _;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::poll::{self as unix_poll, PollFd, PollFlags, PollTimeout};
use ratatui::crossterm::event::{self, Event};
use serde_json::{Value, json};

use crate::control::client::Client;
use crate::control::wire::{self, Envelope, KIND_JSON, KIND_LINES, KIND_OUTPUT, MAX_FRAME};
use crate::error::Error;
use crate::output::json::Stream;
use crate::ui::logs::{self, Incoming, Kind};

use crate::ui::model::{Call, Effect, Ended, Model, Ps};
use crate::ui::terminal::Screen;
use crate::ui::tty_link::Link;
use crate::ui::{tty, view};

/// The shortest time between two redraws (at most 30 a second).
pub const FRAME: Duration = Duration::from_millis(33);

/// How often `ps` is asked without a reason.
pub const POLL: Duration = Duration::from_secs(1);

/// The shortest time between two `ps` (CPU% needs 0.2 s between samples).
const POLL_GAP: Duration = Duration::from_millis(250);

/// Lines of each instance replayed from the log ring on attach.
const REPLAY: usize = 2_000;

/// Messages waiting for the drawing thread; beyond, the senders wait.
const QUEUE: usize = 256;

/// The follow connection's reads.
const READ: usize = 256 * 1024;

/// The most output the dashboard reads a second (200,000 lines of 100
/// bytes), after a first [`BURST`] (the replay): beyond, `start` leaves
/// entries out for it, which costs `start` nothing, where sending them
/// all would take CPU from the app on a small machine. No one reads
/// faster than that on a screen; the store keeps the last lines anyway.
const RATE: f64 = 20e6;

/// What the dashboard may read at once beyond [`RATE`].
const BURST: f64 = 8e6;

/// How to reach the app.
#[derive(Clone, Debug)]
pub struct Target {
    /// The app root (finds the default socket).
    pub root: PathBuf,
    /// An explicit socket.
    pub socket: Option<PathBuf>,
    /// Told once the follow has started, or could not (`start --ui`
    /// keeps its socket open until then: an app that ends at once is
    /// still shown ending).
    pub followed: Option<SyncSender<()>>,
}

impl Target {
    /// A new connection.
    pub fn connect(&self) -> Result<Client, Error> {
        Client::connect(&self.root, self.socket.as_deref())
    }
}

/// What the drawing thread hears.
#[derive(Debug)]
enum Msg {
    Input(Event),
    /// A key (or an input failure) waits in the keys' own queue.
    Key,
    InputFailed(String),
    /// Whole frames of the follow.
    Feed(Vec<u8>),
    Ps(Ps),
    PsFailed(String),
    Done(Call, Result<Value, String>),
    Ended(Ended),
    Tty(tty::Event),
}

/// An error as one line for the status bar.
pub fn describe(e: &Error) -> String {
    match e {
        Error::Diagnostics(list) => list
            .iter()
            .map(|d| d.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

fn ps(client: &mut Client) -> Result<Ps, Error> {
    let v = client.call("ps", Value::Null)?;
    serde_json::from_value(v).map_err(|e| {
        crate::diagnostic::Diagnostic::error(format!("procrun's ps answer is not valid: {e}"))
            .into()
    })
}

/// Connects to the app and reads its first `ps`: before the terminal is
/// taken, so that an app that is not running is a plain error.
pub fn attach(target: &Target) -> Result<(Client, Ps), Error> {
    let mut client = target.connect()?;
    let first = ps(&mut client)?;
    Ok((client, first))
}

/// Runs the dashboard on `screen` until the user leaves (or, after the
/// app ended, presses a key). Returns how the app ended, if it did.
pub fn run(
    target: &Target,
    (client, first): (Client, Ps),
    mut screen: Screen,
    foreground: bool,
) -> Result<Option<Ended>, Error> {
    let title = format!("procrun · {}", target.root.display());
    let mut model = Model::new(title, foreground);
    model.apply_ps(first);
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    // Keys have a queue of their own, read before anything else, so that
    // a key never waits behind a flood of output.
    let (keys_tx, keys) = mpsc::sync_channel(QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|e| Error::io("starting the dashboard's threads", e))
    };
    let input = {
        let (tx, stop) = (tx.clone(), Arc::clone(&stop));
        spawn(
            "ui-input",
            Box::new(move || read_input(&keys_tx, &tx, &stop)),
        )?
    };
    {
        let (tx, target) = (tx.clone(), target.clone());
        spawn("ui-follow", Box::new(move || follow(&target, &tx)))?;
    }
    let (poke, pokes) = mpsc::channel();
    {
        let tx = tx.clone();
        spawn("ui-poll", Box::new(move || poll(client, &tx, &pokes)))?;
    }
    let queues = Queues { keys, rx };
    let result = event_loop(&mut model, &mut screen, &queues, &tx, &poke, target);
    stop.store(true, Ordering::SeqCst);
    drop(screen);
    // Polls its stop flag every 100 ms.
    let _ = input.join();
    result.map(|()| model.ended)
}

/// What the drawing thread hears: keys first, then the rest.
struct Queues {
    keys: Receiver<Msg>,
    rx: Receiver<Msg>,
}

impl Queues {
    /// A key if one waits, else the next message if one waits.
    fn try_next(&self) -> Option<Msg> {
        self.keys.try_recv().or_else(|_| self.rx.try_recv()).ok()
    }
}

fn event_loop(
    model: &mut Model,
    screen: &mut Screen,
    queues: &Queues,
    tx: &SyncSender<Msg>,
    poke: &mpsc::Sender<()>,
    target: &Target,
) -> Result<(), Error> {
    let draw = |screen: &mut Screen, model: &mut Model| {
        screen
            .term
            .draw(|f| view::draw(f, model, Instant::now(), SystemTime::now()))
            .map(|_| ())
            .map_err(|e| Error::io("drawing the dashboard", e))
    };
    draw(screen, model)?;
    let mut drawn = Instant::now();
    let mut dirty = false;
    let mut feed = Feed::default();
    // The connected view's connection (`Enter` on a tty instance).
    let mut link: Option<Link> = None;
    loop {
        let now = Instant::now();
        let wait = if dirty {
            (drawn + FRAME).saturating_duration_since(now)
        } else {
            (drawn + POLL).saturating_duration_since(now)
        };
        // The input thread wakes this wait with `Msg::Key`, its key waiting
        // in `queues.keys`.
        let first = match queues.keys.try_recv() {
            Ok(key) => Some(key),
            Err(_) => match queues.rx.recv_timeout(wait) {
                Ok(Msg::Key) => queues.keys.try_recv().ok(),
                Ok(msg) => Some(msg),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            },
        };
        let mut effects = Vec::new();
        if let Some(msg) = first {
            dirty = true;
            // Whatever else is waiting, before drawing once.
            let mut next = Some(msg);
            let mut taken = 0;
            while let Some(msg) = next {
                if let Some(failed) = handle(model, &mut feed, msg, link.as_ref(), &mut effects) {
                    return Err(Error::io(
                        "reading the terminal",
                        std::io::Error::other(failed),
                    ));
                }
                taken += 1;
                next = if taken < QUEUE {
                    queues.try_next()
                } else {
                    None
                };
            }
        } else {
            // A second with nothing: uptimes and messages still change.
            dirty = true;
        }
        for effect in effects {
            match effect {
                Effect::Quit => {
                    draw(screen, model)?;
                    return Ok(());
                }
                Effect::Poll => {
                    let _ = poke.send(());
                }
                Effect::Call(call) => request(target, call, tx, model),
                effect => tty_effect(effect, &mut link, target, tx, model),
            }
        }
        if dirty && drawn.elapsed() >= FRAME {
            draw(screen, model)?;
            drawn = Instant::now();
            dirty = false;
            // Drawn at a new size: the connected terminal takes it too.
            if let Some(resize) = model.take_tty_resize() {
                tty_effect(resize, &mut link, target, tx, model);
            }
        }
    }
}

/// Applies one message; returns why the terminal failed, if it did.
fn handle(
    model: &mut Model,
    feed: &mut Feed,
    msg: Msg,
    link: Option<&Link>,
    effects: &mut Vec<Effect>,
) -> Option<String> {
    let now = Instant::now();
    match msg {
        Msg::Input(Event::Key(key)) => effects.extend(model.apply_key(key, now)),
        Msg::Input(_) | Msg::Key => {}
        Msg::InputFailed(e) => return Some(e),
        Msg::Feed(bytes) => {
            // procrun's events change what ps shows: ask now.
            if feed.apply(&bytes, model) {
                effects.push(Effect::Poll);
            }
        }
        Msg::Ps(ps) => model.apply_ps(ps),
        Msg::PsFailed(e) => model.apply_ps_failed(&e, now),
        Msg::Done(call, result) => effects.extend(model.apply_done(&call, result, now)),
        Msg::Ended(ended) => effects.extend(model.apply_end(ended)),
        Msg::Tty(event) => {
            // Output waits in the link's inbox: take all of it, also before
            // an end is shown.
            let id = match &event {
                tty::Event::Output { link, .. } | tty::Event::Ended { link, .. } => Some(*link),
                _ => None,
            };
            if let (Some(id), Some(l)) = (id, link) {
                let bytes = l.take_output(id);
                if !bytes.is_empty() {
                    let output = tty::Event::Output { link: id, bytes };
                    effects.extend(model.apply_tty(output, now));
                }
            }
            if !matches!(&event, tty::Event::Output { bytes, .. } if bytes.is_empty()) {
                effects.extend(model.apply_tty(event, now));
            }
        }
    }
    None
}

/// Carries out what the connected view asks ([`tty`]).
fn tty_effect(
    effect: Effect,
    link: &mut Option<Link>,
    target: &Target,
    tx: &SyncSender<Msg>,
    model: &mut Model,
) {
    match effect {
        Effect::Attach {
            link: id,
            name,
            rows,
            cols,
        } => {
            let tx = tx.clone();
            let report = move |event| tx.send(Msg::Tty(event)).is_ok();
            match Link::open(target, id, name, (rows, cols), report) {
                Ok(opened) => *link = Some(opened),
                Err(e) => {
                    let reason = format!("cannot connect: {e}");
                    let refused = tty::Event::Refused { link: id, reason };
                    let _ = model.apply_tty(refused, Instant::now());
                }
            }
        }
        Effect::Type(bytes) => {
            if let Some(l) = link
                && !l.send(bytes)
            {
                let now = Instant::now();
                model.say(
                    "typing faster than procrun takes it: keys left out",
                    true,
                    now,
                );
            }
        }
        Effect::Resize { rows, cols } => {
            if let Some(l) = link {
                l.resize(rows, cols);
            }
        }
        // Dropping the link closes the connection: detached.
        Effect::Detach => *link = None,
        Effect::Call(_) | Effect::Poll | Effect::Quit => {}
    }
}

/// Sends `call` on a thread and connection of its own.
fn request(target: &Target, call: Call, tx: &SyncSender<Msg>, model: &mut Model) {
    let (target, tx) = (target.clone(), tx.clone());
    let sent = call.clone();
    let started = std::thread::Builder::new()
        .name("ui-request".into())
        .spawn(move || {
            let result = target
                .connect()
                .and_then(|mut c| c.call(sent.method, sent.params.clone()))
                .map_err(|e| describe(&e));
            let _ = tx.send(Msg::Done(sent, result));
        });
    if let Err(e) = started {
        // Said in the status line; nothing to poll for.
        let _ = model.apply_done(&call, Err(e.to_string()), Instant::now());
    }
}

fn read_input(keys: &SyncSender<Msg>, wake: &SyncSender<Msg>, stop: &AtomicBool) {
    let send = |msg: Msg| {
        let failed = matches!(msg, Msg::InputFailed(_));
        let sent = keys.send(msg).is_ok();
        // A full queue: the drawing thread is busy and reads the key next.
        let _ = wake.try_send(Msg::Key);
        sent && !failed
    };
    let stdin = std::io::stdin();
    while !stop.load(Ordering::SeqCst) {
        // crossterm's reader retries forever, without its timeout, once the
        // terminal is gone (a read of 0 bytes or EIO;
        // crossterm-rs/crossterm#793): a hang-up is seen here first, by
        // poll(2) on the terminal itself, and crossterm asked only when
        // the terminal is still there. Its resize events come on a pipe
        // of its own: asked at least every 100 ms.
        let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
        match unix_poll::poll(&mut fds, PollTimeout::from(100u16)) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                send(Msg::InputFailed(e.to_string()));
                return;
            }
        }
        let gone = PollFlags::POLLHUP | PollFlags::POLLERR | PollFlags::POLLNVAL;
        if fds[0].revents().is_some_and(|r| r.intersects(gone)) {
            send(Msg::InputFailed("the terminal was closed".into()));
            return;
        }
        // Every event crossterm holds, since poll(2) does not see those.
        loop {
            let msg = match event::poll(Duration::ZERO) {
                Ok(false) => break,
                Ok(true) => match event::read() {
                    Ok(event) => Msg::Input(event),
                    Err(e) => Msg::InputFailed(e.to_string()),
                },
                Err(e) => Msg::InputFailed(e.to_string()),
            };
            if !send(msg) {
                return;
            }
        }
    }
}

/// What the drawing thread knows of the follow: the names of the ids that
/// lines frames carry.
#[derive(Debug, Default)]
struct Feed {
    names: HashMap<u32, Rc<str>>,
}

impl Feed {
    /// Reads whole frames of the follow into the model; returns whether one
    /// of procrun's messages was among them.
    fn apply(&mut self, mut bytes: &[u8], model: &mut Model) -> bool {
        let mut events = false;
        while let Ok(Some(frame)) = wire::frame_at(bytes, MAX_FRAME) {
            bytes = &bytes[frame.len..];
            let payload = frame.payload;
            match frame.kind {
                KIND_LINES => match wire::read_lines(payload) {
                    Ok((head, data)) => {
                        let id = head.id;
                        let name = self
                            .names
                            .entry(id)
                            .or_insert_with(|| Rc::from(format!("instance {id}")));
                        let kind = match head.stream {
                            Stream::Stderr => Kind::Err,
                            Stream::Stdout | Stream::Pty => Kind::Out,
                        };
                        let time =
                            SystemTime::UNIX_EPOCH.checked_add(Duration::from_millis(head.time_ms));
                        model.apply_lines(logs::chunk_lines(name, kind, time, data));
                    }
                    // Shown, never dropped in silence.
                    Err(e) => model.apply_lines([Incoming {
                        time: None,
                        name: "procrun".into(),
                        kind: Kind::Event,
                        text: format!("procrun sent an unreadable frame: {e}"),
                    }]),
                },
                // procrun's messages, as records (and everything, from a
                // procrun that sends records only).
                KIND_OUTPUT => events |= model.apply_records(payload),
                KIND_JSON => {
                    if let Ok(Envelope::Instance { id, name }) = serde_json::from_slice(payload) {
                        self.names.insert(id, Rc::from(name));
                    }
                }
                _ => {}
            }
        }
        events
    }
}

/// How a follow ended.
enum Relayed {
    /// With the server's bye.
    Bye(Ended),
    /// Without one.
    Lost(String),
    /// The dashboard left.
    Gone,
}

/// Reads the follow's frames (at most [`RATE`] bytes a second) and hands
/// them on as they come, in batches of whole frames: one message per
/// read, however many frames it holds.
/// They are read into lines on the drawing thread, which keeps the lines:
/// memory is then allocated and freed by one thread (across threads,
/// malloc's arenas contend, and at 100,000 lines a second that costs more
/// than reading them).
fn relay(mut stream: impl std::io::Read, tx: &SyncSender<Msg>) -> Relayed {
    let mut read = vec![0u8; READ];
    let mut buf: Vec<u8> = Vec::with_capacity(READ);
    // A token bucket of bytes: full at first, refilled at RATE.
    let mut allowance = BURST;
    let mut since = Instant::now();
    loop {
        allowance = (allowance + since.elapsed().as_secs_f64() * RATE).min(BURST);
        since = Instant::now();
        if allowance < 0.0 {
            std::thread::sleep(Duration::from_secs_f64(-allowance / RATE));
            continue;
        }
        let n = match stream.read(&mut read) {
            Ok(0) => return Relayed::Lost("the connection to procrun was lost".into()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Relayed::Lost(format!("reading from procrun: {e}")),
        };
        allowance -= n as f64;
        buf.extend_from_slice(&read[..n]);
        let mut whole = 0;
        let mut bye = None;
        loop {
            match wire::frame_at(&buf[whole..], MAX_FRAME) {
                Ok(Some(frame)) => {
                    if frame.kind == KIND_JSON
                        && let Ok(Envelope::Bye {
                            message, exit_code, ..
                        }) = serde_json::from_slice(frame.payload)
                    {
                        bye = Some(Ended {
                            exit_code,
                            reason: message,
                        });
                    }
                    whole += frame.len;
                }
                Ok(None) => break,
                Err(e) => return Relayed::Lost(format!("procrun sent an unreadable frame: {e}")),
            }
        }
        if whole > 0 {
            let mut rest = Vec::with_capacity(READ.max(buf.len() - whole));
            rest.extend_from_slice(&buf[whole..]);
            buf.truncate(whole);
            if tx
                .send(Msg::Feed(std::mem::replace(&mut buf, rest)))
                .is_err()
            {
                return Relayed::Gone;
            }
        }
        if let Some(bye) = bye {
            return Relayed::Bye(bye);
        }
    }
}

fn follow(target: &Target, tx: &SyncSender<Msg>) {
    let start = || -> Result<std::os::unix::net::UnixStream, Error> {
        let mut client = target.connect()?;
        // `json` for a procrun that does not know `format`: it sends
        // records, which are read as well.
        let params = json!({ "follow": true, "format": "lines", "json": true, "lines": REPLAY });
        client.call("logs", params)?;
        Ok(client.into_stream())
    };
    let started = start();
    if let Some(told) = &target.followed {
        let _ = told.try_send(());
    }
    let ended = match started.map(|stream| relay(stream, tx)) {
        Ok(Relayed::Bye(ended)) => ended,
        Ok(Relayed::Lost(reason)) => Ended {
            exit_code: None,
            reason,
        },
        Ok(Relayed::Gone) => return,
        Err(e) => Ended {
            exit_code: None,
            reason: describe(&e),
        },
    };
    let _ = tx.send(Msg::Ended(ended));
}

fn poll(mut client: Client, tx: &SyncSender<Msg>, pokes: &Receiver<()>) {
    let mut last = Instant::now();
    loop {
        match pokes.recv_timeout(POLL) {
            Ok(()) => {
                let gap = POLL_GAP.saturating_sub(last.elapsed());
                if !gap.is_zero() {
                    std::thread::sleep(gap);
                }
                while pokes.try_recv().is_ok() {}
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        last = Instant::now();
        let msg = match ps(&mut client) {
            Ok(ps) => Msg::Ps(ps),
            Err(e) => Msg::PsFailed(describe(&e)),
        };
        let failed = matches!(msg, Msg::PsFailed(_));
        if tx.send(msg).is_err() || failed {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::wire::LinesHead;
    use crate::output::lines::Tail;

    fn texts(model: &Model) -> Vec<String> {
        let merged = model.store.merged();
        (0..merged.len())
            .filter_map(|i| merged.get(i))
            .map(|l| format!("{} {}", l.name, l.text))
            .collect()
    }

    #[test]
    fn the_follows_frames_become_lines_in_order() {
        let mut stream = Vec::new();
        let announce = |id, name: &str| {
            wire::encode_json(&Envelope::Instance {
                id,
                name: name.into(),
            })
        };
        stream.extend(announce(0, "web.1"));
        stream.extend(announce(1, "worker.1"));
        let head = |id, stream| LinesHead {
            id,
            stream,
            tail: Tail::Lines,
            time_ms: 1_764_000_000_000,
        };
        wire::push_lines(&mut stream, head(0, Stream::Stdout), b"one\ntwo\n");
        // procrun's messages come as records; so does everything from a
        // procrun that does not know the lines format.
        let records = concat!(
            r#"{"name":"web.1","pid":42,"stream":"system","event":"start"}"#,
            "\n",
            r#"{"name":"web.1","stream":"stdout","msg":"from a record"}"#,
            "\n"
        );
        stream.extend(wire::encode(KIND_OUTPUT, records.as_bytes()));
        wire::push_lines(
            &mut stream,
            head(1, Stream::Stderr),
            b"\x1b[1moops\x1b[0m\n",
        );
        wire::push_lines(&mut stream, head(9, Stream::Stdout), b"who\n");
        stream.extend(wire::encode_json(&Envelope::Bye {
            code: "app_ended".into(),
            message: "the app has stopped (exit code 0)".into(),
            exit_code: Some(0),
        }));
        stream.extend(announce(2, "never.1"));
        // Read a few bytes at a time: frames are handed on whole.
        struct Trickle(Vec<u8>, usize);
        impl std::io::Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(7).min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let (tx, rx) = mpsc::sync_channel(1024);
        let ended = relay(Trickle(stream, 0), &tx);
        assert!(
            matches!(&ended, Relayed::Bye(e) if e.exit_code == Some(0)),
            "the bye ends the relay"
        );
        let mut model = Model::new("t".into(), false);
        let mut feed = Feed::default();
        let mut events = false;
        while let Ok(Msg::Feed(bytes)) = rx.try_recv() {
            let mut rest = &bytes[..];
            while let Ok(Some(frame)) = wire::frame_at(rest, MAX_FRAME) {
                rest = &rest[frame.len..];
            }
            assert!(rest.is_empty() && !bytes.is_empty(), "whole frames only");
            events |= feed.apply(&bytes, &mut model);
        }
        assert!(events, "procrun's message asks for a ps");
        assert_eq!(
            texts(&model),
            [
                "web.1 one",
                "web.1 two",
                "web.1 web.1 started with pid 42",
                "web.1 from a record",
                "worker.1 oops",
                "instance 9 who"
            ]
        );
        let oops = model
            .store
            .of("worker.1")
            .and_then(|l| l.get(0))
            .expect("a line");
        assert_eq!(oops.kind, Kind::Err);
        assert!(oops.time.is_some());
        drop(rx);
        let mut more = Vec::new();
        wire::push_lines(&mut more, head(0, Stream::Stdout), b"late\n");
        assert!(
            matches!(relay(&more[..], &tx), Relayed::Gone),
            "the dashboard left: the follow ends"
        );
    }

    #[test]
    fn a_garbled_follow_ends_with_a_reason() {
        let (tx, _rx) = mpsc::sync_channel(8);
        let garbage = [0x7f, 0xff, 0xff, 0xff, 3, 1, 2];
        assert!(
            matches!(relay(&garbage[..], &tx), Relayed::Lost(r) if r.contains("unreadable")),
            "an oversized frame"
        );
        let mut model = Model::new("t".into(), false);
        let bad = wire::encode(KIND_LINES, b"short");
        assert!(!Feed::default().apply(&bad, &mut model));
        assert_eq!(
            texts(&model),
            [
                "procrun procrun sent an unreadable frame: a lines frame of 5 bytes is shorter than its 14-byte header"
            ]
        );
    }
}
