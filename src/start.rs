//! `procrun start`: run the formation in the foreground, its output
//! multiplexed onto stdout, until it ends or procrun is told to stop.

use std::io::IsTerminal as _;

use tokio::sync::mpsc;

use crate::cli::LogFormat;
use crate::cli::StartArgs;
use crate::diagnostic;
use crate::error::Error;
use crate::output::printer::{Looks, Printer};
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
    eprint!(
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

    let nofile = raise_nofile_limit();
    reap::become_subreaper();
    // Forked while procrun has a single thread: before the printer and the
    // runtime exist.
    let watchdog = Watchdog::start();

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
    let (output, printer) = Printer::start(looks, tty, move |e| {
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
    };
    let result = runtime.block_on(dispatcher::supervise(
        plan, options, output, events_tx, events_rx, watchdog,
    ));
    // Dropping the runtime drops every remaining sender of output, so the
    // printer can finish.
    drop(runtime);
    printer.join();
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
