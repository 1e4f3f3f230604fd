//! Spawning one instance: `/bin/sh -c COMMAND` in its own process group,
//! stdin from `/dev/null`, stdout and stderr on two pipes, the plan's
//! environment on top of procrun's own.
//!
//! Two pipes, not one shared by both streams: a program that block-buffers
//! stdout (most do on a pipe) writes it in chunks that end mid-line, and a
//! stderr line written in between would land inside a stdout line. With a
//! pipe each, every line of each stream arrives whole; only the relative
//! order of stdout and stderr lines is then up to when each was flushed.

use std::process::Stdio;

use tokio::process::{Child, Command};

use crate::plan::ProcessSpec;

/// What every spawn needs from procrun itself.
#[derive(Clone, Copy, Debug)]
pub struct SpawnContext {
    /// procrun's pid: a child whose parent changed before exec gives up.
    pub parent: libc::pid_t,
    /// The open-files limit procrun started with, restored in the child:
    /// procrun raises its own soft limit to run many instances, children
    /// keep what they would have had.
    pub nofile: Option<(libc::rlim_t, libc::rlim_t)>,
}

impl SpawnContext {
    /// The context of the calling process.
    pub fn current(nofile: Option<(libc::rlim_t, libc::rlim_t)>) -> Self {
        SpawnContext {
            parent: std::process::id() as libc::pid_t,
            nofile,
        }
    }
}

/// Starts `spec`. Must be called from a thread that outlives the child (the
/// main thread): on Linux the parent-death signal fires when the spawning
/// *thread* exits (docs/design.md, pitfall 9).
pub fn spawn(spec: &ProcessSpec, ctx: SpawnContext) -> std::io::Result<Child> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(crate::shell::script(&spec.command))
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
    if !spec.policy.port {
        // Its type gets no PORT: not procrun's own either.
        cmd.env_remove("PORT");
    }
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe system calls (prctl, getppid, setrlimit); it
    // allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || in_child(ctx));
    }
    cmd.spawn()
}

/// Runs in the child before exec.
fn in_child(ctx: SpawnContext) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // If procrun dies, even by SIGKILL, the kernel kills this child.
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) } == -1 {
            return Err(std::io::Error::last_os_error());
        }
        // procrun may have died before the prctl: then nobody would kill us.
        // SAFETY: getppid cannot fail.
        if unsafe { libc::getppid() } != ctx.parent {
            return Err(std::io::Error::other(
                "procrun exited while starting the process",
            ));
        }
    }
    if let Some((soft, hard)) = ctx.nofile {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: a valid pointer to a plain struct. Failure only leaves the
        // higher limit in place, which is harmless.
        unsafe {
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    Ok(())
}
