//! Readiness probes: the checks `ready = …` asks for, run as tokio tasks so
//! that the dispatcher never blocks on them. Each task tries until it
//! succeeds (then reports [`Event::Ready`] once) or is aborted; the machine
//! decides about timeouts. The log checks are no task: the instance's
//! output pumps test each line with a [`LogMatch`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::output::lines::Chunk;
use crate::output::notice::Key;
use crate::plan::ProcessSpec;
use crate::readiness::{Check, http_url};
use crate::supervisor::signals::kill_group;
use crate::supervisor::spawn::SpawnContext;
use crate::supervisor::unit::Event;

/// The longest one TCP connect or HTTP request may take.
const ATTEMPT: Duration = Duration::from_secs(2);

/// The pids of running exec probes: procrun's direct children that the
/// stray sweep must leave to tokio's reaping.
pub type ProbePids = Arc<Mutex<Vec<i32>>>;

/// Tests an instance's output lines for its `log` or `log_regex` check,
/// until the first match.
#[derive(Debug)]
pub struct LogMatch {
    pattern: Pattern,
    done: AtomicBool,
    key: Key,
    serial: u64,
    events: mpsc::UnboundedSender<Event>,
}

#[derive(Debug)]
enum Pattern {
    Text(Box<memchr::memmem::Finder<'static>>),
    // On bytes: a line need not be UTF-8 to match.
    Regex(regex::bytes::Regex),
}

impl LogMatch {
    /// The matcher for `check`, if it is a log check (the pattern was
    /// checked when the config was read).
    pub fn new(
        check: &Check,
        key: Key,
        serial: u64,
        events: mpsc::UnboundedSender<Event>,
    ) -> Option<Arc<LogMatch>> {
        let pattern = match check {
            Check::Log(text) => Pattern::Text(Box::new(
                memchr::memmem::Finder::new(text.as_bytes()).into_owned(),
            )),
            Check::LogRegex(re) => Pattern::Regex(regex::bytes::Regex::new(re).ok()?),
            _ => return None,
        };
        Some(Arc::new(LogMatch {
            pattern,
            done: AtomicBool::new(false),
            key,
            serial,
            events,
        }))
    }

    /// Stops matching.
    pub fn cancel(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    /// Tests the lines of `chunk`: true for the first match (only once);
    /// the caller then [`report`](Self::report)s it, after passing the
    /// chunk on, so that the matching line is shown before "is ready".
    pub fn scan(&self, chunk: &Chunk) -> bool {
        if self.done.load(Ordering::Relaxed) {
            return false;
        }
        let mut found = false;
        chunk.for_each_line(|line, _| {
            found = found
                || match &self.pattern {
                    Pattern::Text(f) => f.find(line).is_some(),
                    Pattern::Regex(re) => re.is_match(line),
                };
        });
        found && !self.done.swap(true, Ordering::Relaxed)
    }

    /// Tells the dispatcher that the check passed.
    pub fn report(&self) {
        let _ = self.events.send(Event::Ready {
            key: self.key,
            serial: self.serial,
        });
    }
}

/// A readiness check in progress.
#[derive(Debug)]
enum Probing {
    /// None.
    Idle,
    /// A port, http or exec probe task.
    Task(u64, tokio::task::AbortHandle),
    /// The output pumps test lines (armed when the instance was spawned).
    Log(Arc<LogMatch>),
}

/// Every instance's probe, as the dispatcher keeps them.
#[derive(Debug)]
pub struct Probes {
    by_key: Vec<Probing>,
    /// Numbers the probes, so that a stale success is told apart.
    serial: u64,
    /// Running exec probes.
    pids: ProbePids,
}

impl Probes {
    /// No probe yet, for `n` instances.
    pub fn new(n: usize) -> Self {
        Probes {
            by_key: (0..n).map(|_| Probing::Idle).collect(),
            serial: 0,
            pids: ProbePids::default(),
        }
    }

    /// The matcher of a log check, armed before the instance's first line
    /// is read; `None` for other checks.
    pub fn arm_log(
        &mut self,
        key: Key,
        check: &Check,
        events: &mpsc::UnboundedSender<Event>,
    ) -> Option<Arc<LogMatch>> {
        self.serial += 1;
        let m = LogMatch::new(check, key, self.serial, events.clone())?;
        self.by_key[key.index()] = Probing::Log(m.clone());
        Some(m)
    }

    /// Starts the probe of `key` (a log check is already armed).
    pub fn start(
        &mut self,
        key: Key,
        spec: &ProcessSpec,
        ctx: SpawnContext,
        events: &mpsc::UnboundedSender<Event>,
    ) {
        if matches!(self.by_key[key.index()], Probing::Log(_)) {
            return;
        }
        self.serial += 1;
        if let Some(task) = start(
            spec,
            key,
            self.serial,
            ctx,
            self.pids.clone(),
            events.clone(),
        ) {
            self.by_key[key.index()] = Probing::Task(self.serial, task);
        }
    }

    /// Stops the probe of `key`: an exec probe's process group is killed
    /// with its task.
    pub fn cancel(&mut self, key: Key) {
        match std::mem::replace(&mut self.by_key[key.index()], Probing::Idle) {
            Probing::Idle => {}
            Probing::Task(_, task) => task.abort(),
            Probing::Log(m) => m.cancel(),
        }
    }

