//! The dispatcher: one task that owns all state of a `procrun start` and
//! `select!`s over unit events, OS signals and timers. It decides when to
//! stop and what the exit code is; everything else only reports to it.
//!
//! Lifecycle (issue 3):
//! - the first instance to end, for whatever reason, stops all the others
//!   and its code (or 128+n after signal n) becomes procrun's;
//! - SIGINT, SIGTERM or SIGHUP stop everything; procrun then exits 128+n;
//!   the same signal again while stopping kills at once;
//! - stopping means SIGTERM once to every process group, then SIGKILL to
//!   whatever is still alive after the timeout;
//! - SIGUSR1 and SIGUSR2 are forwarded to every group;
//! - a closed stdout stops everything quietly (exit 0, unless an instance
//!   had already ended);
//! - on Linux, descendants that left their group are found through `/proc`
//!   (procrun is their subreaper), signalled with the rest and reaped.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::error::Error;
use crate::outcome::{Outcome, SIGNAL_EXIT_BASE, signal_name};
use crate::output::printer::OutputSender;
use crate::plan::Plan;
use crate::supervisor::reap;
use crate::supervisor::signals::kill_process;
use crate::supervisor::spawn::{SpawnContext, spawn};
use crate::supervisor::unit::{self, Event};
use crate::supervisor::watchdog::Watchdog;

/// How long to poll for stray descendants between checks.
const POLL: Duration = Duration::from_millis(10);

/// After SIGKILL, how long to wait for processes before giving up on them
/// (a process stuck in the kernel cannot even be killed).
const GIVE_UP: Duration = Duration::from_secs(5);

/// Options of a supervision run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Grace period between SIGTERM and SIGKILL.
    pub timeout: Duration,
    /// Spawn settings.
    pub spawn: SpawnContext,
}

/// Why procrun stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// An instance ended (or could not start).
    Instance(Outcome),
    /// procrun received this signal.
    Signal(i32),
    /// stdout was closed.
    OutputClosed,
}

#[derive(Debug)]
struct Slot {
    name: String,
    /// The pid (= process group id) while the child is not reaped.
    pid: Option<u32>,
    control: Option<mpsc::UnboundedSender<Signal>>,
}

#[derive(Debug)]
struct Dispatcher {
    slots: Vec<Slot>,
    options: Options,
    output: OutputSender,
    stop: Option<Stop>,
    deadline: Option<Instant>,
    killed_at: Option<Instant>,
    watchdog: Option<Watchdog>,
}

