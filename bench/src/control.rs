//! The control scenario: what the control socket costs a running `procrun
//! start` with many instances, and what its clients see.
//!
//! One run per procrun build and repetition (builds interleaved):
//! `start` with K instances (K − 1 `ready`, one `tick` printing a
//! CLOCK_MONOTONIC timestamp every 5 ms), then, once all are up:
//! - restart latency: each tick line's delay (its arrival on `start`'s
//!   stdout minus its timestamp) over a quiet spell, then over as long
//!   while clients restart the other instances one after another;
//! - idle: `tick` is stopped, and `start`'s CPU over a spell of nothing;
//! - `ps`: N `procrun ps --json` one after another, each timed end to end
//!   (the client process's start, its request and its printing), with
//!   the client's CPU and `start`'s CPU per request.
//!
//! And one run per build of 100 instances each writing 100 KB/s of lines
//! for a while: `start`'s RSS as the log ring fills (it must level off).
//!
//! `tick` and `drip` are roles of this binary, like every instance in the
//! bench.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::report::{Table, col, median, worst};
use crate::runners::Runner;
use crate::sys::{self, TempDir, now_ns};
use crate::{Result, opt};

/// What the scenario is asked to do.
#[derive(Debug, Clone)]
pub struct Config {
    /// Instances in the main run (one of them the ticker).
    pub instances: u32,
    /// `ps --json` calls per run.
    pub calls: usize,
    /// Seconds of each restart-latency spell (quiet, then restarting).
    pub latency_secs: f64,
    /// Seconds of the idle spell.
    pub idle_secs: f64,
    /// Instances writing into the ring, and for how long.
    pub ring_instances: u32,
    pub ring_secs: f64,
    pub reps: usize,
}

/// The ticker's period.
const TICK: Duration = Duration::from_millis(5);

/// Bytes per second of each ring writer, and of each of its writes.
const DRIP_RATE: u64 = 100_000;
const DRIP_EVERY: Duration = Duration::from_millis(10);

/// Seconds to wait for every instance to be up, and for `start` to exit.
const UP_WAIT: Duration = Duration::from_secs(180);
const EXIT_WAIT: Duration = Duration::from_secs(60);

/// `tick`: prints `#PRB TICK <CLOCK_MONOTONIC ns>` every 5 ms (on an
/// absolute schedule; the stamp is taken just before the write), until
/// signalled.
pub fn tick(_args: &[String]) -> Result<ExitCode> {
    let mut out = crate::stdout_file();
    let _ = out.write_all(format!("#PRB READY {}\n", std::process::id()).as_bytes());
    let mut next = now_ns();
    loop {
        next += TICK.as_nanos() as u64;
        sleep_until(next);
        let line = format!("#PRB TICK {}\n", now_ns());
        if out.write_all(line.as_bytes()).is_err() {
            return Ok(ExitCode::from(1));
        }
    }
}

/// `drip [--rate BYTES_PER_SEC]`: prints `#PRB READY`, then 100-byte lines
/// at that rate (100 KB/s by default), a write every 10 ms, until
/// signalled.
pub fn drip(args: &[String]) -> Result<ExitCode> {
    let rate: u64 = opt(args, "--rate")?.unwrap_or(DRIP_RATE);
    let pid = std::process::id();
    let mut out = crate::stdout_file();
    let _ = out.write_all(format!("#PRB READY {pid}\n").as_bytes());
    let per_write = (rate as f64 * DRIP_EVERY.as_secs_f64()) as usize;
    let mut buf = Vec::with_capacity(per_write + 100);
    let mut seq = 0u64;
    let mut next = now_ns();
    loop {
        buf.clear();
        while buf.len() + 100 <= per_write.max(100) {
            let head = format!("#PRB DRIP {pid} {seq} ");
            buf.extend_from_slice(head.as_bytes());
            buf.resize(buf.len() + 99 - head.len(), b'x');
            buf.push(b'\n');
            seq += 1;
        }
        if out.write_all(&buf).is_err() {
            return Ok(ExitCode::from(1));
        }
        next += DRIP_EVERY.as_nanos() as u64;
        sleep_until(next);
    }
}

fn sleep_until(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: clock_nanosleep reads the timespec we pass; an interruption
    // only ends the sleep early.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    };
}

/// What the reader of `start`'s stdout has seen.
#[derive(Debug, Default)]
struct Seen {
    ready: u64,
    bytes: u64,
    ticks: u64,
    /// Each tick line's delay in ns, while recording.
    delays: Option<Vec<u64>>,
    eof: bool,
}

