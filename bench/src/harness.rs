//! The harness: runs every scenario for every runner, several times,
//! interleaving runners within each repetition so that machine load hits
//! them alike, and prints the tables.

use std::fs::{self, File};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::Result;
use crate::line::{Checker, Counts, LINE_LEN};
use crate::report::{Agg, Col, Table, col, jstr, worst};
use crate::runners::{KillTimeout, Kind, Runner, find_peers, which};
use crate::sys::{self, TempDir, now_ns};

mod limit;
mod restart;

const HELP: &str = "\
procrun-bench: procrun against a raw pipe and the other Procfile runners

USAGE: procrun-bench [OPTIONS]

  --procrun PATH     the procrun binary to measure (without it, only the
                     baselines and peers run)
  --also LABEL=PATH  another procrun build, measured beside the first in
                     every scenario that loops over the runners (limit,
                     throughput, startup, shutdown, …) as `procrun LABEL`:
                     before/after in one run [repeatable]
  --peers LIST       comma-separated peers to run: foreman, honcho,
                     node-foreman, ultraman, or `none` [default: all found]
  --only LIST        scenarios: limit (procrun against the limit
                     multiplexer and launcher; printed first), throughput, linebuffered (one line per
                     write, K = 1 and 16), backpressure, json (16 writers,
                     --log-format json beside text), startup, shutdown,
                     stubborn, exit, restart, restart-soak, ui (the
                     dashboard's cost, paced and flat out), control
                     (procrun's control socket: ps --json, another
                     instance's output latency during restarts, idle CPU,
                     the log ring's RSS) [default: all]
  --reps N           repetitions [default: 5; --quick: 1]
  --quick            smoke run in seconds: small volumes, K ≤ 100, 1 rep
  --mib N            MiB per throughput run for procrun and the raw pipe
                     [default: 256; --quick: 8]
  --peer-mib N       MiB per throughput run for the peers [default: 16;
                     --quick: 2]
  --writers LIST     throughput K values [default: 1,4,16]
  --instances LIST   startup K values [default: 1,10,100,1000]
  --limit-writers LIST    limit scenario's writer counts [default:
                     1,4,16,64]
  --limit-instances LIST  limit scenario's instance counts [default:
                     10,100,1000; --quick: 10,100]
  --per-write N      lines per write(2) of a producer (N×100 ≤ 4096 keeps
                     writes atomic) [default: 40]
  --slow-mbps N      the slow reader's rate in the back-pressure scenario
                     [default: 20]
  --slow-mib N       MiB per back-pressure run, every runner [default: 32;
                     --quick: 4]
  --restart-secs N   seconds per run of the restart scenario [default: 10;
                     --quick: 1]
  --soak-secs N      seconds of restarting in the restart soak [default: 60;
                     --quick: 3]
  --soak-instances N instances in the restart soak [default: 100;
                     --quick: 10]
  --control-instances N   instances of the control scenario's main run
                     [default: 1000; --quick: 100]
  --control-calls N  `ps --json` calls per control run [default: 20;
                     --quick: 5]
  --control-secs N   seconds of each output-latency spell (quiet, then
                     restarting) and of the idle spell [default: 10;
                     --quick: 1]
  --ring-secs N      seconds of the control scenario's 100 writers at
                     100 KB/s each [default: 60; --quick: 3]
  --json FILE        also save all results as JSON
  --markdown FILE    also save the tables as Markdown
";

