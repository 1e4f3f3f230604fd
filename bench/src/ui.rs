//! The `ui` scenario: what `procrun ui` costs while the app writes, and
//! what it costs `start`.
//!
//! Each build runs `procrun start` of 16 writers with its stdout on
//! `/dev/null` (the log ring keeps the output for the dashboard), then its
//! own `procrun ui` on a pseudo-terminal this harness owns (120×40; what
//! the dashboard draws is read and thrown away). Two shapes:
//!
//! - **paced**: 16 `pace` writers of 625,000 bytes a second (10 MB/s in
//!   all, 100-byte lines, 10 per write); over the window, with nothing
//!   attached and then with the dashboard: `start`'s CPU, the dashboard's
//!   CPU, its redraws a second, and what the writers achieved;
//! - **flat out**: 16 writers as fast as they can (40 lines per write):
//!   what `start` moves with nothing attached and with the dashboard.
//!
//! CPU is utime + stime from `/proc/PID/stat` over the window (10 ms
//! ticks; threads included). Bytes moved are the writers' `wchar`
//! (`/proc/PID/io`) over the window: with `start`'s pipes full they can
//! only write what `start` reads. A redraw is a burst of output on the
//! pseudo-terminal: reads separated by at least 5 ms of quiet (the
//! dashboard draws at most every 33 ms, and writes one frame at once).
//!
//! Everything started is stopped after each run: the dashboard with `q`
//! (then SIGKILL to its session), `start` with SIGTERM (then SIGKILL to
//! its process group), and whatever is left with [`sys::sweep`].

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::line::{LINE_LEN, LineWriter};
use crate::report::{Table, col};
use crate::sys::{self, TempDir, now_ns};
use crate::{Result, opt, stdout_file};

/// Writers, and what the paced ones write in all, in bytes a second.
const WRITERS: u32 = 16;
const PACED_TOTAL: f64 = 10e6;

/// The dashboard's terminal.
const ROWS: u16 = 40;
const COLS: u16 = 120;

/// Quiet on the terminal that ends a redraw.
const BURST_GAP_NS: u64 = 5_000_000;

/// `pace [--rate BYTES_PER_SEC] [--per-write N]`: writes 100-byte lines,
/// N per write(2), at that rate (none: as fast as it can) until killed.
/// It catches up at most one second it fell behind (a runner that blocked
/// it shows as a lower rate, not as a burst after).
pub fn pace(args: &[String]) -> Result<ExitCode> {
    let rate: Option<f64> = opt(args, "--rate")?;
    let per_write: usize = opt(args, "--per-write")?.unwrap_or(10).max(1);
    let mut writer = LineWriter::new(std::process::id());
    let mut out = stdout_file();
    let mut buf = Vec::with_capacity(per_write * LINE_LEN);
    let start = now_ns();
    let mut credit: f64 = 0.0;
    let mut seq = 0;
    loop {
        if let Some(rate) = rate {
            let due = sys::secs(now_ns() - start) * rate;
            credit = credit.max(due - rate);
            if credit >= due {
                let wait = (credit - due) / rate;
                std::thread::sleep(Duration::from_secs_f64(wait.clamp(0.0001, 0.01)));
                continue;
            }
        }
        buf.clear();
        for _ in 0..per_write {
            writer.line(seq, &mut buf);
            seq += 1;
        }
        if out.write_all(&buf).is_err() {
            return Ok(ExitCode::from(1));
        }
        credit += buf.len() as f64;
    }
}

/// The two tables of the scenario, `secs` seconds per window, each build
/// (label, procrun binary) in every repetition.
pub fn scenario(builds: &[(String, PathBuf)], bench: &Path, reps: usize, secs: f64) -> Vec<Table> {
    let mut paced = Table::new(
        format!(
            "Dashboard: `procrun ui` (120×40 pty, on \"all\") while {WRITERS} writers write {:.0} MB/s in all; `start`'s stdout on /dev/null; {secs} s windows",
            PACED_TOTAL / 1e6
        ),
        vec![
            col("dashboard CPU %", 1),
            col("redraws/s", 1),
            col("start CPU % alone", 1),
            col("start CPU % with dashboard", 1),
            col("writers MB/s alone", 2),
            col("writers MB/s with dashboard", 2),
        ],
    );
    paced.vs_procrun = false;
    paced.row_label = "build";
    let mut flat = Table::new(
        format!(
            "Dashboard, writers flat out: {WRITERS} writers as fast as they can; what `start` moves with nothing attached and with `procrun ui`; {secs} s windows"
        ),
        vec![
            col("start MB/s alone", 0),
            col("start MB/s with dashboard", 0),
            col("with / alone", 2),
            col("dashboard CPU %", 1),
            col("start CPU % alone", 1),
            col("start CPU % with dashboard", 1),
        ],
    );
    flat.vs_procrun = false;
    flat.row_label = "build";
    for rep in 0..reps {
        for (label, exe) in builds {
            for paced_run in [true, false] {
                let shape = if paced_run { "paced" } else { "flat out" };
                eprintln!("  ui {shape} {label} rep {}", rep + 1);
                let t = if paced_run { &mut paced } else { &mut flat };
                match run(exe, bench, paced_run, secs) {
                    Ok(m) => m.record(t, label, paced_run),
                    Err(e) => t.note(label, e),
                }
            }
        }
    }
    vec![paced, flat]
}

