//! The self-checking line format and the checker that reads a merged stream.
//!
//! A payload line is exactly [`LINE_LEN`] bytes including its newline:
//!
//! ```text
//! #PRB <pid:8> <seq:10> <fnv1a32 of "pid seq":8 hex> <65 fill bytes>\n
//! ```
//!
//! The fill is `a..z` rotated by the sequence number, so any corruption of
//! the line shows. A runner puts its own prefix (`12:00:00 w.1  | `) in front
//! of the payload; the checker finds the payload at the end of the line and
//! looks for stray markers in the prefix, so it works for every runner
//! without knowing its prefix format.
//!
//! Control lines: `#PRB DONE <pid> <count>` (a producer finished) and
//! `#PRB READY <pid>` (an instance of the startup scenarios is up).
//!
//! In JSON mode ([`Checker::json`], for `procrun start --log-format json`)
//! every line must be one JSON record (docs/json.md): the checker parses it,
//! checks that `seq` counts each instance's records 1, 2, 3… without a gap,
//! and runs the line checks above on the `msg` field, which must hold the
//! payload exactly, with nothing before or after it.

use std::collections::HashMap;

use memchr::memmem;

use crate::json;

/// Marker that starts every line the bench processes print.
pub const MARKER: &[u8] = b"#PRB ";
/// Bytes of one payload line, newline included.
pub const LINE_LEN: usize = 100;
/// Payload bytes without the newline.
const BODY: usize = LINE_LEN - 1;
const PID_AT: usize = 5;
const SEQ_AT: usize = 14;
const SUM_AT: usize = 25;
const FILL_AT: usize = 34;
const FILL_LEN: usize = BODY - FILL_AT;

/// `a..z` repeated: the fill of sequence number `s` is `FILL[s % 26..][..FILL_LEN]`.
static FILL: [u8; FILL_LEN + 26] = {
    let mut fill = [0u8; FILL_LEN + 26];
    let mut i = 0;
    while i < fill.len() {
        fill[i] = b'a' + (i % 26) as u8;
        i += 1;
    }
    fill
};

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for &b in bytes {
        hash ^= u32::from(b);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

fn put_dec(out: &mut [u8], mut value: u64) {
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

fn put_hex(out: &mut [u8], mut value: u32) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for slot in out.iter_mut().rev() {
        *slot = HEX[(value & 15) as usize];
        value >>= 4;
    }
}

fn parse_dec(digits: &[u8]) -> Option<u64> {
    if digits.is_empty() {
        return None;
    }
    let mut value: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        value = value.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    Some(value)
}

fn parse_hex(digits: &[u8]) -> Option<u32> {
    let mut value: u32 = 0;
    for &d in digits {
        let nibble = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        value = (value << 4) | u32::from(nibble);
    }
    Some(value)
}

/// Writes payload lines for one writer into a buffer.
#[derive(Debug)]
pub struct LineWriter {
    template: [u8; LINE_LEN],
}

impl LineWriter {
    pub fn new(pid: u32) -> Self {
        let mut template = [b' '; LINE_LEN];
        template[..MARKER.len()].copy_from_slice(MARKER);
        put_dec(&mut template[PID_AT..PID_AT + 8], u64::from(pid));
        template[BODY] = b'\n';
        LineWriter { template }
    }

    /// Appends payload line number `seq` to `out`.
    pub fn line(&mut self, seq: u64, out: &mut Vec<u8>) {
        let t = &mut self.template;
        put_dec(&mut t[SEQ_AT..SEQ_AT + 10], seq);
        let sum = fnv1a(&t[PID_AT..SEQ_AT + 10]);
        put_hex(&mut t[SUM_AT..SUM_AT + 8], sum);
        let rot = (seq % 26) as usize;
        t[FILL_AT..BODY].copy_from_slice(&FILL[rot..rot + FILL_LEN]);
        out.extend_from_slice(t);
    }
}

/// Per-writer bookkeeping.
#[derive(Debug, Default)]
struct Writer {
    next: u64,
    unique: u64,
    seen: Vec<u64>,
}

impl Writer {
    /// Records `seq`; returns (duplicate, out_of_order).
    fn record(&mut self, seq: u64) -> (bool, bool) {
        let word = (seq / 64) as usize;
        if word >= self.seen.len() {
            self.seen.resize((word + 1).max(self.seen.len() * 2), 0);
        }
        let bit = 1u64 << (seq % 64);
        if self.seen[word] & bit != 0 {
            return (true, false);
        }
        self.seen[word] |= bit;
        self.unique += 1;
        let out_of_order = seq != self.next;
        self.next = seq + 1;
        (false, out_of_order)
    }
}

/// Counts of what the checker saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// All lines (anything terminated by a newline, or the final fragment).
    pub lines: u64,
    /// Whole, valid payload lines (including duplicates).
    pub payload: u64,
    /// Distinct valid payload lines.
    pub unique: u64,
    /// Valid payload lines seen a second time.
    pub duplicated: u64,
    /// Valid payload lines that arrived out of order within their writer.
    pub reordered: u64,
    /// Lines with a marker whose payload is cut short or damaged (split lines).
    pub corrupt: u64,
    /// Lines carrying more than one marker (two lines mixed into one).
    pub interleaved: u64,
    /// Lines without any marker: the runner's own messages, or fragments.
    pub other: u64,
    /// `READY` lines.
    pub ready: u64,
    /// `DONE` lines.
    pub done: u64,
    /// Restart notices: text lines with `restarting in`, or JSON records
    /// with `"event":"restart"`.
    pub restarts: u64,
    /// JSON mode: lines that are not one valid record (with `name` and
    /// `seq`, and a `msg` or an `event`).
    pub bad_records: u64,
    /// JSON mode: records whose `seq` is not the previous one of the same
    /// `name` plus one (the first must be 1).
    pub seq_gaps: u64,
    /// Bytes read, prefixes included.
    pub bytes: u64,
}

