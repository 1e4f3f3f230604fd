//! The byte-level line splitter: turns what a child writes on a pipe into
//! chunks of whole lines, without one allocation per line.
//!
//! Output is bytes (docs/design.md, pitfall 6): lines are split on `\n` only, a
//! trailing `\r` is dropped when the line is shown, nothing is decoded here.
//! A line is never split unless it is longer than [`MAX_LINE`] bytes; then it
//! is cut into pieces of exactly `MAX_LINE` bytes, each marked as
//! [`Tail::Split`] so the printer can show that the line goes on. The cut
//! points depend only on the bytes, never on how the reads happened to chunk
//! them. A final line without `\n` is delivered when the stream ends.
//!
//! No byte is copied on the way to the printer: a read's whole lines leave
//! in the read buffer itself (only the partial line after them moves to
//! another buffer), and the printer hands the buffer back ([`recycle`])
//! for a later read. A stream holds a buffer only while it holds a partial
//! line or is reading: an idle instance costs no read buffer.

use std::sync::Mutex;

use memchr::{memchr_iter, memrchr};

/// The longest line kept whole, in bytes (without its `\n` and a trailing
/// `\r`). Longer lines are split into pieces of this size.
pub const MAX_LINE: usize = 1024 * 1024;

/// The first read size of a stream; quiet streams stay this small.
const READ_MIN: usize = 4 * 1024;

/// The largest read: busy streams grow to this, so a flood of output costs
/// few system calls.
const READ_MAX: usize = 64 * 1024;

/// The largest read of a stream whose pipe was enlarged
/// ([`LineBuffer::allow_large_reads`]): it may hold up to 1 MiB.
pub const READ_LARGE: usize = 256 * 1024;

/// Buffers the printer gave back, for the next reads.
static POOL: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

/// Bytes of buffers kept in the pool at most: enough for a round of
/// reads of the busy streams without allocating, and all the memory a
/// burst leaves behind.
const POOL_BYTES: usize = 2 * 1024 * 1024;

/// Lines shorter than this in all, in a buffer four times their size,
/// are copied out of it rather than handed over with it.
const SMALL_CHUNK: usize = 4 * 1024;

/// The smallest buffer worth keeping.
const POOL_MIN: usize = 32 * 1024;

/// Gives a chunk's buffer back for another read (the printer calls this
/// once it has formatted the chunk).
pub fn recycle(mut buf: Vec<u8>) {
    // Only the buffers of busy streams: a quiet one reads a few lines at a
    // time, and 1,000 of them would fill the pool with small buffers that
    // no busy stream can use.
    if buf.capacity() < POOL_MIN || buf.capacity() > 2 * READ_LARGE {
        return;
    }
    buf.clear();
    let mut pool = POOL.lock().unwrap_or_else(|e| e.into_inner());
    let held: usize = pool.iter().map(Vec::capacity).sum();
    if held + buf.capacity() <= POOL_BYTES {
        pool.push(buf);
    }
}

/// An empty buffer: a recycled one if there is one.
fn fresh() -> Vec<u8> {
    POOL.lock()
        .unwrap_or_else(|e| e.into_inner())
        .pop()
        .unwrap_or_default()
}

/// How the bytes of a [`Chunk`] end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Only whole lines, each ending in `\n`.
    Lines,
    /// Whole lines, then the stream's last line, which had no `\n` (or,
    /// from a terminal, a prompt left unfinished: `output::terminal`).
    Eof,
    /// Whole lines, then the first `MAX_LINE` bytes of a longer line.
    Split,
}

/// Whole lines of one stream, as one allocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes: lines ending in `\n`, then (unless `tail` is
    /// [`Tail::Lines`]) one unterminated piece.
    pub data: Vec<u8>,
    /// How `data` ends.
    pub tail: Tail,
}

