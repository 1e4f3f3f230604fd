//! Dev/prod parity: what each format does with a process type's
//! [`Policy`] and [`Readiness`](crate::readiness::Readiness), and the
//! warning for what its engine cannot carry.
//!
//! Every format maps what its engine supports; each key it cannot map is
//! named in one warning per type (never dropped silently), which says what
//! the engine will do instead.

use std::time::Duration;

use crate::diagnostic::Diagnostic;
use crate::plan::{Plan, ProcessType};
use crate::policy::{Backoff, DEFAULT_STOP_TIMEOUT, Policy, Restart};
use crate::readiness::{Check, DEFAULT_READY_TIMEOUT, HttpTarget};

/// A key of a type's policy or readiness with its value, as `procrun.toml`
/// writes it.
pub fn key(t: &ProcessType, name: Key) -> String {
    let policy = &t.policy;
    match name {
        Key::Ready => format!("ready = {}", ready_value(&t.readiness.check)),
        Key::ReadyTimeout => format!("ready_timeout = {}", toml_secs(t.readiness.timeout)),
        Key::After => {
            let names: Vec<String> = t.readiness.after.iter().map(|n| toml_string(n)).collect();
            format!("after = [{}]", names.join(", "))
        }
        Key::Restart => format!("restart = \"{}\"", policy.restart.as_str()),
        Key::CanDie => format!("can_die = {}", policy.can_die),
        Key::StopSignal => format!(
            "stop_signal = \"{}\"",
            policy.stop_signal.as_str().trim_start_matches("SIG")
        ),
        Key::StopTimeout => format!("stop_timeout = {}", toml_secs(policy.stop_timeout)),
        Key::Backoff => format!(
            "backoff = {{ initial = {}, max = {} }}",
            toml_secs(policy.backoff.initial),
            toml_secs(policy.backoff.max)
        ),
        Key::MaxRestarts => match policy.max_restarts {
            Some(n) => format!("max_restarts = {n}"),
            None => "max_restarts = \"unlimited\"".to_owned(),
        },
        Key::MinUptime => format!("min_uptime = {}", toml_secs(policy.min_uptime)),
    }
}

/// The keys of a [`Policy`] a warning can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    /// `restart`.
    Restart,
    /// `can_die`.
    CanDie,
    /// `stop_signal`.
    StopSignal,
    /// `stop_timeout`.
    StopTimeout,
    /// `backoff` (initial and max).
    Backoff,
    /// `max_restarts`.
    MaxRestarts,
    /// `min_uptime`.
    MinUptime,
    /// `ready` (the check).
    Ready,
    /// `ready_timeout`.
    ReadyTimeout,
    /// `after`.
    After,
}

/// The value of `ready =` as `procrun.toml` writes it: `"port"`,
/// `{ http = "/health" }`.
fn ready_value(check: &Check) -> String {
    match check {
        Check::Started => "(none)".to_owned(),
        Check::Port(None) => "\"port\"".to_owned(),
        Check::Port(Some(p)) => format!("{{ port = {p} }}"),
        Check::Http(t) => format!("{{ http = {} }}", toml_string(t)),
        Check::Log(t) => format!("{{ log = {} }}", toml_string(t)),
        Check::LogRegex(t) => format!("{{ log_regex = {} }}", toml_string(t)),
        Check::Exec(t) => format!("{{ exec = {} }}", toml_string(t)),
    }
}

/// A TOML basic string: what a warning shows of a user's text, with every
/// control character escaped.
fn toml_string(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if super::text::hostile(c) && (c as u32) > 0xFFFF => {
                let _ = write!(out, "\\U{:08X}", c as u32);
            }
            c if super::text::hostile(c) => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The warning that `format` cannot carry `keys` of type `t`; `instead`
/// says what the engine does.
pub fn gap(format: &str, t: &ProcessType, keys: &[Key], instead: &str) -> Option<Diagnostic> {
    if keys.is_empty() {
        return None;
    }
    let named: Vec<String> = keys.iter().map(|k| key(t, *k)).collect();
    Some(Diagnostic::warning(format!(
        "{format} cannot carry `{}`'s {}: {instead}",
        t.name,
        named.join(", ")
    )))
}

/// The readiness keys a warning names for a type with a check: `ready`,
/// and `ready_timeout` when it is not the default.
pub fn ready_keys(t: &ProcessType) -> Vec<Key> {
    if t.readiness.check == Check::Started {
        return Vec::new();
    }
    let mut keys = vec![Key::Ready];
    if t.readiness.timeout != DEFAULT_READY_TIMEOUT {
        keys.push(Key::ReadyTimeout);
    }
    keys
}

/// The types that `t` starts after and that run in this export: one
/// without instances holds nobody up, as under `procrun start`.
pub fn dependencies<'a>(plan: &'a Plan, t: &ProcessType) -> Vec<&'a ProcessType> {
    t.readiness
        .after
        .iter()
        .filter_map(|name| plan.types.iter().find(|d| d.name == *name))
        .filter(|d| d.count > 0)
        .collect()
}

/// Whether the types that start after `t` wait for it to exit with code 0
/// rather than to be ready: it can die, so it is a one-shot.
pub fn one_shot(t: &ProcessType) -> bool {
    t.policy.can_die
}

/// Whether a running type starts after `t`.
pub fn waited_for(plan: &Plan, t: &ProcessType) -> bool {
    plan.types
        .iter()
        .filter(|d| d.count > 0)
        .any(|d| d.readiness.after.contains(&t.name))
}

