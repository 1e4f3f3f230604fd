//! The policy flags, for the common cases without a `procrun.toml`:
//! `--can-die web,worker`, `--any-can-die`, `--auto-restart worker|all`,
//! `--stop-signal web=INT,worker=QUIT` and `--tty [web,worker|all]`. Each value is parsed here and its
//! items are located in the flag's text, as the formation's are; whether the
//! names are Procfile entries is checked by [`super::resolve`].

use nix::sys::signal::Signal;

use crate::cli::PolicyArgs;
use crate::diagnostic::{Diagnostic, Location};

use super::Set;

/// The name that stands for every process type.
pub const ALL: &str = "all";

/// A process type named on the command line, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Named {
    /// The name (possibly `all`).
    pub name: String,
    /// Where it is written.
    pub at: Location,
}

/// The parsed policy flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `--can-die`.
    pub can_die: Vec<Named>,
    /// `--any-can-die`.
    pub any_can_die: bool,
    /// `--auto-restart`.
    pub auto_restart: Vec<Named>,
    /// `--stop-signal`: each type with its signal.
    pub stop_signal: Vec<(Named, Set<Signal>)>,
    /// `--tty` (`PROCRUN_TTY`).
    pub tty: Vec<Named>,
    /// Non-fatal findings (e.g. `--stop-signal web=KILL`).
    pub warnings: Vec<Diagnostic>,
}

/// One comma-separated item of a flag's value: its text and where it
/// starts, in bytes and in chars.
struct Item<'a> {
    text: &'a str,
    byte: usize,
    start: usize,
}

impl Item<'_> {
    /// The location of `part`, a slice of this item's text, in `whole` (the
    /// flag's value), counted from the item's start: never from the
    /// value's start again, so a value of 10,000 items is checked in linear
    /// time.
    fn at(&self, flag: &str, whole: &str, part: &str) -> Location {
        let offset = (part.as_ptr() as usize).saturating_sub(self.text.as_ptr() as usize);
        let offset = offset.min(self.text.len());
        let byte = self.byte + offset;
        let start = self.start + self.text[..offset].chars().count();
        let len = part.len().max(1);
        Location::counted(flag, 1, whole, byte, byte + len, start)
    }
}

/// Splits `text` at commas, trimming blanks; an empty item is an error
/// (a blank value has no items).
fn items<'a>(flag: &str, text: &'a str, errors: &mut Vec<Diagnostic>) -> Vec<Item<'a>> {
    let mut out = Vec::new();
    if text.trim().is_empty() {
        return out;
    }
    let mut offset = 0;
    let mut chars = 0;
    for raw in text.split(',') {
        let lead = raw.len() - raw.trim_start().len();
        let start_byte = offset + lead;
        let start = chars + lead;
        offset += raw.len() + 1;
        chars += raw.chars().count() + 1;
        let item = raw.trim();
        if item.is_empty() {
            errors.push(
                Diagnostic::error(format!("empty item in {flag}"))
                    .at(Location::counted(
                        flag,
                        1,
                        text,
                        start_byte,
                        start_byte + 1,
                        start,
                    ))
                    .help("separate process types with single commas, e.g. `web,worker`"),
            );
            continue;
        }
        out.push(Item {
            text: item,
            byte: start_byte,
            start,
        });
    }
    out
}

