//! The Procfile: one `name: command` per line.
//!
//! Grammar (compatible with foreman and honcho, stricter in what it reports):
//! - a process name is `[A-Za-z0-9_-]+`, followed by optional blanks, a `:`,
//!   optional blanks and the command;
//! - the command is the rest of the line, trimmed, kept verbatim (the shell
//!   expands `$VARS` later);
//! - blank lines and lines whose first non-blank character is `#` are skipped;
//! - CRLF line ends, a UTF-8 byte-order mark and a missing final newline are
//!   accepted; a NUL or a carriage return elsewhere in an entry's line is an
//!   error (no command can hold a NUL; a lone CR is no line end).
//!
//! Every problem is collected, so one run of `procrun check` shows them all.
//!
//! Its unit tests are at the end; the parser itself is just over 400 lines,
//! with the caps on what it reads (size, entries, errors).

use std::path::{Path, PathBuf};

use crate::diagnostic::{Diagnostic, Location};

/// One process type declared in a Procfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The process type, e.g. `web`.
    pub name: String,
    /// The command, verbatim.
    pub command: String,
    /// 1-based line of the declaration.
    pub line: usize,
}

/// A parsed Procfile, entries in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Procfile {
    /// The path as the user gave it (used in messages).
    pub path: PathBuf,
    /// The entries, in file order: the order decides ports and colours.
    pub entries: Vec<Entry>,
    /// Constructs that work here but not in every other runner.
    pub warnings: Vec<Diagnostic>,
    /// The commands' `$NAME` references that would expand to nothing if
    /// NAME were unset (see [`crate::shell::unset_sensitive_references`]),
    /// at most [`MAX_REFERENCES`]: the plan warns about those it finds
    /// unset.
    pub references: Vec<CommandReference>,
}

/// A `$NAME` in a Procfile command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandReference {
    /// Index of the entry in [`Procfile::entries`].
    pub entry: usize,
    /// The variable.
    pub name: String,
    /// Where it is.
    pub location: Location,
}

/// Most references a Procfile keeps for the unset-variable warnings (a
/// line can hold a great many).
pub const MAX_REFERENCES: usize = 1000;

/// Lines longer than this get a reference's line number only.
const MAX_SNIPPET_LINE: usize = 4096;

impl Procfile {
    /// The entry named `name`, if any.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The names of all entries, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.name.as_str())
    }
}

/// Whether `c` may appear in a process name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Longest process name, in characters. Names end up in unit names, label
/// values and the output's prefix column; 63 is what a Kubernetes name or
/// label value (a DNS label) may hold, and leaves room in a systemd unit
/// name (at most 255 bytes) for the app's prefix and the instance number.
pub const MAX_NAME_LEN: usize = 63;

/// Most entries (process types) a Procfile may have. Real ones have a few
/// dozen; every type gets a range of 100 ports, so from the default base
/// port only about 600 types can have one at all.
pub const MAX_ENTRIES: usize = 1000;

/// Largest file procrun reads (a Procfile, an env file): far above any real
/// one, small enough that `-f /dev/zero`-like mistakes end at once.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads and parses the Procfile at `path`.
pub fn load(path: &Path) -> Result<Procfile, Vec<Diagnostic>> {
    let source = path.display().to_string();
    let bytes = read_input(path).map_err(|e| vec![read_error(&source, &e)])?;
    let text = decode_utf8(&source, &bytes).map_err(|d| vec![d])?;
    parse(path, text)
}

fn read_error(source: &str, e: &std::io::Error) -> Diagnostic {
    let d = Diagnostic::error(format!(
        "cannot read Procfile `{source}`: {}",
        crate::error::io_reason(e)
    ))
    .at(Location::file(source));
    if e.kind() == std::io::ErrorKind::NotFound {
        d.help("create a Procfile with one `name: command` line per process type, or point to one with -f/--procfile")
    } else {
        d
    }
}

