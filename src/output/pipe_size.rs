//! Larger pipes where they pay: procrun's stdout, and the pipes of its
//! busiest children.
//!
//! A pipe holds 64 KiB by default. When a producer is faster than its
//! reader, every 64 KiB costs a sleep and a wake-up on both sides; with a
//! 1 MiB pipe (Linux: `F_SETPIPE_SZ`, at most
//! `/proc/sys/fs/pipe-max-size`) each side moves up to 16 times as much per
//! wake-up. The limit multiplexer of `bench/` went from 380–500 to
//! 1,060–1,260 MB/s with 16 writers when its stdout pipe was enlarged.
//!
//! The memory is the kernel's, and only while the pipe is full: a pipe's
//! pages are allocated as data is written and freed as it is read (an
//! empty 1 MiB pipe keeps a 10 KiB ring). Because a full one holds 1 MiB,
//! only children whose reads come back full (a stream writing flat out)
//! get one, and only [`BUDGET`] bytes of child pipes are enlarged at a
//! time: 1,000 instances flooding a slow terminal hold at most 16 MiB more
//! than with 64 KiB pipes. A stream gives its share back when it ends.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The size asked for.
pub const LARGE: usize = 1 << 20;

/// How many bytes of children's pipes may be enlarged at once.
pub const BUDGET: usize = 16 << 20;

/// A read this large emptied a full default pipe: the stream is busy.
pub const BUSY_READ: usize = 64 * 1024;

/// Bytes of children's pipes enlarged now.
static GRANTED: AtomicUsize = AtomicUsize::new(0);

/// The largest pipe the kernel grants an unprivileged process.
fn max_size() -> usize {
    static MAX: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/fs/pipe-max-size")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(LARGE)
            .min(LARGE)
    })
}

/// Grows pipe `fd` to [`LARGE`] (or the system's maximum); returns by how
/// many bytes it grew. Never shrinks; `None` where that is not possible
/// (not a pipe, the user's pipe quota reached, not Linux).
pub fn grow(fd: RawFd) -> Option<usize> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: fcntl with integer arguments on a descriptor the caller
        // holds.
        let now = unsafe { libc::fcntl(fd, libc::F_GETPIPE_SZ) };
        let want = max_size();
        if now < 0 || now as usize >= want {
            return None;
        }
        // SAFETY: as above.
        let got = unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, want as libc::c_int) };
        (got > now).then(|| got as usize - now as usize)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = fd;
        None
    }
}

/// A child's pipe enlarged within the budget; the share is given back on
/// drop.
#[derive(Debug)]
pub struct Grown(usize);

impl Drop for Grown {
    fn drop(&mut self) {
        GRANTED.fetch_sub(self.0, Ordering::Relaxed);
    }
}

/// Enlarges a busy child's pipe `fd` if the budget allows.
pub fn grow_busy(fd: RawFd) -> Option<Grown> {
    let share = LARGE;
    let taken = GRANTED.fetch_add(share, Ordering::Relaxed);
    if taken + share > BUDGET {
        GRANTED.fetch_sub(share, Ordering::Relaxed);
        return None;
    }
    match grow(fd) {
        Some(_) => Some(Grown(share)),
        None => {
            GRANTED.fetch_sub(share, Ordering::Relaxed);
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd as _;

    fn pipe() -> (std::fs::File, std::fs::File) {
        let mut fds = [0; 2];
        // SAFETY: pipe writes two new descriptors.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both are new and ours.
        unsafe {
            use std::os::fd::FromRawFd as _;
            (
                std::fs::File::from_raw_fd(fds[0]),
                std::fs::File::from_raw_fd(fds[1]),
            )
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_pipe_grows_once_and_a_file_not_at_all() {
        let (r, _w) = pipe();
        assert_eq!(grow(r.as_raw_fd()), Some(max_size() - 64 * 1024));
        assert_eq!(grow(r.as_raw_fd()), None, "already large");
        let file = std::fs::File::open("/dev/null").expect("/dev/null");
        assert_eq!(grow(file.as_raw_fd()), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_budget_bounds_the_enlarged_pipes() {
        let pipes: Vec<_> = (0..BUDGET / LARGE + 4).map(|_| pipe()).collect();
        let grown: Vec<Grown> = pipes
            .iter()
            .filter_map(|(r, _)| grow_busy(r.as_raw_fd()))
            .collect();
        assert!(grown.len() <= BUDGET / LARGE, "{}", grown.len());
        assert!(!grown.is_empty());
        drop(grown);
        assert_eq!(GRANTED.load(Ordering::Relaxed), 0, "given back");
    }
}
