//! Spawning one instance: `/bin/sh -c COMMAND` in its own process group,
//! stdin from `/dev/null`, stdout and stderr on two pipes, the plan's
//! environment on top of procrun's own, and a parent-death signal.
//!
//! On Linux through [`super::vfork`] (no `fork()`, no copy of procrun's
//! descriptor table: a spawn costs the same with 1,000 instances running
//! as with none); elsewhere, or on a kernel older than 5.9, through
//! tokio's `Command` with a `pre_exec` hook (std then forks).
//!
//! Two pipes, not one shared by both streams: a program that block-buffers
//! stdout (most do on a pipe) writes it in chunks that end mid-line, and a
//! stderr line written in between would land inside a stdout line. With a
//! pipe each, every line of each stream arrives whole; only the relative
//! order of stdout and stderr lines is then up to when each was flushed.

use std::process::Stdio;

use tokio::process::Command;

use crate::output::notice::Key;
use crate::plan::ProcessSpec;
use crate::supervisor::child::Child;

/// What every spawn needs from procrun itself.
#[derive(Clone, Copy, Debug)]
pub struct SpawnContext {
    /// procrun's pid: a child whose parent changed before exec gives up.
    pub parent: libc::pid_t,
    /// The open-files limit procrun started with, restored in the child:
    /// procrun raises its own soft limit to run many instances, children
    /// keep what they would have had.
    pub nofile: Option<(libc::rlim_t, libc::rlim_t)>,
    /// The clone-based launcher, where the kernel supports it.
    #[cfg(target_os = "linux")]
    launcher: Option<&'static super::vfork::Launcher>,
}

impl SpawnContext {
    /// The context of the calling process. The first call reserves the
    /// launcher's descriptors: it should come before procrun opens many.
    pub fn current(nofile: Option<(libc::rlim_t, libc::rlim_t)>) -> Self {
        SpawnContext {
            parent: std::process::id() as libc::pid_t,
            nofile,
            #[cfg(target_os = "linux")]
            launcher: launcher(),
        }
    }
}

/// The process's one launcher (its slots are process-wide descriptors).
#[cfg(target_os = "linux")]
pub(super) fn launcher() -> Option<&'static super::vfork::Launcher> {
    static LAUNCHER: std::sync::OnceLock<Option<super::vfork::Launcher>> =
        std::sync::OnceLock::new();
    LAUNCHER.get_or_init(super::vfork::Launcher::new).as_ref()
}

/// How [`begin`] went.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "returned and matched at once, never stored"
)]
pub enum Begun {
    /// Spawned on the calling thread (or failed before a process existed).
    Done(std::io::Result<Child>),
    /// Handed to the spawner thread: its [`Spawned`] comes on the channel.
    Handed,
}

/// What the spawner thread answers (never sent where it does not run).
#[cfg(target_os = "linux")]
pub use super::spawner::Spawned;

/// What the spawner thread answers (never sent where it does not run).
#[cfg(not(target_os = "linux"))]
#[derive(Debug)]
pub struct Spawned {
    /// Which instance.
    pub key: Key,
    never: std::convert::Infallible,
}

