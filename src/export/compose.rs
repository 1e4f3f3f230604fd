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
//!
//! A `ready` check becomes a `healthcheck:` (port and http checks as shell
//! tests that need bash, or else `nc -z` or `wget`, never curl), and
//! `after` becomes `depends_on:` with the condition procrun waits for:
//! healthy, completed successfully (a one-shot) or merely started.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::parity::{self, Key};
use super::quote::{shell_quote, shell_script, yaml_quote};
use super::{ExportFile, ExportOptions, Format, GENERATED, SharedOption, Support};
use crate::diagnostic::Diagnostic;
use crate::plan::{Plan, ProcessType};
use crate::policy::{Policy, Restart};
use crate::readiness::{Check, HttpTarget};

/// The Docker Compose format.
#[derive(Clone, Copy, Debug)]
pub struct Compose;

impl Format for Compose {
    fn check(&self, plan: &Plan, _options: &ExportOptions) -> Vec<Diagnostic> {
        let mut found: Vec<Diagnostic> = plan.types.iter().flat_map(policy_gaps).collect();
        found.extend(plan.types.iter().flat_map(readiness_gaps));
        found.extend(parity::ready_commands(plan, "compose"));
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
        if let Some(test) = health_test(t) {
            let r = &t.readiness;
            let attempt = match r.check {
                Check::Exec(_) => r.interval,
                _ => ATTEMPT,
            };
            let _ = writeln!(y, "    healthcheck:");
            let _ = writeln!(y, "      test: [{}, {}]", quote("CMD-SHELL"), quote(&test));
            let _ = writeln!(y, "      start_period: {}", quote(&millis(r.timeout)));
            let _ = writeln!(y, "      start_interval: {}", quote(&millis(r.interval)));
            let _ = writeln!(
                y,
                "      interval: {}",
                quote(&millis(r.interval.max(LATER_INTERVAL)))
            );
            let _ = writeln!(y, "      timeout: {}", quote(&millis(attempt)));
            let _ = writeln!(y, "      retries: 3");
        }
        let deps = parity::dependencies(plan, t);
        if !deps.is_empty() {
            let _ = writeln!(y, "    depends_on:");
            for dep in deps {
                let _ = writeln!(y, "      {}:", quote(&dep.name));
                let _ = writeln!(y, "        condition: {}", quote(condition(dep)));
            }
        }
        let _ = writeln!(y, "    deploy:");
        let _ = writeln!(y, "      replicas: {}", t.count);
    }
    vec![ExportFile::private("compose.yaml", y)]
}

/// How long one probe of a port or http check may take (procrun's own
/// limit per attempt).
const ATTEMPT: Duration = Duration::from_secs(2);

/// Docker's default pause between two health checks, for those after the
/// start period (procrun stops probing at the first success).
const LATER_INTERVAL: Duration = Duration::from_secs(30);

/// A Compose duration in whole milliseconds, rounded up (Docker refuses a
/// non-zero duration below 1 ms).
fn millis(d: Duration) -> String {
    format!("{}ms", d.as_nanos().div_ceil(1_000_000))
}

/// The `depends_on` condition that waits for `dep` as procrun does.
fn condition(dep: &ProcessType) -> &'static str {
    if parity::one_shot(dep) {
        "service_completed_successfully"
    } else if health_test(dep).is_some() {
        "service_healthy"
    } else {
        "service_started"
    }
}

/// The `CMD-SHELL` test of a type's `ready` check, if Compose can run it.
fn health_test(t: &ProcessType) -> Option<String> {
    match &t.readiness.check {
        Check::Port(port) => Some(tcp_test(port.unwrap_or_else(|| parity::probe_port(t)))),
        Check::Http(_) => parity::http_target(t).map(|target| http_test(&target)),
        Check::Exec(command) => Some(command.clone()),
        Check::Started | Check::Log(_) | Check::LogRegex(_) => None,
    }
}

/// A test that a TCP connection to `port` on 127.0.0.1 succeeds: bash's
/// `/dev/tcp` (Debian and Ubuntu images, slim ones too, have bash), else
/// `nc -z` (Alpine's BusyBox, netcat-openbsd).
pub fn tcp_test(port: u16) -> String {
    format!(
        "bash -c 'exec 3<>\"/dev/tcp/$0/$1\"' 127.0.0.1 {port} 2>/dev/null || nc -z 127.0.0.1 {port}"
    )
}

/// A test that a GET of `target` answers 2xx or 3xx: an HTTP/1.0 request
/// through bash's `/dev/tcp`, else `wget` (BusyBox's too; it follows a
/// redirect, and fails on 4xx and 5xx). The script is fixed; the host,
/// port, path and URL reach it as shell-quoted arguments. No `wget -T`:
/// BusyBox built without FEATURE_WGET_TIMEOUT (Debian's, before 1.36.1-5)
/// crashes on it; the healthcheck's `timeout` bounds the test anyway.
pub fn http_test(target: &HttpTarget) -> String {
    let script = r#"exec 3<>"/dev/tcp/$0/$1" && printf "GET %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" "$2" "$3" >&3 && read -r _ code _ <&3 && case $code in 2??|3??) exit 0;; esac; exit 1"#;
    format!(
        "bash -c {} {} {} {} {} 2>/dev/null || wget -q -O /dev/null {}",
        shell_quote(script),
        shell_quote(&target.host),
        target.port,
        shell_quote(&target.path),
        shell_quote(&target.authority()),
        shell_quote(&target.url())
    )
}

/// What Compose cannot carry of a type's readiness.
fn readiness_gaps(t: &ProcessType) -> Option<Diagnostic> {
    match t.readiness.check {
        Check::Started => None,
        Check::Log(_) | Check::LogRegex(_) => parity::gap(
            "compose",
            t,
            &[Key::Ready],
            "Compose cannot test a container's output, so it gets no healthcheck and the services that depend on it only wait for it to start (condition: service_started)",
        ),
        Check::Port(_) | Check::Http(_) | Check::Exec(_) => parity::gap(
            "compose",
            t,
            &[Key::ReadyTimeout],
            "a container that is not healthy by then is marked unhealthy after 3 more failed checks (30 s apart), so the services that depend on it fail to start, but Docker neither stops nor restarts it",
        ),
    }
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
