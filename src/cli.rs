//! The command line: clap types only. Resolution into [`crate::settings`]
//! happens elsewhere.
//!
//! Every option can also be set from the environment as `PROCRUN_<LONG_NAME>`
//! (e.g. `PROCRUN_PROCFILE=Procfile.dev`); a flag on the command line wins.
//!
//! Long because every option's help text lives here: `--help`, the manual
//! pages and the completions are generated from it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::builder::TypedValueParser as _;
use clap::{Args, Parser, Subcommand, ValueEnum};

/// The command line as procrun parses it: [`Cli`], with an option's
/// environment variable ignored while it is set but empty
/// (`PROCRUN_PORT= procrun start`). An empty value means "not set", as
/// for `NO_COLOR`, rather than an error about a flag nobody typed.
pub fn command() -> clap::Command {
    fn without_empty_env(cmd: clap::Command) -> clap::Command {
        cmd.mut_args(|arg| match arg.get_env() {
            Some(name) if std::env::var_os(name).is_some_and(|v| v.is_empty()) => {
                arg.env(None::<&str>)
            }
            _ => arg,
        })
        .mut_subcommands(without_empty_env)
    }
    use clap::CommandFactory as _;
    without_empty_env(Cli::command())
}

/// A fast, careful Procfile runner: runs a twelve-factor app's processes
/// locally and exports them to production process managers.
///
/// `check` validates the Procfile and env files, `start` runs the processes
/// in the foreground, `run` runs a one-off command in the same environment,
/// `export` writes them as configuration for systemd, supervisord, runit,
/// launchd, Docker Compose or Kubernetes.
///
/// Every option can also be set from the environment as
/// PROCRUN_<LONG_NAME> (e.g. PROCRUN_PROCFILE=Procfile.dev,
/// PROCRUN_NO_TIMESTAMP=1; one set but empty counts as unset); a flag on
/// the command line wins.
///
/// Exit codes: 0 success; 1 procrun itself failed while running; 2 invalid
/// input (a flag, the Procfile, an env file, the formation or a port), and
/// nothing was started. `start` exits with the code of the first instance
/// to end, 128+N if it died from signal N or procrun was stopped by signal N
/// (130 after Ctrl-C), 127 if it could not be started, 0 if procrun's stdout
/// was closed. `run` exits with the command's code, 128+N if it died from
/// signal N, 127 if it was not found, 126 if it could not be executed.
#[derive(Debug, Parser)]
#[command(
    name = "procrun",
    version,
    about,
    max_term_width = 100,
    after_long_help = crate::exit_code::exit_code_help()
)]
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

    /// When to colour output; --color alone means always (as foreman's)
    #[arg(
        long,
        env = "PROCRUN_COLOR",
        value_name = "WHEN",
        value_parser = ColorParser,
        default_value = "auto",
        num_args = 0..=1,
        default_missing_value = "always",
        global = true
    )]
    pub color: ColorChoice,

    /// Colour output: --color=always (foreman's -c)
    // This and --no-color are folded into `color` after parsing
    // (settings::fold_aliases): the last of the three given wins.
    #[arg(short = 'c', hide_short_help = true, global = true)]
    pub force_color: bool,

    /// Do not colour output: --color=never (foreman's spelling)
    #[arg(long, hide_short_help = true, global = true)]
    pub no_color: bool,

    /// The control socket of `start` and of ps, restart, stop, scale, logs, signal, quit, connect, send and ui [default: one per app root, in $XDG_RUNTIME_DIR/procrun or /tmp/procrun-UID]
    #[arg(long, env = "PROCRUN_SOCKET", value_name = "PATH", global = true)]
    pub socket: Option<PathBuf>,

    /// More of procrun's own diagnostics on stderr (-v, -vv, -vvv); RUST_LOG also works
    #[arg(short = 'v', long, env = "PROCRUN_VERBOSE", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

/// `--color`'s values, with an error that explains the bare `--color`:
/// it takes the next word when there is one, so `start --color web` reads
/// `web` as the colour.
#[derive(Clone, Copy, Debug)]
struct ColorParser;

