//! The command line: clap types only. Resolution into [`crate::settings`]
//! happens elsewhere.
//!
//! Every option can also be set from the environment as `PROCRUN_<LONG_NAME>`
//! (e.g. `PROCRUN_PROCFILE=Procfile.dev`); a flag on the command line wins.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// A fast, careful Procfile runner: runs a twelve-factor app's processes
/// locally and exports them to production process managers.
#[derive(Debug, Parser)]
#[command(name = "procrun", version, about, long_about = None, max_term_width = 100)]
pub struct Cli {
    /// Options shared by every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options that every command accepts, before or after its name.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The Procfile [default: Procfile in the app root, or in the current directory]
    #[arg(
        short = 'f',
        long,
        env = "PROCRUN_PROCFILE",
        value_name = "FILE",
        global = true
    )]
    pub procfile: Option<PathBuf>,

    /// Env files to load, comma-separated or repeated; later files win [default: .env in the app root, if present]
    #[arg(
        short = 'e',
        long = "env",
        env = "PROCRUN_ENV",
        value_name = "FILES",
        value_delimiter = ',',
        global = true
    )]
    pub env: Vec<PathBuf>,

    /// The app root, where processes run [default: the Procfile's directory]
    #[arg(
        short = 'd',
        long,
        env = "PROCRUN_ROOT",
        value_name = "DIR",
        global = true
    )]
    pub root: Option<PathBuf>,

    /// Per-process settings (restart, can_die, stop_signal, …); '' for none [default: procrun.toml in the app root, if present]
    // An empty FILE (`--config ''`) is allowed: it reads no config file.
    #[arg(
        long,
        env = "PROCRUN_CONFIG",
        value_name = "FILE",
        value_parser = clap::builder::OsStringValueParser::new().map(PathBuf::from),
        global = true
    )]
    pub config: Option<PathBuf>,

    /// When to colour output
    #[arg(long, env = "PROCRUN_COLOR", value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    /// More of procrun's own diagnostics on stderr (-v, -vv, -vvv); RUST_LOG also works
    #[arg(short = 'v', long, env = "PROCRUN_VERBOSE", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal and NO_COLOR is unset.
    Auto,
    /// Always colour.
    Always,
    /// Never colour.
    Never,
}

