//! `procrun run`: one-off admin processes (migrations, consoles, scripts) in
//! the app's environment.
//!
//! The child gets the inherited environment plus the env files (files win),
//! runs in the app root, and owns stdin, stdout, stderr and the terminal:
//! procrun writes nothing of its own except errors and one line when the
//! child dies from a signal.
//!
//! If COMMAND alone names a Procfile entry, that entry's command runs through
//! `/bin/sh -c` with the `PORT` and `PS` its first instance gets under
//! `start`. Otherwise COMMAND and its arguments are executed as given, found
//! on `PATH`, without a shell.
//!
//! procrun spawns and waits instead of replacing itself with the child
//! (exec), because only a waiting parent can turn a signal death into the
//! exit code 128+n (a shell would, but callers such as CI runners and
//! `make` often see the raw wait status). The child takes procrun's place
//! in its process group, so the terminal's Ctrl-C and a signal sent to the
//! whole group reach it directly, and procrun steps aside (`run/group.rs`);
//! `run/signals.rs` forwards what is sent to procrun itself.
//!
//! Its unit tests are at the end; the code itself is under 400 lines.

mod group;
mod signals;
mod terminal;

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;

use nix::unistd::Pid;
use owo_colors::OwoColorize as _;

use crate::cli::{FormationArgs, PolicyArgs, RunArgs};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::outcome::{Outcome, signal_name};
use crate::procfile::Procfile;
use crate::settings::Settings;

/// What to execute.
#[derive(Debug)]
enum Target {
    /// A Procfile entry: its command line, for `/bin/sh -c`.
    Entry { name: String, script: String },
    /// A program and its arguments, byte for byte.
    Program {
        program: OsString,
        args: Vec<OsString>,
    },
}

/// Everything decided before anything runs.
#[derive(Debug)]
struct Prepared {
    target: Target,
    /// Set on top of the inherited environment.
    env: Vec<(String, String)>,
    cwd: PathBuf,
    /// The Procfile's entries when COMMAND could have been one (for the
    /// "not found" hint).
    entries: Option<(PathBuf, Vec<String>)>,
    /// The Procfile, read for the hint only if COMMAND with arguments is
    /// not found.
    procfile: PathBuf,
}

/// Runs `procrun run`, returning the exit code: the child's, or 128+n after
/// a death from signal n. A command that cannot be started is an error
/// with [`ExitCode::NOT_FOUND`] or [`ExitCode::NOT_EXECUTABLE`]; procrun's
/// own errors (env files, Procfile) are returned before anything runs.
pub fn run(settings: &Settings, args: &RunArgs) -> Result<i32, Error> {
    let prepared = prepare(settings, args)?;
    let color = settings.color_stderr();

    // Before any thread and any handler: it forks its helpers.
    let mut placement = group::Placement::prepare();
    let installed =
        signals::install().map_err(|e| Error::io("cannot set up signal handling", e))?;
    let mut command = match &prepared.target {
        Target::Entry { script, .. } => {
            let mut c = std::process::Command::new("/bin/sh");
            c.arg("-c").arg(script);
            c
        }
        Target::Program { program, args } => {
            let mut c = std::process::Command::new(program);
            c.args(args);
            c
        }
    };
    command
        .envs(prepared.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&prepared.cwd);
    let kind = placement.kind();
    let reset = installed.child_reset(kind == group::Kind::Apart);

    let foreground = terminal::Foreground::remember();
    let spawned = placement.spawn(&mut command, reset);
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => {
            placement.finish();
            return Err(spawn_failure(&prepared, &e));
        }
    };
    // A pid always fits in pid_t; std just hands it out as u32.
    let pid = Pid::from_raw(child.id() as libc::pid_t);
    tracing::debug!("spawned `{}` as {pid} ({kind:?})", shown(&prepared.target));
    let forwarder = installed.forward_to(pid, kind);

    // Wait for the exit without reaping, withdraw the pid from the forwarder,
    // then reap: the forwarder can never signal a recycled pid.
    let waited = placement.wait(pid);
    forwarder.stop();
    if let Err(e) = waited {
        tracing::debug!("waitid failed ({e}); reaping directly");
    }
    let status = child.wait();
    placement.finish();
    foreground.restore();
    let status = status.map_err(|e| Error::io("cannot wait for the command", e))?;
    Ok(exit_code(&prepared.target, status, color))
}