/// Each running type's level in the start order (0: it starts after
/// nothing that runs), in the plan's order.
pub fn start_levels(plan: &Plan) -> Vec<(&ProcessType, usize)> {
    let running: Vec<&ProcessType> = plan.types.iter().filter(|t| t.count > 0).collect();
    let types: Vec<(&str, &[String])> = running
        .iter()
        .map(|t| (t.name.as_str(), t.readiness.after.as_slice()))
        .collect();
    let levels = crate::readiness::levels(&types);
    running
        .into_iter()
        .map(|t| {
            let level = levels
                .iter()
                .position(|names| names.contains(&t.name.as_str()))
                .unwrap_or(0);
            (t, level)
        })
        .collect()
}

/// The port `ready = "port"` and a path-only http check probe for a type
/// whose instances all get its first port (a container's replicas): the
/// command's own `PORT=` if it sets one, as under `procrun start`.
pub fn probe_port(t: &ProcessType) -> u16 {
    crate::readiness::own_port_of(&t.command).unwrap_or(t.port as u16)
}

/// The target of a type's http check (checked when `procrun.toml` was
/// read).
pub fn http_target(t: &ProcessType) -> Option<HttpTarget> {
    match &t.readiness.check {
        Check::Http(target) => HttpTarget::parse(target, probe_port(t)).ok(),
        _ => None,
    }
}

/// The warnings of an engine that runs no readiness checks and starts
/// everything at once or only in order: one for a type's `ready` (what
/// `ready` says happens instead) and one for its `after`, when a type it
/// names runs (what `after` says).
pub fn unchecked(
    format: &str,
    plan: &Plan,
    t: &ProcessType,
    ready: &str,
    after: &str,
) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    found.extend(gap(format, t, &ready_keys(t), ready));
    if !dependencies(plan, t).is_empty() {
        found.extend(gap(format, t, &[Key::After], after));
    }
    found
}

/// An error for every `exec` check (a command the format writes) with a
/// NUL byte, which no process can receive. Every other character is
/// escaped by the format's quoting (`procrun.toml` refuses NUL too; a plan
/// built in code may still hold one).
pub fn ready_commands(plan: &Plan, format: &str) -> Vec<Diagnostic> {
    plan.types
        .iter()
        .filter(|t| matches!(&t.readiness.check, Check::Exec(c) if c.contains('\0')))
        .map(|t| {
            Diagnostic::error(format!(
                "the `ready` command of `{}` contains a NUL byte, which no process can receive, so the {format} export cannot write it",
                t.name
            ))
        })
        .collect()
}

/// The warning for an engine that always stops with SIGTERM, when the
/// type's stop signal is another one; `how` says how the engine stops.
pub fn sigterm_only(format: &str, t: &ProcessType, how: &str) -> Option<Diagnostic> {
    if t.policy.stop_signal == nix::sys::signal::Signal::SIGTERM {
        return None;
    }
    gap(format, t, &[Key::StopSignal], how)
}

/// Whether the type's instances are ever restarted: the restart keys
/// (backoff, limits) only matter then.
pub fn restarts(policy: &Policy) -> bool {
    policy.restart != Restart::No
}

/// Whether the backoff grows (procrun doubles the wait up to `max`).
pub fn backoff_grows(backoff: &Backoff) -> bool {
    backoff.max > backoff.initial
}

/// Whether the stop timeout was changed from the default (formats without
/// one only warn then).
pub fn custom_stop_timeout(policy: &Policy) -> bool {
    policy.stop_timeout != DEFAULT_STOP_TIMEOUT
}

/// Whole seconds, rounded up (settings that take an integer).
pub fn secs_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// Seconds as `procrun.toml` writes them: `7`, `1.5`.
pub fn toml_secs(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        d.as_secs_f64().to_string()
    }
}

/// `1s`, `1500ms`, `2m`: as `humantime` prints it, for messages.
pub fn human(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_secs() {
        let mut t = ProcessType {
            name: "db".into(),
            command: "d".into(),
            index: 0,
            count: 1,
            port: 5000,
            policy: Policy::default(),
            readiness: crate::readiness::Readiness::default(),
        };
        assert_eq!(key(&t, Key::Restart), "restart = \"no\"");
        assert_eq!(key(&t, Key::StopSignal), "stop_signal = \"TERM\"");
        assert_eq!(key(&t, Key::MaxRestarts), "max_restarts = 10");
        assert_eq!(key(&t, Key::Backoff), "backoff = { initial = 1, max = 30 }");
        t.readiness.check = Check::Port(None);
        assert_eq!(key(&t, Key::Ready), "ready = \"port\"");
        t.readiness.check = Check::Log("a \"b\"\\\n\u{1b}\u{1fffe}".into());
        assert_eq!(
            key(&t, Key::Ready),
            r#"ready = { log = "a \"b\"\\\n\u001B\U0001FFFE" }"#
        );
        t.readiness.after = vec!["a".into(), "b".into()];
        assert_eq!(key(&t, Key::After), r#"after = ["a", "b"]"#);
        assert_eq!(key(&t, Key::ReadyTimeout), "ready_timeout = 60");
        assert_eq!(toml_secs(Duration::from_millis(1500)), "1.5");
        assert_eq!(secs_up(Duration::from_millis(1500)), 2);
        assert_eq!(secs_up(Duration::from_secs(3)), 3);
        assert_eq!(secs_up(Duration::ZERO), 0);
    }
}
