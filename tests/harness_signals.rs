//! The harness starts every child with default signal dispositions and an
//! empty signal mask, whatever the test process inherited (`nohup cargo
//! test` ignores SIGHUP; a shell's `trap '' INT` ignores SIGINT).

mod support;
use support::Test;

/// The standard signals (1 to 31) of a signal set in `/proc/self/status`
/// (`SigIgn:`, `SigBlk:`). The realtime ones are left out: glibc keeps 32
/// and 33 for itself and refuses to change them.
#[cfg(target_os = "linux")]
fn mask(status: &str, field: &str) -> u64 {
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in {status}"));
    u64::from_str_radix(line[field.len()..].trim(), 16).expect("hex mask") & 0x7fff_ffff
}

#[cfg(target_os = "linux")]
#[test]
fn children_do_not_inherit_ignored_or_blocked_signals() {
    use nix::sys::signal::{SigHandler, SigSet, SigmaskHow, Signal, pthread_sigmask, signal};
    // This test binary has no other test, so nothing else sees the change.
    // SAFETY: SIG_IGN installs no handler.
    unsafe {
        for s in [Signal::SIGHUP, Signal::SIGINT, Signal::SIGUSR1] {
            signal(s, SigHandler::SigIgn).expect("ignore");
        }
    }
    let mut blocked = SigSet::empty();
    blocked.add(Signal::SIGTERM);
    pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).expect("block");

    let out = Test::new()
        .program("cat")
        .arg("/proc/self/status")
        .code(0)
        .run();
    assert_eq!(mask(&out.stdout, "SigIgn:"), 0, "{}", out.stdout);
    assert_eq!(mask(&out.stdout, "SigBlk:"), 0, "{}", out.stdout);

    // And procrun itself, through `run`: its command sees the same.
    let out = Test::new()
        .procfile("web: a\n")
        .args(["run", "cat", "/proc/self/status"])
        .code(0)
        .run();
    assert_eq!(mask(&out.stdout, "SigIgn:"), 0, "{}", out.stdout);
}
