//! supervisord: `supervisord.conf` runs on its own (`supervisord -c
//! OUTPUT_DIR/supervisord.conf`; socket, pid file and logs inside the
//! export) and includes `APP.conf`, which a system supervisord can include
//! too: one `[program:APP-TYPE]` per process type with `numprocs`, and
//! `[group:APP]`.
//!
//! supervisord has no shell, and its `environment=` cannot carry every value:
//! it is split by Python's non-POSIX `shlex` (no escapes, and quote
//! characters at either end of a value are stripped), and the INI reader cuts
//! a line at a `;` or `#` that follows a blank. So the env files' values go
//! to `APP.env`, a POSIX shell file of `export KEY='value'` lines, which each
//! program's `/bin/sh -c` sources after it sets `PORT`, before it `exec`s the
//! command. A value that refers to `PORT` or `PS` is written as a shell
//! word that expands them (`'http://localhost:'"$PORT"'/path'`), and the
//! file is sourced after `PORT` is set, so each process gets its own. In
//! `supervisord.conf` and `APP.conf` themselves:
//! - `%` is written `%%` (supervisord's `%(name)s` interpolation);
//! - the command is one POSIX-shell single-quoted word (supervisord splits
//!   `command=` with POSIX `shlex`), with `''` inserted before any `;` or `#`
//!   that follows a blank, so the INI reader never sees an inline comment.

use std::fmt::Write as _;

use super::parity::{self, Key};
use super::quote::{shell_quote, shell_script};
use super::{ExportFile, ExportOptions, Format, GENERATED, SharedOption, Support};
use crate::diagnostic::Diagnostic;
use crate::env::{Given, Instance, Segment};
use crate::plan::{Plan, ProcessType};
use crate::policy::{Policy, Restart};

/// The supervisord format.
#[derive(Clone, Copy, Debug)]
pub struct Supervisord;

impl Format for Supervisord {
    /// Keys the shell can `export`, paths the INI reader would cut short,
    /// and a socket path too long to bind.
    fn check(&self, plan: &Plan, options: &ExportOptions) -> Vec<Diagnostic> {
        let mut found = super::names::variable_names(plan, "the supervisord export");
        for path in [Some(&plan.root), options.log_dir.as_ref()]
            .into_iter()
            .flatten()
        {
            let text = path.display().to_string();
            // The INI reader also strips blanks at either end of a value.
            if has_inline_comment(&text) || text.contains("%(here)s") || text.trim() != text {
                found.push(Diagnostic::error(format!(
                    "`{text}` holds a `;` or `#` after a blank, `%(here)s` or a blank at either end, which supervisord's config reader would take apart"
                )));
            }
        }
        for t in plan.types.iter().filter(|t| t.count > 0) {
            found.extend(policy_gaps(t));
            found.extend(parity::unchecked(
                "supervisord",
                plan,
                t,
                "supervisord runs no readiness check: a program is RUNNING once it has run for startsecs, and one that never gets ready does not fail",
                "supervisord starts its programs in order of priority (and stops them in reverse), but without waiting for one to be ready or done",
            ));
        }
        found.extend(port_false_gaps(plan));
        let socket = options.output_dir.join("supervisor.sock");
        // sockaddr_un holds 108 bytes, the terminating NUL included.
        if socket.as_os_str().len() > 107 {
            found.push(Diagnostic::warning(format!(
                "supervisord's socket path `{}` is longer than a Unix socket allows (107 bytes): supervisord will not start from there",
                socket.display()
            )));
        }
        found
    }

    fn support(&self, option: SharedOption) -> Support {
        match option {
            SharedOption::UserUnits | SharedOption::Image => Support::Ignored,
            SharedOption::Log | SharedOption::User | SharedOption::Timeout => Support::Used,
        }
    }

    fn render(&self, plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
        render(plan, options)
    }

    fn next_steps(&self, _options: &ExportOptions, dir: &str) -> String {
        format!(
            "next: supervisord -c {dir}/supervisord.conf && supervisorctl -c {dir}/supervisord.conf status"
        )
    }
}

