//! Kubernetes: one multi-document `APP.yaml` with a ConfigMap `APP-env` for
//! the env files' values, a Deployment `APP-TYPE` per process type (also
//! those scaled to 0) with `replicas` from the formation, and, for the `web`
//! type, a Service in front of its `PORT`. Labels are the standard
//! `app.kubernetes.io/{name,component,managed-by}`; each Deployment selects
//! its pods by name and component.
//!
//! Strings are YAML double-quoted scalars ([`yaml_quote`]); in the
//! container's `command` every `$` is written `$$`, because the kubelet
//! expands `$(NAME)` there. ConfigMap values reach the pods through
//! `envFrom`, which expands nothing (a value that refers to `PORT` or `PS`
//! differs per type: it is in each container's `env:`, expanded for the
//! type, with `$` written `$$`). Every replica of a type gets the type's
//! first port as `PORT`, and `PS` is the type's name.
//!
//! A `ready` check becomes the container's probes (`tcpSocket`, `httpGet`
//! or `exec`): a `startupProbe` that gives it `ready_timeout` to pass (the
//! kubelet then restarts the container, as procrun fails an instance that
//! is not ready in time) and a `readinessProbe`. Kubernetes starts every
//! workload at once: `after` is a warning.

use std::fmt::Write as _;

use super::parity::{self, Key};
use super::quote::{shell_script, yaml_quote};
use super::{ExportFile, ExportOptions, Format, GENERATED, SharedOption, Support};
use crate::diagnostic::Diagnostic;
use crate::plan::{Plan, ProcessType};
use crate::policy::{Policy, Restart};
use crate::readiness::Check;

/// The Kubernetes format.
#[derive(Clone, Copy, Debug)]
pub struct Kubernetes;

impl Format for Kubernetes {
    /// `--image` is required, and every name must be a DNS label.
    fn check(&self, plan: &Plan, options: &ExportOptions) -> Vec<Diagnostic> {
        let mut found = super::type_env_errors(plan);
        if options.image.as_deref().is_none_or(str::is_empty) {
            found.push(
                Diagnostic::error("the kubernetes export needs the container image to run")
                    .help("pass --image, e.g. --image registry.example.com/myapp:1.0"),
            );
        }
        let size: usize = plan
            .env
            .pairs()
            .filter(|(k, _)| *k != "PORT" && *k != "PS")
            .map(|(k, v)| k.len() + v.len())
            .sum();
        if size > CONFIG_MAP_MAX {
            found.push(Diagnostic::error(format!(
                "the env files' values take {size} bytes, more than the 1 MiB a Kubernetes ConfigMap holds"
            )));
        }
        found.extend(parity::ready_commands(plan, "kubernetes"));
        for t in &plan.types {
            found.extend(policy_gaps(t));
            found.extend(readiness_gaps(t));
            let name = resource_name(&options.app, &t.name);
            if name.len() > 63 {
                found.push(
                    Diagnostic::error(format!(
                        "`{name}` is longer than the 63 characters Kubernetes allows in a name"
                    ))
                    .help("choose a shorter --app"),
                );
            }
            if dns(&t.name).is_empty() {
                found.push(Diagnostic::error(format!(
                    "process type `{}` has no letter or digit to name its Kubernetes component",
                    t.name
                )));
            }
        }
        // The component label is what Deployments and the Service select.
        found.extend(super::names::collisions(
            plan,
            "the Kubernetes component",
            dns,
        ));
        found.extend(super::names::collisions(
            plan,
            "the Kubernetes resource",
            |n| resource_name(&options.app, n),
        ));
        found
    }

    fn support(&self, option: SharedOption) -> Support {
        match option {
            SharedOption::Log => Support::IgnoredBecause(
                "--log has no effect on kubernetes: containers log to stdout",
            ),
            SharedOption::User => Support::IgnoredBecause(
                "--user has no effect on kubernetes: set securityContext.runAsUser in the Deployments",
            ),
            SharedOption::UserUnits => Support::Ignored,
            SharedOption::Image | SharedOption::Timeout => Support::Used,
        }
    }

    fn render(&self, plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
        render(plan, options)
    }

    fn next_steps(&self, _options: &ExportOptions, dir: &str) -> String {
        format!("next: kubectl apply -f {dir}/")
    }
}

/// The most data a ConfigMap holds (the API server refuses more).
pub const CONFIG_MAP_MAX: usize = 1024 * 1024;

/// A DNS label for a resource: lower case, `_` and `.` as `-`.
pub fn resource_name(app: &str, type_name: &str) -> String {
    dns(&format!("{app}-{type_name}"))
}

