//! The runners under test and how each one is invoked.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// How a runner escalates to SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillTimeout {
    /// A flag sets the timeout (`-t SECS`).
    Flag,
    /// Fixed, in seconds.
    Fixed(u32),
    /// The runner never sends SIGKILL.
    Never,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// No runner: K processes started by the bench launcher into one pipe.
    Baseline,
    /// The same launcher spawning with fork() instead of posix_spawn.
    BaselineFork,
    /// The limit multiplexer (`limit.rs`): K processes, a pipe each, lines
    /// prefixed like procrun's into one stdout.
    LimitMux,
    /// The limit multiplexer with each instance in a process group of its
    /// own, signalled group by group and drained to the end of its pipe on
    /// a stop: what a runner that Ctrl-C reaches alone must do at least.
    LimitMuxGroups,
    Procrun,
    Foreman,
    Honcho,
    NodeForeman,
    Ultraman,
}

#[derive(Debug, Clone)]
pub struct Runner {
    pub name: &'static str,
    pub kind: Kind,
    pub exe: PathBuf,
}

impl Runner {
    pub fn is_baseline(&self) -> bool {
        matches!(
            self.kind,
            Kind::Baseline | Kind::BaselineFork | Kind::LimitMux | Kind::LimitMuxGroups
        )
    }

    /// Whether its CPU and memory are measured: every runner but the
    /// raw pipe and the launcher, which only start the processes.
    pub fn measured(&self) -> bool {
        !matches!(self.kind, Kind::Baseline | Kind::BaselineFork)
    }

    pub fn kill_timeout(&self) -> KillTimeout {
        match self.kind {
            Kind::Baseline | Kind::BaselineFork | Kind::LimitMux | Kind::LimitMuxGroups => {
                KillTimeout::Never
            }
            Kind::Procrun | Kind::Foreman | Kind::Ultraman => KillTimeout::Flag,
            Kind::Honcho => KillTimeout::Fixed(5),
            Kind::NodeForeman => KillTimeout::Never,
        }
    }

    /// The command that runs `formation` (type, count) of the Procfile in
    /// `dir`. For the baseline, `commands` gives each type's command line.
    pub fn command(
        &self,
        dir: &Path,
        formation: &[(&str, u32)],
        commands: &[(&str, String)],
        timeout: Option<u32>,
    ) -> Command {
        let form = formation
            .iter()
            .map(|(n, k)| format!("{n}={k}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut args: Vec<OsString> = Vec::new();
        let mut push = |s: &str| args.push(s.into());
        let t = timeout.map(|t| t.to_string());
        match self.kind {
            Kind::Baseline | Kind::BaselineFork => {
                push("launch");
                if self.kind == Kind::BaselineFork {
                    push("--fork");
                }
                for (name, k) in formation {
                    if let Some((_, cmd)) = commands.iter().find(|(n, _)| n == name) {
                        push(&k.to_string());
                        push(cmd);
                    }
                }
            }
            Kind::LimitMux | Kind::LimitMuxGroups => {
                push("mux");
                for (name, k) in formation {
                    if let Some((_, cmd)) = commands.iter().find(|(n, _)| n == name) {
                        push(&k.to_string());
                        push(cmd);
                    }
                }
                // After K CMD, which the multiplexer reads first.
                if self.kind == Kind::LimitMuxGroups {
                    push("--groups");
                }
            }
            Kind::Procrun => {
                for a in ["start", "-f", "Procfile", "-m", &form, "--color", "never"] {
                    push(a);
                }
                if let Some(t) = &t {
                    push("-t");
                    push(t);
                }
            }
            Kind::Foreman => {
                for a in ["start", "-f", "Procfile", "-m", &form] {
                    push(a);
                }
                if let Some(t) = &t {
                    push("-t");
                    push(t);
                }
            }
            Kind::Honcho => {
                for a in ["-f", "Procfile", "--no-colour", "start", "-c", &form] {
                    push(a);
                }
            }
            Kind::NodeForeman => {
                for a in ["-j", "Procfile", "start", &form] {
                    push(a);
                }
            }
            Kind::Ultraman => {
                for a in ["start", "-f", "Procfile", "-m", &form] {
                    push(a);
                }
                if let Some(t) = &t {
                    push("-t");
                    push(t);
                }
            }
        }
        let mut cmd = Command::new(&self.exe);
        cmd.args(args).current_dir(dir);
        cmd.env_remove("PORT")
            .env("SHELL", "/bin/sh")
            .env("NO_COLOR", "1");
        // procrun reads every option from PROCRUN_<NAME> too (a
        // PROCRUN_CONFIG or PROCRUN_LOG_FORMAT would change what is
        // measured): the command line alone decides.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PROCRUN_") {
                cmd.env_remove(key);
            }
        }
        cmd
    }
}

/// Finds an executable on PATH (or takes an explicit path).
pub fn which(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// The peers found on this machine, plus notes on the missing ones.
/// `extra` are directories searched first (bench/peers/bin from install-peers).
pub fn find_peers(extra: &[PathBuf], only: Option<&[String]>) -> (Vec<Runner>, Vec<String>) {
    let mut found = Vec::new();
    let mut notes = Vec::new();
    let peers: [(&'static str, Kind, &str, &str); 4] = [
        (
            "foreman",
            Kind::Foreman,
            "foreman",
            "apt-get install ruby-foreman",
        ),
        (
            "honcho",
            Kind::Honcho,
            "honcho",
            "pip install honcho (bench/install-peers puts it in bench/peers)",
        ),
        (
            "node-foreman",
            Kind::NodeForeman,
            "nf",
            "npm install foreman (bench/install-peers puts it in bench/peers)",
        ),
        (
            "ultraman",
            Kind::Ultraman,
            "ultraman",
            "cargo install ultraman (bench/install-peers puts it in bench/peers)",
        ),
    ];
    for (name, kind, bin, how) in peers {
        if only.is_some_and(|only| !only.iter().any(|o| o == name)) {
            continue;
        }
        let exe = extra
            .iter()
            .map(|d| d.join(bin))
            .find(|p| p.is_file())
            .or_else(|| which(bin));
        match exe {
            Some(exe) => found.push(Runner { name, kind, exe }),
            None => notes.push(format!("{name} skipped: `{bin}` not found ({how})")),
        }
    }
    (found, notes)
}
