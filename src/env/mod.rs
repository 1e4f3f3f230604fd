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
//! both must agree (`env_agrees_with_dotenvy` in `tests/parser_properties.rs`).
//!
//! The grammar, as [`parse`] reads it ("blank" is a space or a tab):
//! - the file is UTF-8, with an optional byte-order mark; lines end in LF or
//!   CRLF;
//! - lines that are empty, all blanks, or whose first non-blank is `#` are
//!   skipped;
//! - every other line is an assignment, `KEY=VALUE`, with blanks allowed
//!   before the key and around `=`; `export` and at least one blank may
//!   come first; keys are `[A-Za-z0-9_.]+` (a leading digit or dot is
//!   accepted);
//! - `'single quoted'`: literal up to the next `'`, with no escapes (so it
//!   cannot hold a `'`); may span lines;
//! - `"double quoted"`: the escapes `\n`, `\r`, `\t`, `\"`, `\\`, `\$`
//!   and `\'`; any other backslash is kept with the character after it
//!   (`"C:\path"` stays `C:\path`); `$` references are expanded; may span
//!   lines;
//! - after a closing quote only blanks and a `#` comment may follow; CRLF
//!   inside quotes becomes LF;
//! - unquoted: the rest of the line, up to a `#` that follows a blank (so
//!   `A=a#b` is `a#b`, `A=#b` is `#b` and `A= #b` is empty), with trailing
//!   whitespace removed and inner blanks kept; `\$` is a
//!   literal `$`, other backslashes are kept; `$` references are expanded,
//!   and one that does not parse (e.g. an unterminated `${`) is kept as
//!   written;
//! - `$` references, in double-quoted and unquoted values:
//!   - `$NAME`: the longest run of `[A-Za-z0-9_]` after the `$`; a `$`
//!     followed by a digit or by anything else (`$5`, `$ `, a final `$`) is
//!     a literal `$`;
//!   - `${NAME}`, with `NAME` in `[A-Za-z0-9_]+`; `${NAME:-default}` (the
//!     default when NAME is unset or empty) and `${NAME-default}` (only when
//!     unset); the default is literal text up to the first `}`, and the `}`
//!     must be on the same line; other operators (`:=`, `:+`, `:?`) are not
//!     accepted;
//!   - a name is looked up in the keys defined earlier (earlier lines of this
//!     file, and earlier files), then in the inherited environment; unset
//!     without a default, the reference is kept as written, with a warning
//!     (foreman, which expands nothing, would keep it too: a `$` in a
//!     password copied from a foreman project is never silently dropped);
//!   - `PORT` and `PS` are each instance's: a value that refers to them,
//!     directly or through an earlier key, is also kept as a template and
//!     expanded again per instance (`instance.rs`); [`EnvVar::value`] is
//!     its value for procrun's own environment;
//! - a key set twice in one file is a warning (the last value wins); a later
//!   file overrides an earlier one silently.
//!
//! Every bad line is reported with its file, line and column, and parsing
//! goes on with the next line, except after an unterminated quote, which
//! takes the rest of the file.
//!
//! [`parse`] and [`load`] are here; the parser's steps are in `parse.rs`,
//! the `$` references in `expand.rs`, the per-instance values in
//! `instance.rs`.
//!
//! Its unit tests are at the end; the code itself is under 300 lines.

mod exec_limits;
mod expand;
mod instance;
mod parse;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Location};
pub use exec_limits::{ExecLimits, exec_size_warnings};
pub use instance::{Given, Instance, Segment};
use instance::{Of, Template};
use parse::{Assignment, Found, Parser};

/// Largest value of one variable, after expansion, in bytes. Linux refuses
/// an environment string over 128 KiB anyway (see [`ExecLimits`]); the cap
/// only keeps a runaway `${A}${A}` chain from filling the memory.
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;

