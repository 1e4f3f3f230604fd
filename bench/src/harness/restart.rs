//! Restart scenarios: how fast procrun restarts an instance that exits at
//! once and what each restart costs procrun, against a shell loop doing the
//! same; and a soak of many restarting instances that watches procrun's
//! memory and descriptors for leaks.

use std::fs::{self, File};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::{Bench, JSON, Run, STOP_WAIT, Stop, TEXT};
use crate::Result;
use crate::line::Checker;
use crate::report::{Table, col, worst};
use crate::runners::Runner;
use crate::sys::{self, TempDir, now_ns};

/// The policy of every restarting type here: restart at once (10 ms),
/// forever, whatever the exit code.
const POLICY: &str = "restart = \"always\"\n\
                      backoff = { initial = 0.01, max = 0.01 }\n\
                      max_restarts = \"unlimited\"\n\
                      min_uptime = 10\n";

/// The baseline: a shell restarting a command that fails, with the same
/// pause and one line per restart, as procrun prints one.
const LOOP: &str = "while :; do sh -c 'exit 1'; echo 'restarting in 0.01s'; sleep 0.01; done";

/// Row name of the baseline.
const SHELL: &str = "shell loop";

/// A leak is a correctness failure. Between the two snapshots procrun is
/// in the same state (every instance running once more, all output read),
/// so a procrun that frees what it allocates shows no descriptor more and
/// at most allocator noise (tens of KiB); 100 instances × hundreds of
/// restarts each would show a leak of even one descriptor or a few bytes
/// per restart far above these limits.
const FD_GROWTH_LIMIT: i64 = 10;
const RSS_GROWTH_LIMIT_KIB: i64 = 2048;

fn write_policy(dir: &Path, name: &str) -> Result<()> {
    fs::write(
        dir.join("procrun.toml"),
        format!("[process.{name}]\n{POLICY}"),
    )
    .map_err(|e| format!("procrun.toml: {e}"))
}

/// procrun's main process and watchdog at one moment.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    rss_kib: u64,
    fds: usize,
    watchdog_kib: Option<u64>,
}

fn snapshot(pid: u32, watchdog: Option<u32>) -> Result<Snapshot> {
    Ok(Snapshot {
        rss_kib: sys::status_kb(pid, "VmRSS").ok_or("procrun is gone")?,
        fds: sys::fd_count(pid).ok_or("procrun is gone")?,
        watchdog_kib: watchdog.and_then(|w| sys::status_kb(w, "VmRSS")),
    })
}

/// Lets every instance blocked on the FIFO go (they exit 1 and, without
/// the gate file, keep exiting at once), and keeps the FIFO open for
/// writing so that one that was about to block passes too.
fn release(gate: &Path, fifo: &Path) -> Result<File> {
    fs::remove_file(gate).map_err(|e| format!("{}: {e}", gate.display()))?;
    // Non-blocking, so that a missing reader is an error, not a hang.
    for _ in 0..500 {
        match File::options()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                std::thread::sleep(Duration::from_millis(10))
            }
            Err(e) => return Err(format!("{}: {e}", fifo.display())),
        }
    }
    Err("no instance was waiting on the FIFO".into())
}

/// Closes the FIFO and puts the gate back: each instance's next run waits.
fn hold(gate: &Path, writer: File) -> Result<()> {
    drop(writer);
    File::create(gate).map_err(|e| format!("{}: {e}", gate.display()))?;
    Ok(())
}

/// Waits for `total` ready lines in all, then for the output to go quiet.
fn all_ready(run: &Run, total: u64, what: &str) -> Result<()> {
    let ok = run.wait(Duration::from_secs(60), |l, _| {
        l.counts.ready >= total || l.exit.is_some()
    });
    let live = run.live();
    if !ok || live.counts.ready < total {
        return Err(format!(
            "{what}: {} of {total} ready lines: {}",
            live.counts.ready,
            run.stderr_tail()
        ));
    }
    run.wait(Duration::from_secs(5), |l, now| {
        now.saturating_sub(l.t_last_byte) > 200_000_000
    });
    Ok(())
}

