//! `--log-format json`: one JSON object per line of output (NDJSON), for
//! programs to read. The schema is documented in `docs/json.md`.
//!
//! Every record of a child line holds exactly one line: never two merged,
//! never one cut at a read boundary (only a line longer than 1 MiB is cut,
//! and each piece says so with `"split":true`). A line that is not valid
//! UTF-8 is carried as `msg_b64`, the base64 of its exact bytes, so nothing
//! is replaced or lost. procrun's own events share the envelope with
//! `"stream":"system"`.

use std::io::Write as _;
use std::time::SystemTime;

use base64::Engine as _;

use crate::outcome::{Outcome, signal_name};
use crate::output::notice::{Ident, Key, Next, Notice};

/// The name of procrun's own records.
pub const PROCRUN: &str = "procrun";

/// Which pipe a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// The child's stdout.
    Stdout,
    /// The child's stderr.
    Stderr,
    /// The child's terminal (`start --tty`): stdout and stderr are one
    /// stream there.
    Pty,
}

impl Stream {
    /// Its name in a record.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
            Stream::Pty => "pty",
        }
    }
}

/// The current time as RFC 3339 UTC with microseconds.
pub fn timestamp() -> String {
    timestamp_at(SystemTime::now())
}

/// `time` as RFC 3339 UTC with microseconds.
pub fn timestamp_at(time: SystemTime) -> String {
    humantime::format_rfc3339_micros(time).to_string()
}

/// Appends `text` as a JSON string.
fn string(out: &mut Vec<u8>, text: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, text);
}

/// Whether a JSON string of `bytes` needs an escape: a quote, a
/// backslash or a control character.
fn needs_escape(bytes: &[u8]) -> bool {
    // A branch-free fold over the bytes vectorises; `any` would not.
    bytes.iter().fold(false, |found, &b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    })
}

/// The fields every record of an instance starts with, after `ts`:
/// `,"name":"web.1","type":"web","instance":1,"pid":4242`.
pub fn instance_head(ident: &Ident, pid: Option<u32>) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(b",\"name\":");
    string(&mut out, &ident.name);
    out.extend_from_slice(b",\"type\":");
    string(&mut out, &ident.type_name);
    let _ = write!(out, ",\"instance\":{}", ident.number);
    if let Some(pid) = pid {
        let _ = write!(out, ",\"pid\":{pid}");
    }
    out
}

/// The head of procrun's own records.
pub fn procrun_head() -> Vec<u8> {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(b",\"name\":\"procrun\"");
    let _ = write!(out, ",\"pid\":{}", std::process::id());
    out
}

/// How a line of a record ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// With a newline.
    Newline,
    /// The stream ended before a newline: `"partial":true`.
    Partial,
    /// A piece of a line longer than 1 MiB: `"split":true`.
    Split,
}

/// What every line record of one chunk starts with, up to the sequence
/// number: `{"ts":"…","name":…,"pid":…,"stream":"stdout","seq":`. Built
/// once per chunk, not per line.
pub fn line_head(ts: &str, head: &[u8], stream: Stream) -> Vec<u8> {
    let mut out = Vec::with_capacity(ts.len() + head.len() + 40);
    out.extend_from_slice(b"{\"ts\":\"");
    out.extend_from_slice(ts.as_bytes());
    out.push(b'"');
    out.extend_from_slice(head);
    out.extend_from_slice(b",\"stream\":\"");
    out.extend_from_slice(stream.as_str().as_bytes());
    out.extend_from_slice(b"\",\"seq\":");
    out
}

/// Whether every line of `bytes` can be copied into a JSON string as it
/// is: ASCII without a quote, a backslash or a control character other
/// than the newlines between lines (so no `\r` either, which a line end
/// drops). One branch-free pass over a whole chunk, which vectorises.
pub fn plain(bytes: &[u8]) -> bool {
    !bytes.iter().fold(false, |found, &b| {
        found | (b >= 0x80) | ((b < 0x20) & (b != b'\n')) | (b == b'"') | (b == b'\\')
    })
}

/// Appends the record of one line of a [`plain`] chunk (whole, ending in a
/// newline that `line` does not include).
pub fn plain_line(out: &mut Vec<u8>, line_head: &[u8], seq: u64, line: &[u8]) {
    out.extend_from_slice(line_head);
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    out.extend_from_slice(b",\"msg\":\"");
    out.extend_from_slice(line);
    out.extend_from_slice(b"\"}\n");
}

/// Appends the record of one child line, after its chunk's [`line_head`].
pub fn line(out: &mut Vec<u8>, line_head: &[u8], seq: u64, line: &[u8], end: End) {
    out.reserve(line_head.len() + line.len() + 48);
    out.extend_from_slice(line_head);
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    match std::str::from_utf8(line).ok() {
        // Most lines need no escaping: copied as they are, one memcpy.
        Some(_) if !needs_escape(line) => {
            out.extend_from_slice(b",\"msg\":\"");
            out.extend_from_slice(line);
            out.push(b'"');
        }
        Some(text) => {
            out.extend_from_slice(b",\"msg\":");
            string(out, text);
        }
        None => {
            out.extend_from_slice(b",\"msg_b64\":\"");
            let encoded = base64::engine::general_purpose::STANDARD.encode(line);
            out.extend_from_slice(encoded.as_bytes());
            out.push(b'"');
        }
    }
    match end {
        End::Newline => {}
        End::Partial => out.extend_from_slice(b",\"partial\":true"),
        End::Split => out.extend_from_slice(b",\"split\":true"),
    }
    out.extend_from_slice(b"}\n");
}

