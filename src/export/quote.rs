//! Quoting shared by several formats: POSIX shell words and YAML strings.
//! Quoting that only one format needs (systemd's C-style words, supervisord's
//! `%%`, XML escapes) lives with that format.
//!
//! Values from env files are data, never configuration or code, so every
//! helper here is tested with hostile values.

pub use crate::shell::script as shell_script;

/// `value` as one POSIX shell word: single-quoted, with `'` written `'\''`.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// `value` as a shell word, quoted only when it needs to be.
pub fn shell_word(value: &str) -> String {
    if !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-+:@,=".contains(c))
    {
        value.to_owned()
    } else {
        shell_quote(value)
    }
}

/// `value` as a YAML double-quoted scalar: `\\`, `"` and every control or
/// line-breaking character escaped, so that a value can never end the
/// string, start a new key or change indentation.
pub fn yaml_quote(value: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // YAML 1.2 cannot hold U+FFFE/U+FFFF raw (not printable).
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
                ) =>
            {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quoting_round_trips_through_sh() {
        for value in [
            "",
            "it's",
            "a'b'c",
            "$HOME `id` $(id) \\ \" ; # %",
            "line1\nline2",
        ] {
            let out = std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(format!("printf %s {}", shell_quote(value)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), value);
        }
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("out/systemd"), "out/systemd");
        assert_eq!(shell_word("my dir"), "'my dir'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn yaml_quoting() {
        assert_eq!(yaml_quote("plain"), "\"plain\"");
        assert_eq!(
            yaml_quote("a\"b\\c\nd: e\u{1b}\u{2028}"),
            r#""a\"b\\c\nd: e\u001b\u2028""#
        );
    }
}
