//! Located diagnostics and their rendering.
//!
//! Every parser in procrun reports problems as [`Diagnostic`] values that
//! carry the file, line and column they refer to. They are rendered once, by
//! the caller, in the style of rustc and `just`:
//!
//! ```text
//! error: expected `:` after the process name
//!  --> Procfile:3:4
//!   |
//! 3 | web python3 app.py
//!   |    ^
//! ```
//!
//! Over 400 lines because a location (which keeps only the part of a long
//! line a snippet shows), its rendering and the caps on how much is kept
//! and shown belong together; its unit tests are at the end.

use std::fmt::{self, Write as _};

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    /// The input cannot be used; nothing is started.
    Error,
    /// The input works but may surprise (or behave differently in other runners).
    Warning,
}

/// A place in a source text: a file (or a pseudo-file such as `--formation`),
/// a 1-based line and column, the text of that line and how many characters
/// to underline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// What the user calls the source: a path as given, or a flag name.
    pub source: String,
    /// 1-based line number.
    pub line: usize,
    /// 1-based column, in characters.
    pub col: usize,
    /// The text of the line, without its line terminator; of a long line,
    /// only the part around the column (from char `text_from` on), which
    /// is all a snippet shows: a thousand errors on a line of a megabyte
    /// must not keep a thousand copies of it.
    pub text: String,
    /// The number of chars of the line before `text`.
    pub text_from: usize,
    /// The number of chars of the whole line, or, when the line goes on
    /// well past what `text` keeps, any number beyond the end of `text`.
    pub line_chars: usize,
    /// Number of characters to underline (at least one caret is drawn).
    pub width: usize,
}

/// How many chars of a line a [`Location`] keeps on each side of its column.
const KEPT_CHARS: usize = 2 * SNIPPET_CHARS;

impl Location {
    /// A location inside `text` (one line of `source`), pointing at the
    /// characters `start..start + width` of that line, both counted in chars.
    pub fn new(source: &str, line: usize, text: &str, start: usize, width: usize) -> Self {
        // Bytes bound chars: a short line is kept whole without counting.
        if text.len() <= 2 * KEPT_CHARS {
            return Location::whole(source, line, text, start, width);
        }
        let byte = text
            .char_indices()
            .nth(start)
            .map_or(text.len(), |(i, _)| i);
        Location::window(source, line, text, byte, start, width)
    }

    /// A location addressed by byte offsets into `text`.
    pub fn from_bytes(
        source: &str,
        line: usize,
        text: &str,
        byte_start: usize,
        byte_end: usize,
    ) -> Self {
        let start = char_count(text, byte_start);
        Location::counted(source, line, text, byte_start, byte_end, start)
    }

    /// Like [`Location::from_bytes`], for a caller that knows that
    /// `text[..byte_start]` holds `start` chars (and can count them faster
    /// than from the line's start, as on a line of megabytes).
    pub fn counted(
        source: &str,
        line: usize,
        text: &str,
        byte_start: usize,
        byte_end: usize,
        start: usize,
    ) -> Self {
        let byte_start = ceil_boundary(text, byte_start);
        let byte_end = ceil_boundary(text, byte_end.max(byte_start));
        let width = char_count(&text[byte_start..byte_end], byte_end - byte_start);
        if text.len() <= 2 * KEPT_CHARS {
            Location::whole(source, line, text, start, width)
        } else {
            Location::window(source, line, text, byte_start, start, width)
        }
    }

    fn whole(source: &str, line: usize, text: &str, start: usize, width: usize) -> Self {
        Location {
            source: source.to_owned(),
            line,
            col: start + 1,
            text: text.to_owned(),
            text_from: 0,
            line_chars: text.chars().count(),
            width,
        }
    }

    /// Keeps [`KEPT_CHARS`] chars of `text` on each side of `byte` (the
    /// start of char `start`).
    fn window(
        source: &str,
        line: usize,
        text: &str,
        byte: usize,
        start: usize,
        width: usize,
    ) -> Self {
        let mut from = byte;
        let mut back = 0;
        while from > 0 && back < KEPT_CHARS {
            from -= 1;
            while !text.is_char_boundary(from) {
                from -= 1;
            }
            back += 1;
        }
        let mut to = byte;
        let mut ahead = 0;
        while to < text.len() && ahead < KEPT_CHARS {
            to += 1;
            while !text.is_char_boundary(to) {
                to += 1;
            }
            ahead += 1;
        }
        let kept = &text[from..to];
        let text_from = start - back;
        let kept_chars = back + ahead;
        Location {
            source: source.to_owned(),
            line,
            col: start + 1,
            text: kept.to_owned(),
            text_from,
            // Past the end of the window, the snippet only needs to know
            // that the line goes on.
            line_chars: text_from + kept_chars + usize::from(to < text.len()),
            width,
        }
    }

