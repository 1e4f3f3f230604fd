//! `procrun check`: validate without starting anything, and show the plan.

use std::fmt::Write as _;

use crate::cli::CheckArgs;
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::load::{Loaded, Request};
use crate::plan::PortSource;
use crate::settings::{Origin, Origins, Settings};

/// The outcome of a successful check: warnings for stderr and the summary
/// for stdout.
#[derive(Debug)]
pub struct Report {
    /// Non-fatal findings.
    pub warnings: Vec<Diagnostic>,
    /// The plan as a table.
    pub summary: String,
}

/// Validates the Procfile, env files and formation.
pub fn check(settings: &Settings, args: &CheckArgs) -> Result<Report, Error> {
    let loaded = crate::load::load(
        settings,
        &Request {
            formation: &args.formation,
            selected: &[],
            policy: &args.policy,
            timeout: args.timeout,
        },
    )?;
    let mut out = summary(&loaded, &settings.origins);
    // What else was set, and where: the lines only appear when it was.
    let origins = &settings.origins;
    let mut lines = Vec::new();
    if origins.is_set("procfile") {
        lines.push((
            "procfile: ",
            settings.procfile.display().to_string(),
            "procfile",
        ));
    }
    if let Some(formation) = &args.formation.formation {
        lines.push(("formation:", formation.clone(), "formation"));
    }
    if let Some(t) = args.timeout.or(settings.fallback_timeout) {
        lines.push(("timeout:  ", crate::policy::format_seconds(t), "timeout"));
    }
    for (label, value, id) in lines {
        let _ = writeln!(out, "{label} {value}{}", given(origins, id));
    }
    if let Some(path) = &settings.foreman {
        let _ = writeln!(out, "foreman:   {}", path.display());
    }
    Ok(Report {
        warnings: loaded.plan.warnings.clone(),
        summary: out,
    })
}

/// The table `check` prints: each type with its count, ports and policy
/// (what differs from the defaults, see [`Policy::describe`]), then where
/// the settings came from.
///
/// [`Policy::describe`]: crate::policy::Policy::describe
pub fn summary(loaded: &Loaded, origins: &Origins) -> String {
    let Loaded {
        procfile,
        plan,
        config,
    } = loaded;
    let mut out = String::new();
    let types = plan.types.len();
    let _ = writeln!(
        out,
        "{} is valid: {types} process type{}, {} instance{} to start",
        procfile.path.display(),
        if types == 1 { "" } else { "s" },
        plan.instances.len(),
        if plan.instances.len() == 1 { "" } else { "s" },
    );
    let name_w = plan
        .types
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let ports: Vec<String> = plan
        .types
        .iter()
        .map(|t| match t.count {
            _ if !t.policy.port => "-".to_owned(),
            0 => "-".to_owned(),
            1 => t.port.to_string(),
            n => format!("{}-{}", t.port, t.port + n - 1),
        })
        .collect();
    let port_w = ports.iter().map(String::len).max().unwrap_or(0).max(4);
    let policies: Vec<String> = plan
        .types
        .iter()
        .map(|t| {
            let mut items = t.readiness.describe();
            if items.is_empty() {
                return t.policy.describe();
            }
            let policy = t.policy.describe();
            if policy != "-" {
                items.insert(0, policy);
            }
            items.join(", ")
        })
        .collect();
    let policy_w = policies.iter().map(String::len).max().unwrap_or(0).max(6);
    let _ = writeln!(
        out,
        "  {:name_w$}  COUNT  {:port_w$}  {:policy_w$}  COMMAND",
        "TYPE", "PORT", "POLICY"
    );
    for ((t, port), policy) in plan.types.iter().zip(&ports).zip(&policies) {
        let _ = writeln!(
            out,
            "  {:name_w$}  {:>5}  {:port_w$}  {:policy_w$}  {}",
            t.name, t.count, port, policy, t.command
        );
    }
    if plan.ordered() {
        let types: Vec<(&str, &[String])> = plan
            .types
            .iter()
            .map(|t| (t.name.as_str(), t.readiness.after.as_slice()))
            .collect();
        let levels: Vec<String> = crate::readiness::levels(&types)
            .iter()
            .enumerate()
            .map(|(i, names)| format!("{}: {}", i + 1, names.join(" ")))
            .collect();
        let _ = writeln!(out, "start order: {}", levels.join("  "));
    }
    let source = match &plan.port_source {
        PortSource::Flag => origins.get("port").describe(),
        PortSource::EnvFile(f) => format!("from PORT in {f}"),
        PortSource::Environment => "from $PORT".to_owned(),
        PortSource::Default => "default".to_owned(),
    };
    let _ = writeln!(out, "base port: {} ({source})", plan.base_port);
    let _ = writeln!(
        out,
        "app root:  {}{}",
        plan.root.display(),
        given(origins, "root")
    );
    if plan.env.files.is_empty() {
        let _ = writeln!(out, "env files: none{}", given(origins, "env"));
    } else {
        let files: Vec<String> = plan
            .env
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect();
        let n = plan.env.vars.len();
        let from = match origins.get("env") {
            Origin::Default => String::new(),
            origin => format!(", {}", origin.describe()),
        };
        let _ = writeln!(
            out,
            "env files: {} ({n} variable{}{from})",
            files.join(", "),
            if n == 1 { "" } else { "s" }
        );
    }
    let config = match config {
        Some(path) => path.display().to_string(),
        None => "none".to_owned(),
    };
    let _ = writeln!(out, "config:    {config}{}", given(origins, "config"));
    out
}

/// ` (from --root)` when the option `id` was set, else nothing: the lines
/// of `check` name the origin of what was not a default.
fn given(origins: &Origins, id: &str) -> String {
    match origins.get(id) {
        Origin::Default => String::new(),
        origin => format!(" ({})", origin.describe()),
    }
}