/// One window's figures.
#[derive(Debug, Default)]
struct Window {
    start_cpu: f64,
    ui_cpu: f64,
    /// Bytes a second the writers wrote.
    written: f64,
    redraws: f64,
}

#[derive(Debug)]
struct Measured {
    alone: Window,
    attached: Window,
}

impl Measured {
    fn record(&self, t: &mut Table, label: &str, paced: bool) {
        let (a, b) = (&self.alone, &self.attached);
        t.push(label, "dashboard CPU %", b.ui_cpu);
        t.push(label, "start CPU % alone", a.start_cpu);
        t.push(label, "start CPU % with dashboard", b.start_cpu);
        if paced {
            t.push(label, "redraws/s", b.redraws);
            t.push(label, "writers MB/s alone", a.written / 1e6);
            t.push(label, "writers MB/s with dashboard", b.written / 1e6);
        } else {
            t.push(label, "start MB/s alone", a.written / 1e6);
            t.push(label, "start MB/s with dashboard", b.written / 1e6);
            if a.written > 0.0 {
                t.push(label, "with / alone", b.written / a.written);
            }
        }
    }
}

/// `wchar` of `/proc/PID/io`: bytes the process passed to write(2).
fn wchar(pid: u32) -> Option<u64> {
    let io = fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The writers: `start`'s descendants running this harness's binary.
fn writers(start: u32, bench: &Path) -> Vec<u32> {
    let all = sys::processes();
    sys::tree(&all, start)
        .into_iter()
        .filter(|p| all.get(p).and_then(|p| p.exe.as_deref()) == Some(bench))
        .collect()
}

/// CPU seconds of `ui` and `start`, and the writers' bytes, now.
fn sample(start: u32, ui: Option<u32>, writers: &[u32]) -> (f64, f64, u64, u64) {
    let written = writers.iter().filter_map(|w| wchar(*w)).sum();
    (
        sys::cpu_secs(start).unwrap_or(0.0),
        ui.and_then(sys::cpu_secs).unwrap_or(0.0),
        written,
        now_ns(),
    )
}

fn window(
    start: u32,
    ui: Option<u32>,
    writers: &[u32],
    secs: f64,
    bursts: Option<&Bursts>,
) -> Window {
    let (s0, u0, w0, t0) = sample(start, ui, writers);
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (s1, u1, w1, t1) = sample(start, ui, writers);
    let span = sys::secs(t1 - t0);
    Window {
        start_cpu: (s1 - s0) / span * 100.0,
        ui_cpu: (u1 - u0) / span * 100.0,
        written: w1.saturating_sub(w0) as f64 / span,
        redraws: bursts.map_or(0.0, |b| b.count(t0, t1) as f64 / span),
    }
}

/// When the dashboard's terminal output came: the times of the reads.
#[derive(Debug, Default)]
struct Bursts(Mutex<Vec<u64>>);

impl Bursts {
    /// Bursts that began between `t0` and `t1`.
    fn count(&self, t0: u64, t1: u64) -> usize {
        let reads = self.0.lock().expect("lock");
        let mut last = 0;
        let mut n = 0;
        for &t in reads.iter() {
            if t.saturating_sub(last) >= BURST_GAP_NS && (t0..t1).contains(&t) {
                n += 1;
            }
            last = t;
        }
        n
    }
}

/// A pseudo-terminal of 120×40: (master, slave).
fn openpty() -> Result<(OwnedFd, OwnedFd)> {
    let (mut master, mut slave) = (0, 0);
    let size = libc::winsize {
        ws_row: ROWS,
        ws_col: COLS,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors; the name and termios may be
    // null; the winsize is read only.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    if r != 0 {
        return Err(format!("openpty: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: both were just opened and are owned here alone.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    // The dashboard must not inherit the master.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(master.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    Ok((master, slave))
}

/// `procrun ui` on a new pseudo-terminal, as the leader of its own session
/// with the terminal as its controlling one; a thread reads what it draws.
fn spawn_ui(exe: &Path, dir: &Path, rt: &Path, bursts: &Arc<Bursts>) -> Result<(Child, File)> {
    let (master, slave) = openpty()?;
    let io = |fd: &OwnedFd| -> Result<Stdio> {
        Ok(Stdio::from(fd.try_clone().map_err(|e| e.to_string())?))
    };
    let mut cmd = Command::new(exe);
    cmd.arg("ui")
        .current_dir(dir)
        .env("XDG_RUNTIME_DIR", rt)
        .env("TERM", "xterm-256color")
        .stdin(io(&slave)?)
        .stdout(io(&slave)?)
        .stderr(io(&slave)?);
    // SAFETY: setsid and ioctl are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn().map_err(|e| format!("procrun ui: {e}"))?;
    drop(slave);
    let mut reader = File::from(master.try_clone().map_err(|e| e.to_string())?);
    let bursts = Arc::clone(bursts);
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        // Ends with EIO once the dashboard (the last holder of the slave)
        // is gone.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            bursts.0.lock().expect("lock").push(now_ns());
        }
    });
    Ok((child, File::from(master)))
}

/// Waits up to `limit` for `child` to exit.
fn wait_exit(child: &mut Child, limit: Duration) -> bool {
    let deadline = now_ns() + limit.as_nanos() as u64;
    while now_ns() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// Waits (bounded) until the socket of the `start` in `rt` is there.
fn wait_socket(rt: &Path, start: &mut Child) -> Result<()> {
    let deadline = now_ns() + 10_000_000_000;
    while now_ns() < deadline {
        let found = fs::read_dir(rt.join("procrun"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "sock"));
        if found {
            return Ok(());
        }
        if let Ok(Some(status)) = start.try_wait() {
            return Err(format!("start exited: {status}"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err("no control socket within 10 s".into())
}

/// One run of one build: `start`, a window alone, the dashboard, a window
/// with it; then everything stopped.
fn run(exe: &Path, bench: &Path, paced: bool, secs: f64) -> Result<Measured> {
    let dir = TempDir::new("ui").map_err(|e| e.to_string())?;
    let rt = dir.0.join("rt");
    fs::create_dir(&rt).map_err(|e| e.to_string())?;
    let writer = if paced {
        format!(
            "pace --rate {:.0} --per-write 10",
            PACED_TOTAL / f64::from(WRITERS)
        )
    } else {
        "pace --per-write 40".to_owned()
    };
    fs::write(
        dir.0.join("Procfile"),
        format!("w: exec {} {writer}\n", bench.display()),
    )
    .map_err(|e| e.to_string())?;
    let stderr = File::create(dir.0.join("start.err")).map_err(|e| e.to_string())?;
    let mut start = Command::new(exe)
        .args(["start", "-f", "Procfile", "-m", &format!("w={WRITERS}")])
        .args(["--color", "never"])
        .current_dir(&dir.0)
        .env("XDG_RUNTIME_DIR", &rt)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("procrun start: {e}"))?;
    let pid = start.id();
    let bursts = Arc::new(Bursts::default());
    let mut ui: Option<(Child, File)> = None;
    let measured = (|| -> Result<Measured> {
        wait_socket(&rt, &mut start)?;
        std::thread::sleep(Duration::from_secs(2));
        let ws = writers(pid, bench);
        if ws.len() != WRITERS as usize {
            return Err(format!("{} writers running, not {WRITERS}", ws.len()));
        }
        let alone = window(pid, None, &ws, secs, None);
        let (child, master) = spawn_ui(exe, &dir.0, &rt, &bursts)?;
        let ui_pid = child.id();
        ui = Some((child, master));
        // Its replay of the log ring (2,000 lines of each writer) first.
        std::thread::sleep(Duration::from_secs(3));
        let attached = window(pid, Some(ui_pid), &ws, secs, Some(&bursts));
        if let Some((child, _)) = ui.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            return Err(format!("the dashboard exited early: {status}"));
        }
        Ok(Measured { alone, attached })
    })();
    if let Some((mut child, mut master)) = ui {
        let _ = master.write_all(b"q");
        if !wait_exit(&mut child, Duration::from_secs(5)) {
            // SAFETY: signalling the session (process group) we started.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
    sys::kill(pid, libc::SIGTERM);
    if !wait_exit(&mut start, Duration::from_secs(8)) {
        // SAFETY: signalling the process group we started.
        unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
        let _ = start.wait();
    }
    // A moment for `start`'s own clean-up before counting what is left.
    std::thread::sleep(Duration::from_millis(50));
    let left = sys::sweep(&[]);
    let measured = measured?;
    if left > 0 {
        return Err(format!("{left} processes were left running"));
    }
    Ok(measured)
}
