//! Resolution: one [`Policy`] per Procfile entry, from `procrun.toml`, the
//! policy flags and `-t/--timeout`.
//!
//! For each setting the most specific source wins, and between sources of
//! the same reach the command line wins over the file:
//!
//! 1. the flags naming the type (`--can-die`, `--auto-restart`,
//!    `--stop-signal web=…`, `--tty`), then the same flags with `all`
//!    (`--any-can-die`, `--tty` alone);
//! 2. `[process.NAME]`;
//! 3. `-t/--timeout` (only `stop_timeout`);
//! 4. `[defaults]`;
//! 5. `.foreman`'s `timeout` (only `stop_timeout`);
//! 6. procrun's defaults ([`Policy::default`]).

use std::time::Duration;

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Location};
use crate::policy::{Policy, Restart};
use crate::procfile::Procfile;

use super::flags::{ALL, Flags, Named};
use super::{Config, Patch, Set};

/// Each type's policy, and what was found on the way.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// Type name → policy, in Procfile order, for every entry.
    pub policies: IndexMap<String, Policy>,
    /// Non-fatal findings.
    pub warnings: Vec<Diagnostic>,
}

/// Resolves every entry's policy. Sections and flags naming no entry are
/// errors, and so is a backoff whose `max` ends up below its `initial`.
pub fn resolve(
    procfile: &Procfile,
    config: Option<&Config>,
    flags: &Flags,
    timeout: Option<Duration>,
) -> Result<Resolved, Vec<Diagnostic>> {
    resolve_with(procfile, config, flags, timeout, None)
}

/// [`resolve`] with `fallback`, a default stop timeout below `[defaults]`
/// (`.foreman`'s `timeout`): between 4 and 5 in the order above.
pub fn resolve_with(
    procfile: &Procfile,
    config: Option<&Config>,
    flags: &Flags,
    timeout: Option<Duration>,
    fallback: Option<Duration>,
) -> Result<Resolved, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let pf_source = procfile.path.display().to_string();
    let help = |name: &str| crate::plan::unknown_type_help(procfile, name);

    let empty = Patch::default();
    let defaults = config.map_or(&empty, |c| &c.defaults);
    if let Some(config) = config {
        for section in &config.processes {
            if procfile.get(&section.name).is_none() {
                errors.push(
                    Diagnostic::error(format!(
                        "`[process.{}]` names no process type of `{pf_source}`",
                        section.name
                    ))
                    .at(section.at.clone())
                    .help(help(&section.name)),
                );
            }
        }
    }
    let stop_signal_names = flags.stop_signal.iter().map(|(n, _)| n);
    for (flag, named) in flags
        .can_die
        .iter()
        .map(|n| ("--can-die", n))
        .chain(flags.auto_restart.iter().map(|n| ("--auto-restart", n)))
        .chain(stop_signal_names.map(|n| ("--stop-signal", n)))
        .chain(flags.tty.iter().map(|n| ("--tty", n)))
    {
        if named.name != ALL && procfile.get(&named.name).is_none() {
            errors.push(
                Diagnostic::error(format!("unknown process type `{}` in {flag}", named.name))
                    .at(named.at.clone())
                    .help(help(&named.name)),
            );
        }
    }

    // [defaults] alone, checked once rather than for every type using it.
    let mut base = Policy::default();
    if let Some(t) = fallback {
        base.stop_timeout = t;
    }
    apply(&mut base, defaults);
    errors.extend(backoff_error(&base, defaults, None));

    let mut policies = IndexMap::new();
    for entry in &procfile.entries {
        let section = config.and_then(|c| c.processes.iter().find(|s| s.name == entry.name));
        let mut policy = base;
        if let Some(t) = timeout {
            policy.stop_timeout = t;
        }
        if let Some(section) = section {
            apply(&mut policy, &section.patch);
            errors.extend(backoff_error(&policy, &section.patch, Some(defaults)));
        }
        let named = |list: &[Named]| list.iter().any(|n| n.name == entry.name || n.name == ALL);
        if flags.any_can_die || named(&flags.can_die) {
            policy.can_die = true;
        }
        if named(&flags.auto_restart) {
            policy.restart = Restart::Always;
        }
        if named(&flags.tty) {
            policy.tty = true;
        }
        let by_name = |name: &str| {
            flags
                .stop_signal
                .iter()
                .rev()
                .find(|(n, _)| n.name == name)
                .map(|(_, s)| s.value)
        };
        if let Some(signal) = by_name(&entry.name).or_else(|| by_name(ALL)) {
            policy.stop_signal = signal;
        }
        if let Some(section) = section
            && policy.restart == Restart::No
            && let Some((key, at)) = section.patch.restart_tuning()
        {
            warnings.push(
                Diagnostic::warning(format!(
                    "`{key}` has no effect: `{}` is never restarted (restart = \"no\")",
                    entry.name
                ))
                .at(at.clone())
                .help("set `restart = \"on-failure\"` or `\"always\"` in its section, or remove the key"),
            );
        }
        if policy.restart != Restart::No
            && policy.max_restarts.is_none()
            && policy.backoff.max.is_zero()
        {
            let d = Diagnostic::warning(format!(
                "`{}` restarts without a pause and without a limit: a failing command would be restarted in a tight loop",
                entry.name
            ))
            .help("give `backoff.max` a few seconds, or a `max_restarts` count");
            let at = section
                .and_then(|s| s.patch.backoff_max.as_ref())
                .or(defaults.backoff_max.as_ref())
                .map(|s| s.at.clone());
            warnings.push(match at {
                Some(at) => d.at(at),
                None => d,
            });
        }
        policies.insert(entry.name.clone(), policy);
    }

    if let Some((key, at)) = defaults.restart_tuning()
        && policies.values().all(|p| p.restart == Restart::No)
    {
        warnings.push(
            Diagnostic::warning(format!(
                "`{key}` in [defaults] has no effect: no process type is restarted"
            ))
            .at(at.clone())
            .help("set `restart` in [defaults] or in a [process.NAME] section, or remove the key"),
        );
    }

    if errors.is_empty() {
        Ok(Resolved { policies, warnings })
    } else {
        // The same [defaults] problem is found once; a section that also
        // sets backoff may repeat it.
        errors.dedup();
        Err(errors)
    }
}