/// Runs the plan until everything has stopped; returns the exit code.
pub async fn supervise(
    plan: &Plan,
    options: Options,
    output: OutputSender,
    events_tx: mpsc::UnboundedSender<Event>,
    mut events: mpsc::UnboundedReceiver<Event>,
    watchdog: Option<Watchdog>,
) -> Result<(i32, Option<Watchdog>), Error> {
    let listen = |kind: SignalKind, what: &str| {
        signal(kind).map_err(|e| Error::io(format!("listening for {what}"), e))
    };
    let mut sigint = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut sigterm = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut sighup = listen(SignalKind::hangup(), "SIGHUP")?;
    let mut sigusr1 = listen(SignalKind::user_defined1(), "SIGUSR1")?;
    let mut sigusr2 = listen(SignalKind::user_defined2(), "SIGUSR2")?;
    let mut sigchld = listen(SignalKind::child(), "SIGCHLD")?;

    let mut d = Dispatcher {
        slots: Vec::with_capacity(plan.instances.len()),
        options,
        output,
        stop: None,
        deadline: None,
        killed_at: None,
        watchdog,
    };

    for spec in &plan.instances {
        if port_in_use(spec.port) {
            d.output.system(format!(
                "warning: PORT {} of {} is already in use on this machine",
                spec.port, spec.name
            ));
        }
    }
    for (index, spec) in plan.instances.iter().enumerate() {
        match spawn(spec, options.spawn) {
            Ok(child) => {
                let pid = child.id();
                if let (Some(w), Some(pid)) = (d.watchdog.as_mut(), pid) {
                    w.watch(pid);
                }
                d.output.system(format!(
                    "{} started with pid {} (PORT={})",
                    spec.name,
                    pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
                    spec.port
                ));
                let (control_tx, control_rx) = mpsc::unbounded_channel();
                tokio::spawn(unit::run(
                    index,
                    child,
                    control_rx,
                    events_tx.clone(),
                    d.output.clone(),
                ));
                d.slots.push(Slot {
                    name: spec.name.clone(),
                    pid,
                    control: Some(control_tx),
                });
            }
            Err(e) => {
                d.output.system(format!(
                    "{} failed to start: {} (command `{}` in {})",
                    spec.name,
                    crate::error::io_reason(&e),
                    spec.command,
                    spec.cwd.display()
                ));
                d.slots.push(Slot {
                    name: spec.name.clone(),
                    pid: None,
                    control: None,
                });
                d.begin_stop(Stop::Instance(Outcome::FailedToStart));
                break;
            }
        }
    }
    drop(events_tx);

    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    let mut events_open = true;
    loop {
        let mut poll_at = far;
        if d.stop.is_some() && d.running() == 0 {
            if d.strays_alive() == 0 {
                break;
            }
            if d.killed_at.is_some_and(|t| t.elapsed() > GIVE_UP) {
                tracing::warn!("descendants survived SIGKILL; leaving them");
                break;
            }
            poll_at = Instant::now() + POLL;
        }
        if let Some(t) = d.killed_at {
            let give_up_at = t + GIVE_UP + unit::DRAIN_TOTAL;
            if Instant::now() >= give_up_at {
                d.output
                    .system("processes still not gone after SIGKILL; giving up on them");
                break;
            }
            poll_at = poll_at.min(give_up_at);
        }
        let kill_at = match (d.deadline, d.killed_at) {
            (Some(t), None) => t,
            _ => far,
        };
        tokio::select! {
            biased;
            event = events.recv(), if events_open => match event {
                Some(Event::Exited { unit, outcome }) => d.exited(unit, outcome),
                Some(Event::OutputClosed) => d.begin_stop(Stop::OutputClosed),
                None => {
                    // Every unit task is gone (it cannot happen while the
                    // printer lives, but never spin on a closed channel).
                    events_open = false;
                    for slot in &mut d.slots {
                        slot.pid = None;
                        slot.control = None;
                    }
                    if d.stop.is_none() {
                        d.begin_stop(Stop::OutputClosed);
                    }
                }
            },
            _ = sigint.recv() => d.signalled(libc::SIGINT),
            _ = sigterm.recv() => d.signalled(libc::SIGTERM),
            _ = sighup.recv() => d.signalled(libc::SIGHUP),
            _ = sigusr1.recv() => d.forward(Signal::SIGUSR1),
            _ = sigusr2.recv() => d.forward(Signal::SIGUSR2),
            _ = sigchld.recv() => {
                if d.stop.is_none() {
                    // An adopted orphan may have died: reap it now rather
                    // than keep a zombie until the end.
                    d.reap_strays();
                }
            }
            () = sleep_until(kill_at) => d.kill_all(),
            () = sleep_until(poll_at) => {}
        }
    }
    Ok((d.exit_code(), d.watchdog.take()))
}

impl Dispatcher {
    fn running(&self) -> usize {
        self.slots.iter().filter(|s| s.control.is_some()).count()
    }

    fn exit_code(&self) -> i32 {
        match self.stop {
            Some(Stop::Instance(outcome)) => outcome.exit_code(),
            Some(Stop::Signal(n)) => SIGNAL_EXIT_BASE + n,
            Some(Stop::OutputClosed) | None => 0,
        }
    }

    fn exited(&mut self, unit: usize, outcome: Outcome) {
        let Some(slot) = self.slots.get_mut(unit) else {
            return;
        };
        if let (Some(w), Some(pid)) = (self.watchdog.as_mut(), slot.pid) {
            w.forget(pid);
        }
        slot.pid = None;
        slot.control = None;
        let name = slot.name.clone();
        self.output.system(format!("{name} {}", outcome.describe()));
        if self.stop.is_none() {
            self.begin_stop(Stop::Instance(outcome));
        }
    }