#[derive(Debug)]
struct Opts {
    procrun: Option<PathBuf>,
    also: Vec<(String, PathBuf)>,
    peers: Option<Vec<String>>,
    only: Option<Vec<String>>,
    reps: usize,
    quick: bool,
    mib: f64,
    peer_mib: f64,
    writers: Vec<u32>,
    instances: Vec<u32>,
    limit_writers: Vec<u32>,
    limit_instances: Vec<u32>,
    per_write: u32,
    slow_mbps: f64,
    slow_mib: f64,
    restart_secs: f64,
    soak_secs: f64,
    soak_instances: u32,
    control_instances: u32,
    control_calls: usize,
    control_secs: f64,
    ring_secs: f64,
    json: Option<PathBuf>,
    markdown: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Opts> {
    let quick = args.iter().any(|a| a == "--quick");
    let mut o = Opts {
        procrun: None,
        also: Vec::new(),
        peers: None,
        only: None,
        reps: if quick { 1 } else { 5 },
        quick,
        mib: if quick { 8.0 } else { 256.0 },
        peer_mib: if quick { 2.0 } else { 16.0 },
        writers: vec![1, 4, 16],
        instances: if quick {
            vec![1, 10, 100]
        } else {
            vec![1, 10, 100, 1000]
        },
        limit_writers: vec![1, 4, 16, 64],
        limit_instances: if quick {
            vec![10, 100]
        } else {
            vec![10, 100, 1000]
        },
        per_write: 40,
        slow_mbps: 20.0,
        slow_mib: if quick { 4.0 } else { 32.0 },
        restart_secs: if quick { 1.0 } else { 10.0 },
        soak_secs: if quick { 3.0 } else { 60.0 },
        soak_instances: if quick { 10 } else { 100 },
        control_instances: if quick { 100 } else { 1000 },
        control_calls: if quick { 5 } else { 20 },
        control_secs: if quick { 1.0 } else { 10.0 },
        ring_secs: if quick { 3.0 } else { 60.0 },
        json: None,
        markdown: None,
    };
    let list = |v: &str| v.split(',').map(|s| s.trim().to_string()).collect();
    let nums = |v: &str| -> Result<Vec<u32>> {
        v.split(',')
            .map(|s| s.trim().parse().map_err(|_| format!("bad number `{s}`")))
            .collect()
    };
    // Bounded: every run of these scenarios must end.
    let secs = |v: &str, flag: &str| -> Result<f64> {
        v.parse()
            .ok()
            .filter(|s: &f64| *s > 0.0 && *s <= 3600.0)
            .ok_or(format!("bad {flag}: seconds from 0 to 3600"))
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let mut val = || -> Result<String> {
            i += 1;
            args.get(i).cloned().ok_or(format!("{a} needs a value"))
        };
        match a {
            "-h" | "--help" => return Err(HELP.into()),
            "--quick" => {}
            "--procrun" => o.procrun = Some(PathBuf::from(val()?)),
            "--also" => {
                let v = val()?;
                let (label, path) = v.split_once('=').ok_or("--also needs LABEL=PATH")?;
                o.also.push((label.to_string(), PathBuf::from(path)));
            }
            "--peers" => o.peers = Some(list(&val()?)),
            "--only" => o.only = Some(list(&val()?)),
            "--reps" => o.reps = val()?.parse().map_err(|_| "bad --reps")?,
            "--mib" => o.mib = val()?.parse().map_err(|_| "bad --mib")?,
            "--peer-mib" => o.peer_mib = val()?.parse().map_err(|_| "bad --peer-mib")?,
            "--writers" => o.writers = nums(&val()?)?,
            "--instances" => o.instances = nums(&val()?)?,
            "--limit-writers" => o.limit_writers = nums(&val()?)?,
            "--limit-instances" => o.limit_instances = nums(&val()?)?,
            "--per-write" => o.per_write = val()?.parse().map_err(|_| "bad --per-write")?,
            "--slow-mib" => o.slow_mib = val()?.parse().map_err(|_| "bad --slow-mib")?,
            "--slow-mbps" => o.slow_mbps = val()?.parse().map_err(|_| "bad --slow-mbps")?,
            "--restart-secs" => o.restart_secs = secs(&val()?, "--restart-secs")?,
            "--soak-secs" => o.soak_secs = secs(&val()?, "--soak-secs")?,
            "--soak-instances" => {
                o.soak_instances = val()?
                    .parse()
                    .ok()
                    .filter(|k| *k > 0)
                    .ok_or("bad --soak-instances")?
            }
            "--control-instances" => {
                o.control_instances = val()?
                    .parse()
                    .ok()
                    .filter(|k| (2..=1000).contains(k))
                    .ok_or("bad --control-instances: 2 to 1000")?
            }
            "--control-calls" => {
                o.control_calls = val()?.parse().map_err(|_| "bad --control-calls")?
            }
            "--control-secs" => o.control_secs = secs(&val()?, "--control-secs")?,
            "--ring-secs" => o.ring_secs = secs(&val()?, "--ring-secs")?,
            "--json" => o.json = Some(PathBuf::from(val()?)),
            "--markdown" => o.markdown = Some(PathBuf::from(val()?)),
            other => return Err(format!("unknown option `{other}`\n\n{HELP}")),
        }
        i += 1;
    }
    Ok(o)
}

/// How the harness stops a runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// SIGINT to the runner's process group, as Ctrl-C in a terminal.
    CtrlC,
    /// SIGTERM to the runner's pid only, as `kill`.
    Term,
}

impl Stop {
    fn describe(self) -> &'static str {
        match self {
            Stop::CtrlC => "Ctrl-C (SIGINT to the runner's process group)",
            Stop::Term => "`kill` (SIGTERM to the runner only)",
        }
    }
}

/// Seconds to wait for a runner to exit after it was asked to stop.
const STOP_WAIT: u64 = 8;

/// Row names of procrun by output format, where a table has both.
const TEXT: &str = "procrun (text)";
const JSON: &str = "procrun (json)";

/// How the harness reads a runner's output in a throughput run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reading {
    /// Every text line checked.
    Text,
    /// Every line parsed as a `--log-format json` record and checked.
    Json,
    /// Nothing checked ([`Checker::sink`]): the ceiling scenarios.
    Sink,
}

/// What the reader and waiter threads have seen so far.
#[derive(Debug, Clone, Copy, Default)]
struct Live {
    counts: Counts,
    t_first_payload: u64,
    t_last_ready: u64,
    t_last_done: u64,
    t_last_byte: u64,
    eof: bool,
    /// When the runner exited, and its exit code (128+n for signal n).
    exit: Option<(u64, i32)>,
}

#[derive(Debug, Default)]
struct Shared {
    live: Mutex<Live>,
    cv: Condvar,
}

/// One running runner (or baseline launcher) with its output being checked.
#[derive(Debug)]
struct Run {
    pid: u32,
    t_start: u64,
    shared: Arc<Shared>,
    checker: mpsc::Receiver<Checker>,
    stderr: PathBuf,
}

impl Run {
    fn spawn(cmd: Command, stderr: PathBuf) -> Result<Run> {
        Self::spawn_reader(cmd, stderr, None, Checker::new())
    }

