//! What a program writes to a terminal, as lines: the output of an instance
//! that runs on a pseudo-terminal (`start --tty`) becomes the same prefixed
//! lines as a pipe's, with what only makes sense on a screen taken out.
//! The rules are documented in `docs/tty.md`; in short:
//!
//! - lines end at `\n`; the `\r` the terminal puts before it (`\r\n`) goes;
//! - a bare `\r` (a progress bar redrawing its line) starts the line over:
//!   a line shows what was written after its last carriage return, which is
//!   what the screen shows once a progress bar is done. `ESC[2K` (erase the
//!   line) and `ESC[G`/`ESC[1G` (to the first column) do the same;
//! - a backspace takes back the character before it (an echoed erase,
//!   `\b \b`, or a spinner);
//! - with colour kept, SGR sequences (`ESC[…m`: colours, bold, …) stay; a
//!   colour still on at the end of a line is reset there and set again at
//!   the start of the next, so that procrun's prefix never takes it on;
//! - every other escape sequence (cursor movement, erasing, window titles,
//!   hyperlinks, modes; CSI, OSC, DCS, SOS, PM, APC strings and two-byte
//!   escapes), and without colour SGR too, is removed, as are the other
//!   control characters but the tab (BEL, NUL, DEL, …);
//! - a line the program leaves unfinished while it waits (a prompt such as
//!   `(Pdb) `) is shown after [`IDLE`] without output, unless it is a line
//!   being redrawn by carriage returns.
//!
//! A string sequence (OSC and the like) ends at its terminator (BEL or
//! `ESC \`), and also at a newline, so an unterminated one can hide at most
//! one line. Nothing here grows without bound: a line is cut at the line cap
//! like a pipe's, and the colour carried over is capped.
//!
//! Its unit tests are at the end; the code itself is under 400 lines.

use std::time::Duration;

use crate::output::lines::{Chunk, MAX_LINE, Tail};

/// An unfinished line is shown once the terminal has been quiet this long.
pub const IDLE: Duration = Duration::from_millis(200);

/// The longest SGR sequence kept (longer ones are removed).
const MAX_SGR: usize = 64;

/// The most SGR bytes carried from one line to the next; beyond, only the
/// last sequence is.
const MAX_CARRY: usize = 256;

/// Resets every SGR attribute.
const RESET: &[u8] = b"\x1b[0m";

/// Where the parser is inside an escape sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Esc {
    /// Not in one.
    None,
    /// After `ESC`.
    Start,
    /// `ESC` and intermediate bytes, waiting for the final one.
    Intermediate,
    /// `ESC [` and parameters, waiting for the final byte.
    Csi,
    /// An OSC, DCS, SOS, PM or APC string, up to its terminator.
    String,
    /// `ESC` inside a string: `\` ends it.
    StringEscape,
}

/// Turns a terminal's output into chunks of lines.
#[derive(Debug)]
pub struct TerminalLines {
    /// Keep SGR sequences (procrun colours its output).
    color: bool,
    cap: usize,
    /// The line so far: the colour in force when it started, then its text.
    line: Vec<u8>,
    /// `line[..mark]` ends with a kept escape or the line's start: a
    /// backspace takes nothing from before it.
    mark: usize,
    /// Characters in `line` (not counting colour), as far as backspaces
    /// tell.
    chars: usize,
    /// A carriage return was written; the next character starts over.
    cr: bool,
    /// The line was started over by a carriage return or an erase.
    redrawn: bool,
    esc: Esc,
    /// The CSI sequence being read (its first [`MAX_SGR`] bytes).
    seq: Vec<u8>,
    /// Whether `seq` was longer.
    seq_dropped: bool,
    /// The SGR sequences in force, to set again on the next line.
    sgr: Vec<u8>,
    /// Whole lines waiting to be handed out.
    done: Vec<u8>,
}

impl TerminalLines {
    /// Lines up to [`MAX_LINE`] bytes; `color` keeps SGR sequences.
    pub fn new(color: bool) -> Self {
        TerminalLines::with_max_line(color, MAX_LINE)
    }

