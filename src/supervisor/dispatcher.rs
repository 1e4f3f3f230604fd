//! The dispatcher: the one task of a `procrun start` that gathers events
//! (unit events, OS signals, the clock), hands them to the state machine
//! ([`super::machine`], which decides) and performs the actions it returns:
//! spawning instances, signalling their groups, sweeping `/proc` for
//! descendants that left their group, and queueing procrun's messages.
//!
//! - SIGINT, SIGTERM, SIGHUP and SIGQUIT stop everything (procrun then
//!   exits 128+n);
//!   the same signal again while stopping kills at once;
//! - SIGUSR1 and SIGUSR2 are forwarded to every group;
//! - a closed stdout stops everything quietly;
//! - on Linux, descendants that left their group are found through `/proc`
//!   (procrun is their subreaper), signalled with the rest and reaped.
//!
//! A little over 400 lines: each action's effect (spawn, signal, sweep,
//! probe, suspend) is a short method here, next to the loop that feeds the
//! machine.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep_until};

use crate::control::request::Request;
use crate::error::Error;
use crate::output::notice::{Ident, Key, Notice};
use crate::output::printer::OutputSender;
use crate::plan::Plan;
use crate::supervisor::child::Child;
use crate::supervisor::control::Requests;
use crate::supervisor::machine::{Action, Input, Machine};
use crate::supervisor::probe::Probes;
use crate::supervisor::pty::{self, Terminal};
use crate::supervisor::reap;
use crate::supervisor::signals::kill_process;
use crate::supervisor::spawn::{self, Begun, Handoff, SpawnContext};
use crate::supervisor::unit::{self, Event};
use crate::supervisor::watchdog::Watchdog;

/// How long to poll for stray descendants between checks.
const POLL: Duration = Duration::from_millis(10);

/// How long SIGSTOP sweeps may go on before the SIGKILLs (each sweep stops
/// every process it finds, so only a tree that forks faster than a sweep
/// can scan needs more than two; the dispatcher then sweeps again).
const FREEZE_FOR: Duration = Duration::from_millis(200);

/// After SIGKILL, how long to wait for processes before giving up on them
/// (a process stuck in the kernel cannot even be killed).
const GIVE_UP: Duration = Duration::from_secs(5);

/// After the stop signal, how long the sweep for strays waits at most for
/// the instances to end (and no longer than half the longest stop
/// timeout, after which the strays get SIGKILL).
const STRAYS_AFTER: Duration = Duration::from_secs(1);

/// Options of a supervision run.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Spawn settings.
    pub spawn: SpawnContext,
    /// Whether the output of tty instances keeps its colours (procrun
    /// colours its own).
    pub tty_color: bool,
}

/// A running instance's task, as the dispatcher reaches it.
#[derive(Debug)]
struct Unit {
    /// The pid (= process group id) until the unit reports the exit.
    pid: Option<u32>,
    control: Arc<unit::Link>,
    /// Its terminal, for an instance on a pty.
    terminal: Option<Arc<Terminal>>,
}

/// A tty instance's terminal, and the reader of its output.
type TtySide = (Arc<Terminal>, pty::Reader);

/// The effects layer around the machine.
#[derive(Debug)]
struct Dispatcher {
    machine: Machine,
    /// By key; `None` while the instance does not run.
    units: Vec<Option<Unit>>,
    options: Options,
    output: OutputSender,
    events_tx: mpsc::UnboundedSender<Event>,
    /// The spawner thread's answers, and its cancelling once stopping.
    handoff: Handoff,
    /// Spawns handed to the spawner and not answered yet. Their processes
    /// exist but are no unit's yet: nothing may reap them as strays.
    in_flight: usize,
    /// Adopted orphans to reap once no spawn is in flight.
    reap_due: bool,
    watchdog: Option<Watchdog>,
    /// When descendants last got SIGKILL.
    killed_at: Option<Instant>,
    /// A signal for the strays, and the latest moment to send it (see
    /// [`Dispatcher::signal_strays`]).
    strays_due: Option<(Signal, Instant)>,
    /// How many instances have a unit.
    live: usize,
    /// The readiness probes, by key.
    probes: Probes,
    /// The plan without its instances: what scaling up builds new ones from.
    plan: Plan,
    /// Control requests waiting for their answer.
    requests: Requests,
    /// procrun's window size, which tty instances get.
    window: nix::pty::Winsize,
}