/// A running `procrun start` in a process group of its own, its stdout
/// read by a thread.
struct Start {
    child: Child,
    seen: Arc<Mutex<Seen>>,
    socket: PathBuf,
    exe: PathBuf,
    dir: PathBuf,
    stderr: PathBuf,
}

impl Start {
    fn spawn(r: &Runner, dir: &Path, formation: &[(&str, u32)]) -> Result<Start> {
        let socket = dir.join("ctl.sock");
        let stderr = dir.join("stderr.log");
        let mut cmd = r.command(dir, formation, &[], Some(5));
        cmd.arg("--socket")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).map_err(|e| e.to_string())?)
            .process_group(0);
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", r.exe.display()))?;
        let mut out = child.stdout.take().expect("stdout is piped");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sh = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 1 << 18];
            let mut partial: Vec<u8> = Vec::new();
            loop {
                let n = match out.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let arrived = now_ns();
                let mut seen = sh.lock().expect("lock");
                seen.bytes += n as u64;
                partial.extend_from_slice(&buf[..n]);
                let end = memchr::memrchr(b'\n', &partial).map_or(0, |i| i + 1);
                for line in partial[..end].split(|&b| b == b'\n') {
                    if let Some(at) = memchr::memmem::find(line, b"#PRB ") {
                        scan(&line[at + 5..], arrived, &mut seen);
                    }
                }
                partial.drain(..end);
            }
            sh.lock().expect("lock").eof = true;
        });
        Ok(Start {
            child,
            seen,
            socket,
            exe: r.exe.clone(),
            dir: dir.to_path_buf(),
            stderr,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits until `pred` holds, or `timeout`.
    fn wait(&self, timeout: Duration, pred: impl Fn(&Seen) -> bool) -> bool {
        let deadline = now_ns() + timeout.as_nanos() as u64;
        loop {
            {
                let seen = self.seen.lock().expect("lock");
                if pred(&seen) {
                    return true;
                }
                if seen.eof {
                    return false;
                }
            }
            if now_ns() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for `n` ready lines.
    fn up(&self, n: u64) -> Result<()> {
        if self.wait(UP_WAIT, |s| s.ready >= n) {
            // Let `start` print what follows the last ready line.
            std::thread::sleep(Duration::from_millis(500));
            return Ok(());
        }
        let ready = self.seen.lock().expect("lock").ready;
        Err(format!("only {ready} of {n} up: {}", self.stderr_tail()))
    }

    /// A client command for this `start`.
    fn client(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args)
            .arg("--socket")
            .arg(&self.socket)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .env("NO_COLOR", "1");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PROCRUN_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }

    /// Runs a client to its end, its output discarded.
    fn call(&self, args: &[&str]) -> Result<()> {
        let status = self
            .client(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| e.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`procrun {}` failed: {status}", args.join(" ")))
        }
    }

    fn rss_kib(&self) -> Option<u64> {
        sys::status_kb(self.pid(), "VmRSS")
    }

    fn stderr_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" / ")
    }

    /// Ctrl-C, then everything it left is killed. Returns how many
    /// processes were left running.
    fn finish(mut self) -> usize {
        let pgid = self.pid() as i32;
        // SAFETY: signalling the process group we created.
        unsafe { libc::kill(-pgid, libc::SIGINT) };
        let deadline = now_ns() + EXIT_WAIT.as_nanos() as u64;
        while now_ns() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: as above; whatever is left of the group goes.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(20));
        sys::sweep(&[])
    }
}

/// One `#PRB …` marker (after `#PRB `).
fn scan(rest: &[u8], arrived: u64, seen: &mut Seen) {
    if rest.starts_with(b"READY ") {
        seen.ready += 1;
    } else if let Some(stamp) = rest.strip_prefix(b"TICK ") {
        seen.ticks += 1;
        let stamp = std::str::from_utf8(stamp)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok());
        if let (Some(delays), Some(stamp)) = (seen.delays.as_mut(), stamp) {
            delays.push(arrived.saturating_sub(stamp));
        }
    }
}

/// The `q` quantile (0..=1) of sorted `v`.
fn quantile(v: &[u64], q: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i] as f64
}

fn ms(ns: f64) -> f64 {
    ns / 1e6
}

