//! What `ps` shows of each instance's own process: CPU% and resident
//! memory, from `/proc/PID/stat`.
//!
//! `ps` of a thousand instances reads a thousand of these files, and most
//! of its cost was the kernel's path walk, open and close around each
//! read. So each running instance's file is opened once, on its first
//! `ps`, and read again with `pread` at offset 0 on every later one (each
//! read of a `/proc` file formats fresh figures). An open `/proc/PID`
//! file stays bound to the process it was opened for: once that process
//! is gone a read fails, it never shows another process that got the
//! same pid. The open itself is guarded: the process must be procrun's
//! child and must have started before the instance's run began (see
//! [`Usage::sample`]), so a pid reused by then is never read.
//!
//! The descriptors kept never take the room the instances need: at most a
//! quarter of the open-files limit (which `start` raises to the hard
//! limit), and at most half of what is left after 3 per instance (its two
//! pipes and its pidfd). 1,000 instances keep 1,000 descriptors with a
//! limit of 5,000 or more; with the common hard limit of 4,096 they keep
//! 548 and read the others with an open and a close each time, as
//! before.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::time::{Duration, Instant, SystemTime};

/// CPU% is the use since the previous sample when that is at least this
/// old; else the average over the process's life.
const MIN_INTERVAL: Duration = Duration::from_millis(200);

/// How far a process's start (from `/proc`, in clock ticks, read against
/// `/proc/uptime` in hundredths of seconds) may seem to be after the
/// moment procrun recorded its run as started (after the spawn returned).
/// Ticks and uptime are each 10 ms coarse; a process that started later
/// than this is not the instance's.
const START_SLOP: Duration = Duration::from_millis(50);

/// One instance as `ps` shows it: CPU percent (of one core) and bytes
/// resident.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figures {
    /// CPU use in percent of one core.
    pub cpu_percent: f64,
    /// Resident set size in bytes.
    pub rss_bytes: u64,
}

/// The fields of `/proc/PID/stat` that `ps` needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// The parent's pid.
    pub ppid: u32,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// When it started, in clock ticks after boot.
    pub start_ticks: u64,
    /// Resident pages.
    pub rss_pages: u64,
}

/// Parses the text of `/proc/PID/stat`.
pub fn parse_stat(text: &[u8]) -> Option<ProcStat> {
    // The command name (field 2) may hold spaces and parentheses: the
    // fields follow the last `)`; the first of them is field 3 (state).
    let close = memchr::memrchr(b')', text)?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    // Field n of proc(5) is the (n - 3)th of these.
    let mut nth = |skip: usize| -> Option<u64> { fields.nth(skip)?.parse().ok() };
    let ppid = nth(1)?; // field 4
    let utime = nth(9)?; // field 14
    let stime = nth(0)?; // field 15
    let start_ticks = nth(6)?; // field 22
    let rss_pages = nth(1)?; // field 24
    Some(ProcStat {
        ppid: u32::try_from(ppid).ok()?,
        ticks: utime + stime,
        start_ticks,
        rss_pages,
    })
}

/// One process being watched.
#[derive(Debug)]
struct Watched {
    /// Its open `/proc/PID/stat`, unless the budget was spent.
    file: Option<File>,
    /// Its start time as `/proc` said at the open: a read that says
    /// otherwise is not this process.
    start_ticks: u64,
    /// The last CPU sample: when, and utime + stime then.
    last: Option<(Instant, u64)>,
    /// Seen in the current sample (the others are let go).
    seen: bool,
}

/// How many descriptors may be kept.
#[derive(Clone, Copy, Debug)]
enum Budget {
    /// Within this open-files limit, by the number of instances.
    Limit(usize),
    /// This many.
    Fixed(usize),
}

impl Budget {
    fn for_instances(self, instances: usize) -> usize {
        match self {
            Budget::Limit(limit) => (limit / 4).min(limit.saturating_sub(3 * instances) / 2),
            Budget::Fixed(n) => n,
        }
    }
}

/// The processes `ps` watches, and their last CPU samples.
#[derive(Debug)]
pub struct Usage {
    watched: HashMap<u32, Watched>,
    /// How many of `watched` hold a descriptor.
    open: usize,
    /// The most descriptors kept.
    budget: Budget,
    /// Our own pid: instances are our children.
    me: u32,
    hz: f64,
    page: u64,
}

impl Default for Usage {
    fn default() -> Self {
        Usage::new(Budget::Limit(open_files_limit()))
    }
}

impl Usage {
    /// Keeps at most `budget` descriptors open, however many instances.
    pub fn with_budget(budget: usize) -> Self {
        Usage::new(Budget::Fixed(budget))
    }

