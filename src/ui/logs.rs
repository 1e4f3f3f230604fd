//! The output the dashboard shows: the chunks of lines of a `logs` follow
//! with `"format":"lines"` ([`chunk_lines`]) and the records of procrun's
//! messages (docs/json.md, [`parse`]) read into lines, and kept per
//! instance and merged ("all", as `start` prints them), within caps.
//!
//! Lines are read and stored on the dashboard's thread; the store shares
//! each line between the instance's list and the merged one. One file,
//! about 350 lines without its tests: reading a line and keeping it are
//! one path.

use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use serde::Deserialize;

use crate::ui::clean::{MAX_CHARS, clean, clean_owned};

/// Lines kept per instance (the log ring holds about 2,000 of 128 bytes).
pub const INSTANCE_LINES: usize = 5_000;

/// Lines kept in the merged view.
pub const MERGED_LINES: usize = 20_000;

/// Bytes of text kept for all instances together; each instance gets an
/// equal share, at least [`MIN_SHARE`].
pub const TOTAL_BYTES: usize = 64 * 1024 * 1024;

/// The smallest share of [`TOTAL_BYTES`] an instance gets.
pub const MIN_SHARE: usize = 256 * 1024;

/// What a line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A child's stdout.
    Out,
    /// A child's stderr.
    Err,
    /// One of procrun's own messages (`web.1 exited with code 1`).
    Event,
}

/// A line as read, before it is stored (its name borrowed from the record).
#[derive(Clone, Debug, PartialEq)]
pub struct Incoming<'a> {
    /// When procrun read it.
    pub time: Option<SystemTime>,
    /// `web.1`, or `procrun` for procrun's own events.
    pub name: Cow<'a, str>,
    /// Output or event.
    pub kind: Kind,
    /// The text, cleaned of escape sequences and controls.
    pub text: String,
}

/// The fields of a record the dashboard reads; others are ignored. The
/// short ones are borrowed from the record's bytes (a hundred thousand
/// lines a second is a lot of small allocations).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Record<'a> {
    #[serde(borrow)]
    ts: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Cow<'a, str>,
    #[serde(borrow)]
    stream: Cow<'a, str>,
    msg: Option<String>,
    msg_b64: Option<String>,
    event: Option<String>,
    pid: Option<u64>,
    port: Option<u64>,
    code: Option<i64>,
    signal: Option<String>,
    delay_ms: Option<u64>,
    restarts: Option<u64>,
    max_restarts: Option<u64>,
    timeout_ms: Option<u64>,
    after: Vec<String>,
    count: Option<u64>,
}

/// One NDJSON record as a line; `None` for an empty line.
pub fn parse(line: &[u8]) -> Option<Incoming<'_>> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return None;
    }
    let Ok(mut record) = serde_json::from_slice::<Record<'_>>(line) else {
        // Not a record: shown, never dropped in silence.
        return Some(Incoming {
            time: None,
            name: Cow::Borrowed("procrun"),
            kind: Kind::Event,
            text: clean(&String::from_utf8_lossy(line)),
        });
    };
    let time = record
        .ts
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339(t).ok());
    let kind = match &*record.stream {
        // A terminal's output (`--tty`) is the instance's too.
        "stdout" | "pty" => Kind::Out,
        "stderr" => Kind::Err,
        _ => Kind::Event,
    };
    let text = match kind {
        Kind::Event => event_text(&record),
        Kind::Out | Kind::Err => match (record.msg.take(), &record.msg_b64) {
            (Some(msg), _) => clean_owned(msg),
            (None, Some(b64)) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .unwrap_or_default();
                clean(&String::from_utf8_lossy(&bytes))
            }
            (None, None) => String::new(),
        },
    };
    Some(Incoming {
        time,
        name: record.name,
        kind,
        text,
    })
}

