//! procrun's exit codes, in one place: the named constants the code uses,
//! and the table that documents them ([`TABLE`], shown by `--help`, the
//! manual page and the README).

/// The exit-code table, as Markdown. Written once here; [`ExitCode`]'s
/// documentation, [`TABLE`] and [`exit_code_help`] all come from it.
macro_rules! table {
    () => {
        "| code | meaning |
|---|---|
| 0 | success; `start`: the process whose end stopped the app exited with 0, or every process ended and each may die, or procrun's stdout was closed (`procrun start \\| head`) |
| 1 | procrun itself failed while running (an I/O error writing an export or `start`'s output, e.g. a full disk; its runtime or signal handlers could not start) |
| 2 | invalid input, and nothing was started: an unknown flag or flag value, a bad Procfile, env file, `procrun.toml`, formation or port |
| N | `start`: the exit code of the process whose end stopped the app (one that may not die, or that failed after its restarts), or, when every process may die, of the first that failed; `run`: the command's exit code |
| 126 | `run`: the command cannot be executed (not executable, a directory) |
| 127 | `start`: that process could not be started; `run`: the command was not found |
| 128+N | `start`: that process died from signal N, or procrun was stopped by signal N (130 after Ctrl-C, 143 after SIGTERM, 129 after SIGHUP); `run`: the command died from signal N |
"
    };
}

/// The exit-code table as Markdown, e.g. for the README.
pub const TABLE: &str = table!();

/// procrun's exit codes. Codes a process chose (N) and signal deaths
/// (`SIGNAL_BASE` + N) are passed on as shells do.
///
#[doc = table!()]
#[derive(Clone, Copy, Debug)]
pub enum ExitCode {}

impl ExitCode {
    /// Success.
    pub const OK: i32 = 0;
    /// procrun itself failed while running (an I/O error).
    pub const FAILURE: i32 = 1;
    /// Invalid usage or configuration: a bad flag, Procfile, env file,
    /// formation or port.
    pub const USAGE: i32 = 2;
    /// `run`: the command could not be executed (permission denied, a
    /// directory, a bad executable), as in POSIX shells.
    pub const NOT_EXECUTABLE: i32 = 126;
    /// `run`: the command was not found, as in POSIX shells; `start`: an
    /// instance could not be started.
    pub const NOT_FOUND: i32 = 127;
    /// A death from signal N is reported as `SIGNAL_BASE + N`, as shells do.
    pub const SIGNAL_BASE: i32 = 128;
}

/// The table as plain text, for clap's long help and so the manual page:
/// an `Exit status:` heading, then one aligned line per code.
pub fn exit_code_help() -> String {
    use std::fmt::Write as _;
    let rows: Vec<(&str, String)> = TABLE
        .lines()
        .skip(2)
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim_matches('|').split(" | ").collect();
            match cells.as_slice() {
                [code, meaning] => Some((
                    code.trim(),
                    meaning.trim().replace('`', "").replace("\\|", "|"),
                )),
                _ => None,
            }
        })
        .collect();
    let width = rows.iter().map(|(code, _)| code.len()).max().unwrap_or(0);
    let mut text = String::from("Exit status:\n");
    for (code, meaning) in rows {
        let _ = writeln!(text, "  {code:<width$}  {meaning}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_constant_is_in_the_table() {
        for code in [
            ExitCode::OK,
            ExitCode::FAILURE,
            ExitCode::USAGE,
            ExitCode::NOT_EXECUTABLE,
            ExitCode::NOT_FOUND,
        ] {
            assert!(TABLE.contains(&format!("\n| {code} | ")), "{code}");
        }
        assert!(TABLE.contains(&format!("\n| {}+N | ", ExitCode::SIGNAL_BASE)));
    }

    #[test]
    fn help_has_one_line_per_row() {
        let help = exit_code_help();
        assert_eq!(
            help.lines().count(),
            TABLE.lines().count() - 2 + 1,
            "{help}"
        );
        assert!(help.contains("\n  0      success; start: "), "{help}");
        assert!(help.contains("(procrun start | head)"), "{help}");
        assert!(
            help.contains("\n  128+N  start: that process died"),
            "{help}"
        );
        assert!(!help.contains('`'), "{help}");
    }
}