/// Reads an input file (a Procfile, an env file) whole, refusing what is
/// not a regular file and anything over [`MAX_FILE_BYTES`], so that no
/// input can block procrun or fill its memory: a FIFO or a terminal would
/// block the read, `/dev/zero` would never end. `/dev/null` is accepted (as
/// an empty file: `-e /dev/null` reads no variables).
///
/// The file is opened without blocking (a FIFO with no writer would block
/// the open itself) and checked through the open descriptor, so it cannot
/// be swapped between the check and the read.
pub fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::{FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if !kind.is_file() {
        let is_null = kind.is_char_device()
            && std::fs::metadata("/dev/null").is_ok_and(|null| null.rdev() == meta.rdev());
        if is_null {
            return Ok(Vec::new());
        }
        let what = if kind.is_dir() {
            "it is a directory"
        } else if kind.is_fifo() {
            "it is a FIFO (named pipe), not a regular file"
        } else if kind.is_socket() {
            "it is a socket, not a regular file"
        } else if kind.is_char_device() || kind.is_block_device() {
            "it is a device, not a regular file"
        } else {
            "it is not a regular file"
        };
        return Err(std::io::Error::other(what));
    }
    // A regular file never blocks, and the size may change while reading:
    // read one byte past the cap to tell "too large" apart.
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::other(format!(
            "it is larger than {} MiB, the most procrun reads",
            MAX_FILE_BYTES / (1024 * 1024)
        )));
    }
    Ok(bytes)
}

/// Decodes `bytes` as UTF-8 (dropping a byte-order mark), or reports the
/// line and column of the first invalid byte.
pub fn decode_utf8<'a>(source: &str, bytes: &'a [u8]) -> Result<&'a str, Diagnostic> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let valid = e.valid_up_to();
        let line_start = bytes[..valid]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let line_no = bytes[..valid].iter().filter(|&&b| b == b'\n').count() + 1;
        let line_end = bytes[line_start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |i| line_start + i);
        let text = String::from_utf8_lossy(&bytes[line_start..line_end]);
        let text = text.trim_end_matches('\r');
        let col = std::str::from_utf8(&bytes[line_start..valid])
            .map(|s| s.chars().count())
            .unwrap_or(0);
        Diagnostic::error(format!("`{source}` is not valid UTF-8"))
            .at(Location::new(source, line_no, text, col, 1))
            .help("save the file as UTF-8")
    })
}

/// Parses Procfile text. `path` is only used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Procfile, Vec<Diagnostic>> {
    let source = path.display().to_string();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries: Vec<Entry> = Vec::new();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let mut line_texts: Vec<&str> = Vec::new();
    let mut references = Vec::new();
    // Name → line of its entry: a file of a million entries is checked for
    // duplicates in linear time.
    let mut lines_of: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();

    for (index, raw) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        line_texts.push(line);
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if errors.len() >= crate::diagnostic::MAX_ERRORS {
            errors.push(crate::diagnostic::stopped_after(&source, line_no));
            break;
        }
        if let Some(d) = impossible_char(&source, line_no, line) {
            errors.push(d);
            continue;
        }
        match parse_line(&source, line_no, line) {
            Ok((entry, no_blank_after_colon)) => {
                if let Some(&first) = lines_of.get(entry.name.as_str()) {
                    let first_text = line_texts[first - 1];
                    errors.push(
                        Diagnostic::error(format!("duplicate process name `{}`", entry.name))
                            .at(name_location(&source, line_no, line))
                            .note(
                                format!("`{}` is first defined here", entry.name),
                                Some(name_location(&source, first, first_text)),
                            )
                            .help("give each process type a unique name"),
                    );
                    continue;
                }
                if let Some(colon) = no_blank_after_colon {
                    warnings.push(
                        Diagnostic::warning(format!(
                            "no blank after the `:` of `{}`: overmind and hivemind ignore this line",
                            entry.name
                        ))
                        .at(Location::from_bytes(&source, line_no, line, colon, colon + 1))
                        .help(format!("write `{}: {}`", entry.name, entry.command)),
                    );
                }
                if let Some((_, port)) = crate::shell::leading_assignments(&entry.command)
                    .into_iter()
                    .find(|(name, _)| *name == "PORT")
                {
                    let col = line.find("PORT=").unwrap_or(0);
                    warnings.push(
                        Diagnostic::warning(format!(
                            "`{}` sets PORT={port} in its command: it gets that PORT, not the one procrun gives each instance",
                            entry.name
                        ))
                        .at(Location::from_bytes(&source, line_no, line, col, col + 5 + port.len()))
                        .help("remove the assignment to use procrun's PORT (base + 100 × type index + instance − 1), or set the base port with -p"),
                    );
                }
                if entries.len() == MAX_ENTRIES {
                    // One message, not one per entry over the cap.
                    errors.push(
                        Diagnostic::error(format!(
                            "`{}` is process type number {}: a Procfile may have at most {MAX_ENTRIES}",
                            entry.name,
                            MAX_ENTRIES + 1
                        ))
                        .at(name_location(&source, line_no, line))
                        .help("split the app into several Procfiles (-f), each run by its own procrun"),
                    );
                    break;
                }
                lines_of.insert(line_name(line), line_no);
                references_of(
                    &source,
                    line_no,
                    line,
                    entries.len(),
                    &entry,
                    &mut references,
                );
                entries.push(entry);
            }
            Err(d) => errors.push(d),
        }
    }

    if entries.is_empty() && errors.is_empty() {
        // A file with lone-CR line ends reads as one (comment) line.
        let help = if text.replace("\r\n", "").contains('\r') {
            "its lines end in a lone carriage return (old Mac line ends): save it with LF line ends"
        } else {
            "add a line such as `web: python3 -m http.server $PORT`"
        };
        errors.push(
            Diagnostic::error(format!("`{source}` defines no processes"))
                .at(Location::file(&source))
                .help(help),
        );
    }
    if errors.is_empty() {
        Ok(Procfile {
            path: path.to_owned(),
            entries,
            warnings,
            references,
        })
    } else {
        Err(errors)
    }
}

