//! `procrun ui` and `procrun start --ui`: a terminal dashboard of a running
//! app: every instance with its state, the selected one's output, and
//! single keys to restart, stop, start, scale or kill (docs/ui.md).
//!
//! The dashboard is a client of the control socket like `procrun ps` and
//! `procrun logs`, and nothing else: it reads state only through the
//! protocol (docs/control.md) and acts only through its requests, so it
//! works the same against a `start` in another terminal and inside `start
//! --ui`, where it is a thread of the same process speaking to that
//! process's own socket. There is one way into the supervisor.
//!
//! - [`session`]: the threads (input, follow, poll, requests) and the
//!   drawing loop;
//! - [`model`] (with [`actions`]) and [`status`]: the state, changed by
//!   protocol messages and keys, pure;
//! - [`keys`]: keys to intents, pure; [`view`]: layout and drawing;
//! - [`logs`] and [`clean`]: the followed output as safe lines, within
//!   caps;
//! - [`terminal`]: raw mode and the alternate screen, restored on every
//!   way out; stdout and stderr set aside under `start --ui`;
//! - [`tty`] (with [`tty_keys`] and [`tty_link`]): the pane connected to an
//!   instance's terminal (`Enter` on a `--tty` instance), emulated.

pub mod actions;
pub mod clean;
pub mod keys;
pub mod logs;
pub mod model;
pub mod session;
pub mod status;
pub mod terminal;
pub mod tty;
pub mod tty_keys;
pub mod tty_link;
pub mod view;

#[cfg(test)]
mod model_tests;

use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::ui::model::Ended;
use crate::ui::session::Target;
use crate::ui::terminal::{Redirect, Screen};

/// Refuses to start without a terminal (usage error: nothing was started).
pub fn check_terminal() -> Result<(), Error> {
    terminal::check_terminal().map_err(|m| Error::with_code(Diagnostic::error(m), ExitCode::USAGE))
}

/// `procrun ui`: attaches to the running app until the user leaves; the
/// app keeps running.
pub fn ui(root: PathBuf, socket: Option<PathBuf>) -> Result<i32, Error> {
    check_terminal()?;
    let target = Target {
        root,
        socket,
        followed: None,
    };
    let attached = session::attach(&target)?;
    let out = terminal::stdout_terminal().map_err(|e| Error::io("opening the terminal", e))?;
    let screen = Screen::enter(out).map_err(|e| Error::io("setting up the terminal", e))?;
    if let Some(ended) = session::run(&target, attached, screen, false)? {
        stderr_println!("procrun ui: {}", ended.reason);
    }
    Ok(ExitCode::OK)
}

/// How long `start --ui` keeps its socket open at the end for a dashboard
/// that does not follow the output yet.
const FOLLOW_WAIT: Duration = Duration::from_secs(5);

/// The dashboard of `start --ui`: a thread of `start`, attached to its
/// socket, drawing on the terminal that stdout and stderr were taken from.
#[derive(Debug)]
pub struct Foreground {
    redirect: Redirect,
    thread: JoinHandle<Result<Option<Ended>, Error>>,
    followed: Receiver<()>,
}

impl Foreground {
    /// Starts the dashboard on the terminal `redirect` took stdout and
    /// stderr from. On failure the terminal is given back (the redirect
    /// dropped), and the reason returned, so that `start` can run on with
    /// its plain output.
    pub fn start(redirect: Redirect, root: PathBuf, socket: PathBuf) -> Result<Foreground, String> {
        let out = redirect.terminal().map_err(|e| e.to_string())?;
        let (told, followed) = mpsc::sync_channel(1);
        let target = Target {
            root,
            socket: Some(socket),
            followed: Some(told),
        };
        let thread = std::thread::Builder::new()
            .name("ui".into())
            .spawn(move || foreground(&target, out))
            .map_err(|e| e.to_string())?;
        Ok(Foreground {
            redirect,
            thread,
            followed,
        })
    }

    /// Waits (at most 5 s) until the dashboard follows the
    /// app's output, or has failed to: before `start` closes its socket,
    /// so that an app that ended at once is still shown, with its output
    /// and its exit code.
    pub fn wait_followed(&self) {
        // Disconnected: the dashboard's threads are gone.
        let _ = self.followed.recv_timeout(FOLLOW_WAIT);
    }

    /// Once `start` is done: waits for the dashboard (it shows the end and
    /// waits for a key), then gives the terminal back to stdout and stderr
    /// and prints what was said on stderr meanwhile.
    pub fn finish(self) {
        let result = self.thread.join();
        drop(self.redirect);
        match result {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                stderr_println!("warning: the dashboard failed: {}", session::describe(&e))
            }
            Err(_) => stderr_println!("warning: the dashboard failed"),
        }
    }
}

/// The dashboard thread of `start --ui`. However it ends, the app ends
/// with it: a dashboard that failed asks procrun to quit, as a user who
/// leaves it does.
fn foreground(target: &Target, out: std::fs::File) -> Result<Option<Ended>, Error> {
    let run = || -> Result<Option<Ended>, Error> {
        let attached = session::attach(target)?;
        let screen = Screen::enter(out).map_err(|e| Error::io("setting up the terminal", e))?;
        session::run(target, attached, screen, true)
    };
    let result = run();
    if !matches!(result, Ok(Some(_))) {
        // Blocks until `start` is done; the screen is already restored.
        let _ = target
            .connect()
            .and_then(|mut c| c.call("quit", serde_json::Value::Null));
    }
    result
}
