//! The dashboard at run time: one thread draws and owns the model; the
//! others only wait and hand it messages, so nothing they wait on (a
//! restart that takes the stop timeout, a slow socket) ever freezes the
//! screen.
//!
//! - input: the terminal's keys and resizes;
//! - follow: `logs --follow --json` on a connection of its own, parsed into
//!   lines (a bounded channel: a dashboard that cannot keep up slows this
//!   reader, and then the server leaves entries out for it, never the app);
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

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{self, Event};
use serde_json::{Value, json};

use crate::control::client::Client;
use crate::control::wire::Envelope;
use crate::error::Error;

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

/// How to reach the app.
#[derive(Clone, Debug)]
pub struct Target {
    /// The app root (finds the default socket).
    pub root: PathBuf,
    /// An explicit socket.
    pub socket: Option<PathBuf>,
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
    InputFailed(String),
    Records(Vec<u8>),
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
    let stop = Arc::new(AtomicBool::new(false));
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(f)
            .map_err(|e| Error::io("starting the dashboard's threads", e))
    };
    let input = {
        let (tx, stop) = (tx.clone(), Arc::clone(&stop));
        spawn("ui-input", Box::new(move || read_input(&tx, &stop)))?
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
    let result = event_loop(&mut model, &mut screen, &rx, &tx, &poke, target);
    stop.store(true, Ordering::SeqCst);
    drop(screen);
    // Polls its stop flag every 100 ms.
    let _ = input.join();
    result.map(|()| model.ended)
}

fn event_loop(
    model: &mut Model,
    screen: &mut Screen,
    rx: &Receiver<Msg>,
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
    // The connected view's connection (`Enter` on a tty instance).
    let mut link: Option<Link> = None;
    loop {
        let now = Instant::now();
        let wait = if dirty {
            (drawn + FRAME).saturating_duration_since(now)
        } else {
            (drawn + POLL).saturating_duration_since(now)
        };
        let first = match rx.recv_timeout(wait) {
            Ok(msg) => Some(msg),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let mut effects = Vec::new();
        if let Some(msg) = first {
            dirty = true;
            // Whatever else is waiting, before drawing once.
            let mut next = Some(msg);
            let mut taken = 0;
            while let Some(msg) = next {
                if let Some(failed) = handle(model, msg, link.as_ref(), &mut effects) {
                    return Err(Error::io(
                        "reading the terminal",
                        std::io::Error::other(failed),
                    ));
                }
                taken += 1;
                next = if taken < QUEUE {
                    rx.try_recv().ok()
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
    msg: Msg,
    link: Option<&Link>,
    effects: &mut Vec<Effect>,
) -> Option<String> {
    let now = Instant::now();
    match msg {
        Msg::Input(Event::Key(key)) => effects.extend(model.apply_key(key, now)),
        Msg::Input(_) => {}
        Msg::InputFailed(e) => return Some(e),
        Msg::Records(bytes) => {
            // procrun's events change what ps shows: ask now.
            if model.apply_records(&bytes) {
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

fn read_input(tx: &SyncSender<Msg>, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        let event = match event::poll(Duration::from_millis(100)) {
            Ok(false) => continue,
            Ok(true) => event::read(),
            Err(e) => Err(e),
        };
        let msg = match event {
            Ok(event) => Msg::Input(event),
            Err(e) => Msg::InputFailed(e.to_string()),
        };
        let failed = matches!(msg, Msg::InputFailed(_));
        if tx.send(msg).is_err() || failed {
            return;
        }
    }
}

/// A writer of the follow stream's bytes that sends them on as whole
/// records. They are parsed on the drawing thread, which keeps the lines:
/// memory is then allocated and freed by one thread (across threads,
/// malloc's arenas contend, and at 100,000 lines a second that costs more
/// than the parsing).
struct Records<'a> {
    tx: &'a SyncSender<Msg>,
    partial: Vec<u8>,
}

impl std::io::Write for Records<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // Frames hold whole records; one cut by a frame's end waits for the
        // next frame.
        let Some(end) = memchr::memrchr(b'\n', buf) else {
            self.partial.extend_from_slice(buf);
            return Ok(buf.len());
        };
        let mut whole = std::mem::take(&mut self.partial);
        whole.extend_from_slice(&buf[..=end]);
        self.partial.extend_from_slice(&buf[end + 1..]);
        if self.tx.send(Msg::Records(whole)).is_err() {
            // The dashboard is gone: end the follow.
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn follow(target: &Target, tx: &SyncSender<Msg>) {
    let lost = |reason: String| {
        Msg::Ended(Ended {
            exit_code: None,
            reason,
        })
    };
    let mut client = match target.connect() {
        Ok(c) => c,
        Err(e) => {
            let _ = tx.send(lost(describe(&e)));
            return;
        }
    };
    let mut sink = Records {
        tx,
        partial: Vec::new(),
    };
    let params = json!({ "follow": true, "json": true, "lines": REPLAY });
    let msg = match client.logs(params, &mut sink) {
        Ok(Some(Envelope::Bye {
            message, exit_code, ..
        })) => Msg::Ended(Ended {
            exit_code,
            reason: message,
        }),
        Ok(_) => lost("the connection to procrun was lost".into()),
        // The dashboard left (its channel is closed).
        Err(e) if e.exit_code() == crate::exit_code::ExitCode::OK => return,
        Err(e) => lost(describe(&e)),
    };
    let _ = tx.send(msg);
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
    use std::io::Write as _;

    use super::*;

    #[test]
    fn records_cut_by_a_frame_are_joined() {
        let (tx, rx) = mpsc::sync_channel(8);
        let mut sink = Records {
            tx: &tx,
            partial: Vec::new(),
        };
        let a = br#"{"name":"web.1","stream":"stdout","msg":"one"}"#;
        let b = br#"{"name":"web.1","stream":"stderr","msg":"two \"quoted\""}"#;
        let mut bytes = [&a[..], b"\n", &b[..], b"\n", &a[..], b"\n"].concat();
        let tail = bytes.split_off(a.len() + 10);
        sink.write_all(&bytes).expect("written");
        let mut middle = tail;
        let end = middle.split_off(middle.len() - 4);
        sink.write_all(&middle).expect("written");
        sink.write_all(&end).expect("written");
        let mut model = Model::new("t".into(), false);
        while let Ok(Msg::Records(bytes)) = rx.try_recv() {
            assert_eq!(bytes.last(), Some(&b'\n'), "whole records only");
            assert!(!model.apply_records(&bytes), "no event");
        }
        let texts: Vec<&str> = (0..3)
            .filter_map(|i| model.store.merged().get(i))
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(texts, ["one", "two \"quoted\"", "one"]);
        assert!(sink.partial.is_empty());
        drop(rx);
        let gone = sink.write(b"{}\n");
        assert!(gone.is_err(), "the dashboard left: the follow ends");
    }
}