    /// With another line cap (tests use small ones).
    pub fn with_max_line(color: bool, cap: usize) -> Self {
        assert!(cap > 0, "the line cap must be positive");
        TerminalLines {
            color,
            cap,
            line: Vec::new(),
            mark: 0,
            chars: 0,
            cr: false,
            redrawn: false,
            esc: Esc::None,
            seq: Vec::new(),
            seq_dropped: false,
            sgr: Vec::new(),
            done: Vec::new(),
        }
    }

    /// Takes in what the terminal output; pushes the whole lines onto `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Chunk>) {
        let mut rest = bytes;
        while let Some((&b, tail)) = rest.split_first() {
            // Most output is runs of text between line ends: copied whole.
            if self.esc == Esc::None && !is_control(b) {
                let run = tail
                    .iter()
                    .position(|&c| is_control(c))
                    .map_or(rest.len(), |i| i + 1);
                if self.line.len() + run < self.cap {
                    if self.cr {
                        self.start_over();
                    }
                    let text = &rest[..run];
                    self.line.extend_from_slice(text);
                    self.chars += text.iter().filter(|&&c| !(0x80..0xc0).contains(&c)).count();
                    rest = &rest[run..];
                    continue;
                }
            }
            self.byte(b, out);
            rest = tail;
        }
        if !self.done.is_empty() {
            out.push(Chunk {
                data: std::mem::take(&mut self.done),
                tail: Tail::Lines,
            });
        }
    }

    /// The terminal has been quiet for [`IDLE`]: the unfinished line, if it
    /// has text and is not being redrawn (a prompt, not a progress bar).
    pub fn idle(&mut self) -> Option<Chunk> {
        if self.redrawn || self.cr {
            return None;
        }
        self.finish()
    }

    /// The terminal closed: the unfinished line, if it has text.
    pub fn finish(&mut self) -> Option<Chunk> {
        if self.chars == 0 {
            return None;
        }
        self.close_line();
        let mut data = std::mem::take(&mut self.done);
        // Handed out without its newline, as a pipe's last line.
        data.pop();
        Some(Chunk {
            data,
            tail: Tail::Eof,
        })
    }

    fn byte(&mut self, b: u8, out: &mut Vec<Chunk>) {
        match self.esc {
            Esc::None => self.ground(b, out),
            Esc::Start => match b {
                b'[' => {
                    self.esc = Esc::Csi;
                    self.seq.clear();
                    self.seq.extend_from_slice(b"\x1b[");
                    self.seq_dropped = false;
                }
                b']' | b'P' | b'X' | b'^' | b'_' => self.esc = Esc::String,
                0x20..=0x2f => self.esc = Esc::Intermediate,
                0x30..=0x7e => self.esc = Esc::None,
                _ => self.abort(b, out),
            },
            Esc::Intermediate => match b {
                0x20..=0x2f => {}
                0x30..=0x7e => self.esc = Esc::None,
                _ => self.abort(b, out),
            },
            Esc::Csi => match b {
                0x20..=0x3f => {
                    if !self.seq_dropped {
                        if self.seq.len() >= MAX_SGR {
                            self.seq_dropped = true;
                        } else {
                            self.seq.push(b);
                        }
                    }
                }
                0x40..=0x7e => {
                    self.esc = Esc::None;
                    self.csi(b);
                }
                _ => self.abort(b, out),
            },
            Esc::String => match b {
                0x07 => self.esc = Esc::None,
                0x1b => self.esc = Esc::StringEscape,
                b'\n' => self.abort(b, out),
                _ => {}
            },
            Esc::StringEscape => match b {
                b'\\' => self.esc = Esc::None,
                b'\n' => self.abort(b, out),
                0x1b => {}
                _ => self.esc = Esc::String,
            },
        }
    }

    /// A byte that cannot be part of the sequence being read: the sequence
    /// is dropped and the byte taken as it is (a control character, as a
    /// terminal would, or an `ESC` that starts a new sequence).
    fn abort(&mut self, b: u8, out: &mut Vec<Chunk>) {
        self.esc = Esc::None;
        self.ground(b, out);
    }

    fn ground(&mut self, b: u8, out: &mut Vec<Chunk>) {
        match b {
            0x1b => self.esc = Esc::Start,
            b'\n' => self.end_line(),
            b'\r' => self.cr = true,
            0x08 => self.backspace(),
            b'\t' => self.put(b, out),
            0x00..=0x1f | 0x7f => {}
            _ => self.put(b, out),
        }
    }

    /// A final byte of a CSI sequence: `seq` holds `ESC [` and the
    /// parameters (unless given up).
    fn csi(&mut self, fin: u8) {
        let params = &self.seq[2.min(self.seq.len())..];
        let sgr = fin == b'm'
            && self.color
            && !self.seq_dropped
            && params
                .iter()
                .all(|&c| c.is_ascii_digit() || c == b';' || c == b':');
        // Erase the line, or erase to its end right after a `\r`.
        let erase = fin == b'K' && (params == b"2" || (matches!(params, b"" | b"0") && self.cr));
        // To the first column: a carriage return.
        let home = fin == b'G' && matches!(params, b"" | b"0" | b"1");
        if sgr {
            let mut seq = std::mem::take(&mut self.seq);
            seq.push(b'm');
            self.keep_sgr(&seq);
            self.seq = seq;
        } else if erase {
            self.start_over();
        } else if home {
            self.cr = true;
        }
    }

    /// An SGR sequence: into the line, and into the colour carried on.
    fn keep_sgr(&mut self, seq: &[u8]) {
        let params = &seq[2..seq.len() - 1];
        let resets = params.is_empty()
            || params == b"0"
            || params.starts_with(b"0;")
            || params.starts_with(b";");
        if resets {
            self.sgr.clear();
        }
        if !(params.is_empty() || params == b"0") {
            if self.sgr.len() + seq.len() > MAX_CARRY {
                self.sgr.clear();
            }
            self.sgr.extend_from_slice(seq);
        }
        self.line.extend_from_slice(seq);
        self.mark = self.line.len();
    }

    /// A character (or a byte of one).
    fn put(&mut self, b: u8, out: &mut Vec<Chunk>) {
        if self.cr {
            self.start_over();
        }
        if self.line.len() >= self.cap {
            self.split(out);
        }
        self.line.push(b);
        if !(0x80..0xc0).contains(&b) {
            self.chars += 1;
        }
    }

    /// The line is redrawn from its start.
    fn start_over(&mut self) {
        self.cr = false;
        self.line.clear();
        self.line.extend_from_slice(&self.sgr);
        self.mark = self.line.len();
        self.chars = 0;
        self.redrawn = true;
    }

    fn backspace(&mut self) {
        if self.cr || self.line.len() <= self.mark {
            return;
        }
        // One character: its continuation bytes, then its first byte.
        while self.line.len() > self.mark + 1
            && self.line.last().is_some_and(|&c| (0x80..0xc0).contains(&c))
        {
            self.line.pop();
        }
        self.line.pop();
        self.chars = self.chars.saturating_sub(1);
    }

    /// The line is as long as the cap: it goes out as a piece, marked.
    fn split(&mut self, out: &mut Vec<Chunk>) {
        let mut data = std::mem::take(&mut self.done);
        data.extend_from_slice(&self.line);
        out.push(Chunk {
            data,
            tail: Tail::Split,
        });
        self.line.clear();
        self.line.extend_from_slice(&self.sgr);
        self.mark = self.line.len();
        self.chars = 0;
    }

    fn end_line(&mut self) {
        self.close_line();
    }

    /// Moves the line, reset and `\n`, to `done`; the next one starts with
    /// the colour in force.
    fn close_line(&mut self) {
        self.done.extend_from_slice(&self.line);
        if !self.sgr.is_empty() {
            self.done.extend_from_slice(RESET);
        }
        self.done.push(b'\n');
        self.line.clear();
        self.line.extend_from_slice(&self.sgr);
        self.mark = self.line.len();
        self.chars = 0;
        self.cr = false;
        self.redrawn = false;
    }
}

