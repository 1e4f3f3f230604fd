//! How a Procfile command is handed to `/bin/sh -c`, the same way by
//! `start`, `run` and every export.
//!
//! A simple command gets `exec` in front so that the shell is replaced by the
//! program: a stop signal then reaches the program itself instead of a shell
//! that would die and orphan it (watchexec#960). Leading variable
//! assignments stay in front (`RAILS_ENV=x exec sidekiq` is POSIX sh: the
//! variables are set for the program). Anything else runs as written.

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
/// command (`A=1 B=2 exec PROGRAM…` after leading assignments), else
/// COMMAND as written.
pub fn script(command: &str) -> String {
    let (assignments, rest) = split_assignments(command);
    if is_simple(rest) {
        format!("{assignments}exec {rest}")
    } else {
        command.to_owned()
    }
}

/// The variables a command assigns in front of its program
/// (`PORT=3000 bundle exec puma` → `[("PORT", "3000")]`), as far as
/// [`script`] keeps them in front of `exec`.
pub fn leading_assignments(command: &str) -> Vec<(&str, &str)> {
    let (assignments, _) = split_assignments(command);
    assignments
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .collect()
}

/// Splits off the leading `NAME=value` words (each followed by a blank)
/// whose value holds nothing the shell would expand or quote: those can
/// stay in front of `exec` unchanged. Returns them with their blanks, and
/// the rest.
fn split_assignments(command: &str) -> (&str, &str) {
    // The shell separates words by blanks (space and tab) only.
    let blank = |c: char| c == ' ' || c == '\t';
    let mut end = 0;
    loop {
        let rest = &command[end..];
        let start = end + (rest.len() - rest.trim_start_matches(blank).len());
        let word_len = command[start..]
            .find(blank)
            .unwrap_or(command.len() - start);
        let word = &command[start..start + word_len];
        let after = start + word_len;
        let is_assignment = word.split_once('=').is_some_and(|(name, value)| {
            is_name(name)
                && !value.contains([
                    '\'', '"', '\\', '$', '`', ';', '&', '|', '(', ')', '<', '>', '#', '\n', '\r',
                ])
        });
        // An assignment alone (`FOO=1`) is not a command to exec.
        if !is_assignment || after >= command.len() {
            return (&command[..end], &command[end..]);
        }
        // The blank after the word is one byte (space or tab).
        end = after + 1;
    }
}

/// A shell variable name: a letter or `_`, then letters, digits or `_`.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
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

/// Variables the shell sets itself (POSIX sh, and bash when a command
/// starts one): a reference to one is never "unset".
const SET_BY_THE_SHELL: &[&str] = &[
    "IFS",
    "PPID",
    "PWD",
    "OLDPWD",
    "OPTIND",
    "OPTARG",
    "LINENO",
    "PS1",
    "PS2",
    "PS4",
    "RANDOM",
    "SECONDS",
    "UID",
    "EUID",
    "SHLVL",
    "BASH",
    "BASHPID",
    "BASH_VERSION",
    "BASH_SOURCE",
    "HOSTNAME",
    "REPLY",
    "PIPESTATUS",
    "FUNCNAME",
    "LINES",
    "COLUMNS",
];

/// A `$NAME` or `${NAME}` in a command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VariableReference<'a> {
    /// The variable.
    pub name: &'a str,
    /// Where the reference is in the command (bytes, from its `$`).
    pub span: std::ops::Range<usize>,
}

