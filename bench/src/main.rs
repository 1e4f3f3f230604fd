//! procrun-bench: measures procrun against a raw pipe and the other Procfile
//! runners. See bench/README.md.
//!
//! The same binary plays every role:
//! - `procrun-bench [OPTIONS]` (or `run`): the harness, runs every scenario;
//! - `produce`: a writer of self-checking lines (throughput);
//! - `ready`: an instance that prints one ready line and waits (startup,
//!   shutdown, exit code);
//! - `launch`: the baseline launcher, a bare fork/exec of `sh -c CMD`;
//! - `mux`: the limit multiplexer, the least a line-prefixing runner does
//!   (`limit.rs`);
//! - `pace`: a writer of lines at a set rate (the `ui` scenario, `ui.rs`);
//! - `check`: the checker on stdin, for manual use;
//! - `tick`, `drip`: a timestamp every 5 ms, and 100 KB/s of lines (the
//!   control scenario, `control.rs`).

mod control;
mod harness;
mod json;
mod limit;
mod line;
mod report;
mod runners;
mod sys;
mod ui;

use std::fs::File;
use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

use line::{Checker, LINE_LEN, LineWriter};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let role = args.first().cloned().unwrap_or_default();
    let rest = if matches!(
        role.as_str(),
        "produce" | "ready" | "launch" | "mux" | "pace" | "check" | "run" | "tick" | "drip"
    ) {
        args.remove(0);
        args
    } else {
        args
    };
    let result = match role.as_str() {
        "produce" => produce(&rest),
        "ready" => ready(&rest),
        "launch" => launch(&rest),
        "mux" => limit::mux(&rest),
        "pace" => ui::pace(&rest),
        "check" => check(&rest),
        "tick" => control::tick(&rest),
        "drip" => control::drip(&rest),
        _ => harness::main(&rest),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("procrun-bench: {e}");
            ExitCode::from(2)
        }
    }
}

type Result<T> = std::result::Result<T, String>;

/// Simple `--flag value` parsing for the instance roles.
fn opt<T: std::str::FromStr>(args: &[String], flag: &str) -> Result<Option<T>> {
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .map(Some)
            .ok_or_else(|| format!("{flag} needs a value")),
    }
}

fn stdout_file() -> ManuallyDrop<File> {
    // SAFETY: fd 1 stays open for the life of the process; ManuallyDrop
    // never closes it.
    ManuallyDrop::new(unsafe { File::from_raw_fd(1) })
}

