//! launchd: one property list per instance, `APP-TYPE-N.plist`, for
//! `~/Library/LaunchAgents` (or `/Library/LaunchDaemons` with `--user`).
//!
//! Every string is XML-escaped (`&`, `<`, `>`, `"`, `'`; a carriage return as
//! `&#13;` so that XML's line-end normalisation keeps it). XML 1.0 cannot
//! hold other control characters at all, so values with them are rejected.

use std::fmt::Write as _;

use super::parity::{self, Key};
use super::quote::shell_script;
use super::{ExportFile, ExportOptions, Format, GENERATED, SharedOption, Support};
use crate::diagnostic::Diagnostic;
use crate::plan::{Plan, ProcessType};
use crate::policy::{Policy, Restart};

/// The launchd format.
#[derive(Clone, Copy, Debug)]
pub struct Launchd;

impl Format for Launchd {
    /// Values XML cannot carry.
    fn check(&self, plan: &Plan, _options: &ExportOptions) -> Vec<Diagnostic> {
        let mut found: Vec<Diagnostic> = plan
            .env
            .pairs()
            .filter(|(_, v)| v.chars().any(|c| !xml_char(c)))
            .map(|(k, _)| {
                Diagnostic::error(format!(
                    "the value of {k} contains a control character that a launchd property list (XML) cannot hold"
                ))
            })
            .collect();
        for t in plan.types.iter().filter(|t| t.count > 0) {
            found.extend(policy_gaps(t));
            found.extend(parity::unchecked(
                "launchd",
                plan,
                t,
                "launchd runs no readiness check: a job runs once its process does, and one that never gets ready does not fail",
                "launchd starts every job at once, without waiting for any to be ready or done",
            ));
        }
        // macOS file systems ignore case by default: `Web` and `web` would
        // write the same plist.
        found.extend(super::names::collisions(
            plan,
            "the launchd plist (on a case-insensitive file system)",
            str::to_ascii_lowercase,
        ));
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

    fn next_steps(&self, options: &ExportOptions, dir: &str) -> String {
        let app = &options.app;
        if AGENT_FOLDERS.iter().any(|f| options.writes_into(f)) {
            format!("next: launchctl load {dir}/{app}-*.plist")
        } else {
            format!(
                "next: cp {dir}/*.plist ~/Library/LaunchAgents/ && launchctl load ~/Library/LaunchAgents/{app}-*.plist"
            )
        }
    }
}

/// Where launchd loads agents and daemons from.
const AGENT_FOLDERS: [&str; 3] = [
    "~/Library/LaunchAgents",
    "/Library/LaunchAgents",
    "/Library/LaunchDaemons",
];

fn xml_char(c: char) -> bool {
    let forbidden = (c as u32) < 0x20 || matches!(c, '\u{fffe}' | '\u{ffff}');
    matches!(c, '\t' | '\n' | '\r') || !forbidden
}

/// Renders the plists.
fn render(plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
    let app = &options.app;
    let log_dir = options
        .log_dir
        .clone()
        .unwrap_or_else(|| options.output_dir.join("log"));
    let mut files = Vec::new();
    for i in &plan.instances {
        let label = format!("{app}-{}-{}", i.type_name, i.number);
        let log = log_dir.join(format!("{label}.log")).display().to_string();
        let mut p = String::new();
        let _ = writeln!(p, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            p,
            r#"<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">"#
        );
        let _ = writeln!(p, "<!-- {GENERATED} -->");
        let _ = writeln!(p, r#"<plist version="1.0">"#);
        let _ = writeln!(p, "<dict>");
        key_string(&mut p, "Label", &label);
        let _ = writeln!(p, "  <key>ProgramArguments</key>");
        let _ = writeln!(p, "  <array>");
        for arg in ["/bin/sh", "-c", &shell_script(&i.command)] {
            let _ = writeln!(p, "    <string>{}</string>", escape(arg));
        }
        let _ = writeln!(p, "  </array>");
        let _ = writeln!(p, "  <key>EnvironmentVariables</key>");
        let _ = writeln!(p, "  <dict>");
        for (key, value) in super::instance_env(i) {
            let _ = writeln!(p, "    <key>{}</key>", escape(key));
            let _ = writeln!(p, "    <string>{}</string>", escape(value));
        }
        let _ = writeln!(p, "  </dict>");
        key_string(&mut p, "WorkingDirectory", &i.cwd.display().to_string());
        if let Some(user) = &options.user {
            key_string(&mut p, "UserName", user);
        }
        let _ = writeln!(p, "  <key>RunAtLoad</key>\n  <true/>");
        keep_alive(&mut p, &i.policy);
        let _ = writeln!(
            p,
            "  <key>ExitTimeOut</key>\n  <integer>{}</integer>",
            // launchd reads 0 as "wait forever"; procrun's 0 is SIGKILL at
            // once, so the shortest wait it has.
            parity::secs_up(i.policy.stop_timeout).max(1)
        );
        key_string(&mut p, "StandardOutPath", &log);
        key_string(&mut p, "StandardErrorPath", &log);
        let _ = writeln!(p, "</dict>");
        let _ = writeln!(p, "</plist>");
        files.push(ExportFile::private(format!("{label}.plist"), p));
    }
    if options.log_dir.is_none() {
        files.push(ExportFile::dir("log"));
    }
    files
}

/// `KeepAlive` (and `ThrottleInterval`, launchd's fixed wait between two
/// starts, from the backoff's first wait) for a policy.
fn keep_alive(p: &mut String, policy: &Policy) {
    match policy.restart {
        Restart::No => {
            let _ = writeln!(p, "  <key>KeepAlive</key>\n  <false/>");
            return;
        }
        // Started again after a non-zero exit or a crash, not after exit 0.
        Restart::OnFailure => {
            let _ = writeln!(p, "  <key>KeepAlive</key>\n  <dict>");
            let _ = writeln!(p, "    <key>SuccessfulExit</key>\n    <false/>");
            let _ = writeln!(p, "    <key>Crashed</key>\n    <true/>");
            let _ = writeln!(p, "  </dict>");
        }
        Restart::Always => {
            let _ = writeln!(p, "  <key>KeepAlive</key>\n  <true/>");
        }
    }
    let _ = writeln!(
        p,
        "  <key>ThrottleInterval</key>\n  <integer>{}</integer>",
        parity::secs_up(policy.backoff.initial).max(1)
    );
}

/// What launchd cannot carry of a type's policy.
fn policy_gaps(t: &ProcessType) -> Vec<Diagnostic> {
    let p = &t.policy;
    let mut found = Vec::new();
    if parity::restarts(p) {
        let mut keys = Vec::new();
        if parity::backoff_grows(&p.backoff) {
            keys.push(Key::Backoff);
        }
        if p.max_restarts.is_some() {
            keys.extend([Key::MaxRestarts, Key::MinUptime]);
        }
        found.extend(parity::gap(
            "launchd",
            t,
            &keys,
            &format!(
                "launchd starts it again at most every ThrottleInterval={} s, without a limit",
                parity::secs_up(p.backoff.initial).max(1)
            ),
        ));
    }
    found.extend(parity::sigterm_only(
        "launchd",
        t,
        "launchd stops a job with SIGTERM",
    ));
    found
}

fn key_string(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "  <key>{key}</key>");
    let _ = writeln!(out, "  <string>{}</string>", escape(value));
}

/// XML character data and attribute-safe escaping.
pub fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            // DEL and C1 are XML characters, written as references so that
            // no raw control byte is in the file.
            c if c.is_control() && c as u32 >= 0x7f => {
                let _ = write!(out, "&#{};", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(
            escape("</string><key>x</key> & 'q' \"d\"\r\n"),
            "&lt;/string&gt;&lt;key&gt;x&lt;/key&gt; &amp; &apos;q&apos; &quot;d&quot;&#13;\n"
        );
        assert!(xml_char('\n'));
        assert!(xml_char('é'));
        assert!(!xml_char('\u{1b}'));
        assert!(!xml_char('\u{0}'));
    }
}
