//! Output pacing: when the runtime is about to park (wait for I/O), it may
//! first sleep a little, so that children that trickle output (a
//! line-buffered program: one line per `write(2)`) have put many lines into
//! their pipes by the next read: one wake-up, one read and one chunk for the
//! printer per batch instead of per few lines. `bench/` measures the gain
//! (the `linebuffered` scenario).
//!
//! Two inputs decide the pause, both kept in one shared [`Pacing`] handle:
//! - each stream's reader records its reads in a [`Pace`], which asks for
//!   a pause sized from the stream's rate (the shortest request since the
//!   last park wins; a fast stream asks for none, so it is never slowed
//!   down, nor is any stream read alongside it);
//! - while a reader waits for the printer (stdout is slower than the
//!   children), its pipe keeps reporting data that no task can take, and
//!   the runtime would wake for each write of the children: then it pauses
//!   [`BACKLOGGED`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A read shorter than this left the pipe far from full (64 KiB): there
/// was room to wait for more.
const SMALL_READ: usize = 48 * 1024;

/// A stream writing faster than this (bytes per second) would fill much of
/// its pipe even in the shortest pause, so it asks for none.
const FAST_RATE: f64 = 400e6;

/// How often a stream re-estimates its rate.
const RATE_WINDOW: Duration = Duration::from_millis(1);

/// A pause lasts as long as the stream that asked for it takes to write
/// this much (half its pipe, so it never has to wait for the reader)...
const GATHER_FILL: f64 = 32.0 * 1024.0;

/// ... but never longer than this.
pub const GATHER_MAX: Duration = Duration::from_millis(1);

/// The pause while a reader waits for the printer.
pub const BACKLOGGED: Duration = Duration::from_micros(100);

/// No pause was asked for since the last park.
const NONE: u64 = u64::MAX;

#[derive(Debug)]
struct Shared {
    /// The shortest pause asked for since the last park, in nanoseconds.
    pause_ns: AtomicU64,
    /// Readers waiting for the printer.
    waiting: AtomicUsize,
}

/// The pacing state of one run, shared by the runtime's park hook, the
/// readers and the printer's sender.
#[derive(Clone, Debug)]
pub struct Pacing(Arc<Shared>);

impl Default for Pacing {
    fn default() -> Self {
        Pacing(Arc::new(Shared {
            pause_ns: AtomicU64::new(NONE),
            waiting: AtomicUsize::new(0),
        }))
    }
}

impl Pacing {
    /// The park hook: sleeps for the pause due, if any.
    pub fn gather(&self) {
        if let Some(pause) = self.take_pause() {
            std::thread::sleep(pause);
        }
    }

    /// The pause due before parking now, and forgets the requests.
    pub fn take_pause(&self) -> Option<Duration> {
        let ns = self.0.pause_ns.swap(NONE, Ordering::Relaxed);
        if ns != NONE {
            (ns > 0).then(|| Duration::from_nanos(ns))
        } else if self.backlogged() {
            Some(BACKLOGGED)
        } else {
            None
        }
    }

    /// Whether a reader waits for the printer (stdout is the bottleneck).
    pub fn backlogged(&self) -> bool {
        self.0.waiting.load(Ordering::Relaxed) > 0
    }

    /// Counts a reader as waiting for the printer while the guard lives
    /// (also when its future is dropped).
    pub fn waiting(&self) -> Waiting {
        self.0.waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self.clone())
    }

    /// A new stream's pace.
    pub fn stream(&self) -> Pace {
        Pace {
            pacing: self.clone(),
            window: Instant::now(),
            window_bytes: 0,
            rate: 0.0,
        }
    }

    fn ask(&self, ns: u64) {
        self.0.pause_ns.fetch_min(ns, Ordering::Relaxed);
    }
}

/// See [`Pacing::waiting`].
#[derive(Debug)]
pub struct Waiting(Pacing);

impl Drop for Waiting {
    fn drop(&mut self) {
        (self.0).0.waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One stream's rate, and the pause it asks for after each read.
#[derive(Debug)]
pub struct Pace {
    pacing: Pacing,
    window: Instant,
    window_bytes: usize,
    /// Bytes per second in the last complete window.
    rate: f64,
}

impl Pace {
    /// Records a read of `n` bytes and asks for the pause it allows.
    pub fn read(&mut self, n: usize) {
        self.read_at(n, Instant::now());
    }

    fn read_at(&mut self, n: usize, now: Instant) {
        self.window_bytes += n;
        let elapsed = now.saturating_duration_since(self.window);
        if elapsed >= RATE_WINDOW {
            self.rate = self.window_bytes as f64 / elapsed.as_secs_f64();
            self.window += elapsed;
            self.window_bytes = 0;
        }
        if let Some(ns) = pause_for(self.rate, n) {
            self.pacing.ask(ns);
        }
    }
}

/// The pause (ns) a stream at `rate` bytes/s asks for after a read of `n`
/// bytes; `None`: it asks for nothing (a full read: the pipe is busy).
fn pause_for(rate: f64, n: usize) -> Option<u64> {
    if rate > FAST_RATE {
        Some(0)
    } else if n < SMALL_READ {
        let max = GATHER_MAX.as_nanos() as f64;
        Some((GATHER_FILL * 1e9 / rate).min(max) as u64)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_request_no_pause() {
        let p = Pacing::default();
        assert_eq!(p.take_pause(), None);
    }

    #[test]
    fn a_slow_stream_asks_for_the_longest_pause() {
        let p = Pacing::default();
        let mut pace = p.stream();
        pace.read(100); // no rate yet: a rate of 0 asks for the maximum
        assert_eq!(p.take_pause(), Some(GATHER_MAX));
        assert_eq!(p.take_pause(), None, "a request is used once");
    }

    #[test]
    fn the_pause_shrinks_with_the_rate_and_the_shortest_wins() {
        // 64 MB/s fills 32 KiB in 512 us.
        assert_eq!(pause_for(64e6, 1000), Some(512_000));
        assert_eq!(pause_for(1e3, 1000), Some(GATHER_MAX.as_nanos() as u64));
        assert_eq!(pause_for(500e6, 1000), Some(0), "fast: no pause");
        assert_eq!(pause_for(10e6, 64 * 1024), None, "a full read asks nothing");
        let p = Pacing::default();
        p.ask(800_000);
        p.ask(300_000);
        p.ask(500_000);
        assert_eq!(p.take_pause(), Some(Duration::from_nanos(300_000)));
    }

    #[test]
    fn a_fast_stream_cancels_every_pause() {
        let p = Pacing::default();
        p.ask(800_000);
        p.ask(0);
        assert_eq!(p.take_pause(), None);
    }

    #[test]
    fn the_rate_is_measured_per_window() {
        let p = Pacing::default();
        let mut pace = p.stream();
        let t0 = pace.window;
        pace.read_at(1_000_000, t0 + Duration::from_millis(2));
        assert!((pace.rate - 5e8).abs() < 1e3, "{}", pace.rate);
        assert_eq!(p.take_pause(), None, "a 1 MB read asks for nothing");
        pace.read_at(10, t0 + Duration::from_millis(2));
        assert_eq!(p.take_pause(), None, "500 MB/s is fast: pause 0");
    }

    #[test]
    fn waiting_readers_make_a_short_pause() {
        let p = Pacing::default();
        let guard = p.waiting();
        assert!(p.backlogged());
        assert_eq!(p.take_pause(), Some(BACKLOGGED));
        drop(guard);
        assert!(!p.backlogged());
        assert_eq!(p.take_pause(), None);
    }
}
