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
    /// Whether its instances run on a pseudo-terminal of their own
    /// (`start --tty`) instead of pipes.
    pub tty: bool,
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
            tty: false,
        }
    }
}

/// Parses a signal as a user writes it: a name with or without `SIG`, in
/// any case (`TERM`, `sigint`, `SIGQUIT`), or its number (`15`).
pub fn parse_signal(text: &str) -> Result<Signal, String> {
    let text = text.trim();
    let unknown = || {
        format!(
            "`{text}` is not a signal; write a name such as TERM, INT, QUIT or HUP, or a number"
        )
    };
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text
            .parse::<i32>()
            .ok()
            .and_then(|n| Signal::try_from(n).ok())
            .ok_or_else(unknown);
    }
    let upper = text.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(unknown());
    }
    format!("SIG{name}")
        .parse::<Signal>()
        .map_err(|_| unknown())
}

/// A signal's name without `SIG`, as `check` shows it: `TERM`.
pub fn signal_short_name(signal: Signal) -> &'static str {
    let name = signal.as_str();
    name.strip_prefix("SIG").unwrap_or(name)
}

/// Why a signal is a poor stop signal, if it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopSignalProblem {
    /// SIGSTOP cannot be caught and does not end the process: it would only
    /// freeze it until SIGKILL. Rejected.
    Freezes,
    /// SIGKILL cannot be caught: no clean shutdown, and the timeout never
    /// matters. Allowed with a warning.
    Uncatchable,
    /// Ignored unless the program handles it (CHLD, CONT, URG, WINCH): the
    /// process is then killed when the timeout runs out. Allowed with a
    /// warning.
    IgnoredByDefault,
}

/// Checks a signal chosen as a stop signal.
pub fn stop_signal_problem(signal: Signal) -> Option<StopSignalProblem> {
    match signal {
        Signal::SIGSTOP => Some(StopSignalProblem::Freezes),
        Signal::SIGKILL => Some(StopSignalProblem::Uncatchable),
        Signal::SIGCHLD | Signal::SIGCONT | Signal::SIGURG | Signal::SIGWINCH => {
            Some(StopSignalProblem::IgnoredByDefault)
        }
        _ => None,
    }
}

/// Seconds as a user writes them: `5s`, `0.5s`, `1.25s`.
pub fn format_seconds(d: Duration) -> String {
    let millis = d.as_millis();
    if millis.is_multiple_of(1000) {
        format!("{}s", millis / 1000)
    } else {
        let text = format!("{:.3}", d.as_secs_f64());
        format!("{}s", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

impl Policy {
    /// A compact description of what differs from the defaults, as `check`
    /// shows it: `restart=on-failure, can-die, stop=INT/10s`, or `-` when
    /// nothing does. Restart tuning is only shown for types that restart.
    pub fn describe(&self) -> String {
        let default = Policy::default();
        let mut items = Vec::new();
        if self.restart != Restart::No {
            items.push(format!("restart={}", self.restart.as_str()));
            if self.backoff != default.backoff {
                items.push(format!(
                    "backoff={}..{}",
                    format_seconds(self.backoff.initial),
                    format_seconds(self.backoff.max)
                ));
            }
            if self.max_restarts != default.max_restarts {
                items.push(match self.max_restarts {
                    Some(n) => format!("max-restarts={n}"),
                    None => "max-restarts=unlimited".to_owned(),
                });
            }
            if self.min_uptime != default.min_uptime {
                items.push(format!("min-uptime={}", format_seconds(self.min_uptime)));
            }
        }
        if self.can_die {
            items.push("can-die".to_owned());
        }
        if self.stop_signal != default.stop_signal || self.stop_timeout != default.stop_timeout {
            items.push(format!(
                "stop={}/{}",
                signal_short_name(self.stop_signal),
                format_seconds(self.stop_timeout)
            ));
        }
        if !self.port {
            items.push("no-port".to_owned());
        }
        if self.tty {
            items.push("tty".to_owned());
        }
        if items.is_empty() {
            "-".to_owned()
        } else {
            items.join(", ")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_as_users_write_them() {
        for (text, want) in [
            ("TERM", Signal::SIGTERM),
            ("sigint", Signal::SIGINT),
            ("SIGQUIT", Signal::SIGQUIT),
            (" hup ", Signal::SIGHUP),
            ("Usr1", Signal::SIGUSR1),
            ("15", Signal::SIGTERM),
            ("9", Signal::SIGKILL),
        ] {
            assert_eq!(parse_signal(text), Ok(want), "{text}");
        }
        for text in ["", "SIG", "TERMINATE", "0", "99", "-15", "SIG TERM", "15.0"] {
            assert!(parse_signal(text).is_err(), "{text}");
        }
    }

    #[test]
    fn stop_signal_problems() {
        assert_eq!(stop_signal_problem(Signal::SIGTERM), None);
        assert_eq!(
            stop_signal_problem(Signal::SIGSTOP),
            Some(StopSignalProblem::Freezes)
        );
        assert_eq!(
            stop_signal_problem(Signal::SIGKILL),
            Some(StopSignalProblem::Uncatchable)
        );
        assert_eq!(
            stop_signal_problem(Signal::SIGWINCH),
            Some(StopSignalProblem::IgnoredByDefault)
        );
    }

    #[test]
    fn seconds_are_shown_short() {
        assert_eq!(format_seconds(Duration::from_secs(10)), "10s");
        assert_eq!(format_seconds(Duration::from_millis(500)), "0.5s");
        assert_eq!(format_seconds(Duration::from_millis(1250)), "1.25s");
        assert_eq!(format_seconds(Duration::ZERO), "0s");
    }

    #[test]
    fn describe_shows_what_differs() {
        assert_eq!(Policy::default().describe(), "-");
        let p = Policy {
            restart: Restart::OnFailure,
            can_die: true,
            stop_signal: Signal::SIGINT,
            stop_timeout: Duration::from_secs(10),
            ..Policy::default()
        };
        assert_eq!(p.describe(), "restart=on-failure, can-die, stop=INT/10s");
        let p = Policy {
            restart: Restart::Always,
            backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(60),
            },
            max_restarts: None,
            min_uptime: Duration::from_secs(2),
            port: false,
            tty: true,
            ..Policy::default()
        };
        assert_eq!(
            p.describe(),
            "restart=always, backoff=0.5s..60s, max-restarts=unlimited, min-uptime=2s, no-port, tty"
        );
        // Restart tuning of a type that never restarts is not shown.
        let p = Policy {
            max_restarts: Some(3),
            ..Policy::default()
        };
        assert_eq!(p.describe(), "-");
    }

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
