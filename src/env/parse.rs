//! The env-file parser: one assignment at a time, in three steps (key, `=`,
//! value), each reporting its own error with the file, line and column. A
//! bad line is reported and skipped, so that every problem in a file is
//! shown at once; an unterminated quote ends the file, because everything
//! after it belongs to the value.
//!
//! Over 400 lines because it is the whole `.env` grammar in one reader, step
//! by step (key, `=`, value, quotes, escapes).

use super::expand::{self, Invalid, Reference, When};
use super::instance::{Of, Piece};
use super::{MAX_EXPANDED_BYTES, MAX_VALUE_BYTES};
use crate::diagnostic::{Diagnostic, Location};

/// What a `$` reference finds.
pub(super) enum Found {
    /// A value, the same for every instance.
    Value(String),
    /// `PORT`, `PS`, or an earlier key that refers to them: a value that
    /// differs per instance. `base` is its value for procrun's own
    /// environment.
    PerInstance { of: Of, base: Option<String> },
    /// Nothing: the reference is kept as written.
    Unset,
}

/// Looks a variable up for `$` references: earlier keys, then the
/// inherited environment.
pub(super) type Lookup<'l> = &'l dyn Fn(&str) -> Found;

/// How many references to unset variables are pointed at, per file; the
/// rest are counted (a line can hold a great many).
const UNSET_SHOWN: usize = 20;

/// One `KEY=value` line (or lines, for a quoted value).
pub(super) struct Assignment {
    pub(super) key: String,
    /// The value for procrun's own environment.
    pub(super) value: String,
    /// The value as written, when it refers to PORT or PS (directly or
    /// through an earlier key): it is expanded again for each instance.
    pub(super) template: Option<Vec<Piece>>,
    /// The 1-based line of the key.
    pub(super) line: usize,
}

/// A reference to an unset variable, kept as written.
pub(super) struct Unset {
    pub(super) name: String,
    /// The reference as written (`$def`, `${def}`).
    pub(super) written: String,
    pub(super) location: Location,
}

/// A value as read, after quotes and escapes: text and `$` references,
/// which are looked up once the whole value is read.
enum Part<'a> {
    Text(String),
    Ref {
        name: &'a str,
        default: Option<(&'a str, When)>,
        /// Where its `$` is, and how many bytes it takes.
        at: usize,
        len: usize,
    },
}

/// The parts of a value being read: adjacent text joined.
#[derive(Default)]
struct Parts<'a>(Vec<Part<'a>>);

impl Parts<'_> {
    fn push(&mut self, c: char) {
        match self.0.last_mut() {
            Some(Part::Text(t)) => t.push(c),
            _ => self.0.push(Part::Text(c.to_string())),
        }
    }
}

pub(super) struct Parser<'a> {
    source: &'a str,
    text: &'a str,
    pos: usize,
    line_starts: Vec<usize>,
    errors: Vec<Diagnostic>,
    /// Bytes that `$` references may still expand to, in this file and the
    /// ones after it ([`MAX_EXPANDED_BYTES`] for all of them).
    budget: usize,
    /// Where the value being parsed outgrew its cap: the `$` whose
    /// expansion did not fit. Nothing more is looked up for that value.
    overflow: Option<usize>,
    /// The budget ran out at `overflow`: the rest of the file is skipped.
    exhausted: bool,
    /// The last search for the `}` (or line end) closing a `${`: where it
    /// started and what it found. A later `${` before that place closes at
    /// the same one, so a line of many `${` is scanned once, not once each.
    close_memo: Option<(usize, Option<usize>)>,
    /// The first [`UNSET_SHOWN`] references to unset variables, and how
    /// many there are in all.
    unset: Vec<Unset>,
    unset_count: usize,
    /// Keys whose value was refused (too large, a NUL): a reference to
    /// one expands to nothing rather than repeat the error further down.
    refused: std::collections::HashSet<String>,
}

impl<'a> Parser<'a> {
    /// A parser for `text`, the contents of the file named `source`, whose
    /// references may expand to `budget` bytes in all.
    pub(super) fn new(source: &'a str, text: &'a str, budget: usize) -> Self {
        Parser {
            source,
            text,
            pos: 0,
            line_starts: std::iter::once(0)
                .chain(text.match_indices('\n').map(|(i, _)| i + 1))
                .collect(),
            errors: Vec::new(),
            budget,
            overflow: None,
            exhausted: false,
            close_memo: None,
            unset: Vec::new(),
            unset_count: 0,
            refused: std::collections::HashSet::new(),
        }
    }

