//! systemd units: `APP.target` wants one `APP-TYPE.target` per process type,
//! which wants one `APP-TYPE-N.service` per instance.
//!
//! Quoting (systemd.syntax(7), systemd.service(5)):
//! - every value goes through specifier expansion, so `%` is written `%%`;
//! - `Environment="K=V"` is one double-quoted word with C-style escapes
//!   (`\"`, `\\`, `\n`, `\xNN`); `$` has no meaning there;
//! - `ExecStart=` splits words with the same quoting, and replaces `$NAME`
//!   and `${NAME}` itself, so a `$` for the shell is written `$$`.

use std::fmt::Write as _;
use std::time::Duration;

use super::parity::{self, Key};
use super::quote::shell_script;
use super::{ExportFile, ExportOptions, Format, GENERATED, SharedOption, Support};
use crate::diagnostic::Diagnostic;
use crate::plan::{Plan, ProcessType};
use crate::policy::{Policy, Restart};

/// The systemd format.
#[derive(Clone, Copy, Debug)]
pub struct Systemd;

impl Format for Systemd {
    fn check(&self, plan: &Plan, options: &ExportOptions) -> Vec<Diagnostic> {
        // systemd ignores (with a warning) an `Environment=` whose name is
        // not a shell variable name.
        let mut found = super::names::variable_names(plan, "systemd");
        found.extend(super::text::values(
            plan,
            "systemd",
            super::text::noncharacter,
            "systemd ignores a value that is not valid Unicode text",
        ));
        found.extend(super::text::commands(
            plan,
            "systemd",
            super::text::noncharacter,
        ));
        // WorkingDirectory= is written as it is: a trailing backslash would
        // join the next line, blanks at either end are stripped.
        let root = plan.root.display().to_string();
        if root.ends_with(['\\', ' ', '\t'])
            || root.starts_with([' ', '\t'])
            || root.chars().any(super::text::noncharacter)
        {
            found.push(Diagnostic::error(format!(
                "the app root `{root}` ends in a backslash or a blank, or holds a noncharacter, which a systemd unit cannot hold"
            )));
        }
        for (key, value) in plan.env.pairs() {
            if quote(&format!("{key}={value}")).len() + "Environment=".len() >= LINE_MAX {
                found.push(Diagnostic::error(format!(
                    "the value of {key} is too long for systemd: a unit file line holds less than 1 MiB"
                )));
            }
        }
        for t in &plan.types {
            if quote(&shell_script(&t.command)).len() + "ExecStart=/bin/sh -c ".len() >= LINE_MAX {
                found.push(Diagnostic::error(format!(
                    "the command of `{}` is too long for systemd: a unit file line holds less than 1 MiB",
                    t.name
                )));
            }
        }
        for t in plan.types.iter().filter(|t| t.count > 0) {
            found.extend(readiness_gaps(plan, t));
            let p = &t.policy;
            if parity::restarts(p) && parity::backoff_grows(&p.backoff) {
                found.extend(parity::gap(
                    "systemd",
                    t,
                    &[Key::Backoff],
                    &format!(
                        "its units wait RestartSec={} before every restart (a growing delay needs RestartSteps=/RestartMaxDelaySec=, systemd 254 or later)",
                        time_span(p.backoff.initial)
                    ),
                ));
            }
        }
        if !options.user_units && USER_UNIT_FOLDERS.iter().any(|f| options.writes_into(f)) {
            found.push(
                Diagnostic::warning(format!(
                    "`{}` holds user units, but these are system units (WantedBy=multi-user.target, which no user manager reaches)",
                    options.output_dir.display()
                ))
                .help("add --user-units"),
            );
        }
        if options.user_units && options.writes_into(SYSTEM_UNIT_FOLDER) {
            found.push(
                Diagnostic::warning(format!(
                    "`{SYSTEM_UNIT_FOLDER}` holds system units, but --user-units makes user units (WantedBy=default.target, which the system manager never reaches)"
                ))
                .help("leave out --user-units, or export into ~/.config/systemd/user"),
            );
        }
        if options.user_units && options.user.is_some() {
            found.push(
                Diagnostic::error("--user cannot be used with --user-units")
                    .help("user units run as the user whose `systemctl --user` starts them"),
            );
        }
        found
    }

    fn support(&self, option: SharedOption) -> Support {
        match option {
            SharedOption::Log => Support::IgnoredBecause(
                "--log has no effect on systemd units: their output goes to the journal (journalctl -u APP-web-1)",
            ),
            SharedOption::Image => Support::Ignored,
            SharedOption::User | SharedOption::UserUnits | SharedOption::Timeout => Support::Used,
        }
    }

    fn render(&self, plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
        render(plan, options)
    }