/// Most bytes that the `$` references of all env files of one run may
/// expand to (every expansion counts, also of values later overwritten),
/// which bounds the time and memory that reading them takes.
pub const MAX_EXPANDED_BYTES: usize = 16 * 1024 * 1024;

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
    /// Every assignment that refers to `PORT` or `PS`, in file order
    /// (overwritten ones too: a later value may refer to them).
    templates: Vec<Template>,
    /// Key → its value's template, for the keys whose value refers to
    /// `PORT` or `PS`.
    per_instance: IndexMap<String, usize>,
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
    let mut budget = MAX_EXPANDED_BYTES;
    for file in files {
        let source = file.path.display().to_string();
        let bytes = match crate::procfile::read_input(&file.path) {
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
        match parse_into(&mut set, &source, text, inherited, &mut budget) {
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
    let mut budget = MAX_EXPANDED_BYTES;
    parse_into(&mut set, source, text, inherited, &mut budget)?;
    set.files.push(Path::new(source).to_owned());
    Ok(set)
}

/// Parses `text` and adds its variables to `set` (later definitions win).
/// Its references may expand to `budget` bytes in all; what they use is
/// taken off.
fn parse_into(
    set: &mut EnvSet,
    source: &str,
    text: &str,
    inherited: &dyn Fn(&str) -> Option<String>,
    budget: &mut usize,
) -> Result<(), Vec<Diagnostic>> {
    let mut parser = Parser::new(source, text, *budget);
    let mut seen_here: IndexMap<String, usize> = IndexMap::new();
    while let Some(assignment) = parser.next_assignment(&|name: &str| lookup(set, name, inherited))
    {
        let Assignment {
            key,
            value,
            template,
            line,
        } = assignment;
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
        match template {
            Some(pieces) => {
                set.per_instance.insert(key.clone(), set.templates.len());
                set.templates.push(Template {
                    key: key.clone(),
                    source: source.to_owned(),
                    line,
                    pieces,
                });
            }
            None => {
                set.per_instance.shift_remove(&key);
            }
        }
        set.vars.insert(
            key,
            EnvVar {
                value,
                source: source.to_owned(),
                line,
            },
        );
    }
    let (unset, count) = parser.unset_references();
    for parse::Unset {
        name,
        written,
        location,
    } in &unset
    {
        let d = Diagnostic::warning(format!(
            "`{name}` is not set, so `{written}` is kept as written"
        ))
        .at(location.clone())
        .help(format!(
            "for a literal `$`, write `\\$` or single-quote the value; to expand it, set `{name}` above this line or in procrun's environment, or give a default: `${{{name}:-}}`"
        ));
        set.warnings.push(match seen_here.get(name) {
            Some(&at) if at >= location.line => d.note(
                format!(
                    "`{name}` is set below, at line {at}: a reference sees only the keys above it"
                ),
                None,
            ),
            _ => d,
        });
    }
    if count > unset.len() {
        set.warnings.push(
            Diagnostic::warning(format!(
                "{} more references to unset variables in `{source}` are kept as written",
                count - unset.len()
            ))
            .at(Location::file(source)),
        );
    }
    *budget = parser.budget();
    let errors = parser.into_errors();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// What a reference to `name` finds: `PORT` and `PS` (which procrun sets
/// per instance), else the keys defined so far, else the inherited
/// environment.
fn lookup(set: &EnvSet, name: &str, inherited: &dyn Fn(&str) -> Option<String>) -> Found {
    let own = set.vars.get(name).map(|v| v.value.clone());
    let of = match name {
        "PORT" => Some(Of::Port),
        "PS" => Some(Of::Ps),
        _ => set.per_instance.get(name).map(|&at| Of::Earlier(at)),
    };
    match (of, own) {
        (Some(of @ (Of::Port | Of::Ps)), own) => Found::PerInstance {
            of,
            base: own.or_else(|| inherited(name)),
        },
        (Some(of), own) => Found::PerInstance { of, base: own },
        (None, Some(value)) => Found::Value(value),
        (None, None) => inherited(name).map_or(Found::Unset, Found::Value),
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
            ("A=${UNSET}x", "${UNSET}x"),
            ("A=abc$def", "abc$def"),
            ("A=\"abc$def\"", "abc$def"),
            ("A=${UNSET:-dflt}", "dflt"),
            ("A=${UNSET-dflt}", "dflt"),
            ("A=${UNSET:-x #y}", "${UNSET:-x"),
            ("A=a${UNSET-x #y} b", "a${UNSET-x"),
            ("A=${UNSET}${UNSET:-x #y}", "${UNSET}${UNSET:-x"),
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
    fn an_unset_reference_is_kept_as_written_with_a_located_warning() {
        let set = parse(
            ".env",
            "PASSWORD=abc$def\nB=${LATER}\nLATER=1\nC=${NONE:-}${NONE-x}\\$NONE\nD='$NONE'\n",
            &no_env,
        )
        .expect("parses");
        assert_eq!(set.get("PASSWORD"), Some("abc$def"));
        assert_eq!(set.get("B"), Some("${LATER}"));
        assert_eq!(set.get("C"), Some("x$NONE"));
        let out = crate::diagnostic::render_all(&set.warnings, false);
        assert!(
            out.contains("`def` is not set, so `$def` is kept as written"),
            "{out}"
        );
        assert!(out.contains(".env:1:13"), "{out}");
        assert!(out.contains(".env:2:3"), "{out}");
        assert!(out.contains("`LATER` is set below, at line 3"), "{out}");
        // A default, `\$` and single quotes say what is meant: no warning.
        assert_eq!(set.warnings.len(), 2, "{out}");

        let many: String = (0..30).map(|i| format!("K{i}=$NOPE{i}\n")).collect();
        let set = parse(".env", &many, &no_env).expect("parses");
        let out = crate::diagnostic::render_all(&set.warnings, false);
        assert_eq!(set.warnings.len(), 21, "{out}");
        assert!(
            out.contains("10 more references to unset variables"),
            "{out}"
        );
    }

    #[test]
    fn port_and_ps_are_each_instances_own() {
        let env = |k: &str| (k == "HOST").then(|| "example.org".to_owned());
        let set = parse(
            ".env",
            "URL=http://${HOST:-localhost}:$PORT/path\nA=$PS\nB=[$A]\nA=fixed\nC=$A\nD=${PORT:-3000}\nE=plain\n",
            &env,
        )
        .expect("parses");
        assert_eq!(
            set.warnings.len(),
            1,
            "only `A` set twice: {:?}",
            set.warnings
        );
        // For procrun's own environment, where neither is set.
        assert_eq!(set.get("URL"), Some("http://example.org:$PORT/path"));
        assert!(set.is_per_instance("URL") && set.is_per_instance("B"));
        assert!(!set.is_per_instance("A") && !set.is_per_instance("E"));
        let mut budget = MAX_EXPANDED_BYTES;
        let web2 = set
            .for_instance(Some("5001"), "web.2", &mut budget)
            .expect("expands");
        let get = |vars: &[(String, String)], k: &str| {
            vars.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(
            get(&web2, "URL").as_deref(),
            Some("http://example.org:5001/path")
        );
        assert_eq!(get(&web2, "B").as_deref(), Some("[web.2]"));
        assert_eq!(get(&web2, "A").as_deref(), Some("fixed"));
        assert_eq!(get(&web2, "C").as_deref(), Some("fixed"));
        assert_eq!(get(&web2, "D").as_deref(), Some("5001"));
        let keys: Vec<&str> = web2.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["URL", "A", "B", "C", "D", "E"]);
        // A type without PORT: the default, else the reference as written.
        let worker = set
            .for_instance(None, "worker.1", &mut budget)
            .expect("expands");
        assert_eq!(get(&worker, "D").as_deref(), Some("3000"));
        assert_eq!(
            get(&worker, "URL").as_deref(),
            Some("http://example.org:$PORT/path")
        );
        // For an export's shell: PORT and PS stay references.
        let later = Instance {
            name: "web",
            port: Given::Later,
            ps: Given::Later,
        };
        let values = set.per_instance(later, &mut budget).expect("expands");
        assert_eq!(
            values[0],
            (
                "URL",
                vec![
                    Segment::Text("http://example.org:".into()),
                    Segment::Port,
                    Segment::Text("/path".into())
                ]
            )
        );
        assert_eq!(
            values[1],
            (
                "B",
                vec![
                    Segment::Text("[".into()),
                    Segment::Ps,
                    Segment::Text("]".into())
                ]
            )
        );
    }

    #[test]
    fn a_per_instance_chain_is_held_to_the_caps() {
        // For procrun itself PORT and PS are 1 byte each: A18 is 512 KiB.
        let mut text = String::from("A0=$PORT$PS\n");
        for i in 1..19 {
            text.push_str(&format!("A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
        }
        let env = |k: &str| ["PORT", "PS"].contains(&k).then(|| "1".to_owned());
        let set = parse(".env", &text, &env).expect("small enough for procrun itself");
        let mut budget = MAX_EXPANDED_BYTES;
        let e = set
            .for_instance(Some("5000"), "web.1", &mut budget)
            .expect_err("too large for an instance");
        let out = e.render(false);
        assert!(out.contains("`A17` for `web.1`"), "{out}");
        assert!(out.contains(".env:18"), "{out}");
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
    fn a_nul_in_any_kind_of_value_is_a_located_error() {
        let out = err("A=a\0b\nB='x\0'\nC=\"\n\0\"\nD=ok # \0 in a comment\n");
        assert!(out.contains("the value of `A` contains a NUL"), "{out}");
        assert!(out.contains(".env:1:4"), "{out}");
        assert!(out.contains(".env:2:5"), "{out}");
        assert!(out.contains(".env:4:1"), "{out}");
        assert!(out.contains("aborting due to 3 errors"), "{out}");
        let set = parse(".env", "D=ok # \0\n", &no_env).expect("a NUL in a comment is harmless");
        assert_eq!(set.get("D"), Some("ok"));
    }

    #[test]
    fn a_doubling_chain_stops_at_the_value_cap() {
        let mut text = String::from("A0=xxxxxxxxxxxxxxxx\n");
        for i in 1..40 {
            text.push_str(&format!("A{i}=${{A{}}}${{A{}}}\n", i - 1, i - 1));
        }
        let errors = parse(".env", &text, &no_env).expect_err("too large");
        let out = crate::diagnostic::render_all(&errors, false);
        // 16 × 2^16 bytes is 1 MiB: A16 is the last that fits.
        assert!(
            out.contains("the value of `A17` is larger than 1 MiB"),
            "{out}"
        );
        assert!(out.contains(".env:18:11"), "{out}");
        assert_eq!(errors.len(), 1, "{out}");
    }

    #[test]
    fn expansion_in_all_is_bounded() {
        let mut text = format!("A={}\n", "x".repeat(MAX_VALUE_BYTES / 2));
        for i in 0..100 {
            text.push_str(&format!("B{i}=$A$A\n"));
        }
        let out = err(&text);
        assert!(
            out.contains("expand to more than 16 MiB in all (at `B16`)"),
            "{out}"
        );
        assert!(!out.contains("B17"), "{out}");
    }

    #[test]
    fn a_line_of_many_open_braces_is_read_in_linear_time() {
        let text = format!("A={}\nB=\"{}\"\n", "${".repeat(500_000), "${".repeat(1000));
        let out = err(&text);
        assert!(out.contains("unterminated `${`"), "{out}");
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
