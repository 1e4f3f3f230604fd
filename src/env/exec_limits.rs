//! What the kernel's `execve` refuses: an argument or environment string
//! that is too long, or too many bytes of them in all. Such a Procfile and
//! env files pass every other check, then every instance fails with
//! `E2BIG` ("Argument list too long"); [`exec_size_warnings`] says so
//! beforehand, pointing at the variable or the entry.

use std::ffi::OsString;

use crate::diagnostic::{Diagnostic, Location};
use crate::procfile::Procfile;

use super::EnvSet;

/// The sizes `execve` accepts on this system.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecLimits {
    /// Most bytes of arguments and environment together, counting each
    /// string's NUL and its pointer: `sysconf(_SC_ARG_MAX)` (on Linux a
    /// quarter of the stack limit, at least 128 KiB).
    pub arg_max: usize,
    /// Longest single argument or `KEY=value` string, its NUL included:
    /// Linux's `MAX_ARG_STRLEN`, 32 pages (128 KiB with 4 KiB pages).
    /// `None` where there is no such limit of its own.
    pub max_arg_strlen: Option<usize>,
}

impl ExecLimits {
    /// This system's limits. An `ARG_MAX` that cannot be read is taken as
    /// no limit (nothing is reported rather than something wrong).
    pub fn current() -> ExecLimits {
        // SAFETY: sysconf only reads a system value.
        let arg_max = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
        // SAFETY: as above.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let arg_max = usize::try_from(arg_max)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(usize::MAX);
        let max_arg_strlen = (cfg!(any(target_os = "linux", target_os = "android")))
            .then(|| usize::try_from(page).ok().filter(|&p| p > 0))
            .flatten()
            .map(|page| 32 * page);
        ExecLimits {
            arg_max,
            max_arg_strlen,
        }
    }
}

/// Bytes an `execve` string takes: its text and NUL, and its pointer.
fn cost(len: usize) -> usize {
    len + 1 + std::mem::size_of::<usize>()
}

/// Size in KiB, rounded up, for messages.
fn kib(bytes: usize) -> String {
    format!("{} KiB", bytes.div_ceil(1024))
}

/// Warnings about what `execve` would refuse when the entries of `procfile`
/// (if given) run with `env` on top of `inherited` (procrun's own
/// environment): a variable or a command longer than the per-string limit,
/// and an entry whose command and environment together exceed `ARG_MAX`.
/// Each points at the variable's definition or the entry's line. Pure:
/// the caller passes the environment and [`ExecLimits::current`].
pub fn exec_size_warnings(
    procfile: Option<&Procfile>,
    env: &EnvSet,
    inherited: &[(OsString, OsString)],
    limits: &ExecLimits,
) -> Vec<Diagnostic> {
    let mut warnings = Vec::new();
    let strlen = limits.max_arg_strlen.unwrap_or(usize::MAX);
    for (key, var) in &env.vars {
        let len = key.len() + 1 + var.value.len() + 1;
        if len > strlen {
            warnings.push(
                Diagnostic::warning(format!(
                    "`{key}` is {} long: the system refuses to start a program with an environment string over {} (E2BIG)",
                    kib(len),
                    kib(strlen)
                ))
                .at(Location::line(&var.source, var.line))
                .help("pass large data in a file and put its path in the variable"),
            );
        }
    }

    // The environment every instance gets: the inherited one, overridden by
    // the env files, plus PORT and PS (at their longest).
    let inherited_bytes: usize = inherited
        .iter()
        .filter(|(k, _)| k.to_str().is_none_or(|k| !env.vars.contains_key(k)))
        .map(|(k, v)| cost(k.len() + 1 + v.len()))
        .sum();
    let files_bytes: usize = env
        .vars
        .iter()
        .map(|(k, v)| cost(k.len() + 1 + v.value.len()))
        .sum();
    let env_bytes = inherited_bytes + files_bytes + cost("PORT=65535".len());
    let Some(procfile) = procfile else {
        if env_bytes > limits.arg_max {
            warnings.push(total_warning(env, env_bytes, limits));
        }
        return warnings;
    };
    let source = procfile.path.display().to_string();
    let mut over = Vec::new();
    for entry in &procfile.entries {
        let script = crate::shell::script(&entry.command);
        let here = Location::line(&source, entry.line);
        if script.len() + 1 > strlen {
            warnings.push(
                Diagnostic::warning(format!(
                    "the command of `{}` is {} long: the system refuses an argument over {} (E2BIG)",
                    entry.name,
                    kib(script.len() + 1),
                    kib(strlen)
                ))
                .at(here.clone())
                .help("move the command into a script and run that"),
            );
        }
        // `/bin/sh -c SCRIPT`, and PS=NAME.NNNNN.
        let args = cost("/bin/sh".len()) + cost("-c".len()) + cost(script.len());
        let ps = cost("PS=".len() + entry.name.len() + ".10000".len());
        let total = env_bytes + ps + args;
        if total > limits.arg_max {
            over.push((entry, here, total));
        }
    }
    if !over.is_empty() && env_bytes > limits.arg_max {
        // The environment alone is too large: one warning, not one per entry.
        warnings.push(total_warning(env, env_bytes, limits));
    } else {
        for (entry, here, total) in over {
            warnings.push(
                Diagnostic::warning(format!(
                    "`{}` would start with {} of arguments and environment: the system takes at most {} (ARG_MAX, E2BIG)",
                    entry.name,
                    kib(total),
                    kib(limits.arg_max)
                ))
                .at(here)
                .help("shorten the command or the environment"),
            );
        }
    }
    warnings
}