/// The lines of one chunk of an instance's output (a lines frame's bytes:
/// lines ending in `\n`, perhaps a last one without), cleaned like a
/// record's text. One scan of the chunk says whether every line is plain
/// printable ASCII (most output): each is then copied as it is.
pub fn chunk_lines<'a>(
    name: &'a str,
    kind: Kind,
    time: Option<SystemTime>,
    data: &'a [u8],
) -> impl Iterator<Item = Incoming<'a>> + 'a {
    let plain = printable(data);
    let last = (!data.is_empty() && !data.ends_with(b"\n")).then_some(data.len());
    let mut from = 0;
    memchr::memchr_iter(b'\n', data)
        .chain(last)
        .map(move |end| {
            let line = &data[from..end];
            from = end + 1;
            let text = match std::str::from_utf8(line) {
                Ok(text) if plain && line.len() <= MAX_CHARS => text.to_owned(),
                _ => clean(&String::from_utf8_lossy(line)),
            };
            Incoming {
                time,
                name: Cow::Borrowed(name),
                kind,
                text,
            }
        })
}

/// Whether `data` holds only printable ASCII and newlines. Branch-free,
/// so that it vectorises.
fn printable(data: &[u8]) -> bool {
    data.iter().fold(0u8, |bad, &b| {
        bad | u8::from(b.wrapping_sub(b' ') > b'~' - b' ' && b != b'\n')
    }) == 0
}

fn seconds(ms: u64) -> String {
    crate::policy::format_seconds(Duration::from_millis(ms))
}

/// An event as `start` words it under `system`.
fn event_text(r: &Record<'_>) -> String {
    let name = &r.name;
    let event = r.event.as_deref().unwrap_or("event");
    let signal = r.signal.as_deref().unwrap_or("a signal");
    let procrun = name == "procrun";
    let text = match event {
        "start" => {
            let pid = r.pid.map_or_else(|| "?".to_owned(), |p| p.to_string());
            match r.port {
                Some(port) => format!("{name} started with pid {pid} (PORT={port})"),
                None => format!("{name} started with pid {pid}"),
            }
        }
        "exit" if r.msg.is_none() => match (r.code, &r.signal) {
            (Some(code), _) => format!("{name} exited with code {code}"),
            (None, Some(signal)) => format!("{name} killed by {signal}"),
            (None, None) => format!("{name} ended"),
        },
        "restart" => {
            let of = r
                .max_restarts
                .map_or_else(String::new, |m| format!(" of {m}"));
            format!(
                "{name} restarting in {} (restart {}{of})",
                seconds(r.delay_ms.unwrap_or(0)),
                r.restarts.unwrap_or(0)
            )
        }
        "stop" if procrun => format!("{signal} received"),
        "stop" => format!(
            "stopping {name}: {signal}, then SIGKILL after {}",
            seconds(r.timeout_ms.unwrap_or(0))
        ),
        "kill" if procrun => format!("{signal} received again: killing at once"),
        "kill" => format!("sending SIGKILL to {name}"),
        "waiting" => format!("{name} waits for {}", r.after.join(", ")),
        "signal" => format!(
            "{signal} received: forwarded to {} processes",
            r.count.unwrap_or(0)
        ),
        "suspend" => format!("suspending {} processes and procrun", r.count.unwrap_or(0)),
        "resume" => format!("resuming {} processes", r.count.unwrap_or(0)),
        _ => match &r.msg {
            Some(msg) => msg.clone(),
            None => format!("{name}: {event}"),
        },
    };
    clean(&text)
}

/// A stored line.
#[derive(Debug)]
pub struct Line {
    /// Increases by one per line stored: a stable position for search.
    pub id: u64,
    /// When procrun read it.
    pub time: Option<SystemTime>,
    /// Whose (shared by every line of the instance).
    pub name: Rc<str>,
    /// Output or event.
    pub kind: Kind,
    /// The cleaned text.
    pub text: String,
}

impl Line {
    fn cost(&self) -> usize {
        self.text.len() + std::mem::size_of::<Line>()
    }
}

/// Lines within a cap of count and bytes.
#[derive(Debug, Default)]
pub struct Lines {
    lines: VecDeque<Rc<Line>>,
    bytes: usize,
}

impl Lines {
    /// How many.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The line at `index` (0: the oldest kept).
    pub fn get(&self, index: usize) -> Option<&Rc<Line>> {
        self.lines.get(index)
    }

