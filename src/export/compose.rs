//! Docker Compose: `compose.yaml` with one service per process type (also
//! those scaled to 0), `deploy.replicas` from the formation, the env files'
//! values inline in `environment:` (those that refer to `PORT` or `PS`
//! expanded for the type), and the `web` type's `PORT` published.
//!
//! Every string is a YAML double-quoted scalar ([`yaml_quote`]) with
//! `$` written `$$`, because Compose interpolates `$VAR` in every value.
//! Inside a container each replica gets its type's first port, and `PS` is
//! the type's name (replicas have no instance number).
//!
//! Each service's `restart:`, `stop_signal:` and `stop_grace_period:` come
//! from its type's policy; Docker's restart delay is its own (see the
//! policy table of docs/export.md).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::parity::{self, Key};
use super::quote::{shell_script, yaml_quote};
use super::{ExportFile, ExportOptions, Format, GENERATED, SharedOption, Support};
use crate::diagnostic::Diagnostic;
use crate::plan::{Plan, ProcessType};
use crate::policy::{Policy, Restart};

/// The Docker Compose format.
#[derive(Clone, Copy, Debug)]
pub struct Compose;

impl Format for Compose {
    fn check(&self, plan: &Plan, _options: &ExportOptions) -> Vec<Diagnostic> {
        let mut found: Vec<Diagnostic> = plan.types.iter().flat_map(policy_gaps).collect();
        // Service names are host names on the project's network, and DNS
        // ignores case.
        found.extend(super::names::collisions(
            plan,
            "the Compose service host name",
            str::to_ascii_lowercase,
        ));
        found.extend(super::type_env_errors(plan));
        found
    }

    fn support(&self, option: SharedOption) -> Support {
        match option {
            SharedOption::Log => {
                Support::IgnoredBecause("--log has no effect on compose: containers log to stdout")
            }
            SharedOption::UserUnits => Support::Ignored,
            SharedOption::User | SharedOption::Image | SharedOption::Timeout => Support::Used,
        }
    }

    fn render(&self, plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
        render(plan, options)
    }

    fn next_steps(&self, _options: &ExportOptions, dir: &str) -> String {
        format!("next: docker compose -f {dir}/compose.yaml up")
    }
}

/// A YAML string that Compose will not interpolate.
pub fn quote(value: &str) -> String {
    yaml_quote(&value.replace('$', "$$"))
}

/// Renders `compose.yaml`.
fn render(plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
    let mut y = String::new();
    let _ = writeln!(y, "# {GENERATED}");
    let _ = writeln!(y, "name: {}", quote(&options.app.to_ascii_lowercase()));
    let _ = writeln!(y, "services:");
    for t in &plan.types {
        let _ = writeln!(y, "  {}:", quote(&t.name));
        match &options.image {
            Some(image) => {
                let _ = writeln!(y, "    image: {}", quote(image));
            }
            None => {
                let context = relative_path(&options.output_dir, &plan.root);
                let _ = writeln!(y, "    build: {}", quote(&context.display().to_string()));
            }
        }
        let script = shell_script(&t.command);
        let _ = writeln!(
            y,
            "    command: [{}, {}, {}]",
            quote("/bin/sh"),
            quote("-c"),
            quote(&script)
        );
        let _ = writeln!(y, "    environment:");
        for (key, value) in super::type_env_or_base(plan, t) {
            if key == "PORT" || key == "PS" {
                continue;
            }
            let _ = writeln!(y, "      {}: {}", quote(&key), quote(&value));
        }
        if t.policy.port {
            let _ = writeln!(y, "      PORT: {}", quote(&t.port.to_string()));
        }
        let _ = writeln!(y, "      PS: {}", quote(&t.name));
        if t.name == "web" && t.policy.port {
            let _ = writeln!(y, "    ports:");
            let _ = writeln!(y, "      - {}", quote(&t.port.to_string()));
        }
        if let Some(user) = &options.user {
            let _ = writeln!(y, "    user: {}", quote(user));
        }
        let _ = writeln!(y, "    restart: {}", quote(&restart(&t.policy)));
        let _ = writeln!(
            y,
            "    stop_signal: {}",
            quote(t.policy.stop_signal.as_str())
        );
        let _ = writeln!(
            y,
            "    stop_grace_period: {}",
            quote(&format!("{}ms", t.policy.stop_timeout.as_millis()))
        );
        let _ = writeln!(y, "    deploy:");
        let _ = writeln!(y, "      replicas: {}", t.count);
    }
    vec![ExportFile::private("compose.yaml", y)]
}

/// `restart:`: `no`, `on-failure[:MAX]` or `always`.
fn restart(policy: &Policy) -> String {
    match (policy.restart, policy.max_restarts) {
        (Restart::No, _) => "no".to_owned(),
        // Docker reads `on-failure:0` as no limit at all.
        (Restart::OnFailure, Some(0)) => "no".to_owned(),
        (Restart::OnFailure, Some(max)) => format!("on-failure:{max}"),
        (Restart::OnFailure, None) => "on-failure".to_owned(),
        (Restart::Always, _) => "always".to_owned(),
    }
}

/// What Compose cannot carry of a type's policy.
fn policy_gaps(t: &ProcessType) -> Option<Diagnostic> {
    let p = &t.policy;
    if !parity::restarts(p) {
        return None;
    }
    let mut keys = vec![Key::Backoff, Key::MinUptime];
    let mut instead = "Docker waits 100 ms before a restart, doubling each time, and resets the wait once a container ran for 10 s".to_owned();
    if p.restart == Restart::Always && p.max_restarts.is_some() {
        keys.push(Key::MaxRestarts);
        instead.push_str("; `restart: always` has no limit");
    }
    if p.restart == Restart::OnFailure && p.max_restarts == Some(0) {
        keys.push(Key::MaxRestarts);
        instead.push_str("; `on-failure:0` would restart without a limit, so it is `restart: \"no\"`, which restarts no failure at all");
    }
    parity::gap("compose", t, &keys, &instead)
}

/// The path from directory `from` to `to`, both absolute: `.` when equal.
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<_> = from.components().collect();
    let to: Vec<_> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to[common..] {
        out.push(part);
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_doubled() {
        assert_eq!(quote("$HOME ${X}"), "\"$$HOME $${X}\"");
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative_path(Path::new("/a/b/out"), Path::new("/a/b")),
            Path::new("..")
        );
        assert_eq!(
            relative_path(Path::new("/a/b"), Path::new("/a/b")),
            Path::new(".")
        );
        assert_eq!(
            relative_path(Path::new("/x/y"), Path::new("/a/b")),
            Path::new("../../a/b")
        );
    }
}
