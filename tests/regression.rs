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