/// CPU of `pid` in ns: exact (schedstat of its threads) when the same
/// threads were there at both readings, else from clock ticks.
#[derive(Clone, Debug)]
struct Cpu {
    sched: Option<(u64, Vec<u32>)>,
    ticks_secs: f64,
}

impl Cpu {
    fn of(pid: u32) -> Cpu {
        Cpu {
            sched: sys::sched_ns(&[pid]),
            ticks_secs: sys::cpu_secs(pid).unwrap_or(0.0),
        }
    }

    /// Nanoseconds from `self` to `later`, and the clock ticks of
    /// `/proc/PID/stat` between them.
    fn until(&self, later: &Cpu) -> (f64, f64) {
        let ticks = (later.ticks_secs - self.ticks_secs) * 100.0;
        let ns = match (&self.sched, &later.sched) {
            (Some((a, ta)), Some((b, tb))) if ta == tb && b >= a => (b - a) as f64,
            _ => (later.ticks_secs - self.ticks_secs) * 1e9,
        };
        (ns, ticks)
    }
}

/// The tables of the main run.
struct Tables {
    ps: Table,
    latency: Table,
    idle: Table,
}

pub fn run(cfg: &Config, runners: &[Runner], exe: &Path, progress: &dyn Fn(&str)) -> Vec<Table> {
    let k = cfg.instances.max(2);
    let mut t = Tables {
        ps: Table::new(
            format!(
                "Control: `procrun ps --json` with {k} instances, {} calls one after another",
                cfg.calls
            ),
            vec![
                col("ms median (end to end)", 1),
                col("ms p90", 1),
                col("start CPU ms per ps", 2),
                col("client CPU ms per ps", 2),
                col("KiB printed", 0),
                worst("calls failed"),
                worst("left running"),
            ],
        ),
        latency: Table::new(
            format!(
                "Control: another instance's output latency (a line every 5 ms) with {k} instances, {} s quiet, then {} s while clients restart the others one after another",
                cfg.latency_secs, cfg.latency_secs
            ),
            vec![
                col("quiet median ms", 2),
                col("quiet p99 ms", 2),
                col("restarting median ms", 2),
                col("restarting p99 ms", 2),
                col("median added ms", 2),
                col("p99 added ms", 2),
                col("restarts", 0),
                col("ms per restart (client)", 1),
            ],
        ),
        idle: Table::new(
            format!(
                "Control: `start` idle with {k} instances and the socket open, {} s",
                cfg.idle_secs
            ),
            vec![
                col("CPU ticks", 0),
                col("CPU ms", 2),
                col("wake-ups (context switches)", 0),
            ],
        ),
    };
    t.ps.ratio_col = Some((0, false));
    for rep in 0..cfg.reps {
        for r in runners {
            progress(&format!("control K={k} {} rep {}", r.name, rep + 1));
            if let Err(e) = main_once(cfg, k, r, exe, &mut t) {
                t.ps.note(r.name, e);
            }
        }
    }
    let mut ring = Table::new(
        format!(
            "Control: the log ring, {} instances each writing {} KB/s for {} s: `start`'s RSS",
            cfg.ring_instances,
            DRIP_RATE / 1000,
            cfg.ring_secs
        ),
        vec![
            col("RSS MiB when up", 1),
            col("RSS MiB at 1/3", 1),
            col("RSS MiB at 2/3", 1),
            col("RSS MiB at end", 1),
            col("peak RSS MiB", 1),
            col("MB written", 0),
            worst("left running"),
        ],
    );
    ring.vs_procrun = false;
    for r in runners {
        progress(&format!(
            "control ring {} instances {} s {}",
            cfg.ring_instances, cfg.ring_secs, r.name
        ));
        if let Err(e) = ring_once(cfg, r, exe, &mut ring) {
            ring.note(r.name, e);
        }
    }
    vec![t.ps, t.latency, t.idle, ring]
}

fn procfile(dir: &Path, entries: &[(&str, String)]) -> Result<()> {
    let text: String = entries.iter().map(|(n, c)| format!("{n}: {c}\n")).collect();
    std::fs::write(dir.join("Procfile"), text).map_err(|e| e.to_string())
}

