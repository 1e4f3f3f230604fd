//! Loading: reads what the settings point at (the Procfile, the env files)
//! and the command line's formation, and builds the plan. Every problem of
//! every input is reported together, so one `procrun check` shows them all.
//!
//! `check`, `start`, `run` and `export` all load through here.

use crate::cli::FormationArgs;
use crate::diagnostic::Diagnostic;
use crate::env::EnvSet;
use crate::error::Error;
use crate::plan::{Plan, PlanRequest};
use crate::procfile::Procfile;
use crate::settings::{Settings, inherited};

/// What a command asks the plan for.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// `-m/--formation` and `-p/--port`.
    pub formation: &'a FormationArgs,
    /// `start NAME…`: only these types (empty: all).
    pub selected: &'a [String],
}

/// The inputs, parsed, and the plan built from them.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The Procfile.
    pub procfile: Procfile,
    /// What would run.
    pub plan: Plan,
}

/// Reads the Procfile and the env files and builds the plan.
pub fn load(settings: &Settings, request: &Request<'_>) -> Result<Loaded, Error> {
    let procfile = crate::procfile::load(&settings.procfile);
    let env = env(settings);
    build(settings, procfile, env, request)
}

/// Reads the env files the settings name.
pub fn env(settings: &Settings) -> Result<EnvSet, Vec<Diagnostic>> {
    crate::env::load(&settings.env_files, &inherited)
}

/// Builds the plan from a Procfile and env files already read (or the
/// problems found reading them), adding the problems of the other inputs.
pub fn build(
    settings: &Settings,
    procfile: Result<Procfile, Vec<Diagnostic>>,
    env: Result<EnvSet, Vec<Diagnostic>>,
    request: &Request<'_>,
) -> Result<Loaded, Error> {
    let formation = crate::formation::parse(request.formation.formation.as_deref().unwrap_or(""));
    let mut errors = Vec::new();
    // Even when one input is broken the others are still checked, against
    // the Procfile when there is one.
    let env = env.unwrap_or_else(|e| {
        errors.extend(e);
        EnvSet::default()
    });
    let (procfile, formation) = match (procfile, formation) {
        (Ok(p), Ok(f)) => (p, f),
        (p, f) => {
            let mut all = p.err().unwrap_or_default();
            all.append(&mut errors);
            all.extend(f.err().unwrap_or_default());
            return Err(all.into());
        }
    };
    let plan_request = PlanRequest {
        formation,
        selected: request.selected.to_vec(),
        port: request.formation.port,
        root: settings.root.clone(),
    };
    match crate::plan::build(&procfile, &env, &plan_request, &inherited) {
        Ok(plan) if errors.is_empty() => Ok(Loaded { procfile, plan }),
        Ok(_) => Err(errors.into()),
        Err(more) => {
            errors.extend(more);
            Err(errors.into())
        }
    }
}
