//! procrun running in the background: its stdout and stderr collected line
//! by line as they arrive (a reader thread each), signals, bounded waits for
//! a line or the exit, and the processes it left behind.
#![allow(dead_code)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

use super::{Launch, MARK, Project, WAIT};

/// How long, after procrun exited, the output may take to reach its end
/// (a grandchild may hold the pipes a little longer).
const DRAIN: Duration = Duration::from_secs(5);

/// One output stream as collected so far.
#[derive(Debug, Default)]
struct Stream {
    bytes: Vec<u8>,
    lines: Vec<String>,
    /// Until end-of-file.
    open: bool,
}

#[derive(Debug, Default)]
struct Collected {
    out: Stream,
    err: Stream,
    /// The stdout reader holds off while set ([`Running::pause_stdout`]).
    paused: bool,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<Collected>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Collected> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Which output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// procrun's stdout.
    Stdout,
    /// procrun's stderr.
    Stderr,
}

/// A procrun started by [`super::Test::spawn`] or [`super::Test::start`]:
/// stdin closed (or fed), stdout and stderr piped and collected, in a
/// process group of its own. Dropping it kills procrun's group and every
/// process that still carries the run's mark.
#[derive(Debug)]
pub struct Running {
    child: Child,
    shared: Arc<Shared>,
    status: Option<ExitStatus>,
    mark: String,
    dir: PathBuf,
    _owned: Option<Project>,
}

impl Running {
    pub(crate) fn spawn(launch: Launch) -> Running {
        use std::os::unix::process::CommandExt as _;
        let Launch {
            mut cmd,
            dir,
            owned,
            stdin,
            mark,
        } = launch;
        cmd.stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
        let mut child = cmd.spawn().expect("spawn procrun");
        drop(cmd);
        if let (Some(bytes), Some(mut pipe)) = (stdin, child.stdin.take()) {
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let shared = Arc::new(Shared::default());
        {
            let mut s = shared.lock();
            s.out.open = true;
            s.err.open = true;
        }
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let out = Arc::clone(&shared);
        std::thread::spawn(move || collect(stdout, &out, Which::Stdout));
        let err = Arc::clone(&shared);
        std::thread::spawn(move || collect(stderr, &err, Which::Stderr));
        Running {
            child,
            shared,
            status: None,
            mark,
            dir,
            _owned: owned,
        }
    }

    /// procrun's pid (also its process group).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The directory procrun runs in.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// `name` in the directory procrun runs in.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Waits (at most [`WAIT`]) for a stdout line containing `needle`, among
    /// all lines so far; returns it.
    #[track_caller]
    pub fn wait_for(&mut self, needle: &str) -> String {
        self.wait_for_line(|l| l.contains(needle), WAIT)
    }

    /// Waits (at most [`WAIT`]) for a stderr line containing `needle`.
    #[track_caller]
    pub fn wait_for_stderr(&mut self, needle: &str) -> String {
        self.wait_in(Which::Stderr, &|l: &str| l.contains(needle), WAIT)
    }

    /// Waits (at most `timeout`) for a stdout line matching `pred`, among
    /// all lines so far; returns it. Fails at once if stdout ends first.
    #[track_caller]
    pub fn wait_for_line(&mut self, pred: impl Fn(&str) -> bool, timeout: Duration) -> String {
        self.wait_in(Which::Stdout, &pred, timeout)
    }

    #[track_caller]
    fn wait_in(&mut self, which: Which, pred: &dyn Fn(&str) -> bool, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        let mut checked = 0;
        let mut s = self.shared.lock();
        loop {
            let stream = match which {
                Which::Stdout => &s.out,
                Which::Stderr => &s.err,
            };
            if let Some(line) = stream.lines[checked..].iter().find(|l| pred(l)) {
                return line.clone();
            }
            checked = stream.lines.len();
            let why = if !stream.open {
                "the stream ended"
            } else if Instant::now() >= deadline {
                "timed out"
            } else {
                let left = deadline.saturating_duration_since(Instant::now());
                s = self
                    .shared
                    .changed
                    .wait_timeout(s, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
                continue;
            };
            let report = report(&s);
            drop(s);
            panic!("no matching {which:?} line ({why}, limit {timeout:?})\n{report}");
        }
    }

    /// The pid in the `NAME started with pid N` line (waited for).
    #[track_caller]
    pub fn pid_of(&mut self, name: &str) -> i32 {
        let line = self.wait_for(&format!("{name} started with pid "));
        number_after(&line, "started with pid ")
    }

    /// Sends `signal` to procrun only.
    pub fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.pid()), signal).expect("signal procrun");
    }

    /// Stops reading procrun's stdout (it fills the pipe and blocks), until
    /// [`Running::resume_stdout`].
    pub fn pause_stdout(&self) {
        self.shared.lock().paused = true;
    }

    /// Reads procrun's stdout again.
    pub fn resume_stdout(&self) {
        self.shared.lock().paused = false;
        self.shared.changed.notify_all();
    }

    /// Waits (at most [`WAIT`]) for procrun to exit, then (briefly) for the
    /// rest of its output. The exit code, `None` after a death by signal.
    #[track_caller]
    pub fn wait_exit(&mut self) -> Option<i32> {
        self.wait_exit_within(WAIT)
    }

    /// Like [`Running::wait_exit`] with another limit.
    #[track_caller]
    pub fn wait_exit_within(&mut self, limit: Duration) -> Option<i32> {
        if let Some(status) = self.status {
            return status.code();
        }
        self.resume_stdout();
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if Instant::now() > deadline {
                let report = report(&self.shared.lock());
                panic!("procrun did not exit within {limit:?}\n{report}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        self.status = Some(status);
        let deadline = Instant::now() + DRAIN;
        let mut s = self.shared.lock();
        while (s.out.open || s.err.open) && Instant::now() < deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            s = self
                .shared
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        status.code()
    }

    /// How procrun ended, once [`Running::wait_exit`] saw it.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status
    }

    /// Stdout lines so far.
    pub fn lines(&self) -> Vec<String> {
        self.shared.lock().out.lines.clone()
    }

    /// Stdout lines so far, joined with `\n`.
    pub fn transcript(&self) -> String {
        self.shared.lock().out.lines.join("\n")
    }

    /// Stdout so far, as written.
    pub fn stdout_bytes(&self) -> Vec<u8> {
        self.shared.lock().out.bytes.clone()
    }

    /// Stdout so far, decoded lossily.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.shared.lock().out.bytes).into_owned()
    }

    /// Stderr so far, decoded lossily.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.shared.lock().err.bytes).into_owned()
    }

    /// Stderr lines so far.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.shared.lock().err.lines.clone()
    }

    /// Whether procrun's stdout has reached its end (every holder of the
    /// pipe is gone).
    pub fn stdout_closed(&self) -> bool {
        !self.shared.lock().out.open
    }

    /// Live processes this run started (procrun, its watchdog, children,
    /// grandchildren: whatever inherited the run's mark), on Linux.
    pub fn leftovers(&self) -> Vec<i32> {
        marked(&self.mark)
    }

    /// Waits (at most [`WAIT`]) until no process this run started is alive.
    #[track_caller]
    pub fn assert_no_leftovers(&self) {
        self.assert_no_leftovers_within(WAIT);
    }

    /// Like [`Running::assert_no_leftovers`] with another limit.
    #[track_caller]
    pub fn assert_no_leftovers_within(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let left = self.leftovers();
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                let names: Vec<String> = left.iter().map(|&p| describe(p)).collect();
                let report = report(&self.shared.lock());
                panic!("left behind after {limit:?}: {names:?}\n{report}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.resume_stdout();
        if self.status.is_none() {
            // procrun's own group: procrun and what it started, nothing else.
            let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
            let _ = self.child.wait();
        }
        for pid in self.leftovers() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Reads `pipe` to its end into `shared`, splitting lines on `\n`.
fn collect(mut pipe: impl std::io::Read, shared: &Shared, which: Which) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    loop {
        if which == Which::Stdout {
            let mut s = shared.lock();
            while s.paused {
                s = shared
                    .changed
                    .wait(s)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        }
        let n = match pipe.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => 0,
        };
        let mut s = shared.lock();
        let stream = match which {
            Which::Stdout => &mut s.out,
            Which::Stderr => &mut s.err,
        };
        if n == 0 {
            if !partial.is_empty() {
                stream
                    .lines
                    .push(String::from_utf8_lossy(&partial).into_owned());
            }
            stream.open = false;
            drop(s);
            shared.changed.notify_all();
            return;
        }
        stream.bytes.extend_from_slice(&buf[..n]);
        let mut start = 0;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' {
                partial.extend_from_slice(&buf[start..i]);
                stream
                    .lines
                    .push(String::from_utf8_lossy(&partial).into_owned());
                partial.clear();
                start = i + 1;
            }
        }
        partial.extend_from_slice(&buf[start..n]);
        drop(s);
        shared.changed.notify_all();
    }
}