/// Calls `f(i)` for the position of every `\n` in `data`, in order.
///
/// One pass over 64-byte blocks, each compared with `\n` four SSE2
/// registers at a time into a bit mask: with lines of 100 bytes, three
/// times cheaper than a `memchr` per line, whose setup costs as much as
/// the search.
pub fn newlines(data: &[u8], mut f: impl FnMut(usize)) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let mut base = 0;
        let mut blocks = data.chunks_exact(64);
        // SAFETY: SSE2 is part of every x86_64 CPU.
        let nl = unsafe { _mm_set1_epi8(b'\n' as i8) };
        for block in &mut blocks {
            let p = block.as_ptr().cast::<__m128i>();
            // SAFETY: the four unaligned 16-byte loads stay within the
            // 64-byte block; SSE2 is part of every x86_64 CPU.
            let mut mask = unsafe {
                let m = |i: usize| _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_loadu_si128(p.add(i)), nl));
                (m(0) as u16 as u64)
                    | (m(1) as u16 as u64) << 16
                    | (m(2) as u16 as u64) << 32
                    | (m(3) as u16 as u64) << 48
            };
            while mask != 0 {
                f(base + mask.trailing_zeros() as usize);
                mask &= mask - 1;
            }
            base += 64;
        }
        for i in memchr_iter(b'\n', blocks.remainder()) {
            f(base + i);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    for i in memchr_iter(b'\n', data) {
        f(i);
    }
}

impl Chunk {
    /// Calls `f(line, split)` for every line, without its `\n` and trailing
    /// `\r`; `split` is true for a piece of a line longer than [`MAX_LINE`].
    pub fn for_each_line(&self, mut f: impl FnMut(&[u8], bool)) {
        let data = &self.data[..];
        let mut from = 0;
        newlines(data, |nl| {
            f(strip_cr(&data[from..nl]), false);
            from = nl + 1;
        });
        let rest = &data[from..];
        match self.tail {
            Tail::Lines => debug_assert!(rest.is_empty(), "a Lines chunk ends with \\n"),
            Tail::Eof => f(strip_cr(rest), false),
            Tail::Split => f(rest, true),
        }
    }
}

fn strip_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The read buffer of one stream and the partial line it holds.
#[derive(Debug)]
pub struct LineBuffer {
    buf: Vec<u8>,
    /// `buf[..scanned]` holds no `\n` (it is the partial line).
    scanned: usize,
    read_size: usize,
    /// The largest read of this stream.
    read_max: usize,
    cap: usize,
}

impl Default for LineBuffer {
    fn default() -> Self {
        LineBuffer::new()
    }
}

impl LineBuffer {
    /// A buffer that keeps lines up to [`MAX_LINE`] bytes whole.
    pub fn new() -> Self {
        LineBuffer::with_max_line(MAX_LINE)
    }

    /// A buffer with another line cap (tests use small ones).
    pub fn with_max_line(cap: usize) -> Self {
        assert!(cap > 0, "the line cap must be positive");
        LineBuffer {
            buf: Vec::new(),
            scanned: 0,
            read_size: READ_MIN,
            read_max: READ_MAX,
            cap,
        }
    }

    /// The vector to read into: new bytes must be appended to it (as
    /// `AsyncReadExt::read_buf` does), then [`LineBuffer::filled`] called.
    pub fn spare(&mut self) -> &mut Vec<u8> {
        if self.buf.is_empty() && self.buf.capacity() > 4 * self.read_max {
            // A long line passed: give its memory back.
            self.buf = Vec::new();
        }
        if self.buf.capacity() == 0 {
            self.buf = fresh();
        }
        self.buf.reserve(self.read_size);
        &mut self.buf
    }

    /// Lets reads grow to [`READ_LARGE`] (its pipe holds that much).
    pub fn allow_large_reads(&mut self) {
        self.read_max = READ_LARGE;
    }

    /// Lets go of the read buffer if it holds nothing (between reads of a
    /// stream that is not in the middle of a line).
    pub fn idle(&mut self) {
        if self.buf.is_empty() && self.buf.capacity() > 0 {
            recycle(std::mem::take(&mut self.buf));
        }
    }