fn dns(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            'A'..='Z' => c.to_ascii_lowercase(),
            'a'..='z' | '0'..='9' => c,
            _ => '-',
        })
        .collect::<String>()
        .trim_matches('-')
        .to_owned()
}

/// Renders `APP.yaml`.
fn render(plan: &Plan, options: &ExportOptions) -> Vec<ExportFile> {
    let app = dns(&options.app);
    let image = options.image.as_deref().unwrap_or_default();
    let q = |s: &str| yaml_quote(s);
    let mut y = String::new();
    let _ = writeln!(y, "# {GENERATED}");
    let _ = writeln!(y, "apiVersion: v1");
    let _ = writeln!(y, "kind: ConfigMap");
    let _ = writeln!(y, "metadata:");
    let _ = writeln!(y, "  name: {}", q(&format!("{app}-env")));
    labels(&mut y, "  ", &app, None);
    let _ = writeln!(y, "data:");
    let mut any = false;
    for (key, value) in plan.env.pairs() {
        // A value that refers to PORT or PS differs per type: it is in each
        // container's `env:`.
        if key == "PORT" || key == "PS" || plan.env.is_per_instance(key) {
            continue;
        }
        any = true;
        let _ = writeln!(y, "  {}: {}", q(key), q(value));
    }
    if !any {
        y.truncate(y.len() - "data:\n".len());
        let _ = writeln!(y, "data: {{}}");
    }
    for t in &plan.types {
        let name = resource_name(&app, &t.name);
        let component = dns(&t.name);
        let script = shell_script(&t.command).replace('$', "$$");
        let job = runs_as_job(&t.policy);
        let _ = writeln!(y, "---");
        if job.is_some() {
            // A one-shot type: a Job runs `count` pods to completion, which
            // a Deployment (always restarting) cannot.
            let _ = writeln!(y, "apiVersion: batch/v1");
            let _ = writeln!(y, "kind: Job");
        } else {
            let _ = writeln!(y, "apiVersion: apps/v1");
            let _ = writeln!(y, "kind: Deployment");
        }
        let _ = writeln!(y, "metadata:");
        let _ = writeln!(y, "  name: {}", q(&name));
        labels(&mut y, "  ", &app, Some(&component));
        let _ = writeln!(y, "spec:");
        if let Some(restart_policy) = job {
            let _ = writeln!(y, "  parallelism: {}", t.count);
            let _ = writeln!(y, "  completions: {}", t.count);
            let limit = match restart_policy {
                "OnFailure" => t.policy.max_restarts.unwrap_or(i32::MAX as u32),
                _ => 0,
            };
            let _ = writeln!(y, "  backoffLimit: {}", limit.min(i32::MAX as u32));
        } else {
            let _ = writeln!(y, "  replicas: {}", t.count);
            let _ = writeln!(y, "  selector:");
            let _ = writeln!(y, "    matchLabels:");
            let _ = writeln!(y, "      app.kubernetes.io/name: {}", q(&app));
            let _ = writeln!(y, "      app.kubernetes.io/component: {}", q(&component));
        }
        let _ = writeln!(y, "  template:");
        let _ = writeln!(y, "    metadata:");
        labels(&mut y, "      ", &app, Some(&component));
        let _ = writeln!(y, "    spec:");
        if let Some(restart_policy) = job {
            let _ = writeln!(y, "      restartPolicy: {}", q(restart_policy));
        }
        let _ = writeln!(
            y,
            "      terminationGracePeriodSeconds: {}",
            parity::secs_up(t.policy.stop_timeout)
        );
        let _ = writeln!(y, "      containers:");
        let _ = writeln!(y, "        - name: {}", q(&component));
        let _ = writeln!(y, "          image: {}", q(image));
        let _ = writeln!(
            y,
            "          command: [{}, {}, {}]",
            q("/bin/sh"),
            q("-c"),
            q(&script)
        );
        let _ = writeln!(y, "          envFrom:");
        let _ = writeln!(y, "            - configMapRef:");
        let _ = writeln!(y, "                name: {}", q(&format!("{app}-env")));
        let _ = writeln!(y, "          env:");
        if t.policy.port {
            let _ = writeln!(y, "            - name: \"PORT\"");
            let _ = writeln!(y, "              value: {}", q(&t.port.to_string()));
        }
        let _ = writeln!(y, "            - name: \"PS\"");
        let _ = writeln!(y, "              value: {}", q(&t.name));
        if plan.env.has_per_instance() {
            for (key, value) in super::type_env_or_base(plan, t) {
                if key != "PORT" && key != "PS" && plan.env.is_per_instance(&key) {
                    // `env:` values expand `$(NAME)`; `$$` is a `$`.
                    let _ = writeln!(y, "            - name: {}", q(&key));
                    let _ = writeln!(y, "              value: {}", q(&value.replace('$', "$$")));
                }
            }
        }
        if t.policy.port {
            let _ = writeln!(y, "          ports:");
            let _ = writeln!(y, "            - name: \"http\"");
            let _ = writeln!(y, "              containerPort: {}", t.port);
        }
        probes(&mut y, t);
        if t.name == "web" && t.policy.port && job.is_none() {
            let _ = writeln!(y, "---");
            let _ = writeln!(y, "apiVersion: v1");
            let _ = writeln!(y, "kind: Service");
            let _ = writeln!(y, "metadata:");
            let _ = writeln!(y, "  name: {}", q(&name));
            labels(&mut y, "  ", &app, Some(&component));
            let _ = writeln!(y, "spec:");
            let _ = writeln!(y, "  selector:");
            let _ = writeln!(y, "    app.kubernetes.io/name: {}", q(&app));
            let _ = writeln!(y, "    app.kubernetes.io/component: {}", q(&component));
            let _ = writeln!(y, "  ports:");
            let _ = writeln!(y, "    - name: \"http\"");
            let _ = writeln!(y, "      port: 80");
            let _ = writeln!(y, "      targetPort: \"http\"");
        }
    }
    vec![ExportFile::private(format!("{app}.yaml"), y)]
}

