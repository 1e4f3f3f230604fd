//! How messages become bytes: the prefixed lines of text mode and the
//! records of `--log-format json`. The [`Renderer`] keeps what that needs
//! per instance (prefix, pid, sequence number), registered as instances
//! appear; the printer thread owns it.

use crate::output::json::{self, Stream};
use crate::output::lines::{Chunk, Tail};
use crate::output::notice::{Ident, Key, Notice};
use crate::output::printer::{Message, SPLIT_MARK};
use crate::output::style::{Clock, Prefix, SYSTEM, shorten};
use crate::output::terminal::without_sgr;

/// How output is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Looks {
    /// Colour the prefixes (text only).
    pub color: bool,
    /// Lines start with `HH:MM:SS` (text only).
    pub timestamps: bool,
    /// NDJSON records instead of prefixed lines.
    pub json: bool,
    /// Longest name in a prefix; longer ones are shortened (0: no limit).
    pub prefix_width: usize,
}

/// An instance as the printer knows it.
#[derive(Debug)]
struct Entry {
    ident: Ident,
    /// The name as its prefix shows it: shortened to the prefix width.
    shown: String,
    prefix: Prefix,
    /// Its JSON envelope after `ts` (name, type, instance, pid).
    head: Vec<u8>,
    /// Records written so far (JSON `seq`).
    seq: u64,
}

fn prefix_of(ident: &Ident, shown: &str, width: usize, looks: Looks) -> Prefix {
    Prefix::instance(
        shown,
        ident.type_index,
        width,
        looks.color,
        looks.timestamps,
    )
}

/// An instance's JSON envelope; none while writing text, where nothing
/// reads it (a thousand instances kept 64 KiB of them).
fn instance_head(looks: Looks, ident: &Ident, pid: Option<u32>) -> Vec<u8> {
    match looks.json {
        true => json::instance_head(ident, pid),
        false => Vec::new(),
    }
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
    /// The time to show instead of now (replaying the log ring).
    at: Option<std::time::SystemTime>,
    /// A text line's prefix with the time, rebuilt per chunk.
    head: Vec<u8>,
}

