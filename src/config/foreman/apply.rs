//! Applying `.foreman`: where it is, and which options it fills.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{FILE_NAME, Value, boolean, load};
use crate::cli::{Cli, ColorChoice, Command, GlobalArgs};
use crate::diagnostic::{Diagnostic, Location};
use crate::settings::{Origin, Origins};

/// What `.foreman` gave that is not an option on the command line.
#[derive(Clone, Debug, Default)]
pub struct Applied {
    /// The file read, if there was one.
    pub path: Option<PathBuf>,
    /// Its `timeout`: a default below procrun.toml's `[defaults]`.
    pub timeout: Option<Duration>,
    /// Unknown and ignored keys.
    pub warnings: Vec<Diagnostic>,
}

/// Where `.foreman` is looked for: in the app root as the command line
/// (or `PROCRUN_*`) names it — `-d DIR`, else the Procfile's directory —
/// else in the current directory, where foreman reads it. Its own
/// `root` and `procfile` do not move it.
pub fn location(global: &GlobalArgs) -> PathBuf {
    let dir = match (&global.root, &global.procfile) {
        (Some(root), _) => Some(root.clone()),
        (None, Some(procfile)) => procfile.parent().map(Path::to_owned),
        (None, None) => None,
    };
    match dir {
        Some(dir) if !dir.as_os_str().is_empty() => dir.join(FILE_NAME),
        _ => PathBuf::from(FILE_NAME),
    }
}