/// Parses the policy flags; every problem is reported.
pub fn parse(args: &PolicyArgs) -> Result<Flags, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut flags = Flags {
        any_can_die: args.any_can_die,
        ..Flags::default()
    };
    let names = |flag: &str, values: &[String], errors: &mut Vec<Diagnostic>| {
        let mut out = Vec::new();
        for text in values {
            for item in items(flag, text, errors) {
                let at = item.at(flag, text, item.text);
                if item.text.chars().all(crate::procfile::is_name_char) {
                    out.push(Named {
                        name: item.text.to_owned(),
                        at,
                    });
                } else {
                    errors.push(
                        Diagnostic::error(format!(
                            "`{}` is not a process type name",
                            item.text
                        ))
                        .at(at)
                        .help(format!(
                            "{flag} takes process types separated by commas, e.g. `web,worker`, or `all`"
                        )),
                    );
                }
            }
        }
        out
    };
    flags.can_die = names("--can-die", &args.can_die, &mut errors);
    flags.auto_restart = names("--auto-restart", &args.auto_restart, &mut errors);
    // PROCRUN_TTY=1 reads as a switch: the usual words for yes mean every
    // type, those for no mean none (a type named `1` needs `--tty=1,…`
    // with another item, which nobody writes).
    let tty: Vec<String> = args
        .tty
        .iter()
        .filter(|v| !is_no(v))
        .map(|v| if is_yes(v) { ALL.to_owned() } else { v.clone() })
        .collect();
    flags.tty = names("--tty", &tty, &mut errors);

    let flag = "--stop-signal";
    for text in &args.stop_signal {
        for item in items(flag, text, &mut errors) {
            let whole = item.at(flag, text, item.text);
            let Some((name, signal)) = item.text.split_once('=') else {
                let help = if crate::policy::parse_signal(item.text).is_ok() {
                    format!(
                        "name the process type: `web={0}`, or `all={0}` for every type",
                        item.text
                    )
                } else {
                    "write `TYPE=SIGNAL` items separated by commas, e.g. `web=INT,worker=QUIT`"
                        .to_owned()
                };
                errors.push(
                    Diagnostic::error(format!("expected `TYPE=SIGNAL`, found `{}`", item.text))
                        .at(whole)
                        .help(help),
                );
                continue;
            };
            let name_trimmed = name.trim();
            let name_at = item.at(flag, text, name_trimmed);
            let signal_trimmed = signal.trim();
            let signal_at = item.at(flag, text, signal_trimmed);
            if name_trimmed.is_empty() || !name_trimmed.chars().all(crate::procfile::is_name_char) {
                errors.push(
                    Diagnostic::error(format!("`{name_trimmed}` is not a process type name"))
                        .at(name_at.clone())
                        .help("write `TYPE=SIGNAL`, e.g. `web=INT`, or `all=INT` for every type"),
                );
            }
            let parsed = match crate::policy::parse_signal(signal_trimmed) {
                Ok(signal) => Some(signal),
                Err(message) => {
                    errors.push(Diagnostic::error(message).at(signal_at.clone()));
                    None
                }
            };
            if let Some(signal) = parsed {
                match super::stop_signal_diagnostic(signal, signal_at.clone()) {
                    Some(d) if d.is_error() => errors.push(d),
                    found => {
                        flags.warnings.extend(found);
                        flags.stop_signal.push((
                            Named {
                                name: name_trimmed.to_owned(),
                                at: name_at,
                            },
                            Set {
                                value: signal,
                                at: signal_at,
                            },
                        ));
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(flags)
    } else {
        Err(errors)
    }
}

/// `1`, `true`, `yes`, `on` (any case).
fn is_yes(text: &str) -> bool {
    ["1", "true", "yes", "on"]
        .iter()
        .any(|w| text.trim().eq_ignore_ascii_case(w))
}

/// `0`, `false`, `no`, `off` (any case).
fn is_no(text: &str) -> bool {
    ["0", "false", "no", "off"]
        .iter()
        .any(|w| text.trim().eq_ignore_ascii_case(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(can_die: &[&str], auto: &[&str], stop: &[&str]) -> PolicyArgs {
        let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect();
        PolicyArgs {
            can_die: v(can_die),
            any_can_die: false,
            auto_restart: v(auto),
            stop_signal: v(stop),
            tty: Vec::new(),
        }
    }

    #[test]
    fn tty_takes_names_all_or_a_switch_word() {
        let tty = |values: &[&str]| {
            let a = PolicyArgs {
                tty: values.iter().map(|s| (*s).to_owned()).collect(),
                ..args(&[], &[], &[])
            };
            parse(&a)
                .map(|f| f.tty.into_iter().map(|n| n.name).collect::<Vec<_>>())
                .map_err(|e| e[0].message.clone())
        };
        assert_eq!(
            tty(&["web, worker"]),
            Ok(vec!["web".into(), "worker".into()])
        );
        assert_eq!(tty(&["all"]), Ok(vec![ALL.into()]));
        assert_eq!(tty(&["1"]), Ok(vec![ALL.into()]));
        assert_eq!(tty(&["TRUE"]), Ok(vec![ALL.into()]));
        assert_eq!(tty(&["0"]), Ok(vec![]));
        assert_eq!(tty(&["off"]), Ok(vec![]));
        assert_eq!(
            tty(&["web.1"]),
            Err("`web.1` is not a process type name".into())
        );
    }

    #[test]
    fn names_and_signals_are_located() {
        let f = parse(&args(
            &["web, worker", "clock"],
            &["all"],
            &["web=INT, worker = sigquit"],
        ))
        .expect("parses");
        let names: Vec<_> = f.can_die.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["web", "worker", "clock"]);
        assert_eq!((f.can_die[1].at.col, f.can_die[1].at.width), (6, 6));
        assert_eq!(f.can_die[2].at.text, "clock");
        assert_eq!(f.auto_restart[0].name, ALL);
        let (name, signal) = &f.stop_signal[1];
        assert_eq!(name.name, "worker");
        assert_eq!((name.at.col, name.at.width), (10, 6));
        assert_eq!(signal.value, Signal::SIGQUIT);
        assert_eq!((signal.at.col, signal.at.width), (19, 7));
        assert!(f.warnings.is_empty());
    }

    #[test]
    fn blank_values_name_nothing() {
        let f = parse(&args(&[""], &[" "], &[""])).expect("parses");
        assert_eq!(f, Flags::default());
    }

    #[test]
    fn every_problem_is_reported() {
        let e = parse(&args(
            &["web,,worker", "w.b"],
            &[],
            &["INT", "web=TERMINATE", "=INT", "worker=STOP"],
        ))
        .expect_err("invalid");
        let messages: Vec<_> = e.iter().map(|d| d.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "empty item in --can-die",
                "`w.b` is not a process type name",
                "expected `TYPE=SIGNAL`, found `INT`",
                "`TERMINATE` is not a signal; write a name such as TERM, INT, QUIT or HUP, or a number",
                "`` is not a process type name",
                "SIGSTOP cannot be a stop signal: it cannot be caught and only freezes the process",
            ]
        );
        assert_eq!(
            e[2].help.as_deref(),
            Some("name the process type: `web=INT`, or `all=INT` for every type")
        );
    }

    #[test]
    fn kill_is_allowed_with_a_warning() {
        let f = parse(&args(&[], &[], &["web=9"])).expect("parses");
        assert_eq!(f.stop_signal[0].1.value, Signal::SIGKILL);
        assert_eq!(f.warnings.len(), 1);
        assert!(
            f.warnings[0]
                .message
                .starts_with("SIGKILL cannot be caught")
        );
    }
}