impl clap::builder::TypedValueParser for ColorParser {
    type Value = ColorChoice;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<ColorChoice, clap::Error> {
        clap::builder::EnumValueParser::<ColorChoice>::new()
            .parse_ref(cmd, arg, value)
            .map_err(|_| {
                clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    format!(
                        "invalid value '{}' for '--color': one of auto, always, never\n\n  \
                         tip: --color alone means always; before a process name or a command write -c or --color=always\n",
                        value.to_string_lossy()
                    ),
                )
                .with_cmd(cmd)
            })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            ColorChoice::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
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
    ///
    /// Starts nothing. Prints each process type with its instance count,
    /// ports and command, then the base port and where it came from, the app
    /// root and the env files read. Every problem is reported at once, with
    /// file:line:col, and makes procrun exit 2. Warnings do not fail: `web:cmd`
    /// without a blank after the colon, PORT or PS set in an env file, a key
    /// set twice in one file, more than 100 instances of a type.
    Check(CheckArgs),
    /// Run the formation in the foreground, output prefixed, until it ends or Ctrl-C
    ///
    /// Each instance runs as `/bin/sh -c COMMAND` (`exec COMMAND` when the
    /// command is simple) in the app root, in a process group of its own,
    /// with the env files' variables, PORT and PS (e.g. PS=web.2). Its stdout
    /// and stderr are shown line by line as `HH:MM:SS web.1 | line`.
    ///
    /// procrun stops everything when an instance ends (it exits with that
    /// instance's code, 128+N if signal N killed it, 127 if it could not be
    /// started), when it receives SIGINT, SIGTERM or SIGHUP (exit 128+N), or
    /// when its stdout is closed (exit 0). Stopping sends SIGTERM to every
    /// process group, waits --timeout seconds, then sends SIGKILL; a second
    /// Ctrl-C kills at once. SIGUSR1 and SIGUSR2 are forwarded to every group.
    /// When procrun is killed, a watchdog process kills every group.
    ///
    /// While it runs, `procrun ps`, `restart`, `stop`, `scale`, `logs`,
    /// `signal` and `quit` control it from other terminals, over a unix
    /// socket only its user can reach (one `start` per app root).
    Start(StartArgs),
    /// Run a one-off command, or a Procfile entry, with the app's environment
    ///
    /// COMMAND alone naming a Procfile entry runs that entry through /bin/sh -c
    /// with its PORT and PS; anything else is executed as given, without a
    /// shell. Everything after COMMAND is passed to it. procrun exits with the
    /// command's exit code: 128+N if it died from signal N, 127 if it was not
    /// found, 126 if it could not be executed.
    ///
    /// The command gets procrun's environment plus the env files (which win),
    /// runs in the app root, and has procrun's stdin, stdout, stderr and
    /// terminal. It takes procrun's place in its process group: Ctrl-C typed
    /// at the terminal and a signal sent to the whole group reach it
    /// directly, once; signals sent to procrun (SIGTERM, SIGHUP, SIGQUIT,
    /// SIGUSR1, SIGUSR2, SIGWINCH, SIGALRM, SIGINT) are forwarded to it.
    Run(RunArgs),
    /// Write the app's processes as configuration for a production process manager
    ///
    /// Every process gets the command, PORT, PS and env-file values it gets
    /// under `procrun start`, each value quoted for the format. All files are
    /// rendered first, then written under temporary names and renamed into
    /// place; a `.procrun-export-APP` file lists them, so the next export of
    /// the app into the same directory removes (and names) the files that
    /// are no longer part of it, and another app's export never touches
    /// them. A value the format cannot hold, a file of another app in the
    /// way, or a missing required option, fails the export with exit code 2,
    /// and nothing is written.
    Export(ExportArgs),
    /// Show each instance of the running app: pid, state, uptime, restarts, port, CPU, memory
    ///
    /// Asks the `procrun start` running for this app (found by its app root,
    /// or --socket). CPU% is the use since the previous `ps` (at least 0.2 s
    /// before), else the average over the process's life; CPU% and RSS are
    /// the instance's own process, not its children.
    Ps(PsArgs),
    /// Restart instances of the running app: a type (all its instances), an instance (web.2), or all
    ///
    /// Each is stopped with its stop signal and timeout, then started again
    /// with the same name, PORT and PS; a stopped or ended one is simply
    /// started. Returns once the new processes have started.
    Restart(RestartArgs),
    /// Stop instances of the running app; they stay stopped and do not end the app
    ///
    /// The app ends when no instance is left running, or on `procrun quit`
    /// or Ctrl-C in its terminal. `procrun restart NAME` starts them again.
    Stop(NamesArgs),
    /// Run more or fewer instances of a type in the running app, e.g. worker=3
    ///
    /// New instances get the next ports (base + 100 × type index +
    /// instance − 1); scaling down stops the highest-numbered first.
    Scale(ScaleArgs),
    /// Show the recent output of the running app, or of some instances, and follow it with --follow
    ///
    /// The last -n lines of each selected instance (kept in memory by
    /// `start`: up to 256 KiB per instance, 16 MiB in all) and procrun's messages, as
    /// `start` printed them. Here `-f` means --follow; name the Procfile
    /// with --procfile.
    Logs(LogsArgs),
    /// Send a signal to instances of the running app (their process groups)
    Signal(SignalArgs),
    /// Stop the running app as Ctrl-C would, and wait until it has stopped
    Quit,
    /// Attach this terminal to an instance started with --tty; detach with Ctrl-]
    ///
    /// Shows the instance's recent output, then its live output as its
    /// terminal writes it, and sends every key typed to it (Ctrl-C and
    /// Ctrl-Z included: they reach the program, not procrun). The window
    /// size follows this terminal's. Ctrl-] detaches and the instance keeps
    /// running; `start` keeps printing its lines all along. Several clients
    /// may be connected to one instance: all see its output, and what any
    /// of them types is delivered. Exits 0 on a detach or when the instance
    /// exits (or is stopped), 1 when the connection to `start` is lost.
    Connect(ConnectArgs),
    /// Type a line into an instance started with --tty: TEXT, then Enter
    ///
    /// For scripts: the words of TEXT joined by spaces, then a carriage
    /// return (what the Enter key sends), written to the instance's
    /// terminal. Returns once written; fails when the instance has not read
    /// its input for 5 seconds.
    Send(SendArgs),
    /// A terminal dashboard of the running app: every process, its state and output; keys restart, stop, scale
    ///
    /// Attaches to the `procrun start` running for this app (found by its
    /// app root, or --socket) and shows each instance (state, PORT,
    /// restarts, uptime, CPU%, RSS) beside the selected one's output, "all"
    /// for everything merged. j/k select, r restarts, s stops, S starts a
    /// stopped one, +/- scale its type, x sends SIGKILL, / searches, ? shows
    /// every key; q leaves the dashboard and the app keeps running. `procrun
    /// start --ui` runs the app with the dashboard in the foreground.
    Ui,
    /// Print the manual page (roff), e.g. `procrun man | man -l -`, or a command's: `procrun man start`
    Man {
        /// The command whose page to print [default: procrun's own]
        #[arg(value_name = "COMMAND")]
        command: Option<String>,
    },
    /// Print the Procfile's entries, one per line (for completion scripts)
    #[command(name = "__entries", hide = true)]
    Entries,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell)
    ///
    /// The bash, zsh and fish scripts also complete the Procfile's entries
    /// after `start` and `run`, read when you press Tab (with the -f/-d
    /// typed so far, and .foreman).
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

    /// Run these process types on a terminal of their own (colours, live output, `procrun connect`), comma-separated; --tty alone: all
    // `--tty` alone is `--tty all`; like --color it takes the next word,
    // so before a process name write `--tty=all` (docs/tty.md).
    #[arg(
        long,
        env = "PROCRUN_TTY",
        value_name = "NAMES",
        num_args = 0..=1,
        default_missing_value = "all"
    )]
    pub tty: Vec<String>,
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

    /// Default time between the stop signal and SIGKILL: seconds, or 500ms, 1.5s, 2m (procrun.toml's stop_timeout wins) [default: 5s]
    #[arg(short = 't', long, env = "PROCRUN_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
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

    /// Default time between the stop signal and SIGKILL: seconds, or 500ms, 1.5s, 2m (procrun.toml's stop_timeout wins) [default: 5s]
    #[arg(short = 't', long, env = "PROCRUN_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Do not print timestamps
    #[arg(long, env = "PROCRUN_NO_TIMESTAMP", value_parser = clap::builder::BoolishValueParser::new())]
    pub no_timestamp: bool,

    /// Print timestamps (the default; foreman's spelling, wins over PROCRUN_NO_TIMESTAMP)
    // Folded into `no_timestamp` after parsing (settings::fold_aliases).
    #[arg(long, hide_short_help = true)]
    pub timestamp: bool,

    /// Longest process name in a line's prefix; longer names are shortened in the middle with … (0: no limit)
    #[arg(long, env = "PROCRUN_PREFIX_WIDTH", value_name = "N", default_value_t = crate::output::style::DEFAULT_PREFIX_WIDTH)]
    pub prefix_width: usize,

    /// Show the dashboard (procrun ui) instead of the prefixed output; quitting it stops the app
    #[arg(long, env = "PROCRUN_UI", value_parser = clap::builder::BoolishValueParser::new())]
    pub ui: bool,

    /// How output is written: prefixed lines, or one JSON object per line (see docs/json.md)
    #[arg(long, env = "PROCRUN_LOG_FORMAT", value_enum, value_name = "FORMAT", default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--log-format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// `HH:MM:SS web.1 | line`, procrun's messages under `system`.
    Text,
    /// NDJSON: one object per child line and per event of procrun's.
    Json,
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

    /// Default time between the stop signal and SIGKILL: seconds, or 500ms, 1.5s, 2m (procrun.toml's stop_timeout wins) [default: 5s]
    #[arg(short = 't', long, env = "PROCRUN_TIMEOUT", value_name = "DURATION", value_parser = parse_duration)]
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