/// Reads `.foreman` (see [`location`]) and sets every option it names that
/// neither the command line nor a `PROCRUN_*` variable set, recording the
/// origin of each. Only `check`, `start`, `run`, `export` and the hidden
/// `__entries` (for completion scripts) read it.
pub fn apply(cli: &mut Cli, origins: &mut Origins) -> Result<Applied, Vec<Diagnostic>> {
    if !matches!(
        cli.command,
        Command::Check(_)
            | Command::Start(_)
            | Command::Run(_)
            | Command::Export(_)
            | Command::Entries
    ) {
        return Ok(Applied::default());
    }
    let Some(file) = load(&location(&cli.global))? else {
        return Ok(Applied::default());
    };
    let mut applied = Applied {
        path: Some(file.path.clone()),
        timeout: None,
        warnings: file.warnings.clone(),
    };
    let mut errors = Vec::new();
    let source = file.path.display().to_string();
    for entry in &file.entries {
        let origin = Origin::File {
            key: entry.written.clone(),
            at: entry.at.clone(),
        };
        // The option this key fills, unless something else set it.
        let free = |id: &str| !origins.is_set(id);
        let bad = |what: &str| {
            Diagnostic::error(format!("`{}` in `{source}` {what}", entry.written))
                .at(entry.at.clone())
        };
        let text = match &entry.value {
            Value::Scalar { text, .. } => Some(text.as_str()),
            _ => None,
        };
        let id = match entry.key.as_str() {
            "procfile" | "root" | "app" | "user" | "log" | "port" | "formation" | "concurrency"
            | "timeout"
                if text.is_none() =>
            {
                errors.push(bad("must be a single value").help(format!(
                    "e.g. `{}: {}`",
                    entry.written,
                    example(&entry.key)
                )));
                continue;
            }
            "procfile" | "root" if text.is_some_and(|t| t.trim().is_empty()) => {
                errors.push(bad("is empty").help(format!(
                    "name a path, e.g. `{}: {}`, or remove the line",
                    entry.written,
                    example(&entry.key)
                )));
                continue;
            }
            "procfile" if free("procfile") => {
                cli.global.procfile = text.map(|t| file.path_of(t));
                "procfile"
            }
            "root" if free("root") => {
                cli.global.root = text.map(|t| file.path_of(t));
                "root"
            }
            "env" if free("env") => {
                let files: Vec<String> = match &entry.value {
                    Value::Scalar { text, .. } => text.split(',').map(str::to_owned).collect(),
                    Value::List(items) => items.clone(),
                    Value::Empty => Vec::new(),
                };
                cli.global.env = files
                    .iter()
                    .map(|f| f.trim())
                    .filter(|f| !f.is_empty())
                    .map(|f| file.path_of(f))
                    .collect();
                "env"
            }
            "port" if free("port") => {
                let Some(port) = text.and_then(crate::plan::parse_port) else {
                    errors.push(bad("is not a port number (1-65535)").help("e.g. `port: 3000`"));
                    continue;
                };
                match &mut cli.command {
                    Command::Check(a) => a.formation.port = Some(port),
                    Command::Start(a) => a.formation.port = Some(port),
                    Command::Export(a) => a.formation.port = Some(port),
                    Command::Run(a) => a.port = Some(port),
                    _ => {}
                }
                "port"
            }
            // `concurrency` is the name foreman gave `formation` before 0.80.
            "formation" | "concurrency"
                if free("formation")
                    && !(entry.key == "concurrency" && file.get("formation").is_some()) =>
            {
                let formation = text.map(str::to_owned);
                if let Err(e) = crate::formation::parse(text.unwrap_or("")) {
                    errors.extend(e.into_iter().map(|d| relocate(d, &entry.at)));
                    continue;
                }
                match &mut cli.command {
                    Command::Check(a) => a.formation.formation = formation,
                    Command::Start(a) => a.formation.formation = formation,
                    Command::Export(a) => a.formation.formation = formation,
                    _ => {}
                }
                "formation"
            }
            "timeout" if free("timeout") => {
                // foreman's timeout is whole seconds; procrun's units work too.
                match text.map(crate::cli::parse_duration) {
                    Some(Ok(t)) => applied.timeout = Some(t),
                    Some(Err(e)) => {
                        errors.push(bad("is not a duration").help(e));
                        continue;
                    }
                    None => {}
                }
                "timeout"
            }
            "color"
                if ["color", "force_color", "no_color"]
                    .iter()
                    .all(|id| free(id)) =>
            {
                let Some(on) = text.and_then(boolean) else {
                    errors.push(bad("must be true or false").help("e.g. `color: true`"));
                    continue;
                };
                cli.global.color = if on {
                    ColorChoice::Always
                } else {
                    ColorChoice::Never
                };
                "color"
            }
            key @ ("timestamp" | "no-timestamp") if free("timestamp") && free("no_timestamp") => {
                let Some(on) = text.and_then(boolean) else {
                    errors.push(bad("must be true or false").help(format!("e.g. `{key}: false`")));
                    continue;
                };
                if let Command::Start(a) = &mut cli.command {
                    a.no_timestamp = on == (key == "no-timestamp");
                }
                "no_timestamp"
            }
            "app" | "user" | "log" if free(&entry.key) => {
                if let Command::Export(a) = &mut cli.command {
                    let value = text.map(str::to_owned);
                    match entry.key.as_str() {
                        "app" => a.app = value,
                        "user" => a.user = value,
                        _ => a.log = value.map(|v| file.path_of(&v)),
                    }
                }
                match entry.key.as_str() {
                    "app" => "app",
                    "user" => "user",
                    _ => "log",
                }
            }
            // Set elsewhere, or not one of procrun's keys (a warning).
            _ => continue,
        };
        origins.set(id, origin);
    }
    if errors.is_empty() {
        Ok(applied)
    } else {
        Err(errors)
    }
}

/// A diagnostic about a value's text (located in a one-line pseudo-file)
/// moved to where that value is in `.foreman`.
pub fn relocate(mut d: Diagnostic, value: &Location) -> Diagnostic {
    if let Some(at) = &d.location {
        let col = value.col + at.col.saturating_sub(1);
        d.location = Some(Location {
            col,
            width: at.width,
            ..value.clone()
        });
    }
    d
}

fn example(key: &str) -> &'static str {
    match key {
        "procfile" => "Procfile.dev",
        "root" => ".",
        "port" => "3000",
        "formation" | "concurrency" => "web=1,worker=2",
        "timeout" => "5",
        _ => "…",
    }
}
