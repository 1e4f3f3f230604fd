//! procrun's dashboard on a real terminal emulator: a private tmux server
//! (its own socket, no configuration) with one window of a given size,
//! whose screen a test reads back as text (`capture-pane`), types into
//! (`send-keys`) and resizes (`resize-window`). What tmux shows is what a
//! user would see.
//!
//! The window runs a shell script that records the terminal's settings
//! before and after the command (`stty -g`: every setting but the size) and the command's exit code,
//! into files of the test's own directory. Every wait polls the screen or
//! a file with a bound ([`super::WAIT`] by default); dropping the [`Tmux`]
//! kills its server, and with it the window's processes.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{MARK, WAIT};

/// Whether tmux is installed (CI installs it: `.ci/run`).
pub fn available() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A tmux server with one window.
pub struct Tmux {
    dir: tempfile::TempDir,
    /// The value of [`MARK`] the command runs with.
    pub mark: String,
}

impl Tmux {
    /// Runs `command` (a shell command line) in `cwd` in a `width` ×
    /// `height` window, with the scrubbed environment plus `env`. The
    /// command gets [`MARK`]; the shell around it does not.
    pub fn start(cwd: &Path, env: &[(&str, &str)], command: &str, width: u16, height: u16) -> Tmux {
        let dir = tempfile::tempdir().expect("a temp dir");
        let name = dir
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned());
        let mark = format!("tmux-{}-{}", std::process::id(), name.unwrap_or_default());
        let files = dir.path().display();
        let script = format!(
            "stty -g > '{files}/stty.before'; {MARK}='{mark}' {command}; echo $? > '{files}/code.tmp'; \
             stty -g > '{files}/stty.after'; mv '{files}/code.tmp' '{files}/code'; exec sleep 120"
        );
        let mut cmd = Command::new("tmux");
        super::scrub(&mut cmd);
        cmd.current_dir(cwd)
            .env("TERM", "xterm-256color")
            .args(["-S"])
            .arg(dir.path().join("socket"))
            .args(["-f", "/dev/null", "new-session", "-d", "-s", "t"])
            .args(["-x", &width.to_string(), "-y", &height.to_string()])
            .args(["sh", "-c", &script]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmux { dir, mark }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .arg("-S")
            .arg(self.dir.path().join("socket"))
            .args(args)
            .output()
            .expect("tmux runs");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The screen as text, one line per row.
    pub fn screen(&self) -> String {
        self.tmux(&["capture-pane", "-p", "-t", "t"])
    }

    /// Waits until the screen satisfies `pred`; returns it.
    #[track_caller]
    pub fn wait_screen(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if pred(&screen) {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "waited {WAIT:?} for {what}; the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits until the screen shows `text`.
    #[track_caller]
    pub fn wait_for(&self, text: &str) -> String {
        self.wait_screen(text, |s| s.contains(text))
    }

    /// Types keys (tmux's names: `Enter`, `Escape`, `Up`, or text).
    pub fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", "t"];
        args.extend_from_slice(keys);
        self.tmux(&args);
    }

    /// Types `text` literally.
    pub fn type_text(&self, text: &str) {
        self.tmux(&["send-keys", "-t", "t", "-l", text]);
    }

    /// Resizes the window.
    pub fn resize(&self, width: u16, height: u16) {
        self.tmux(&[
            "resize-window",
            "-t",
            "t",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
        ]);
    }

    /// Closes the terminal, as closing a terminal window does: tmux hangs
    /// up the pane (SIGHUP to its processes, the terminal gone).
    pub fn close(&self) {
        self.tmux(&["kill-server"]);
    }

    /// A tmux format of the pane: `#{alternate_on}`, `#{pane_title}`.
    pub fn format(&self, format: &str) -> String {
        self.tmux(&["display-message", "-p", "-t", "t", format])
            .trim_end()
            .to_owned()
    }

    /// Waits for the command to end; returns its exit code.
    #[track_caller]
    pub fn wait_code(&self) -> i32 {
        let path = self.file("code");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&path) {
                return text.trim().parse().expect("a number");
            }
            assert!(
                Instant::now() < deadline,
                "the command did not end within {WAIT:?}; the screen:\n{}",
                self.screen()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `stty -g` before and after the command (once it ended).
    pub fn stty(&self) -> (String, String) {
        let read = |name: &str| std::fs::read_to_string(self.file(name)).expect("stty's output");
        (read("stty.before"), read("stty.after"))
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .arg("-S")
            .arg(self.dir.path().join("socket"))
            .arg("kill-server")
            .output();
    }
}