/// Adds the references of `entry` (the `index`th, on `line`) to `out`, up
/// to [`MAX_REFERENCES`] in all.
fn references_of(
    source: &str,
    line_no: usize,
    line: &str,
    index: usize,
    entry: &Entry,
    out: &mut Vec<CommandReference>,
) {
    // The command is the line's end, trimmed.
    let Some(offset) = line.rfind(entry.command.as_str()) else {
        return;
    };
    for r in crate::shell::unset_sensitive_references(&entry.command) {
        if out.len() >= MAX_REFERENCES {
            return;
        }
        let (from, to) = (offset + r.span.start, offset + r.span.end);
        // Each location holds a copy of its line.
        let location = if line.len() <= MAX_SNIPPET_LINE {
            Location::from_bytes(source, line_no, line, from, to)
        } else {
            Location::line(source, line_no)
        };
        out.push(CommandReference {
            entry: index,
            name: r.name.to_owned(),
            location,
        });
    }
}

/// A character no entry line may hold, reported at its place: NUL
/// (`execve` takes NUL-terminated strings, so no command can contain it) and
/// a carriage return that does not end the line (a lone CR is a line end
/// only in old Mac files; the shell would see it as part of a word).
fn impossible_char(source: &str, line_no: usize, line: &str) -> Option<Diagnostic> {
    let (at, c) = line.char_indices().find(|&(_, c)| c == '\0' || c == '\r')?;
    let location = Location::from_bytes(source, line_no, line, at, at + 1);
    Some(if c == '\0' {
        Diagnostic::error("NUL character (byte 0) in the Procfile: no command can contain it")
            .at(location)
            .help("remove it (a file full of NUL bytes is probably UTF-16: save it as UTF-8)")
    } else {
        Diagnostic::error("carriage return (`\\r`) inside a line")
            .at(location)
            .help("end lines with LF or CRLF; a lone CR is not a line end")
    })
}

/// The process name a line starts with (after blanks), as the line holds it.
fn line_name(line: &str) -> &str {
    let start = line.len() - line.trim_start().len();
    let end = line[start..]
        .find(|c: char| !is_name_char(c))
        .map_or(line.len(), |i| start + i);
    &line[start..end]
}

fn name_location(source: &str, line_no: usize, line: &str) -> Location {
    let start = line.len() - line.trim_start().len();
    let end = line[start..]
        .find(|c: char| !is_name_char(c))
        .map_or(line.len(), |i| start + i);
    Location::from_bytes(source, line_no, line, start, end)
}

