//! runit: one service directory per instance directly under the output
//! directory, so that `runsvdir OUTPUT_DIR` runs them all:
//! `APP-TYPE-N/run`, `APP-TYPE-N/env/KEY` and `APP-TYPE-N/log/run` (svlogd).
//!
//! `run` loads the env directory with `chpst -e` and only then starts
//! `/bin/sh -c 'exec COMMAND'`, so `$PORT` in the command is expanded by a
//! shell that already has it (foreman expands it in the run script itself,
//! before the env is loaded).
//!
//! `chpst -e` reads the first line of each file, strips trailing blanks and
//! turns NUL bytes into newlines. So a value's newlines are written as NUL
//! bytes and come back intact; a value ending in a space or tab cannot be
//! represented and is rejected; an empty file *unsets* the variable, so an
//! empty value reaches the process as unset (a warning says so).

use std::fmt::Write as _;

use super::quote::{shell_quote, shell_script};
use nix::sys::signal::Signal;

use super::parity::{self, Key};
use super::{ExportFile, ExportOptions, Format, GENERATED, SharedOption, Support};
use crate::diagnostic::Diagnostic;
use crate::plan::{Plan, ProcessType};
use crate::policy::Restart;

/// The runit format.
#[derive(Clone, Copy, Debug)]
pub struct Runit;

impl Format for Runit {
    fn check(&self, plan: &Plan, _options: &ExportOptions) -> Vec<Diagnostic> {
        let mut found = check(plan);
        for t in plan.types.iter().filter(|t| t.count > 0) {
            found.extend(policy_gaps(t));
            found.extend(parity::unchecked(
                "runit",
                plan,
                t,
                "runit runs no readiness check: a service is up once its run script runs, and one that never gets ready does not fail",
                "runsvdir starts every service at once, without waiting for any to be ready or done",
            ));
        }
        found
    }

    fn support(&self, option: SharedOption) -> Support {
        match option {
            SharedOption::UserUnits | SharedOption::Image => Support::Ignored,
            // `-t` is each type's default stop_timeout: the warning for a
            // type whose stop_timeout runit cannot carry covers it.
            SharedOption::Log | SharedOption::User | SharedOption::Timeout => Support::Used,
        }
    }

    fn render(&self, plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
        render(plan, options)
    }

    fn next_steps(&self, options: &ExportOptions, dir: &str) -> String {
        let app = &options.app;
        if SERVICE_FOLDERS.iter().any(|f| options.writes_into(f)) {
            format!("next: runsvdir starts them within 5 seconds; sv status {dir}/{app}-*")
        } else {
            format!("next: runsvdir {dir}   (or link each {dir}/{app}-* into /etc/service/)")
        }
    }
}

/// The folders a system's runsvdir watches (Debian and Void, the
/// original, Alpine).
const SERVICE_FOLDERS: [&str; 3] = ["/etc/service", "/service", "/var/service"];

/// What runit's `env/` directories cannot carry.
fn check(plan: &Plan) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for (key, value) in plan.env.pairs() {
        if key.starts_with('.') {
            found.push(Diagnostic::error(format!(
                "`{key}` starts with a dot, and chpst -e skips such files in env/"
            )));
        }
        if value.ends_with([' ', '\t']) {
            found.push(
                Diagnostic::error(format!(
                    "the value of {key} ends in a blank, which runit's env/{key} file cannot keep (chpst -e strips it)"
                ))
                .help("remove the trailing blank, or export to another format"),
            );
        } else if value.is_empty() {
            found.push(Diagnostic::warning(format!(
                "{key} is empty: runit's chpst -e unsets a variable whose env/ file is empty, so processes will not see {key} at all"
            )));
        }
    }
    found
}

/// What runit cannot carry of a type's policy: runsv starts a service
/// again whenever it ends, and has no stop timeout.
fn policy_gaps(t: &ProcessType) -> Vec<Diagnostic> {
    let p = &t.policy;
    let mut keys = Vec::new();
    if p.restart != Restart::Always {
        keys.push(Key::Restart);
    }
    if p.can_die {
        keys.push(Key::CanDie);
    }
    if parity::restarts(p) {
        keys.push(Key::Backoff);
        if p.max_restarts.is_some() {
            keys.extend([Key::MaxRestarts, Key::MinUptime]);
        }
    }
    let mut found = Vec::new();
    found.extend(parity::gap(
        "runit",
        t,
        &keys,
        "runsv starts a service again whenever it ends (after 1 s if it ran for less), without a limit",
    ));
    if parity::custom_stop_timeout(p) {
        found.extend(parity::gap(
            "runit",
            t,
            &[Key::StopTimeout],
            "`sv down` waits until it ends (`sv -w SECS force-stop` kills it after SECS)",
        ));
    }
    found
}