    fn next_steps(&self, options: &ExportOptions, dir: &str) -> String {
        let app = &options.app;
        let (copy, start) = if options.user_units {
            (
                (!USER_UNIT_FOLDERS.iter().any(|f| options.writes_into(f)))
                    .then(|| format!("cp {dir}/* ~/.config/systemd/user/ && ")),
                format!(
                    "systemctl --user daemon-reload && systemctl --user enable --now {app}.target"
                ),
            )
        } else {
            (
                (!options.writes_into(SYSTEM_UNIT_FOLDER))
                    .then(|| format!("sudo cp {dir}/* {SYSTEM_UNIT_FOLDER}/ && ")),
                format!("sudo systemctl daemon-reload && sudo systemctl enable --now {app}.target"),
            )
        };
        format!("next: {}{start}", copy.unwrap_or_default())
    }
}

/// Where systemd reads system units that an administrator writes.
const SYSTEM_UNIT_FOLDER: &str = "/etc/systemd/system";

/// Where systemd reads user units (a user's own, every user's).
const USER_UNIT_FOLDERS: [&str; 2] = ["~/.config/systemd/user", "/etc/systemd/user"];

/// Renders the units.
fn render(plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
    let app = &options.app;
    let mut files = Vec::new();
    let types: Vec<_> = plan.types.iter().filter(|t| t.count > 0).collect();
    let install_target = if options.user_units {
        "default.target"
    } else {
        "multi-user.target"
    };
    let type_targets: Vec<String> = types
        .iter()
        .map(|t| format!("{app}-{}.target", t.name))
        .collect();
    files.push(ExportFile::file(
        format!("{app}.target"),
        format!(
            "# {GENERATED}\n[Unit]\nDescription={}\nWants={}\n\n[Install]\nWantedBy={install_target}\n",
            escape(&format!("{app} (all processes)")),
            type_targets.join(" ")
        ),
    ));
    for t in &types {
        let services: Vec<String> = plan
            .instances
            .iter()
            .filter(|i| i.type_name == t.name)
            .map(|i| format!("{app}-{}-{}.service", t.name, i.number))
            .collect();
        files.push(ExportFile::file(
            format!("{app}-{}.target", t.name),
            format!(
                "# {GENERATED}\n[Unit]\nDescription={}\nPartOf={app}.target\nWants={}\n\n[Install]\nWantedBy={app}.target\n",
                escape(&format!("{app} {} processes", t.name)),
                services.join(" ")
            ),
        ));
    }
    for i in &plan.instances {
        let unit = format!("{app}-{}-{}", i.type_name, i.number);
        let mut s = String::new();
        let _ = writeln!(s, "# {GENERATED}");
        let _ = writeln!(s, "[Unit]");
        let _ = writeln!(s, "Description={}", escape(&format!("{app} {}", i.name)));
        let _ = writeln!(s, "PartOf={app}-{}.target", i.type_name);
        if !options.user_units {
            let _ = writeln!(s, "After=network.target");
        }
        if let Some(t) = plan.types.iter().find(|t| t.name == i.type_name) {
            start_order(&mut s, plan, t, app);
        }
        let policy = &i.policy;
        if parity::restarts(policy) {
            start_limit(&mut s, policy);
        }
        let _ = writeln!(s);
        let _ = writeln!(s, "[Service]");
        if plan
            .types
            .iter()
            .any(|t| t.name == i.type_name && oneshot_unit(t) && parity::waited_for(plan, t))
        {
            // Units ordered after a oneshot start once it has exited
            // (with code 0, for those that require it); it stays active
            // then, as "done".
            let _ = writeln!(s, "Type=oneshot");
            let _ = writeln!(s, "RemainAfterExit=yes");
        } else {
            let _ = writeln!(s, "Type=simple");
        }
        if let Some(user) = &options.user {
            let _ = writeln!(s, "User={user}");
        }
        let _ = writeln!(
            s,
            "WorkingDirectory={}",
            escape(&i.cwd.display().to_string())
        );
        for (key, value) in super::instance_env(i) {
            let _ = writeln!(s, "Environment={}", quote(&format!("{key}={value}")));
        }
        let _ = writeln!(
            s,
            "ExecStart=/bin/sh -c {}",
            quote(&shell_script(&i.command)).replace('$', "$$")
        );
        let _ = writeln!(s, "Restart={}", restart(policy.restart));
        if parity::restarts(policy) {
            if parity::backoff_grows(&policy.backoff) {
                let _ = writeln!(
                    s,
                    "# procrun doubles this up to {} (systemd 254's RestartSteps= could)",
                    parity::human(policy.backoff.max)
                );
            }
            let _ = writeln!(s, "RestartSec={}", time_span(policy.backoff.initial));
        }
        let _ = writeln!(s, "StandardInput=null");
        let _ = writeln!(s, "StandardOutput=journal");
        let _ = writeln!(s, "StandardError=journal");
        let _ = writeln!(s, "SyslogIdentifier={unit}");
        let _ = writeln!(s, "KillMode=mixed");
        let _ = writeln!(s, "KillSignal={}", policy.stop_signal.as_str());
        // systemd reads 0 as "no timeout"; procrun's 0 is SIGKILL at once.
        let _ = writeln!(
            s,
            "TimeoutStopSec={}",
            time_span(policy.stop_timeout.max(Duration::from_micros(1)))
        );
        let _ = writeln!(s);
        let _ = writeln!(s, "[Install]");
        let _ = writeln!(s, "WantedBy={app}-{}.target", i.type_name);
        files.push(ExportFile::private(format!("{unit}.service"), s));
    }
    files
}

