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
/// *thread* exits (pitfall 9).
pub fn spawn(spec: &ProcessSpec, ctx: SpawnContext) -> std::io::Result<Child> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(shell_command(&spec.command))
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(false);
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

/// The script given to `sh -c`: `exec COMMAND` when COMMAND is a simple
/// command, so the process procrun signals is the program itself rather
/// than a shell that would die and orphan it (pitfall 2, watchexec#960).
pub fn shell_command(command: &str) -> String {
    if is_simple(command) {
        format!("exec {command}")
    } else {
        command.to_owned()
    }
}

/// Shell words that `exec` cannot take in front: keywords and builtins
/// without an executable of the same name.
const NOT_EXECUTABLE: &[&str] = &[
    "!", "{", "}", "[[", "]]", "alias", "bg", "break", "builtin", "case", "cd", "command",
    "continue", "declare", "do", "done", "elif", "else", "esac", "eval", "exec", "exit", "export",
    "fg", "fi", "for", "function", "getopts", "hash", "if", "in", "jobs", "let", "local",
    "readonly", "return", "select", "set", "shift", "source", "then", "time", "times", "trap",
    "type", "typeset", "ulimit", "umask", "unalias", "unset", "until", "wait", "while", ".", ":",
];

/// Whether `command` is one plain command that `exec` can prefix. Decided
/// conservatively: any character that could make a list, pipeline,
/// subshell, redirection, substitution or escape makes it not simple, and
/// so does a first word that is a variable assignment or a shell keyword or
/// builtin.
pub fn is_simple(command: &str) -> bool {
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                ' ' | '\t'
                    | '_'
                    | '-'
                    | '.'
                    | '/'
                    | '='
                    | ':'
                    | ','
                    | '+'
                    | '@'
                    | '%'
                    | '$'
                    | '{'
                    | '}'
                    | '\''
                    | '"'
                    | '~'
                    | '^'
                    | '['
                    | ']'
                    | '*'
                    | '?'
            )
    };
    if !command.chars().all(allowed) {
        return false;
    }
    // Quotes must pair up, or the shell would read on; keep to the easy case.
    if !command.matches('\'').count().is_multiple_of(2)
        || !command.matches('"').count().is_multiple_of(2)
    {
        return false;
    }
    let Some(first) = command.split_whitespace().next() else {
        return false;
    };
    !first.contains('=') && !first.contains(['\'', '"']) && !NOT_EXECUTABLE.contains(&first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_commands_get_exec() {
        for c in [
            "python3 -u web.py",
            "bundle exec puma -p $PORT",
            "node server.js --port=${PORT:-5000}",
            "sleep 100",
            "ruby -e 'puts 1'",
            "./bin/worker",
        ] {
            assert!(is_simple(c), "{c}");
            assert_eq!(shell_command(c), format!("exec {c}"));
        }
    }

    #[test]
    fn anything_else_runs_as_written() {
        for c in [
            "a; b",
            "a && b",
            "a | b",
            "a > log",
            "a &",
            "(a)",
            "echo $(date)",
            "echo `date`",
            "FOO=1 ./run",
            "cd web && npm start",
            "exec sleep 1",
            "if true; then x; fi",
            "while true",
            "echo 'unterminated",
            "a\\\nb",
            "a\nb",
            "trap 'x' TERM",
            "",
            "   ",
            "# comment",
        ] {
            assert!(!is_simple(c), "{c:?}");
            assert_eq!(shell_command(c), c);
        }
    }
}
