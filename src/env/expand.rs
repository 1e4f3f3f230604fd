//! `$` references in env-file values: what follows a `$`, and what it
//! expands to. Pure functions; the parser places their errors in the file.

/// A character of a variable name in a reference.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// When a `${NAME…}` default replaces the variable's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum When {
    /// `${NAME-default}`: only when NAME is unset.
    Unset,
    /// `${NAME:-default}`: when NAME is unset or empty.
    UnsetOrEmpty,
}

/// A parsed `$` reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Reference<'a> {
    /// A `$` that starts no reference (`$5`, `$ `, a `$` at the end): kept
    /// as a literal `$`. Takes one byte, the `$`.
    Literal,
    /// `$NAME`, `${NAME}`, `${NAME-default}` or `${NAME:-default}`.
    Variable {
        /// The variable's name.
        name: &'a str,
        /// The default text, literal, and when it applies.
        default: Option<(&'a str, When)>,
        /// Bytes taken from the `$` on.
        len: usize,
    },
}

/// Why a `${` does not make a reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Invalid<'a> {
    /// No `}` before the end of the line.
    Unterminated,
    /// The text between the braces is not `NAME`, `NAME-…` or `NAME:-…`.
    NotAName(&'a str),
}

/// Parses the reference at the start of `text`, which begins with `$`.
#[cfg(test)]
pub(super) fn reference(text: &str) -> Result<Reference<'_>, Invalid<'_>> {
    reference_closed_at(text, first_close(text))
}

/// Where the first `}` or line end after a leading `${` of `text` is, from
/// the start of `text`.
#[cfg(test)]
pub(super) fn first_close(text: &str) -> Option<usize> {
    text.strip_prefix("${")?.find(['}', '\n']).map(|i| i + 2)
}

/// Parses the reference at the start of `text`, which begins with `$`,
/// given where the first `}` or line end after its `${` is (from the start
/// of `text`): the parser knows it without scanning
/// the rest of the line again for every `${` in it.
pub(super) fn reference_closed_at(
    text: &str,
    close: Option<usize>,
) -> Result<Reference<'_>, Invalid<'_>> {
    let after = &text[1..];
    if let Some(braced) = after.strip_prefix('{') {
        let close = close
            .map(|c| c - "${".len())
            .filter(|&i| braced[i..].starts_with('}'))
            .ok_or(Invalid::Unterminated)?;
        let inner = &braced[..close];
        // The first `:` or `-` ends the name: `:-` and `-` start a default,
        // anything else (`:=`, `:+`, `:?`) leaves a name that is invalid.
        let (name, default) = match inner.find([':', '-']) {
            Some(i) if inner[i..].starts_with(":-") => {
                (&inner[..i], Some((&inner[i + 2..], When::UnsetOrEmpty)))
            }
            Some(i) if inner[i..].starts_with('-') => {
                (&inner[..i], Some((&inner[i + 1..], When::Unset)))
            }
            _ => (inner, None),
        };
        if name.is_empty() || !name.chars().all(is_name_char) {
            return Err(Invalid::NotAName(inner));
        }
        return Ok(Reference::Variable {
            name,
            default,
            len: "${".len() + close + "}".len(),
        });
    }
    let len = after
        .find(|c: char| !is_name_char(c))
        .unwrap_or(after.len());
    if len == 0 || after.starts_with(|c: char| c.is_ascii_digit()) {
        return Ok(Reference::Literal);
    }
    Ok(Reference::Variable {
        name: &after[..len],
        default: None,
        len: 1 + len,
    })
}

/// What a variable reference expands to, given the variable's value
/// (`None`: unset). Unset without a default, it expands to nothing
/// (`None`): the caller keeps the reference as written.
pub(super) fn resolve(value: Option<String>, default: Option<(&str, When)>) -> Option<String> {
    match (value, default) {
        (Some(v), Some((d, When::UnsetOrEmpty))) if v.is_empty() => Some(d.to_owned()),
        (Some(v), _) => Some(v),
        (None, Some((d, _))) => Some(d.to_owned()),
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var<'a>(name: &'a str, default: Option<(&'a str, When)>, len: usize) -> Reference<'a> {
        Reference::Variable { name, default, len }
    }

    #[test]
    fn references() {
        assert_eq!(reference("$HOME/x"), Ok(var("HOME", None, 5)));
        assert_eq!(reference("$_a1 b"), Ok(var("_a1", None, 4)));
        assert_eq!(reference("${A}x"), Ok(var("A", None, 4)));
        assert_eq!(reference("${1}"), Ok(var("1", None, 4)));
        assert_eq!(
            reference("${A:-d e}"),
            Ok(var("A", Some(("d e", When::UnsetOrEmpty)), 9))
        );
        assert_eq!(
            reference("${A-b:-c}"),
            Ok(var("A", Some(("b:-c", When::Unset)), 9))
        );
        for literal in ["$", "$5", "$ x", "$-", "$é"] {
            assert_eq!(reference(literal), Ok(Reference::Literal), "{literal:?}");
        }
    }

    #[test]
    fn invalid_references() {
        assert_eq!(reference("${A"), Err(Invalid::Unterminated));
        assert_eq!(reference("${A\n}"), Err(Invalid::Unterminated));
        assert_eq!(reference("${}"), Err(Invalid::NotAName("")));
        assert_eq!(reference("${A:=x}"), Err(Invalid::NotAName("A:=x")));
        assert_eq!(reference("${A B}"), Err(Invalid::NotAName("A B")));
    }

    #[test]
    fn defaults() {
        let empty = || Some(String::new());
        let some = |s: &str| Some(s.to_owned());
        assert_eq!(resolve(None, None), None);
        assert_eq!(
            resolve(Some("v".into()), Some(("d", When::Unset))),
            some("v")
        );
        assert_eq!(resolve(None, Some(("d", When::Unset))), some("d"));
        assert_eq!(resolve(empty(), Some(("d", When::Unset))), some(""));
        assert_eq!(resolve(empty(), Some(("d", When::UnsetOrEmpty))), some("d"));
    }
}