impl Bench {
    /// One instance exiting at once under `restart = "always"`: restarts
    /// per second and procrun's CPU per restart, text and JSON output,
    /// against the shell loop.
    pub(super) fn restart(&mut self) {
        let secs = self.opts.restart_secs;
        let mut t = Table::new(
            format!(
                "Restart: one instance that exits at once, `restart = \"always\"`, backoff 0.01 s; {secs} s per run"
            ),
            vec![
                col("restarts/s", 1),
                col("runner CPU ms per restart", 3),
                col("runner CPU %", 1),
                col("restarts", 0),
                worst("bad records"),
                worst("seq gaps"),
                worst("left running"),
            ],
        );
        t.ratio_col = Some((0, true));
        t.baseline_cols = vec![1];
        t.baseline = Some(SHELL.into());
        t.vs_procrun = false;
        let procrun = self.procrun();
        for rep in 0..self.opts.reps {
            let mut rows: Vec<(&str, Option<(&Runner, bool)>)> = vec![(SHELL, None)];
            if let Some(r) = &procrun {
                rows.push((TEXT, Some((r, false))));
                // Not in the smoke run, which must stay short: the JSON
                // checker is exercised by the json scenario there.
                if !self.opts.quick {
                    rows.push((JSON, Some((r, true))));
                }
            }
            for (name, how) in rows {
                self.progress(&format!("restart {name} rep {}", rep + 1));
                if let Err(e) = self.restart_once(&mut t, name, how, secs) {
                    t.note(name, e);
                }
            }
        }
        self.tables.push(t);
    }

    fn restart_once(
        &self,
        t: &mut Table,
        name: &str,
        how: Option<(&Runner, bool)>,
        secs: f64,
    ) -> Result<()> {
        let dir = TempDir::new("rs").map_err(|e| e.to_string())?;
        let (cmd, checker) = match how {
            None => {
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(LOOP).current_dir(&dir.0);
                (c, Checker::new())
            }
            Some((r, json)) => {
                Self::procfile(&dir.0, &[("crash", "exit 1".into())]);
                write_policy(&dir.0, "crash")?;
                let mut c = r.command(&dir.0, &[("crash", 1)], &[], None);
                if json {
                    c.args(["--log-format", "json"]);
                    (c, Checker::json())
                } else {
                    (c, Checker::new())
                }
            }
        };
        let run = Run::spawn_reader(cmd, dir.0.join("stderr.log"), None, checker)?;
        let measured = measure_restarts(&run, secs, how.is_some());
        run.stop(Stop::CtrlC);
        let exit = run.exited(Duration::from_secs(STOP_WAIT));
        let tail = run.stderr_tail();
        let (checker, _, left) = run.finish();
        t.push(name, "left running", left as f64);
        if exit.is_none() {
            t.note(name, format!("did not exit within {STOP_WAIT} s of Ctrl-C"));
        }
        let (n, span, cpu) = measured.map_err(|e| format!("{e} (stderr: {tail})"))?;
        if n == 0 {
            return Err(format!("no restart in {secs} s (stderr: {tail})"));
        }
        t.push(name, "restarts/s", n as f64 / span);
        t.push(name, "runner CPU ms per restart", cpu * 1e3 / n as f64);
        t.push(name, "runner CPU %", cpu / span * 100.0);
        t.push(name, "restarts", n as f64);
        if matches!(how, Some((_, true))) {
            t.push(name, "bad records", checker.counts.bad_records as f64);
            t.push(name, "seq gaps", checker.counts.seq_gaps as f64);
        }
        Ok(())
    }