/// The environment alone exceeds `ARG_MAX`: pointed at its largest
/// variable from the env files.
fn total_warning(env: &EnvSet, env_bytes: usize, limits: &ExecLimits) -> Diagnostic {
    let d = Diagnostic::warning(format!(
        "the environment of every process would be {}: the system takes at most {} of arguments and environment (ARG_MAX, E2BIG)",
        kib(env_bytes),
        kib(limits.arg_max)
    ))
    .help("pass large data in files and put their paths in variables");
    match env.vars.iter().max_by_key(|(_, v)| v.value.len()) {
        Some((key, var)) => d
            .at(Location::line(&var.source, var.line))
            .note(format!("the largest variable is `{key}`"), None),
        None => d,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn limits(arg_max: usize, strlen: usize) -> ExecLimits {
        ExecLimits {
            arg_max,
            max_arg_strlen: Some(strlen),
        }
    }

    fn env(text: &str) -> EnvSet {
        crate::env::parse(".env", text, &|_| None).expect("parses")
    }

    fn procfile(text: &str) -> Procfile {
        crate::procfile::parse(Path::new("Procfile"), text).expect("parses")
    }

    fn messages(d: &[Diagnostic]) -> Vec<String> {
        d.iter().map(|d| d.to_string()).collect()
    }

    #[test]
    fn nothing_to_say_about_ordinary_sizes() {
        let w = exec_size_warnings(
            Some(&procfile("web: run\n")),
            &env("A=1\n"),
            &[("HOME".into(), "/root".into())],
            &ExecLimits::current(),
        );
        assert!(w.is_empty(), "{:?}", messages(&w));
    }

    #[test]
    fn a_long_variable_is_located() {
        let text = format!("A=1\nBIG={}\n", "x".repeat(200));
        let w = exec_size_warnings(None, &env(&text), &[], &limits(1 << 20, 128));
        assert_eq!(w.len(), 1, "{:?}", messages(&w));
        let shown = w[0].to_string();
        assert!(shown.contains("`BIG` is 1 KiB long"), "{shown}");
        assert!(shown.contains("--> .env:2\n"), "{shown}");
    }

    #[test]
    fn a_long_command_is_located() {
        let text = format!("web: ok\nworker: echo {}\n", "y".repeat(300));
        let w = exec_size_warnings(Some(&procfile(&text)), &env(""), &[], &limits(1 << 20, 256));
        assert_eq!(w.len(), 1, "{:?}", messages(&w));
        assert!(w[0].to_string().contains("Procfile:2"), "{}", w[0]);
        assert!(w[0].message.contains("the command of `worker`"));
    }

    #[test]
    fn too_much_in_all_is_one_warning_at_the_largest_variable() {
        let text = format!("A={}\nB={}\n", "a".repeat(100), "b".repeat(900));
        let pf = procfile("web: x\nworker: y\n");
        let w = exec_size_warnings(Some(&pf), &env(&text), &[], &limits(1000, 1 << 20));
        assert_eq!(w.len(), 1, "{:?}", messages(&w));
        assert!(w[0].to_string().contains(".env:2"), "{}", w[0]);
    }

    #[test]
    fn inherited_variables_count_unless_overridden() {
        let pf = procfile("web: x\n");
        let big: Vec<(OsString, OsString)> = vec![("X".into(), "z".repeat(2000).into())];
        let w = exec_size_warnings(Some(&pf), &env("A=1\n"), &big, &limits(1500, 1 << 20));
        assert_eq!(w.len(), 1, "{:?}", messages(&w));
        let w = exec_size_warnings(Some(&pf), &env("X=1\n"), &big, &limits(1500, 1 << 20));
        assert!(w.is_empty(), "{:?}", messages(&w));
    }
}