/// One event record's own fields, after the envelope.
#[derive(Debug)]
pub struct Event {
    /// The record's subject: an instance, or procrun itself.
    pub subject: Option<Key>,
    /// `start`, `exit`, …
    pub event: &'static str,
    /// The remaining fields, as JSON values.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

impl Event {
    fn of(subject: Option<Key>, event: &'static str) -> Self {
        Event {
            subject,
            event,
            fields: Vec::new(),
        }
    }

    fn with(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }
}

fn outcome_fields(e: Event, outcome: Outcome) -> Event {
    match outcome {
        Outcome::Exited(code) => e.with("code", code),
        Outcome::Killed(sig) => e.with("signal", signal_name(sig)),
        Outcome::FailedToStart => e.with("code", outcome.exit_code()),
    }
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The records a notice becomes (a stop of three instances is three
/// records, one per instance). `text` renders the human message.
pub fn events(notice: &Notice, text: &dyn Fn(&Notice) -> String) -> Vec<Event> {
    match notice {
        Notice::Started { key, port, .. } => {
            let e = Event::of(Some(*key), "start");
            vec![match port {
                Some(port) => e.with("port", *port),
                None => e,
            }]
        }
        Notice::SpawnFailed { key, .. } => vec![
            outcome_fields(Event::of(Some(*key), "exit"), Outcome::FailedToStart)
                .with("msg", text(notice)),
        ],
        Notice::Exited { key, outcome, next } => {
            let mut list = vec![outcome_fields(Event::of(Some(*key), "exit"), *outcome)];
            if let Next::Restart { delay, count, max } = next {
                let mut e = Event::of(Some(*key), "restart")
                    .with("delay_ms", ms(*delay))
                    .with("restarts", *count);
                if let Some(max) = max {
                    e = e.with("max_restarts", *max);
                }
                list.push(e);
            }
            list
        }
        Notice::Failed { key, restarts, .. } => vec![
            Event::of(Some(*key), "failed")
                .with("restarts", *restarts)
                .with("msg", text(notice)),
        ],
        Notice::Received { signal } => {
            vec![Event::of(None, "stop").with("signal", signal_name(*signal))]
        }
        Notice::ReceivedAgain { signal } => {
            vec![Event::of(None, "kill").with("signal", signal_name(*signal))]
        }
        Notice::Forwarded { signal, count } => vec![
            Event::of(None, "signal")
                .with("signal", signal.as_str())
                .with("count", *count),
        ],
        Notice::Stopping { targets } => targets
            .iter()
            .map(|(key, signal, timeout)| {
                Event::of(Some(*key), "stop")
                    .with("signal", signal.as_str())
                    .with("timeout_ms", ms(*timeout))
            })
            .collect(),
        Notice::Killing { targets } => targets
            .iter()
            .map(|key| Event::of(Some(*key), "kill").with("signal", "SIGKILL"))
            .collect(),
        Notice::PortInUse { key, port } => {
            vec![Event::of(Some(*key), "warning").with("port", *port).with(
                "msg",
                format!("PORT {port} is already in use on this machine"),
            )]
        }
        Notice::GaveUp => vec![Event::of(None, "warning").with("msg", text(notice))],
        Notice::Suspended { count } => vec![Event::of(None, "suspend").with("count", *count)],
        Notice::Resumed { count } => vec![Event::of(None, "resume").with("count", *count)],
        Notice::Ready {
            key, kind, after, ..
        } => vec![
            Event::of(Some(*key), "ready")
                .with("check", *kind)
                .with("after_ms", ms(*after))
                .with("msg", text(notice)),
        ],
        Notice::NotReady {
            key, kind, timeout, ..
        } => vec![
            Event::of(Some(*key), "not_ready")
                .with("check", *kind)
                .with("timeout_ms", ms(*timeout))
                .with("msg", text(notice)),
        ],
        Notice::Waiting { key, on } => {
            vec![Event::of(Some(*key), "waiting").with("after", on.clone())]
        }
        Notice::Skipped { key, .. } => {
            vec![Event::of(Some(*key), "skipped").with("msg", text(notice))]
        }
        Notice::Control { action, from } => {
            let e = Event::of(None, "control")
                .with("action", action.clone())
                .with("msg", text(notice));
            vec![match from {
                Some(pid) => e.with("from_pid", *pid),
                None => e,
            }]
        }
        Notice::Dropped { count } => vec![
            Event::of(None, "dropped")
                .with("count", *count)
                .with("msg", text(notice)),
        ],
    }
}

/// Appends one event record, given its subject's head and sequence number.
pub fn event(out: &mut Vec<u8>, ts: &str, head: &[u8], seq: u64, event: &Event) {
    out.extend_from_slice(b"{\"ts\":\"");
    out.extend_from_slice(ts.as_bytes());
    out.push(b'"');
    out.extend_from_slice(head);
    let _ = write!(
        out,
        ",\"stream\":\"system\",\"seq\":{seq},\"event\":\"{}\"",
        event.event
    );
    for (name, value) in &event.fields {
        let _ = write!(out, ",\"{name}\":");
        let _ = serde_json::to_writer(&mut *out, value);
    }
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_chunks_and_their_records() {
        assert!(!plain(b"GET / 200 in 3ms\nok {\"}\n"));
        assert!(plain(b"GET / 200 in 3ms\nok {}\n"));
        for bad in [
            &b"a\r\n"[..],
            b"tab\there\n",
            b"back\\slash\n",
            b"caf\xc3\xa9\n",
            b"\x1b[1m\n",
        ] {
            assert!(!plain(bad), "{bad:?}");
        }
        // The fast path writes what the general one writes.
        let head = line_head("T", b",\"name\":\"web.1\"", Stream::Stdout);
        let (mut fast, mut slow) = (Vec::new(), Vec::new());
        plain_line(&mut fast, &head, 7, b"listening on :5000");
        line(&mut slow, &head, 7, b"listening on :5000", End::Newline);
        assert_eq!(fast, slow);
    }

    fn ident() -> Ident {
        Ident {
            key: Key(0),
            name: "web.1".into(),
            type_name: "web".into(),
            type_index: 0,
            number: 1,
        }
    }

    fn parse(out: &[u8]) -> serde_json::Value {
        serde_json::from_slice(out).expect("one JSON object")
    }

    #[test]
    fn a_line_record() {
        let mut out = Vec::new();
        let head = instance_head(&ident(), Some(42));
        line(
            &mut out,
            &line_head("T", &head, Stream::Stderr),
            7,
            b"he said \"hi\"\t\x1b[1m",
            End::Newline,
        );
        assert_eq!(*out.last().expect("newline"), b'\n');
        let v = parse(&out);
        assert_eq!(v["ts"], "T");
        assert_eq!(v["name"], "web.1");
        assert_eq!(v["type"], "web");
        assert_eq!(v["instance"], 1);
        assert_eq!(v["pid"], 42);
        assert_eq!(v["stream"], "stderr");
        assert_eq!(v["seq"], 7);
        assert_eq!(v["msg"], "he said \"hi\"\t\x1b[1m");
        assert!(v.get("partial").is_none());
    }

    #[test]
    fn invalid_utf8_goes_to_msg_b64() {
        let mut out = Vec::new();
        line(
            &mut out,
            &line_head("T", b"", Stream::Stdout),
            1,
            b"a\xffb",
            End::Partial,
        );
        let v = parse(&out);
        assert!(v.get("msg").is_none());
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v["msg_b64"].as_str().expect("a string"))
            .expect("base64");
        assert_eq!(bytes, b"a\xffb");
        assert_eq!(v["partial"], true);
    }

    #[test]
    fn timestamps_are_rfc3339_utc_micros() {
        let ts = timestamp();
        assert_eq!(ts.len(), "2026-12-01T12:00:00.123456Z".len(), "{ts}");
        assert!(ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "{ts}");
    }

    #[test]
    fn a_restart_is_an_exit_then_a_restart() {
        let n = Notice::Exited {
            key: Key(0),
            outcome: Outcome::Killed(9),
            next: Next::Restart {
                delay: std::time::Duration::from_millis(2500),
                count: 2,
                max: Some(10),
            },
        };
        let list = events(&n, &|_| String::new());
        let mut out = Vec::new();
        for e in &list {
            event(&mut out, "T", &instance_head(&ident(), None), 3, e);
        }
        let lines: Vec<serde_json::Value> = out
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(parse)
            .collect();
        assert_eq!(lines[0]["event"], "exit");
        assert_eq!(lines[0]["signal"], "SIGKILL");
        assert_eq!(lines[0]["stream"], "system");
        assert_eq!(lines[1]["event"], "restart");
        assert_eq!(lines[1]["delay_ms"], 2500);
        assert_eq!(lines[1]["restarts"], 2);
        assert_eq!(lines[1]["max_restarts"], 10);
    }

    proptest::proptest! {
        /// Copied or escaped, every line reads back exactly.
        #[test]
        fn every_line_reads_back(line in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80)) {
            let mut out = Vec::new();
            super::line(&mut out, &line_head("T", b"", Stream::Stdout), 1, &line, End::Newline);
            let v = parse(&out);
            match std::str::from_utf8(&line) {
                Ok(text) => proptest::prop_assert_eq!(v["msg"].as_str(), Some(text)),
                Err(_) => proptest::prop_assert!(v.get("msg_b64").is_some()),
            }
        }
    }
}
