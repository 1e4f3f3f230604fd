//! `procrun.toml`: optional per-process-type settings in the app root.
//!
//! ```toml
//! [defaults]            # every type
//! stop_timeout = 5
//!
//! [process.web]         # one type; its keys win over [defaults]
//! restart = "on-failure"
//! stop_signal = "INT"
//! backoff = { initial = 1, max = 30 }
//! ```
//!
//! The file is parsed with the `toml` crate into its spanned document
//! (`toml::de::DeTable`) and checked key by key here rather than through
//! serde: that way every problem is found in one pass (not only the first)
//! and each is reported at its exact place, like a Procfile's. The keys and
//! their meaning are documented in `docs/config.md`.
//!
//! This module only reads the file; [`resolve`] merges it with the flags and
//! the Procfile into one [`Policy`](crate::policy::Policy) per type.
//!
//! Over 400 lines because the document's walk and its per-value checks
//! (seconds, signals, nesting) are one reading of the file; the key-by-key
//! checks are in `check.rs`, readiness in `ready.rs`.

mod check;
pub mod flags;
pub mod foreman;
pub mod ready;
pub mod resolve;

pub use crate::diagnostic::suggest;
use check::{Cx, Source};

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{Diagnostic, Location};
use crate::policy::{Restart, StopSignalProblem};

/// The file's name in the app root.
pub const FILE_NAME: &str = "procrun.toml";

/// The longest duration procrun accepts anywhere (a day), in seconds.
pub const MAX_SECONDS: f64 = 86_400.0;

/// The settings every section may have.
pub const KEYS: &[&str] = &[
    "restart",
    "can_die",
    "stop_signal",
    "stop_timeout",
    "backoff",
    "max_restarts",
    "min_uptime",
    "port",
    "ready",
    "ready_timeout",
    "ready_interval",
    "after",
    "tty",
];

/// The restart values, as written in the file.
const RESTART_VALUES: &[&str] = &["no", "on-failure", "always"];

/// The config file to read, and whether it must exist.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigRef {
    /// Its path, as shown in messages.
    pub path: PathBuf,
    /// Named explicitly (`--config`, `PROCRUN_CONFIG`): then a missing file
    /// is an error.
    pub required: bool,
}

/// A value and where it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Set<T> {
    /// The value.
    pub value: T,
    /// Where: the value in the file, or the item of a flag.
    pub at: Location,
}

/// The settings of one section: each one given or not.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Patch {
    /// `restart`.
    pub restart: Option<Set<Restart>>,
    /// `can_die`.
    pub can_die: Option<Set<bool>>,
    /// `stop_signal`.
    pub stop_signal: Option<Set<Signal>>,
    /// `stop_timeout`.
    pub stop_timeout: Option<Set<Duration>>,
    /// `backoff.initial`.
    pub backoff_initial: Option<Set<Duration>>,
    /// `backoff.max`.
    pub backoff_max: Option<Set<Duration>>,
    /// `max_restarts`; `None` inside: unlimited.
    pub max_restarts: Option<Set<Option<u32>>>,
    /// `min_uptime`.
    pub min_uptime: Option<Set<Duration>>,
    /// `port`.
    pub port: Option<Set<bool>>,
    /// `tty`.
    pub tty: Option<Set<bool>>,
    /// `ready`.
    pub ready: Option<Set<crate::readiness::Check>>,
    /// `ready_timeout`.
    pub ready_timeout: Option<Set<Duration>>,
    /// `ready_interval`.
    pub ready_interval: Option<Set<Duration>>,
    /// `after`: each type named, and where.
    pub after: Option<Set<Vec<Set<String>>>>,
}

impl Patch {
    /// Where the first setting that only matters to a type that restarts
    /// (backoff, max_restarts, min_uptime) was written, and its key.
    pub fn restart_tuning(&self) -> Option<(&'static str, &Location)> {
        let backoff = self
            .backoff_initial
            .as_ref()
            .or(self.backoff_max.as_ref())
            .map(|s| ("backoff", &s.at));
        backoff
            .or(self.max_restarts.as_ref().map(|s| ("max_restarts", &s.at)))
            .or(self.min_uptime.as_ref().map(|s| ("min_uptime", &s.at)))
    }
}

/// One `[process.NAME]` section.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Section {
    /// The process type it names.
    pub name: String,
    /// Where the name is written (the table header or dotted key).
    pub at: Location,
    /// Its settings.
    pub patch: Patch,
}

