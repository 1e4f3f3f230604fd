//! Dev/prod parity: what each format does with a process type's
//! [`Policy`], and the warning for what its engine cannot carry.
//!
//! Every format maps what its engine supports; each key it cannot map is
//! named in one warning per type (never dropped silently), which says what
//! the engine will do instead.

use std::time::Duration;

use crate::diagnostic::Diagnostic;
use crate::plan::ProcessType;
use crate::policy::{Backoff, DEFAULT_STOP_TIMEOUT, Policy, Restart};

/// A key of a type's policy with its value, as `procrun.toml` writes it.
pub fn key(policy: &Policy, name: Key) -> String {
    match name {
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
}

/// The warning that `format` cannot carry `keys` of type `t`; `instead`
/// says what the engine does.
pub fn gap(format: &str, t: &ProcessType, keys: &[Key], instead: &str) -> Option<Diagnostic> {
    if keys.is_empty() {
        return None;
    }
    let named: Vec<String> = keys.iter().map(|k| key(&t.policy, *k)).collect();
    Some(Diagnostic::warning(format!(
        "{format} cannot carry `{}`'s {}: {instead}",
        t.name,
        named.join(", ")
    )))
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
        let p = Policy::default();
        assert_eq!(key(&p, Key::Restart), "restart = \"no\"");
        assert_eq!(key(&p, Key::StopSignal), "stop_signal = \"TERM\"");
        assert_eq!(key(&p, Key::MaxRestarts), "max_restarts = 10");
        assert_eq!(key(&p, Key::Backoff), "backoff = { initial = 1, max = 30 }");
        assert_eq!(toml_secs(Duration::from_millis(1500)), "1.5");
        assert_eq!(secs_up(Duration::from_millis(1500)), 2);
        assert_eq!(secs_up(Duration::from_secs(3)), 3);
        assert_eq!(secs_up(Duration::ZERO), 0);
    }
}
