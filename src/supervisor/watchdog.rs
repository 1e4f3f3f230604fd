//! The watchdog: a tiny process forked at start that kills every process
//! group procrun started if procrun dies without cleaning up (SIGKILL, a
//! crash).
//!
//! The parent-death signal (Linux) reaches only the direct children; a
//! shell that is not `exec`'d, or a program with workers, leaves their
//! children behind when it dies. The watchdog is told every group procrun
//! starts and every group it is done with, through a pipe. When the pipe
//! closes without a final "done" — procrun is gone — the watchdog sends
//! SIGKILL to every group still on its list. It works on every Unix.
//!
//! It is forked before procrun starts any thread, runs in a session of its
//! own (so a signal to procrun's process group, such as a CI runner's
//! `killpg(SIGKILL)`, does not take it along), ignores the terminal's
//! signals (a Ctrl-C is procrun's to handle), and holds no descriptor of
//! procrun's output, so `procrun start | head` still sees end-of-file.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::OwnedFd;

use nix::sys::signal::{SigHandler, Signal, signal};
use nix::unistd::{ForkResult, Pid, fork};

/// procrun's side of the watchdog.
#[derive(Debug)]
pub struct Watchdog {
    pid: Pid,
    pipe: std::fs::File,
    /// `-PGID` messages not written yet (see [`Watchdog::forget`]).
    pending: Vec<u8>,
}

impl Watchdog {
    /// Forks the watchdog. Must be called while procrun has one thread.
    /// `None` if it could not be started (procrun works on without it).
    pub fn start() -> Option<Watchdog> {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok()?;
        // SAFETY: procrun is single-threaded here (no runtime, no printer
        // thread yet), so the child may run ordinary Rust code.
        match unsafe { fork() } {
            Ok(ForkResult::Child) => {
                drop(write);
                watch(read)
            }
            Ok(ForkResult::Parent { child }) => {
                drop(read);
                Some(Watchdog {
                    pid: child,
                    pipe: std::fs::File::from(write),
                    pending: Vec::new(),
                })
            }
            Err(e) => {
                tracing::debug!("starting the watchdog: {e}");
                None
            }
        }
    }

    /// The watchdog's pid (not a process to stop or reap with the rest).
    pub fn pid(&self) -> i32 {
        self.pid.as_raw()
    }

    /// Process group `pgid` was started: written at once (with the
    /// messages still pending before it, in order: a pid reaped and then
    /// reused must end up watched), so that a group is known to the
    /// watchdog before procrun starts the next one.
    pub fn watch(&mut self, pgid: u32) {
        self.queue(b'+', pgid);
        self.flush();
    }

    /// Process group `pgid`'s leader was reaped: never signal that id
    /// again. Queued until [`Watchdog::flush`]: when 1,000 instances end
    /// at once, their messages go out in a few writes instead of 1,000.
    /// Until then the watchdog would kill a group whose leader is gone,
    /// which it does anyway when procrun dies between the reaping and the
    /// message.
    pub fn forget(&mut self, pgid: u32) {
        self.queue(b'-', pgid);
        if self.pending.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Writes the queued messages, in one write.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let _ = self.pipe.write_all(&self.pending);
            self.pending.clear();
        }
    }

    fn queue(&mut self, sign: u8, pgid: u32) {
        let mut digits = itoa::Buffer::new();
        self.pending.push(sign);
        self.pending
            .extend_from_slice(digits.format(pgid).as_bytes());
        self.pending.push(b'\n');
    }

    /// procrun cleaned up: tell the watchdog, and reap it.
    pub fn finish(mut self) {
        self.pending.extend_from_slice(b"done\n");
        self.flush();
        drop(self.pipe);
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Queued messages are written once they fill this much (well within a
/// pipe's 64 KiB, which the watchdog empties at least every
/// [`GATHER`]).
const FLUSH_AT: usize = 4096;

/// After a read, how long the watchdog lets further messages gather
/// before it reads again (unless procrun closes the pipe): a start of
/// 1,000 instances would otherwise wake it 1,000 times, each wake-up
/// taking the CPU from procrun or from a starting instance.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

/// The watchdog's end of the pipe: each read after one that returned data
/// first waits [`GATHER`] for the pipe to close, without waking for data
/// (a `poll` for no event but the hang-up it always reports).
struct Gathering {
    pipe: std::fs::File,
    got_data: bool,
}

impl std::io::Read for Gathering {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        use std::os::fd::AsRawFd as _;
        if self.got_data {
            let mut fd = libc::pollfd {
                fd: self.pipe.as_raw_fd(),
                events: 0,
                revents: 0,
            };
            // SAFETY: one pollfd, ours. Whatever it returns, the read below
            // takes what is there (or blocks for the next message).
            unsafe { libc::poll(&mut fd, 1, GATHER.as_millis() as libc::c_int) };
        }
        let n = self.pipe.read(buf)?;
        self.got_data = n > 0;
        Ok(n)
    }
}

/// Overwrites this process's command line (what `/proc/self/cmdline` and
/// `ps aux` show) with `title`, as setproctitle does: the argument strings
/// the kernel placed at `arg_start..arg_end` are plain memory of this
/// process. Only for the forked watchdog, which never reads its arguments.
#[cfg(target_os = "linux")]
fn set_command_line(title: &[u8]) {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return;
    };
    // Fields after the `(comm)`: state is field 3; arg_start and arg_end
    // are fields 48 and 49 (proc(5)).
    let Some(close) = stat.rfind(')') else {
        return;
    };
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    let (Some(start), Some(end)) = (
        fields.get(48 - 3).and_then(|f| f.parse::<usize>().ok()),
        fields.get(49 - 3).and_then(|f| f.parse::<usize>().ok()),
    ) else {
        return;
    };
    if end <= start || start == 0 {
        return;
    }
    let len = end - start;
    let n = title.len().min(len - 1);
    // SAFETY: the kernel reports [start, end) as this process's argument
    // area, mapped and writable (it is on the initial stack); nothing in
    // the watchdog reads it again. The bytes stay within it.
    unsafe {
        let area = start as *mut u8;
        std::ptr::copy_nonoverlapping(title.as_ptr(), area, n);
        std::ptr::write_bytes(area.add(n), 0, len - n);
    }
}

