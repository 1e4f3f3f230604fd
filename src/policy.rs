//! Per-process-type policies: what procrun does when an instance ends, and
//! how it stops one. Resolved once into the plan (from `procrun.toml`, its
//! flags and the defaults); the supervisor's state machine only reads them.

use std::time::Duration;

use nix::sys::signal::Signal;

/// The grace period between the stop signal and SIGKILL when nothing sets
/// one (foreman's `-t` default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// When an instance that ended is started again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Restart {
    /// Never (foreman's behaviour).
    #[default]
    No,
    /// After a non-zero exit or a death by a signal procrun did not send.
    OnFailure,
    /// After any exit procrun did not ask for.
    Always,
}

impl Restart {
    /// The spelling used in `procrun.toml` and shown by `check`.
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::No => "no",
            Restart::OnFailure => "on-failure",
            Restart::Always => "always",
        }
    }
}

/// The wait before a restart: `initial`, doubled per consecutive restart,
/// never above `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The wait before the first restart of a streak.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The wait before the `n`-th consecutive restart (1-based):
    /// `min(initial × 2^(n−1), max)`.
    pub fn delay(&self, n: u32) -> Duration {
        let doublings = n.saturating_sub(1).min(63);
        let factor = 1u64 << doublings;
        let nanos = self.initial.as_nanos().saturating_mul(u128::from(factor));
        let max = self.max.as_nanos();
        Duration::from_nanos(nanos.min(max).min(u128::from(u64::MAX)) as u64)
    }
}

/// Everything procrun decides per process type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Policy {
    /// When to restart.
    pub restart: Restart,
    /// Whether its end (for good) leaves the others running.
    pub can_die: bool,
    /// The signal that asks it to stop.
    pub stop_signal: Signal,
    /// How long it gets after `stop_signal` before SIGKILL.
    pub stop_timeout: Duration,
    /// The wait before restarts.
    pub backoff: Backoff,
    /// Consecutive restarts of runs shorter than `min_uptime` before the
    /// instance has failed; `None`: no limit.
    pub max_restarts: Option<u32>,
    /// A run at least this long resets the backoff and the restart count.
    pub min_uptime: Duration,
    /// Whether its instances get a `PORT`.
    pub port: bool,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            restart: Restart::No,
            can_die: false,
            stop_signal: Signal::SIGTERM,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            backoff: Backoff::default(),
            max_restarts: Some(10),
            min_uptime: Duration::from_secs(10),
            port: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_max() {
        let b = Backoff::default();
        let secs: Vec<u64> = (1..=7).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(b.delay(0), Duration::from_secs(1));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
        let tiny = Backoff {
            initial: Duration::from_millis(10),
            max: Duration::from_millis(25),
        };
        assert_eq!(tiny.delay(2), Duration::from_millis(20));
        assert_eq!(tiny.delay(3), Duration::from_millis(25));
        let zero = Backoff {
            initial: Duration::ZERO,
            max: Duration::from_secs(1),
        };
        assert_eq!(zero.delay(5), Duration::ZERO);
    }
}