/// Reads a merged stream and checks every line.
#[derive(Debug)]
pub struct Checker {
    partial: Vec<u8>,
    writers: HashMap<u32, Writer>,
    finder: memmem::Finder<'static>,
    restart: memmem::Finder<'static>,
    /// JSON mode: the last `seq` of every `name`.
    seqs: Option<HashMap<Vec<u8>, u64>>,
    /// Sink mode ([`Checker::sink`]): the end of the last chunk, for a
    /// `DONE` marker cut between two reads.
    sink: Option<Vec<u8>>,
    pub counts: Counts,
}

impl Default for Checker {
    fn default() -> Self {
        Self::new()
    }
}

impl Checker {
    pub fn new() -> Self {
        Checker {
            partial: Vec::new(),
            writers: HashMap::new(),
            finder: memmem::Finder::new(MARKER),
            restart: memmem::Finder::new(b"restarting in"),
            seqs: None,
            sink: None,
            counts: Counts::default(),
        }
    }

    /// A sink that verifies nothing: it counts bytes and `DONE` markers
    /// (so the harness sees the end) and marks the first payload seen, at
    /// the cost of one vectorised search per read. The ceiling scenarios
    /// use it, so that the reader's checking does not compete with the
    /// runner for the CPU.
    pub fn sink() -> Self {
        Checker {
            sink: Some(Vec::new()),
            ..Self::new()
        }
    }

    /// A checker of `--log-format json` output: one record per line.
    pub fn json() -> Self {
        Checker {
            seqs: Some(HashMap::new()),
            ..Self::new()
        }
    }

