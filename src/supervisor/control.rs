//! The dispatcher's side of control requests: names resolved to
//! instances, requests turned into the machine's [`Control`] inputs, and
//! answers held until what was asked for has happened (a restarted
//! instance has started again, a stopped one has ended).

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::oneshot;

use crate::control::request::{Command, InstanceStatus, Reply, Request, TerminalRef, no_match};
use crate::control::wire::WireError;
use crate::output::notice::{Key, Notice};
use crate::plan::Plan;
use crate::supervisor::machine::{Action, Control, Input, Machine, State};
use crate::supervisor::pty::Terminal;

/// The most instances of one type `scale` starts (each type has 100
/// ports; beyond that they overlap the next type's anyway).
pub const MAX_SCALE: u32 = 1000;

type Answer = oneshot::Sender<Result<Reply, WireError>>;

/// What an answer waits for, per instance.
#[derive(Debug, Clone, Copy)]
enum Until {
    /// It has been started this often (or cannot be: it ended, backs off,
    /// or waits for what it starts after).
    Runs(u32),
    /// It has ended.
    Ended,
}

#[derive(Debug)]
struct Waiter {
    keys: Vec<(Key, Until)>,
    answer: Answer,
}

/// The requests being answered.
#[derive(Debug, Default)]
pub struct Requests {
    waiting: Vec<Waiter>,
    quits: Vec<Answer>,
}

impl Requests {
    /// Applies `request`: answers it at once, or keeps it until it settles.
    /// Instances added for a scale-up are pushed on `added`; `terminal`
    /// gives a running instance's terminal, if it has one.
    pub fn apply(
        &mut self,
        request: Request,
        machine: &mut Machine,
        plan: &Plan,
        now: Instant,
        added: &mut Vec<Key>,
        terminal: impl Fn(Key) -> Option<Arc<Terminal>>,
    ) -> Vec<Action> {
        let Request {
            command,
            from,
            reply,
        } = request;
        if let Command::Ps = command {
            let keys: Vec<Key> = machine.shown().collect();
            let _ = reply.send(Ok(Reply::Instances(statuses(machine, &keys))));
            return Vec::new();
        }
        if machine.stop().is_some() {
            match command {
                Command::Quit => self.quits.push(reply),
                _ => {
                    let _ = reply.send(Err(WireError::new("stopping", "the app is stopping")));
                }
            }
            return Vec::new();
        }
        // The names of a request that acts on instances, resolved once.
        let keys = match &command {
            Command::Restart(names) | Command::Stop(names) | Command::Signal(_, names) => {
                match resolve(machine, plan, names, false) {
                    Ok(keys) => keys,
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        return Vec::new();
                    }
                }
            }
            _ => Vec::new(),
        };
        let control = |request: Control, machine: &mut Machine| {
            machine.handle(Input::Control { request, from }, now)
        };
        match command {
            // Answered above.
            Command::Ps => Vec::new(),
            Command::Select(names) => {
                let answer = resolve(machine, plan, &names, true).map(Reply::Keys);
                let _ = reply.send(answer);
                Vec::new()
            }
            Command::Restart(_) => {
                let until = keys
                    .iter()
                    .map(|&k| (k, Until::Runs(machine.runs(k) + 1)))
                    .collect();
                let actions = control(Control::Restart(keys), machine);
                self.wait(until, reply);
                actions
            }
            Command::Stop(_) => {
                let until = keys.iter().map(|&k| (k, Until::Ended)).collect();
                let actions = control(Control::Stop(keys), machine);
                self.wait(until, reply);
                actions
            }
            Command::Signal(signal, _) => {
                let actions = control(Control::Signal(keys.clone(), signal), machine);
                let _ = reply.send(Ok(Reply::Instances(statuses(machine, &keys))));
                actions
            }
            Command::Scale(counts) => {
                if let Err(e) = check_scale(machine, plan, &counts) {
                    let _ = reply.send(Err(e));
                    return Vec::new();
                }
                let mut actions = Vec::new();
                let mut until = Vec::new();
                for (type_name, count) in counts {
                    for number in 1..=count {
                        if machine.find(&type_name, number).is_none()
                            && let Some(spec) = plan.instance(&type_name, number)
                        {
                            added.push(machine.add(spec));
                        }
                    }
                    let shown: Vec<Key> = machine.shown().collect();
                    for key in machine.specs().map(|(k, _)| k).collect::<Vec<_>>() {
                        let spec = machine.spec(key);
                        if spec.type_name != type_name {
                            continue;
                        }
                        if spec.number <= count && !shown.contains(&key) {
                            until.push((key, Until::Runs(machine.runs(key) + 1)));
                        } else if spec.number > count && shown.contains(&key) {
                            until.push((key, Until::Ended));
                        }
                    }
                    actions.extend(control(Control::Scale { type_name, count }, machine));
                }
                self.wait(until, reply);
                actions
            }
            Command::Quit => {
                self.quits.push(reply);
                control(Control::Quit, machine)
            }
            Command::Terminal { name, what } => {
                match running_terminal(machine, plan, &name, &terminal) {
                    Ok((key, t)) => {
                        let _ = reply.send(Ok(Reply::Terminal(TerminalRef(t))));
                        let action = format!("{what} to {}", machine.spec(key).name);
                        vec![Action::Notice(Notice::Control { action, from })]
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                        Vec::new()
                    }
                }
            }
        }
    }

    fn wait(&mut self, keys: Vec<(Key, Until)>, answer: Answer) {
        self.waiting.push(Waiter { keys, answer });
    }

    /// Answers the requests whose instances have settled (all of them once
    /// the app is stopping).
    pub fn settle(&mut self, machine: &Machine) {
        let stopping = machine.stop().is_some();
        let mut i = 0;
        while i < self.waiting.len() {
            let done = stopping
                || self.waiting[i]
                    .keys
                    .iter()
                    .all(|&(key, until)| settled(machine, key, until));
            if done {
                let w = self.waiting.swap_remove(i);
                let keys: Vec<Key> = w.keys.iter().map(|(k, _)| *k).collect();
                let _ = w
                    .answer
                    .send(Ok(Reply::Instances(statuses(machine, &keys))));
            } else {
                i += 1;
            }
        }
    }

    /// `start` is done: every answer goes out, `quit`s with the exit code.
    pub fn finish(&mut self, machine: &Machine, code: i32) {
        self.settle(machine);
        for answer in self.quits.drain(..) {
            let _ = answer.send(Ok(Reply::Quit(code)));
        }
    }
}