/// Renders `supervisord.conf`, `APP.conf`, `APP.env` and the log folder.
fn render(plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
    let app = &options.app;
    let log = match &options.log_dir {
        Some(dir) => escape(&dir.display().to_string()),
        None => "%(here)s/log".to_owned(),
    };
    let mut files = Vec::new();

    files.push(ExportFile::file(
        "supervisord.conf",
        format!(
            "; {GENERATED}
; Runs {app} on its own:  supervisord -c supervisord.conf
; (or include {app}.conf from a system supervisord).
; %(here)s is this file's folder, so the export can be moved.

[unix_http_server]
file=%(here)s/supervisor.sock
chmod=0700

[supervisord]
logfile={log}/supervisord.log
pidfile=%(here)s/supervisord.pid
childlogdir={log}
loglevel=info

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock

[include]
files = {app}.conf
"
        ),
    ));

    let mut conf =
        format!("; {GENERATED}\n; The env files' values are in {app}.env, beside this file.\n");
    let mut programs = Vec::new();
    // With `after`, programs start in the order of its levels: supervisord
    // starts (and, in reverse, stops) programs by ascending priority.
    let mut types = parity::start_levels(plan);
    if plan.ordered() {
        types.sort_by_key(|(_, level)| *level);
    }
    for (t, level) in types {
        let program = format!("{app}-{}", t.name);
        let port = if t.policy.port {
            format!(
                "PORT=$(({} + %(process_num)d - 1)) && export PORT && ",
                t.port
            )
        } else {
            String::new()
        };
        // PORT first: the env file's values that refer to it expand it.
        let script = format!("{port}. \"$0\" && {}", escape(&shell_script(&t.command)));
        let _ = writeln!(conf);
        let _ = writeln!(conf, "[program:{program}]");
        let _ = writeln!(
            conf,
            "command=/bin/sh -c {} \"%(here)s/{app}.env\"",
            guard_comments(&shell_quote(&script))
        );
        let _ = writeln!(conf, "process_name=%(program_name)s-%(process_num)d");
        let _ = writeln!(conf, "numprocs={}", t.count);
        let _ = writeln!(conf, "numprocs_start=1");
        let _ = writeln!(conf, "environment=PS=\"{}.%(process_num)d\"", t.name);
        let _ = writeln!(
            conf,
            "directory={}",
            escape(&plan.root.display().to_string())
        );
        if let Some(user) = &options.user {
            let _ = writeln!(conf, "user={user}");
        }
        let _ = writeln!(conf, "autostart=true");
        if plan.ordered() {
            let _ = writeln!(conf, "priority={}", PRIORITY_STEP * (level as u64 + 1));
        }
        restart(&mut conf, &t.policy);
        let _ = writeln!(
            conf,
            "stopsignal={}",
            t.policy.stop_signal.as_str().trim_start_matches("SIG")
        );
        let _ = writeln!(
            conf,
            "stopwaitsecs={}",
            parity::secs_up(t.policy.stop_timeout)
        );
        let _ = writeln!(conf, "stopasgroup=true");
        let _ = writeln!(conf, "killasgroup=true");
        let _ = writeln!(
            conf,
            "stdout_logfile={log}/%(program_name)s-%(process_num)d.log"
        );
        let _ = writeln!(conf, "redirect_stderr=true");
        programs.push(program);
    }
    let _ = writeln!(conf);
    let _ = writeln!(conf, "[group:{app}]");
    let _ = writeln!(conf, "programs={}", programs.join(","));
    files.push(ExportFile::file(format!("{app}.conf"), conf));

    let mut env =
        format!("# {GENERATED}\n# Sourced by each program of {app}.conf before it starts.\n");
    let per_instance = per_instance_words(plan);
    for (key, value) in plan.env.pairs() {
        if key == "PORT" || key == "PS" {
            continue;
        }
        let word = match per_instance.iter().find(|(k, _)| k == key) {
            Some((_, word)) => word.clone(),
            None => shell_quote(value),
        };
        let _ = writeln!(env, "export {key}={word}");
    }
    files.push(ExportFile::private(format!("{app}.env"), env));
    if options.log_dir.is_none() {
        files.push(ExportFile::dir("log"));
    }
    files
}

/// The priority of the first level of the start order, and the step to
/// the next (room for the user's programs in between; supervisord's
/// default is 999).
pub const PRIORITY_STEP: u64 = 100;

/// supervisord's largest `startretries=` procrun writes, for an unlimited
/// `max_restarts` (it has no "unlimited").
pub const MANY_RETRIES: u32 = i32::MAX as u32;

/// `autorestart=`, `startsecs=` and `startretries=` for a policy.
///
/// supervisord's `startretries` counts only runs that end before
/// `startsecs` (a failed start, retried even with `autorestart=false`);
/// a run that lasted `startsecs` is restarted at once per `autorestart`,
/// without a limit. That is procrun's `max_restarts` of runs shorter than
/// `min_uptime`, so `startsecs` is `min_uptime` and `startretries` is
/// `max_restarts`. Without restarts, `startsecs=0` and `startretries=0`,
/// so that nothing is started again.
fn restart(conf: &mut String, policy: &Policy) {
    match policy.restart {
        Restart::No => {
            let _ = writeln!(conf, "autorestart=false");
            let _ = writeln!(conf, "startsecs=0");
            let _ = writeln!(conf, "startretries=0");
            return;
        }
        Restart::OnFailure => {
            let _ = writeln!(conf, "autorestart=unexpected");
            let _ = writeln!(conf, "exitcodes=0");
        }
        Restart::Always => {
            let _ = writeln!(conf, "autorestart=true");
        }
    }
    let _ = writeln!(conf, "startsecs={}", parity::secs_up(policy.min_uptime));
    let _ = writeln!(
        conf,
        "startretries={}",
        policy
            .max_restarts
            .unwrap_or(MANY_RETRIES)
            .min(MANY_RETRIES)
    );
}