    /// Takes the whole lines out of the bytes appended since the last call
    /// and pushes them onto `out`.
    pub fn filled(&mut self, out: &mut Vec<Chunk>) {
        let new = self.buf.len() - self.scanned;
        if new == self.buf.capacity() - self.scanned || new >= self.read_size {
            // The read filled what it was given: read more at once next time.
            self.read_size = (self.read_size * 2).min(self.read_max);
        }
        if let Some(i) = memrchr(b'\n', &self.buf[self.scanned..]) {
            let end = self.scanned + i + 1;
            if end <= self.cap + 1 {
                // No line in here can be longer than the cap: the buffer
                // itself goes, the partial line after its lines moves. A
                // few lines in a large buffer are copied out instead: a
                // thousand quiet instances would otherwise park a 4 KiB
                // buffer each in the printer's queue for a 40-byte line.
                if end < SMALL_CHUNK && end * 4 < self.buf.capacity() {
                    out.push(Chunk {
                        data: self.buf[..end].to_vec(),
                        tail: Tail::Lines,
                    });
                    self.buf.drain(..end);
                } else {
                    let next = if end == self.buf.len() {
                        Vec::new()
                    } else {
                        let mut next = fresh();
                        next.extend_from_slice(&self.buf[end..]);
                        next
                    };
                    let mut data = std::mem::replace(&mut self.buf, next);
                    data.truncate(end);
                    out.push(Chunk {
                        data,
                        tail: Tail::Lines,
                    });
                }
            } else {
                self.split_long_lines(end, out);
                self.buf.drain(..end);
            }
        }
        // The partial line: cut pieces off while it surely exceeds the cap.
        let mut start = 0;
        loop {
            let partial = &self.buf[start..];
            let surely_long = partial.len() > self.cap + 1
                || (partial.len() == self.cap + 1 && partial[self.cap] != b'\r');
            if !surely_long {
                break;
            }
            out.push(Chunk {
                data: partial[..self.cap].to_vec(),
                tail: Tail::Split,
            });
            start += self.cap;
        }
        self.buf.drain(..start);
        self.scanned = self.buf.len();
    }

    /// The slow path of [`LineBuffer::filled`]: `buf[..end]` may hold lines
    /// longer than the cap.
    fn split_long_lines(&self, end: usize, out: &mut Vec<Chunk>) {
        let region = &self.buf[..end];
        let mut whole = Vec::new();
        let mut line_start = 0;
        for nl in memchr_iter(b'\n', region) {
            let mut line = &region[line_start..=nl];
            line_start = nl + 1;
            let content_len = strip_cr(&line[..line.len() - 1]).len();
            if content_len <= self.cap {
                whole.extend_from_slice(line);
                continue;
            }
            if !whole.is_empty() {
                out.push(Chunk {
                    data: std::mem::take(&mut whole),
                    tail: Tail::Lines,
                });
            }
            let mut remaining = content_len;
            while remaining > self.cap {
                out.push(Chunk {
                    data: line[..self.cap].to_vec(),
                    tail: Tail::Split,
                });
                line = &line[self.cap..];
                remaining -= self.cap;
            }
            whole.extend_from_slice(line);
        }
        if !whole.is_empty() {
            out.push(Chunk {
                data: whole,
                tail: Tail::Lines,
            });
        }
    }

    /// The stream ended: its last line, if it had no `\n`.
    pub fn finish(&mut self) -> Option<Chunk> {
        self.scanned = 0;
        if self.buf.is_empty() {
            return None;
        }
        Some(Chunk {
            data: std::mem::take(&mut self.buf),
            tail: Tail::Eof,
        })
    }

