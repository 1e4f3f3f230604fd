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

use std::fmt::Write as _;

use super::parity::{self, Key};
use super::quote::{shell_script, yaml_quote};
use super::{ExportFile, ExportOptions, Format, GENERATED, SharedOption, Support};
use crate::diagnostic::Diagnostic;
use crate::plan::{Plan, ProcessType};
use crate::policy::{Policy, Restart};

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
        for t in &plan.types {
            found.extend(policy_gaps(t));
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
}