    /// Whether probe `serial` is the current one of `key`; it is then done.
    pub fn done(&mut self, key: Key, serial: u64) -> bool {
        let current = match &self.by_key[key.index()] {
            Probing::Idle => return false,
            Probing::Task(s, _) => *s,
            Probing::Log(m) => m.serial,
        };
        if current == serial {
            self.by_key[key.index()] = Probing::Idle;
        }
        current == serial
    }

    /// Whether `pid` is a running exec probe (tokio reaps it).
    pub fn is_probe(&self, pid: i32) -> bool {
        self.pids.lock().is_ok_and(|pids| pids.contains(&pid))
    }
}

/// Starts the probe task of a port, http or exec check; `None` for the
/// others.
fn start(
    spec: &ProcessSpec,
    key: Key,
    serial: u64,
    ctx: SpawnContext,
    pids: ProbePids,
    events: mpsc::UnboundedSender<Event>,
) -> Option<tokio::task::AbortHandle> {
    let interval = spec.readiness.interval;
    let port = crate::readiness::probe_port(spec);
    let attempt: Attempt = match &spec.readiness.check {
        Check::Port(p) => Attempt::Port(p.unwrap_or(port)),
        Check::Http(target) => Attempt::Http(http_url(target, port)),
        Check::Exec(cmd) => Attempt::Exec {
            command: cmd.clone(),
            spec: Box::new(spec.clone()),
            ctx,
            pids,
        },
        _ => return None,
    };
    let task = tokio::spawn(async move {
        loop {
            if attempt.run(interval).await {
                let _ = events.send(Event::Ready { key, serial });
                return;
            }
            tokio::time::sleep(interval).await;
        }
    });
    Some(task.abort_handle())
}

enum Attempt {
    Port(u16),
    Http(String),
    Exec {
        command: String,
        spec: Box<ProcessSpec>,
        ctx: SpawnContext,
        pids: ProbePids,
    },
}

impl Attempt {
    async fn run(&self, interval: Duration) -> bool {
        match self {
            Attempt::Port(port) => {
                let connect = TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, *port));
                matches!(tokio::time::timeout(ATTEMPT, connect).await, Ok(Ok(_)))
            }
            Attempt::Http(url) => tokio::time::timeout(ATTEMPT, http_ok(url))
                .await
                .unwrap_or(false),
            Attempt::Exec {
                command,
                spec,
                ctx,
                pids,
            } => exec_ok(command, spec, *ctx, pids, interval).await,
        }
    }
}

/// Whether a GET of `url` (`http://host[:port]/path`) answers 2xx or 3xx.
async fn http_ok(url: &str) -> bool {
    // Checked when procrun.toml was read.
    let Ok(crate::readiness::HttpTarget {
        host,
        port,
        authority,
        path,
    }) = crate::readiness::parse_http_url(url)
    else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect((host, port)).await else {
        return false;
    };
    // HTTP/1.0 and `Connection: close`: the answer needs no parsing beyond
    // its status line.
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {authority}\r\nUser-Agent: procrun\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.contains(&b'\n') && head.len() < 1024 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    status_ok(&head)
}

/// Whether an HTTP status line says 2xx or 3xx.
fn status_ok(head: &[u8]) -> bool {
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let mut words = line.split(|b| *b == b' ');
    let proto = words.next().unwrap_or_default();
    let code = words.next().unwrap_or_default();
    proto.starts_with(b"HTTP/") && code.len() == 3 && (code[0] == b'2' || code[0] == b'3')
}

/// Kills an exec probe's process group when the attempt ends in any way,
/// including the task being aborted: no probe outlives its attempt.
struct Group(u32);

impl Drop for Group {
    fn drop(&mut self) {
        kill_group(self.0, Signal::SIGKILL);
    }
}

/// Whether `command` (`sh -c`, the instance's environment and directory, a
/// process group of its own) exits 0 within `interval`.
async fn exec_ok(
    command: &str,
    spec: &ProcessSpec,
    ctx: SpawnContext,
    pids: &ProbePids,
    interval: Duration,
) -> bool {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if !spec.policy.port {
        cmd.env_remove("PORT");
    }
    crate::supervisor::spawn::guard_child(&mut cmd, ctx);
    let Ok(mut child) = cmd.spawn() else {
        return false;
    };
    let Some(pid) = child.id() else {
        return false;
    };
    let group = Group(pid);
    let list = |f: &dyn Fn(&mut Vec<i32>)| {
        if let Ok(mut pids) = pids.lock() {
            f(&mut pids);
        }
    };
    list(&|p| p.push(pid as i32));
    let status = tokio::time::timeout(interval, child.wait()).await;
    drop(group);
    if status.is_err() {
        // Outlived the interval: killed with its group; reap it.
        let _ = child.wait().await;
    }
    list(&|p| p.retain(|q| *q != pid as i32));
    matches!(status, Ok(Ok(s)) if s.success())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert!(status_ok(b"HTTP/1.0 200 OK\r\n"));
        assert!(status_ok(b"HTTP/1.1 302 Found\r\n"));
        assert!(!status_ok(b"HTTP/1.0 404 Not Found\r\n"));
        assert!(!status_ok(b"HTTP/1.0 500 Oops\r\n"));
        assert!(!status_ok(b"garbage"));
        assert!(!status_ok(b""));
    }
}
