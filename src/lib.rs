//! procrun: a Procfile runner and process supervisor.
//!
//! Data flows one way: the pure layers ([`procfile`], [`env`](mod@env),
//! [`formation`], [`plan`]) turn text into a [`plan::Plan`]; the commands act
//! on it. The binary is a thin layer over [`main`].

/// `eprint!` that never panics: stderr may be a terminal that hung up, a
/// closed pipe or a full disk, and a message procrun cannot show must not
/// turn into a panic (exit code 101) instead of the exit code that says
/// what happened.
macro_rules! stderr_print {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($arg)*);
    }};
}

/// `eprintln!` that never panics (see `stderr_print!`).
macro_rules! stderr_println {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod check;
pub mod cli;
pub mod completion;
pub mod config;
pub mod control;
pub mod diagnostic;
pub mod env;
pub mod error;
pub mod exit_code;
pub mod export;
pub mod formation;
pub mod load;
pub mod outcome;
pub mod output;
pub mod plan;
pub mod policy;
pub mod procfile;
pub mod readiness;
pub mod run;
pub mod settings;
pub mod shell;
pub mod start;
pub mod supervisor;
pub mod ui;

use std::io::Write as _;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::settings::Settings;

/// Runs procrun with the process's arguments and returns its exit code.
pub fn main() -> i32 {
    use clap::FromArgMatches as _;
    // The matches are kept: they say which options were given, and how.
    let parsed = cli::command()
        .try_get_matches_from(cli::logs_follow_args(std::env::args_os()))
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (mut cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let e = e.format(&mut cli::command());
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::OK
                }
                _ => ExitCode::USAGE,
            };
        }
    };
    settings::fold_aliases(&mut cli, &matches);
    init_tracing(cli.global.verbose, cli.global.color);
    let mut origins = settings::Origins::from_matches(&cli::command(), &matches);
    let foreman = match config::foreman::apply(&mut cli, &mut origins) {
        Ok(applied) => applied,
        Err(e) => return report(&e.into(), settings_color(&cli)),
    };
    let mut settings = match Settings::resolve(&cli.global, origins) {
        Ok(s) => s,
        Err(e) => return report(&e, settings_color(&cli)),
    };
    settings.foreman = foreman.path;
    settings.fallback_timeout = foreman.timeout;
    stderr_print!(
        "{}",
        diagnostic::render_all(&foreman.warnings, settings.color_stderr())
    );
    let color = settings.color_stderr();
    match execute(&settings, cli.command) {
        Ok(code) => code,
        Err(e) => report(&e, color),
    }
}

fn settings_color(cli: &Cli) -> bool {
    use std::io::IsTerminal as _;
    settings::use_color(cli.global.color, std::io::stderr().is_terminal())
}