/// procrun's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the Procfile and env files and show what would run
    Check(CheckArgs),
    /// Run the formation in the foreground, output prefixed, until one process ends or Ctrl-C
    Start(StartArgs),
    /// Run a one-off command, or a Procfile entry, with the app's environment
    ///
    /// COMMAND alone naming a Procfile entry runs that entry through /bin/sh -c
    /// with its PORT and PS; anything else is executed as given, without a
    /// shell. Everything after COMMAND is passed to it. procrun exits with the
    /// command's exit code: 128+N if it died from signal N, 127 if it was not
    /// found, 126 if it could not be executed.
    Run(RunArgs),
    /// Write the app's processes as configuration for a production process manager
    Export(ExportArgs),
    /// Print the manual page (roff), e.g. `procrun man | man -l -`
    Man,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    Completions {
        /// The shell
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Which instances run, and their ports.
#[derive(Debug, Args, Clone, Default)]
pub struct FormationArgs {
    /// Instances per process type, e.g. all=1,web=2,worker=0 [default: all=1]
    #[arg(short = 'm', long, env = "PROCRUN_FORMATION", value_name = "FORMATION")]
    pub formation: Option<String>,

    /// Base port: the first process type gets PORT, the next PORT+100, ... [default: PORT from the env files, else $PORT, else 5000]
    #[arg(short = 'p', long, env = "PROCRUN_PORT", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
}

/// What happens when a process ends, and how it is stopped: for the common
/// cases without a procrun.toml, and winning over it.
#[derive(Debug, Args, Clone, Default)]
pub struct PolicyArgs {
    /// Process types whose exit does not stop the others, comma-separated, or `all`
    #[arg(long, env = "PROCRUN_CAN_DIE", value_name = "NAMES")]
    pub can_die: Vec<String>,

    /// No process's exit stops the others (as --can-die all)
    #[arg(long, env = "PROCRUN_ANY_CAN_DIE", value_parser = clap::builder::BoolishValueParser::new())]
    pub any_can_die: bool,

    /// Restart these process types whenever they exit (restart = "always"), comma-separated, or `all`
    #[arg(long, env = "PROCRUN_AUTO_RESTART", value_name = "NAMES")]
    pub auto_restart: Vec<String>,

    /// The signal that asks a type to stop, e.g. web=INT,worker=QUIT, or all=INT [default: TERM]
    #[arg(long, env = "PROCRUN_STOP_SIGNAL", value_name = "TYPE=SIG")]
    pub stop_signal: Vec<String>,
}

/// `procrun check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Formation and ports.
    #[command(flatten)]
    pub formation: FormationArgs,

    /// Restart and stop policies.
    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Default seconds between the stop signal and SIGKILL (procrun.toml's stop_timeout wins) [default: 5]
    #[arg(short = 't', long, env = "PROCRUN_TIMEOUT", value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
}

/// `procrun start`.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Only start these process types
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,

    /// Formation and ports.
    #[command(flatten)]
    pub formation: FormationArgs,

    /// Restart and stop policies.
    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Default seconds between the stop signal and SIGKILL (procrun.toml's stop_timeout wins) [default: 5]
    #[arg(short = 't', long, env = "PROCRUN_TIMEOUT", value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Do not print timestamps
    #[arg(long, env = "PROCRUN_NO_TIMESTAMP", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_timestamp: bool,
}

/// `procrun run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Base port for a Procfile entry run by name (as in `start`) [default: PORT from the env files, else $PORT, else 5000]
    #[arg(short = 'p', long, env = "PROCRUN_PORT", value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,

    /// The command and its arguments, or the name of a Procfile entry
    #[arg(
        value_name = "COMMAND",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

/// `procrun export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The target process manager
    #[arg(value_enum, value_name = "FORMAT")]
    pub format: ExportFormat,

    /// Where to write the files [default: ./FORMAT, e.g. ./systemd]
    #[arg(value_name = "OUTPUT_DIR")]
    pub output: Option<PathBuf>,

    /// Formation and ports.
    #[command(flatten)]
    pub formation: FormationArgs,

    /// The app's name, the prefix of every unit, program and service [default: the app root's directory name]
    #[arg(short = 'a', long, env = "PROCRUN_APP", value_name = "NAME")]
    pub app: Option<String>,

    /// Run the processes as this user (systemd, supervisord, runit, launchd, compose)
    #[arg(short = 'u', long, env = "PROCRUN_USER", value_name = "USER")]
    pub user: Option<String>,

    /// Directory for log files (supervisord, runit, launchd) [default: log/ in OUTPUT_DIR; runit: each service's log/main]
    #[arg(short = 'l', long, env = "PROCRUN_LOG", value_name = "DIR")]
    pub log: Option<PathBuf>,

    /// Restart and stop policies.
    #[command(flatten)]
    pub policy: PolicyArgs,

    /// Default seconds between the stop signal and SIGKILL (procrun.toml's stop_timeout wins) [default: 5]
    #[arg(short = 't', long, env = "PROCRUN_TIMEOUT", value_name = "SECS", value_parser = parse_seconds)]
    pub timeout: Option<Duration>,

    /// Container image (compose: else `build:` the app root; kubernetes: required)
    #[arg(long, env = "PROCRUN_IMAGE", value_name = "IMAGE")]
    pub image: Option<String>,

    /// systemd: units for `systemctl --user` (no User=, wanted by default.target)
    #[arg(long, env = "PROCRUN_USER_UNITS", value_parser = clap::builder::BoolishValueParser::new())]
    pub user_units: bool,
}

/// `procrun export FORMAT`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// systemd units: APP.target, a target per type, a service per instance
    Systemd,
    /// A supervisord.conf that runs on its own, and APP.conf to include
    Supervisord,
    /// A runit service directory per instance, for `runsvdir OUTPUT_DIR`
    Runit,
    /// A launchd property list per instance
    Launchd,
    /// A compose.yaml with a service per type
    Compose,
    /// Kubernetes manifests: a Deployment per type, a ConfigMap, a Service for web
    #[value(alias = "k8s")]
    Kubernetes,
}

/// Parses a number of seconds such as `5`, `0.5` or `10s`.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    let number = text.trim().trim_end_matches('s');
    number
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s <= 86_400.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("`{text}` is not a number of seconds from 0 to 86400"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_seconds("0.25s"), Ok(Duration::from_millis(250)));
        assert!(parse_seconds("-1").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
