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

use std::collections::HashMap;

use memchr::memmem;

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
    /// Bytes read, prefixes included.
    pub bytes: u64,
}

/// Reads a merged stream and checks every line.
#[derive(Debug)]
pub struct Checker {
    partial: Vec<u8>,
    writers: HashMap<u32, Writer>,
    finder: memmem::Finder<'static>,
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
            counts: Counts::default(),
        }
    }

    /// Feeds the next chunk of the stream.
    pub fn feed(&mut self, data: &[u8]) {
        self.counts.bytes += data.len() as u64;
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
}
