//! `.foreman`: foreman's own defaults file, a YAML map of its long option
//! names (`procfile: Procfile.dev`, `port: 3000`), read so that a project
//! that ships one runs the same under procrun. Its values are defaults
//! below everything else: flags, `PROCRUN_*` and `procrun.toml` win.
//!
//! foreman writes, and projects ship, flat `key: value` lines; this module
//! reads exactly that subset of YAML, strictly, rather than through a YAML
//! crate: plain, single- and double-quoted scalars, a list of strings
//! (`[a, b]` or `- a` lines), comments and a leading `---`. Anything else
//! (nested maps, anchors, tags, block scalars) is an error at its line and
//! column, like every other input, instead of being silently misread.
//!
//! Over 400 lines because it checks every foreman key it reads, each with its
//! own located error.

mod apply;

pub use apply::{Applied, apply, location, relocate};

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Location, suggest};

/// The file's name.
pub const FILE_NAME: &str = ".foreman";

/// The keys procrun acts on (foreman's option names; `_` may stand for
/// `-`).
pub const KEYS: &[&str] = &[
    "procfile",
    "root",
    "env",
    "port",
    "formation",
    "concurrency",
    "timeout",
    "color",
    "timestamp",
    "no-timestamp",
    "app",
    "user",
    "log",
];

/// foreman's options that procrun has no counterpart for: a warning says
/// they are ignored.
const IGNORED: &[&str] = &["template", "run", "shell"];

/// A value as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A plain or quoted scalar; `quoted` when it was in quotes (then it
    /// is always a string, never a boolean or a number).
    Scalar {
        /// The text, escapes resolved.
        text: String,
        /// Written in quotes.
        quoted: bool,
    },
    /// `[a, b]` or `- a` lines.
    List(Vec<String>),
    /// `key:` with nothing after it.
    Empty,
}

/// One `key: value` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key, `_` turned into `-` (`no_timestamp` is `no-timestamp`).
    pub key: String,
    /// The key as written.
    pub written: String,
    /// The value.
    pub value: Value,
    /// Where the value is (its first character, inside quotes), or the
    /// key when the value is empty.
    pub at: Location,
}

/// A parsed `.foreman`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Foreman {
    /// The file, as shown in messages.
    pub path: PathBuf,
    /// Its entries, in file order, keys unique.
    pub entries: Vec<Entry>,
    /// Non-fatal findings: unknown and ignored keys.
    pub warnings: Vec<Diagnostic>,
}

impl Foreman {
    /// The entry for `key` (`-` spelling).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// A path value relative to the file's directory, as foreman (which
    /// reads `.foreman` in the current directory) resolves it.
    pub fn path_of(&self, value: &str) -> PathBuf {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() && Path::new(value).is_relative() => {
                dir.join(value)
            }
            _ => PathBuf::from(value),
        }
    }
}

/// Reads `path`: `Ok(None)` when it does not exist.
pub fn load(path: &Path) -> Result<Option<Foreman>, Vec<Diagnostic>> {
    let source = path.display().to_string();
    // Through the Procfile's reader: a FIFO or `/dev/zero` named `.foreman`
    // must not block or fill the memory.
    let bytes = match crate::procfile::read_input(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(vec![
                Diagnostic::error(format!(
                    "cannot read `{source}`: {}",
                    crate::error::io_reason(&e)
                ))
                .at(Location::file(&source)),
            ]);
        }
    };
    let text = crate::procfile::decode_utf8(&source, &bytes).map_err(|d| vec![d])?;
    parse(path.to_owned(), text).map(Some)
}

