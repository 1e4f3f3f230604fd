//! How a Procfile command is handed to `/bin/sh -c`, the same way by
//! `start`, `run` and every export.
//!
//! A simple command gets `exec` in front so that the shell is replaced by the
//! program: a stop signal then reaches the program itself instead of a shell
//! that would die and orphan it (watchexec#960). Anything else runs as
//! written.

/// Shell words that `exec` cannot take in front: keywords, and builtins
/// without an executable of the same name.
const NOT_EXECUTABLE: &[&str] = &[
    "!", "{", "}", "[[", "]]", "alias", "bg", "break", "builtin", "case", "cd", "command",
    "continue", "declare", "do", "done", "elif", "else", "esac", "eval", "exec", "exit", "export",
    "fg", "fi", "for", "function", "getopts", "hash", "if", "in", "jobs", "let", "local",
    "readonly", "return", "select", "set", "shift", "source", "then", "time", "times", "trap",
    "type", "typeset", "ulimit", "umask", "unalias", "unset", "until", "wait", "while", ".", ":",
];

/// The script for `/bin/sh -c`: `exec COMMAND` when COMMAND is a simple
/// command, else COMMAND as written.
pub fn script(command: &str) -> String {
    if is_simple(command) {
        format!("exec {command}")
    } else {
        command.to_owned()
    }
}

/// Whether `command` is one plain command that `exec` can prefix. Decided
/// conservatively: a list, pipeline, background job, subshell, group,
/// substitution or line break outside quotes makes it not simple,
/// and so does a first word that is a variable assignment, a comment, a
/// quoted word, or a shell keyword or builtin. Redirections are fine
/// (`exec prog > log 2>&1` keeps them).
pub fn is_simple(command: &str) -> bool {
    let Some(first) = command.split_whitespace().next() else {
        return false;
    };
    if first.contains(['=', '\'', '"', '\\'])
        || first.starts_with('#')
        || NOT_EXECUTABLE.contains(&first)
    {
        return false;
    }
    let mut quote = None;
    let mut prev = ' ';
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some('"'), '`') => return false,
            (Some('"'), '$') if chars.clone().next() == Some('(') => return false,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            // A parameter expansion `${NAME}` / `${NAME:-default}` is one word.
            (None, '$') if chars.clone().next() == Some('{') => {
                if !chars.by_ref().any(|c| c == '}') {
                    return false;
                }
            }
            // `&` only as part of a redirection such as `2>&1`.
            (None, '&') if prev == '>' || prev == '<' => {}
            // A backslash quotes the next character (`it\'s`, `a\;b`), but a
            // line continuation is left to the shell.
            (None, '\\') => {
                if matches!(chars.next(), None | Some('\n' | '\r')) {
                    return false;
                }
            }
            (None, ';' | '&' | '|' | '\n' | '\r' | '(' | ')' | '`' | '{' | '}') => {
                return false;
            }
            (None, _) => {}
        }
        prev = c;
    }
    quote.is_none()
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
            "run 'a ;b' \"c|d\"",
            "a \"b\\\";\" c",
            "bin/web -p \"$PORT\" > log 2>&1",
            "cat < input",
            "a e\\;f it\\'s",
        ] {
            assert!(is_simple(c), "{c}");
            assert_eq!(script(c), format!("exec {c}"));
        }
    }

    #[test]
    fn anything_else_runs_as_written() {
        for c in [
            "a; b",
            "a && b",
            "a | b",
            "a &",
            "(a)",
            "echo $(date)",
            "echo \"$(date)\"",
            "echo `date`",
            "echo \"`date`\"",
            "FOO=1 ./run",
            "cd web && npm start",
            "exec sleep 1",
            "if true; then x; fi",
            "while true",
            "echo 'unterminated",
            "a\\\nb",
            "a\nb",
            "trap 'x' TERM",
            "exit 3",
            "",
            "   ",
            "# comment",
            "'quoted prog' arg",
        ] {
            assert!(!is_simple(c), "{c:?}");
            assert_eq!(script(c), c);
        }
    }
}