    /// Like `spawn`, with `checker` reading the output (text or JSON), and a
    /// reader that takes at most `rate` bytes/s if given (a slow consumer:
    /// the runner must apply back-pressure, not buffer).
    fn spawn_reader(
        mut cmd: Command,
        stderr: PathBuf,
        rate: Option<f64>,
        checker: Checker,
    ) -> Result<Run> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).map_err(|e| e.to_string())?)
            .process_group(0);
        let t_start = now_ns();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
        let pid = child.id();
        let mut out = child.stdout.take().expect("stdout is piped");
        let shared = Arc::new(Shared::default());
        let (tx, rx) = mpsc::channel();
        let sh = Arc::clone(&shared);
        std::thread::spawn(move || {
            let mut checker = checker;
            let mut buf = vec![0u8; if rate.is_some() { 1 << 16 } else { 1 << 18 }];
            let mut t0 = 0;
            loop {
                if t0 == 0 && checker.counts.bytes > 0 {
                    t0 = now_ns();
                }
                if let Some(rate) = rate.filter(|_| t0 > 0) {
                    let due = t0 + (checker.counts.bytes as f64 / rate * 1e9) as u64;
                    let now = now_ns();
                    if due > now {
                        std::thread::sleep(Duration::from_nanos(due - now));
                    }
                }
                let n = match out.read(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(_) => 0,
                };
                if n == 0 {
                    checker.finish();
                }
                checker.feed(&buf[..n]);
                let now = now_ns();
                let mut live = sh.live.lock().expect("lock");
                let before = live.counts;
                live.counts = checker.counts;
                if live.t_first_payload == 0 && checker.counts.payload > 0 {
                    live.t_first_payload = now;
                }
                if checker.counts.ready != before.ready {
                    live.t_last_ready = now;
                }
                if checker.counts.done != before.done {
                    live.t_last_done = now;
                }
                live.t_last_byte = now;
                if n == 0 {
                    live.eof = true;
                }
                drop(live);
                sh.cv.notify_all();
                if n == 0 {
                    break;
                }
            }
            let _ = tx.send(checker);
        });
        let sh = Arc::clone(&shared);
        std::thread::spawn(move || {
            let status = child.wait();
            let now = now_ns();
            let code = match status {
                Ok(s) => {
                    use std::os::unix::process::ExitStatusExt;
                    s.code().or(s.signal().map(|n| 128 + n)).unwrap_or(-1)
                }
                Err(_) => -1,
            };
            sh.live.lock().expect("lock").exit = Some((now, code));
            sh.cv.notify_all();
        });
        Ok(Run {
            pid,
            t_start,
            shared,
            checker: rx,
            stderr,
        })
    }

    /// Waits until `pred` holds (re-checked at least every 50 ms) or `timeout`.
    fn wait(&self, timeout: Duration, pred: impl Fn(&Live, u64) -> bool) -> bool {
        let deadline = now_ns() + timeout.as_nanos() as u64;
        let mut live = self.shared.live.lock().expect("lock");
        loop {
            let now = now_ns();
            if pred(&live, now) {
                return true;
            }
            if now >= deadline {
                return false;
            }
            let step = Duration::from_nanos((deadline - now).min(50_000_000));
            live = self.shared.cv.wait_timeout(live, step).expect("lock").0;
        }
    }

    /// Stops the runner as a user would.
    fn stop(&self, how: Stop) {
        match how {
            // A terminal sends SIGINT to the whole foreground process group:
            // the runner, and its instances unless it gave them their own.
            // SAFETY: signalling the process group we created.
            Stop::CtrlC => unsafe {
                libc::kill(-(self.pid as i32), libc::SIGINT);
            },
            Stop::Term => sys::kill(self.pid, libc::SIGTERM),
        }
    }

    fn live(&self) -> Live {
        *self.shared.live.lock().expect("lock")
    }

    fn exited(&self, timeout: Duration) -> Option<(u64, i32)> {
        self.wait(timeout, |l, _| l.exit.is_some());
        self.live().exit
    }

    /// Makes sure everything is gone: SIGKILL to the runner's group and to
    /// every process left behind. Returns the checker and how many processes
    /// were still alive after the runner exited.
    fn finish(self) -> (Checker, Live, usize) {
        let exited = self.live().exit.is_some();
        if !exited {
            // SAFETY: signalling the process group we created.
            unsafe { libc::kill(-(self.pid as i32), libc::SIGKILL) };
            sys::kill(self.pid, libc::SIGKILL);
            self.wait(Duration::from_secs(5), |l, _| l.exit.is_some());
        }
        // Give a runner's own clean-up a moment to finish before counting.
        std::thread::sleep(Duration::from_millis(20));
        let left = sys::sweep(&[]);
        let checker = self
            .checker
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_default();
        let live = self.live();
        (checker, live, left)
    }

    fn stderr_tail(&self) -> String {
        let text = fs::read_to_string(&self.stderr).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(3)..].join(" / ")
    }
}

struct Bench {
    opts: Opts,
    exe: PathBuf,
    runners: Vec<Runner>,
    tables: Vec<Table>,
    notes: Vec<String>,
}

