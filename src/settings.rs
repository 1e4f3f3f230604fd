//! Resolves the command line and `PROCRUN_*` environment into settings;
//! [`crate::load`] reads what they point at.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;

use crate::cli::{Cli, ColorChoice, Command, GlobalArgs};
use crate::config::ConfigRef;
use crate::diagnostic::{Diagnostic, Location};
use crate::env::EnvFileRef;
use crate::error::Error;

/// Settings shared by every command, resolved once.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The Procfile's path, as it will be shown in messages.
    pub procfile: PathBuf,
    /// The app root (absolute): processes run there.
    pub root: PathBuf,
    /// Env files, in order.
    pub env_files: Vec<EnvFileRef>,
    /// `procrun.toml`, unless `--config ''` asked for none.
    pub config: Option<ConfigRef>,
    /// `--color`.
    pub color: ColorChoice,
    /// Where each option's value came from.
    pub origins: Origins,
    /// The `.foreman` that was read, if any.
    pub foreman: Option<PathBuf>,
    /// A default stop timeout below procrun.toml's `[defaults]`
    /// (`.foreman`'s `timeout`).
    pub fallback_timeout: Option<std::time::Duration>,
    /// `--socket`: the control socket instead of the app's default one.
    pub socket: Option<PathBuf>,
}

/// Where a setting's value came from, for `check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The command line: the option's long name, `--port`.
    Flag(String),
    /// procrun's environment: `PROCRUN_PORT`.
    Variable(String),
    /// A key of a settings file: `port` in `.foreman`, line 2.
    File {
        /// The key as written.
        key: String,
        /// Where its value is.
        at: Location,
    },
    /// Nothing set it.
    Default,
}

impl Origin {
    /// `from --port`, `from PROCRUN_PORT`, `from port in .foreman:2`,
    /// `default`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Flag(name) => format!("from {name}"),
            Origin::Variable(name) => format!("from {name}"),
            Origin::File { key, at } => format!("from {key} in {}:{}", at.source, at.line),
            Origin::Default => "default".to_owned(),
        }
    }
}

/// The origin of every option that was set, by clap id (`port`,
/// `procfile`); the others are [`Origin::Default`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    /// The origins clap recorded: the command line or a `PROCRUN_*`
    /// variable, for the top level's options and the command's.
    pub fn from_matches(cmd: &clap::Command, matches: &ArgMatches) -> Origins {
        let mut origins = Origins::default();
        let sub = matches
            .subcommand()
            .and_then(|(name, m)| Some((cmd.find_subcommand(name)?, m)));
        // The top level first: a command's own matches (global options
        // given after its name) win.
        let levels = [Some((cmd, matches)), sub];
        for (cmd, matches) in levels.into_iter().flatten() {
            for id in matches.ids() {
                let id = id.as_str();
                let arg = cmd.get_arguments().find(|a| a.get_id() == id);
                let origin = match matches.value_source(id) {
                    Some(ValueSource::CommandLine) => Origin::Flag(match arg {
                        Some(a) => match (a.get_long(), a.get_short()) {
                            (Some(long), _) => format!("--{long}"),
                            (None, Some(short)) => format!("-{short}"),
                            (None, None) => id.to_owned(),
                        },
                        None => format!("--{}", id.replace('_', "-")),
                    }),
                    Some(ValueSource::EnvVariable) => Origin::Variable(
                        arg.and_then(clap::Arg::get_env)
                            .map(|e| e.to_string_lossy().into_owned())
                            .unwrap_or_else(|| format!("PROCRUN_{}", id.to_uppercase())),
                    ),
                    _ => continue,
                };
                origins.0.insert(id.to_owned(), origin);
            }
        }
        origins
    }

    /// Where the option `id` came from.
    pub fn get(&self, id: &str) -> &Origin {
        self.0.get(id).unwrap_or(&Origin::Default)
    }

    /// Records where `id` came from.
    pub fn set(&mut self, id: &str, origin: Origin) {
        self.0.insert(id.to_owned(), origin);
    }

    /// Whether `id` was set at all.
    pub fn is_set(&self, id: &str) -> bool {
        self.0.contains_key(id)
    }
}