/// A parsed `procrun.toml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// The file as the user names it.
    pub path: PathBuf,
    /// `[defaults]`.
    pub defaults: Patch,
    /// `[process.NAME]` sections, in file order.
    pub processes: Vec<Section>,
    /// Non-fatal findings.
    pub warnings: Vec<Diagnostic>,
}

/// Reads the config file: `Ok(None)` when the default file does not exist.
pub fn load(file: &ConfigRef) -> Result<Option<Config>, Vec<Diagnostic>> {
    let source = file.path.display().to_string();
    // Through the Procfile's reader: the same size cap, and no blocking on a
    // FIFO or device.
    let bytes = match crate::procfile::read_input(&file.path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !file.required => return Ok(None),
        Err(e) => {
            let d = Diagnostic::error(format!(
                "cannot read config file `{source}`: {}",
                crate::error::io_reason(&e)
            ))
            .at(Location::file(&source));
            let d = if e.kind() == std::io::ErrorKind::NotFound {
                d.help(format!(
                    "--config/PROCRUN_CONFIG names a file that must exist; without it procrun reads `{FILE_NAME}` in the app root when there is one"
                ))
            } else {
                d
            };
            return Err(vec![d]);
        }
    };
    let text = crate::procfile::decode_utf8(&source, &bytes).map_err(|d| vec![d])?;
    parse(file.path.clone(), text).map(Some)
}

/// Parses the text of a config file; `path` is only used in messages.
pub fn parse(path: PathBuf, text: &str) -> Result<Config, Vec<Diagnostic>> {
    let source = path.display().to_string();
    let index = check::Index::new(text);
    let mut cx = Cx {
        src: Source {
            name: &source,
            text,
            index: &index,
        },
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let (doc, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        // What the parser recovered is not checked further: its guesses
        // would only add confusing follow-up errors.
        let mut syntax = syntax;
        syntax.sort_by_key(|e| e.span().map_or(usize::MAX, |s| s.start));
        return Err(syntax
            .iter()
            .map(|e| {
                let message = e.message();
                let d = if message.contains("recursion") {
                    Diagnostic::error(format!(
                        "`{source}` nests tables, lists or dotted keys too deeply to be read ({message})"
                    ))
                } else {
                    Diagnostic::error(format!("`{source}` is not valid TOML: {message}"))
                };
                match e.span().or_else(|| deep_nesting(text)) {
                    Some(span) => d.at(cx.src.at(span)),
                    None => d.at(Location::file(&source)),
                }
            })
            .collect());
    }
    let mut config = Config {
        path,
        ..Config::default()
    };
    for (key, value) in doc.get_ref() {
        match key.get_ref().as_ref() {
            "defaults" => {
                if let Some(table) = cx.table(key, value, "[defaults]") {
                    config.defaults = cx.patch(table, "[defaults]");
                }
            }
            "process" => {
                let Some(table) = cx.table(key, value, "[process.NAME]") else {
                    continue;
                };
                for (number, (name, value)) in table.iter().enumerate() {
                    if cx.full() {
                        break;
                    }
                    if number == crate::procfile::MAX_ENTRIES {
                        cx.errors.push(
                            Diagnostic::error(format!(
                                "`[process.{}]` is section number {} under [process]: a Procfile has at most {} process types",
                                name.get_ref(),
                                number + 1,
                                crate::procfile::MAX_ENTRIES
                            ))
                            .at(cx.src.at(name.span())),
                        );
                        break;
                    }
                    let what = format!("[process.{}]", name.get_ref());
                    if !value.get_ref().is_table() && KEYS.contains(&name.get_ref().as_ref()) {
                        cx.errors.push(
                            Diagnostic::error(format!(
                                "`{}` under [process] needs a process type",
                                name.get_ref()
                            ))
                            .at(cx.src.at(name.span()))
                            .help(format!(
                                "write it under `[process.web]` (one type) or `[defaults]` (every type), e.g. `[process.web]` then `{} = …`",
                                name.get_ref()
                            )),
                        );
                        continue;
                    }
                    let Some(table) = cx.table(name, value, &what) else {
                        continue;
                    };
                    let patch = cx.patch(table, &what);
                    config.processes.push(Section {
                        name: name.get_ref().to_string(),
                        at: cx.src.at(name.span()),
                        patch,
                    });
                }
            }
            other if !value.get_ref().is_table() && KEYS.contains(&other) => {
                cx.errors.push(
                    Diagnostic::error(format!("`{other}` is outside any section"))
                        .at(cx.src.at(key.span()))
                        .help(
                            "put it under `[defaults]` (every type) or `[process.NAME]` (one type)",
                        ),
                );
            }
            other => {
                let d = Diagnostic::error(format!("unknown section `{other}` in `{source}`"))
                    .at(cx.src.at(key.span()));
                let d = if value.get_ref().is_table() {
                    match suggest(other, &["defaults", "process"]) {
                        Some(s) => d.help(format!("did you mean `[{s}]`?")),
                        None => d.help(format!(
                            "settings for one process type go under `[process.{other}]`, for every type under `[defaults]`"
                        )),
                    }
                } else {
                    d.help("the sections are `[defaults]` and `[process.NAME]`")
                };
                cx.errors.push(d);
            }
        }
    }
    if cx.full() {
        let last = cx
            .errors
            .last()
            .and_then(|d| d.location.as_ref())
            .map_or(0, |l| l.line);
        cx.errors
            .push(crate::diagnostic::stopped_after(&source, last));
    }
    if cx.errors.is_empty() {
        config.warnings = cx.warnings;
        Ok(config)
    } else {
        Err(cx.errors)
    }
}

/// Where `text` first nests deeper than any real config would (brackets,
/// braces or the parts of a dotted key): the place of a "recursion limit"
/// error, which the TOML parser reports without one.
fn deep_nesting(text: &str) -> Option<Range<usize>> {
    const DEEP: usize = 64;
    let mut depth = 0usize;
    for (line_start, line) in text.split_inclusive('\n').scan(0, |at, line| {
        let start = *at;
        *at += line.len();
        Some((start, line))
    }) {
        let mut dots = 0;
        for (i, b) in line.bytes().enumerate() {
            match b {
                b'[' | b'{' => depth += 1,
                b']' | b'}' => depth = depth.saturating_sub(1),
                b'.' => dots += 1,
                _ => {}
            }
            if depth > DEEP || dots > DEEP {
                return Some(line_start + i..line_start + i + 1);
            }
        }
    }
    None
}

/// A duration: seconds as an integer or a float, or a string with a unit
/// (`"500ms"`, `"1.5s"`, `"2m"`, as on the command line); finite, from 0 to
/// a day.
fn seconds(value: &DeValue<'_>) -> Result<Duration, String> {
    let secs = match value {
        DeValue::String(text) => match crate::cli::duration_seconds(text) {
            Some(secs) => secs,
            None => return Err(format!("is not a duration: {}", describe_value(value))),
        },
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => n as f64,
            Err(_) => {
                return Err(format!(
                    "is too large (at most {MAX_SECONDS} seconds, a day)"
                ));
            }
        },
        DeValue::Float(f) => match f.as_str().parse::<f64>() {
            Ok(x) => x,
            Err(_) => return Err(format!("`{f}` is not a number")),
        },
        other => {
            return Err(format!(
                "must be a number of seconds or a duration string, found {}",
                describe_value(other)
            ));
        }
    };
    if !secs.is_finite() {
        Err("must be a finite number of seconds".to_owned())
    } else if secs < 0.0 {
        Err("must not be negative".to_owned())
    } else if secs > MAX_SECONDS {
        Err(format!(
            "is too long: at most {MAX_SECONDS} seconds (a day)"
        ))
    } else {
        Ok(Duration::from_secs_f64(secs))
    }
}