pub fn main(args: &[String]) -> Result<ExitCode> {
    let opts = match parse(args) {
        Ok(o) => o,
        Err(e) if e == HELP => {
            print!("{HELP}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e),
    };
    sys::raise_nofile();
    sys::become_subreaper();
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let mut runners = vec![Runner {
        name: "baseline",
        kind: Kind::Baseline,
        exe: exe.clone(),
    }];
    let mut notes = Vec::new();
    match &opts.procrun {
        Some(p) => {
            let p = which(&p.to_string_lossy())
                .and_then(|p| p.canonicalize().ok())
                .ok_or(format!("--procrun {}: no such file", p.display()))?;
            runners.push(Runner {
                name: "procrun",
                kind: Kind::Procrun,
                exe: p,
            });
        }
        None => notes.push("procrun skipped: no --procrun PATH given".to_string()),
    }
    for (label, p) in &opts.also {
        let p = which(&p.to_string_lossy())
            .and_then(|p| p.canonicalize().ok())
            .ok_or(format!("--also {label}={}: no such file", p.display()))?;
        runners.push(Runner {
            // Row names live as long as the run.
            name: Box::leak(format!("procrun {label}").into_boxed_str()),
            kind: Kind::Procrun,
            exe: p,
        });
    }
    let peer_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/bin");
    let (peers, missing) = if opts.peers.as_deref() == Some(&["none".to_string()]) {
        (Vec::new(), Vec::new())
    } else {
        find_peers(&[peer_dir], opts.peers.as_deref())
    };
    runners.extend(peers);
    notes.extend(missing);

    let mut bench = Bench {
        opts,
        exe,
        runners,
        tables: Vec::new(),
        notes,
    };
    let started = now_ns();
    let header = bench.header();
    eprintln!("{header}");
    let want = |s: &str| {
        bench
            .opts
            .only
            .as_ref()
            .is_none_or(|o| o.iter().any(|x| x == s))
    };
    let (tp, lb, bp, js, st, sd, stb, ex) = (
        want("throughput"),
        want("linebuffered"),
        want("backpressure"),
        want("json"),
        want("startup"),
        want("shutdown"),
        want("stubborn"),
        want("exit"),
    );
    let ui = want("ui");
    let (rs, soak, ctl) = (want("restart"), want("restart-soak"), want("control"));
    if want("limit") {
        bench.limit();
    }
    if tp {
        for k in bench.opts.writers.clone() {
            bench.throughput(k, None, bench.opts.per_write);
        }
    }
    if lb {
        for k in [1, 16] {
            bench.throughput(k, None, 1);
        }
    }
    if bp {
        bench.throughput(16, Some(bench.opts.slow_mbps * 1e6), bench.opts.per_write);
    }
    if js {
        bench.json_throughput(16);
    }
    if st {
        for k in bench.opts.instances.clone() {
            bench.startup(k);
        }
    }
    if sd {
        bench.shutdown(Stop::CtrlC);
        bench.shutdown(Stop::Term);
    }
    if stb {
        bench.stubborn();
    }
    if ex {
        bench.exit_code();
    }
    if rs {
        bench.restart();
    }
    if soak {
        bench.restart_soak();
    }
    if ui {
        let builds: Vec<(String, PathBuf)> = bench
            .runners
            .iter()
            .filter(|r| r.kind == Kind::Procrun)
            .map(|r| (r.name.to_string(), r.exe.clone()))
            .collect();
        let secs = if bench.opts.quick { 2.0 } else { 10.0 };
        let tables = crate::ui::scenario(&builds, &bench.exe, bench.opts.reps, secs);
        bench.tables.extend(tables);
    }
    if ctl {
        bench.control();
    }
    let elapsed = sys::secs(now_ns() - started);
    let mut md = header.clone();
    for t in &bench.tables {
        md.push('\n');
        md.push_str(&t.markdown());
    }
    if !bench.notes.is_empty() {
        md.push_str("\nNotes:\n");
        for n in &bench.notes {
            md.push_str(&format!("- {n}\n"));
        }
    }
    md.push_str(&format!(
        "\nTotal bench time: {elapsed:.1} s; load average at the end: {}\n",
        loadavg()
    ));
    println!("{md}");
    if let Some(path) = &bench.opts.markdown {
        fs::write(path, &md).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    if let Some(path) = &bench.opts.json {
        let json = format!(
            "{{\"machine\":{},\"runners\":[{}],\"notes\":[{}],\"seconds\":{elapsed},\"tables\":[{}]}}\n",
            jstr(&machine()),
            bench
                .runners
                .iter()
                .map(|r| format!(
                    "{{\"name\":{},\"exe\":{},\"version\":{}}}",
                    jstr(r.name),
                    jstr(&r.exe.to_string_lossy()),
                    jstr(&version(r))
                ))
                .collect::<Vec<_>>()
                .join(","),
            bench
                .notes
                .iter()
                .map(|n| jstr(n))
                .collect::<Vec<_>>()
                .join(","),
            bench
                .tables
                .iter()
                .map(Table::json)
                .collect::<Vec<_>>()
                .join(",")
        );
        fs::write(path, json).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    // Correctness, never speed: procrun and the baselines must lose,
    // split, leak or leave behind nothing, and every scenario must have run.
    // Only the peers' rows may fail.
    let peers: Vec<&str> = bench
        .runners
        .iter()
        .filter(|r| !r.is_baseline() && r.kind != Kind::Procrun)
        .map(|r| r.name)
        .collect();
    let mut failures = Vec::new();
    for t in &bench.tables {
        for row in &t.rows {
            if peers.contains(&row.runner.as_str()) {
                continue;
            }
            for note in &row.notes {
                if !note.contains("runner processes") {
                    failures.push(format!("{}: {}: {note}", t.title, row.runner));
                }
            }
            for (c, vals) in t.cols.iter().zip(&row.values) {
                if c.agg == Agg::Max && vals.iter().any(|v| *v > 0.0) {
                    failures.push(format!("{}: {}: {} > 0", t.title, row.runner, c.name));
                }
            }
        }
    }
    if !failures.is_empty() {
        eprintln!("procrun-bench: correctness failures:");
        for f in &failures {
            eprintln!("  {f}");
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']))
        })
        .unwrap_or("unknown")
        .to_string();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mem = sys::status_kb_file("/proc/meminfo", "MemTotal").unwrap_or(0);
    format!(
        "{cpus} CPUs ({model}), {:.1} GiB RAM, Linux {}",
        mem as f64 / 1024.0 / 1024.0,
        kernel.trim()
    )
}

fn version(r: &Runner) -> String {
    let arg = match r.kind {
        Kind::Baseline | Kind::BaselineFork | Kind::LimitMux | Kind::LimitMuxGroups => {
            return env!("CARGO_PKG_VERSION").to_string();
        }
        Kind::Foreman => "version",
        _ => "--version",
    };
    Command::new(&r.exe)
        .arg(arg)
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let s = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8_lossy(&s)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

impl Bench {
    fn header(&self) -> String {
        let mut h = String::from("## procrun-bench\n\n");
        h.push_str(&format!("- machine: {}\n", machine()));
        h.push_str(&format!("- load average at the start: {}\n", loadavg()));
        h.push_str(&format!(
            "- repetitions: {}{}; throughput volume: {} MiB (procrun, baseline), {} MiB (peers); {} lines of {} bytes per write\n",
            self.opts.reps,
            if self.opts.quick { " (quick)" } else { "" },
            self.opts.mib,
            self.opts.peer_mib,
            self.opts.per_write,
            LINE_LEN
        ));
        h.push_str(&format!(
            "- restart: {} s per run; restart soak: {} instances, {} s\n",
            self.opts.restart_secs, self.opts.soak_instances, self.opts.soak_secs
        ));
        for r in &self.runners {
            h.push_str(&format!(
                "- {}: {} ({})\n",
                r.name,
                r.exe.display(),
                version(r)
            ));
        }
        h
    }

    /// A Procfile command running this binary. `exec` so that the instance
    /// itself, not a wrapping shell, is the runner's child: dash does not
    /// exec the last command of `sh -c` by itself, and runners that signal
    /// only their direct children would otherwise orphan the instance.
    fn cmd(&self, args: &str) -> String {
        format!("exec {} {args}", self.exe.display())
    }

    fn procfile(dir: &Path, entries: &[(&str, String)]) {
        let text: String = entries.iter().map(|(n, c)| format!("{n}: {c}\n")).collect();
        fs::write(dir.join("Procfile"), text).expect("write Procfile");
    }

    fn progress(&self, what: &str) {
        eprintln!("  {what}");
    }

    /// (a) K writers flat out.
    fn throughput(&mut self, k: u32, rate: Option<f64>, per_write: u32) {
        let title = match rate {
            None if per_write == 1 => {
                format!("Throughput: {k} writer(s) × 100-byte lines, one line per write(2)")
            }
            None => format!("Throughput: {k} writer(s) × 100-byte lines"),
            Some(r) => format!(
                "Back-pressure: {k} writers flat out, the reader takes only {:.0} MB/s",
                r / 1e6
            ),
        };
        let mut t = Table::new(
            title,
            vec![
                col("MB/s", 1),
                col("runner CPU s/GB", 2),
                col("peak RSS MiB (main process)", 1),
                col("PSS MiB (all runner processes)", 1),
                worst("lost"),
                worst("dup"),
                worst("split"),
                worst("interleaved"),
                worst("reordered"),
            ],
        );
        t.ratio_col = Some((0, true));
        t.baseline = Some("raw pipe".into());
        for rep in 0..self.opts.reps {
            for r in self.runners.clone() {
                let name = if r.is_baseline() { "raw pipe" } else { r.name };
                let mut mib = if rate.is_some() {
                    self.opts.slow_mib
                } else if matches!(r.kind, Kind::Baseline | Kind::Procrun) {
                    self.opts.mib
                } else {
                    self.opts.peer_mib
                };
                if per_write == 1 && rate.is_none() {
                    // Several times slower per byte: a quarter of the volume.
                    mib /= 4.0;
                }
                let per = ((mib * 1048576.0 / LINE_LEN as f64) / f64::from(k)).ceil() as u64;
                self.progress(&format!("throughput K={k} {name} rep {}", rep + 1));
                let shape = (k, per, per_write, rate);
                if let Err(e) = self.throughput_once(&mut t, &r, name, shape, Reading::Text) {
                    t.note(name, e);
                }
            }
        }
        self.tables.push(t);
    }

    fn throughput_once(
        &self,
        t: &mut Table,
        r: &Runner,
        name: &str,
        (k, per, per_write, rate): (u32, u64, u32, Option<f64>),
        read: Reading,
    ) -> Result<()> {
        let dir = TempDir::new("tp").map_err(|e| e.to_string())?;
        let cmd = self.cmd(&format!(
            "produce --lines {per} --per-write {per_write} --linger"
        ));
        Self::procfile(&dir.0, &[("w", cmd.clone())]);
        let mut command = r.command(&dir.0, &[("w", k)], &[("w", cmd)], None);
        let checker = match read {
            Reading::Json => {
                command.args(["--log-format", "json"]);
                Checker::json()
            }
            Reading::Text => Checker::new(),
            Reading::Sink => Checker::sink(),
        };
        let run = Run::spawn_reader(command, dir.0.join("stderr.log"), rate, checker)?;
        let bytes = (per * u64::from(k) * LINE_LEN as u64) as f64;
        // At least 1 MB/s, and give up after 3 s without a byte.
        let limit = Duration::from_secs_f64(30.0 + bytes / 1e6 + bytes / rate.unwrap_or(1e12));
        let complete = run.wait(limit, |l, now| {
            l.counts.done >= u64::from(k)
                || l.eof
                || l.exit.is_some()
                || (l.t_last_byte > 0 && now - l.t_last_byte > 3_000_000_000)
        });
        let usage = sys::runner_usage(run.pid, &self.exe);
        let live = run.live();
        sys::kill(run.pid, libc::SIGINT);
        run.exited(Duration::from_secs(10));
        let tail = run.stderr_tail();
        let (checker, _, _) = run.finish();
        let c = checker.counts;
        let expected = per * u64::from(k);
        let unique = match read {
            // Unverified: every line counts once every writer is done.
            Reading::Sink if live.counts.done >= u64::from(k) => expected,
            Reading::Sink => 0,
            _ => checker.unique_below(per),
        };
        let end = if live.counts.done >= u64::from(k) {
            live.t_last_done
        } else {
            live.t_last_byte
        };
        let span = end.saturating_sub(live.t_first_payload).max(1);
        let moved = unique as f64 * LINE_LEN as f64;
        t.push(name, "MB/s", moved / sys::secs(span) / 1e6);
        if r.measured() {
            t.push(name, "runner CPU s/GB", usage.cpu / (moved / 1e9));
            if usage.procs > 1 {
                t.note(
                    name,
                    format!(
                        "{} runner processes (CPU is their sum; PSS counts shared pages once)",
                        usage.procs
                    ),
                );
            }
            t.push(name, "peak RSS MiB (main process)", usage.main_hwm_mib);
            t.push(name, "PSS MiB (all runner processes)", usage.pss_mib);
        }
        if read != Reading::Sink {
            t.push(name, "lost", (expected - unique) as f64);
            t.push(name, "dup", c.duplicated as f64);
            t.push(name, "split", c.corrupt as f64);
            t.push(name, "interleaved", c.interleaved as f64);
            t.push(name, "reordered", c.reordered as f64);
        }
        if read == Reading::Json {
            t.push(name, "bad records", c.bad_records as f64);
            t.push(name, "seq gaps", c.seq_gaps as f64);
        }
        if !complete {
            t.note(
                name,
                "timed out waiting for every writer's DONE line".into(),
            );
        }
        if unique == 0 && !tail.is_empty() {
            t.note(name, format!("stderr: {tail}"));
        }
        Ok(())
    }

    /// K writers flat out under `--log-format json`, beside the same run in
    /// text: what the JSON encoding costs, and whether every record is
    /// whole, parses, and carries the writer's line.
    fn json_throughput(&mut self, k: u32) {
        let Some(r) = self.procrun() else {
            return;
        };
        let mut t = Table::new(
            format!("JSON output: {k} writers × 100-byte lines, `--log-format json` beside text"),
            vec![
                col("MB/s", 1),
                col("runner CPU s/GB", 2),
                col("peak RSS MiB (main process)", 1),
                col("PSS MiB (all runner processes)", 1),
                worst("lost"),
                worst("dup"),
                worst("split"),
                worst("interleaved"),
                worst("reordered"),
                worst("bad records"),
                worst("seq gaps"),
            ],
        );
        t.ratio_col = Some((0, true));
        t.baseline_cols = vec![1];
        t.baseline = Some(TEXT.into());
        t.vs_procrun = false;
        let per = ((self.opts.mib * 1048576.0 / LINE_LEN as f64) / f64::from(k)).ceil() as u64;
        for rep in 0..self.opts.reps {
            for (name, read) in [(TEXT, Reading::Text), (JSON, Reading::Json)] {
                self.progress(&format!("json K={k} {name} rep {}", rep + 1));
                let shape = (k, per, self.opts.per_write, None);
                if let Err(e) = self.throughput_once(&mut t, &r, name, shape, read) {
                    t.note(name, e);
                }
            }
        }
        self.tables.push(t);
    }

    /// The control socket's costs, for every procrun build
    /// (`crate::control`).
    fn control(&mut self) {
        let cfg = crate::control::Config {
            instances: self.opts.control_instances,
            calls: self.opts.control_calls,
            latency_secs: self.opts.control_secs,
            idle_secs: self.opts.control_secs,
            ring_instances: 100,
            ring_secs: self.opts.ring_secs,
            reps: self.opts.reps,
        };
        let builds: Vec<Runner> = self
            .runners
            .iter()
            .filter(|r| r.kind == Kind::Procrun)
            .cloned()
            .collect();
        let tables = crate::control::run(&cfg, &builds, &self.exe, &|w| self.progress(w));
        self.tables.extend(tables);
    }

    fn procrun(&self) -> Option<Runner> {
        self.runners
            .iter()
            .find(|r| r.kind == Kind::Procrun)
            .cloned()
    }

    /// (b) K instances that print one ready line.
    fn startup(&mut self, k: u32) {
        let mut t = Table::new(
            format!("Startup: {k} instance(s) until every ready line is seen"),
            startup_columns(),
        );
        t.ratio_col = Some((0, false));
        t.baseline = Some("fork/exec".into());
        for rep in 0..self.opts.reps {
            let mut runners = self.runners.clone();
            // Beside posix_spawn (vfork), the same launcher with fork():
            // what spawning costs once a runner needs a pre_exec hook.
            runners.insert(
                1,
                Runner {
                    name: "fork() + exec",
                    kind: Kind::BaselineFork,
                    exe: self.exe.clone(),
                },
            );
            for r in runners {
                let name = match r.kind {
                    Kind::Baseline => "fork/exec",
                    _ => r.name,
                };
                self.progress(&format!("startup K={k} {name} rep {}", rep + 1));
                if let Err(e) = self.startup_once(&mut t, &r, name, k) {
                    t.note(name, e);
                }
            }
        }
        self.tables.push(t);
    }

    fn startup_once(&self, t: &mut Table, r: &Runner, name: &str, k: u32) -> Result<()> {
        let dir = TempDir::new("st").map_err(|e| e.to_string())?;
        let cmd = self.cmd("ready");
        Self::procfile(&dir.0, &[("r", cmd.clone())]);
        let run = Run::spawn(
            r.command(&dir.0, &[("r", k)], &[("r", cmd)], None),
            dir.0.join("stderr.log"),
        )?;
        let all = run.wait(Duration::from_secs(60), |l, _| {
            l.counts.ready >= u64::from(k) || l.exit.is_some()
        });
        let live = run.live();
        if all && live.counts.ready >= u64::from(k) {
            t.push(
                name,
                "ms to all ready",
                sys::secs(live.t_last_ready - run.t_start) * 1e3,
            );
            std::thread::sleep(Duration::from_millis(200));
            if r.measured() {
                let u = sys::runner_usage(run.pid, &self.exe);
                t.push(name, "peak RSS MiB (main process)", u.main_hwm_mib);
                t.push(name, "PSS MiB (all runner processes)", u.pss_mib);
                if u.procs > 1 {
                    t.note(
                        name,
                        format!(
                            "{} runner processes (CPU is their sum; PSS counts shared pages once)",
                            u.procs
                        ),
                    );
                }
                t.push(name, "runner CPU ms", u.cpu * 1e3);
            }
        } else {
            t.note(
                name,
                format!(
                    "only {} of {k} ready: {}",
                    live.counts.ready,
                    run.stderr_tail()
                ),
            );
        }
        t.push(
            name,
            "not ready",
            (u64::from(k) - live.counts.ready.min(u64::from(k))) as f64,
        );
        let t_sig = now_ns();
        run.stop(Stop::CtrlC);
        let exit = run.exited(Duration::from_secs(STOP_WAIT));
        match exit {
            Some((at, _)) if at >= t_sig => {
                t.push(name, "ms Ctrl-C to exit", sys::secs(at - t_sig) * 1e3)
            }
            // A runner that failed at once: no stop to time.
            Some(_) => t.note(name, "exited before Ctrl-C".into()),
            None => t.note(name, format!("did not exit within {STOP_WAIT} s of Ctrl-C")),
        }
        let (_, _, left) = run.finish();
        t.push(name, "left running", left as f64);
        Ok(())
    }

    fn peers_only(&self) -> Vec<Runner> {
        self.runners
            .iter()
            .filter(|r| !r.is_baseline())
            .cloned()
            .collect()
    }

    /// Starts `formation` and waits for all ready lines.
    fn start_ready(
        &self,
        r: &Runner,
        dir: &Path,
        entries: &[(&str, String)],
        formation: &[(&str, u32)],
        timeout: Option<u32>,
    ) -> Result<Run> {
        Self::procfile(dir, entries);
        let k: u32 = formation.iter().map(|f| f.1).sum();
        let run = Run::spawn(
            r.command(dir, formation, entries, timeout),
            dir.join("stderr.log"),
        )?;
        run.wait(Duration::from_secs(30), |l, _| {
            l.counts.ready >= u64::from(k) || l.exit.is_some()
        });
        let ready = run.live().counts.ready;
        if ready < u64::from(k) {
            let tail = run.stderr_tail();
            sys::kill(run.pid, libc::SIGKILL);
            run.finish();
            return Err(format!("only {ready} of {k} ready: {tail}"));
        }
        // Let the runner settle (it may print after the last ready line).
        std::thread::sleep(Duration::from_millis(100));
        Ok(run)
    }

    /// (c) 10 cooperative instances, stopped by Ctrl-C or by `kill`.
    fn shutdown(&mut self, stop: Stop) {
        let mut t = Table::new(
            format!(
                "Shutdown: 10 instances that exit on SIGTERM/SIGINT; {}",
                stop.describe()
            ),
            vec![
                col("ms signal to runner exit", 1),
                col("ms last instance exit to runner exit", 1),
                worst("instances not signalled"),
                worst("left running"),
            ],
        );
        t.ratio_col = Some((0, false));
        for rep in 0..self.opts.reps {
            for r in self.peers_only() {
                self.progress(&format!("shutdown ({stop:?}) {} rep {}", r.name, rep + 1));
                if let Err(e) = self.shutdown_once(&mut t, &r, stop) {
                    t.note(r.name, e);
                }
            }
        }
        self.tables.push(t);
    }

    fn shutdown_once(&self, t: &mut Table, r: &Runner, stop: Stop) -> Result<()> {
        let dir = TempDir::new("sd").map_err(|e| e.to_string())?;
        let cmd = self.cmd(&format!("ready --term-log {}", dir.0.display()));
        let run = self.start_ready(r, &dir.0, &[("r", cmd)], &[("r", 10)], None)?;
        let t_sig = now_ns();
        run.stop(stop);
        let exit = run.exited(Duration::from_secs(STOP_WAIT));
        let (_, _, left) = run.finish();
        let terms = stamps(&dir.0, "term-");
        let Some((at, _)) = exit else {
            return Err(format!("did not exit within {STOP_WAIT} s of the signal"));
        };
        t.push(
            r.name,
            "ms signal to runner exit",
            sys::secs(at - t_sig) * 1e3,
        );
        if let Some(last) = terms.iter().max() {
            t.push(
                r.name,
                "ms last instance exit to runner exit",
                (at as f64 - *last as f64) / 1e6,
            );
        }
        t.push(
            r.name,
            "instances not signalled",
            (10 - terms.len().min(10)) as f64,
        );
        t.push(r.name, "left running", left as f64);
        Ok(())
    }

    /// (c) a stubborn instance: SIGKILL at the timeout (-t 1).
    fn stubborn(&mut self) {
        let mut t = Table::new(
            "Stubborn instance (ignores SIGTERM/SIGINT) beside 9 cooperative ones, `-t 1`; Ctrl-C"
                .into(),
            vec![
                col("ms after the timeout to runner exit", 1),
                col("timeout s", 0),
                worst("left running"),
            ],
        );
        t.ratio_col = Some((0, false));
        for rep in 0..self.opts.reps {
            for r in self.peers_only() {
                let secs = match r.kill_timeout() {
                    KillTimeout::Flag => 1,
                    KillTimeout::Fixed(s) => s,
                    KillTimeout::Never => {
                        t.note(r.name, "skipped: never escalates to SIGKILL".into());
                        continue;
                    }
                };
                self.progress(&format!("stubborn {} rep {}", r.name, rep + 1));
                if let Err(e) = self.stubborn_once(&mut t, &r, secs) {
                    t.note(r.name, e);
                }
            }
        }
        self.tables.push(t);
    }

    fn stubborn_once(&self, t: &mut Table, r: &Runner, secs: u32) -> Result<()> {
        let dir = TempDir::new("sb").map_err(|e| e.to_string())?;
        let good = self.cmd(&format!("ready --term-log {}", dir.0.display()));
        let bad = self.cmd("ready --stubborn");
        let flag = (r.kill_timeout() == KillTimeout::Flag).then_some(secs);
        let run = self.start_ready(
            r,
            &dir.0,
            &[("r", good), ("s", bad)],
            &[("r", 9), ("s", 1)],
            flag,
        )?;
        let t_sig = now_ns();
        run.stop(Stop::CtrlC);
        let exit = run.exited(Duration::from_secs(u64::from(secs) + STOP_WAIT));
        let (_, _, left) = run.finish();
        let Some((at, _)) = exit else {
            return Err(format!(
                "did not exit within {} s of Ctrl-C",
                secs as u64 + STOP_WAIT
            ));
        };
        let after = sys::secs(at - t_sig) - f64::from(secs);
        t.push(r.name, "ms after the timeout to runner exit", after * 1e3);
        t.push(r.name, "timeout s", f64::from(secs));
        t.push(r.name, "left running", left as f64);
        Ok(())
    }

    /// (d) one instance exits 3.
    fn exit_code(&mut self) {
        let mut t = Table::new(
            "One of 10 instances exits with code 3".into(),
            vec![
                col("runner exit code", 0),
                col("ms until the other 9 stopped", 1),
                col("ms until runner exit", 1),
                worst("instances not signalled"),
                worst("left running"),
            ],
        );
        t.ratio_col = Some((2, false));
        for rep in 0..self.opts.reps {
            for r in self.peers_only() {
                self.progress(&format!("exit 3 {} rep {}", r.name, rep + 1));
                if let Err(e) = self.exit_once(&mut t, &r) {
                    t.note(r.name, e);
                }
            }
        }
        self.tables.push(t);
    }

    fn exit_once(&self, t: &mut Table, r: &Runner) -> Result<()> {
        let dir = TempDir::new("ex").map_err(|e| e.to_string())?;
        let fifo = dir.0.join("fail.fifo");
        sys::mkfifo(&fifo).map_err(|e| e.to_string())?;
        let good = self.cmd(&format!("ready --term-log {}", dir.0.display()));
        let bad = self.cmd(&format!(
            "ready --term-log {} --fail-fifo {} --code 3",
            dir.0.display(),
            fifo.display()
        ));
        let run = self.start_ready(
            r,
            &dir.0,
            &[("r", good), ("f", bad)],
            &[("r", 9), ("f", 1)],
            Some(1),
        )?;
        // Opening the FIFO for writing releases the failing instance.
        drop(File::options().write(true).open(&fifo));
        let exit = run.exited(Duration::from_secs(15));
        if exit.is_none() {
            sys::kill(run.pid, libc::SIGINT);
            run.exited(Duration::from_secs(10));
        }
        let (_, _, left) = run.finish();
        let fail = stamps(&dir.0, "fail-");
        let terms = stamps(&dir.0, "term-");
        let Some(&t_fail) = fail.first() else {
            return Err("the failing instance did not run".into());
        };
        let Some((at, code)) = exit else {
            t.note(r.name, "kept running after an instance exited".into());
            t.push(
                r.name,
                "instances not signalled",
                (9 - terms.len().min(9)) as f64,
            );
            t.push(r.name, "left running", left as f64);
            return Ok(());
        };
        t.push(r.name, "runner exit code", f64::from(code));
        if let Some(last) = terms.iter().max() {
            t.push(
                r.name,
                "ms until the other 9 stopped",
                (*last as f64 - t_fail as f64) / 1e6,
            );
        }
        t.push(
            r.name,
            "ms until runner exit",
            (at as f64 - t_fail as f64) / 1e6,
        );
        t.push(
            r.name,
            "instances not signalled",
            (9 - terms.len().min(9)) as f64,
        );
        t.push(r.name, "left running", left as f64);
        Ok(())
    }
}

/// CLOCK_MONOTONIC stamps written by `ready` instances into `dir`.
fn stamps(dir: &Path, prefix: &str) -> Vec<u64> {
    let Ok(rd) = fs::read_dir(dir) else {
        return Vec::new();
    };
    rd.flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
        .filter_map(|e| fs::read_to_string(e.path()).ok()?.trim().parse().ok())
        .collect()
}

/// The columns of a start-and-stop run (`startup`, and the limit's
/// `limit_startup`).
pub(crate) fn startup_columns() -> Vec<Col> {
    vec![
        col("ms to all ready", 1),
        col("peak RSS MiB (main process)", 1),
        col("PSS MiB (all runner processes)", 1),
        col("runner CPU ms", 0),
        col("ms Ctrl-C to exit", 1),
        worst("not ready"),
        worst("left running"),
    ]
}