fn main_once(cfg: &Config, k: u32, r: &Runner, exe: &Path, t: &mut Tables) -> Result<()> {
    let dir = TempDir::new("ctl").map_err(|e| e.to_string())?;
    let exe = exe.display();
    procfile(
        &dir.0,
        &[
            ("r", format!("exec {exe} ready")),
            ("tick", format!("exec {exe} tick")),
        ],
    )?;
    let start = Start::spawn(r, &dir.0, &[("r", k - 1), ("tick", 1)])?;
    let result = phases(cfg, k, r.name, &start, t);
    let left = start.finish();
    t.ps.push(r.name, "left running", left as f64);
    result
}

fn phases(cfg: &Config, k: u32, name: &str, start: &Start, t: &mut Tables) -> Result<()> {
    start.up(u64::from(k))?;
    latency(cfg, k, name, start, &mut t.latency)?;
    start.call(&["stop", "tick"])?;
    std::thread::sleep(Duration::from_millis(500));
    idle(cfg, start, name, &mut t.idle);
    ps(cfg, k, name, start, &mut t.ps)
}

/// Tick delays over a quiet spell, then over a spell of restarts.
fn latency(cfg: &Config, k: u32, name: &str, start: &Start, t: &mut Table) -> Result<()> {
    let spell = Duration::from_secs_f64(cfg.latency_secs);
    let record = |start: &Start| {
        let mut seen = start.seen.lock().expect("lock");
        seen.delays = Some(Vec::new());
        seen.ticks
    };
    let collect = |start: &Start| {
        let mut seen = start.seen.lock().expect("lock");
        let mut d = seen.delays.take().unwrap_or_default();
        d.sort_unstable();
        (d, seen.ticks)
    };
    let t0 = now_ns();
    let n0 = record(start);
    std::thread::sleep(spell);
    let (quiet, n1) = collect(start);
    let t1 = now_ns();
    // Restarts of the other instances, one client after another.
    let others = k - 1;
    let mut restarts = 0u32;
    let mut client_ns = 0u64;
    let n2 = record(start);
    let t2 = now_ns();
    let until = t2 + spell.as_nanos() as u64;
    while now_ns() < until {
        let which = format!("r.{}", restarts % others + 1);
        let c0 = now_ns();
        start.call(&["restart", &which])?;
        client_ns += now_ns() - c0;
        restarts += 1;
    }
    let (busy, n3) = collect(start);
    let t3 = now_ns();
    if quiet.is_empty() || busy.is_empty() {
        return Err(format!(
            "no tick lines seen ({} quiet, {} restarting)",
            quiet.len(),
            busy.len()
        ));
    }
    let expected = |from: u64, to: u64| (to - from) / TICK.as_nanos() as u64;
    let lost =
        expected(t0, t1).saturating_sub(n1 - n0 + 2) + expected(t2, t3).saturating_sub(n3 - n2 + 2);
    let (qm, q99) = (quantile(&quiet, 0.5), quantile(&quiet, 0.99));
    let (bm, b99) = (quantile(&busy, 0.5), quantile(&busy, 0.99));
    t.push(name, "quiet median ms", ms(qm));
    t.push(name, "quiet p99 ms", ms(q99));
    t.push(name, "restarting median ms", ms(bm));
    t.push(name, "restarting p99 ms", ms(b99));
    t.push(name, "median added ms", ms(bm - qm));
    t.push(name, "p99 added ms", ms(b99 - q99));
    t.push(name, "restarts", f64::from(restarts));
    t.push(
        name,
        "ms per restart (client)",
        ms(client_ns as f64 / f64::from(restarts.max(1))),
    );
    // The ticker catches up after a late wake-up (its schedule is
    // absolute), so fewer lines than were due means it was kept off a CPU
    // for long: say so, the figures are then those of a loaded machine.
    if lost > 0 {
        t.note(
            name,
            format!("{lost} tick lines fewer than the clock says were due (the ticker was descheduled: load)"),
        );
    }
    Ok(())
}

/// `start`'s CPU over a spell in which nothing happens.
fn idle(cfg: &Config, start: &Start, name: &str, t: &mut Table) {
    let pid = start.pid();
    let switches = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let mut n = 0u64;
        // Threads' switches: every thread's own status.
        if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
            for task in dir.flatten() {
                let s = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
                n += field(&s, "voluntary_ctxt_switches") + field(&s, "nonvoluntary_ctxt_switches");
            }
        } else {
            n = field(&status, "voluntary_ctxt_switches");
        }
        n
    };
    let (c0, w0) = (Cpu::of(pid), switches());
    std::thread::sleep(Duration::from_secs_f64(cfg.idle_secs));
    let (c1, w1) = (Cpu::of(pid), switches());
    let (ns, ticks) = c0.until(&c1);
    t.push(name, "CPU ticks", ticks.round());
    t.push(name, "CPU ms", ms(ns));
    t.push(
        name,
        "wake-ups (context switches)",
        w1.saturating_sub(w0) as f64,
    );
}

