//! The spawner: a thread of procrun's own that starts the instances
//! (Linux, through [`super::vfork`]), so that the runtime's thread, which
//! reads every instance's output, never waits for an exec.
//!
//! `clone(CLONE_VFORK)` holds the calling thread until the child has
//! called `execve`: about a millisecond, and several at the 99th
//! percentile on a loaded machine (the control section of
//! bench/RESULTS.md). On the runtime's thread, each restart held every
//! other instance's lines that long. Here the runtime hands the program
//! over and goes on; the result comes back through a channel, and the
//! state machine keeps the instance `Spawning` until then (it never
//! assumed more).
//!
//! The thread lives as long as procrun: the parent-death signal of a child
//! fires when the *thread* that spawned it exits (docs/design.md, pitfall
//! 9), so it never returns. Every signal is blocked on it, so no handler
//! of procrun's runs there.

use std::io;
use std::sync::OnceLock;
use std::sync::atomic::Ordering;
use std::sync::mpsc as std_mpsc;

use super::spawn::Handoff;
use super::vfork::{Launcher, Program, Started};
use crate::output::notice::Key;

/// One spawn to do.
struct Job {
    key: Key,
    program: Program<'static>,
    launcher: &'static Launcher,
    handoff: Handoff,
}

/// The result of a spawn, for the dispatcher. A result dropped unread
/// (the dispatcher gone) kills and reaps its process: nothing else knows
/// of it.
#[derive(Debug)]
pub struct Spawned {
    /// Which instance.
    pub key: Key,
    /// `None`: cancelled, not started.
    started: Option<io::Result<Started>>,
}

impl Spawned {
    /// The started process, or why it did not start; `None` if the spawn
    /// was cancelled before its turn ([`Handoff::cancel`]).
    pub fn take(mut self) -> Option<io::Result<Started>> {
        self.started.take()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(Ok(started)) = self.started.take() {
            abandon(started.pid);
        }
    }
}

/// Kills and reaps a child nothing will watch.
pub fn abandon(pid: u32) {
    super::signals::kill_group(pid, nix::sys::signal::Signal::SIGKILL);
    let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid as i32), None);
}

/// The process's spawner thread, started at the first call; `None` if no
/// thread could be started (spawns then run on the caller's thread).
fn jobs() -> Option<&'static std_mpsc::Sender<Job>> {
    static JOBS: OnceLock<Option<std_mpsc::Sender<Job>>> = OnceLock::new();
    JOBS.get_or_init(|| {
        let (tx, rx) = std_mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("procrun-spawner".into())
            .spawn(move || serve(rx));
        match started {
            Ok(_) => Some(tx),
            Err(e) => {
                tracing::debug!("no spawner thread ({e}): spawning on the runtime's thread");
                None
            }
        }
    })
    .as_ref()
}

/// The thread's loop. The sender is a static, so `recv` fails only if
/// the process is ending; the thread then waits for that end.
fn serve(rx: std_mpsc::Receiver<Job>) {
    // SAFETY: plain sets on this stack; blocking signals on this thread
    // only directs them to procrun's others.
    unsafe {
        let mut all: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut all);
        libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
    }
    while let Ok(job) = rx.recv() {
        let started = match job.handoff.cancelled.load(Ordering::Acquire) {
            true => None,
            false => Some(job.launcher.spawn(&job.program)),
        };
        drop(job.program);
        // A dispatcher that is gone drops the result, which kills it.
        let _ = job.handoff.reply.send(Spawned {
            key: job.key,
            started,
        });
    }
    loop {
        std::thread::park();
    }
}

/// Hands `program` to the spawner thread; its result comes back through
/// `handoff`. Gives the program back if there is no spawner thread.
pub fn submit(
    key: Key,
    program: Program<'static>,
    launcher: &'static Launcher,
    handoff: &Handoff,
) -> Result<(), Program<'static>> {
    let Some(jobs) = jobs() else {
        return Err(program);
    };
    jobs.send(Job {
        key,
        program,
        launcher,
        handoff: handoff.clone(),
    })
    .map_err(|e| e.0.program)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::supervisor::spawn::launcher;
    use crate::supervisor::vfork::tests::program;

    #[test]
    fn spawns_on_its_thread_and_answers_in_order() {
        let Some(launcher) = launcher() else {
            return; // an old kernel: spawns go through std there
        };
        let (handoff, mut rx) = Handoff::new();
        for i in 0..3 {
            submit(Key(i), program("exit 7"), launcher, &handoff).expect("a spawner thread");
        }
        for i in 0..3 {
            let spawned = rx.blocking_recv().expect("an answer");
            assert_eq!(spawned.key, Key(i));
            let started = spawned.take().expect("not cancelled").expect("started");
            let status =
                nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(started.pid as i32), None)
                    .expect("waitpid");
            assert_eq!(
                status,
                nix::sys::wait::WaitStatus::Exited(
                    nix::unistd::Pid::from_raw(started.pid as i32),
                    7
                )
            );
        }
    }

    #[test]
    fn an_unread_result_kills_its_process() {
        let Some(launcher) = launcher() else {
            return;
        };
        let (handoff, mut rx) = Handoff::new();
        submit(Key(0), program("exec sleep 30"), launcher, &handoff).expect("a spawner thread");
        let spawned = rx.blocking_recv().expect("an answer");
        let pid = match &spawned.started {
            Some(Ok(s)) => s.pid,
            other => panic!("not started: {other:?}"),
        };
        drop(spawned);
        // Reaped by the drop: the pid is no child of ours any more.
        let e = nix::sys::wait::waitpid(
            nix::unistd::Pid::from_raw(pid as i32),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        )
        .expect_err("already reaped");
        assert_eq!(e, nix::errno::Errno::ECHILD);
    }

    #[test]
    fn a_cancelled_handoff_starts_nothing_more() {
        let Some(launcher) = launcher() else {
            return;
        };
        let (handoff, mut rx) = Handoff::new();
        handoff.cancel();
        submit(Key(4), program("exit 0"), launcher, &handoff).expect("a spawner thread");
        let spawned = rx.blocking_recv().expect("an answer");
        assert_eq!(spawned.key, Key(4));
        assert!(spawned.take().is_none(), "cancelled");
    }
}