/// A dispatcher's end of the spawner thread: where its results go, and
/// whether spawns not yet begun are to be skipped (the app is stopping).
#[derive(Clone, Debug)]
pub struct Handoff {
    pub(super) reply: tokio::sync::mpsc::UnboundedSender<Spawned>,
    pub(super) cancelled: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Handoff {
    /// A handoff, and where its results arrive.
    pub fn new() -> (Handoff, tokio::sync::mpsc::UnboundedReceiver<Spawned>) {
        let (reply, results) = tokio::sync::mpsc::unbounded_channel();
        let handoff = Handoff {
            reply,
            cancelled: Default::default(),
        };
        (handoff, results)
    }

    /// Spawns handed over and not yet begun are answered as cancelled.
    pub fn cancel(&self) {
        self.cancelled
            .store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Starts `spec` as instance `key` without waiting for the exec where it
/// can: on Linux the program goes to the spawner thread
/// ([`super::spawner`]) and its result comes through `handoff`; otherwise
/// the spawn happens here, as [`spawn`].
pub fn begin(spec: &ProcessSpec, ctx: SpawnContext, key: Key, handoff: &Handoff) -> Begun {
    #[cfg(target_os = "linux")]
    if let Some(launcher) = ctx.launcher {
        let program = match program(spec, ctx) {
            Ok(p) => p,
            Err(e) => return Begun::Done(Err(e)),
        };
        return match super::spawner::submit(key, program, launcher, handoff) {
            Ok(()) => Begun::Handed,
            // No spawner thread: spawn here.
            Err(program) => Begun::Done(launcher.spawn(&program).and_then(adopt)),
        };
    }
    let _ = (key, handoff);
    Begun::Done(spawn(spec, ctx))
}

/// The child of a finished spawn on the spawner thread (`None`: it was
/// cancelled). Must be called within the runtime.
pub fn finish(spawned: Spawned) -> Option<std::io::Result<Child>> {
    #[cfg(target_os = "linux")]
    return spawned.take().map(|started| started.and_then(adopt));
    #[cfg(not(target_os = "linux"))]
    match spawned.never {}
}

/// The started process as a unit holds it; killed and reaped if that
/// fails (not watched by anything, it must not run on).
#[cfg(target_os = "linux")]
fn adopt(started: super::vfork::Started) -> std::io::Result<Child> {
    let pid = started.pid;
    Child::from_started(started).inspect_err(|_| super::spawner::abandon(pid))
}

/// Starts `spec` on the calling thread, which must outlive the child: on
/// Linux the parent-death signal fires when the spawning *thread* exits
/// (docs/design.md, pitfall 9).
pub fn spawn(spec: &ProcessSpec, ctx: SpawnContext) -> std::io::Result<Child> {
    #[cfg(target_os = "linux")]
    if let Some(launcher) = ctx.launcher {
        return launcher.spawn(&program(spec, ctx)?).and_then(adopt);
    }
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
    if python_buffering_unset(spec) {
        // Python block-buffers stdout on a pipe, so its lines would come
        // late, in bursts; unbuffered, each arrives as it is printed.
        cmd.env(PYTHONUNBUFFERED, "1");
    }
    // SAFETY: the closure runs in the child between fork and exec and only
    // makes async-signal-safe system calls (prctl, getppid, setrlimit); it
    // allocates nothing and takes no lock.
    unsafe {
        cmd.pre_exec(move || in_child(ctx));
    }
    Child::from_tokio(cmd.spawn()?)
}

/// What `/bin/sh -c COMMAND` is given: what the `Command` above is told,
/// as C strings. The environment is procrun's, with the plan's on top;
/// procrun's own is turned into C strings once, not per spawn.
#[cfg(target_os = "linux")]
fn program(
    spec: &ProcessSpec,
    ctx: SpawnContext,
) -> std::io::Result<super::vfork::Program<'static>> {
    use std::borrow::Cow;
    use std::os::unix::ffi::OsStrExt as _;

    use super::vfork::{Program, c_string, env_entry};
    // Each of the plan's names, at its last place (the last one wins, as
    // with `Command::env`).
    let last: std::collections::HashMap<&[u8], usize> = spec
        .env
        .iter()
        .enumerate()
        .map(|(i, (k, _))| (k.as_bytes(), i))
        .collect();
    let set_here = |name: &[u8]| last.contains_key(name) || (name == b"PORT" && !spec.policy.port);
    let mut envp: Vec<Cow<'static, std::ffi::CStr>> = procrun_env()
        .iter()
        .filter(|(name, _)| !set_here(name))
        .map(|(_, entry)| Cow::Borrowed(entry.as_c_str()))
        .collect();
    for (i, (k, v)) in spec.env.iter().enumerate() {
        if last.get(k.as_bytes()) != Some(&i) || (k == "PORT" && !spec.policy.port) {
            continue;
        }
        envp.push(Cow::Owned(env_entry(k.as_bytes(), v.as_bytes())?));
    }
    if python_buffering_unset(spec) {
        envp.push(Cow::Borrowed(c"PYTHONUNBUFFERED=1"));
    }
    let script = crate::shell::script(&spec.command);
    Ok(Program {
        path: c"/bin/sh".to_owned(),
        argv: vec![
            c"/bin/sh".to_owned(),
            c"-c".to_owned(),
            c_string(script.as_bytes(), "the command")?,
        ],
        envp,
        cwd: c_string(spec.cwd.as_os_str().as_bytes(), "the working directory")?,
        nofile: ctx.nofile,
    })
}

/// procrun's environment as `NAME=value` C strings, with each name; read
/// at the first spawn (nothing in procrun changes it afterwards).
#[cfg(target_os = "linux")]
fn procrun_env() -> &'static [(Vec<u8>, std::ffi::CString)] {
    use std::os::unix::ffi::OsStrExt as _;
    static ENV: std::sync::OnceLock<Vec<(Vec<u8>, std::ffi::CString)>> = std::sync::OnceLock::new();
    ENV.get_or_init(|| {
        std::env::vars_os()
            .filter_map(|(k, v)| {
                let entry = super::vfork::env_entry(k.as_bytes(), v.as_bytes()).ok()?;
                Some((k.as_bytes().to_vec(), entry))
            })
            .collect()
    })
}

/// Gives a helper process procrun starts (a readiness probe) the same
/// guard as an instance: killed by the kernel if procrun dies.
pub fn guard_child(cmd: &mut Command, ctx: SpawnContext) {
    // SAFETY: as in `spawn`: only async-signal-safe calls between fork and
    // exec.
    unsafe {
        cmd.pre_exec(move || in_child(ctx));
    }
}

/// The variable that makes Python write its output at once.
pub const PYTHONUNBUFFERED: &str = "PYTHONUNBUFFERED";

/// Whether neither the env files nor procrun's environment set
/// `PYTHONUNBUFFERED` (set to empty, it keeps Python's buffering: the
/// opt-out).
fn python_buffering_unset(spec: &ProcessSpec) -> bool {
    !spec.env.iter().any(|(k, _)| k == PYTHONUNBUFFERED)
        && std::env::var_os(PYTHONUNBUFFERED).is_none()
}

/// What `-v` shows of a spawn: the command line and working directory at
/// info level; with `-vv` the variables procrun sets (values of names that
/// look secret masked), with `-vvv` unmasked.
pub fn trace_spawn(spec: &ProcessSpec, pid: Option<u32>) {
    tracing::info!(
        "{}: pid {}: /bin/sh -c {:?} in {}",
        spec.name,
        pid.map_or_else(|| "?".to_owned(), |p| p.to_string()),
        crate::shell::script(&spec.command),
        spec.cwd.display()
    );
    if tracing::enabled!(tracing::Level::DEBUG) {
        let unmasked = tracing::enabled!(tracing::Level::TRACE);
        let vars: Vec<String> = spec
            .env
            .iter()
            .map(|(k, v)| {
                if unmasked || !looks_secret(k) {
                    format!("{k}={v:?}")
                } else {
                    format!("{k}=***")
                }
            })
            .collect();
        tracing::debug!(
            "{}: environment on top of procrun's: {}",
            spec.name,
            vars.join(" ")
        );
    }
}

/// Whether a variable's name suggests a secret (`DATABASE_PASSWORD`,
/// `API_TOKEN`, `AWS_SECRET_ACCESS_KEY`, …).
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    [
        "SECRET",
        "TOKEN",
        "PASSWORD",
        "PASSWD",
        "PASS",
        "KEY",
        "CREDENTIAL",
        "AUTH",
        "PRIVATE",
        "COOKIE",
        "SESSION",
    ]
    .iter()
    .any(|word| upper.contains(word))
        || upper.contains("_URL") && upper.contains("DATABASE")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_environment_is_procruns_with_the_plans_on_top() {
        let spec = ProcessSpec {
            name: "web.1".into(),
            type_name: "web".into(),
            type_index: 0,
            number: 1,
            command: "run".into(),
            port: 5000,
            cwd: "/".into(),
            env: vec![
                ("PORT".into(), "1".into()),
                ("PATH".into(), "/plan".into()),
                ("PORT".into(), "5000".into()),
            ],
            policy: crate::policy::Policy::default(),
            readiness: crate::readiness::Readiness::default(),
        };
        let ctx = SpawnContext::current(None);
        let env = |spec: &ProcessSpec| -> Vec<String> {
            program(spec, ctx)
                .expect("program")
                .envp
                .iter()
                .map(|e| e.to_string_lossy().into_owned())
                .collect()
        };
        let all = env(&spec);
        let of = |all: &[String], name: &str| -> Vec<String> {
            all.iter()
                .filter(|e| e.split('=').next() == Some(name))
                .cloned()
                .collect()
        };
        // Once each, the plan's last value winning over procrun's.
        assert_eq!(of(&all, "PORT"), ["PORT=5000"]);
        assert_eq!(of(&all, "PATH"), ["PATH=/plan"]);
        if let Ok(home) = std::env::var("HOME") {
            assert_eq!(of(&all, "HOME"), [format!("HOME={home}")]);
        }
        if std::env::var_os(PYTHONUNBUFFERED).is_none() {
            assert_eq!(of(&all, PYTHONUNBUFFERED), ["PYTHONUNBUFFERED=1"]);
        }
        // A type without a port gets no PORT, not even procrun's.
        let mut no_port = spec.clone();
        no_port.policy.port = false;
        assert!(of(&env(&no_port), "PORT").is_empty());
    }

    #[test]
    fn secret_looking_names() {
        for name in [
            "DATABASE_PASSWORD",
            "api_token",
            "AWS_SECRET_ACCESS_KEY",
            "SECRET_KEY_BASE",
            "DATABASE_URL",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["PORT", "PS", "RAILS_ENV", "WEB_CONCURRENCY", "HOME"] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