fn field(status: &str, name: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse().ok())
        .unwrap_or(0)
}

/// N `ps --json` calls one after another, each timed from the client's
/// spawn to its exit with all its output read.
fn ps(cfg: &Config, k: u32, name: &str, start: &Start, t: &mut Table) -> Result<()> {
    let pid = start.pid();
    let mut walls = Vec::new();
    let mut client_cpu = Vec::new();
    let mut printed = 0usize;
    let mut failed = 0;
    // One call first, unmeasured: the page cache and the server's first
    // look at every process.
    start.call(&["ps", "--json"])?;
    let c0 = Cpu::of(pid);
    for _ in 0..cfg.calls {
        let t0 = now_ns();
        let mut child = start
            .client(&["ps", "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let _ = child.stdout.take().expect("piped").read_to_end(&mut out);
        let (ok, cpu) = wait_rusage(child.id());
        let t1 = now_ns();
        let listed = memchr::memmem::find_iter(&out, b"\"instance\":").count();
        if !ok || listed != k as usize {
            failed += 1;
            continue;
        }
        walls.push(t1 - t0);
        client_cpu.push(cpu);
        printed = out.len();
    }
    let c1 = Cpu::of(pid);
    let (ns, _) = c0.until(&c1);
    walls.sort_unstable();
    t.push(name, "ms median (end to end)", ms(quantile(&walls, 0.5)));
    t.push(name, "ms p90", ms(quantile(&walls, 0.9)));
    t.push(
        name,
        "start CPU ms per ps",
        ms(ns / cfg.calls.max(1) as f64),
    );
    if let Some(m) = median(&client_cpu) {
        t.push(name, "client CPU ms per ps", m * 1e3);
    }
    t.push(name, "KiB printed", printed as f64 / 1024.0);
    t.push(name, "calls failed", f64::from(failed));
    Ok(())
}

/// Waits for child `pid`: whether it exited 0, and its CPU seconds.
fn wait_rusage(pid: u32) -> (bool, f64) {
    let mut status = 0;
    // SAFETY: rusage is plain data filled by wait4.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waiting for our own child, into locals.
    let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    let secs = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    let cpu = secs(usage.ru_utime) + secs(usage.ru_stime);
    (
        r == pid as i32 && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        cpu,
    )
}

/// 100 writers for a while: `start`'s RSS at the start, at thirds and at
/// the end, and its peak.
fn ring_once(cfg: &Config, r: &Runner, exe: &Path, t: &mut Table) -> Result<()> {
    let dir = TempDir::new("ring").map_err(|e| e.to_string())?;
    procfile(
        &dir.0,
        &[(
            "d",
            format!("exec {} drip --rate {DRIP_RATE}", exe.display()),
        )],
    )?;
    let start = Start::spawn(r, &dir.0, &[("d", cfg.ring_instances)])?;
    let result = ring_phases(cfg, &start, r.name, t);
    let left = start.finish();
    t.push(r.name, "left running", left as f64);
    result
}

fn ring_phases(cfg: &Config, start: &Start, name: &str, t: &mut Table) -> Result<()> {
    start.up(u64::from(cfg.ring_instances))?;
    let mib = |kib: Option<u64>| kib.unwrap_or(0) as f64 / 1024.0;
    let bytes0 = start.seen.lock().expect("lock").bytes;
    t.push(name, "RSS MiB when up", mib(start.rss_kib()));
    let third = Duration::from_secs_f64(cfg.ring_secs / 3.0);
    for label in ["RSS MiB at 1/3", "RSS MiB at 2/3", "RSS MiB at end"] {
        std::thread::sleep(third);
        if start.seen.lock().expect("lock").eof {
            return Err(format!("start ended: {}", start.stderr_tail()));
        }
        t.push(name, label, mib(start.rss_kib()));
    }
    t.push(
        name,
        "peak RSS MiB",
        mib(sys::status_kb(start.pid(), "VmHWM")),
    );
    let bytes = start.seen.lock().expect("lock").bytes - bytes0;
    t.push(name, "MB written", bytes as f64 / 1e6);
    Ok(())
}