/// Runs the plan until everything has stopped; returns the exit code.
pub async fn supervise(
    plan: Plan,
    options: Options,
    output: OutputSender,
    events_tx: mpsc::UnboundedSender<Event>,
    mut events: mpsc::UnboundedReceiver<Event>,
    watchdog: Option<Watchdog>,
    mut control: Option<mpsc::UnboundedReceiver<Request>>,
) -> Result<(i32, Option<Watchdog>), Error> {
    let listen = |kind: SignalKind, what: &str| {
        signal(kind).map_err(|e| Error::io(format!("listening for {what}"), e))
    };
    let mut sigint = listen(SignalKind::interrupt(), "SIGINT")?;
    let mut sigterm = listen(SignalKind::terminate(), "SIGTERM")?;
    let mut sighup = listen(SignalKind::hangup(), "SIGHUP")?;
    let mut sigquit = listen(SignalKind::quit(), "SIGQUIT")?;
    let mut sigtstp = listen(SignalKind::from_raw(libc::SIGTSTP), "SIGTSTP")?;
    let mut sigusr1 = listen(SignalKind::user_defined1(), "SIGUSR1")?;
    let mut sigusr2 = listen(SignalKind::user_defined2(), "SIGUSR2")?;
    let mut sigchld = Some(listen(SignalKind::child(), "SIGCHLD")?);
    // Only tty instances care about procrun's window size.
    let mut sigwinch = match plan.types.iter().any(|t| t.policy.tty) {
        true => Some(listen(SignalKind::window_change(), "SIGWINCH")?),
        false => None,
    };

    let mut plan = plan;
    let count = plan.instances.len();
    let (handoff, mut spawned) = Handoff::new();
    // The machine owns the specs: one copy of each instance's environment.
    let machine = Machine::new(std::mem::take(&mut plan.instances));
    let mut d = Dispatcher {
        units: (0..count).map(|_| None).collect(),
        machine,
        options,
        output,
        events_tx,
        handoff,
        in_flight: 0,
        reap_due: false,
        watchdog,
        killed_at: None,
        strays_due: None,
        live: 0,
        probes: Probes::new(count),
        plan,
        requests: Requests::default(),
        window: pty::window_size(),
    };
    for (key, spec) in d.machine.specs() {
        d.output.register(Ident {
            key,
            name: spec.name.clone(),
            type_name: spec.type_name.clone(),
            type_index: spec.type_index,
            number: spec.number,
        });
    }
    for (key, spec) in d.machine.specs() {
        if spec.policy.port && port_in_use(spec.port) {
            d.output.notice(Notice::PortInUse {
                key,
                port: spec.port,
            });
        }
    }
    let actions = d.machine.start(Instant::now().into_std());
    d.perform(actions);

    let far = Instant::now() + Duration::from_secs(86_400 * 365);
    loop {
        let mut poll_at = far;
        if let Some((signal, latest)) = d.strays_due {
            // A spawn in flight will be a live instance: not a stray.
            if (d.live == 0 && d.in_flight == 0) || Instant::now() >= latest {
                d.strays_due = None;
                d.sweep_strays(signal);
            } else {
                poll_at = latest;
            }
        }
        if d.machine.finished() {
            if d.strays_alive() == 0 {
                break;
            }
            if d.killed_at.is_some_and(|t| t.elapsed() > GIVE_UP) {
                tracing::warn!("descendants survived SIGKILL; leaving them");
                break;
            }
            if d.killed_at.is_some() {
                // Born after the last sweep (a child forked just before it
                // was stopped): stop and kill those too.
                d.freeze_and_kill();
            }
            poll_at = Instant::now() + POLL;
        }
        if let Some(t) = d.killed_at {
            let give_up_at = t + GIVE_UP + unit::DRAIN_TOTAL;
            if Instant::now() >= give_up_at {
                d.output.notice(Notice::GaveUp);
                break;
            }
            poll_at = poll_at.min(give_up_at);
        }
        let due = d.machine.next_deadline().map_or(far, Instant::from_std);
        let input = tokio::select! {
            biased;
            event = events.recv() => match event {
                Some(Event::Exited { key, outcome }) => {
                    d.exited(key);
                    Input::Exited { key, outcome }
                }
                Some(Event::Ready { key, serial }) => {
                    if !d.probes.done(key, serial) {
                        continue;
                    }
                    Input::Ready { key }
                }
                Some(Event::OutputClosed) => Input::OutputClosed,
                Some(Event::OutputFailed(reason)) => {
                    // stdout is what failed: say it where it can be read.
                    stderr_println!("error: writing the output failed: {reason}; stopping the app");
                    Input::OutputFailed
                }
                // The dispatcher holds a sender: never closed while it runs.
                None => Input::UnitsGone,
            },
            // The dispatcher holds the sender: never closed while it runs.
            Some(s) = spawned.recv() => {
                let key = s.key;
                d.in_flight -= 1;
                let input = match spawn::finish(s) {
                    Some(child) => d.started(key, child.map(|c| (c, None))),
                    None => Input::SpawnCancelled { key },
                };
                // Its unit exists now: what is left to reap is adopted.
                if d.in_flight == 0 && std::mem::take(&mut d.reap_due) {
                    d.reap_strays();
                }
                input
            }
            _ = sigint.recv() => Input::Signal(libc::SIGINT),
            _ = sigterm.recv() => Input::Signal(libc::SIGTERM),
            _ = sighup.recv() => Input::Signal(libc::SIGHUP),
            _ = sigquit.recv() => Input::Signal(libc::SIGQUIT),
            _ = sigusr1.recv() => Input::Forward(Signal::SIGUSR1),
            _ = sigusr2.recv() => Input::Forward(Signal::SIGUSR2),
            _ = sigtstp.recv() => {
                d.suspend().await;
                continue;
            }
            Some(()) = next_signal(&mut sigchld) => {
                if d.machine.stop().is_none() {
                    // An adopted orphan may have died: reap it now rather
                    // than keep a zombie until the end.
                    d.reap_strays();
                } else {
                    // Stopping: every exit raises one, and the strays are
                    // reaped by the sweeps until the end. Not listening
                    // spares a wake-up and a turn of this loop per exit.
                    sigchld = None;
                }
                continue;
            }
            Some(()) = next_signal(&mut sigwinch) => {
                d.window = pty::window_size();
                for t in d.units.iter().flatten().filter_map(|u| u.terminal.as_ref()) {
                    t.set_own_size(d.window);
                }
                continue;
            }
            () = sleep_until(due) => Input::Tick,
            () = sleep_until(poll_at) => continue,
            request = next_request(&mut control) => {
                match request {
                    Some(request) => d.control(request),
                    // The control server is gone; the app runs on.
                    None => control = None,
                }
                d.settle();
                continue;
            }
        };
        let actions = d.machine.handle(input, Instant::now().into_std());
        d.perform(actions);
        d.settle();
        if events.is_empty()
            && let Some(w) = d.watchdog.as_mut()
        {
            // The reaped groups of this burst of exits, in one write.
            w.flush();
        }
    }
    let code = d.machine.exit_code();
    d.requests.finish(&d.machine, code);
    if let Some(requests) = control.take() {
        crate::supervisor::control::answer_after_end(requests, &d.machine, code);
    }
    Ok((code, d.watchdog.take()))
}