/// Renders the service directories.
fn render(plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
    let app = &options.app;
    let mut files = Vec::new();
    for i in &plan.instances {
        let service = format!("{app}-{}-{}", i.type_name, i.number);
        let user = options
            .user
            .as_ref()
            .map(|u| format!("-u {} ", shell_quote(u)))
            .unwrap_or_default();
        let mut run = String::new();
        let _ = writeln!(run, "#!/bin/sh");
        let _ = writeln!(run, "# {GENERATED}");
        let _ = writeln!(run, "# {} of {app}: {}", i.name, one_line(&i.command));
        let _ = writeln!(run, "exec 2>&1");
        let _ = writeln!(run, "env_dir=\"$PWD/env\"");
        let _ = writeln!(
            run,
            "cd {} || exit 111",
            shell_quote(&i.cwd.display().to_string())
        );
        let _ = writeln!(
            run,
            "exec chpst {user}-e \"$env_dir\" /bin/sh -c {}",
            shell_quote(&shell_script(&i.command))
        );
        files.push(ExportFile::executable(format!("{service}/run"), run));
        if i.policy.stop_signal != Signal::SIGTERM {
            // runsv runs control/t instead of sending SIGTERM itself when the
            // script exits 0 (runsv(8)); it runs in the service folder.
            let name = i.policy.stop_signal.as_str().trim_start_matches("SIG");
            files.push(ExportFile::executable(
                format!("{service}/control/t"),
                format!(
                    "#!/bin/sh\n# {GENERATED}\n# Stops {} with SIG{name}, its stop signal, instead of SIGTERM.\nexec kill -s {name} \"$(cat supervise/pid)\"\n",
                    i.name
                ),
            ));
        }
        for (key, value) in super::instance_env(i) {
            files.push(ExportFile::private(
                format!("{service}/env/{key}"),
                value.replace('\n', "\0"),
            ));
        }
        let log_run = match &options.log_dir {
            Some(dir) => {
                let dir = shell_quote(&dir.join(&service).display().to_string());
                format!(
                    "#!/bin/sh\n# {GENERATED}\nmkdir -p {dir} || exit 111\nexec svlogd -tt {dir}\n"
                )
            }
            None => {
                files.push(ExportFile::dir(format!("{service}/log/main")));
                format!("#!/bin/sh\n# {GENERATED}\nexec svlogd -tt ./main\n")
            }
        };
        files.push(ExportFile::executable(
            format!("{service}/log/run"),
            log_run,
        ));
    }
    files
}

/// The command for a comment line: newlines can't occur in a Procfile
/// command, but a comment must never end early.
fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::{EnvSet, EnvVar};

    fn plan_with(vars: &[(&str, &str)]) -> Plan {
        let mut env = EnvSet::default();
        for (k, v) in vars {
            env.vars.insert(
                (*k).to_owned(),
                EnvVar {
                    value: (*v).to_owned(),
                    source: ".env".into(),
                    line: 1,
                },
            );
        }
        Plan {
            root: "/app".into(),
            types: vec![],
            instances: vec![],
            base_port: 5000,
            port_source: crate::plan::PortSource::Default,
            env,
            warnings: vec![],
        }
    }

    #[test]
    fn trailing_blanks_are_rejected_and_empty_values_warned() {
        let found = check(&plan_with(&[
            ("A", "x "),
            ("B", ""),
            ("C", "a\nb"),
            (".D", "1"),
        ]));
        let errors: Vec<_> = found.iter().filter(|d| d.is_error()).collect();
        assert_eq!(errors.len(), 2, "{found:?}");
        assert!(errors[0].message.contains("A ends in a blank"));
        assert!(errors[1].message.contains("`.D` starts with a dot"));
        assert!(
            found
                .iter()
                .any(|d| !d.is_error() && d.message.contains("B is empty"))
        );
    }
}