/// Parses the text of a `.foreman`; `path` is used in messages and to
/// resolve relative paths.
pub fn parse(path: PathBuf, text: &str) -> Result<Foreman, Vec<Diagnostic>> {
    let source = path.display().to_string();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut errors = Vec::new();
    let mut entries: Vec<Entry> = Vec::new();
    let mut warnings = Vec::new();
    let mut seen_content = false;
    // The key whose value is a list of `- item` lines below it.
    let mut open_list: Option<usize> = None;
    for (index, raw) in text.lines().enumerate() {
        let n = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let at = |start: usize, width: usize| {
            Location::from_bytes(&source, n, line, start, start + width)
        };
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if !seen_content && (trimmed.trim_end() == "---") {
            seen_content = true;
            continue;
        }
        seen_content = true;
        if trimmed.trim_end() == "..." {
            break;
        }
        if let Some(item) = trimmed
            .strip_prefix('-')
            .filter(|r| r.is_empty() || r.starts_with(' '))
        {
            let start = indent + 1 + (item.len() - item.trim_start().len());
            match open_list.map(|i| &mut entries[i]) {
                Some(entry) => match scalar(item.trim_start(), start, &at) {
                    Ok((text, _)) => {
                        let Value::List(items) = &mut entry.value else {
                            entry.value = Value::List(vec![text]);
                            continue;
                        };
                        items.push(text);
                    }
                    Err(d) => errors.push(d),
                },
                None => errors.push(
                    Diagnostic::error("a list item outside a `key:` line")
                        .at(at(indent, 1))
                        .help("write the list under its key: `env:` then `  - .env` lines, or `env: .env,.env.local`"),
                ),
            }
            continue;
        }
        open_list = None;
        if indent > 0 {
            errors.push(
                Diagnostic::error("an indented line: `.foreman` is a flat map of `key: value` lines")
                    .at(at(indent, trimmed.trim_end().len()))
                    .help("foreman's options are single values; write each at the start of a line, e.g. `port: 3000`"),
            );
            continue;
        }
        let key_len = line
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(line.len());
        let rest = &line[key_len..];
        if key_len == 0
            || !rest.starts_with(':')
            || !(rest.len() == 1 || rest[1..].starts_with([' ', '\t']))
        {
            let d = if key_len > 0 && rest.starts_with(':') {
                Diagnostic::error("expected a blank after the colon")
                    .at(at(key_len, 1))
                    .help(format!("write `{}: {}`", &line[..key_len], &rest[1..]))
            } else {
                Diagnostic::error("expected `key: value`")
                    .at(at(key_len, 1))
                    .help("procrun reads the flat `key: value` lines of foreman's options, e.g. `procfile: Procfile.dev`")
            };
            errors.push(d);
            continue;
        }
        let written = &line[..key_len];
        let key = written.replace('_', "-");
        let value_text = &rest[1..];
        let value_start = key_len + 1 + (value_text.len() - value_text.trim_start().len());
        let value_text = value_text.trim_start();
        let (value, value_at) = if value_text.is_empty() || value_text.starts_with('#') {
            (Value::Empty, at(0, key_len))
        } else if value_text.starts_with('[') {
            match list(value_text, value_start, &at) {
                Ok(items) => (Value::List(items), at(value_start + 1, 1)),
                Err(d) => {
                    errors.push(d);
                    continue;
                }
            }
        } else {
            match scalar(value_text, value_start, &at) {
                Ok((text, quoted)) => {
                    let start = value_start + usize::from(quoted);
                    let width = if quoted {
                        text.chars().count()
                    } else {
                        text.len()
                    };
                    (Value::Scalar { text, quoted }, at(start, width.max(1)))
                }
                Err(d) => {
                    errors.push(d);
                    continue;
                }
            }
        };
        if let Some(first) = entries.iter().find(|e| e.key == key) {
            errors.push(
                Diagnostic::error(format!("`{written}` is set twice"))
                    .at(at(0, key_len))
                    .note("first set here", Some(first.at.clone())),
            );
            continue;
        }
        if IGNORED.contains(&key.as_str()) {
            warnings.push(
                Diagnostic::warning(format!(
                    "`{written}` is a foreman option procrun has no counterpart for; it is ignored"
                ))
                .at(at(0, key_len)),
            );
        } else if !KEYS.contains(&key.as_str()) {
            let d = Diagnostic::warning(format!(
                "unknown key `{written}` in `{source}`; it is ignored"
            ))
            .at(at(0, key_len));
            warnings.push(match suggest(&key, KEYS) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("procrun reads: {}", KEYS.join(", "))),
            });
        }
        if value == Value::Empty {
            open_list = Some(entries.len());
        }
        entries.push(Entry {
            key,
            written: written.to_owned(),
            value,
            at: value_at,
        });
    }
    if errors.is_empty() {
        Ok(Foreman {
            path,
            entries,
            warnings,
        })
    } else {
        Err(errors)
    }
}