    /// Many instances restarting for a long time: procrun's RSS and open
    /// descriptors, compared between two moments when it is in the same
    /// state. Every instance's command is `test -e GATE && exec ready
    /// --fail-fifo FIFO; exit 1`: with the gate file present each run
    /// prints a ready line and blocks opening the FIFO, so that all of them
    /// are up at once; without it each exits 1 at once. The snapshots are
    /// taken with every instance up (after a warm-up churn, and after the
    /// soak), so the descriptors and memory of live instances are the same
    /// in both.
    pub(super) fn restart_soak(&mut self) {
        let Some(r) = self.procrun() else {
            return;
        };
        let (k, secs) = (self.opts.soak_instances, self.opts.soak_secs);
        let mut t = Table::new(
            format!(
                "Restart soak: {k} instances that exit at once, restarted for {secs} s (backoff 0.01 s): procrun's memory and descriptors"
            ),
            vec![
                col("restarts/s", 0),
                col("restarts", 0),
                col("RSS MiB at start", 2),
                col("RSS MiB at end", 2),
                col("peak RSS MiB", 2),
                col("RSS growth KiB", 0),
                col("fds at start", 0),
                col("fds at end", 0),
                col("fds max", 0),
                col("fd growth", 0),
                col("watchdog RSS growth KiB", 0),
                worst("left running"),
            ],
        );
        self.progress(&format!("restart-soak {k} instances, {secs} s"));
        if let Err(e) = self.soak_once(&mut t, &r, k, secs) {
            t.note("procrun", e);
        }
        self.tables.push(t);
    }

    fn soak_once(&self, t: &mut Table, r: &Runner, k: u32, secs: f64) -> Result<()> {
        let dir = TempDir::new("soak").map_err(|e| e.to_string())?;
        let gate = dir.0.join("gate");
        let fifo = dir.0.join("release.fifo");
        sys::mkfifo(&fifo).map_err(|e| e.to_string())?;
        let ready = self.cmd(&format!("ready --fail-fifo {} --code 1", fifo.display()));
        let cmd = format!("test -e {} && {ready}; exit 1", gate.display());
        Self::procfile(&dir.0, &[("crash", cmd)]);
        write_policy(&dir.0, "crash")?;
        File::create(&gate).map_err(|e| e.to_string())?;
        let run = Run::spawn(
            r.command(&dir.0, &[("crash", k)], &[], None),
            dir.0.join("stderr.log"),
        )?;
        let result = soak_phases(&run, u64::from(k), secs, &gate, &fifo);
        run.stop(Stop::CtrlC);
        let exit = run.exited(Duration::from_secs(STOP_WAIT));
        let (_, _, left) = run.finish();
        t.push("procrun", "left running", left as f64);
        if exit.is_none() {
            t.note(
                "procrun",
                format!("did not exit within {STOP_WAIT} s of Ctrl-C"),
            );
        }
        let s = result?;
        let rss_growth = s.end.rss_kib as i64 - s.start.rss_kib as i64;
        let fd_growth = s.end.fds as i64 - s.start.fds as i64;
        let mib = |kib: u64| kib as f64 / 1024.0;
        t.push("procrun", "restarts/s", s.restarts as f64 / s.span);
        t.push("procrun", "restarts", s.restarts as f64);
        t.push("procrun", "RSS MiB at start", mib(s.start.rss_kib));
        t.push("procrun", "RSS MiB at end", mib(s.end.rss_kib));
        t.push("procrun", "peak RSS MiB", mib(s.peak_kib));
        t.push("procrun", "RSS growth KiB", rss_growth as f64);
        t.push("procrun", "fds at start", s.start.fds as f64);
        t.push("procrun", "fds at end", s.end.fds as f64);
        t.push("procrun", "fds max", s.fds_max as f64);
        t.push("procrun", "fd growth", fd_growth as f64);
        if s.restarts < u64::from(k) {
            t.note(
                "procrun",
                format!("only {} restarts of {k} instances", s.restarts),
            );
        }
        if fd_growth > FD_GROWTH_LIMIT {
            t.note(
                "procrun",
                format!("open descriptors grew by {fd_growth} (limit {FD_GROWTH_LIMIT}): a leak"),
            );
        }
        if rss_growth > RSS_GROWTH_LIMIT_KIB {
            t.note(
                "procrun",
                format!("RSS grew by {rss_growth} KiB (limit {RSS_GROWTH_LIMIT_KIB} KiB): a leak"),
            );
        }
        if let (Some(a), Some(b)) = (s.start.watchdog_kib, s.end.watchdog_kib) {
            let growth = b as i64 - a as i64;
            t.push("procrun", "watchdog RSS growth KiB", growth as f64);
            if growth > RSS_GROWTH_LIMIT_KIB {
                t.note(
                    "procrun",
                    format!(
                        "the watchdog's RSS grew by {growth} KiB (limit {RSS_GROWTH_LIMIT_KIB} KiB): a leak"
                    ),
                );
            }
        }
        Ok(())
    }
}

