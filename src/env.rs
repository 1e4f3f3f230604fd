//! `.env` files: parsing and layering.
//!
//! procrun has its own `.env` parser rather than dotenvy's, because dotenvy
//! (0.15) cannot give procrun what its users are promised:
//! - `${VAR}` expansion in dotenvy reads procrun's *process* environment
//!   before the keys already defined in the file, while the child sees the
//!   file's value (env files win over the inherited environment); and it
//!   cannot see keys from an earlier `-e` file;
//! - unquoted values with inner blanks (`A=hello big world`, valid in foreman)
//!   are rejected;
//! - its errors carry a byte index into one line, not the file's line number.
//!
//! dotenvy stays in the test suite as a reference: on the input both accept,
//! both must agree (see `tests/env_grammar.rs`).
//!
//! Grammar, one assignment per line:
//! - `KEY=VALUE` or `export KEY=VALUE`; blanks around `=` are allowed; keys are
//!   `[A-Za-z0-9_.]+`;
//! - `'single quoted'`: literal, may span lines;
//! - `"double quoted"`: `\n`, `\r`, `\t`, `\"`, `\\`, `\$` escapes and `$VAR`
//!   expansion, may span lines;
//! - unquoted: the rest of the line, trimmed; a `#` preceded by a blank starts
//!   a comment (`a#b` stays `a#b`); `$VAR` expansion; inner blanks kept;
//! - `$VAR`, `${VAR}` and `${VAR:-default}` expand from keys defined earlier
//!   (this file and earlier files), then from the inherited environment, else
//!   to the empty string (or the default);
//! - blank lines and `#` comment lines are skipped; CRLF is accepted.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Location};

/// One variable defined by an env file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvVar {
    /// The value after quote removal, escapes and expansion.
    pub value: String,
    /// The file that defined it (as the user named it).
    pub source: String,
    /// 1-based line of the definition.
    pub line: usize,
}

/// An env file to read, and whether it must exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvFileRef {
    /// Path to the file.
    pub path: PathBuf,
    /// Named explicitly by the user (then a missing file is an error).
    pub required: bool,
}

/// The variables of all env files, later files winning, in first-definition
/// order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvSet {
    /// Key → variable.
    pub vars: IndexMap<String, EnvVar>,
    /// The files that were actually read.
    pub files: Vec<PathBuf>,
    /// Non-fatal findings (e.g. a key set twice in one file).
    pub warnings: Vec<Diagnostic>,
}

impl EnvSet {
    /// The value of `key`, if an env file defines it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(|v| v.value.as_str())
    }

    /// Key/value pairs in definition order.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.value.as_str()))
    }
}

