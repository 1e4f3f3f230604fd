//! Shared test helpers: a temporary project directory and the real binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

/// Hard limit for a single procrun invocation in tests: nothing may hang.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A temporary app directory with a Procfile and other files.
pub struct Project {
    dir: tempfile::TempDir,
}

impl Project {
    /// An empty project.
    pub fn new() -> Self {
        Project {
            dir: tempfile::tempdir().expect("create temp dir"),
        }
    }

    /// A project whose Procfile holds `text`.
    pub fn with_procfile(text: &str) -> Self {
        Project::new().file("Procfile", text)
    }

    /// Writes `contents` to `name` inside the project (parents created).
    pub fn file(self, name: &str, contents: impl AsRef<[u8]>) -> Self {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent dirs");
        }
        std::fs::write(path, contents).expect("write file");
        self
    }

    /// The project directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `name` inside the project.
    pub fn join(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `procrun ARGS…` run in the project directory, with a hard timeout
    /// and an environment free of PROCRUN_* and colour settings.
    pub fn procrun(&self) -> assert_cmd::Command {
        let mut cmd = procrun();
        cmd.current_dir(self.path());
        cmd
    }
}

/// The real `procrun` binary with a clean, predictable environment.
pub fn procrun() -> assert_cmd::Command {
    let mut cmd = std::process::Command::new(procrun_path());
    scrub(&mut cmd);
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.timeout(TIMEOUT);
    cmd
}

/// Removes what would change procrun's behaviour from `cmd`'s environment:
/// its own settings (`PROCRUN_*`), colour and log settings, and `PORT`.
pub fn scrub(cmd: &mut std::process::Command) {
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("PROCRUN_") || k == "NO_COLOR" || k == "PORT" || k == "RUST_LOG" {
            cmd.env_remove(&key);
        }
    }
}

/// Path of the built binary, for tests that drive it with std::process.
pub fn procrun_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_procrun"))
}