    /// Where the line with this id is, if still kept.
    pub fn position(&self, id: u64) -> Option<usize> {
        let (a, b) = self.lines.as_slices();
        let found = |s: &[Rc<Line>]| s.binary_search_by_key(&id, |l| l.id).ok();
        found(a).or_else(|| found(b).map(|i| i + a.len()))
    }

    fn push(&mut self, line: Rc<Line>, max_lines: usize, max_bytes: usize) {
        self.bytes += line.cost();
        self.lines.push_back(line);
        self.trim(max_lines, max_bytes);
    }

    fn trim(&mut self, max_lines: usize, max_bytes: usize) {
        while self.lines.len() > 1 && (self.lines.len() > max_lines || self.bytes > max_bytes) {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.cost();
            }
        }
    }
}

/// Every instance's lines, and all of them merged.
#[derive(Debug, Default)]
pub struct Store {
    merged: Lines,
    by_name: HashMap<Rc<str>, Lines>,
    next_id: u64,
    /// The name of the last line: lines come in runs of one instance.
    last: Option<Rc<str>>,
}

impl Store {
    /// The merged lines.
    pub fn merged(&self) -> &Lines {
        &self.merged
    }

    /// The lines of `name` (none yet: empty).
    pub fn of(&self, name: &str) -> Option<&Lines> {
        self.by_name.get(name)
    }

    /// Stores `line`; returns its name, so the caller knows whose view grew.
    pub fn push(&mut self, line: Incoming<'_>) -> Rc<str> {
        let known = match &self.last {
            Some(last) if **last == *line.name => Some(Rc::clone(last)),
            _ => self
                .by_name
                .get_key_value(&*line.name)
                .map(|(name, _)| Rc::clone(name)),
        };
        let name: Rc<str> = match known {
            Some(name) => name,
            None => {
                let name: Rc<str> = Rc::from(&*line.name);
                self.by_name.insert(Rc::clone(&name), Lines::default());
                // One more instance shares the budget: the others shrink.
                let share = self.share();
                for lines in self.by_name.values_mut() {
                    lines.trim(INSTANCE_LINES, share);
                }
                name
            }
        };
        let stored = Rc::new(Line {
            id: self.next_id,
            time: line.time,
            name: Rc::clone(&name),
            kind: line.kind,
            text: line.text,
        });
        self.next_id += 1;
        let share = self.share();
        if let Some(lines) = self.by_name.get_mut(&name) {
            lines.push(Rc::clone(&stored), INSTANCE_LINES, share);
        }
        self.merged.push(stored, MERGED_LINES, TOTAL_BYTES / 4);
        self.last = Some(Rc::clone(&name));
        name
    }

    fn share(&self) -> usize {
        (TOTAL_BYTES / self.by_name.len().max(1)).max(MIN_SHARE)
    }
}

/// Whether `text` contains `query`, ignoring ASCII case.
pub fn contains(text: &str, query: &str) -> bool {
    !query.is_empty() && find_all(text, query).next().is_some()
}