    /// A location without a line (a whole file, e.g. a missing one).
    pub fn file(source: &str) -> Self {
        Location {
            source: source.to_owned(),
            line: 0,
            col: 0,
            text: String::new(),
            text_from: 0,
            line_chars: 0,
            width: 0,
        }
    }

    /// A whole line whose text is not at hand (`file:line`, no snippet):
    /// e.g. where an env variable was defined, checked after parsing.
    pub fn line(source: &str, line: usize) -> Self {
        Location {
            line,
            ..Location::file(source)
        }
    }

    fn has_line(&self) -> bool {
        self.line > 0
    }

    /// Whether the snippet (the line and its caret) can be shown.
    fn has_snippet(&self) -> bool {
        self.has_line() && self.col > 0
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.has_snippet() {
            write!(f, "{}:{}:{}", self.source, self.line, self.col)
        } else if self.has_line() {
            write!(f, "{}:{}", self.source, self.line)
        } else {
            f.write_str(&self.source)
        }
    }
}

/// Most chars of a message, a note or a help line: they quote the user's
/// input (a key, a name, a value), which may be a megabyte long.
const MESSAGE_CHARS: usize = 1000;

/// `text`, cut in the middle (with `…`) to at most [`MESSAGE_CHARS`] chars.
fn shortened(text: String) -> String {
    if text.len() <= MESSAGE_CHARS {
        return text;
    }
    let chars = text.chars().count();
    if chars <= MESSAGE_CHARS {
        return text;
    }
    let head = MESSAGE_CHARS * 2 / 3;
    let tail = MESSAGE_CHARS - head - 1;
    let mut out: String = text.chars().take(head).collect();
    out.push('…');
    out.extend(text.chars().skip(chars - tail));
    out
}

/// The first char boundary of `text` at or after `byte`.
fn ceil_boundary(text: &str, byte: usize) -> usize {
    let mut byte = byte.min(text.len());
    while !text.is_char_boundary(byte) {
        byte += 1;
    }
    byte
}

/// Number of chars in `text[..byte]`, tolerant of offsets past the end or
/// inside a char (a char counts if it starts before `byte`). Counts the
/// bytes that start a char, which the compiler vectorises: a caret far
/// into a long line costs little.
fn char_count(text: &str, byte: usize) -> usize {
    let byte = byte.min(text.len());
    text.as_bytes()[..byte]
        .iter()
        .filter(|&&b| (b & 0xC0) != 0x80)
        .count()
}

/// A secondary message, optionally pointing at another place (e.g. the first
/// definition of a duplicated name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Note {
    /// The note's text.
    pub message: String,
    /// Where it points, if anywhere.
    pub location: Option<Location>,
}

/// One problem found in procrun's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// One sentence saying what is wrong.
    pub message: String,
    /// Where it is wrong.
    pub location: Option<Location>,
    /// Further places and facts.
    pub notes: Vec<Note>,
    /// How to fix it, when there is something useful to say.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A new error.
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: shortened(message.into()),
            location: None,
            notes: Vec::new(),
            help: None,
        }
    }

    /// A new warning.
    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    /// Attaches the primary location.
    #[must_use]
    pub fn at(mut self, location: Location) -> Self {
        self.location = Some(location);
        self
    }

    /// Adds a note, optionally pointing elsewhere.
    #[must_use]
    pub fn note(mut self, message: impl Into<String>, location: Option<Location>) -> Self {
        self.notes.push(Note {
            message: shortened(message.into()),
            location,
        });
        self
    }

    /// Adds a help line.
    #[must_use]
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(shortened(help.into()));
        self
    }

    /// Whether this is an error (as opposed to a warning).
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders the diagnostic as text, with ANSI styles when `color` is set.
    pub fn render(&self, color: bool) -> String {
        let paint = Painter { color };
        let mut out = String::new();
        let (label, style) = match self.severity {
            Severity::Error => ("error", RED),
            Severity::Warning => ("warning", YELLOW),
        };
        let _ = writeln!(
            out,
            "{}{}",
            paint.style(label, style),
            paint.style(&format!(": {}", self.message), BOLD)
        );
        let mut locations: Vec<&Location> = self.location.iter().collect();
        locations.extend(self.notes.iter().filter_map(|n| n.location.as_ref()));
        let gutter = locations
            .iter()
            .filter(|l| l.has_line())
            .map(|l| l.line.to_string().len())
            .max()
            .unwrap_or(0);
        if let Some(location) = &self.location {
            render_snippet(&mut out, location, gutter, style, &paint);
        }
        for note in &self.notes {
            if let Some(location) = &note.location {
                let _ = writeln!(
                    out,
                    "{:gutter$} {} {}: {}",
                    "",
                    paint.style("=", BLUE),
                    paint.style("note", BOLD),
                    note.message
                );
                render_snippet(&mut out, location, gutter, BLUE, &paint);
            } else {
                let _ = writeln!(
                    out,
                    "{:gutter$} {} {}: {}",
                    "",
                    paint.style("=", BLUE),
                    paint.style("note", BOLD),
                    note.message
                );
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(
                out,
                "{:gutter$} {} {}: {}",
                "",
                paint.style("=", BLUE),
                paint.style("help", BOLD),
                help
            );
        }
        out
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(false))
    }
}