    fn signalled(&mut self, signal: i32) {
        if self.stop.is_none() {
            self.output
                .system(format!("{} received", signal_name(signal)));
            self.begin_stop(Stop::Signal(signal));
        } else if self.killed_at.is_none() {
            self.output.system(format!(
                "{} received again: killing at once",
                signal_name(signal)
            ));
            self.kill_all();
        }
    }

    fn forward(&mut self, signal: Signal) {
        let mut n = 0;
        for slot in &self.slots {
            if let Some(control) = &slot.control {
                let _ = control.send(signal);
                n += 1;
            }
        }
        self.output.system(format!(
            "{} received: forwarded to {n} process{}",
            signal.as_str(),
            if n == 1 { "" } else { "es" }
        ));
    }

    /// SIGTERM to every group, once; SIGKILL after the timeout.
    fn begin_stop(&mut self, reason: Stop) {
        if self.stop.is_some() {
            return;
        }
        self.stop = Some(reason);
        self.deadline = Some(Instant::now() + self.options.timeout);
        let n = self.running();
        if n > 0 && reason != Stop::OutputClosed {
            self.output.system(format!(
                "stopping {n} process{}: SIGTERM, then SIGKILL after {:?}",
                if n == 1 { "" } else { "es" },
                self.options.timeout
            ));
        }
        for slot in &self.slots {
            if let Some(control) = &slot.control {
                let _ = control.send(Signal::SIGTERM);
            }
        }
        // Descendants outside every live group would not get the group
        // signal; they get their own, once.
        let groups: Vec<i32> = self
            .slots
            .iter()
            .filter_map(|s| s.pid.map(|p| p as i32))
            .collect();
        for p in self.strays() {
            if !groups.contains(&p.pgid) && !p.zombie {
                kill_process(p.pid, Signal::SIGTERM);
            }
        }
        if self.options.timeout.is_zero() {
            self.kill_all();
        }
    }

    /// SIGKILL to every group still running and every descendant.
    fn kill_all(&mut self) {
        if self.killed_at.is_some() {
            return;
        }
        self.killed_at = Some(Instant::now());
        let names: Vec<&str> = self
            .slots
            .iter()
            .filter(|s| s.control.is_some())
            .map(|s| s.name.as_str())
            .collect();
        if !names.is_empty() && !self.options.timeout.is_zero() {
            self.output
                .system(format!("sending SIGKILL to {}", names.join(", ")));
        }
        for slot in &self.slots {
            if let Some(control) = &slot.control {
                let _ = control.send(Signal::SIGKILL);
            }
        }
        for p in self.strays() {
            if !p.zombie {
                kill_process(p.pid, Signal::SIGKILL);
            }
        }
    }

    /// Every descendant except the watchdog, with dead adopted ones reaped.
    fn strays(&self) -> Vec<reap::Proc> {
        if !cfg!(target_os = "linux") {
            return Vec::new();
        }
        let keep = self.watchdog.as_ref().map(Watchdog::pid);
        let mut all = reap::descendants(keep);
        let reaped = reap::reap_adopted(&all, |pid| self.is_unit(pid));
        all.retain(|p| !reaped.contains(&p.pid));
        all
    }

    fn reap_strays(&self) {
        let _ = self.strays();
    }

    /// How many descendants are still alive.
    fn strays_alive(&self) -> usize {
        self.strays().iter().filter(|p| !p.zombie).count()
    }

    /// Whether `pid` is a direct child a unit task has not reaped yet.
    fn is_unit(&self, pid: i32) -> bool {
        self.slots.iter().any(|s| s.pid == Some(pid as u32))
    }
}

/// Whether some process already listens on `port` (TCP, loopback or any
/// address). Binding for an instant is the portable way to ask.
fn port_in_use(port: u16) -> bool {
    use std::net::{Ipv4Addr, TcpListener};
    [Ipv4Addr::LOCALHOST, Ipv4Addr::UNSPECIFIED]
        .into_iter()
        .any(|ip| {
            matches!(TcpListener::bind((ip, port)),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
        })
}