/// Applies the settings a section gives.
fn apply(policy: &mut Policy, patch: &Patch) {
    fn set<T: Copy>(field: &mut T, given: &Option<Set<T>>) {
        if let Some(s) = given {
            *field = s.value;
        }
    }
    set(&mut policy.restart, &patch.restart);
    set(&mut policy.can_die, &patch.can_die);
    set(&mut policy.stop_signal, &patch.stop_signal);
    set(&mut policy.stop_timeout, &patch.stop_timeout);
    set(&mut policy.backoff.initial, &patch.backoff_initial);
    set(&mut policy.backoff.max, &patch.backoff_max);
    set(&mut policy.max_restarts, &patch.max_restarts);
    set(&mut policy.min_uptime, &patch.min_uptime);
    set(&mut policy.port, &patch.port);
    set(&mut policy.tty, &patch.tty);
}

/// The error when `policy`'s backoff max is below its initial wait because
/// of a backoff key of `patch` alone (both keys in one table were checked
/// when the file was read). `defaults` is `[defaults]` when `patch` is a
/// type's section: it may have set the other value.
fn backoff_error(policy: &Policy, patch: &Patch, defaults: Option<&Patch>) -> Option<Diagnostic> {
    let b = policy.backoff;
    if b.max >= b.initial {
        return None;
    }
    let from = |given: bool| {
        if given {
            "from [defaults]"
        } else {
            "the default"
        }
    };
    let secs = crate::policy::format_seconds;
    let (message, at): (String, &Location) = match (&patch.backoff_initial, &patch.backoff_max) {
        (Some(initial), None) => (
            format!(
                "`backoff.initial` ({}) is above `backoff.max` ({}, {})",
                secs(b.initial),
                secs(b.max),
                from(defaults.is_some_and(|d| d.backoff_max.is_some()))
            ),
            &initial.at,
        ),
        (None, Some(max)) => (
            format!(
                "`backoff.max` ({}) is below `backoff.initial` ({}, {})",
                secs(b.max),
                secs(b.initial),
                from(defaults.is_some_and(|d| d.backoff_initial.is_some()))
            ),
            &max.at,
        ),
        _ => return None,
    };
    Some(
        Diagnostic::error(message)
            .at(at.clone())
            .help("the wait starts at `initial` and doubles up to `max`: set both, e.g. `backoff = { initial = 60, max = 60 }`"),
    )
}