use owo_colors::{OwoColorize as _, Style};

const RED: Style = Style::new().red().bold();
const YELLOW: Style = Style::new().yellow().bold();
const BLUE: Style = Style::new().blue().bold();
const BOLD: Style = Style::new().bold();

struct Painter {
    color: bool,
}

impl Painter {
    fn style(&self, text: &str, style: Style) -> String {
        if self.color {
            text.style(style).to_string()
        } else {
            text.to_owned()
        }
    }
}

fn render_snippet(out: &mut String, location: &Location, gutter: usize, style: Style, p: &Painter) {
    let _ = writeln!(
        out,
        "{:pad$}{} {}",
        "",
        p.style("-->", BLUE),
        location,
        pad = gutter.max(1)
    );
    if !location.has_snippet() {
        return;
    }
    // A long line is shown as a window around the caret, so that a line of
    // megabytes does not flood the terminal. Tabs are shown as single spaces
    // so that the caret lines up; other control characters (a NUL, a stray
    // CR that would move the cursor) as their Unicode control pictures, one
    // column each.
    let len = location.line_chars;
    let at = location.col - 1;
    let (from, to) = if len <= SNIPPET_CHARS {
        (0, len)
    } else {
        let from = at
            .saturating_sub(SNIPPET_CHARS / 3)
            .min(len - SNIPPET_CHARS);
        (from, from + SNIPPET_CHARS)
    };
    let mut text = String::new();
    if from > 0 {
        text.push('…');
    }
    text.extend(
        location
            .text
            .chars()
            .skip(from.saturating_sub(location.text_from))
            .take(to - from)
            .map(visible),
    );
    if to < len {
        text.push('…');
    }
    let bar = p.style("|", BLUE);
    let _ = writeln!(out, "{:gutter$} {bar}", "");
    let _ = writeln!(
        out,
        "{} {bar} {}",
        p.style(&format!("{:>gutter$}", location.line), BLUE),
        text
    );
    // The pad is built, not formatted with a width: a width over u16::MAX
    // panics in `format!`.
    let pad = " ".repeat(at.saturating_sub(from) + usize::from(from > 0));
    let carets = "^".repeat(location.width.min(to.saturating_sub(at)).max(1));
    let _ = writeln!(out, "{:gutter$} {bar} {pad}{}", "", p.style(&carets, style));
}

/// Most characters of a line shown in a snippet.
const SNIPPET_CHARS: usize = 120;

/// How `c` is shown in a snippet: one visible column.
fn visible(c: char) -> char {
    match c {
        '\t' => ' ',
        '\0'..='\x1f' => char::from_u32(0x2400 + c as u32).unwrap_or('?'),
        '\x7f' => '\u{2421}',
        _ => c,
    }
}

/// Most errors a parser reports for one file before it stops reading it,
/// with [`stopped_after`]: each kept error costs memory, and nobody reads
/// the millionth.
pub const MAX_ERRORS: usize = 40;

/// The error a parser adds when it stops at [`MAX_ERRORS`] errors in
/// `source`, at `line`.
pub fn stopped_after(source: &str, line: usize) -> Diagnostic {
    Diagnostic::error(format!(
        "stopped reading `{source}` at line {line} after {MAX_ERRORS} errors"
    ))
    .at(Location::file(&format!("{source}:{line}")))
    .help("fix these first; the rest of the file is not checked")
}