    fn new(budget: Budget) -> Self {
        Usage {
            watched: HashMap::new(),
            open: 0,
            budget,
            me: std::process::id(),
            hz: clock_ticks(),
            page: page_size(),
        }
    }

    /// How many descriptors are kept open.
    pub fn open_files(&self) -> usize {
        self.open
    }

    /// The figures of each `(pid, started_at)` (an instance's process and
    /// when its run started, as the supervisor reports them), in order:
    /// `None` where it does not run or its process cannot be read. Every
    /// process not named is let go.
    pub fn sample(
        &mut self,
        instances: &[(Option<u32>, Option<SystemTime>)],
        now: Instant,
    ) -> Vec<Option<Figures>> {
        let uptime = uptime();
        let wall = SystemTime::now();
        let budget = self.budget.for_instances(instances.len());
        for w in self.watched.values_mut() {
            w.seen = false;
            // More instances than before: what they need comes first.
            if self.open > budget && w.file.take().is_some() {
                self.open -= 1;
            }
        }
        let out = instances
            .iter()
            .map(|&(pid, started_at)| {
                let pid = pid?;
                // How long ago the run began; the supervisor records it
                // after the spawn returned, so its process is older.
                let run_age = started_at.and_then(|t| wall.duration_since(t).ok());
                self.figures(pid, run_age, (uptime, budget), now)
            })
            .collect();
        let before = self.watched.len();
        self.watched.retain(|_, w| w.seen);
        if self.watched.len() != before {
            self.open = self.watched.values().filter(|w| w.file.is_some()).count();
        }
        out
    }

    fn figures(
        &mut self,
        pid: u32,
        run_age: Option<Duration>,
        (uptime, budget): (Option<f64>, usize),
        now: Instant,
    ) -> Option<Figures> {
        let stat = match self.watched.get_mut(&pid) {
            Some(w) => match w.read(pid) {
                Some(stat) => stat,
                None => {
                    // Gone (or not the same process): let it go; a new
                    // process with this pid is opened afresh below.
                    if self.watched.remove(&pid)?.file.is_some() {
                        self.open -= 1;
                    }
                    return self.first(pid, run_age, (uptime, budget), now);
                }
            },
            None => return self.first(pid, run_age, (uptime, budget), now),
        };
        let w = self.watched.get_mut(&pid)?;
        w.seen = true;
        let cpu = match w.last {
            Some((at, ticks)) if now.duration_since(at) >= MIN_INTERVAL => {
                let secs = now.duration_since(at).as_secs_f64();
                w.last = Some((now, stat.ticks));
                stat.ticks.saturating_sub(ticks) as f64 / self.hz / secs * 100.0
            }
            _ => lifetime_cpu(&stat, uptime, self.hz)?,
        };
        Some(Figures {
            cpu_percent: cpu,
            rss_bytes: stat.rss_pages * self.page,
        })
    }

    /// The first look at `pid`: opens its file, checks that it is the
    /// instance's process, and keeps the file while the budget allows.
    fn first(
        &mut self,
        pid: u32,
        run_age: Option<Duration>,
        (uptime, budget): (Option<f64>, usize),
        now: Instant,
    ) -> Option<Figures> {
        let file = File::open(format!("/proc/{pid}/stat")).ok()?;
        let stat = read_stat(&file)?;
        if !self.is_instance(&stat, run_age, uptime) {
            return None;
        }
        let keep = self.open < budget;
        if keep {
            self.open += 1;
        }
        self.watched.insert(
            pid,
            Watched {
                file: keep.then_some(file),
                start_ticks: stat.start_ticks,
                last: Some((now, stat.ticks)),
                seen: true,
            },
        );
        Some(Figures {
            cpu_percent: lifetime_cpu(&stat, uptime, self.hz)?,
            rss_bytes: stat.rss_pages * self.page,
        })
    }

    /// Whether `stat` is of the process the supervisor started for a run
    /// that began `run_age` ago: a child of ours that started before the
    /// run was recorded. A pid the kernel gave to another process since
    /// fails one or the other: pids are handed out in turn, so the same
    /// number comes back only after the others were used, long after.
    fn is_instance(&self, stat: &ProcStat, run_age: Option<Duration>, uptime: Option<f64>) -> bool {
        if stat.ppid != self.me {
            return false;
        }
        let (Some(run_age), Some(uptime)) = (run_age, uptime) else {
            return true;
        };
        let process_age = uptime - stat.start_ticks as f64 / self.hz;
        process_age + START_SLOP.as_secs_f64() >= run_age.as_secs_f64()
    }
}