    /// Where the first `}` or line end after the `${` at `dollar` is (from
    /// `dollar`), remembered.
    fn close_after(&mut self, dollar: usize) -> Option<usize> {
        if !self.text[dollar..].starts_with("${") {
            return None;
        }
        let from = dollar + "${".len();
        let found = match self.close_memo {
            Some((start, found)) if start <= from && found.is_none_or(|f| from <= f) => found,
            _ => {
                let found = self.text[from..].find(['}', '\n']).map(|i| from + i);
                self.close_memo = Some((from, found));
                found
            }
        };
        found.map(|f| f - dollar)
    }

    /// What is left of the expansion budget.
    pub(super) fn budget(&self) -> usize {
        self.budget
    }

    /// The errors found so far.
    pub(super) fn into_errors(self) -> Vec<Diagnostic> {
        self.errors
    }

    /// The references to unset variables that were kept as written: the
    /// first [`UNSET_SHOWN`], and how many in all.
    pub(super) fn unset_references(&mut self) -> (Vec<Unset>, usize) {
        (std::mem::take(&mut self.unset), self.unset_count)
    }

    /// The next assignment, reporting and skipping bad lines; `None` at the
    /// end of the file.
    pub(super) fn next_assignment(&mut self, lookup: Lookup<'_>) -> Option<Assignment> {
        while self.skip_to_assignment() {
            let start = self.pos;
            if self.errors.len() >= crate::diagnostic::MAX_ERRORS {
                let line = self.line_of(start);
                self.errors
                    .push(crate::diagnostic::stopped_after(self.source, line));
                self.pos = self.text.len();
                return None;
            }
            self.overflow = None;
            match self.assignment(lookup) {
                // The value is already consumed: report it and go on.
                Ok(assignment) => match self.refusal(&assignment, start) {
                    Some(d) => {
                        self.errors.push(d);
                        self.refused.insert(assignment.key);
                    }
                    None => {
                        self.refused.remove(&assignment.key);
                        return Some(assignment);
                    }
                },
                Err(d) => {
                    self.errors.push(d);
                    self.skip_line();
                }
            }
        }
        None
    }

    /// Why a parsed value cannot be used, if it cannot: it outgrew its cap
    /// or the budget, or holds a NUL. `start` is where its line starts.
    fn refusal(&mut self, assignment: &Assignment, start: usize) -> Option<Diagnostic> {
        let key = &assignment.key;
        let cap = MAX_VALUE_BYTES / (1024 * 1024);
        if self.exhausted {
            let at = self.overflow.unwrap_or(start);
            // Nothing after this can be expanded: stop here.
            self.pos = self.text.len();
            return Some(
                Diagnostic::error(format!(
                    "the env files expand to more than {} MiB in all (at `{key}`)",
                    MAX_EXPANDED_BYTES / (1024 * 1024)
                ))
                .at(self.location_at(at))
                .help("procrun caps what `$` references expand to (see docs/files.md): does a chain of references repeat a large value?"),
            );
        }
        if self.overflow.is_some() || assignment.value.len() > MAX_VALUE_BYTES {
            let at = self.overflow.unwrap_or(start);
            return Some(
                Diagnostic::error(format!(
                    "the value of `{key}` is larger than {cap} MiB, the most procrun accepts for one variable"
                ))
                .at(self.location_at(at))
                .help("a value that repeats another (`${A}${A}`) doubles at each line; no program could receive it anyway"),
            );
        }
        if assignment.value.contains('\0') {
            let at = start + self.text[start..].find('\0').unwrap_or(0);
            return Some(
                Diagnostic::error(format!(
                    "the value of `{key}` contains a NUL character (byte 0): no environment variable can hold it"
                ))
                .at(self.location_at(at))
                .help("remove it (a file full of NUL bytes is probably UTF-16: save it as UTF-8)"),
            );
        }
        None
    }