/// Whether a type can be a `Type=oneshot` unit for the types that start
/// after it: a one-shot that systemd may restart (a oneshot unit cannot
/// have `Restart=always`).
fn oneshot_unit(t: &ProcessType) -> bool {
    parity::one_shot(t) && t.policy.restart != Restart::Always
}

/// `After=` and `Wants=` for the types `t` starts after: a one-shot's
/// services, which it also `Requires=` (so that a failed one keeps `t`
/// from starting, as procrun skips it), and every other type's target.
/// The reverse order is the stop order: dependents first, as procrun.
fn start_order(s: &mut String, plan: &Plan, t: &ProcessType, app: &str) {
    for dep in parity::dependencies(plan, t) {
        if oneshot_unit(dep) {
            let services: Vec<String> = plan
                .instances
                .iter()
                .filter(|i| i.type_name == dep.name)
                .map(|i| format!("{app}-{}-{}.service", dep.name, i.number))
                .collect();
            let _ = writeln!(s, "After={}", services.join(" "));
            let _ = writeln!(s, "Requires={}", services.join(" "));
        } else {
            let _ = writeln!(s, "After={app}-{}.target", dep.name);
            let _ = writeln!(s, "Wants={app}-{}.target", dep.name);
        }
    }
}

/// What systemd cannot carry of a type's readiness.
fn readiness_gaps(plan: &Plan, t: &ProcessType) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    found.extend(parity::gap(
        "systemd",
        t,
        &parity::ready_keys(t),
        "systemd counts its units as started once their process runs (Type=notify would need the program to tell systemd): units ordered after them start then, and one that never gets ready does not fail",
    ));
    for dep in parity::dependencies(plan, t) {
        if parity::one_shot(dep) && !oneshot_unit(dep) {
            found.extend(parity::gap(
                "systemd",
                t,
                &[Key::After],
                &format!(
                    "`{}` restarts always, which a Type=oneshot unit cannot: `{}` starts once `{}` has started, not once it exited with code 0",
                    dep.name, t.name, dep.name
                ),
            ));
        }
    }
    found
}

/// systemd's longest unit file line plus one (`LONG_LINE_MAX`, 1 MiB): it
/// refuses a longer line with ENOBUFS.
pub const LINE_MAX: usize = 1024 * 1024;

/// `Restart=`.
fn restart(restart: Restart) -> &'static str {
    match restart {
        Restart::No => "no",
        Restart::OnFailure => "on-failure",
        Restart::Always => "always",
    }
}

/// `StartLimitBurst=`/`StartLimitIntervalSec=` for `max_restarts`: procrun
/// gives up after that many consecutive restarts of runs shorter than
/// `min_uptime`, i.e. after max_restarts + 1 short runs; systemd refuses a
/// start beyond the burst within the interval, which is sized to hold that
/// many short runs and their restart delays.
fn start_limit(s: &mut String, policy: &Policy) {
    match policy.max_restarts {
        None => {
            let _ = writeln!(s, "StartLimitIntervalSec=0");
        }
        Some(n) => {
            let starts = n.saturating_add(1);
            let interval = (policy.min_uptime + policy.backoff.initial).saturating_mul(starts);
            let _ = writeln!(
                s,
                "# procrun: at most {n} restarts in a row of runs shorter than {}",
                parity::human(policy.min_uptime)
            );
            let _ = writeln!(s, "StartLimitIntervalSec={}", time_span(interval));
            let _ = writeln!(s, "StartLimitBurst={starts}");
        }
    }
}

/// A free-text value (Description=, WorkingDirectory=): only specifiers
/// need escaping.
pub fn escape(value: &str) -> String {
    value.replace('%', "%%")
}

/// One double-quoted word with C-style escapes and `%` escaped, as
/// `Environment=` and `ExecStart=` read it.
pub fn quote(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '%' => out.push_str("%%"),
            c if c.is_control() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(out, "\\x{b:02x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A systemd time span: whole seconds, else milliseconds, else
/// microseconds (systemd's resolution, rounded up, so that a short span
/// never becomes 0).
pub fn time_span(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}us", d.as_nanos().div_ceil(1000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote("A=b"), "\"A=b\"");
        assert_eq!(quote("A=\"x\"\\"), r#""A=\"x\"\\""#);
        assert_eq!(quote("A=1\n[Service]"), r#""A=1\n[Service]""#);
        assert_eq!(quote("A=100%n"), "\"A=100%%n\"");
        assert_eq!(quote("A=\u{1b}"), r#""A=\x1b""#);
        assert_eq!(quote("A=$HOME"), "\"A=$HOME\"");
        assert_eq!(escape("50% off"), "50%% off");
    }

    #[test]
    fn time_spans() {
        assert_eq!(time_span(Duration::from_secs(5)), "5");
        assert_eq!(time_span(Duration::from_millis(2500)), "2500ms");
        assert_eq!(time_span(Duration::from_nanos(1500)), "2us");
        assert_eq!(time_span(Duration::from_micros(1)), "1us");
    }
}