/// What supervisord cannot carry of a type's policy.
fn policy_gaps(t: &ProcessType) -> Vec<Diagnostic> {
    let p = &t.policy;
    if !parity::restarts(p) {
        return Vec::new();
    }
    let mut found = Vec::new();
    found.extend(parity::gap(
        "supervisord",
        t,
        &[Key::Backoff],
        "supervisord waits 1 s, 2 s, 3 s, … before retrying a run shorter than startsecs, and restarts a longer one at once",
    ));
    if p.max_restarts.is_none() {
        found.extend(parity::gap(
            "supervisord",
            t,
            &[Key::MaxRestarts],
            &format!("supervisord has no unlimited retries; startretries={MANY_RETRIES}"),
        ));
    }
    found
}

/// `%` → `%%`, for supervisord's `%(name)s` interpolation.
pub fn escape(value: &str) -> String {
    value.replace('%', "%%")
}

/// Whether the INI reader would see an inline comment in `text`: a `;` or
/// `#` after a blank.
fn has_inline_comment(text: &str) -> bool {
    text.chars()
        .zip(text.chars().skip(1))
        .any(|(a, b)| a.is_whitespace() && (b == ';' || b == '#'))
}

/// Inserts `''` (an empty shell string) before every `;` or `#` that follows
/// a blank, so that the INI reader does not take it for an inline comment,
/// and inside every `%(here)s`, which supervisord replaces in included files
/// before it reads `%%`. Only valid inside a single-quoted shell word.
pub fn guard_comments(word: &str) -> String {
    let word = word.replace("(here)s", "(her''e)s");
    let mut out = String::with_capacity(word.len());
    let mut prev = None;
    for c in word.chars() {
        if (c == ';' || c == '#') && prev.is_some_and(char::is_whitespace) {
            out.push_str("''");
        }
        out.push(c);
        prev = Some(c);
    }
    out
}

/// The values that refer to `PORT` or `PS`, as shell words that expand
/// them when `APP.env` is sourced.
fn per_instance_words(plan: &Plan) -> Vec<(String, String)> {
    if !plan.env.has_per_instance() {
        return Vec::new();
    }
    let instance = Instance {
        name: "supervisord",
        port: Given::Later,
        ps: Given::Later,
    };
    let mut budget = crate::env::MAX_EXPANDED_BYTES;
    let Ok(values) = plan.env.per_instance(instance, &mut budget) else {
        return Vec::new();
    };
    values
        .into_iter()
        .map(|(key, segments)| {
            let word: String = segments
                .iter()
                .map(|s| match s {
                    Segment::Text(t) => shell_quote(t),
                    Segment::Port => "\"$PORT\"".to_owned(),
                    Segment::Ps => "\"$PS\"".to_owned(),
                })
                .collect();
            let word = if word.is_empty() {
                "''".to_owned()
            } else {
                word
            };
            (key.to_owned(), word)
        })
        .collect()
}

/// A warning for each type with `port = false` when a value refers to
/// `PORT`: procrun's own instances of it see no PORT, but its supervisord
/// processes see supervisord's own, if it has one.
fn port_false_gaps(plan: &Plan) -> Vec<Diagnostic> {
    let instance = Instance {
        name: "supervisord",
        port: Given::Later,
        ps: Given::Later,
    };
    let mut budget = crate::env::MAX_EXPANDED_BYTES;
    let values = match plan.env.per_instance(instance, &mut budget) {
        Ok(values) => values,
        Err(d) => return vec![d],
    };
    let Some((key, _)) = values
        .iter()
        .find(|(_, segments)| segments.contains(&Segment::Port))
    else {
        return Vec::new();
    };
    plan.types
        .iter()
        .filter(|t| t.count > 0 && !t.policy.port)
        .map(|t| {
            Diagnostic::warning(format!(
                "`{key}` refers to PORT, which `{}` does not get (`port = false`): its supervisord processes expand supervisord's own PORT, if it has one, where procrun would keep `$PORT` as written",
                t.name
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_comments() {
        assert!(has_inline_comment("/srv/a ;b"));
        assert!(has_inline_comment("/srv/a\t#b"));
        assert!(!has_inline_comment("/srv/a;b"));
        assert!(!has_inline_comment("/srv/my app#1"));
    }

    #[test]
    fn comments_are_guarded() {
        assert_eq!(guard_comments("'a ; b #c d;e'"), "'a ''; b ''#c d;e'");
        assert_eq!(guard_comments("'a\t#x'"), "'a\t''#x'");
        assert_eq!(guard_comments("'%%(here)s'"), "'%%(her''e)s'");
    }
}