/// Answers the requests that come after the app has ended, until the
/// control server lets go of its end: `start` keeps its socket open a
/// moment longer (for a dashboard to show the end), and a dashboard's first
/// `ps` may come after the last instance has ended. `ps` gets the final
/// statuses, `quit` the exit code, anything else "stopping". On a thread of
/// its own: the dispatcher's runtime is done.
pub fn answer_after_end(
    mut requests: tokio::sync::mpsc::UnboundedReceiver<Request>,
    machine: &Machine,
    code: i32,
) {
    let keys: Vec<Key> = machine.shown().collect();
    let last = statuses(machine, &keys);
    let answering = std::thread::Builder::new()
        .name("control-end".into())
        .spawn(move || {
            while let Some(Request { command, reply, .. }) = requests.blocking_recv() {
                let answer = match command {
                    Command::Ps => Ok(Reply::Instances(last.clone())),
                    Command::Quit => Ok(Reply::Quit(code)),
                    _ => Err(WireError::new("stopping", "the app is stopping")),
                };
                let _ = reply.send(answer);
            }
        });
    if let Err(e) = answering {
        tracing::debug!("no thread for control requests after the end: {e}");
    }
}

fn settled(machine: &Machine, key: Key, until: Until) -> bool {
    let state = machine.state(key);
    match until {
        Until::Ended => state == State::Ended,
        Until::Runs(n) => {
            (machine.runs(key) >= n && !matches!(state, State::Spawning))
                || matches!(state, State::Ended | State::Waiting { .. })
                || machine.waits(key)
        }
    }
}

fn check_scale(machine: &Machine, plan: &Plan, counts: &[(String, u32)]) -> Result<(), WireError> {
    for (name, count) in counts {
        let Some(t) = plan.types.iter().find(|t| t.name == *name) else {
            let known = plan.types.iter().map(|t| t.name.clone()).collect();
            return Err(WireError {
                message: format!("no process type is named `{name}`"),
                ..no_match(name, known)
            });
        };
        if *count > MAX_SCALE {
            return Err(WireError::new(
                "invalid_params",
                format!("{count} instances of `{name}`: at most {MAX_SCALE} per type"),
            ));
        }
        if *count > 0 && plan.instance(&t.name, *count).is_none() {
            return Err(WireError::new(
                "invalid_params",
                format!(
                    "`{name}.{count}` would get PORT={}, above the highest port 65535",
                    t.port + count - 1
                ),
            ));
        }
    }
    // After each type's own limits, which say more about a count too high.
    // The formation's cap holds for the running app too.
    let mut total: u64 = machine
        .shown()
        .filter(|&k| !counts.iter().any(|(t, _)| *t == machine.spec(k).type_name))
        .count() as u64;
    total += counts.iter().map(|(_, n)| u64::from(*n)).sum::<u64>();
    if total > crate::formation::MAX_TOTAL_INSTANCES {
        return Err(WireError::new(
            "invalid_params",
            format!(
                "that makes {total} instances in all: procrun runs at most {}",
                crate::formation::MAX_TOTAL_INSTANCES
            ),
        ));
    }
    Ok(())
}