/// Whether `bytes` are all ASCII. A branch-free fold vectorises; the
/// standard `is_ascii` goes word by word.
pub fn is_ascii(bytes: &[u8]) -> bool {
    bytes.iter().fold(0u8, |all, &b| all | b) < 0x80
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
            at: None,
            head: Vec::new(),
        }
    }

    /// Shows `time` instead of the current time from now on (`None`: the
    /// current time again): `procrun logs` replays entries of the past.
    pub fn set_time(&mut self, time: Option<std::time::SystemTime>) {
        self.at = time;
    }

    /// The time text of a line (`HH:MM:SS`).
    fn clock_text(&mut self) -> &[u8] {
        match self.at {
            Some(t) => self.clock.at(t),
            None => self.clock.now(),
        }
    }

    /// The RFC 3339 time of a record.
    fn record_time(&self) -> String {
        match self.at {
            Some(t) => json::timestamp_at(t),
            None => json::timestamp(),
        }
    }

    /// Makes an instance known: its prefix, colour and JSON envelope.
    pub fn register(&mut self, ident: Ident) {
        let index = ident.key.index();
        if self.entries.len() <= index {
            self.entries.resize_with(index + 1, || None);
        }
        // Shown whole up to the prefix width, else shortened so that no two
        // instances look alike (a restarted instance keeps its name).
        let shown = match &self.entries[index] {
            Some(old) if old.ident.name == ident.name => old.shown.clone(),
            _ => {
                let others = &self.entries;
                let taken = |short: &str| {
                    short == SYSTEM
                        || others.iter().enumerate().any(|(i, e)| {
                            i != index
                                && e.as_ref()
                                    .is_some_and(|e| e.shown == short || e.ident.name == short)
                        })
                };
                shorten(&ident.name, self.looks.prefix_width, &taken)
            }
        };
        let len = shown.chars().count();
        if len > self.width {
            // A longer name widens every prefix, so columns stay aligned
            // from here on.
            self.width = len;
            self.system = Prefix::system(self.width, self.looks.color, self.looks.timestamps);
            let (width, looks) = (self.width, self.looks);
            for entry in self.entries.iter_mut().flatten() {
                entry.prefix = prefix_of(&entry.ident, &entry.shown, width, looks);
            }
        }
        self.entries[index] = Some(Entry {
            prefix: prefix_of(&ident, &shown, self.width, self.looks),
            shown,
            head: instance_head(self.looks, &ident, None),
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
            } => self.output(*key, *stream, chunk, out),
            Message::Notice(notice) => self.notice(notice, out),
        }
    }

    /// Appends the formatted lines of instance `key`.
    pub fn output(&mut self, key: Key, stream: Stream, chunk: &Chunk, out: &mut Vec<u8>) {
        // A terminal's colours are kept when `start` colours; `logs` for a
        // reader without colour gets the text alone.
        let plain = match stream {
            Stream::Pty if !self.looks.color || self.looks.json => without_sgr(chunk),
            _ => None,
        };
        let chunk = plain.as_ref().unwrap_or(chunk);
        if self.looks.json {
            self.output_json(key, stream, chunk, out);
        } else {
            self.output_text(key, chunk, out);
        }
    }

    /// Appends one of procrun's messages, formatted.
    pub fn notice(&mut self, notice: &Notice, out: &mut Vec<u8>) {
        if let Notice::Started { key, pid, .. } = notice
            && let Some(Some(entry)) = self.entries.get_mut(key.index())
        {
            entry.head = instance_head(self.looks, &entry.ident, *pid);
        }
        if self.looks.json {
            self.notice_json(notice, out);
        } else {
            let text = notice.text(&|k| self.name(k));
            let timestamps = self.looks.timestamps;
            let system_before = self.system.before.clone();
            let system_after = self.system.after.clone();
            let time: &[u8] = if timestamps { self.clock_text() } else { b"" };
            for line in text.lines() {
                out.extend_from_slice(&system_before);
                out.extend_from_slice(time);
                out.extend_from_slice(&system_after);
                out.extend_from_slice(line.as_bytes());
                out.push(b'\n');
            }
        }
    }

    fn output_text(&mut self, key: Key, chunk: &Chunk, out: &mut Vec<u8>) {
        let Some(Some(entry)) = self.entries.get(key.index()) else {
            return;
        };
        let prefix = &entry.prefix;
        // The whole prefix, time included, once per chunk.
        let head = &mut self.head;
        head.clear();
        head.extend_from_slice(&prefix.before);
        if self.looks.timestamps {
            head.extend_from_slice(match self.at {
                Some(t) => self.clock.at(t),
                None => self.clock.now(),
            });
        }
        head.extend_from_slice(&prefix.after);
        let data = &chunk.data[..];
        // Most output is ASCII: one vectorised pass says so, where a UTF-8
        // validation of every chunk cost the printer 8 % of its time.
        let valid = is_ascii(data) || std::str::from_utf8(data).is_ok();
        if valid && chunk.tail == Tail::Lines {
            // The fast path: each line is copied with its newline, in one
            // scan for newlines.
            out.reserve(data.len() + head.len() * (data.len() / 64 + 1));
            let mut from = 0;
            crate::output::lines::newlines(data, |nl| {
                out.extend_from_slice(head);
                if nl > from && data[nl - 1] == b'\r' {
                    out.extend_from_slice(&data[from..nl - 1]);
                    out.push(b'\n');
                } else {
                    out.extend_from_slice(&data[from..=nl]);
                }
                from = nl + 1;
            });
            return;
        }
        chunk.for_each_line(|line, split| {
            out.extend_from_slice(head);
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
        let ts = match self.at {
            Some(t) => json::timestamp_at(t),
            None => json::timestamp(),
        };
        let head = json::line_head(&ts, &entry.head, stream);
        let data = &chunk.data[..];
        if chunk.tail == Tail::Lines && json::plain(data) {
            // The fast path: no line needs an escape or a UTF-8 check, and
            // none is partial; one scan for newlines.
            out.reserve(data.len() + (head.len() + 24) * (data.len() / 64 + 1));
            let mut from = 0;
            crate::output::lines::newlines(data, |nl| {
                entry.seq += 1;
                json::plain_line(out, &head, entry.seq, &data[from..nl]);
                from = nl + 1;
            });
            return;
        }
        let eof = chunk.tail == Tail::Eof;
        // Only a chunk that ends the stream has a partial last line; only
        // then are its lines counted to find it.
        let lines = if eof {
            memchr::memchr_iter(b'\n', &chunk.data).count() + 1
        } else {
            0
        };
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
            json::line(out, &head, entry.seq, line, end);
        });
    }

    fn notice_json(&mut self, notice: &Notice, out: &mut Vec<u8>) {
        let events = json::events(notice, &|n| n.text(&|k| self.name(k)));
        let ts = self.record_time();
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::printer::tests::{ident, output};

    fn renderer(timestamps: bool, json: bool) -> Renderer {
        let mut r = Renderer::new(Looks {
            color: false,
            timestamps,
            json,
            prefix_width: 20,
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

    #[test]
    fn a_terminals_colours_go_for_a_reader_without_colour() {
        let coloured = || output(0, Stream::Pty, b"\x1b[31mred\x1b[0m\n", Tail::Lines);
        let mut r = renderer(false, false);
        assert_eq!(text(&mut r, coloured()), "web.1    | red\n");
        let mut r = renderer(false, true);
        assert_eq!(records(&text(&mut r, coloured()))[0]["msg"], "red");
        let mut r = Renderer::new(Looks {
            color: true,
            timestamps: false,
            json: false,
            prefix_width: 20,
        });
        r.register(ident(0, "web.1", 0));
        assert!(text(&mut r, coloured()).ends_with("\x1b[31mred\x1b[0m\n"));
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
}
