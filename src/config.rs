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

pub mod flags;
pub mod resolve;

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
];

/// Keys other runners have that procrun does not support yet: rejected, so
/// that nobody believes they took effect.
const UNSUPPORTED: &[&str] = &["tty", "ready", "after"];

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
    let bytes = match std::fs::read(&file.path) {
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
    let mut cx = Cx {
        src: Source {
            name: &source,
            text,
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
                let d = Diagnostic::error(format!("`{source}` is not valid TOML: {}", e.message()));
                match e.span() {
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
                for (name, value) in table {
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
            other
                if !value.get_ref().is_table()
                    && (KEYS.contains(&other) || UNSUPPORTED.contains(&other)) =>
            {
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
    if cx.errors.is_empty() {
        config.warnings = cx.warnings;
        Ok(config)
    } else {
        Err(cx.errors)
    }
}

/// The file's text, for turning byte spans into located diagnostics.
#[derive(Clone, Copy)]
struct Source<'a> {
    name: &'a str,
    text: &'a str,
}

impl Source<'_> {
    /// The location of `span`, cut at the end of its first line.
    fn at(&self, span: Range<usize>) -> Location {
        let text = self.text;
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[line_start..]
            .find('\n')
            .map_or(text.len(), |i| line_start + i);
        let line = text[line_start..line_end]
            .strip_suffix('\r')
            .unwrap_or(&text[line_start..line_end]);
        let line_no = text[..line_start].matches('\n').count() + 1;
        let end = span.end.clamp(start, line_start + line.len());
        Location::from_bytes(
            self.name,
            line_no,
            line,
            start - line_start,
            end - line_start,
        )
    }
}

/// The checking context: problems found so far.
struct Cx<'a> {
    src: Source<'a>,
    errors: Vec<Diagnostic>,
    warnings: Vec<Diagnostic>,
}

type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;
type Value<'i> = Spanned<DeValue<'i>>;

impl Cx<'_> {
    fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        let d = Diagnostic::error(message).at(self.src.at(span));
        self.errors.push(match help {
            Some(h) => d.help(h),
            None => d,
        });
    }

    /// `value` as a table, or an error saying `key` must be one.
    fn table<'v, 'i>(
        &mut self,
        key: &Key<'_>,
        value: &'v Value<'i>,
        what: &str,
    ) -> Option<&'v DeTable<'i>> {
        match value.get_ref().as_table() {
            Some(t) => Some(t),
            None => {
                self.error(
                    value.span(),
                    format!(
                        "`{}` must be a table (a `{what}` section), found {}",
                        key.get_ref(),
                        a(value.get_ref().type_str())
                    ),
                    None,
                );
                None
            }
        }
    }

    /// Checks the keys of one section.
    fn patch(&mut self, table: &DeTable<'_>, what: &str) -> Patch {
        let mut patch = Patch::default();
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            let at = self.src.at(value.span());
            match name {
                "restart" => {
                    patch.restart = self.restart(value).map(|value| Set { value, at });
                }
                "can_die" => {
                    patch.can_die = self.boolean(name, value).map(|value| Set { value, at })
                }
                "port" => patch.port = self.boolean(name, value).map(|value| Set { value, at }),
                "stop_signal" => {
                    patch.stop_signal = self.signal(value).map(|value| Set { value, at });
                }
                "stop_timeout" | "min_uptime" => {
                    let secs = self.seconds(name, value).map(|value| Set { value, at });
                    if name == "stop_timeout" {
                        patch.stop_timeout = secs;
                    } else {
                        patch.min_uptime = secs;
                    }
                }
                "max_restarts" => {
                    patch.max_restarts = self.max_restarts(value).map(|value| Set { value, at });
                }
                "backoff" => self.backoff(value, &mut patch),
                _ if UNSUPPORTED.contains(&name) => self.error(
                    key.span(),
                    format!("`{name}` is not supported yet"),
                    Some(format!(
                        "remove it from {what}: procrun would not act on it"
                    )),
                ),
                _ => {
                    let help = match suggest(name, KEYS) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("the keys are: {}", KEYS.join(", ")),
                    };
                    self.error(
                        key.span(),
                        format!("unknown key `{name}` in {what}"),
                        Some(help),
                    );
                }
            }
        }
        patch
    }

    fn restart(&mut self, value: &Value<'_>) -> Option<Restart> {
        let choices = r#"one of "no", "on-failure", "always""#;
        let Some(text) = value.get_ref().as_str() else {
            let help = match value.get_ref().as_bool() {
                Some(true) => r#"write `restart = "always"` (or "on-failure")"#.to_owned(),
                Some(false) => r#"write `restart = "no"`"#.to_owned(),
                None => format!("write {choices}"),
            };
            self.error(
                value.span(),
                format!(
                    "`restart` must be a string, found {}",
                    a(value.get_ref().type_str())
                ),
                Some(help),
            );
            return None;
        };
        match text {
            "no" => Some(Restart::No),
            "on-failure" => Some(Restart::OnFailure),
            "always" => Some(Restart::Always),
            _ => {
                let help = match suggest(text, RESTART_VALUES) {
                    Some(s) => format!("did you mean \"{s}\"? (`restart` is {choices})"),
                    None => format!("`restart` is {choices}"),
                };
                self.error(
                    value.span(),
                    format!("unknown restart value \"{text}\""),
                    Some(help),
                );
                None
            }
        }
    }

    fn boolean(&mut self, key: &str, value: &Value<'_>) -> Option<bool> {
        if let Some(b) = value.get_ref().as_bool() {
            return Some(b);
        }
        let help = match value.get_ref().as_str() {
            Some(s @ ("true" | "false")) => format!("write `{key} = {s}`, without quotes"),
            _ => format!("write `{key} = true` or `{key} = false`"),
        };
        self.error(
            value.span(),
            format!(
                "`{key}` must be true or false, found {}",
                a(value.get_ref().type_str())
            ),
            Some(help),
        );
        None
    }

    fn signal(&mut self, value: &Value<'_>) -> Option<Signal> {
        let parsed = match value.get_ref() {
            DeValue::String(s) => crate::policy::parse_signal(s),
            DeValue::Integer(i) => i64::from_str_radix(i.as_str(), i.radix())
                .ok()
                .map(|n| n.to_string())
                .ok_or_else(|| format!("`{i}` is not a signal"))
                .and_then(|n| crate::policy::parse_signal(&n)),
            other => Err(format!(
                "`stop_signal` must be a signal name or number, found {}",
                a(other.type_str())
            )),
        };
        let signal = match parsed {
            Ok(signal) => signal,
            Err(message) => {
                self.error(
                    value.span(),
                    message,
                    Some(r#"e.g. `stop_signal = "INT"` or `stop_signal = 2`"#.to_owned()),
                );
                return None;
            }
        };
        match stop_signal_diagnostic(signal, self.src.at(value.span())) {
            Some(d) if d.is_error() => {
                self.errors.push(d);
                None
            }
            Some(d) => {
                self.warnings.push(d);
                Some(signal)
            }
            None => Some(signal),
        }
    }

    fn seconds(&mut self, key: &str, value: &Value<'_>) -> Option<Duration> {
        match seconds(value.get_ref()) {
            Ok(d) => Some(d),
            Err(message) => {
                let help = match value.get_ref().as_str() {
                    Some(s) => match crate::cli::parse_seconds(s) {
                        Ok(d) => format!(
                            "write the number without quotes: `{key} = {}`",
                            d.as_secs_f64()
                        ),
                        Err(_) => format!("write a number of seconds, e.g. `{key} = 10`"),
                    },
                    None => format!("write a number of seconds, e.g. `{key} = 10`"),
                };
                self.error(value.span(), format!("`{key}` {message}"), Some(help));
                None
            }
        }
    }

    fn max_restarts(&mut self, value: &Value<'_>) -> Option<Option<u32>> {
        let help = r#"write a count, e.g. `max_restarts = 10`, or `max_restarts = "unlimited"`"#;
        match value.get_ref() {
            DeValue::String(s) if s.eq_ignore_ascii_case("unlimited") => Some(None),
            DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
                Ok(n) if n < 0 => {
                    self.error(
                        value.span(),
                        "`max_restarts` must not be negative".to_owned(),
                        Some(help.to_owned()),
                    );
                    None
                }
                Ok(n) => match u32::try_from(n) {
                    Ok(n) => Some(Some(n)),
                    Err(_) => {
                        self.error(
                            value.span(),
                            format!("`max_restarts` is too large (at most {})", u32::MAX),
                            Some(help.to_owned()),
                        );
                        None
                    }
                },
                Err(_) => {
                    self.error(
                        value.span(),
                        "`max_restarts` is too large".to_owned(),
                        Some(help.to_owned()),
                    );
                    None
                }
            },
            other => {
                self.error(
                    value.span(),
                    format!(
                        "`max_restarts` must be a whole number or \"unlimited\", found {}",
                        describe_value(other)
                    ),
                    Some(help.to_owned()),
                );
                None
            }
        }
    }

    fn backoff(&mut self, value: &Value<'_>, patch: &mut Patch) {
        let Some(table) = value.get_ref().as_table() else {
            self.error(
                value.span(),
                format!(
                    "`backoff` must be a table, found {}",
                    a(value.get_ref().type_str())
                ),
                Some("write `backoff = { initial = 1, max = 30 }` (seconds)".to_owned()),
            );
            return;
        };
        for (key, value) in table {
            let at = self.src.at(value.span());
            match key.get_ref().as_ref() {
                "initial" => {
                    patch.backoff_initial = self
                        .seconds("backoff.initial", value)
                        .map(|value| Set { value, at });
                }
                "max" => {
                    patch.backoff_max = self
                        .seconds("backoff.max", value)
                        .map(|value| Set { value, at });
                }
                other => {
                    let help = match suggest(other, &["initial", "max"]) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "`backoff` has the keys `initial` and `max`".to_owned(),
                    };
                    self.error(
                        key.span(),
                        format!("unknown key `{other}` in `backoff`"),
                        Some(help),
                    );
                }
            }
        }
        if let (Some(initial), Some(max)) = (&patch.backoff_initial, &patch.backoff_max)
            && max.value < initial.value
        {
            self.errors.push(
                Diagnostic::error(format!(
                    "`backoff.max` ({}) is below `backoff.initial` ({})",
                    crate::policy::format_seconds(max.value),
                    crate::policy::format_seconds(initial.value)
                ))
                .at(max.at.clone())
                .help("the wait starts at `initial` and doubles up to `max`: make `max` at least `initial`"),
            );
        }
    }
}

/// A number of seconds: an integer or a float, finite, from 0 to a day.
fn seconds(value: &DeValue<'_>) -> Result<Duration, String> {
    let secs = match value {
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
                "must be a number of seconds, found {}",
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

/// The candidate closest to `word`, if it is close enough to be a typo.
pub fn suggest<'c>(word: &str, candidates: &[&'c str]) -> Option<&'c str> {
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
mod tests;