    /// Moves past a byte-order mark, blank lines and comment lines to the
    /// start of the next assignment; false at the end of the file.
    fn skip_to_assignment(&mut self) -> bool {
        loop {
            if self.pos >= self.text.len() {
                return false;
            }
            if self.pos == 0 && self.text.starts_with('\u{feff}') {
                self.pos = '\u{feff}'.len_utf8();
            }
            self.skip_blanks();
            if self.at_line_end() || self.peek() == Some('#') {
                self.skip_line();
                continue;
            }
            return true;
        }
    }

    /// `[export ]KEY = value`, from its first non-blank character.
    fn assignment(&mut self, lookup: Lookup<'_>) -> Result<Assignment, Diagnostic> {
        let line = self.line_of(self.pos);
        if let Some(after) = self.rest().strip_prefix("export")
            && after.starts_with([' ', '\t'])
        {
            self.pos += "export".len();
            self.skip_blanks();
        }
        let key_start = self.pos;
        let key = self.key()?;
        self.equals(&key, key_start)?;
        let parts = self.value()?;
        let (value, template) = self.evaluate(parts, lookup);
        Ok(Assignment {
            key,
            value,
            template,
            line,
        })
    }

    /// `[A-Za-z0-9_.]+`.
    fn key(&mut self) -> Result<String, Diagnostic> {
        let len = self
            .rest()
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
            .unwrap_or(self.rest().len());
        if len == 0 {
            return Err(Diagnostic::error(
                "expected a variable name (letters, digits, `_` or `.`)",
            )
            .at(self.location_at(self.pos))
            .help("each line must look like `KEY=value`"));
        }
        let key = self.rest()[..len].to_owned();
        self.pos += len;
        Ok(key)
    }

    /// The `=` after `key` (which started at `key_start`), with blanks
    /// around it.
    fn equals(&mut self, key: &str, key_start: usize) -> Result<(), Diagnostic> {
        self.skip_blanks();
        if self.peek() == Some('=') {
            self.pos += 1;
            self.skip_blanks();
            return Ok(());
        }
        let d = Diagnostic::error(format!("expected `=` after `{key}`"));
        Err(if self.at_line_end() {
            let line = self.line_of(key_start);
            let from = key_start - self.line_starts[line - 1];
            d.at(self.location(line, from, from + key.len()))
                .help(format!(
                    "write `{key}=value` (or `{key}=` for an empty value)"
                ))
        } else {
            d.at(self.location_at(self.pos))
                .help("variable names contain only letters, digits, `_` and `.`")
        })
    }