    /// Feeds the next chunk of the stream.
    pub fn feed(&mut self, data: &[u8]) {
        self.counts.bytes += data.len() as u64;
        if let Some(carry) = self.sink.as_mut() {
            const DONE: &[u8] = b"#PRB DONE ";
            let done = memmem::Finder::new(DONE);
            // A marker cut between the last read and this one.
            let head = &data[..data.len().min(DONE.len() - 1)];
            carry.extend_from_slice(head);
            self.counts.done += done.find_iter(carry).count() as u64;
            self.counts.done += done.find_iter(data).count() as u64;
            if self.counts.payload == 0 && self.finder.find(data).is_some() {
                self.counts.payload = 1;
            }
            carry.clear();
            let keep = data.len().min(DONE.len() - 1);
            carry.extend_from_slice(&data[data.len() - keep..]);
            return;
        }
        let mut start = 0;
        if !self.partial.is_empty() {
            match memchr::memchr(b'\n', data) {
                Some(end) => {
                    let mut line = std::mem::take(&mut self.partial);
                    line.extend_from_slice(&data[..end]);
                    self.line(&line);
                    line.clear();
                    self.partial = line;
                    start = end + 1;
                }
                None => {
                    self.partial.extend_from_slice(data);
                    return;
                }
            }
        }
        let rest = &data[start..];
        let mut from = 0;
        for end in memchr::memchr_iter(b'\n', rest) {
            self.line(&rest[from..end]);
            from = end + 1;
        }
        self.partial.extend_from_slice(&rest[from..]);
    }