/// The plain `$NAME` and `${NAME}` references of `command` that expand to
/// nothing when NAME is unset, each name once: outside single quotes and
/// comments, not escaped, without an operator (`${NAME:-x}` handles the
/// unset case itself). Left out, conservatively: names the shell sets, and
/// names that appear in the command other than as a reference (`X=1; echo
/// $X`, `for f in *; do echo $f; done`, `read line`), which the command may
/// set itself.
pub fn unset_sensitive_references(command: &str) -> Vec<VariableReference<'_>> {
    let bytes = command.as_bytes();
    let is_name_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut found: Vec<VariableReference<'_>> = Vec::new();
    let mut in_double = false;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'\'' if !in_double => {
                i = command[i + 1..]
                    .find('\'')
                    .map_or(bytes.len(), |j| i + j + 2);
            }
            b'"' => {
                in_double = !in_double;
                i += 1;
            }
            b'#' if !in_double && (i == 0 || bytes[i - 1].is_ascii_whitespace()) => break,
            b'$' => {
                let rest = &command[i + 1..];
                let (name, len) = if let Some(braced) = rest.strip_prefix('{') {
                    match braced.find('}') {
                        Some(end) => (&braced[..end], end + 3),
                        None => break,
                    }
                } else {
                    let end = rest
                        .bytes()
                        .position(|b| !is_name_byte(b))
                        .unwrap_or(rest.len());
                    (&rest[..end], end + 1)
                };
                if is_name(name) && !found.iter().any(|r| r.name == name) {
                    found.push(VariableReference {
                        name,
                        span: i..i + len,
                    });
                }
                i += len.max(1);
            }
            _ => i += 1,
        }
    }
    // Every run of name characters not right after a `$` or `${`.
    let mut bare = std::collections::HashSet::new();
    let mut j = 0;
    while j < bytes.len() {
        if !is_name_byte(bytes[j]) {
            j += 1;
            continue;
        }
        let start = j;
        while j < bytes.len() && is_name_byte(bytes[j]) {
            j += 1;
        }
        let referenced = command[..start].ends_with('$') || command[..start].ends_with("${");
        if !referenced {
            bare.insert(&command[start..j]);
        }
    }
    found.retain(|r| !bare.contains(r.name) && !SET_BY_THE_SHELL.contains(&r.name));
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_that_an_unset_variable_empties() {
        fn names(c: &str) -> Vec<&str> {
            unset_sensitive_references(c)
                .into_iter()
                .map(|r| r.name)
                .collect()
        }
        assert_eq!(
            unset_sensitive_references("rails s -e $RAILS_ENV"),
            [VariableReference {
                name: "RAILS_ENV",
                span: 11..21
            }]
        );
        assert_eq!(
            unset_sensitive_references("a \"${A}\" $A"),
            [VariableReference {
                name: "A",
                span: 3..7
            }]
        );
        assert_eq!(
            names("x $A ${B:-d} ${#C} $1 $@ $$ ${D%x} \\$E '$F' \"$G\""),
            ["A", "G"]
        );
        assert_eq!(names("awk '{print $NF}' | sed \"s/$H/x/\" # $I"), ["H"]);
        assert_eq!(
            names("X=1; echo $X $Y; for f in *; do echo $f; done"),
            ["Y"]
        );
        assert_eq!(names("echo $PWD $IFS $RANDOM ${open"), Vec::<&str>::new());
        assert_eq!(names("echo $é $_ok"), ["_ok"]);
    }

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
    fn leading_assignments_stay_in_front_of_exec() {
        assert_eq!(script("FOO=1 ./run"), "FOO=1 exec ./run");
        assert_eq!(
            script("PORT=3000 RAILS_ENV=production bundle exec puma"),
            "PORT=3000 RAILS_ENV=production exec bundle exec puma"
        );
        assert_eq!(script("  A=1   b c"), "  A=1 exec   b c");
        assert_eq!(
            leading_assignments("PORT=3000 RAILS_ENV=x bundle exec puma"),
            [("PORT", "3000"), ("RAILS_ENV", "x")]
        );
        assert_eq!(leading_assignments("bundle exec puma"), []);
        assert_eq!(leading_assignments("A=1"), []);
        // Only blanks separate words; other white space is part of one.
        assert_eq!(script("A=1\u{3000}b"), "A=1\u{3000}b");
        assert_eq!(script("A=\u{e9}\u{3000} b"), "A=\u{e9}\u{3000} exec b");
        assert_eq!(script("A=1\tb"), "A=1\texec b");
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
            "FOO='a b' ./run",
            "FOO=$(x) ./run",
            "FOO=1",
            "FOO=1 cd x",
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