/// `produce --lines N [--per-write W] [--linger]`: writes N payload lines,
/// W lines per write(2) (W×100 ≤ PIPE_BUF keeps each write atomic), then a
/// DONE line; with `--linger` it then waits to be signalled, so a runner
/// does not stop the others because this writer finished.
fn produce(args: &[String]) -> Result<ExitCode> {
    let lines: u64 = opt(args, "--lines")?.ok_or("--lines is required")?;
    let per_write: usize = opt(args, "--per-write")?.unwrap_or(40).max(1);
    let linger = args.iter().any(|a| a == "--linger");
    let pid = std::process::id();
    let mut writer = LineWriter::new(pid);
    let mut out = stdout_file();
    let mut buf = Vec::with_capacity(per_write * LINE_LEN);
    for seq in 0..lines {
        writer.line(seq, &mut buf);
        if buf.len() >= per_write * LINE_LEN {
            if out.write_all(&buf).is_err() {
                return Ok(ExitCode::from(1));
            }
            buf.clear();
        }
    }
    buf.extend_from_slice(format!("#PRB DONE {pid} {lines}\n").as_bytes());
    if out.write_all(&buf).is_err() {
        return Ok(ExitCode::from(1));
    }
    if linger {
        loop {
            // SAFETY: pause has no preconditions; a signal ends the process.
            unsafe { libc::pause() };
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ready [--term-log DIR] [--stubborn] [--fail-fifo PATH --code N]`:
/// prints `#PRB READY <pid>` and waits.
/// - default: exits 0 on SIGTERM, SIGINT or SIGHUP, first writing the
///   CLOCK_MONOTONIC time of its exit to `DIR/term-<pid>`;
/// - `--stubborn`: ignores those signals (only SIGKILL stops it);
/// - `--fail-fifo`: waits until the FIFO is opened for writing, writes its
///   exit time to `DIR/fail-<pid>`, and exits with `--code`.
fn ready(args: &[String]) -> Result<ExitCode> {
    let log: Option<PathBuf> = opt(args, "--term-log")?;
    let stubborn = args.iter().any(|a| a == "--stubborn");
    let fifo: Option<PathBuf> = opt(args, "--fail-fifo")?;
    let code: u8 = opt(args, "--code")?.unwrap_or(3);
    let pid = std::process::id();
    let set = if fifo.is_none() {
        Some(sys::block_signals(&[
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
        ]))
    } else {
        None
    };
    let mut out = stdout_file();
    let _ = out.write_all(format!("#PRB READY {pid}\n").as_bytes());
    let record = |what: &str| {
        if let Some(dir) = &log {
            let _ = std::fs::write(dir.join(format!("{what}-{pid}")), sys::now_ns().to_string());
        }
    };
    if let Some(fifo) = fifo {
        // Blocks until the harness opens the FIFO for writing.
        let _ = File::open(&fifo);
        record("fail");
        return Ok(ExitCode::from(code));
    }
    let set = set.expect("signals blocked above");
    loop {
        sys::sigwait(&set);
        if !stubborn {
            record("term");
            return Ok(ExitCode::SUCCESS);
        }
    }
}

/// `launch K1 CMD1 [K2 CMD2 ...] [--wait] [--fork]`: the baseline launcher. Starts
/// K1 copies of `/bin/sh -c CMD1` and so on, all sharing its stdout; then
/// either waits for them all (`--wait`) or for SIGTERM/SIGINT/SIGHUP, which it
/// passes on as SIGTERM before waiting for them. `--fork` spawns with
/// fork() instead of posix_spawn, to measure what that costs.
fn launch(args: &[String]) -> Result<ExitCode> {
    let wait = args.iter().any(|a| a == "--wait");
    let fork = args.iter().any(|a| a == "--fork");
    let pairs: Vec<&String> = args
        .iter()
        .filter(|a| *a != "--wait" && *a != "--fork")
        .collect();
    if !pairs.len().is_multiple_of(2) {
        return Err("launch: expected K CMD pairs".into());
    }
    sys::raise_nofile();
    let mut children = Vec::new();
    for pair in pairs.chunks(2) {
        let k: u32 = pair[0].parse().map_err(|_| "launch: bad count")?;
        for _ in 0..k {
            let mut cmd = Command::new("/bin/sh");
            cmd.arg("-c").arg(pair[1]);
            if fork {
                // A pre_exec hook makes std fork() instead of posix_spawn
                // (vfork): what a runner that sets up the child pays.
                // SAFETY: the hook does nothing.
                unsafe { cmd.pre_exec(|| Ok(())) };
            }
            let child = cmd.spawn().map_err(|e| format!("launch: {e}"))?;
            children.push(child);
        }
    }
    if !wait {
        let set = sys::block_signals(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP]);
        sys::sigwait(&set);
        for c in &children {
            sys::kill(c.id(), libc::SIGTERM);
        }
    }
    let code = sys::wait_all(children);
    Ok(ExitCode::from(code as u8))
}

/// `check [--json]`: runs the checker over stdin (`--json`: NDJSON of
/// `procrun start --log-format json`) and prints the counts.
fn check(args: &[String]) -> Result<ExitCode> {
    let mut checker = if args.iter().any(|a| a == "--json") {
        Checker::json()
    } else {
        Checker::new()
    };
    let mut input = std::io::stdin().lock();
    let mut buf = vec![0u8; 1 << 18];
    let start = sys::now_ns();
    loop {
        match input.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => checker.feed(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    checker.finish();
    let secs = sys::secs(sys::now_ns() - start);
    let c = checker.counts;
    println!(
        "{} writers, {} lines: {} valid ({} distinct), {} duplicated, {} out of order, \
         {} split/corrupt, {} interleaved, {} other, {} done, {} ready, {} restarts, \
         {} bad records, {} seq gaps; {:.1} MB/s",
        checker.writers(),
        c.lines,
        c.payload,
        c.unique,
        c.duplicated,
        c.reordered,
        c.corrupt,
        c.interleaved,
        c.other,
        c.done,
        c.ready,
        c.restarts,
        c.bad_records,
        c.seq_gaps,
        c.bytes as f64 / secs / 1e6
    );
    let bad = c.duplicated + c.reordered + c.corrupt + c.interleaved + c.bad_records + c.seq_gaps;
    Ok(if bad == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