/// Parses one non-blank, non-comment line. On success also returns the byte
/// offset of the colon when no blank follows it (a portability warning).
fn parse_line(
    source: &str,
    line_no: usize,
    line: &str,
) -> Result<(Entry, Option<usize>), Diagnostic> {
    let start = line.len() - line.trim_start().len();
    let name_end = line[start..]
        .find(|c: char| !is_name_char(c))
        .map_or(line.len(), |i| start + i);
    let name = &line[start..name_end];
    let after_name = &line[name_end..];
    let blanks = after_name.len() - after_name.trim_start_matches([' ', '\t']).len();
    let colon = name_end + blanks;

    if !line[colon..].starts_with(':') {
        let at = |from: usize| {
            let to = line[from..]
                .chars()
                .next()
                .map_or(from, |c| from + c.len_utf8());
            Location::from_bytes(source, line_no, line, from, to)
        };
        return Err(if name.is_empty() {
            Diagnostic::error("expected a process name (letters, digits, `_` or `-`)")
                .at(at(start))
                .help("each line must look like `name: command`")
        } else if colon >= line.len() {
            Diagnostic::error(format!("expected `:` after the process name `{name}`"))
                .at(Location::from_bytes(source, line_no, line, start, name_end))
                .help(format!("write `{name}: <command>`"))
        } else if blanks == 0 {
            Diagnostic::error(
                "invalid character in process name: process names contain only letters, digits, `_` and `-`",
            )
            .at(at(colon))
            .help("each line must look like `name: command`")
        } else {
            Diagnostic::error(format!("expected `:` after the process name `{name}`"))
                .at(at(colon))
                .help(format!("write `{name}: <command>`"))
        });
    }
    if name.is_empty() {
        return Err(Diagnostic::error("missing process name before `:`")
            .at(Location::from_bytes(
                source,
                line_no,
                line,
                colon,
                colon + 1,
            ))
            .help("each line must look like `name: command`"));
    }
    // Names are ASCII, so bytes are characters.
    if name.len() > MAX_NAME_LEN {
        return Err(Diagnostic::error(format!(
            "process name `{}…` is {} characters long: at most {MAX_NAME_LEN} are allowed",
            &name[..16],
            name.len()
        ))
        .at(Location::from_bytes(source, line_no, line, start, name_end))
        .help("use a shorter name (it becomes part of unit names and Kubernetes labels)"));
    }
    let rest = &line[colon + 1..];
    let command = rest.trim();
    if command.is_empty() {
        return Err(
            Diagnostic::error(format!("process `{name}` has an empty command"))
                .at(Location::from_bytes(
                    source,
                    line_no,
                    line,
                    start,
                    colon + 1,
                ))
                .help(format!(
                    "write the command after the colon: `{name}: <command>`"
                )),
        );
    }
    let no_blank = (!rest.starts_with([' ', '\t'])).then_some(colon);
    Ok((
        Entry {
            name: name.to_owned(),
            command: command.to_owned(),
            line: line_no,
        },
        no_blank,
    ))
}

