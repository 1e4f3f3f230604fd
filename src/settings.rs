//! Resolves the command line and `PROCRUN_*` environment into settings, and
//! loads what they point at: the Procfile, the env files and the plan.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use crate::cli::{ColorChoice, FormationArgs, GlobalArgs};
use crate::diagnostic::{Diagnostic, Location};
use crate::env::{EnvFileRef, EnvSet};
use crate::error::Error;
use crate::plan::{Plan, PlanRequest};
use crate::procfile::Procfile;

/// Settings shared by every command, resolved once.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Procfile's path, as it will be shown in messages.
    pub procfile: PathBuf,
    /// The app root (absolute): processes run there.
    pub root: PathBuf,
    /// Env files, in order.
    pub env_files: Vec<EnvFileRef>,
    /// `--color`.
    pub color: ColorChoice,
}

impl Settings {
    /// Resolves the global options.
    ///
    /// The Procfile defaults to `Procfile` in the app root when `-d` is given,
    /// else in the current directory; the root defaults to the Procfile's
    /// directory; the env files default to `.env` in the root, if present.
    pub fn resolve(global: &GlobalArgs) -> Result<Settings, Error> {
        let procfile = match (&global.procfile, &global.root) {
            (Some(p), _) => p.clone(),
            (None, Some(root)) => root.join("Procfile"),
            (None, None) => PathBuf::from("Procfile"),
        };
        let root_given = global
            .root
            .clone()
            .unwrap_or_else(|| match procfile.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            });
        let root = std::fs::canonicalize(&root_given).map_err(|e| {
            Diagnostic::error(format!(
                "app root `{}` is not usable: {}",
                root_given.display(),
                crate::error::io_reason(&e)
            ))
            .at(Location::file(&root_given.display().to_string()))
            .help("pass an existing directory with -d/--root")
        })?;
        if !root.is_dir() {
            return Err(Diagnostic::error(format!(
                "app root `{}` is not a directory",
                root_given.display()
            ))
            .into());
        }
        let env_files = if global.env.is_empty() {
            vec![EnvFileRef {
                path: display_join(&global.root, &procfile, ".env"),
                required: false,
            }]
        } else {
            global
                .env
                .iter()
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| EnvFileRef {
                    path: p.clone(),
                    required: true,
                })
                .collect()
        };
        Ok(Settings {
            procfile,
            root,
            env_files,
            color: global.color,
        })
    }

    /// Whether to colour what goes to stderr.
    pub fn color_stderr(&self) -> bool {
        use_color(self.color, std::io::stderr().is_terminal())
    }

    /// Whether to colour what goes to stdout.
    pub fn color_stdout(&self) -> bool {
        use_color(self.color, std::io::stdout().is_terminal())
    }

    /// Reads and parses the Procfile.
    pub fn load_procfile(&self) -> Result<Procfile, Vec<Diagnostic>> {
        crate::procfile::load(&self.procfile)
    }

    /// Reads the env files.
    pub fn load_env(&self) -> Result<EnvSet, Vec<Diagnostic>> {
        crate::env::load(&self.env_files, &inherited)
    }

    /// Loads the Procfile and env files and builds the plan. All problems
    /// from all three are reported together.
    pub fn plan(
        &self,
        args: &FormationArgs,
        selected: &[String],
    ) -> Result<(Procfile, Plan), Error> {
        let procfile = self.load_procfile();
        let env = self.load_env();
        let formation = crate::formation::parse(args.formation.as_deref().unwrap_or(""));
        // Report every problem at once: even when an env file is broken, the
        // formation is still checked against the Procfile.
        let (procfile, formation) = match (procfile, formation) {
            (Ok(p), Ok(f)) => (p, f),
            (p, f) => {
                let mut all = Vec::new();
                for result in [p.err(), env.err(), f.err()].into_iter().flatten() {
                    all.extend(result);
                }
                return Err(all.into());
            }
        };
        let request = PlanRequest {
            formation,
            selected: selected.to_vec(),
            port: args.port,
            root: self.root.clone(),
        };
        let (env, mut errors) = match env {
            Ok(env) => (env, Vec::new()),
            Err(errors) => (EnvSet::default(), errors),
        };
        let plan = match crate::plan::build(&procfile, &env, &request, &inherited) {
            Ok(plan) if errors.is_empty() => plan,
            Ok(_) => return Err(errors.into()),
            Err(more) => {
                errors.extend(more);
                return Err(errors.into());
            }
        };
        Ok((procfile, plan))
    }
}

/// Looks a name up in procrun's own environment.
pub fn inherited(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// `--color` together with NO_COLOR and whether the stream is a terminal.
pub fn use_color(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

/// `.env` beside the app root as the user would name it: `DIR/.env` when the
/// root or Procfile was given with a directory, else `.env`.
fn display_join(root: &Option<PathBuf>, procfile: &Path, name: &str) -> PathBuf {
    match root {
        Some(root) => root.join(name),
        None => match procfile.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.join(name),
            _ => PathBuf::from(name),
        },
    }
}