/// A scalar at byte `start` of its line: plain (up to a ` #` comment),
/// `'single'` (`''` is a quote) or `"double"` (`\"`, `\\`, `\n`, `\t`
/// escapes). Returns the text and whether it was quoted.
fn scalar(
    text: &str,
    start: usize,
    at: &dyn Fn(usize, usize) -> Location,
) -> Result<(String, bool), Diagnostic> {
    let text = text.trim_end();
    match text.chars().next() {
        Some(q @ ('\'' | '"')) => {
            let mut out = String::new();
            let mut chars = text[1..].char_indices();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\'' if q == '\'' => {
                        if text[1 + i + 1..].starts_with('\'') {
                            chars.next();
                            out.push('\'');
                            continue;
                        }
                        return after_quote(text, 1 + i + 1, start, at).map(|()| (out, true));
                    }
                    '"' if q == '"' => {
                        return after_quote(text, 1 + i + 1, start, at).map(|()| (out, true));
                    }
                    '\\' if q == '"' => match chars.next() {
                        Some((_, '"')) => out.push('"'),
                        Some((_, '\\')) => out.push('\\'),
                        Some((_, 'n')) => out.push('\n'),
                        Some((_, 't')) => out.push('\t'),
                        Some((_, '/')) => out.push('/'),
                        _ => {
                            return Err(Diagnostic::error(
                                "unsupported escape in a double-quoted value",
                            )
                            .at(at(start + 1 + i, 2))
                            .help(r#"write \", \\, \n or \t, or use single quotes"#));
                        }
                    },
                    c => out.push(c),
                }
            }
            Err(
                Diagnostic::error(format!("the value opened with {q} is not closed"))
                    .at(at(start, 1))
                    .help(format!("close it with {q} on the same line")),
            )
        }
        Some(c @ ('{' | '&' | '*' | '!' | '|' | '>' | '%' | '@' | '`')) => {
            let what = match c {
                '{' => "a nested map",
                '&' => "an anchor",
                '*' => "an alias",
                '!' => "a tag",
                '|' | '>' => "a block scalar",
                _ => "a reserved character",
            };
            Err(Diagnostic::error(format!(
                "{what} is not supported in `.foreman`"
            ))
            .at(at(start, 1))
            .help("foreman's options are plain values: write e.g. `procfile: Procfile.dev`, quoting a value that starts with a special character"))
        }
        _ => {
            // A plain scalar ends at a comment: ` #`.
            let end = text
                .find(" #")
                .or_else(|| text.find("\t#"))
                .unwrap_or(text.len());
            Ok((text[..end].trim_end().to_owned(), false))
        }
    }
}

/// After a closing quote at byte `end` of `text`: only blanks or a comment.
fn after_quote(
    text: &str,
    end: usize,
    start: usize,
    at: &dyn Fn(usize, usize) -> Location,
) -> Result<(), Diagnostic> {
    let rest = &text[end..];
    let trimmed = rest.trim_start();
    if trimmed.is_empty() || (trimmed.starts_with('#') && rest.len() > trimmed.len()) {
        Ok(())
    } else {
        let col = start + end + (rest.len() - trimmed.len());
        Err(Diagnostic::error("unexpected text after the quoted value")
            .at(at(col, trimmed.len()))
            .help("a value is one scalar; put a comment after ` #`"))
    }
}

/// `[a, b, "c"]` at byte `start` of its line.
fn list(
    text: &str,
    start: usize,
    at: &dyn Fn(usize, usize) -> Location,
) -> Result<Vec<String>, Diagnostic> {
    let text = text.trim_end();
    let Some(close) = text.rfind(']') else {
        return Err(Diagnostic::error("unterminated list: `]` is missing")
            .at(at(start, 1))
            .help("write the list on one line, `[.env, .env.local]`"));
    };
    after_quote(text, close + 1, start, at)?;
    let inner = &text[1..close];
    let mut items = Vec::new();
    let mut offset = 1;
    for part in inner.split(',') {
        let lead = part.len() - part.trim_start().len();
        let item = part.trim();
        if item.is_empty() {
            if !inner.trim().is_empty() {
                return Err(
                    Diagnostic::error("an empty list item").at(at(start + offset + lead, 1))
                );
            }
        } else {
            if item.starts_with(['[', '{']) {
                return Err(
                    Diagnostic::error("a nested list is not supported in `.foreman`")
                        .at(at(start + offset + lead, 1)),
                );
            }
            let (value, _) = scalar(item, start + offset + lead, at)?;
            items.push(value);
        }
        offset += part.len() + 1;
    }
    Ok(items)
}

/// A boolean as Ruby's YAML reads one (`true`, `false`, `yes`, `no`,
/// `on`, `off`, in any case).
pub fn boolean(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" => Some(true),
        "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
#[path = "foreman_tests.rs"]
mod tests;