/// Loads the env files and decides what to run. Nothing runs on error.
fn prepare(settings: &Settings, args: &RunArgs) -> Result<Prepared, Error> {
    let (first, rest) = args
        .command
        .split_first()
        .ok_or_else(|| Diagnostic::error("no command given"))?;
    // An empty word names no program: execvp would try every PATH folder
    // itself and the failure would blame the first one.
    if first.is_empty() {
        return Err(Diagnostic::error("the command is empty")
            .help("name a program or a Procfile entry: `procrun run COMMAND [ARGS]…`")
            .into());
    }
    let env = crate::load::env(settings)?;
    let cwd = settings.root.clone();

    // Only COMMAND alone, spelled like a process name, can be an entry; only
    // then is the Procfile read.
    let candidate = rest
        .is_empty()
        .then(|| first.to_str())
        .flatten()
        .filter(|name| !name.is_empty() && name.chars().all(crate::procfile::is_name_char));
    let mut entries = None;
    if let Some(name) = candidate
        && let Some(procfile) = lookup_procfile(settings, name)?
    {
        if procfile.get(name).is_some() {
            // The Procfile and env files are already read: only the rest of
            // the plan's inputs are added.
            let plan = crate::load::build(
                settings,
                Ok(procfile),
                Ok(env),
                &crate::load::Request {
                    formation: &FormationArgs {
                        formation: None,
                        port: args.port,
                    },
                    selected: &[name.to_owned()],
                    policy: &PolicyArgs::default(),
                    timeout: None,
                },
            )?
            .plan;
            let instance = plan
                .instances
                .into_iter()
                .find(|i| i.type_name == name)
                .ok_or_else(|| Diagnostic::error(format!("`{name}` has no instance to run")))?;
            return Ok(Prepared {
                target: Target::Entry {
                    name: name.to_owned(),
                    // `exec` for a simple command, as `start` does, so a
                    // forwarded signal reaches the program, not a shell that
                    // would die and orphan it.
                    script: crate::shell::script(&instance.command),
                },
                env: instance.env,
                cwd: instance.cwd,
                entries: None,
                procfile: settings.procfile.clone(),
            });
        }
        entries = Some((
            procfile.path.clone(),
            procfile.names().map(str::to_owned).collect(),
        ));
    }
    Ok(Prepared {
        target: Target::Program {
            program: first.clone(),
            args: rest.to_vec(),
        },
        env: env
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        cwd,
        entries,
        procfile: settings.procfile.clone(),
    })
}

/// The Procfile, when it exists and can answer whether `name` is an entry.
///
/// No Procfile: `None` (run the command). A Procfile that cannot be read or
/// parsed is an error only if it could matter: if it is unreadable, or if one
/// of its lines declares `name`. A broken Procfile that never mentions `name`
/// does not stop `procrun run name` (the lookup is logged with `-v`).
fn lookup_procfile(settings: &Settings, name: &str) -> Result<Option<Procfile>, Error> {
    let path = &settings.procfile;
    let source = path.display().to_string();
    let bytes = match crate::procfile::read_input(path) {
        Ok(bytes) => bytes,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
            ) =>
        {
            tracing::debug!("no Procfile at `{source}`: `{name}` is a command");
            return Ok(None);
        }
        Err(e) => {
            return Err(Diagnostic::error(format!(
                "cannot read Procfile `{source}` to see whether `{name}` is one of its entries: {}",
                crate::error::io_reason(&e)
            ))
            .help("a COMMAND with arguments or containing `/` never looks at the Procfile")
            .into());
        }
    };
    let parsed = crate::procfile::decode_utf8(&source, &bytes)
        .map_err(|d| vec![d])
        .and_then(|text| crate::procfile::parse(path, text));
    match parsed {
        Ok(procfile) => Ok(Some(procfile)),
        Err(errors) if declares(&bytes, name) => Err(errors.into()),
        Err(_) => {
            tracing::info!(
                "`{source}` has errors but declares no `{name}`: running it as a command"
            );
            Ok(None)
        }
    }
}

/// Whether a line of a Procfile, however broken the rest, declares `name`
/// (`name:` after optional blanks).
fn declares(procfile: &[u8], name: &str) -> bool {
    let procfile = procfile.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(procfile);
    procfile.split(|b| *b == b'\n').any(|line| {
        let line = line.trim_ascii_start();
        line.strip_prefix(name.as_bytes())
            .is_some_and(|rest| rest.trim_ascii_start().starts_with(b":"))
    })
}

/// The exit code for the child's status, saying so on stderr when it died
/// from a signal (except SIGINT, which the user just pressed, and SIGPIPE,
/// the normal end of `procrun run cmd | head`).
fn exit_code(target: &Target, status: ExitStatus, color: bool) -> i32 {
    let outcome = Outcome::from_status(status);
    if let Outcome::Killed(signal) = outcome
        && signal != libc::SIGINT
        && signal != libc::SIGPIPE
    {
        let core = if status.core_dumped() {
            " (core dumped)"
        } else {
            ""
        };
        let message = format!(
            "`{}` was terminated by {}{core}: exit code {}",
            shown(target),
            signal_name(signal),
            outcome.exit_code()
        );
        let prefix = "procrun:";
        if color {
            stderr_println!("{} {message}", prefix.bold());
        } else {
            stderr_println!("{prefix} {message}");
        }
    }
    outcome.exit_code()
}