/// The instances `names` select: a type selects its instances, `web.2`
/// itself; none selects every instance. `hidden` includes instances scaled
/// away (for `logs`). A type with no instance selects nothing; any other
/// unknown name is an error listing what exists.
fn resolve(
    machine: &Machine,
    plan: &Plan,
    names: &[String],
    hidden: bool,
) -> Result<Vec<Key>, WireError> {
    let candidates: Vec<Key> = if hidden {
        machine.specs().map(|(k, _)| k).collect()
    } else {
        machine.shown().collect()
    };
    if names.is_empty() {
        return Ok(candidates);
    }
    let mut keys = Vec::new();
    for name in names {
        let found: Vec<Key> = candidates
            .iter()
            .copied()
            .filter(|&k| {
                let spec = machine.spec(k);
                spec.name == *name || spec.type_name == *name
            })
            .collect();
        if found.is_empty() && !plan.types.iter().any(|t| t.name == *name) {
            let mut known: Vec<String> = candidates
                .iter()
                .map(|&k| machine.spec(k).name.clone())
                .collect();
            known.extend(plan.types.iter().map(|t| t.name.clone()));
            return Err(no_match(name, known));
        }
        for k in found {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
    }
    Ok(keys)
}

/// The terminal of the running tty instance `name` selects.
fn running_terminal(
    machine: &Machine,
    plan: &Plan,
    name: &str,
    terminal: &impl Fn(Key) -> Option<Arc<Terminal>>,
) -> Result<(Key, Arc<Terminal>), WireError> {
    let key = resolve_one(machine, plan, name)?;
    let spec = machine.spec(key);
    if !spec.policy.tty {
        return Err(WireError::new(
            "no_tty",
            format!(
                "{} does not run on a terminal: start it with `procrun start --tty` (or --tty={}, or `tty = true` under [process.{}] in procrun.toml)",
                spec.name, spec.type_name, spec.type_name
            ),
        ));
    }
    match terminal(key).filter(|t| !t.ended()) {
        Some(t) => Ok((key, t)),
        None => Err(WireError::new(
            "not_running",
            format!(
                "{} is not running ({})",
                spec.name,
                machine.status(key).state
            ),
        )),
    }
}

/// The one instance `name` selects: an instance (`web.2`), or a type that
/// has exactly one. Scaled-away instances are not candidates.
pub fn resolve_one(machine: &Machine, plan: &Plan, name: &str) -> Result<Key, WireError> {
    let keys = resolve(machine, plan, &[name.to_owned()], false)?;
    match keys.as_slice() {
        [key] => Ok(*key),
        [] => Err(WireError::new(
            "not_running",
            format!("`{name}` has no instance (scale it up first)"),
        )),
        many => Err(WireError {
            code: "ambiguous".into(),
            message: format!("`{name}` has {} instances: name one of them", many.len()),
            known: many.iter().map(|&k| machine.spec(k).name.clone()).collect(),
        }),
    }
}

/// What `ps` shows of `keys`.
pub fn statuses(machine: &Machine, keys: &[Key]) -> Vec<InstanceStatus> {
    let now = Instant::now();
    let wall = SystemTime::now();
    keys.iter()
        .map(|&key| {
            let spec = machine.spec(key);
            let s = machine.status(key);
            let own = crate::readiness::own_port(spec);
            let running = s.pid.is_some() || matches!(s.state, "running" | "ready" | "stopping");
            InstanceStatus {
                key,
                name: spec.name.clone(),
                type_name: spec.type_name.clone(),
                number: spec.number,
                pid: s.pid,
                state: s.state,
                port: own.or(spec.policy.port.then_some(spec.port)),
                restarts: s.restarts,
                started_at: s.since.map(|t| wall - now.saturating_duration_since(t)),
                exit_code: if running {
                    None
                } else {
                    s.last.map(crate::outcome::Outcome::exit_code)
                },
                tty: spec.policy.tty,
            }
        })
        .collect()
}
