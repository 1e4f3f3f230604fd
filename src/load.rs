//! Loading: reads what the settings point at (the Procfile, the env files,
//! `procrun.toml`), parses the command line's formation and policy flags,
//! resolves each type's policy and builds the plan. Every problem of every
//! input is reported together, so one `procrun check` shows them all.
//!
//! `check`, `start`, `run` and `export` all load through here.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{FormationArgs, PolicyArgs};
use crate::config::{Config, flags};
use crate::diagnostic::Diagnostic;
use crate::env::EnvSet;
use crate::error::Error;
use crate::plan::{Plan, PlanRequest};
use crate::procfile::Procfile;
use crate::settings::{Origin, Settings, inherited};

/// What a command asks the plan for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `-m/--formation` and `-p/--port`.
    pub formation: &'a FormationArgs,
    /// `start NAME…`: only these types (empty: all).
    pub selected: &'a [String],
    /// `--can-die`, `--auto-restart`, `--stop-signal`, …
    pub policy: &'a PolicyArgs,
    /// `-t/--timeout`, if given: the default stop timeout.
    pub timeout: Option<Duration>,
}

/// The inputs, parsed, and the plan built from them.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The Procfile.
    pub procfile: Procfile,
    /// What would run.
    pub plan: Plan,
    /// The config file that was read, if any.
    pub config: Option<PathBuf>,
}

/// Reads the Procfile, the env files and the config file, and builds the
/// plan.
pub fn load(settings: &Settings, request: &Request<'_>) -> Result<Loaded, Error> {
    let procfile = crate::procfile::load(&settings.procfile).map_err(|errors| {
        errors
            .into_iter()
            .map(|d| settings.origins.noted("procfile", d))
            .collect()
    });
    let env = env(settings);
    build(settings, procfile, env, request)
}

/// Reads the env files the settings name.
pub fn env(settings: &Settings) -> Result<EnvSet, Vec<Diagnostic>> {
    crate::env::load(&settings.env_files, &inherited).map_err(|errors| {
        errors
            .into_iter()
            .map(|d| settings.origins.noted("env", d))
            .collect()
    })
}

/// Builds the plan from a Procfile and env files already read (or the
/// problems found reading them), reading the config file and adding the
/// problems of the other inputs.
pub fn build(
    settings: &Settings,
    procfile: Result<Procfile, Vec<Diagnostic>>,
    env: Result<EnvSet, Vec<Diagnostic>>,
    request: &Request<'_>,
) -> Result<Loaded, Error> {
    let config = match &settings.config {
        Some(file) => crate::config::load(file),
        None => Ok(None),
    };
    let formation = crate::formation::parse(request.formation.formation.as_deref().unwrap_or(""));
    let flags = flags::parse(request.policy);

    // Even when one input is broken the others are still read and checked,
    // against the Procfile when there is one.
    let mut errors = Vec::new();
    let procfile = take(procfile, &mut errors);
    let env = take(env, &mut errors);
    let config: Option<Option<Config>> = take(config, &mut errors);
    let formation = take(formation, &mut errors);
    let flags = take(flags, &mut errors);
    let (Some(procfile), Some(formation)) = (procfile, formation) else {
        return Err(errors.into());
    };
    let env = env.unwrap_or_default();

    // Resolved even when the file or the flags are broken, so that the
    // other's names are still checked against the Procfile.
    let no_flags = flags::Flags::default();
    let resolved = crate::config::resolve::resolve_with(
        &procfile,
        config.as_ref().and_then(Option::as_ref),
        flags.as_ref().unwrap_or(&no_flags),
        request.timeout,
        settings.fallback_timeout,
    );
    let mut warnings = Vec::new();
    let resolved = match resolved {
        Ok(resolved) if config.is_some() && flags.is_some() => {
            warnings.extend(
                config
                    .iter()
                    .flatten()
                    .flat_map(|c| c.warnings.iter().cloned()),
            );
            warnings.extend(flags.iter().flat_map(|f| f.warnings.iter().cloned()));
            warnings.extend(resolved.warnings);
            Some(resolved.policies)
        }
        Ok(_) => None,
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let plan_request = PlanRequest {
        formation,
        selected: request.selected.to_vec(),
        port: request.formation.port,
        root: settings.root.clone(),
    };
    let policies = resolved.unwrap_or_default();
    let readiness = match config.as_ref() {
        Some(config) => crate::config::ready::resolve(&procfile, config.as_ref(), &policies)
            .map_err(|e| errors.extend(e))
            .unwrap_or_default(),
        None => Default::default(),
    };
    let plan = crate::plan::build_with(&procfile, &env, &plan_request, &policies, &inherited);
    // A formation from `.foreman` is pointed at there, not at `--formation`.
    let plan = match (plan, settings.origins.get("formation")) {
        (Err(more), Origin::File { at, .. }) => Err(more
            .into_iter()
            .map(|d| match &d.location {
                Some(l) if l.source == crate::formation::SOURCE => {
                    crate::config::foreman::relocate(d, at)
                }
                _ => d,
            })
            .collect()),
        (plan, _) => plan,
    };
    match plan {
        Ok(mut plan) if errors.is_empty() => {
            plan.set_readiness(&readiness);
            plan.warnings.extend(crate::readiness::plan_warnings(&plan));
            plan.warnings.extend(warnings);
            // Sizes the kernel would refuse at exec (E2BIG): said here, once,
            // rather than as every instance failing to start.
            let inherited_env: Vec<_> = std::env::vars_os().collect();
            plan.warnings.extend(crate::env::exec_size_warnings(
                Some(&procfile),
                &env,
                &inherited_env,
                &crate::env::ExecLimits::current(),
            ));
            Ok(Loaded {
                procfile,
                plan,
                config: config.flatten().map(|c| c.path),
            })
        }
        Ok(_) => Err(errors.into()),
        Err(more) => {
            errors.extend(more);
            Err(errors.into())
        }
    }
}

/// The value, or `None` after moving its problems to `errors`.
fn take<T>(result: Result<T, Vec<Diagnostic>>, errors: &mut Vec<Diagnostic>) -> Option<T> {
    result.map_err(|e| errors.extend(e)).ok()
}