/// How long one probe of a port or http check may take (procrun's own
/// limit per attempt), in seconds.
const ATTEMPT_SECS: u64 = 2;

/// The kubelet's default pause between two readiness probes, for those
/// after the start (procrun stops probing at the first success).
const LATER_PERIOD_SECS: u64 = 10;

/// The container's `startupProbe` and `readinessProbe` for its type's
/// `ready` check, if Kubernetes has a probe for it.
fn probes(y: &mut String, t: &ProcessType) {
    let r = &t.readiness;
    let mut handler = String::new();
    let attempt = match &r.check {
        Check::Port(port) => {
            let port = port.unwrap_or_else(|| parity::probe_port(t));
            let _ = writeln!(handler, "            tcpSocket:");
            let _ = writeln!(handler, "              port: {port}");
            ATTEMPT_SECS
        }
        Check::Http(_) => {
            let Some(target) = parity::http_target(t) else {
                return;
            };
            let _ = writeln!(handler, "            httpGet:");
            // Without `host`, the kubelet asks the pod's own address, which
            // is what a loopback URL means inside the container.
            if !target.is_loopback() {
                let _ = writeln!(handler, "              host: {}", yaml_quote(&target.host));
            }
            let _ = writeln!(handler, "              path: {}", yaml_quote(&target.path));
            let _ = writeln!(handler, "              port: {}", target.port);
            ATTEMPT_SECS
        }
        Check::Exec(command) => {
            // The kubelet expands `$(NAME)` in a probe's command too.
            let _ = writeln!(handler, "            exec:");
            let _ = writeln!(
                handler,
                "              command: [{}, {}, {}]",
                yaml_quote("/bin/sh"),
                yaml_quote("-c"),
                yaml_quote(&command.replace('$', "$$"))
            );
            parity::secs_up(r.interval)
        }
        Check::Started | Check::Log(_) | Check::LogRegex(_) => return,
    };
    let period = parity::secs_up(r.interval).max(1);
    let attempt = attempt.max(1);
    // Failing this many probes in a row, `period` apart, takes at least
    // `ready_timeout`.
    let failures = parity::secs_up(r.timeout)
        .div_ceil(period)
        .clamp(1, i32::MAX as u64);
    let _ = writeln!(y, "          startupProbe:");
    y.push_str(&handler);
    let _ = writeln!(y, "            periodSeconds: {period}");
    let _ = writeln!(y, "            timeoutSeconds: {attempt}");
    let _ = writeln!(y, "            failureThreshold: {failures}");
    let _ = writeln!(y, "          readinessProbe:");
    y.push_str(&handler);
    let _ = writeln!(
        y,
        "            periodSeconds: {}",
        period.max(LATER_PERIOD_SECS)
    );
    let _ = writeln!(y, "            timeoutSeconds: {attempt}");
}

