//! Regression tests: each reproduces one bug that was fixed, through the
//! real binary, and is named after what it reproduces.

mod support;

use support::Test;

/// An unquoted `${U:-x #y}`: the ` #` starts a comment, so the reference
/// has no `}` and is kept as written. The parser kept its expansion too,
/// giving `x #y${U:-x`.
#[test]
fn unquoted_reference_cut_by_a_comment_is_kept_once() {
    Test::new()
        .procfile("web: true\n")
        .dotenv("B=set\nA=${U:-x #y}\nC=${B:-x #y}\n")
        .env_remove("U")
        .args(["run", "sh", "-c", "printf '%s|%s\\n' \"$A\" \"$C\""])
        .code(0)
        .stdout("${U:-x|${B:-x\n")
        .run();
}

/// A NUL byte in a Procfile command: `check` said the Procfile was valid and
/// `start` failed with 127 (no command can hold a NUL).
#[test]
fn nul_in_a_procfile_command_is_rejected_by_check() {
    Test::new()
        .procfile("web: echo a\0b\n")
        .args(["check"])
        .code(2)
        .stderr_has("NUL character")
        .stderr_has("Procfile:1:12")
        .run();
}

/// A lone carriage return inside a Procfile line (old Mac line ends): the
/// shell would take it as part of a word.
#[test]
fn lone_carriage_return_in_a_procfile_line_is_rejected() {
    Test::new()
        .procfile("web: echo a\rworker: b\n")
        .args(["check"])
        .code(2)
        .stderr_has("carriage return")
        .stderr_has("Procfile:1:12")
        .run();
}

/// A NUL in an env-file value: no environment variable can hold one.
#[test]
fn nul_in_an_env_value_is_rejected_by_check() {
    Test::new()
        .procfile("web: true\n")
        .dotenv("A=\"x\0y\"\n")
        .args(["check"])
        .code(2)
        .stderr_has("the value of `A` contains a NUL")
        .stderr_has(".env:1:5")
        .run();
}