/// Runs one command.
fn execute(settings: &Settings, command: Command) -> Result<i32, Error> {
    match command {
        Command::Check(args) => {
            let report = check::check(settings, &args)?;
            stderr_print!(
                "{}",
                diagnostic::render_all(&report.warnings, settings.color_stderr())
            );
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(report.summary.as_bytes());
            Ok(ExitCode::OK)
        }
        Command::Start(args) => start::start(settings, &args),
        Command::Man { command } => {
            let page = manual_page(command.as_deref())?;
            let _ = std::io::stdout().lock().write_all(&page);
            Ok(ExitCode::OK)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let script = completion::script(shell, &mut Cli::command());
            let _ = std::io::stdout().lock().write_all(&script);
            Ok(ExitCode::OK)
        }
        Command::Entries => {
            // For completion scripts: any problem prints nothing here.
            let procfile = procfile::load(&settings.procfile).map_err(Error::from)?;
            let mut out = String::new();
            for name in procfile.names() {
                out.push_str(name);
                out.push('\n');
            }
            let _ = std::io::stdout().lock().write_all(out.as_bytes());
            Ok(ExitCode::OK)
        }
        Command::Run(args) => run::run(settings, &args),
        Command::Ps(args) => control::client::ps(&mut connect(settings)?, args.json),
        Command::Restart(args) => control::client::restart(&mut connect(settings)?, &args.names),
        Command::Stop(args) => control::client::stop(&mut connect(settings)?, &args.names),
        Command::Scale(args) => {
            // Checked before connecting: a typo is a usage error either way.
            control::client::parse_counts(&args.counts)?;
            control::client::scale(&mut connect(settings)?, &args.counts)
        }
        Command::Signal(args) => {
            if crate::supervisor::machine::parse_signal(&args.signal).is_none() {
                return Err(diagnostic::Diagnostic::error(format!(
                    "`{}` is not a signal name or number (e.g. HUP, SIGUSR1, 10)",
                    args.signal
                ))
                .into());
            }
            control::client::signal(&mut connect(settings)?, &args.signal, &args.names)
        }
        Command::Quit => control::client::quit(&mut connect(settings)?),
        Command::Connect(args) => control::connect::connect(connect(settings)?, &args.name),
        Command::Send(args) => {
            control::connect::send(&mut connect(settings)?, &args.name, &args.text.join(" "))
        }
        Command::Ui => ui::ui(settings.root.clone(), settings.socket.clone()),
        Command::Logs(args) => {
            use std::io::IsTerminal as _;
            let color = settings::use_color(settings.color, std::io::stdout().is_terminal());
            let params = serde_json::json!({
                "names": args.names,
                "lines": args.lines,
                "follow": args.follow,
                "color": color && !args.json,
                "json": args.json,
            });
            let mut client = connect(settings)?;
            match client.logs(params, &mut std::io::stdout().lock()) {
                Ok(_) => Ok(ExitCode::OK),
                Err(e) if e.exit_code() == ExitCode::OK => Ok(ExitCode::OK),
                Err(e) => Err(e),
            }
        }
        Command::Export(args) => {
            let outcome = export::export(settings, &args)?;
            stderr_print!(
                "{}",
                diagnostic::render_all(&outcome.warnings, settings.color_stderr())
            );
            let _ = std::io::stdout()
                .lock()
                .write_all(outcome.summary().as_bytes());
            Ok(ExitCode::OK)
        }
    }
}

/// The client of the `start` running for the app.
fn connect(settings: &Settings) -> Result<control::client::Client, Error> {
    control::client::Client::connect(&settings.root, settings.socket.as_deref())
}

/// The manual page of procrun, or of one of its commands
/// (`procrun-start(1)`, which procrun(1) refers to).
fn manual_page(command: Option<&str>) -> Result<Vec<u8>, Error> {
    use clap::CommandFactory as _;
    let top = Cli::command();
    let cmd = match command {
        None => top,
        Some(name) => {
            let Some(sub) = top.find_subcommand(name) else {
                let known: Vec<&str> = top
                    .get_subcommands()
                    .filter(|c| !c.is_hide_set())
                    .map(clap::Command::get_name)
                    .filter(|n| *n != "help")
                    .collect();
                return Err(
                    diagnostic::Diagnostic::error(format!("no command `{name}`"))
                        .help(format!("commands: {}", known.join(", ")))
                        .into(),
                );
            };
            sub.clone().name(format!("procrun-{name}"))
        }
    };
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .map_err(|e| Error::io("cannot render the manual page", e))?;
    Ok(page)
}

/// Prints an error once, on stderr, and returns its exit code.
fn report(e: &Error, color: bool) -> i32 {
    match e {
        Error::Diagnostics(list) => stderr_print!("{}", diagnostic::render_all(list, color)),
        other => stderr_println!("error: {other}"),
    }
    e.exit_code()
}

/// procrun's own diagnostics go to stderr; `-v` raises the level and
/// `RUST_LOG` overrides it.
fn init_tracing(verbose: u8, color: cli::ColorChoice) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("procrun={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(settings::use_color(
            color,
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ))
        .with_target(false)
        .try_init();
}
