//! Small Linux helpers: a clock shared between processes, /proc sampling,
//! signals and cleanup of everything a run left behind.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// CLOCK_MONOTONIC in nanoseconds: the same clock in every process, so an
/// instance can record when it exited and the harness can compare.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we pass.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn secs(ns: u64) -> f64 {
    ns as f64 / 1e9
}

/// Raises RLIMIT_NOFILE's soft limit to the hard limit (1,000 instances need
/// far more than the usual 1,024 descriptors).
pub fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Makes this process the reaper of orphaned descendants, so that whatever a
/// runner leaves behind is re-parented here and can be found and stopped.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
}

/// Waits for every child; the first non-zero exit code (1 for a signal).
pub fn wait_all(children: Vec<std::process::Child>) -> i32 {
    let mut code = 0;
    for mut c in children {
        if let Ok(status) = c.wait()
            && code == 0
        {
            code = status.code().unwrap_or(1);
        }
    }
    code
}

pub fn kill(pid: u32, sig: i32) {
    // SAFETY: sending a signal to a pid we started.
    unsafe { libc::kill(pid as i32, sig) };
}

/// Blocks `signals` in the calling thread (and threads it spawns later),
/// for `sigwait` or a signalfd. An ignored signal would be discarded even
/// while blocked (a shell starts background jobs with SIGINT ignored), so
/// each gets its default action back first.
pub fn block_signals(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset manipulation on a local set; SIG_DFL runs no code.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in signals {
            libc::sigaddset(&mut set, s);
            libc::signal(s, libc::SIG_DFL);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

/// Waits for one of the blocked signals in `set`.
pub fn sigwait(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is a valid, initialised set.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

/// One process as seen in /proc.
#[derive(Debug, Clone)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    pub exe: Option<PathBuf>,
}

/// All processes, by pid.
pub fn processes() -> HashMap<u32, Proc> {
    let mut all = HashMap::new();
    let Ok(dir) = fs::read_dir("/proc") else {
        return all;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(ppid) = stat_fields(&stat).and_then(|f| f.get(1).and_then(|s| s.parse().ok()))
        else {
            continue;
        };
        let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
        all.insert(pid, Proc { pid, ppid, exe });
    }
    all
}

/// Fields of /proc/PID/stat after the command name: index 0 is the state
/// (field 3 of proc(5)), 1 is ppid, 11 utime, 12 stime.
fn stat_fields(stat: &str) -> Option<Vec<&str>> {
    let close = stat.rfind(')')?;
    Some(stat[close + 1..].split_whitespace().collect())
}

/// `root` and all its descendants.
pub fn tree(all: &HashMap<u32, Proc>, root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for p in all.values() {
        children.entry(p.ppid).or_default().push(p.pid);
    }
    let mut out = vec![root];
    let mut i = 0;
    while i < out.len() {
        if let Some(kids) = children.get(&out[i]) {
            out.extend(kids.iter().copied());
        }
        i += 1;
    }
    out
}

/// CPU time (user + system) of one process in seconds, threads included.
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let f = stat_fields(&stat)?;
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    Some(ticks as f64 / hz)
}

/// A field of /proc/PID/status in kB (e.g. `VmHWM`, `VmRSS`).
pub fn status_kb(pid: u32, field: &str) -> Option<u64> {
    status_kb_file(&format!("/proc/{pid}/status"), field)
}

/// A `Field: N kB` line of a /proc file.
pub fn status_kb_file(path: &str, field: &str) -> Option<u64> {
    let status = fs::read_to_string(path).ok()?;
    status.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// What the runner itself costs: CPU seconds and peak RSS in MiB, summed
/// over the runner's process and any helper processes it forked (honcho,
/// node), but never over the instances: processes running `instance_exe` or
/// a shell are left out.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub cpu: f64,
    /// Peak RSS (VmHWM) of the runner's main process alone.
    pub main_hwm_mib: f64,
    /// Summed peak RSS of every runner process (shared pages count often).
    pub hwm_mib: f64,
    pub rss_mib: f64,
    /// Summed proportional set size: shared pages of forked helpers count once.
    pub pss_mib: f64,
    pub procs: usize,
}

pub fn runner_usage(root: u32, instance_exe: &Path) -> Usage {
    let all = processes();
    let mut u = Usage::default();
    for pid in tree(&all, root) {
        let exe = all.get(&pid).and_then(|p| p.exe.clone());
        if pid != root {
            match &exe {
                Some(e) if e == instance_exe || is_shell(e) => continue,
                None => continue,
                _ => {}
            }
        }
        u.procs += 1;
        if pid == root {
            u.main_hwm_mib = status_kb(pid, "VmHWM").unwrap_or(0) as f64 / 1024.0;
        }
        // /proc/PID/stat counts whole 10 ms ticks (of every thread, the
        // ended ones too); schedstat is exact but misses ended threads:
        // the larger is within a tick of the truth.
        let ticks = cpu_secs(pid).unwrap_or(0.0);
        let exact = sched_ns(&[pid]).map_or(0.0, |(ns, _)| ns as f64 / 1e9);
        u.cpu += ticks.max(exact);
        u.hwm_mib += status_kb(pid, "VmHWM").unwrap_or(0) as f64 / 1024.0;
        u.rss_mib += status_kb(pid, "VmRSS").unwrap_or(0) as f64 / 1024.0;
        u.pss_mib += status_kb_file(&format!("/proc/{pid}/smaps_rollup"), "Pss").unwrap_or(0)
            as f64
            / 1024.0;
    }
    u
}

/// Open file descriptors of `pid`.
pub fn fd_count(pid: u32) -> Option<usize> {
    Some(fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

/// `root` and those of its children that run the same executable and are
/// there in two looks 50 ms apart: procrun's watchdog, not an instance
/// caught between fork and exec.
pub fn same_exe_family(root: u32) -> Vec<u32> {
    let look = || {
        let all = processes();
        let exe = all.get(&root).and_then(|p| p.exe.clone());
        let mut pids: Vec<u32> = all
            .values()
            .filter(|p| p.ppid == root && exe.is_some() && p.exe == exe)
            .map(|p| p.pid)
            .collect();
        pids.sort_unstable();
        pids
    };
    let first = look();
    std::thread::sleep(Duration::from_millis(50));
    let second = look();
    let mut out = vec![root];
    out.extend(first.into_iter().filter(|p| second.contains(p)));
    out
}

/// Summed CPU seconds of `pids` (those that are gone count 0).
pub fn cpu_of(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|p| cpu_secs(*p)).sum()
}

/// CPU time of `pids` in nanoseconds, summed over their threads' schedstat
/// (time on a CPU, exact, where /proc/PID/stat counts 10 ms ticks), with
/// the threads it was summed over: a thread that has exited is missing
/// from the sum, so it holds between two readings only if their threads
/// are the same. `None` without schedstat (a kernel without
/// CONFIG_SCHED_INFO).
pub fn sched_ns(pids: &[u32]) -> Option<(u64, Vec<u32>)> {
    let mut ns = 0;
    let mut tids = Vec::new();
    for pid in pids {
        let Ok(dir) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in dir.flatten() {
            let stat = fs::read_to_string(task.path().join("schedstat")).ok()?;
            ns += stat.split_whitespace().next()?.parse::<u64>().ok()?;
            tids.extend(
                task.file_name()
                    .to_str()
                    .and_then(|t| t.parse::<u32>().ok()),
            );
        }
    }
    tids.sort_unstable();
    Some((ns, tids))
}

fn is_shell(exe: &Path) -> bool {
    matches!(
        exe.file_name().and_then(|n| n.to_str()),
        Some("sh" | "dash" | "bash")
    )
}

/// Kills (SIGKILL) every process re-parented to us and still alive, plus the
/// descendants of `extra` roots, then reaps our children. Returns how many
/// processes were left behind.
pub fn sweep(extra: &[u32]) -> usize {
    let me = std::process::id();
    let mut left = 0;
    for _ in 0..50 {
        let all = processes();
        let mut victims: Vec<u32> = Vec::new();
        for root in extra {
            if all.contains_key(root) {
                victims.extend(tree(&all, *root));
            }
        }
        for p in all.values() {
            if p.ppid == me && !victims.contains(&p.pid) {
                victims.extend(tree(&all, p.pid));
            }
        }
        // Zombies are dead already; they only need reaping.
        victims.retain(|pid| !is_zombie(*pid));
        reap();
        if victims.is_empty() {
            break;
        }
        left = left.max(victims.len());
        for v in &victims {
            kill(*v, libc::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    reap();
    left
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| stat_fields(&s).map(|f| f.first() == Some(&"Z")))
        .unwrap_or(true)
}

/// Reaps every exited child without blocking.
pub fn reap() {
    loop {
        let mut status = 0;
        // SAFETY: waitpid with WNOHANG on any child.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r <= 0 {
            break;
        }
    }
}

/// Creates a FIFO.
pub fn mkfifo(path: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())?;
    // SAFETY: valid C string.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> io::Result<Self> {
        let base = std::env::temp_dir();
        for n in 0..1000 {
            let p = base.join(format!("procrun-bench-{}-{tag}-{n}", std::process::id()));
            if fs::create_dir(&p).is_ok() {
                return Ok(TempDir(p));
            }
        }
        Err(io::Error::other("no temp dir"))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