/// Restarts seen and runner CPU over `secs`, from the first restart on.
/// `helpers`: count procrun's watchdog with it (the shell loop is one
/// process).
fn measure_restarts(run: &Run, secs: f64, helpers: bool) -> Result<(u64, f64, f64)> {
    let first = run.wait(Duration::from_secs(10), |l, _| {
        l.counts.restarts >= 1 || l.exit.is_some()
    });
    if !first || run.live().exit.is_some() {
        return Err("no restart within 10 s".into());
    }
    let pids = if helpers {
        sys::same_exe_family(run.pid)
    } else {
        vec![run.pid]
    };
    let (c0, s0) = (sys::cpu_of(&pids), sys::sched_ns(&pids));
    let t0 = now_ns();
    let n0 = run.live().counts.restarts;
    let ended = run.wait(Duration::from_secs_f64(secs), |l, _| l.exit.is_some());
    let (c1, s1) = (sys::cpu_of(&pids), sys::sched_ns(&pids));
    let t1 = now_ns();
    let n1 = run.live().counts.restarts;
    if ended {
        return Err("exited during the run".into());
    }
    // A restart costs well under a 10 ms tick: the exact figure when the
    // same threads were there at both readings, else the ticks.
    let cpu = match (s0, s1) {
        (Some((a, ta)), Some((b, tb))) if ta == tb && b >= a => sys::secs(b - a),
        _ => c1 - c0,
    };
    Ok((n1 - n0, sys::secs(t1 - t0), cpu))
}

/// What the soak measured.
#[derive(Debug)]
struct Soak {
    start: Snapshot,
    end: Snapshot,
    peak_kib: u64,
    fds_max: usize,
    restarts: u64,
    span: f64,
}

fn soak_phases(run: &Run, k: u64, secs: f64, gate: &Path, fifo: &Path) -> Result<Soak> {
    all_ready(run, k, "start")?;
    let family = sys::same_exe_family(run.pid);
    let watchdog = family.get(1).copied();
    // A short churn first, so that the start snapshot already includes
    // what the first restarts allocate for good (buffers, timers).
    let warm = (secs / 20.0).clamp(0.3, 2.0);
    let writer = release(gate, fifo)?;
    std::thread::sleep(Duration::from_secs_f64(warm));
    hold(gate, writer)?;
    all_ready(run, 2 * k, "after the warm-up")?;
    let start = snapshot(run.pid, watchdog)?;
    let mut fds_max = start.fds;

    let writer = release(gate, fifo)?;
    let t0 = now_ns();
    let n0 = run.live().counts.restarts;
    let until = t0 + (secs * 1e9) as u64;
    while now_ns() < until {
        if run.wait(Duration::from_millis(100), |l, _| l.exit.is_some()) {
            return Err(format!("exited during the soak: {}", run.stderr_tail()));
        }
        if let Some(n) = sys::fd_count(run.pid) {
            fds_max = fds_max.max(n);
        }
    }
    let t1 = now_ns();
    let n1 = run.live().counts.restarts;
    hold(gate, writer)?;
    all_ready(run, 3 * k, "after the soak")?;
    let end = snapshot(run.pid, watchdog)?;
    Ok(Soak {
        start,
        end,
        peak_kib: sys::status_kb(run.pid, "VmHWM").unwrap_or(0),
        fds_max: fds_max.max(end.fds),
        restarts: n1 - n0,
        span: sys::secs(t1 - t0),
    })
}