/// Parses a duration: a number of seconds (`5`, `0.5`), or a number with
/// a unit, `ms`, `s`, `m` or `h` (`500ms`, `1.5s`, `2m`), from 0 to a day.
/// The same grammar serves every duration flag and procrun.toml's string
/// values, so `-t 2m` and `stop_timeout = "2m"` mean the same.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let max = crate::config::MAX_SECONDS;
    match duration_seconds(text) {
        Some(s) if (0.0..=max).contains(&s) => Ok(Duration::from_secs_f64(s)),
        Some(_) => Err(format!(
            "`{text}` is out of range: from 0 to a day ({max}s)"
        )),
        None => Err(format!(
            "`{text}` is not a duration: write seconds (5, 0.5) or a number with ms, s, m or h (500ms, 1.5s, 2m)"
        )),
    }
}

/// The seconds a duration's text stands for (any finite number, range
/// unchecked), or `None` when it is not one.
pub fn duration_seconds(text: &str) -> Option<f64> {
    let t = text.trim();
    // `e` belongs to the number (`1e3`); any other letter starts the unit.
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let scale = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let n = number.trim().parse::<f64>().ok()?;
    (n.is_finite() && !number.trim().is_empty()).then_some(n * scale)
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
    fn durations() {
        let ok = |t: &str| parse_duration(t).map(|d| d.as_secs_f64());
        assert_eq!(ok("5"), Ok(5.0));
        assert_eq!(ok(" 0.25s"), Ok(0.25));
        assert_eq!(ok("500ms"), Ok(0.5));
        assert_eq!(ok("1.5s"), Ok(1.5));
        assert_eq!(ok("2m"), Ok(120.0));
        assert_eq!(ok("2 m"), Ok(120.0));
        assert_eq!(ok("1h"), Ok(3600.0));
        assert_eq!(ok("24h"), Ok(86_400.0));
        assert_eq!(ok("1e1s"), Ok(10.0));
        for bad in [
            "", "-1", "soon", "5x", "1m30s", "s", "inf", "nan", "nanms", "25h", "2 min",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}

/// `procrun ps`.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Print JSON (a list of objects) instead of a table
    #[arg(long)]
    pub json: bool,
}

/// `procrun restart`.
#[derive(Debug, Args)]
pub struct RestartArgs {
    /// Process types or instances (web, web.2) [default: every instance]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// Instances to act on.
#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Process types or instances (web, web.2)
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

/// `procrun scale`.
#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// Instances per type, e.g. web=2,worker=3
    #[arg(value_name = "TYPE=N", required = true)]
    pub counts: Vec<String>,
}

/// `procrun logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep printing new output until interrupted (-f)
    #[arg(long)]
    pub follow: bool,

    /// Lines per instance to show first
    #[arg(short = 'n', long, value_name = "N", default_value_t = 100)]
    pub lines: usize,

    /// Print the JSON records of --log-format json
    #[arg(long)]
    pub json: bool,

    /// Process types or instances (web, web.2) [default: all]
    #[arg(value_name = "NAME")]
    pub names: Vec<String>,
}