impl Watched {
    /// Its figures now; `None` once it is gone or not the same process.
    fn read(&mut self, pid: u32) -> Option<ProcStat> {
        let stat = match &self.file {
            Some(file) => read_stat(file)?,
            None => read_stat(&File::open(format!("/proc/{pid}/stat")).ok()?)?,
        };
        self.seen = true;
        (stat.start_ticks == self.start_ticks).then_some(stat)
    }
}

/// One `pread` at offset 0 into a buffer on the stack: a `/proc` file
/// formats its contents anew on each read from the start.
fn read_stat(file: &File) -> Option<ProcStat> {
    let mut buf = [0u8; 1024];
    let n = file.read_at(&mut buf, 0).ok()?;
    parse_stat(&buf[..n])
}

/// The average CPU% over the process's life.
fn lifetime_cpu(stat: &ProcStat, uptime: Option<f64>, hz: f64) -> Option<f64> {
    let alive = uptime? - stat.start_ticks as f64 / hz;
    Some(if alive > 0.0 {
        stat.ticks as f64 / hz / alive * 100.0
    } else {
        0.0
    })
}

/// The soft limit on open files (`start` has raised it to the hard limit).
pub(super) fn open_files_limit() -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 0;
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).unwrap_or(4096)
}

/// Seconds since boot.
fn uptime() -> Option<f64> {
    let mut buf = [0u8; 64];
    let n = File::open("/proc/uptime").ok()?.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n])
        .ok()?
        .split_ascii_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn stat_of(pid: u32) -> ProcStat {
        let text = std::fs::read(format!("/proc/{pid}/stat")).expect("a /proc entry");
        parse_stat(&text).expect("parses")
    }

    #[test]
    fn parses_our_own_stat() {
        let text = std::fs::read("/proc/self/stat").expect("/proc/self/stat");
        let stat = parse_stat(&text).expect("parses");
        // The fields by hand, from the same text.
        let s = String::from_utf8(text).expect("ascii");
        let close = s.rfind(')').expect("a command name");
        let after: Vec<&str> = s[close + 1..].split_whitespace().collect();
        assert_eq!(stat.ppid.to_string(), after[1]);
        assert_eq!(stat.start_ticks.to_string(), after[19]);
        assert_eq!(stat.rss_pages.to_string(), after[21]);
        let field = |i: usize| after[i].parse::<u64>().expect("a number");
        let ticks = field(11) + field(12);
        assert_eq!(stat.ticks, ticks);
        assert!(stat.rss_pages > 0);
        // SAFETY: getppid has no preconditions.
        assert_eq!(stat.ppid, unsafe { libc::getppid() } as u32);
    }

    #[test]
    fn parses_a_name_with_spaces_and_parentheses() {
        let text = b"4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 1 0 \
                     987654 10000000 321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n";
        let stat = parse_stat(text).expect("parses");
        assert_eq!(
            stat,
            ProcStat {
                ppid: 1,
                ticks: 12,
                start_ticks: 987_654,
                rss_pages: 321,
            }
        );
        assert_eq!(parse_stat(b"4242 (cut"), None);
        assert_eq!(parse_stat(b"4242 (short) S 1 2 3"), None);
    }

    #[test]
    fn a_child_is_read_again_through_the_same_descriptor() {
        // A child that keeps a CPU busy until it is killed.
        let mut child = Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .expect("sh");
        let pid = child.id();
        let mut usage = Usage::with_budget(10);
        let started = SystemTime::now();
        let t0 = Instant::now();
        let first = usage.sample(&[(Some(pid), Some(started))], t0)[0].expect("figures");
        // (Its resident pages may not be counted yet, just after the exec.)
        assert!(first.cpu_percent >= 0.0);
        assert_eq!(usage.open_files(), 1);
        let kept = usage.watched[&pid]
            .file
            .as_ref()
            .expect("kept")
            .try_clone()
            .expect("dup");
        // The kept descriptor gives fresh figures on every read: its ticks
        // move on as a fresh open's do.
        let before = read_stat(&kept).expect("read");
        let deadline = Instant::now() + Duration::from_secs(20);
        while stat_of(pid).ticks == before.ticks && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let fresh = stat_of(pid);
        let after = read_stat(&kept).expect("read again");
        assert!(fresh.ticks > before.ticks, "the child used no CPU in 20 s");
        assert!(after.ticks >= fresh.ticks);
        assert_eq!(
            (after.ppid, after.start_ticks),
            (fresh.ppid, fresh.start_ticks)
        );
        let later = t0 + MIN_INTERVAL;
        let second = usage.sample(&[(Some(pid), Some(started))], later)[0].expect("figures");
        assert!(second.rss_bytes > 0 && second.cpu_percent > 0.0);
        assert_eq!(usage.open_files(), 1, "no second descriptor");
        // Once it is gone, the kept file reads nothing: never another
        // process that got its pid.
        child.kill().expect("kill");
        child.wait().expect("wait");
        assert_eq!(read_stat(&kept), None);
        assert_eq!(usage.sample(&[(Some(pid), Some(started))], later)[0], None);
        assert_eq!(usage.open_files(), 0);
        assert!(usage.watched.is_empty());
    }

    #[test]
    fn a_process_that_is_not_the_instances_is_not_read() {
        let mut usage = Usage::with_budget(10);
        let now = Instant::now();
        // Our parent is no child of ours.
        // SAFETY: getppid has no preconditions.
        let parent = unsafe { libc::getppid() } as u32;
        assert_eq!(usage.sample(&[(Some(parent), None)], now), vec![None]);
        // A child that started after the run it is reported for began (a
        // pid reused by another process since): refused.
        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let pid = child.id();
        let long_ago = SystemTime::now() - Duration::from_secs(5);
        assert_eq!(
            usage.sample(&[(Some(pid), Some(long_ago))], now),
            vec![None]
        );
        assert_eq!(usage.open_files(), 0);
        // The same child for a run that began just now: read.
        let just_now = SystemTime::now();
        assert!(usage.sample(&[(Some(pid), Some(just_now))], now)[0].is_some());
        // A kept file that reads another start time is not the process it
        // was opened for: its sample is dropped and the pid looked at
        // afresh (here it passes again, with a new sample).
        let later = now + MIN_INTERVAL;
        let w = usage.watched.get_mut(&pid).expect("watched");
        w.start_ticks += 1;
        w.last = Some((now, u64::MAX));
        let again = usage.sample(&[(Some(pid), Some(just_now))], later)[0];
        assert!(again.is_some());
        let w = &usage.watched[&pid];
        assert_eq!(w.start_ticks, stat_of(pid).start_ticks);
        assert_eq!(w.last.map(|l| l.0), Some(later));
        assert_eq!(usage.open_files(), 1);
        let _ = child.kill();
        let _ = child.wait();
    }

    #[test]
    fn descriptors_stay_within_the_budget_and_are_let_go() {
        let mut children: Vec<_> = (0..3)
            .map(|_| Command::new("sleep").arg("30").spawn().expect("sleep"))
            .collect();
        let now = Instant::now();
        let list: Vec<_> = children
            .iter()
            .map(|c| (Some(c.id()), Some(SystemTime::now())))
            .collect();
        let mut usage = Usage::with_budget(2);
        let figures = usage.sample(&list, now);
        assert!(figures.iter().all(Option::is_some), "past the budget too");
        assert_eq!(usage.open_files(), 2);
        // Read again (the third with an open each time).
        assert!(usage.sample(&list, now).iter().all(Option::is_some));
        assert_eq!(usage.watched.len(), 3);
        // Those not named any more are let go.
        assert!(usage.sample(&list[2..], now)[0].is_some());
        assert_eq!(usage.watched.len(), 1);
        assert_eq!(usage.open_files(), 0);
        assert_eq!(usage.sample(&[(None, None)], now), vec![None]);
        assert!(usage.watched.is_empty());
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    #[test]
    fn the_budget_leaves_the_instances_their_descriptors() {
        let budget = |limit, instances| Budget::Limit(limit).for_instances(instances);
        assert_eq!(budget(1 << 20, 1000), (1 << 20) / 4);
        assert_eq!(budget(20_000, 1000), 5000);
        assert_eq!(budget(8000, 1000), 2000);
        assert_eq!(budget(4096, 1000), 548);
        assert_eq!(budget(1024, 300), 62);
        assert_eq!(budget(1024, 400), 0);
        assert_eq!(Budget::Fixed(2).for_instances(1000), 2);
    }

    #[test]
    fn kept_descriptors_are_closed_when_more_instances_need_the_room() {
        let mut children: Vec<_> = (0..2)
            .map(|_| Command::new("sleep").arg("30").spawn().expect("sleep"))
            .collect();
        let list: Vec<_> = children
            .iter()
            .map(|c| (Some(c.id()), Some(SystemTime::now())))
            .collect();
        let now = Instant::now();
        // A limit of 100: 2 instances may keep 25.
        let mut usage = Usage::new(Budget::Limit(100));
        assert!(usage.sample(&list, now).iter().all(Option::is_some));
        assert_eq!(usage.open_files(), 2);
        // 31 instances leave (100 - 93) / 2 = 3; 32 leave 2; 33 leave 0.
        let mut more = list.clone();
        more.resize(33, (None, None));
        assert!(usage.sample(&more, now)[..2].iter().all(Option::is_some));
        assert_eq!(
            usage.open_files(),
            0,
            "closed, and read with an open each time"
        );
        assert_eq!(usage.watched.len(), 2);
        for c in &mut children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