/// The byte ranges of `query` in `text`, ignoring ASCII case, left to right
/// and not overlapping.
pub fn find_all<'a>(text: &'a str, query: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    let (hay, needle) = (text.as_bytes(), query.as_bytes());
    let mut at = 0;
    std::iter::from_fn(move || {
        if needle.is_empty() {
            return None;
        }
        while at + needle.len() <= hay.len() {
            let here = at;
            if hay[here..here + needle.len()].eq_ignore_ascii_case(needle)
                && text.is_char_boundary(here)
                && text.is_char_boundary(here + needle.len())
            {
                at = here + needle.len();
                return Some((here, here + needle.len()));
            }
            at += 1;
        }
        None
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> Incoming<'_> {
        parse(json.as_bytes()).expect("a line")
    }

    #[test]
    fn output_records_become_clean_lines() {
        let l = one(
            r#"{"ts":"2026-12-01T12:00:00.123456Z","name":"web.1","type":"web","instance":1,"pid":42,"stream":"stdout","seq":1,"msg":"\u001b[32mlistening\u001b[0m on :5000"}"#,
        );
        assert_eq!(l.name, "web.1");
        assert_eq!(l.kind, Kind::Out);
        assert_eq!(l.text, "listening on :5000");
        assert!(l.time.is_some());
        let l = one(r#"{"name":"worker.1","stream":"stderr","msg_b64":"Y2Fm6Q=="}"#);
        assert_eq!((l.kind, l.text.as_str()), (Kind::Err, "caf\u{fffd}"));
        assert_eq!(parse(b"  \n"), None);
        let l = one("not json \x1b[2J");
        assert_eq!((&*l.name, l.text.as_str()), ("procrun", "not json "));
    }

    #[test]
    fn events_read_as_start_prints_them() {
        let t = |json: &str| one(json).text;
        assert_eq!(
            t(r#"{"name":"web.1","pid":42,"stream":"system","event":"start","port":5000}"#),
            "web.1 started with pid 42 (PORT=5000)"
        );
        assert_eq!(
            t(r#"{"name":"web.1","stream":"system","event":"exit","code":1}"#),
            "web.1 exited with code 1"
        );
        assert_eq!(
            t(r#"{"name":"web.1","stream":"system","event":"exit","signal":"SIGTERM"}"#),
            "web.1 killed by SIGTERM"
        );
        assert_eq!(
            t(
                r#"{"name":"w.1","stream":"system","event":"restart","delay_ms":1500,"restarts":2,"max_restarts":10}"#
            ),
            "w.1 restarting in 1.5s (restart 2 of 10)"
        );
        assert_eq!(
            t(
                r#"{"name":"w.1","stream":"system","event":"stop","signal":"SIGTERM","timeout_ms":5000}"#
            ),
            "stopping w.1: SIGTERM, then SIGKILL after 5s"
        );
        assert_eq!(
            t(r#"{"name":"procrun","stream":"system","event":"stop","signal":"SIGINT"}"#),
            "SIGINT received"
        );
        assert_eq!(
            t(r#"{"name":"w.1","stream":"system","event":"waiting","after":["db","migrate"]}"#),
            "w.1 waits for db, migrate"
        );
        assert_eq!(
            t(
                r#"{"name":"procrun","stream":"system","event":"control","action":"restart of web.1","msg":"restart of web.1 requested from pid 7"}"#
            ),
            "restart of web.1 requested from pid 7"
        );
        assert_eq!(
            t(r#"{"name":"web.1","stream":"system","event":"brand_new"}"#),
            "web.1: brand_new"
        );
        assert_eq!(
            one(r#"{"name":"web.1","stream":"system","event":"ready","msg":"ok"}"#).kind,
            Kind::Event
        );
    }

    fn incoming<'a>(name: &'a str, text: &str) -> Incoming<'a> {
        Incoming {
            time: None,
            name: name.into(),
            kind: Kind::Out,
            text: text.into(),
        }
    }

    #[test]
    fn lines_are_kept_per_instance_and_merged_within_caps() {
        let mut s = Store::default();
        for i in 0..INSTANCE_LINES + 10 {
            s.push(incoming("web.1", &format!("line {i}")));
        }
        s.push(incoming("worker.1", "hello"));
        let web = s.of("web.1").expect("web.1's lines");
        assert_eq!(web.len(), INSTANCE_LINES);
        assert_eq!(web.get(0).expect("a line").text, "line 10");
        assert_eq!(s.of("worker.1").map(Lines::len), Some(1));
        assert_eq!(s.merged().len(), INSTANCE_LINES + 11);
        let last = s.merged().get(s.merged().len() - 1).expect("a line");
        assert_eq!((&*last.name, last.text.as_str()), ("worker.1", "hello"));
        assert_eq!(web.position(last.id), None);
        let id = web.get(7).expect("a line").id;
        assert_eq!(web.position(id), Some(7));
        assert!(s.of("db.1").is_none());
    }

    #[test]
    fn a_byte_budget_bounds_huge_lines() {
        let mut s = Store::default();
        let big = "x".repeat(MIN_SHARE / 4);
        for _ in 0..100 {
            s.push(incoming("web.1", &big));
        }
        let web = s.of("web.1").expect("lines");
        assert!(web.bytes <= TOTAL_BYTES, "{}", web.bytes);
        // Many instances: each one's share shrinks to the minimum.
        for i in 0..300 {
            for _ in 0..8 {
                s.push(incoming(&format!("w.{i}"), &big));
            }
        }
        let w = s.of("w.0").expect("lines");
        assert!(w.bytes <= MIN_SHARE, "{}", w.bytes);
        assert!(s.merged().bytes <= TOTAL_BYTES / 4);
    }

    #[test]
    fn chunks_become_clean_lines() {
        let texts = |data: &[u8]| -> Vec<String> {
            chunk_lines("web.1", Kind::Out, None, data)
                .map(|l| l.text)
                .collect()
        };
        assert_eq!(texts(b"a\n\nb c\n"), ["a", "", "b c"]);
        assert_eq!(
            texts(b"one\nlast"),
            ["one", "last"],
            "a last line without \\n"
        );
        assert_eq!(texts(b""), Vec::<String>::new());
        assert_eq!(
            texts(b"\x1b[31mred\x1b[0m\r\nok\n\xff bad\n"),
            ["red", "ok", "\u{fffd} bad"]
        );
        assert_eq!(texts(b"50%\r100%\n"), ["100%"]);
        let long = format!("{}\n", "x".repeat(MAX_CHARS + 1));
        assert!(texts(long.as_bytes())[0].ends_with("(1 more characters)"));
        let l = chunk_lines("w.2", Kind::Err, None, b"x\n")
            .next()
            .expect("a line");
        assert_eq!((&*l.name, l.kind), ("w.2", Kind::Err));
        assert!(printable(b"GET / 200\n~ \n"));
        assert!(!printable(b"tab\there\n") && !printable(b"\x7f") && !printable("é".as_bytes()));
    }

    /// The dashboard's cost per line: `cargo test --release --lib
    /// per_line_cost -- --ignored --nocapture` (a measurement, not a test).
    #[test]
    #[ignore = "a measurement: run by hand"]
    fn per_line_cost() {
        use std::time::Instant;
        let line = |i: usize| {
            format!(
                "2026-12-02T06:00:00Z GET /products/{i:06} 200 3ms {}\n",
                "x".repeat(40)
            )
        };
        let chunk: Vec<u8> = (0..64).flat_map(|i| line(i).into_bytes()).collect();
        let records: Vec<u8> = (0..64)
            .flat_map(|i| {
                let msg = line(i);
                let record = serde_json::json!({"ts":"2026-12-02T06:00:00.123456Z","name":"web.1","type":"web","instance":1,"pid":42,"stream":"stdout","seq":i,"msg":msg.trim_end()});
                format!("{record}\n").into_bytes()
            })
            .collect();
        let rounds = 4_000;
        let n = (rounds * 64) as f64;
        let per = |t: Instant| t.elapsed().as_nanos() as f64 / n;
        let t = Instant::now();
        let mut kept = 0;
        for _ in 0..rounds {
            kept += chunk_lines("web.1", Kind::Out, None, &chunk)
                .map(|l| l.text.len())
                .sum::<usize>();
        }
        let lines = per(t);
        let t = Instant::now();
        for _ in 0..rounds {
            let mut start = 0;
            for end in memchr::memchr_iter(b'\n', &records) {
                kept += parse(&records[start..end]).map_or(0, |l| l.text.len());
                start = end + 1;
            }
        }
        let json = per(t);
        let mut store = Store::default();
        let t = Instant::now();
        for _ in 0..rounds {
            for l in chunk_lines("web.1", Kind::Out, None, &chunk) {
                store.push(l);
            }
        }
        let stored = per(t);
        println!(
            "per line: {lines:.0} ns read from a lines chunk, {json:.0} ns parsed from a JSON record; {stored:.0} ns read and stored ({kept} bytes)"
        );
    }

    #[test]
    fn search_ignores_ascii_case() {
        assert!(contains("Connection REFUSED", "refused"));
        assert!(!contains("abc", ""));
        assert!(!contains("abc", "abcd"));
        let found: Vec<_> = find_all("aXa xa ÉxA", "xa").collect();
        assert_eq!(found, vec![(1, 3), (4, 6), (9, 11)]);
        assert_eq!(find_all("ééé", "é").count(), 3);
    }
}