/// Whether `b` is a control character (C0 or DEL): what ends a run of text.
fn is_control(b: u8) -> bool {
    b < 0x20 || b == 0x7f
}

/// `chunk` without the SGR sequences [`TerminalLines`] kept, for what
/// reads the text (a `ready = { log = … }` check); `None` when it has none.
pub fn without_sgr(chunk: &Chunk) -> Option<Chunk> {
    let data = &chunk.data;
    memchr::memchr(0x1b, data)?;
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        // Only `ESC [ params m` is left in kept output.
        if data[i] == 0x1b
            && data.get(i + 1) == Some(&b'[')
            && let Some(len) = data[i + 2..].iter().position(|&c| c == b'm')
        {
            i += len + 3;
            continue;
        }
        out.push(data[i]);
        i += 1;
    }
    Some(Chunk {
        data: out,
        tail: chunk.tail,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The lines as the printer sees them, `|` after an unfinished one.
    fn show(chunks: &[Chunk]) -> Vec<String> {
        let mut all = Vec::new();
        for c in chunks {
            c.for_each_line(|l, split| {
                let mut text = String::from_utf8_lossy(l).into_owned();
                if split {
                    text.push('+');
                }
                all.push(text);
            });
            if c.tail == Tail::Eof
                && let Some(last) = all.last_mut()
            {
                last.push('|');
            }
        }
        all
    }

    fn feed(color: bool, pieces: &[&[u8]]) -> Vec<String> {
        let mut t = TerminalLines::new(color);
        let mut out = Vec::new();
        for p in pieces {
            t.push(p, &mut out);
        }
        out.extend(t.finish());
        show(&out)
    }

    #[test]
    fn crlf_is_one_newline_and_lines_join_across_reads() {
        assert_eq!(
            feed(false, &[b"one\r\ntw", b"o\r", b"\n\r\nend"]),
            ["one", "two", "", "end|"]
        );
    }

    #[test]
    fn a_bare_carriage_return_starts_the_line_over() {
        assert_eq!(
            feed(false, &[b"10%\r", b"20%\r100%\r\n"]),
            ["100%"],
            "a progress bar shows its last state"
        );
        assert_eq!(feed(false, &[b"abc\r\r\n"]), ["abc"], "\\r\\r\\n keeps it");
        assert_eq!(
            feed(false, &[b"old\r\x1b[2Knew\n", b"x\x1b[2Ky\n"]),
            ["new", "y"],
            "erasing the line does too"
        );
        assert_eq!(feed(false, &[b"old\r\x1b[Knew\n"]), ["new"]);
        assert_eq!(feed(false, &[b"old\x1b[1Gnew\n"]), ["new"]);
    }

    #[test]
    fn backspace_takes_back_a_character() {
        assert_eq!(feed(false, &[b"helo\x08 \x08lo\n"]), ["hello"]);
        assert_eq!(feed(false, &["caf\u{e9}\x08e\n".as_bytes()]), ["cafe"]);
        assert_eq!(feed(false, &[b"\x08\x08a\n"]), ["a"], "nothing to take");
        assert_eq!(
            feed(true, &[b"a\x1b[31m\x08b\n"]),
            ["a\x1b[31mb\x1b[0m"],
            "not across a colour change"
        );
    }

    #[test]
    fn without_colour_every_escape_sequence_and_control_goes() {
        let input: &[u8] =
            b"\x1b[1;31mred\x1b[0m \x1b]0;title\x07\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\ \
            \x1b[?25l\x1b[3Aup\x1b(B\x1b7\x1b=\x1bPdcs\x1b\\ok\x07\x00\x7f\ttab\n";
        assert_eq!(feed(false, &[input]), ["red link upok\ttab"]);
    }

    #[test]
    fn with_colour_only_sgr_stays() {
        assert_eq!(
            feed(
                true,
                &[b"\x1b[1;31mred\x1b[0m \x1b[2Jx\x1b]0;t\x07y\x1b[>4;2mz\n"]
            ),
            ["\x1b[1;31mred\x1b[0m xyz"]
        );
    }

    #[test]
    fn a_colour_left_on_is_reset_at_the_line_end_and_set_again() {
        assert_eq!(
            feed(true, &[b"\x1b[32mgreen\nstill\x1b[0m\nplain\n"]),
            ["\x1b[32mgreen\x1b[0m", "\x1b[32mstill\x1b[0m", "plain"]
        );
        assert_eq!(
            feed(true, &[b"\x1b[1m\x1b[0;34mblue\r\x1b[2Kagain\n"]),
            ["\x1b[0;34magain\x1b[0m"],
            "a line started over keeps the colour in force"
        );
    }

    #[test]
    fn sequences_split_across_reads_are_understood() {
        assert_eq!(
            feed(
                true,
                &[
                    b"\x1b",
                    b"[3",
                    b"1mr\x1b[",
                    b"0m\x1b]0;ti",
                    b"tle\x1b",
                    b"\\ok\n"
                ]
            ),
            ["\x1b[31mr\x1b[0mok"]
        );
    }

    #[test]
    fn an_unterminated_string_hides_at_most_one_line() {
        assert_eq!(feed(false, &[b"a\x1b]0;never ends\nnext\n"]), ["a", "next"]);
        assert_eq!(feed(false, &[b"a\x1b[12\nb\n"]), ["a", "b"]);
    }

    #[test]
    fn a_prompt_shows_when_idle_but_not_a_progress_bar() {
        let mut t = TerminalLines::new(false);
        let mut out = Vec::new();
        t.push(b"(Pdb) ", &mut out);
        assert!(out.is_empty());
        out.extend(t.idle());
        assert_eq!(show(&out), ["(Pdb) |"]);
        assert!(t.idle().is_none(), "shown once");
        out.clear();
        t.push(b"p x\r\n42\r\n", &mut out);
        assert_eq!(show(&out), ["p x", "42"]);

        out.clear();
        t.push(b"  5%\r 10%", &mut out);
        assert!(t.idle().is_none(), "being redrawn");
        t.push(b"\r100%\r\n", &mut out);
        assert_eq!(show(&out), ["100%"]);
        assert!(t.idle().is_none(), "nothing unfinished");
    }

    #[test]
    fn the_text_of_a_coloured_chunk_reads_without_sgr() {
        let mut t = TerminalLines::new(true);
        let mut out = Vec::new();
        t.push(b"\x1b[32mlistening\x1b[0m on 5000\r\n", &mut out);
        let plain = without_sgr(&out[0]).expect("has SGR");
        assert_eq!(plain.data, b"listening on 5000\n");
        assert!(without_sgr(&plain).is_none());
    }

    #[test]
    fn long_lines_are_cut_at_the_cap() {
        let mut t = TerminalLines::with_max_line(false, 4);
        let mut out = Vec::new();
        t.push(b"abcdefghij\nk\n", &mut out);
        assert_eq!(show(&out), ["abcd+", "efgh+", "ij", "k"]);
    }

    proptest! {
        #[test]
        fn any_output_gives_bounded_lines_and_the_same_for_any_chunking(
            input in proptest::collection::vec(
                prop_oneof![
                    Just(b'\n'), Just(b'\r'), Just(0x1bu8), Just(b'['), Just(b']'),
                    Just(b'm'), Just(b';'), Just(b'3'), Just(0x08u8), Just(0x07u8),
                    Just(b'a'), any::<u8>()
                ],
                0..300,
            ),
            cut in 0usize..300,
            color: bool,
        ) {
            let cut = cut.min(input.len());
            let whole = feed(color, &[&input]);
            let pieces = feed(color, &[&input[..cut], &input[cut..]]);
            prop_assert_eq!(&whole, &pieces);
            for line in &whole {
                prop_assert!(!line.contains('\r') && !line.contains('\n'));
                if !color {
                    prop_assert!(!line.contains('\x1b'), "{:?}", line);
                }
            }
        }
    }
}