/// Most diagnostics [`render_all`] shows: a file of a million bad lines
/// gets the first ones and a count, not a million messages.
pub const MAX_SHOWN: usize = 50;

/// Renders a list of diagnostics, separated by blank lines, followed by a
/// summary line when there are errors. Only the first [`MAX_SHOWN`] are
/// shown, then how many more there are.
pub fn render_all(diagnostics: &[Diagnostic], color: bool) -> String {
    let mut out = String::new();
    for d in diagnostics.iter().take(MAX_SHOWN) {
        out.push_str(&d.render(color));
        out.push('\n');
    }
    if let Some(hidden) = diagnostics.get(MAX_SHOWN..).filter(|h| !h.is_empty()) {
        let n = hidden.len();
        let _ = writeln!(
            out,
            "note: {n} more {} not shown (the first {MAX_SHOWN} are above)",
            if n == 1 { "message" } else { "messages" }
        );
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    if errors > 1 {
        let _ = writeln!(out, "error: aborting due to {errors} errors");
    }
    out
}

/// The candidate closest to `word`, if it is close enough to be a typo.
pub fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
    // The edit distance costs the product of the lengths: a key of a
    // megabyte is no typo of a known one.
    let longest = candidates.iter().map(|c| c.len()).max().unwrap_or(0);
    if word.len() > 2 * longest + 8 {
        return None;
    }
    let normal = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    let word = normal(word);
    candidates
        .iter()
        .map(|c| (edit_distance(&word, &normal(c)), *c))
        .filter(|(d, c)| *d <= (c.chars().count() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance in chars, a swap of two neighbours counting as one edit
/// (`wbe` is one typo away from `web`): the optimal string alignment
/// distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // d[i][j]: distance between a[..i] and b[..j].
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j - 1] + cost)
                .min(d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_a_swap_as_one() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("wbe", "web"), 1);
    }

    #[test]
    fn renders_a_located_error_with_caret() {
        let d = Diagnostic::error("expected `:` after the process name").at(Location::new(
            "Procfile",
            3,
            "web python3 app.py",
            3,
            1,
        ));
        assert_eq!(
            d.to_string(),
            "error: expected `:` after the process name\n --> Procfile:3:4\n  |\n3 | web python3 app.py\n  |    ^\n"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let d = Diagnostic::warning("careful").at(Location::new("P", 1, "web:x", 3, 1));
        let coloured = d.render(true);
        assert!(
            coloured.starts_with("\x1b[33;1mwarning\x1b[0m"),
            "{coloured:?}"
        );
        assert!(!d.render(false).contains('\x1b'));
    }

    #[test]
    fn byte_offsets_become_char_columns() {
        let l = Location::from_bytes("f", 1, "é: x", 2, 3);
        assert_eq!((l.col, l.width), (2, 1));
    }

    #[test]
    fn control_characters_are_shown_as_pictures() {
        let d = Diagnostic::error("bad").at(Location::new("P", 1, "a\0b\rc\x1b", 1, 1));
        assert!(
            d.to_string().contains("1 | a\u{2400}b\u{240d}c\u{241b}\n"),
            "{d}"
        );
    }

    #[test]
    fn a_long_line_is_shown_around_the_caret() {
        let text = format!("{}X{}", "a".repeat(100_000), "b".repeat(100_000));
        let d = Diagnostic::error("here").at(Location::new("P", 1, &text, 100_000, 1));
        let shown = d.to_string();
        let lines: Vec<&str> = shown.lines().collect();
        assert!(lines[1].ends_with("P:1:100001"), "{shown}");
        assert!(
            lines[3].starts_with("1 | …a") && lines[3].ends_with("b…"),
            "{shown}"
        );
        let column = |line: &str, c: char| line.chars().position(|x| x == c);
        assert_eq!(column(lines[4], '^'), column(lines[3], 'X'), "{shown}");
        assert!(shown.len() < 1000);
    }

    #[test]
    fn a_line_only_location_has_no_snippet() {
        let d = Diagnostic::warning("big").at(Location::line(".env", 7));
        assert_eq!(d.to_string(), "warning: big\n --> .env:7\n");
    }

    #[test]
    fn file_only_location_has_no_snippet() {
        let d = Diagnostic::error("cannot read").at(Location::file("Procfile"));
        assert_eq!(d.to_string(), "error: cannot read\n --> Procfile\n");
    }
}