/// What Kubernetes cannot carry of a type's readiness and start order.
fn readiness_gaps(t: &ProcessType) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    match &t.readiness.check {
        Check::Log(_) | Check::LogRegex(_) => found.extend(parity::gap(
            "kubernetes",
            t,
            &[Key::Ready],
            "Kubernetes has no probe of a container's output, so it gets no startupProbe or readinessProbe: its pods are ready once started",
        )),
        Check::Http(_) => {
            if let Some(target) = parity::http_target(t).filter(|t| !t.is_loopback()) {
                found.extend(parity::gap(
                    "kubernetes",
                    t,
                    &[Key::Ready],
                    &format!(
                        "the kubelet asks `{}` from the node (httpGet.host), where cluster names may not resolve",
                        target.host
                    ),
                ));
            }
        }
        _ => {}
    }
    if !t.readiness.after.is_empty() {
        found.extend(parity::gap(
            "kubernetes",
            t,
            &[Key::After],
            "Kubernetes starts every workload at once, so its pods must wait or retry until what they need is there (an init container can wait for it)",
        ));
    }
    found
}

/// The `restartPolicy` of the Job that runs a type that may end for good
/// (`can_die` without `restart = "always"`); `None`: a Deployment.
fn runs_as_job(policy: &Policy) -> Option<&'static str> {
    match (policy.can_die, policy.restart) {
        (true, Restart::No) => Some("Never"),
        (true, Restart::OnFailure) => Some("OnFailure"),
        _ => None,
    }
}

/// What Kubernetes cannot carry of a type's policy.
fn policy_gaps(t: &ProcessType) -> Vec<Diagnostic> {
    let p = &t.policy;
    let mut found = Vec::new();
    let job = runs_as_job(p);
    if job.is_none() && p.restart != Restart::Always {
        found.extend(parity::gap(
            "kubernetes",
            t,
            &[Key::Restart],
            "a Deployment starts every container that ends again (set can_die = true to get a Job)",
        ));
    }
    // The restart delay and limits only matter for a type procrun restarts
    // (a Job's backoffLimit carries max_restarts).
    let mut keys = Vec::new();
    if parity::restarts(p) {
        keys.extend([Key::Backoff, Key::MinUptime]);
        if job.is_none() && p.max_restarts.is_some() {
            keys.push(Key::MaxRestarts);
        }
    }
    found.extend(parity::gap(
        "kubernetes",
        t,
        &keys,
        "the kubelet waits 10 s before a restart, doubling up to 5 min, and resets the wait after 10 min up; a Deployment has no limit",
    ));
    found.extend(parity::sigterm_only(
        "kubernetes",
        t,
        "the kubelet stops a container with SIGTERM (or the image's STOPSIGNAL)",
    ));
    found
}

fn labels(y: &mut String, indent: &str, app: &str, component: Option<&str>) {
    let _ = writeln!(y, "{indent}labels:");
    let _ = writeln!(y, "{indent}  app.kubernetes.io/name: {}", yaml_quote(app));
    if let Some(c) = component {
        let _ = writeln!(
            y,
            "{indent}  app.kubernetes.io/component: {}",
            yaml_quote(c)
        );
    }
    let _ = writeln!(y, "{indent}  app.kubernetes.io/managed-by: \"procrun\"");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(resource_name("My_App", "web_2"), "my-app-web-2");
    }

    fn with_check(check: Check) -> ProcessType {
        ProcessType {
            name: "web".into(),
            command: "PORT=3000 exec server".into(),
            index: 0,
            count: 1,
            port: 5000,
            policy: Policy::default(),
            readiness: crate::readiness::Readiness {
                check,
                timeout: std::time::Duration::from_millis(2500),
                ..Default::default()
            },
        }
    }

    #[test]
    fn probes_follow_the_check() {
        let probe = |check: Check| {
            let mut y = String::new();
            probes(&mut y, &with_check(check));
            y
        };
        // The command's own PORT, as under `procrun start`.
        let port = probe(Check::Port(None));
        assert!(
            port.contains("tcpSocket:\n              port: 3000\n"),
            "{port}"
        );
        // 2.5 s at one probe a second: 3 failures.
        assert!(port.contains("failureThreshold: 3\n"), "{port}");
        let v6 = probe(Check::Http("http://[::1]:8080/up".into()));
        assert!(
            v6.contains("httpGet:\n              path: \"/up\"\n              port: 8080\n"),
            "{v6}"
        );
        let remote = probe(Check::Http("http://db.internal:81/".into()));
        assert!(remote.contains("host: \"db.internal\"\n"), "{remote}");
        assert!(
            readiness_gaps(&with_check(Check::Http("http://db.internal:81/".into())))[0]
                .message
                .contains("asks `db.internal` from the node")
        );
        assert_eq!(probe(Check::Log("up".into())), "");
    }
}