impl Origins {
    /// `d`, about a file named by option `id`, with a note pointing at the
    /// settings file line that named it (when one did): the file's own
    /// location says only which file could not be read.
    pub fn noted(&self, id: &str, d: Diagnostic) -> Diagnostic {
        let file_level = d.location.as_ref().is_none_or(|l| l.line == 0);
        match self.get(id) {
            Origin::File { key, at } if file_level => {
                d.note(format!("named by `{key}` here"), Some(at.clone()))
            }
            _ => d,
        }
    }
}

impl Settings {
    /// Resolves the global options.
    ///
    /// The Procfile defaults to `Procfile` in the app root when `-d` is given,
    /// else in the current directory; the root defaults to the Procfile's
    /// directory; the env files default to `.env` in the root, if present,
    /// and the config file to `procrun.toml` there, if present.
    pub fn resolve(global: &GlobalArgs, origins: Origins) -> Result<Settings, Error> {
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
            origins.noted(
                "root",
                Diagnostic::error(format!(
                    "app root `{}` is not usable: {}",
                    root_given.display(),
                    crate::error::io_reason(&e)
                ))
                .at(Location::file(&root_given.display().to_string()))
                .help("pass an existing directory with -d/--root"),
            )
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
        let config = match &global.config {
            Some(path) if path.as_os_str().is_empty() => None,
            Some(path) => Some(ConfigRef {
                path: path.clone(),
                required: true,
            }),
            None => Some(ConfigRef {
                path: display_join(&global.root, &procfile, crate::config::FILE_NAME),
                required: false,
            }),
        };
        Ok(Settings {
            procfile,
            root,
            env_files,
            config,
            color: global.color,
            origins,
            foreman: None,
            fallback_timeout: None,
            socket: global.socket.clone().filter(|p| !p.as_os_str().is_empty()),
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
}

/// Folds foreman's spellings into procrun's options, as given on the
/// command line: `-c`/`--no-color` into `--color`, `--timestamp` into
/// `--no-timestamp`. Of two spellings of one option given on the command
/// line the last one wins, and either wins over its `PROCRUN_*` variable.
pub fn fold_aliases(cli: &mut Cli, matches: &ArgMatches) {
    let sub = matches.subcommand().map(|(_, m)| m);
    let color = last_given(matches, sub, &["color", "force_color", "no_color"]);
    match color {
        Some("force_color") => cli.global.color = ColorChoice::Always,
        Some("no_color") => cli.global.color = ColorChoice::Never,
        _ => {}
    }
    if let Command::Start(args) = &mut cli.command
        && last_given(matches, sub, &["timestamp", "no_timestamp"]) == Some("timestamp")
    {
        args.no_timestamp = false;
    }
}

/// Of `ids`, the one given last on the command line (not from the
/// environment or a default), looked up in the subcommand's matches, then
/// the top level's (global options may be given on either side).
fn last_given<'a>(top: &ArgMatches, sub: Option<&ArgMatches>, ids: &[&'a str]) -> Option<&'a str> {
    let index = |m: &ArgMatches, id: &str| {
        let given = m.try_contains_id(id).unwrap_or(false)
            && m.value_source(id) == Some(ValueSource::CommandLine);
        given
            .then(|| m.indices_of(id).and_then(Iterator::max))
            .flatten()
    };
    // Both levels number the same command line, so indices compare.
    ids.iter()
        .filter_map(|id| {
            let at = sub.and_then(|m| index(m, id)).or_else(|| index(top, id))?;
            Some((at, *id))
        })
        .max_by_key(|(at, _)| *at)
        .map(|(_, id)| id)
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

/// A file in the app root as the user would name it: `DIR/.env` when the
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