/// `procrun connect`.
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The instance (web.1), or a type that has one
    #[arg(value_name = "NAME")]
    pub name: String,
}

/// `procrun send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The instance (web.1), or a type that has one
    #[arg(value_name = "NAME")]
    pub name: String,

    /// What to type (words joined by spaces)
    #[arg(
        value_name = "TEXT",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub text: Vec<String>,
}

/// `procrun signal`.
#[derive(Debug, Args)]
pub struct SignalArgs {
    /// The signal: HUP, SIGUSR1, 10, …
    #[arg(value_name = "SIGNAL")]
    pub signal: String,

    /// Process types or instances (web, web.2)
    #[arg(value_name = "NAME", required = true)]
    pub names: Vec<String>,
}

/// The arguments with `logs -f` read as `logs --follow`: everywhere else
/// `-f` names the Procfile, as in foreman, but `tail -f`, `docker logs -f`
/// and `kubectl logs -f` all mean follow. Only words after `logs` change.
pub fn logs_follow_args(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    // The global options that take a value: the word after one is not the
    // command's name.
    const VALUED: [&str; 8] = [
        "-f",
        "--procfile",
        "-e",
        "--env",
        "-d",
        "--root",
        "--config",
        "--socket",
    ];
    let mut out = Vec::new();
    let mut args = args.into_iter();
    out.extend(args.next());
    let mut skip_value = false;
    for arg in args.by_ref() {
        let text = arg.to_string_lossy().into_owned();
        out.push(arg);
        if skip_value {
            skip_value = false;
        } else if VALUED.contains(&text.as_str()) {
            skip_value = true;
        } else if !text.starts_with('-') {
            if text != "logs" {
                out.extend(args);
                return out;
            }
            break;
        }
    }
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy().into_owned();
        if text == "--" {
            out.push(arg);
            out.extend(args);
            return out;
        }
        if text == "-f" {
            out.push(OsString::from("--follow"));
        } else if let Some(rest) = text.strip_prefix("-f").filter(|r| {
            !r.is_empty() && !text.starts_with("--") && r.chars().all(|c| c.is_ascii_alphanumeric())
        }) {
            // `-fn5`: follow, then the rest of the cluster.
            out.push(OsString::from("--follow"));
            out.push(OsString::from(format!("-{rest}")));
        } else {
            out.push(arg);
        }
    }
    out
}

#[cfg(test)]
mod follow_tests {
    use super::*;

    fn rewrite(line: &str) -> String {
        let args = line.split(' ').map(OsString::from);
        logs_follow_args(args)
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn only_the_logs_command_reads_dash_f_as_follow() {
        assert_eq!(rewrite("procrun logs -f web"), "procrun logs --follow web");
        assert_eq!(
            rewrite("procrun -f P logs -fn5"),
            "procrun -f P logs --follow -n5"
        );
        assert_eq!(rewrite("procrun -f logs start"), "procrun -f logs start");
        assert_eq!(rewrite("procrun start -f P"), "procrun start -f P");
        assert_eq!(rewrite("procrun run logs -f x"), "procrun run logs -f x");
        assert_eq!(rewrite("procrun logs -- -f"), "procrun logs -- -f");
    }
}
