//! Descendants that left their process group (`setsid`, double fork).
//!
//! On Linux procrun makes itself a child subreaper: a process it started
//! that orphans its own children (a daemonizing grandchild, say) hands them
//! to procrun instead of to init. procrun finds every descendant by walking
//! the parent links in `/proc`, signals them when it stops, and reaps the
//! adopted ones by their specific pid once they die. It never calls
//! `waitpid(-1)`, which would steal exit statuses from tokio's own reaping
//! of the direct children (docs/design.md, pitfall 4).
//!
//! On other Unixes none of this is available: process groups are all
//! procrun can signal.

/// One process in the system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    /// Its pid.
    pub pid: i32,
    /// Its parent.
    pub ppid: i32,
    /// Its process group.
    pub pgid: i32,
    /// Whether it is a zombie (dead, not reaped).
    pub zombie: bool,
    /// Whether it is stopped (SIGSTOP), so cannot fork.
    pub stopped: bool,
}

/// Makes procrun a child subreaper. Returns whether that worked.
pub fn become_subreaper() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with integer arguments only.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Every descendant of procrun except `keep` and its descendants (empty
/// where `/proc` is unavailable).
pub fn descendants(keep: Option<i32>) -> Vec<Proc> {
    let me = std::process::id() as i32;
    // Fast path: every descendant descends from one of procrun's children;
    // when the kernel lists none (but `keep`), there is nothing to scan for.
    if let Some(children) = own_children()
        && children.iter().all(|c| Some(*c) == keep)
    {
        return Vec::new();
    }
    let all = scan();
    // Children by parent, so that the walk stays linear in the number of
    // processes even when a runaway tree has made tens of thousands.
    let mut children: std::collections::HashMap<i32, Vec<&Proc>> = std::collections::HashMap::new();
    for p in &all {
        children.entry(p.ppid).or_default().push(p);
    }
    let mut found = Vec::new();
    let mut parents = vec![me];
    while let Some(parent) = parents.pop() {
        for p in children.get(&parent).into_iter().flatten() {
            if Some(p.pid) != keep {
                found.push(**p);
                parents.push(p.pid);
            }
        }
    }
    found
}

/// procrun's children according to `/proc/self/task/*/children`, or `None`
/// where the kernel does not offer that file.
pub fn own_children() -> Option<Vec<i32>> {
    let mut children = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).ok()?;
        children.extend(
            text.split_ascii_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    Some(children)
}

/// Reaps the dead among `procs` that are procrun's own children and for
/// which `ours` is false (i.e. not a child tokio is waiting for). Returns
/// the pids reaped.
pub fn reap_adopted(procs: &[Proc], ours: impl Fn(i32) -> bool) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut reaped = Vec::new();
    for p in procs {
        if p.zombie && p.ppid == me && !ours(p.pid) {
            let pid = nix::unistd::Pid::from_raw(p.pid);
            let flags = nix::sys::wait::WaitPidFlag::WNOHANG;
            if nix::sys::wait::waitpid(pid, Some(flags)).is_ok() {
                reaped.push(p.pid);
            }
        }
    }
    reaped
}

/// All processes, from `/proc/*/stat`.
fn scan() -> Vec<Proc> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Some(stat) = read_small(&entry.path().join("stat"), &mut buf) else {
            continue; // gone meanwhile
        };
        if let Some(p) = parse_stat(pid, stat) {
            all.push(p);
        }
    }
    all
}

/// The start of the file at `path`, read into `buf` with one `read`: the
/// fields of `/proc/PID/stat` that matter come first, within a kilobyte
/// (the command name is at most 64 bytes). Three system calls per process
/// where `fs::read` makes five (it also asks for the size, and reads again
/// to see the end): with 1,000 instances a sweep reads 1,000 files.
fn read_small<'b>(path: &std::path::Path, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    use std::io::Read as _;
    let n = std::fs::File::open(path).ok()?.read(buf).ok()?;
    Some(&buf[..n])
}

/// Parses `/proc/PID/stat`: `pid (comm) state ppid pgrp …`, where comm may
/// hold spaces and parentheses.
fn parse_stat(pid: i32, stat: &[u8]) -> Option<Proc> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&stat[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?;
    let ppid = fields.next()?.parse().ok()?;
    let pgid = fields.next()?.parse().ok()?;
    Some(Proc {
        pid,
        ppid,
        pgid,
        zombie: state == "Z" || state == "X",
        stopped: state == "T" || state == "t",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let p = parse_stat(42, b"42 (a) b (c)) S 7 42 42 0 -1 4194560 ").expect("parses");
        assert_eq!(
            p,
            Proc {
                pid: 42,
                ppid: 7,
                pgid: 42,
                zombie: false,
                stopped: false,
            }
        );
        assert!(parse_stat(5, b"5 (x) Z 1 5 5").expect("parses").zombie);
        assert!(parse_stat(5, b"5 (x) T 1 5 5").expect("parses").stopped);
        assert_eq!(parse_stat(5, b"garbage"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn finds_own_children() {
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        let found = descendants(None).iter().any(|p| p.pid == pid);
        let kept = descendants(Some(pid)).iter().any(|p| p.pid == pid);
        let _ = child.kill();
        let _ = child.wait();
        assert!(found);
        assert!(!kept);
    }
}