/// The diagnostic for a poor stop signal at `at`, if it is one: SIGSTOP is
/// an error, SIGKILL and signals ignored by default are warnings.
pub fn stop_signal_diagnostic(signal: Signal, at: Location) -> Option<Diagnostic> {
    let name = signal.as_str();
    let d = match crate::policy::stop_signal_problem(signal)? {
        StopSignalProblem::Freezes => Diagnostic::error(format!(
            "{name} cannot be a stop signal: it cannot be caught and only freezes the process"
        ))
        .help("use TERM, INT, QUIT or HUP (what the program handles), or KILL to kill it at once"),
        StopSignalProblem::Uncatchable => Diagnostic::warning(format!(
            "{name} cannot be caught: the process gets no chance to shut down cleanly, and the stop timeout has no effect"
        ))
        .help("prefer a signal the program handles, such as TERM or INT"),
        StopSignalProblem::IgnoredByDefault => Diagnostic::warning(format!(
            "{name} is ignored unless the program handles it: otherwise the process is killed with SIGKILL when the stop timeout ends"
        )),
    };
    Some(d.at(at))
}

/// `an integer`, `a string`.
fn a(type_str: &str) -> String {
    let article = if type_str.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_str}")
}

/// A value's type, and the string itself when it is one (`the string "10s"`).
fn describe_value(value: &DeValue<'_>) -> String {
    match value.as_str() {
        Some(s) => format!("the string \"{s}\""),
        None => a(value.type_str()),
    }
}

#[cfg(test)]
mod tests;