/// Reads procrun's messages until the pipe closes: `+PGID` (a group was
/// started), `-PGID` (its leader was reaped), `done` (procrun cleaned up).
/// Returns the groups to kill: those still listed when the pipe closed
/// without `done` (procrun died); none after `done`. A line it cannot read
/// ends the reading, as a closed pipe would.
fn orphaned_groups(reader: impl BufRead) -> Vec<u32> {
    let mut groups: HashSet<u32> = HashSet::new();
    let mut done = false;
    for line in reader.lines() {
        let Ok(line) = line else { break };
        if line == "done" {
            done = true;
        } else if let Some(n) = line.strip_prefix('+').and_then(|n| n.parse().ok()) {
            groups.insert(n);
        } else if let Some(n) = line.strip_prefix('-').and_then(|n| n.parse::<u32>().ok()) {
            groups.remove(&n);
        }
    }
    if done {
        return Vec::new();
    }
    let mut left: Vec<u32> = groups.into_iter().collect();
    left.sort_unstable();
    left
}

/// The watchdog's whole life.
fn watch(pipe: OwnedFd) -> ! {
    // A session (and so a process group) of its own: whatever kills
    // procrun's group (a CI runner's killpg, a shell's job control) must
    // leave the watchdog alive to clean up after procrun. A forked child is
    // never a group leader, so setsid cannot fail here.
    let _ = nix::unistd::setsid();
    #[cfg(target_os = "linux")]
    {
        // Shown by ps/top, so nobody wonders about a second procrun.
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16
        // bytes.
        unsafe { libc::prctl(libc::PR_SET_NAME, c"procrun-watch".as_ptr(), 0, 0, 0) };
        // `ps aux` shows the command line, not that name: overwrite it too.
        set_command_line(b"procrun-watch");
    }
    for sig in [
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGTSTP,
        Signal::SIGPIPE,
    ] {
        // SAFETY: installing SIG_IGN runs no handler code.
        let _ = unsafe { signal(sig, SigHandler::SigIgn) };
    }
    // Let go of procrun's stdio (its output pipe above all).
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        use std::os::fd::AsRawFd as _;
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors of this process.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
    let reader = BufReader::new(Gathering {
        pipe: std::fs::File::from(pipe),
        got_data: false,
    });
    for pgid in orphaned_groups(reader) {
        crate::supervisor::signals::kill_group(pgid, Signal::SIGKILL);
    }
    // SAFETY: _exit ends this process without running procrun's atexit
    // handlers or flushing buffers it shares with procrun.
    unsafe { libc::_exit(0) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn orphaned(messages: &str) -> Vec<u32> {
        orphaned_groups(std::io::Cursor::new(messages.as_bytes().to_vec()))
    }

    #[test]
    fn groups_still_listed_when_procrun_dies_are_killed() {
        assert_eq!(orphaned("+10\n+20\n+30\n-20\n"), [10, 30]);
        assert_eq!(orphaned(""), Vec::<u32>::new());
        // A partial last line (procrun died mid-write) is still read.
        assert_eq!(orphaned("+10\n+2"), [2, 10]);
    }

    #[test]
    fn done_means_procrun_cleaned_up() {
        assert_eq!(orphaned("+10\n+20\ndone\n"), Vec::<u32>::new());
    }

    #[test]
    fn a_reaped_leader_is_never_signalled() {
        // Its id may belong to another process by now.
        assert_eq!(orphaned("+10\n-10\n"), Vec::<u32>::new());
        assert_eq!(orphaned("+10\n-10\n+11\n"), [11]);
    }

    #[test]
    fn lines_that_are_not_messages_are_ignored() {
        assert_eq!(orphaned("hello\n+x\n-\n+7\n"), [7]);
    }
}
