//! Which characters each format can write, and the errors for those it
//! cannot: every value and command an exporter writes is either escaped
//! for the format's grammar or rejected here, with a message naming the
//! variable or the Procfile entry.

use crate::diagnostic::Diagnostic;
use crate::plan::Plan;

/// A character no export writes in a command: a control character other
/// than tab (C0, DEL, C1; a bare `\r` is a line break to Python's and
/// systemd's config readers), a Unicode line or paragraph separator, or
/// U+FFFE/U+FFFF (not characters; YAML and XML refuse them).
pub fn hostile(c: char) -> bool {
    (c.is_control() && c != '\t')
        || matches!(c, '\u{2028}' | '\u{2029}')
        || (c as u32 & 0xFFFE) == 0xFFFE
}

/// A Unicode noncharacter (U+FDD0–U+FDEF, U+xxFFFE, U+xxFFFF), which
/// systemd's UTF-8 check refuses in any value.
pub fn noncharacter(c: char) -> bool {
    let n = c as u32;
    (0xFDD0..=0xFDEF).contains(&n) || (n & 0xFFFE) == 0xFFFE
}

/// `c` for a message: `U+000D`.
pub fn describe(c: char) -> String {
    format!("U+{:04X}", c as u32)
}

/// An error for every Procfile command with a character `refused` by
/// `format`.
pub fn commands(plan: &Plan, format: &str, refused: fn(char) -> bool) -> Vec<Diagnostic> {
    plan.types
        .iter()
        .filter_map(|t| {
            let c = t.command.chars().find(|c| refused(*c))?;
            Some(
                Diagnostic::error(format!(
                    "the command of `{}` contains {}, which the {format} export does not write",
                    t.name,
                    describe(c)
                ))
                .help("remove it from the Procfile line (a stray carriage return, for one)"),
            )
        })
        .collect()
}

/// An error for every env-file value with a character `refused` by
/// `format`, which `why` explains.
pub fn values(plan: &Plan, format: &str, refused: fn(char) -> bool, why: &str) -> Vec<Diagnostic> {
    plan.env
        .pairs()
        .filter_map(|(k, v)| {
            let c = v.chars().find(|c| refused(*c))?;
            Some(Diagnostic::error(format!(
                "the value of {k} contains {}, which {format} cannot hold: {why}",
                describe(c)
            )))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        for c in [
            '\r', '\n', '\0', '\u{7f}', '\u{85}', '\u{9f}', '\u{2028}', '\u{fffe}', '\u{ffff}',
        ] {
            assert!(hostile(c), "{c:?}");
        }
        for c in ['\t', ' ', 'é', '\u{a0}', '\u{fffd}', '\u{10000}'] {
            assert!(!hostile(c), "{c:?}");
        }
        assert!(noncharacter('\u{fdd0}'));
        assert!(noncharacter('\u{1fffe}'));
        assert!(!noncharacter('\u{fffd}'));
        assert_eq!(describe('\r'), "U+000D");
    }
}
