//! procrun: a Procfile runner and process supervisor.
//!
//! Data flows one way: the pure layers ([`procfile`], [`env`], [`formation`],
//! [`plan`]) turn text into a [`plan::Plan`]; the commands act on it. The
//! binary is a thin layer over [`main`].

pub mod check;
pub mod cli;
pub mod config;
pub mod diagnostic;
pub mod env;
pub mod error;
pub mod export;
pub mod formation;
pub mod load;
pub mod outcome;
pub mod output;
pub mod plan;
pub mod policy;
pub mod procfile;
pub mod run;
pub mod settings;
pub mod shell;
pub mod start;
pub mod supervisor;

use std::io::Write as _;

use clap::Parser as _;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::settings::Settings;

/// Runs procrun with the process's arguments and returns its exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    error::EXIT_OK
                }
                _ => error::EXIT_USAGE,
            };
        }
    };
    init_tracing(cli.global.verbose, cli.global.color);
    let settings = match Settings::resolve(&cli.global) {
        Ok(s) => s,
        Err(e) => return report(&e, settings_color(&cli)),
    };
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
            eprint!(
                "{}",
                diagnostic::render_all(&report.warnings, settings.color_stderr())
            );
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(report.summary.as_bytes());
            Ok(error::EXIT_OK)
        }
        Command::Start(args) => start::start(settings, &args),
        Command::Man => {
            use clap::CommandFactory as _;
            let mut page = Vec::new();
            clap_mangen::Man::new(Cli::command())
                .render(&mut page)
                .map_err(|e| Error::io("cannot render the manual page", e))?;
            let _ = std::io::stdout().lock().write_all(&page);
            Ok(error::EXIT_OK)
        }
        Command::Completions { shell } => {
            use clap::CommandFactory as _;
            let mut out = std::io::stdout().lock();
            clap_complete::generate(shell, &mut Cli::command(), "procrun", &mut out);
            Ok(error::EXIT_OK)
        }
        Command::Run(args) => run::run(settings, &args),
        Command::Export(args) => {
            let outcome = export::export(settings, &args)?;
            eprint!(
                "{}",
                diagnostic::render_all(&outcome.warnings, settings.color_stderr())
            );
            let _ = std::io::stdout()
                .lock()
                .write_all(outcome.summary().as_bytes());
            Ok(error::EXIT_OK)
        }
    }
}

/// Prints an error once, on stderr, and returns its exit code.
fn report(e: &Error, color: bool) -> i32 {
    match e {
        Error::Diagnostics(list) => eprint!("{}", diagnostic::render_all(list, color)),
        other => eprintln!("error: {other}"),
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
