//! Names the formats derive from the Procfile and the env files: which
//! they cannot use, and which would collide once a format normalises them.

use crate::diagnostic::Diagnostic;
use crate::plan::Plan;

/// An error for every two process types whose names `normalise` makes
/// equal: the format would give both the same `what` (their units,
/// selectors or files would overwrite or select each other).
pub fn collisions(plan: &Plan, what: &str, normalise: impl Fn(&str) -> String) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    let mut seen: Vec<(String, &str)> = Vec::new();
    for t in &plan.types {
        let name = normalise(&t.name);
        if let Some((_, other)) = seen.iter().find(|(n, _)| *n == name) {
            found.push(
                Diagnostic::error(format!(
                    "process types `{other}` and `{}` would both be {what} `{name}`",
                    t.name
                ))
                .help("rename one of them in the Procfile"),
            );
        } else {
            seen.push((name, &t.name));
        }
    }
    found
}

/// An error for every env-file key that is not a shell variable name
/// (letters, digits, `_`, not starting with a digit), for formats that
/// cannot set any other.
pub fn variable_names(plan: &Plan, who: &str) -> Vec<Diagnostic> {
    plan.env
        .pairs()
        .filter(|(k, _)| !is_shell_name(k))
        .map(|(k, _)| {
            Diagnostic::error(format!(
                "`{k}` is not a shell variable name, so {who} cannot set it"
            ))
            .help("use letters, digits and `_`, not starting with a digit")
        })
        .collect()
}

fn is_shell_name(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_names() {
        assert!(is_shell_name("DATABASE_URL"));
        assert!(is_shell_name("_x1"));
        assert!(!is_shell_name("1X"));
        assert!(!is_shell_name("A.B"));
        assert!(!is_shell_name(""));
    }
}
