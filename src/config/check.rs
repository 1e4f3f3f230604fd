//! Checking `procrun.toml`'s spanned document key by key: every problem is
//! collected, each located at its exact place.
//!
//! Just over 400 lines because the index that makes each location cheap
//! serves these checks alone.

use super::*;

/// The file's text, for turning byte spans into located diagnostics.
#[derive(Clone, Copy)]
pub(super) struct Source<'a> {
    pub(super) name: &'a str,
    pub(super) text: &'a str,
    pub(super) index: &'a Index,
}

/// Where each line starts, and how many chars come before every
/// [`Index::STEP`]th byte: a location is found in a binary search and a
/// short count, not by counting from the start of the file or of its line
/// again, so that a file of 100,000 sections, or a list of 1000 items on
/// one line, is checked in linear time.
#[derive(Debug)]
pub(super) struct Index {
    line_starts: Vec<usize>,
    chars_at_steps: Vec<usize>,
}

impl Index {
    const STEP: usize = 1024;

    pub(super) fn new(text: &str) -> Index {
        let bytes = text.as_bytes();
        let line_starts = std::iter::once(0)
            .chain(memchr::memchr_iter(b'\n', bytes).map(|i| i + 1))
            .collect();
        let mut chars_at_steps = vec![0];
        let mut chars = 0;
        for chunk in bytes.chunks(Self::STEP) {
            chars += char_starts(chunk);
            chars_at_steps.push(chars);
        }
        Index {
            line_starts,
            chars_at_steps,
        }
    }

    /// How many chars `text[..byte]` holds.
    fn chars_before(&self, text: &str, byte: usize) -> usize {
        let step = byte / Self::STEP;
        self.chars_at_steps[step] + char_starts(&text.as_bytes()[step * Self::STEP..byte])
    }
}

/// How many chars start in `bytes`.
fn char_starts(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| (b & 0xC0) != 0x80).count()
}

impl Source<'_> {
    /// The location of `span`, cut at the end of its first line.
    pub(super) fn at(&self, span: Range<usize>) -> Location {
        let text = self.text;
        let mut start = span.start.min(text.len());
        while !text.is_char_boundary(start) {
            start -= 1;
        }
        let starts = &self.index.line_starts;
        let line = starts.partition_point(|&s| s <= start).saturating_sub(1);
        let line_start = starts.get(line).copied().unwrap_or(0);
        let line_end = starts.get(line + 1).map_or(text.len(), |&next| next - 1);
        let line_text = text[line_start..line_end]
            .strip_suffix('\r')
            .unwrap_or(&text[line_start..line_end]);
        let end = span.end.clamp(start, line_start + line_text.len());
        let col = self.index.chars_before(text, start) - self.index.chars_before(text, line_start);
        Location::counted(
            self.name,
            line + 1,
            line_text,
            start - line_start,
            end - line_start,
            col,
        )
    }
}

/// The checking context: problems found so far.
pub(super) struct Cx<'a> {
    pub(super) src: Source<'a>,
    pub(super) errors: Vec<Diagnostic>,
    pub(super) warnings: Vec<Diagnostic>,
}

type Key<'i> = Spanned<std::borrow::Cow<'i, str>>;
pub(super) type Value<'i> = Spanned<DeValue<'i>>;

impl Cx<'_> {
    /// Whether as many errors as a file gets are found: checking stops
    /// there (see [`crate::diagnostic::MAX_ERRORS`]).
    pub(super) fn full(&self) -> bool {
        self.errors.len() >= crate::diagnostic::MAX_ERRORS
    }

    pub(super) fn error(&mut self, span: Range<usize>, message: String, help: Option<String>) {
        let d = Diagnostic::error(message).at(self.src.at(span));
        self.errors.push(match help {
            Some(h) => d.help(h),
            None => d,
        });
    }

    /// `value` as a table, or an error saying `key` must be one.
    pub(super) fn table<'v, 'i>(
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
    pub(super) fn patch(&mut self, table: &DeTable<'_>, what: &str) -> Patch {
        let mut patch = Patch::default();
        for (key, value) in table {
            if self.full() {
                break;
            }
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
                "tty" => patch.tty = self.boolean(name, value).map(|value| Set { value, at }),
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
                "ready" => patch.ready = self.ready(value).map(|value| Set { value, at }),
                "ready_timeout" => {
                    patch.ready_timeout = self.seconds(name, value).map(|value| Set { value, at });
                }
                "ready_interval" => {
                    patch.ready_interval = self.seconds(name, value).map(|value| Set { value, at });
                }
                "after" => patch.after = self.after(value).map(|value| Set { value, at }),
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

    pub(super) fn seconds(&mut self, key: &str, value: &Value<'_>) -> Option<Duration> {
        match seconds(value.get_ref()) {
            Ok(d) => Some(d),
            Err(message) => {
                let help = format!(
                    r#"write seconds, e.g. `{key} = 10`, or a string with a unit: "500ms", "1.5s", "2m""#
                );
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