/// Renders entries back to Procfile text (one `name: command` per line).
pub fn render(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("{}: {}\n", e.name, e.command))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Vec<(String, String)> {
        parse(Path::new("Procfile"), text)
            .unwrap_or_else(|e| panic!("{e:?}"))
            .entries
            .into_iter()
            .map(|e| (e.name, e.command))
            .collect()
    }

    fn err(text: &str) -> String {
        crate::diagnostic::render_all(
            &parse(Path::new("Procfile"), text).expect_err("should fail"),
            false,
        )
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn accepted_forms() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("web: cmd", &[("web", "cmd")]),
            ("web:cmd", &[("web", "cmd")]),
            ("web : cmd", &[("web", "cmd")]),
            ("web\t:\tcmd  ", &[("web", "cmd")]),
            ("  web: cmd", &[("web", "cmd")]),
            ("a-b_9: x", &[("a-b_9", "x")]),
            (
                "web: sh -c 'echo a:b $PORT \"q\"'",
                &[("web", "sh -c 'echo a:b $PORT \"q\"'")],
            ),
            ("web: a\r\nworker: b\r\n", &[("web", "a"), ("worker", "b")]),
            ("\u{feff}web: a", &[("web", "a")]),
            (
                "# comment\n\n   \n  # indented\nweb: a # not a comment\n",
                &[("web", "a # not a comment")],
            ),
            ("z: 1\na: 2\nm: 3", &[("z", "1"), ("a", "2"), ("m", "3")]),
        ];
        for (text, want) in cases {
            assert_eq!(ok(text), pairs(want), "input: {text:?}");
        }
    }

    #[test]
    fn warns_about_missing_blank_after_colon() {
        let p = parse(Path::new("Procfile"), "web:cmd\nworker: x").expect("parses");
        assert_eq!(p.warnings.len(), 1);
        assert!(p.warnings[0].message.contains("overmind"));
    }

    #[test]
    fn collects_every_error() {
        let out = err("web python\n: x\nweb: a\nweb: b\nw.b: c\nempty:   \n");
        assert!(out.contains("Procfile:1:5"), "{out}");
        assert!(out.contains("expected `:` after the process name `web`"));
        assert!(out.contains("missing process name"));
        assert!(out.contains("Procfile:2:1"));
        assert!(out.contains("duplicate process name `web`"));
        assert!(out.contains("Procfile:4:1"));
        assert!(out.contains("Procfile:3:1"));
        assert!(out.contains("invalid character in process name"));
        assert!(out.contains("Procfile:5:2"));
        assert!(out.contains("process `empty` has an empty command"));
        assert!(out.contains("aborting due to 5 errors"));
    }

    #[test]
    fn nul_and_a_lone_carriage_return_are_located_errors() {
        let out = err("web: a\0b\nworker: x\ry\n# comments are never run: \0\r\nok: 1\r\n");
        assert!(out.contains("NUL character"), "{out}");
        assert!(out.contains("Procfile:1:7"), "{out}");
        assert!(out.contains("carriage return"), "{out}");
        assert!(out.contains("Procfile:2:10"), "{out}");
        assert!(out.contains("aborting due to 2 errors"), "{out}");
        assert!(err("# old Mac\rweb: a\r").contains("lone carriage return"));
        // A CR before the LF, or at the very end, is a CRLF line end.
        assert_eq!(ok("web: a\r\nw: b\r"), pairs(&[("web", "a"), ("w", "b")]));
    }

    #[test]
    fn a_name_over_the_limit_is_a_located_error() {
        let long = "n".repeat(MAX_NAME_LEN + 1);
        let out = err(&format!("web: a\n  {long}: b\n"));
        assert!(out.contains("is 64 characters long: at most 63"), "{out}");
        assert!(out.contains("Procfile:2:3"), "{out}");
        let at_limit = "n".repeat(MAX_NAME_LEN);
        assert_eq!(ok(&format!("{at_limit}: b")), pairs(&[(&at_limit, "b")]));
        // 65,536 characters once panicked `{:width$}` downstream.
        let huge = "n".repeat(65_536);
        assert!(err(&format!("{huge}: b")).contains("65536 characters long"));
    }

    #[test]
    fn many_entries_are_checked_in_linear_time() {
        let text: String = (0..MAX_ENTRIES).map(|i| format!("p{i}: x\n")).collect();
        let p = parse(Path::new("Procfile"), &format!("{text}p7: again\n")).expect_err("dup");
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("duplicate process name `p7`"));
        // Past the cap: one error, and the rest is not read.
        let text: String = (0..200_000).map(|i| format!("p{i}: x\n")).collect();
        let p = parse(Path::new("Procfile"), &text).expect_err("too many");
        assert_eq!(p.len(), 1);
        assert!(p[0].message.contains("at most 1000"), "{}", p[0].message);
        // Duplicates past the cap of errors: 40 and a stop.
        let p = parse(Path::new("Procfile"), &"a: x\n".repeat(200_000)).expect_err("dups");
        assert_eq!(p.len(), crate::diagnostic::MAX_ERRORS + 1);
    }

    #[test]
    fn input_files_must_be_regular_and_small() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reason = |p: &Path| crate::error::io_reason(&read_input(p).expect_err("refused"));
        assert!(reason(dir.path()).contains("directory"));
        assert!(reason(Path::new("/dev/zero")).contains("device"));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).expect("mkfifo");
        assert!(reason(&fifo).contains("FIFO"), "{}", reason(&fifo));
        assert_eq!(read_input(Path::new("/dev/null")).expect("null"), b"");
        let big = dir.path().join("big");
        let file = std::fs::File::create(&big).expect("create");
        file.set_len(MAX_FILE_BYTES + 1).expect("grow");
        assert!(
            reason(&big).contains("larger than 16 MiB"),
            "{}",
            reason(&big)
        );
        file.set_len(MAX_FILE_BYTES).expect("shrink");
        assert_eq!(
            read_input(&big).expect("at the cap").len() as u64,
            MAX_FILE_BYTES
        );
    }

    #[test]
    fn empty_procfile_is_an_error() {
        for text in ["", "\n\n", "# only a comment\n"] {
            assert!(err(text).contains("defines no processes"), "{text:?}");
        }
    }

    #[test]
    fn invalid_utf8_reports_line_and_column() {
        let d = decode_utf8("Procfile", b"web: a\nworker: b\xff\n").expect_err("invalid");
        let loc = d.location.expect("located");
        assert_eq!((loc.line, loc.col), (2, 10));
    }

    #[test]
    fn render_then_parse_round_trips() {
        let entries = parse(Path::new("P"), "a: x y\nb:z")
            .expect("parses")
            .entries;
        let again = parse(Path::new("P"), &render(&entries))
            .expect("parses")
            .entries;
        let strip = |v: Vec<Entry>| -> Vec<(String, String)> {
            v.into_iter().map(|e| (e.name, e.command)).collect()
        };
        assert_eq!(strip(entries), strip(again));
    }
}