/// Reads `files` in order. `inherited` looks a name up in the inherited
/// environment (for `$VAR` expansion). All problems in all files are
/// reported together.
pub fn load(
    files: &[EnvFileRef],
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Result<EnvSet, Vec<Diagnostic>> {
    let mut set = EnvSet::default();
    let mut errors = Vec::new();
    for file in files {
        let source = file.path.display().to_string();
        let bytes = match std::fs::read(&file.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !file.required => continue,
            Err(e) => {
                errors.push(
                    Diagnostic::error(format!(
                        "cannot read env file `{source}`: {}",
                        crate::error::io_reason(&e)
                    ))
                    .at(Location::file(&source)),
                );
                continue;
            }
        };
        let text = match crate::procfile::decode_utf8(&source, &bytes) {
            Ok(text) => text,
            Err(d) => {
                errors.push(d);
                continue;
            }
        };
        match parse_into(&mut set, &source, text, inherited) {
            Ok(()) => set.files.push(file.path.clone()),
            Err(mut e) => errors.append(&mut e),
        }
    }
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

/// Parses one env file's text on its own (no earlier files).
pub fn parse(
    source: &str,
    text: &str,
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Result<EnvSet, Vec<Diagnostic>> {
    let mut set = EnvSet::default();
    parse_into(&mut set, source, text, inherited)?;
    set.files.push(Path::new(source).to_owned());
    Ok(set)
}

/// Parses `text` and adds its variables to `set` (later definitions win).
fn parse_into(
    set: &mut EnvSet,
    source: &str,
    text: &str,
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Result<(), Vec<Diagnostic>> {
    let mut parser = Parser {
        source,
        text,
        pos: 0,
        line_starts: std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect(),
        errors: Vec::new(),
    };
    let mut seen_here: IndexMap<String, usize> = IndexMap::new();
    while let Some(assignment) = parser.next_assignment(&|name: &str| {
        set.vars
            .get(name)
            .map(|v| v.value.clone())
            .or_else(|| inherited(name))
    }) {
        let Assignment { key, value, line } = assignment;
        if let Some(first) = seen_here.get(&key) {
            set.warnings.push(
                Diagnostic::warning(format!(
                    "`{key}` is set twice in `{source}`; the last value wins"
                ))
                .at(parser.location(line, 0, key.len()))
                .note(
                    "first set here",
                    Some(parser.location(*first, 0, key.len())),
                ),
            );
        }
        seen_here.insert(key.clone(), line);
        set.vars.insert(
            key,
            EnvVar {
                value,
                source: source.to_owned(),
                line,
            },
        );
    }
    if parser.errors.is_empty() {
        Ok(())
    } else {
        Err(parser.errors)
    }
}

struct Assignment {
    key: String,
    value: String,
    line: usize,
}

struct Parser<'a> {
    source: &'a str,
    text: &'a str,
    pos: usize,
    line_starts: Vec<usize>,
    errors: Vec<Diagnostic>,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        &self.text[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn line_of(&self, byte: usize) -> usize {
        self.line_starts.partition_point(|&s| s <= byte)
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |&next| next - 1);
        let text = &self.text[start..end];
        text.strip_suffix('\r').unwrap_or(text)
    }

    /// A location at byte offsets `from..to` relative to the start of `line`.
    fn location(&self, line: usize, from: usize, to: usize) -> Location {
        let text = self.line_text(line);
        let text_owned = text.to_owned();
        Location::from_bytes(self.source, line, &text_owned, from, to)
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

    fn error(&mut self, d: Diagnostic) {
        self.errors.push(d);
        self.skip_line();
    }

    fn next_assignment(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> Option<Assignment> {
        loop {
            if self.pos >= self.text.len() {
                return None;
            }
            if self.pos == 0 && self.text.starts_with('\u{feff}') {
                self.pos = '\u{feff}'.len_utf8();
            }
            self.skip_blanks();
            if self.at_line_end() || self.peek() == Some('#') {
                self.skip_line();
                continue;
            }
            let line = self.line_of(self.pos);
            if let Some(after) = self.rest().strip_prefix("export")
                && after.starts_with([' ', '\t'])
            {
                self.pos += "export".len();
                self.skip_blanks();
            }
            let key_start = self.pos;
            let key_len = self
                .rest()
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(self.rest().len());
            if key_len == 0 {
                let d = Diagnostic::error("expected a variable name (letters, digits, `_` or `.`)")
                    .at(self.location_at(self.pos))
                    .help("each line must look like `KEY=value`");
                self.error(d);
                continue;
            }
            let key = self.rest()[..key_len].to_owned();
            self.pos += key_len;
            self.skip_blanks();
            if self.peek() != Some('=') {
                let d = if self.at_line_end() {
                    let from = key_start - self.line_starts[line - 1];
                    Diagnostic::error(format!("expected `=` after `{key}`"))
                        .at(self.location(line, from, from + key_len))
                        .help(format!(
                            "write `{key}=value` (or `{key}=` for an empty value)"
                        ))
                } else {
                    Diagnostic::error(format!("expected `=` after `{key}`"))
                        .at(self.location_at(self.pos))
                        .help("variable names contain only letters, digits, `_` and `.`")
                };
                self.error(d);
                continue;
            }
            self.pos += 1;
            self.skip_blanks();
            let value = match self.peek() {
                Some('\'') => self.single_quoted(),
                Some('"') => self.double_quoted(lookup),
                _ => Ok(self.unquoted(lookup)),
            };
            match value {
                Ok(value) => return Some(Assignment { key, value, line }),
                Err(d) => self.error(d),
            }
        }
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

    fn double_quoted(
        &mut self,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<String, Diagnostic> {
        let open = self.pos;
        self.pos += 1;
        let mut value = String::new();
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
                '$' => self.expand(&mut value, lookup)?,
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

    fn unquoted(&mut self, lookup: &dyn Fn(&str) -> Option<String>) -> String {
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
        let mut value = String::new();
        while self.pos < body_end {
            let c = self.peek().unwrap_or_default();
            if c == '\\' && self.rest().starts_with("\\$") {
                value.push('$');
                self.pos += 2;
            } else if c == '$' {
                // An unterminated `${` in an unquoted value is kept literally.
                let start = self.pos;
                if self.expand(&mut value, lookup).is_err() || self.pos > body_end {
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

    /// Expands `$NAME`, `${NAME}`, `${NAME:-default}` or `${NAME-default}` at
    /// the current position (which holds `$`), appending to `out`.
    fn expand(
        &mut self,
        out: &mut String,
        lookup: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), Diagnostic> {
        let dollar = self.pos;
        self.pos += 1;
        let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if self.peek() == Some('{') {
            let rest = &self.rest()[1..];
            let Some(close) = rest
                .find(['}', '\n'])
                .filter(|&i| rest[i..].starts_with('}'))
            else {
                return Err(Diagnostic::error("unterminated `${`: no closing `}`")
                    .at(self.location_at(dollar))
                    .help("write `${NAME}`, or `\\$` for a literal dollar sign"));
            };
            let inner = &rest[..close];
            let (name, default) = match inner.find([':', '-']) {
                Some(i) if inner[i..].starts_with(":-") => {
                    (&inner[..i], Some((&inner[i + 2..], true)))
                }
                Some(i) if inner[i..].starts_with('-') => {
                    (&inner[..i], Some((&inner[i + 1..], false)))
                }
                _ => (inner, None),
            };
            if name.is_empty() || !name.chars().all(is_name) {
                return Err(Diagnostic::error(format!(
                    "invalid variable reference `${{{inner}}}`"
                ))
                .at(self.location_at(dollar))
                .help("write `${NAME}` or `${NAME:-default}`"));
            }
            let chosen = match (lookup(name), default) {
                (Some(v), Some((d, true))) if v.is_empty() => d.to_owned(),
                (Some(v), _) => v,
                (None, Some((d, _))) => d.to_owned(),
                (None, None) => String::new(),
            };
            out.push_str(&chosen);
            self.pos += 1 + close + 1;
            return Ok(());
        }
        let len = self
            .rest()
            .find(|c: char| !is_name(c))
            .unwrap_or(self.rest().len());
        if len == 0 || self.rest().starts_with(|c: char| c.is_ascii_digit()) {
            out.push('$');
            return Ok(());
        }
        let name = &self.rest()[..len];
        if let Some(v) = lookup(name) {
            out.push_str(&v);
        }
        self.pos += len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn vars_with(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        parse(".env", text, env)
            .unwrap_or_else(|e| panic!("{}", crate::diagnostic::render_all(&e, false)))
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn vars(text: &str) -> Vec<(String, String)> {
        vars_with(text, &no_env)
    }

    fn one(text: &str) -> String {
        let v = vars(text);
        assert_eq!(v.len(), 1, "{text:?} gave {v:?}");
        v[0].1.clone()
    }

    fn err(text: &str) -> String {
        crate::diagnostic::render_all(
            &parse(".env", text, &no_env).expect_err("should fail"),
            false,
        )
    }

    #[test]
    fn values() {
        let cases: &[(&str, &str)] = &[
            ("A=b", "b"),
            ("export A=b", "b"),
            ("A = b", "b"),
            ("A=", ""),
            ("A=  ", ""),
            ("A=hello big world", "hello big world"),
            ("A=a#b", "a#b"),
            ("A=a # comment", "a"),
            ("A=a\t# comment", "a"),
            ("A= # only comment", ""),
            ("A=#not comment", "#not comment"),
            ("A=x=y=z", "x=y=z"),
            ("A='literal $B \\n \"q\"'", "literal $B \\n \"q\""),
            ("A='a' # c", "a"),
            ("A=\"a\\nb\\\"c\\\\d\\$e\"", "a\nb\"c\\d$e"),
            ("A=\"x # not a comment\"", "x # not a comment"),
            ("A=\"line1\nline2\"", "line1\nline2"),
            ("A='line1\r\nline2'", "line1\nline2"),
            ("A=b\r\n", "b"),
            ("A=\\$HOME", "$HOME"),
            ("A=$", "$"),
            ("A=cost $5", "cost $5"),
            ("A=${UNSET}x", "x"),
            ("A=${UNSET:-dflt}", "dflt"),
            ("A=${UNSET-dflt}", "dflt"),
            ("A=\"\"", ""),
            ("A=''", ""),
            ("A=C:\\path", "C:\\path"),
            ("a.b_C9=1", "1"),
        ];
        for (text, want) in cases {
            assert_eq!(one(text), *want, "input: {text:?}");
        }
    }

    #[test]
    fn expansion_order_file_then_inherited() {
        let env = |k: &str| match k {
            "HOME" => Some("/home/u".to_owned()),
            "A" => Some("from-env".to_owned()),
            _ => None,
        };
        let v = vars_with(
            "A=from-file\nB=$A:${HOME}\nC='$A'\nD=\"${A}-x\"\nE=${EMPTY:-d}\nEMPTY=\nF=${EMPTY:-d}${EMPTY-e}",
            &env,
        );
        let get = |k: &str| v.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("B"), Some("from-file:/home/u"));
        assert_eq!(get("C"), Some("$A"));
        assert_eq!(get("D"), Some("from-file-x"));
        assert_eq!(get("E"), Some("d"));
        assert_eq!(get("F"), Some("d"));
    }

    #[test]
    fn comments_blank_lines_and_order() {
        let v = vars("# c\n\n  \nZ=1\n  # indented\nA=2\nZ=3\n");
        assert_eq!(v, vec![("Z".into(), "3".into()), ("A".into(), "2".into())]);
    }

    #[test]
    fn duplicate_key_in_one_file_warns() {
        let set = parse(".env", "A=1\nA=2\n", &no_env).expect("parses");
        assert_eq!(set.warnings.len(), 1);
        assert_eq!(set.get("A"), Some("2"));
    }

    #[test]
    fn errors_carry_file_and_line() {
        let out = err("A=1\nthis is not\n=x\nB\"=1\nC='open\nD=2\n");
        assert!(out.contains(".env:2:6"), "{out}");
        assert!(out.contains("expected `=` after `this`"), "{out}");
        assert!(out.contains(".env:3:1"), "{out}");
        assert!(out.contains("expected a variable name"), "{out}");
        assert!(out.contains(".env:4:2"), "{out}");
        assert!(out.contains(".env:5:3"), "{out}");
        assert!(out.contains("unterminated quoted value"), "{out}");
    }

    #[test]
    fn text_after_closing_quote_is_an_error() {
        assert!(err("A=\"x\" y").contains("unexpected text after the closing quote"));
        assert!(err("A=\"x").contains("unterminated quoted value: no closing `\""));
        assert!(err("A=\"${B\"").contains("unterminated `${`"));
    }

    #[test]
    fn later_files_win_and_see_earlier_keys() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("a.env");
        let b = dir.path().join("b.env");
        std::fs::write(&a, "X=1\nY=from-a\n").expect("write");
        std::fs::write(&b, "Y=from-b\nZ=${X}${Y}\n").expect("write");
        let refs = [
            EnvFileRef {
                path: a,
                required: true,
            },
            EnvFileRef {
                path: b,
                required: true,
            },
            EnvFileRef {
                path: dir.path().join("absent"),
                required: false,
            },
        ];
        let set = load(&refs, &no_env).expect("loads");
        assert_eq!(set.get("Y"), Some("from-b"));
        assert_eq!(set.get("Z"), Some("1from-b"));
        assert_eq!(set.files.len(), 2);
    }

    #[test]
    fn missing_required_file_is_an_error() {
        let refs = [EnvFileRef {
            path: "/nonexistent/x.env".into(),
            required: true,
        }];
        let e = load(&refs, &no_env).expect_err("missing");
        assert!(e[0].message.contains("/nonexistent/x.env"));
    }
}