    /// Ends the stream: an unterminated final fragment counts as a line.
    pub fn finish(&mut self) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line);
        }
    }

    /// Distinct valid lines of writers with sequence numbers below `per_writer`.
    pub fn unique_below(&self, per_writer: u64) -> u64 {
        self.writers
            .values()
            .map(|w| {
                let full = (per_writer / 64) as usize;
                let mut n: u64 = w
                    .seen
                    .iter()
                    .take(full)
                    .map(|x| u64::from(x.count_ones()))
                    .sum();
                if let Some(word) = w.seen.get(full) {
                    let mask = (1u64 << (per_writer % 64)) - 1;
                    n += u64::from((word & mask).count_ones());
                }
                n
            })
            .sum()
    }

    /// Number of distinct writers seen.
    pub fn writers(&self) -> usize {
        self.writers.len()
    }

    fn line(&mut self, line: &[u8]) {
        self.counts.lines += 1;
        if self.seqs.is_some() {
            self.record(line);
        } else {
            self.text_line(line);
        }
    }

    /// JSON mode: one line of NDJSON.
    fn record(&mut self, line: &[u8]) {
        let Some(rec) = json::parse(line) else {
            self.counts.bad_records += 1;
            return;
        };
        let (Some(name), Some(seq)) = (rec.name, rec.seq) else {
            self.counts.bad_records += 1;
            return;
        };
        let seqs = self.seqs.as_mut().expect("JSON mode");
        match seqs.get_mut(&*name) {
            Some(last) => {
                if seq != *last + 1 {
                    self.counts.seq_gaps += 1;
                }
                *last = seq;
            }
            None => {
                if seq != 1 {
                    self.counts.seq_gaps += 1;
                }
                seqs.insert(name.into_owned(), seq);
            }
        }
        let stream = rec.stream.as_deref();
        if let Some(event) = rec.event {
            if stream != Some(b"system") {
                self.counts.bad_records += 1;
            }
            if &*event == b"restart" {
                self.counts.restarts += 1;
            }
            self.counts.other += 1;
            return;
        }
        if !matches!(stream, Some(b"stdout" | b"stderr")) {
            self.counts.bad_records += 1;
            return;
        }
        match rec.msg {
            // The payload must be the whole message: a marker anywhere but
            // at the start means something was put before it.
            Some(msg)
                if !rec.partial
                    && !rec.split
                    && self.finder.find(&msg).is_none_or(|at| at == 0) =>
            {
                self.text_line(&msg)
            }
            // A cut, partial or re-encoded line: whatever the writer
            // wrote, procrun did not pass it on as one whole UTF-8 line.
            Some(_) => self.counts.corrupt += 1,
            None if rec.msg_b64 => self.counts.corrupt += 1,
            None => self.counts.bad_records += 1,
        }
    }

    /// One line of text: a payload (after any prefix), a control line, or a
    /// line of the runner's own.
    fn text_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.len() >= BODY && line[line.len() - BODY..].starts_with(MARKER) {
            let at = line.len() - BODY;
            if self.finder.find(&line[..at]).is_some() {
                self.counts.interleaved += 1;
            }
            if self.payload(&line[at..]) {
                return;
            }
            self.counts.corrupt += 1;
            return;
        }
        let Some(at) = self.finder.find(line) else {
            if self.restart.find(line).is_some() {
                self.counts.restarts += 1;
            }
            self.counts.other += 1;
            return;
        };
        let body = &line[at..];
        if self.finder.find(&body[MARKER.len()..]).is_some() {
            self.counts.interleaved += 1;
        }
        if let Some(rest) = body.strip_prefix(b"#PRB READY ") {
            if parse_dec(rest).is_some() {
                self.counts.ready += 1;
                return;
            }
        } else if let Some(rest) = body.strip_prefix(b"#PRB DONE ") {
            let mut fields = rest.split(|&b| b == b' ');
            if let (Some(_), Some(_), None) = (
                fields.next().and_then(parse_dec),
                fields.next().and_then(parse_dec),
                fields.next(),
            ) {
                self.counts.done += 1;
                return;
            }
        }
        self.counts.corrupt += 1;
    }

    /// Checks one payload of exactly `BODY` bytes; records it when valid.
    fn payload(&mut self, p: &[u8]) -> bool {
        if p[SEQ_AT - 1] != b' ' || p[SUM_AT - 1] != b' ' || p[FILL_AT - 1] != b' ' {
            return false;
        }
        let (Some(pid), Some(seq), Some(sum)) = (
            parse_dec(&p[PID_AT..PID_AT + 8]),
            parse_dec(&p[SEQ_AT..SEQ_AT + 10]),
            parse_hex(&p[SUM_AT..SUM_AT + 8]),
        ) else {
            return false;
        };
        if fnv1a(&p[PID_AT..SEQ_AT + 10]) != sum {
            return false;
        }
        let rot = (seq % 26) as usize;
        if p[FILL_AT..] != FILL[rot..rot + FILL_LEN] {
            return false;
        }
        self.counts.payload += 1;
        let (dup, out_of_order) = self.writers.entry(pid as u32).or_default().record(seq);
        if dup {
            self.counts.duplicated += 1;
        } else {
            self.counts.unique += 1;
            if out_of_order {
                self.counts.reordered += 1;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(pid: u32, seqs: impl IntoIterator<Item = u64>) -> Vec<u8> {
        let mut w = LineWriter::new(pid);
        let mut out = Vec::new();
        for s in seqs {
            w.line(s, &mut out);
        }
        out
    }

    #[test]
    fn whole_lines_with_and_without_prefix() {
        let data = lines(42, 0..100);
        assert_eq!(data.len(), 100 * LINE_LEN);
        let mut c = Checker::new();
        for chunk in data.chunks(37) {
            c.feed(chunk);
        }
        c.feed(b"12:00:00 system | started\n");
        let mut prefixed = b"12:00:00 w.1    | ".to_vec();
        prefixed.extend_from_slice(&lines(43, [0])[..]);
        c.feed(&prefixed);
        c.feed(b"#PRB DONE 42 100\n#PRB READY 7\n");
        c.finish();
        assert_eq!(c.counts.unique, 101);
        assert_eq!(c.counts.other, 1);
        assert_eq!(c.counts.done, 1);
        assert_eq!(c.counts.ready, 1);
        assert_eq!(
            c.counts.corrupt + c.counts.interleaved + c.counts.reordered,
            0
        );
        assert_eq!(c.unique_below(100), 101);
        assert_eq!(c.unique_below(1), 2);
    }

    #[test]
    fn split_interleaved_duplicated_reordered() {
        let a = lines(1, [0]);
        let b = lines(2, [0]);
        let mut c = Checker::new();
        // a split in two lines
        c.feed(&a[..40]);
        c.feed(b"\n");
        c.feed(&a[40..]);
        // b's first half, then a whole line of a (interleaved)
        let mut mixed = b[..30].to_vec();
        mixed.extend_from_slice(&lines(1, [1]));
        c.feed(&mixed);
        c.feed(&lines(1, [1, 3, 2]));
        // a corrupted byte in the fill
        let mut bad = lines(3, [0]);
        bad[80] = b'!';
        c.feed(&bad);
        c.finish();
        assert_eq!(c.counts.corrupt, 2);
        assert_eq!(c.counts.other, 1);
        assert_eq!(c.counts.interleaved, 1);
        assert_eq!(c.counts.duplicated, 1);
        assert_eq!(c.counts.reordered, 3); // (1,1) after the lost (1,0), then 3 and 2
        assert_eq!(c.counts.unique, 3);
    }

    /// One NDJSON record of a child's line, as procrun writes it.
    fn record(name: &str, seq: u64, msg: &[u8]) -> Vec<u8> {
        let msg = std::str::from_utf8(msg).expect("ASCII payload");
        format!(
            "{{\"ts\":\"2026-12-01T12:00:00.000001Z\",\"name\":\"{name}\",\"type\":\"w\",\
             \"instance\":1,\"pid\":7,\"stream\":\"stdout\",\"seq\":{seq},\"msg\":\"{msg}\"}}\n"
        )
        .into_bytes()
    }

    fn payload(pid: u32, seq: u64) -> Vec<u8> {
        let mut l = lines(pid, [seq]);
        l.pop();
        l
    }

    #[test]
    fn json_records_carry_whole_payloads_in_seq_order() {
        let mut c = Checker::json();
        let mut data =
            br#"{"name":"w.1","pid":7,"stream":"system","seq":1,"event":"start"}"#.to_vec();
        data.push(b'\n');
        for s in 0..10 {
            data.extend(record("w.1", s + 2, &payload(7, s)));
        }
        data.extend(record("w.2", 1, b"#PRB DONE 8 0"));
        data.extend(
            br#"{"name":"w.1","stream":"system","seq":12,"event":"exit","code":1}
{"name":"w.1","stream":"system","seq":13,"event":"restart","delay_ms":10,"restarts":1}
"#,
        );
        for chunk in data.chunks(33) {
            c.feed(chunk);
        }
        c.finish();
        assert_eq!(c.counts.unique, 10);
        assert_eq!(c.counts.done, 1);
        assert_eq!(c.counts.restarts, 1);
        assert_eq!(c.counts.other, 3);
        let bad = c.counts.bad_records + c.counts.seq_gaps + c.counts.corrupt;
        assert_eq!(bad, 0, "{:?}", c.counts);
    }

    #[test]
    fn json_damage_is_counted() {
        let mut c = Checker::json();
        c.feed(&record("w.1", 1, &payload(7, 0)));
        // a gap in seq
        c.feed(&record("w.1", 3, &payload(7, 1)));
        // a prefix before the payload, and a payload cut short
        let mut prefixed = b"x ".to_vec();
        prefixed.extend(payload(7, 2));
        c.feed(&record("w.1", 4, &prefixed));
        c.feed(&record("w.1", 5, &payload(7, 3)[..50]));
        // two records on one line, a line that is not JSON, a record
        // without seq
        let two = [record("w.2", 1, b"a"), record("w.2", 2, b"b")].concat();
        c.feed(&two[..two.len() - 1]);
        c.feed(b" {\"x\":1}\nnot json\n{\"name\":\"w.3\",\"stream\":\"stdout\",\"msg\":\"a\"}\n");
        c.finish();
        assert_eq!(c.counts.unique, 2);
        assert_eq!(c.counts.seq_gaps, 1);
        assert_eq!(c.counts.corrupt, 2);
        assert_eq!(c.counts.bad_records, 3);
    }
}