    /// Feeds `bytes` as if read (for tests and benchmarks).
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Chunk>) {
        self.spare().extend_from_slice(bytes);
        self.filled(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every line as the printer sees it: (text, split).
    fn lines(chunks: &[Chunk]) -> Vec<(Vec<u8>, bool)> {
        let mut all = Vec::new();
        for c in chunks {
            c.for_each_line(|l, split| all.push((l.to_vec(), split)));
        }
        all
    }

    fn feed(cap: usize, pieces: &[&[u8]]) -> Vec<(Vec<u8>, bool)> {
        let mut lb = LineBuffer::with_max_line(cap);
        let mut out = Vec::new();
        for p in pieces {
            lb.push(p, &mut out);
        }
        out.extend(lb.finish());
        lines(&out)
    }

    fn l(text: &str) -> (Vec<u8>, bool) {
        (text.as_bytes().to_vec(), false)
    }

    #[test]
    fn splits_on_newline_and_drops_cr() {
        assert_eq!(
            feed(100, &[b"a\r\nbb\n\ncc\r\r\n"]),
            vec![l("a"), l("bb"), l(""), l("cc\r")]
        );
    }

    #[test]
    fn joins_lines_across_reads() {
        assert_eq!(
            feed(100, &[b"hel", b"lo\nwor", b"ld", b"\n"]),
            vec![l("hello"), l("world")]
        );
    }

    #[test]
    fn flushes_the_last_partial_line_at_eof() {
        assert_eq!(
            feed(100, &[b"a\nno newline"]),
            vec![l("a"), l("no newline")]
        );
        assert_eq!(feed(100, &[b"a\n"]), vec![l("a")]);
        assert_eq!(feed(100, &[b""]), Vec::<(Vec<u8>, bool)>::new());
    }

    #[test]
    fn passes_invalid_utf8_through() {
        assert_eq!(
            feed(100, &[b"\xff\xfe ok\n"]),
            vec![(b"\xff\xfe ok".to_vec(), false)]
        );
    }

    #[test]
    fn keeps_a_line_of_exactly_the_cap_whole() {
        let line = "x".repeat(8);
        assert_eq!(feed(8, &[format!("{line}\r\n").as_bytes()]), vec![l(&line)]);
        assert_eq!(feed(8, &[line.as_bytes(), b"\r", b"\n"]), vec![l(&line)]);
    }

    #[test]
    fn splits_longer_lines_with_a_mark() {
        let want = vec![
            (b"12345678".to_vec(), true),
            (b"12345678".to_vec(), true),
            l("123"),
            l("ok"),
        ];
        assert_eq!(feed(8, &[b"1234567812345678123\nok\n"]), want);
        assert_eq!(
            feed(8, &[b"12345", b"67812345", b"678123\nok", b"\n"]),
            want
        );
    }

    #[test]
    fn a_megabyte_line_stays_whole() {
        let line = vec![b'y'; MAX_LINE];
        let mut lb = LineBuffer::new();
        let mut out = Vec::new();
        for piece in line.chunks(65536) {
            lb.push(piece, &mut out);
        }
        lb.push(b"\n", &mut out);
        assert_eq!(lines(&out), vec![(line, false)]);
    }

    #[test]
    fn read_size_grows_for_busy_streams_only() {
        let mut lb = LineBuffer::new();
        let mut out = Vec::new();
        assert_eq!(lb.read_size, READ_MIN);
        lb.push(b"short\n", &mut out);
        assert_eq!(lb.read_size, READ_MIN);
        for _ in 0..8 {
            lb.push(&[b'z'; READ_MAX], &mut out);
        }
        assert_eq!(lb.read_size, READ_MAX);
    }

    proptest! {
        #[test]
        fn newlines_finds_what_memchr_finds(
            data in proptest::collection::vec(prop_oneof![Just(b'\n'), any::<u8>()], 0..300),
            skip in 0usize..64,
        ) {
            // At every alignment of the blocks.
            let data = &data[skip.min(data.len())..];
            let mut found = Vec::new();
            newlines(data, |i| found.push(i));
            prop_assert_eq!(found, memchr_iter(b'\n', data).collect::<Vec<_>>());
        }

        #[test]
        fn any_chunking_gives_the_same_lines(
            input in proptest::collection::vec(
                prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), Just(0xffu8), any::<u8>()],
                0..400,
            ),
            cuts in proptest::collection::vec(0usize..400, 0..20),
            cap in 1usize..40,
        ) {
            let whole = feed(cap, &[&input]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for c in cuts {
                pieces.push(&input[last..c]);
                last = c;
            }
            pieces.push(&input[last..]);
            prop_assert_eq!(feed(cap, &pieces), whole.clone());

            // And the lines are the input: joining the pieces back gives it.
            let mut rebuilt = Vec::new();
            for (line, split) in &whole {
                rebuilt.extend_from_slice(line);
                if !split {
                    rebuilt.push(b'\n');
                }
            }
            let mut expected: Vec<u8> = Vec::new();
            let text = &input[..];
            let mut rest = text;
            while !rest.is_empty() {
                match memchr::memchr(b'\n', rest) {
                    Some(i) => {
                        expected.extend_from_slice(strip_cr(&rest[..i]));
                        expected.push(b'\n');
                        rest = &rest[i + 1..];
                    }
                    None => {
                        expected.extend_from_slice(strip_cr(rest));
                        expected.push(b'\n');
                        rest = &[];
                    }
                }
            }
            prop_assert_eq!(rebuilt, expected);
        }
    }
}