/// How the command is named in messages.
fn shown(target: &Target) -> String {
    match target {
        Target::Entry { name, .. } => name.clone(),
        Target::Program { program, .. } => program.to_string_lossy().into_owned(),
    }
}

/// The error, with its exit code, for a command that could not be started.
fn spawn_failure(prepared: &Prepared, e: &std::io::Error) -> Error {
    let shown = shown(&prepared.target);
    let reason = crate::error::io_reason(e);
    let Target::Program { program, .. } = &prepared.target else {
        return Error::with_code(
            Diagnostic::error(format!("cannot start `/bin/sh` for `{shown}`: {reason}")),
            ExitCode::NOT_EXECUTABLE,
        );
    };
    let path_var = prepared
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| OsString::from(v))
        .or_else(|| std::env::var_os("PATH"))
        .unwrap_or_default();
    let found = resolve(program, &path_var, &prepared.cwd);
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            let diagnostic = if let Some(file) = found.filter(|f| f.is_file()) {
                // The file exists, so the missing piece is its interpreter.
                Diagnostic::error(format!(
                    "cannot run `{shown}`: `{}` exists but its interpreter (the `#!` line) was not found",
                    file.display()
                ))
            } else if program.as_bytes().contains(&b'/') {
                Diagnostic::error(format!("cannot run `{shown}`: no such file"))
            } else {
                let d = Diagnostic::error(format!("command not found: `{shown}`"));
                d.help(not_found_help(prepared, &shown))
            };
            Error::with_code(diagnostic, ExitCode::NOT_FOUND)
        }
        std::io::ErrorKind::PermissionDenied => {
            let what = match found.as_deref().map(std::fs::metadata) {
                Some(Ok(m)) if m.is_dir() => "is a directory",
                _ => "is not executable (permission denied)",
            };
            Error::with_code(
                Diagnostic::error(format!("cannot run `{shown}`: it {what}")),
                ExitCode::NOT_EXECUTABLE,
            )
        }
        _ => Error::with_code(
            Diagnostic::error(format!("cannot run `{shown}`: {reason}")),
            ExitCode::NOT_EXECUTABLE,
        ),
    }
}

/// Why `shown`, not found on PATH, did not run, pointing at the Procfile's
/// entries: the closest one, or the entry itself when it came with
/// arguments (an entry runs only by its name alone).
fn not_found_help(prepared: &Prepared, shown: &str) -> String {
    let with_args = matches!(&prepared.target, Target::Program { args, .. } if !args.is_empty());
    let entries = prepared.entries.clone().or_else(|| {
        // Read only now, and quietly: the hint must not fail.
        let named = with_args && shown.chars().all(crate::procfile::is_name_char);
        let procfile = named.then(|| crate::procfile::load(&prepared.procfile).ok())??;
        Some((
            procfile.path.clone(),
            procfile.names().map(str::to_owned).collect(),
        ))
    });
    let Some((procfile, names)) = entries else {
        return format!("`{shown}` is not on PATH");
    };
    let procfile = procfile.display();
    if with_args && names.iter().any(|n| n == shown) {
        return format!(
            "`{shown}` is not on PATH but is an entry of `{procfile}`, which `run` runs only by its name alone (an entry's command takes no arguments): `procrun run {shown}`, or `procrun start {shown}` to supervise it"
        );
    }
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let closest = match crate::diagnostic::suggest(shown, &refs) {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    };
    format!(
        "`{shown}` is not on PATH and not an entry of `{procfile}` (entries: {}){closest}",
        names.join(", ")
    )
}

/// Where `program` would be found: relative to `cwd` if it contains a `/`,
/// else in `PATH`. Only used to explain a failure.
fn resolve(program: &OsStr, path_var: &OsStr, cwd: &Path) -> Option<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        let file = cwd.join(program);
        return file.symlink_metadata().is_ok().then_some(file);
    }
    std::env::split_paths(path_var)
        .map(|dir| cwd.join(dir).join(program))
        .find(|file| file.symlink_metadata().is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declares_finds_entries_in_broken_procfiles() {
        let text = b"\xEF\xBB\xBFweb: run\n  worker :go\nthis line is broken\n# clock: no\n";
        assert!(declares(text, "web"));
        assert!(declares(text, "worker"));
        assert!(!declares(text, "clock"));
        assert!(!declares(text, "we"));
        assert!(!declares(text, "this"));
    }

    #[test]
    fn resolve_uses_path_and_cwd() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("tool"), "").expect("write");
        let path = std::env::join_paths([dir.path()]).expect("join");
        assert_eq!(
            resolve(OsStr::new("tool"), &path, Path::new("/")),
            Some(dir.path().join("tool"))
        );
        assert_eq!(
            resolve(OsStr::new("./tool"), OsStr::new(""), dir.path()),
            Some(dir.path().join("./tool"))
        );
        assert_eq!(resolve(OsStr::new("nope"), &path, Path::new("/")), None);
    }
}