/// The next control request; never, without a control socket.
async fn next_request(control: &mut Option<mpsc::UnboundedReceiver<Request>>) -> Option<Request> {
    match control {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// The next delivery of a signal that is listened for; never otherwise.
async fn next_signal(signal: &mut Option<tokio::signal::unix::Signal>) -> Option<()> {
    match signal {
        Some(s) => s.recv().await,
        None => std::future::pending().await,
    }
}

impl Dispatcher {
    /// Answers or applies a control request (see `control.rs`).
    fn control(&mut self, request: Request) {
        let now = Instant::now().into_std();
        let mut added = Vec::new();
        let units = &self.units;
        let terminal = |key: Key| {
            units
                .get(key.index())
                .and_then(Option::as_ref)
                .and_then(|u| u.terminal.clone())
        };
        let actions = self.requests.apply(
            request,
            &mut self.machine,
            &self.plan,
            now,
            &mut added,
            terminal,
        );
        for key in added {
            let spec = self.machine.spec(key);
            self.output.register(Ident {
                key,
                name: spec.name.clone(),
                type_name: spec.type_name.clone(),
                type_index: spec.type_index,
                number: spec.number,
            });
            self.units.push(None);
            self.probes.grow(self.units.len());
        }
        self.perform(actions);
    }

    /// Answers the control requests whose instances have settled.
    fn settle(&mut self) {
        self.requests.settle(&self.machine);
    }

    /// Ctrl-Z: the terminal stops procrun's own process group only, so the
    /// app would run on and its output pile up in the pipes. Stop every
    /// instance, then procrun itself, as a shell job; when the shell
    /// continues procrun (`fg`, `bg`), continue them.
    async fn suspend(&mut self) {
        let live: Vec<&Unit> = self.units.iter().flatten().collect();
        for unit in &live {
            unit.control.signal(Signal::SIGSTOP);
        }
        let n = live.len();
        self.output.notice(Notice::Suspended { count: n });
        // The unit tasks signal their groups when they run: on this
        // single-threaded runtime they were woken by the sends above, and
        // yielding lets each run before procrun stops itself.
        for _ in 0..4 {
            tokio::task::yield_now().await;
        }
        // The printer shows the notice before procrun stops, if it can.
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Err(e) = nix::sys::signal::raise(Signal::SIGSTOP) {
            tracing::warn!("stopping procrun itself: {e}");
        }
        // Continued.
        let mut n = 0;
        for unit in self.units.iter().flatten() {
            unit.control.signal(Signal::SIGCONT);
            n += 1;
        }
        self.output.notice(Notice::Resumed { count: n });
    }

    /// Performs `actions` in order, and those that their results bring.
    fn perform(&mut self, actions: Vec<Action>) {
        let mut queue = VecDeque::from(actions);
        while let Some(action) = queue.pop_front() {
            match action {
                Action::Spawn(key) => {
                    if let Some(input) = self.spawn(key) {
                        queue.extend(self.machine.handle(input, Instant::now().into_std()));
                    }
                }
                Action::Signal(key, signal) => {
                    if let Some(Some(unit)) = self.units.get(key.index()) {
                        unit.control.signal(signal);
                    }
                }
                Action::SignalStrays(signal) => self.signal_strays(signal),
                Action::Notice(notice) => self.output.notice(notice),
                Action::Probe(key) => self.probes.start(
                    key,
                    self.machine.spec(key),
                    self.options.spawn,
                    &self.events_tx,
                ),
                Action::CancelProbe(key) => self.probes.cancel(key),
            }
        }
        if self.machine.stop().is_some() {
            // Stopping for good: what the spawner has not begun stays
            // unstarted.
            self.handoff.cancel();
        }
    }

    /// Starts instance `key`: the machine's input at once, or none while
    /// the spawner thread starts it (its answer comes as [`Spawned`]).
    fn spawn(&mut self, key: Key) -> Option<Input> {
        let spec = self.machine.spec(key);
        let spawned = if spec.policy.tty {
            // On this thread: std forks a pty's child, with a `pre_exec`
            // hook that needs the forking thread to live as long as procrun.
            pty::spawn(
                spec,
                self.options.spawn,
                self.window,
                self.options.tty_color,
            )
            .and_then(|(child, t, reader)| Ok((Child::from_tokio(child)?, Some((t, reader)))))
        } else {
            match spawn::begin(spec, self.options.spawn, key, &self.handoff) {
                Begun::Handed => {
                    self.in_flight += 1;
                    return None;
                }
                Begun::Done(child) => child.map(|c| (c, None)),
            }
        };
        Some(self.started(key, spawned))
    }

    /// Starts the unit task of instance `key`, whose spawn ended so.
    fn started(&mut self, key: Key, spawned: std::io::Result<(Child, Option<TtySide>)>) -> Input {
        let spec = self.machine.spec(key);
        match spawned {
            Ok((child, pty)) => {
                let (terminal, reader) = pty.unzip();
                let pid = child.id();
                spawn::trace_spawn(spec, pid);
                if let (Some(w), Some(pid)) = (self.watchdog.as_mut(), pid) {
                    w.watch(pid);
                }
                let control = Arc::new(unit::Link::default());
                // A log check sees every line, so it is armed before the
                // first is read.
                let log_match = self
                    .probes
                    .arm_log(key, &spec.readiness.check, &self.events_tx);
                tokio::spawn(unit::run(
                    key,
                    child,
                    reader,
                    control.clone(),
                    self.events_tx.clone(),
                    self.output.clone(),
                    log_match,
                ));
                self.live += 1;
                self.units[key.index()] = Some(Unit {
                    pid,
                    control,
                    terminal,
                });
                Input::Started { key, pid }
            }
            Err(e) => Input::SpawnFailed {
                key,
                reason: crate::error::io_reason(&e),
            },
        }
    }

    /// The unit of `key` reaped its child.
    fn exited(&mut self, key: Key) {
        if let Some(unit) = self.units.get_mut(key.index()).and_then(Option::take) {
            self.live -= 1;
            if let (Some(w), Some(pid)) = (self.watchdog.as_mut(), unit.pid) {
                w.forget(pid);
            }
        }
    }

    /// SIGTERM (and SIGCONT) to descendants outside every live group (those
    /// inside get their group's signal); SIGKILL to every descendant.
    ///
    /// The SIGTERM sweep waits until every instance has ended, or at most
    /// [`STRAYS_AFTER`]: while instances run it reads every
    /// `/proc/PID/stat` on the machine (1,100 files with 1,000 instances:
    /// done first, it held back every group's signal by as long, and done
    /// while 1,000 instances end, it was 15 % of procrun's time), and once
    /// they have ended, every stray left is an orphan procrun adopted, so
    /// the kernel's list of procrun's children says whether there is any.
    fn signal_strays(&mut self, signal: Signal) {
        if signal == Signal::SIGKILL {
            self.strays_due = None;
            self.killed_at = Some(Instant::now());
            self.freeze_and_kill();
            return;
        }
        // The machine kills the strays after the longest stop timeout.
        let longest = self
            .machine
            .specs()
            .map(|(_, spec)| spec.policy.stop_timeout)
            .max()
            .unwrap_or(Duration::ZERO);
        self.strays_due = Some((signal, Instant::now() + STRAYS_AFTER.min(longest / 2)));
    }

    /// The sweep of [`Dispatcher::signal_strays`].
    fn sweep_strays(&mut self, signal: Signal) {
        let groups = self.live_groups();
        let strays = self.strays();
        tracing::debug!(
            "{signal} to the descendants outside every live group ({} found)",
            strays.len()
        );
        for p in strays {
            if p.zombie || (signal != Signal::SIGKILL && groups.contains(&p.pgid)) {
                continue;
            }
            kill_process(p.pid, signal);
            kill_process(p.pid, Signal::SIGCONT);
        }
    }

    /// SIGKILL to every descendant, after stopping them all: a process that
    /// keeps forking (a respawning daemon) could otherwise put a new child
    /// out of reach between the listing and the kill. A stopped process
    /// cannot fork, so SIGSTOP sweeps repeat until one finds nothing new
    /// running; then everything found gets SIGKILL. Processes in a live
    /// instance's group are left to their group's SIGKILL, sent by its unit
    /// task (which alone knows whether the pid is still the child's): killing
    /// a member first would let the rest of the group run on it (a shell
    /// whose `sleep` died goes on to its next command).
    fn freeze_and_kill(&self) {
        let groups = self.live_groups();
        let mut frozen = std::collections::HashSet::new();
        let until = Instant::now() + FREEZE_FOR;
        loop {
            let mut new = 0;
            for p in self.strays() {
                if p.zombie || groups.contains(&p.pgid) || !frozen.insert(p.pid) {
                    continue;
                }
                if !p.stopped {
                    kill_process(p.pid, Signal::SIGSTOP);
                    new += 1;
                }
            }
            if new == 0 || Instant::now() >= until {
                break;
            }
        }
        for pid in frozen {
            kill_process(pid, Signal::SIGKILL);
        }
    }

    /// The process groups of the instances still running.
    fn live_groups(&self) -> Vec<i32> {
        self.units
            .iter()
            .flatten()
            .filter_map(|u| u.pid.map(|p| p as i32))
            .collect()
    }

    /// Every descendant except the watchdog, with dead adopted ones reaped.
    fn strays(&self) -> Vec<reap::Proc> {
        if !cfg!(target_os = "linux") {
            return Vec::new();
        }
        let keep = self.watchdog.as_ref().map(Watchdog::pid);
        let mut all = reap::descendants(keep);
        if self.in_flight > 0 {
            // A child of a spawn in flight looks like an adopted one.
            return all;
        }
        let reaped = reap::reap_adopted(&all, |pid| self.is_unit(pid));
        all.retain(|p| !reaped.contains(&p.pid));
        all
    }

    /// Reaps adopted orphans that died. Only a child of procrun that is
    /// neither an instance nor the watchdog can be one: when the kernel
    /// lists none, there is nothing to reap and no `/proc` scan to pay for
    /// (every instance's exit raises SIGCHLD, so this runs once per
    /// restart).
    fn reap_strays(&mut self) {
        if self.in_flight > 0 {
            // Until then a child of procrun's may be a spawn's (see
            // `strays`).
            self.reap_due = true;
            return;
        }
        if let Some(children) = reap::own_children() {
            let ours: std::collections::HashSet<u32> =
                self.units.iter().flatten().filter_map(|u| u.pid).collect();
            let keep = self.watchdog.as_ref().map(Watchdog::pid);
            if children
                .iter()
                .all(|&c| Some(c) == keep || ours.contains(&(c as u32)))
            {
                return;
            }
        }
        let _ = self.strays();
    }

    /// How many descendants are still alive.
    fn strays_alive(&self) -> usize {
        self.strays().iter().filter(|p| !p.zombie).count()
    }

    /// Whether `pid` is a direct child a unit task has not reaped yet.
    fn is_unit(&self, pid: i32) -> bool {
        self.units
            .iter()
            .flatten()
            .any(|u| u.pid == Some(pid as u32))
            || self.probes.is_probe(pid)
    }
}

/// Whether some process already listens on `port` (TCP, loopback or any
/// address). Binding for an instant is the portable way to ask.
#[cfg(not(target_os = "linux"))]
fn port_in_use(port: u16) -> bool {
    use std::net::{Ipv4Addr, TcpListener};
    // Both: with SO_REUSEADDR, BSD lets the wildcard address be bound
    // while another socket listens on the loopback one.
    [Ipv4Addr::LOCALHOST, Ipv4Addr::UNSPECIFIED]
        .into_iter()
        .any(|ip| {
            matches!(TcpListener::bind((ip, port)),
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse)
        })
}

/// Whether some process already listens on `port` (TCP, loopback or any
/// address), asked by binding the wildcard address for an instant. On
/// Linux that bind conflicts with a listener on any IPv4 address (and on
/// `[::]` unless it is IPv6-only), even with SO_REUSEADDR, which keeps
/// sockets in TIME_WAIT from counting; there is no need to listen. Four
/// system calls a port where binding both addresses through
/// `TcpListener` made ten: 1,000 instances, 6,000 calls before the first
/// spawn.
#[cfg(target_os = "linux")]
fn port_in_use(port: u16) -> bool {
    // SAFETY: a socket of our own, closed before returning; the address
    // is a plain struct on this stack.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return false;
        }
        let on: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let mut addr: libc::sockaddr_in = std::mem::zeroed();
        addr.sin_family = libc::AF_INET as libc::sa_family_t;
        addr.sin_port = port.to_be();
        addr.sin_addr.s_addr = u32::from(std::net::Ipv4Addr::UNSPECIFIED).to_be();
        let bound = libc::bind(
            fd,
            (&addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        );
        let in_use = bound != 0 && *libc::__errno_location() == libc::EADDRINUSE;
        libc::close(fd);
        in_use
    }
}

#[cfg(test)]
mod tests {
    use super::port_in_use;

    #[test]
    fn a_port_is_in_use_while_something_listens_on_it() {
        for ip in ["127.0.0.1", "0.0.0.0"] {
            let listener = std::net::TcpListener::bind((ip, 0)).expect("bind");
            let port = listener.local_addr().expect("addr").port();
            assert!(port_in_use(port), "a listener on {ip}:{port}");
            drop(listener);
            assert!(!port_in_use(port), "{ip}:{port} after the listener closed");
        }
    }
}