/// The output so far, for a failure message (long outputs cut).
fn report(s: &Collected) -> String {
    let cut = |lines: &[String]| {
        let skip = lines.len().saturating_sub(200);
        let mut text = if skip > 0 {
            format!("[{skip} lines not shown]\n")
        } else {
            String::new()
        };
        for l in &lines[skip..] {
            let end = l.char_indices().nth(300).map_or(l.len(), |(i, _)| i);
            text.push_str(&l[..end]);
            text.push('\n');
        }
        text
    };
    format!(
        "--- stdout\n{}--- stderr\n{}",
        cut(&s.out.lines),
        cut(&s.err.lines)
    )
}

/// Live processes whose environment holds `MARK=mark`.
pub fn marked(mark: &str) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let needle = format!("{MARK}={mark}\0").into_bytes();
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.windows(needle.len()).any(|w| w == needle))
        })
        .filter(|&pid| alive(pid))
        .collect()
}

/// `pid (command)`, for messages.
pub fn describe(pid: i32) -> String {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    format!("{pid} ({})", comm.trim())
}

/// The number right after `marker` in `line`.
#[track_caller]
pub fn number_after(line: &str, marker: &str) -> i32 {
    let start = line
        .find(marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("{marker:?} not in {line:?}"));
    line[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no number after {marker:?} in {line:?}"))
}

/// Whether `pid` is a live process (a zombie counts as dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .unwrap_or("");
            state != "Z" && state != "X"
        }
        Err(_) => {
            // No /proc (not Linux): ask the kernel.
            !Path::new("/proc/self").exists() && kill(Pid::from_raw(pid), None).is_ok()
        }
    }
}

/// Waits until `pid` is dead; false if it is still alive after `limit`.
pub fn gone_within(pid: i32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    true
}

/// Kills processes a test learned about when it ends (pass or fail), so
/// nothing leaks from a failing test. Only pids the test itself learned.
#[derive(Debug, Default)]
pub struct Cleanup(pub Vec<i32>);

impl Cleanup {
    /// Also kill `pid` at the end; returns it.
    pub fn add(&mut self, pid: i32) -> i32 {
        self.0.push(pid);
        pid
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for &pid in &self.0 {
            if pid > 1 && alive(pid) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}