    /// The value, quoted or not, and the rest of its line.
    fn value(&mut self) -> Result<Parts<'a>, Diagnostic> {
        match self.peek() {
            Some('\'') => Ok(Parts(vec![Part::Text(self.single_quoted()?)])),
            Some('"') => self.double_quoted(),
            _ => Ok(self.unquoted()),
        }
    }

    /// `'…'`: literal up to the next `'`.
    fn single_quoted(&mut self) -> Result<String, Diagnostic> {
        let open = self.pos;
        self.pos += 1;
        let Some(len) = self.rest().find('\'') else {
            return Err(self.unterminated(open, '\''));
        };
        let value = self.rest()[..len].replace("\r\n", "\n");
        self.pos += len + 1;
        self.end_of_quoted()?;
        Ok(value)
    }

    /// `"…"`: backslash escapes and `$` references.
    fn double_quoted(&mut self) -> Result<Parts<'a>, Diagnostic> {
        let open = self.pos;
        self.pos += 1;
        let mut value = Parts::default();
        loop {
            let Some(c) = self.peek() else {
                return Err(self.unterminated(open, '"'));
            };
            match c {
                '"' => {
                    self.pos += 1;
                    break;
                }
                '\\' => {
                    self.pos += 1;
                    let Some(next) = self.peek() else {
                        return Err(self.unterminated(open, '"'));
                    };
                    self.pos += next.len_utf8();
                    match next {
                        'n' => value.push('\n'),
                        'r' => value.push('\r'),
                        't' => value.push('\t'),
                        '"' | '\\' | '$' | '\'' => value.push(next),
                        other => {
                            value.push('\\');
                            value.push(other);
                        }
                    }
                }
                '$' => {
                    let dollar = self.pos;
                    self.reference(&mut value)
                        .map_err(|invalid| self.invalid_reference(dollar, &invalid))?;
                }
                '\r' if self.rest().starts_with("\r\n") => {
                    self.pos += 2;
                    value.push('\n');
                }
                _ => {
                    self.pos += c.len_utf8();
                    value.push(c);
                }
            }
        }
        self.end_of_quoted()?;
        Ok(value)
    }

    /// After a closing quote only blanks and a comment may follow.
    fn end_of_quoted(&mut self) -> Result<(), Diagnostic> {
        self.skip_blanks();
        if self.peek() == Some('#') || self.at_line_end() {
            self.skip_line();
            Ok(())
        } else {
            Err(Diagnostic::error("unexpected text after the closing quote")
                .at(self.location_at(self.pos))
                .help("put the whole value inside the quotes"))
        }
    }

    fn unterminated(&mut self, open: usize, quote: char) -> Diagnostic {
        let d = Diagnostic::error(format!("unterminated quoted value: no closing `{quote}`"))
            .at(self.location_at(open))
            .help(format!("add the closing `{quote}`"));
        // Everything after an unterminated quote is part of the value: stop.
        self.pos = self.text.len();
        d
    }

    /// The rest of the line up to a comment, trimmed, with `\$` and `$`
    /// references; a reference that does not parse is kept as written.
    fn unquoted(&mut self) -> Parts<'a> {
        let line_end = self
            .rest()
            .find('\n')
            .map_or(self.text.len(), |i| self.pos + i);
        let raw = &self.text[self.pos..line_end];
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        // A `#` starts a comment when a blank precedes it (or it opens the
        // value after blanks, which skip_blanks already consumed).
        let comment = raw
            .char_indices()
            .find(|&(i, c)| {
                let before = &self.text[..self.pos + i];
                c == '#' && before.ends_with([' ', '\t'])
            })
            .map_or(raw.len(), |(i, _)| i);
        let body_end = self.pos + raw[..comment].trim_end().len();
        let mut value = Parts::default();
        while self.pos < body_end {
            let c = self.peek().unwrap_or_default();
            if c == '\\' && self.rest().starts_with("\\$") {
                value.push('$');
                self.pos += 2;
            } else if c == '$' {
                // A `${` that is unterminated, or whose `}` lies in the
                // comment, is kept literally.
                let start = self.pos;
                let kept = value.0.len();
                if self.reference(&mut value).is_err() || self.pos > body_end {
                    value.0.truncate(kept);
                    self.pos = start + 1;
                    value.push('$');
                }
            } else {
                value.push(c);
                self.pos += c.len_utf8();
            }
        }
        self.skip_line();
        value
    }

    /// Reads the reference at the current position (which holds `$`) into
    /// `out`, and moves past it.
    fn reference(&mut self, out: &mut Parts<'a>) -> Result<(), Invalid<'a>> {
        let dollar = self.pos;
        let close = self.close_after(dollar);
        match expand::reference_closed_at(self.rest(), close) {
            Ok(Reference::Literal) => {
                out.push('$');
                self.pos += 1;
                Ok(())
            }
            Ok(Reference::Variable { name, default, len }) => {
                self.pos += len;
                out.0.push(Part::Ref {
                    name,
                    default,
                    at: dollar,
                    len,
                });
                Ok(())
            }
            Err(invalid) => Err(invalid),
        }
    }

    /// Looks the references of a value up: its value for procrun's own
    /// environment and, when it refers to PORT or PS, its template for the
    /// instances. A reference to an unset variable without a default is
    /// kept as written (and noted for a warning).
    /// The expansion is held to [`MAX_VALUE_BYTES`] for the value and to the
    /// budget for the files; past either, `overflow` marks the place and
    /// nothing more is looked up for this value.
    fn evaluate(&mut self, parts: Parts<'a>, lookup: Lookup<'_>) -> (String, Option<Vec<Piece>>) {
        let mut value = String::new();
        let mut template: Option<Vec<Piece>> = None;
        // Where the text not yet in `template` starts in `value`.
        let mut text_from = 0;
        for part in parts.0 {
            let (name, default, at, len) = match part {
                Part::Text(t) => {
                    value.push_str(&t);
                    continue;
                }
                Part::Ref {
                    name,
                    default,
                    at,
                    len,
                } => (name, default, at, len),
            };
            if self.overflow.is_some() || self.exhausted {
                continue;
            }
            let raw = &self.text[at..at + len];
            let found = if self.refused.contains(name) {
                Found::Value(String::new())
            } else {
                lookup(name)
            };
            let (found, per_instance) = match found {
                Found::Value(v) => (Some(v), None),
                Found::PerInstance { of, base } => (base, Some(of)),
                Found::Unset => {
                    if default.is_none() {
                        self.note_unset(name, at, len);
                    }
                    (None, None)
                }
            };
            let expanded = expand::resolve(found, default).unwrap_or_else(|| raw.to_owned());
            if expanded.len() > self.budget {
                self.budget = 0;
                self.exhausted = true;
                self.overflow = Some(at);
                continue;
            }
            self.budget -= expanded.len();
            if value.len() + expanded.len() > MAX_VALUE_BYTES {
                self.overflow = Some(at);
                continue;
            }
            if let Some(of) = per_instance {
                let pieces = template.get_or_insert_with(Vec::new);
                if text_from < value.len() {
                    pieces.push(Piece::Text(value[text_from..].to_owned()));
                }
                pieces.push(Piece::Ref {
                    of,
                    default: default.map(|(d, when)| (d.to_owned(), when)),
                    raw: raw.to_owned(),
                });
            }
            value.push_str(&expanded);
            if per_instance.is_some() {
                text_from = value.len();
            }
        }
        if let Some(pieces) = &mut template
            && text_from < value.len()
        {
            pieces.push(Piece::Text(value[text_from..].to_owned()));
        }
        (value, template)
    }

    /// Notes a reference to an unset variable, kept as written.
    fn note_unset(&mut self, name: &str, at: usize, len: usize) {
        self.unset_count += 1;
        if self.unset.len() < UNSET_SHOWN {
            let line = self.line_of(at);
            let from = at - self.line_starts[line - 1];
            self.unset.push(Unset {
                name: name.to_owned(),
                written: self.text[at..at + len].to_owned(),
                location: self.location(line, from, from + len),
            });
        }
    }

    /// The error for the invalid reference at `dollar`. Built only when it
    /// is reported: it copies the line, and an unquoted value may hold a
    /// great many invalid references that are kept as written.
    fn invalid_reference(&self, dollar: usize, invalid: &Invalid<'_>) -> Diagnostic {
        match invalid {
            Invalid::Unterminated => Diagnostic::error("unterminated `${`: no closing `}`")
                .at(self.location_at(dollar))
                .help("write `${NAME}`, or `\\$` for a literal dollar sign"),
            Invalid::NotAName(inner) => {
                Diagnostic::error(format!("invalid variable reference `${{{inner}}}`"))
                    .at(self.location_at(dollar))
                    .help("write `${NAME}` or `${NAME:-default}`")
            }
        }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_blanks(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    /// Moves past the end of the current line.
    fn skip_line(&mut self) {
        self.pos = self
            .rest()
            .find('\n')
            .map_or(self.text.len(), |i| self.pos + i + 1);
    }

    fn at_line_end(&self) -> bool {
        let rest = self.rest();
        rest.is_empty() || rest.starts_with('\n') || rest.starts_with("\r\n") || rest == "\r"
    }

    fn line_of(&self, byte: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= byte)
    }

    fn line_text(&self, line: usize) -> &'a str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&next| next - 1);
        let text = &self.text[start..end];
        text.strip_suffix('\r').unwrap_or(text)
    }

    /// A location at byte offsets `from..to` relative to the start of `line`.
    pub(super) fn location(&self, line: usize, from: usize, to: usize) -> Location {
        Location::from_bytes(self.source, line, self.line_text(line), from, to)
    }

    /// A location covering one char at absolute byte offset `at`.
    fn location_at(&self, at: usize) -> Location {
        let line = self.line_of(at);
        let from = at - self.line_starts[line - 1];
        let width = self.text[at..]
            .chars()
            .next()
            .filter(|c| *c != '\n' && *c != '\r')
            .map_or(0, char::len_utf8);
        self.location(line, from, from + width)
    }
}
