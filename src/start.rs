//! `procrun start`: run the formation in the foreground, its output
//! multiplexed onto stdout, until it ends or procrun is told to stop.

use std::io::IsTerminal as _;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::cli::LogFormat;
use crate::cli::StartArgs;
use crate::control::endpoint::Refused;
use crate::control::server::{Context, Server};
use crate::diagnostic;
use crate::error::Error;
use crate::output::printer::{Looks, Printer};
use crate::output::ring::Ring;
use crate::settings::Settings;
use crate::supervisor::dispatcher::{self, Options};
use crate::supervisor::reap;
use crate::supervisor::spawn::SpawnContext;
use crate::supervisor::unit::Event;
use crate::supervisor::watchdog::Watchdog;

/// Runs `procrun start`; returns the exit code.
pub fn start(settings: &Settings, args: &StartArgs) -> Result<i32, Error> {
    let plan = crate::load::load(
        settings,
        &crate::load::Request {
            formation: &args.formation,
            selected: &args.names,
            policy: &args.policy,
            timeout: args.timeout,
        },
    )?
    .plan;
    stderr_print!(
        "{}",
        diagnostic::render_all(&plan.warnings, settings.color_stderr())
    );
    tracing::info!(
        "app root {}; Procfile {}; env files: {}; base port {} ({:?}); {} instance(s)",
        plan.root.display(),
        settings.procfile.display(),
        plan.env
            .files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        plan.base_port,
        plan.port_source,
        plan.instances.len()
    );

    if args.ui {
        // Before anything runs: the dashboard needs a terminal.
        crate::ui::check_terminal()?;
    }
    let nofile = raise_nofile_limit();
    reap::become_subreaper();
    // Forked while procrun has a single thread: before the printer and the
    // runtime exist.
    let watchdog = Watchdog::start();

    // One `start` per app: taken before anything runs, so that a second
    // one fails without starting a thing; after the watchdog's fork, so
    // that only procrun holds the lock (the kernel frees it when procrun
    // dies).
    let endpoint = crate::control::endpoint::endpoint(&plan.root, settings.socket.as_deref());
    let holder = crate::control::endpoint::Holder {
        pid: std::process::id(),
        root: plan.root.display().to_string(),
        socket: endpoint.socket.display().to_string(),
        started_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let taken = match crate::control::endpoint::take(&endpoint, &holder) {
        Ok(taken) => Some(taken),
        Err(Refused::Running(holder)) => {
            if let Some(w) = watchdog {
                w.finish();
            }
            return Err(crate::control::endpoint::already_running(
                &plan.root,
                holder.as_ref(),
            ));
        }
        // The dashboard speaks to the socket: without one, no dashboard.
        Err(Refused::Failed(reason)) if endpoint.explicit || args.ui => {
            if let Some(w) = watchdog {
                w.finish();
            }
            return Err(diagnostic::Diagnostic::error(format!(
                "the control socket cannot be set up: {reason}"
            ))
            .into());
        }
        Err(Refused::Failed(reason)) => {
            stderr_println!(
                "warning: no control socket ({reason}); procrun ps, restart, logs… will not reach this run (pass --socket PATH to choose another place)"
            );
            None
        }
    };
    tracing::debug!(
        "control socket: {}",
        taken.as_ref().map_or_else(
            || "none".to_owned(),
            |(t, _)| t.socket().display().to_string()
        )
    );

    // `--ui`: the printer's output goes to the log ring only (stdout to
    // /dev/null), and the dashboard gets the terminal (docs/ui.md).
    let redirect = if args.ui {
        Some(
            crate::ui::terminal::Redirect::take()
                .map_err(|e| Error::io("setting the terminal aside for the dashboard", e))?,
        )
    } else {
        None
    };
    let tty = std::io::stdout().is_terminal();
    let json = args.log_format == LogFormat::Json;
    let looks = Looks {
        color: settings.color_stdout() && !json,
        timestamps: !args.no_timestamp,
        json,
        prefix_width: args.prefix_width,
    };

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let closed_tx = events_tx.clone();
    let ring = taken.as_ref().map(|_| Arc::new(Ring::default()));
    let (output, printer) = Printer::start(looks, tty, ring.clone(), move |e| {
        let event = match e {
            Some(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Event::OutputFailed(crate::error::io_reason(&e))
            }
            _ => Event::OutputClosed,
        };
        let _ = closed_tx.send(event);
    })
    .map_err(|e| Error::io("starting the output thread", e))?;

    // A current-thread runtime on the main thread: every child is spawned
    // from this thread, which lives until procrun exits, so the children's
    // parent-death signal only fires when procrun itself dies
    // (PR_SET_PDEATHSIG is tied to the thread, see spawn.rs).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_park({
            // Before waiting: what the readers queued goes to the printer
            // (one hand-off per round of reads), then the pacing pause.
            let output = output.clone();
            move || {
                output.flush();
                output.pacing().gather();
            }
        })
        .build()
        .map_err(|e| Error::io("starting the runtime", e))?;
    let options = Options {
        spawn: SpawnContext::current(nofile),
        tty_color: looks.color,
    };
    let (requests_tx, requests_rx) = mpsc::unbounded_channel();
    let (endpoint, server) = match (taken, ring) {
        (Some((taken, listener)), Some(ring)) => {
            let context = Context {
                ring,
                requests: requests_tx,
                root: plan.root.display().to_string(),
                looks,
                types: plan.types.iter().map(|t| t.name.clone()).collect(),
            };
            match Server::start(listener, context) {
                Ok(server) => (Some(taken), Some(server)),
                Err(e) => {
                    tracing::warn!("control socket: starting its thread: {e}");
                    (None, None)
                }
            }
        }
        _ => (None, None),
    };
    let control = server.as_ref().map(|_| requests_rx);
    // The dashboard is a client of this socket, on a thread of its own.
    let foreground = match (redirect, &endpoint) {
        (Some(redirect), Some(taken)) => {
            match crate::ui::Foreground::start(
                redirect,
                plan.root.clone(),
                taken.socket().to_owned(),
            ) {
                Ok(f) => Some(f),
                Err(reason) => {
                    stderr_println!("warning: no dashboard ({reason}); procrun ui can attach");
                    None
                }
            }
        }
        (Some(redirect), None) => {
            drop(redirect);
            stderr_println!("warning: no dashboard: the control socket did not start");
            None
        }
        (None, _) => None,
    };
    let result = runtime.block_on(dispatcher::supervise(
        plan, options, output, events_tx, events_rx, watchdog, control,
    ));
    // Dropping the runtime drops every remaining sender of output, so the
    // printer can finish.
    drop(runtime);
    printer.join();
    // The last answers (a `quit`'s) go out, then the socket and the lock
    // are removed.
    if let Some(server) = server {
        if let Some(f) = &foreground {
            f.wait_followed();
        }
        server.finish(result.as_ref().ok().map(|(code, _)| *code));
    }
    drop(endpoint);
    if let Some(f) = foreground {
        f.finish();
    }
    let (code, watchdog) = result?;
    if let Some(w) = watchdog {
        w.finish();
    }
    Ok(code)
}

/// Raises the soft limit on open files to the hard limit (each instance
/// needs two pipes; 1000 instances need more than the usual 1024). Returns
/// the original limits, which children get back.
fn raise_nofile_limit() -> Option<(libc::rlim_t, libc::rlim_t)> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard {
        // macOS reports an unlimited hard limit it will not grant.
        let target = if cfg!(target_os = "macos") {
            hard.min(10_240)
        } else {
            hard
        };
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, target.max(soft), hard) {
            tracing::debug!("raising the open-files limit: {e}");
        }
    }
    Some((soft, hard))
}
