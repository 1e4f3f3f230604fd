//! The formation: how many instances of each process type to run
//! (`-m all=1,web=2,worker=0`).

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Location};

/// The pseudo-file name used in formation diagnostics.
pub const SOURCE: &str = "--formation";

/// Most instances procrun accepts for one process type.
pub const MAX_INSTANCES: u32 = 10_000;

/// Most instances procrun runs (or exports) in all: each is a process,
/// with pipes and an environment of its own.
pub const MAX_TOTAL_INSTANCES: u64 = 10_000;

/// A parsed formation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Formation {
    /// `all=N`: the count for every type not named explicitly.
    pub all: Option<u32>,
    /// Explicit counts, in the order given; each with where its name is in
    /// the flag's text (for diagnostics about unknown names).
    pub counts: IndexMap<String, (u32, Location)>,
    /// The flag's text, kept for diagnostics.
    pub text: String,
}

impl Formation {
    /// How many instances of `name` to run, given no NAME selection: the
    /// explicit count, else `all=N`, else `default`.
    pub fn count(&self, name: &str, default: u32) -> u32 {
        self.counts
            .get(name)
            .map(|(n, _)| *n)
            .or(self.all)
            .unwrap_or(default)
    }

    /// A location covering the whole flag's text.
    pub fn whole(&self) -> Location {
        self.location((0, self.text.chars().count()))
    }

    /// A location in the flag's text covering chars `span`.
    pub fn location(&self, span: (usize, usize)) -> Location {
        Location::new(SOURCE, 1, &self.text, span.0, span.1 - span.0)
    }
}

/// Parses `all=1,web=2, worker = 0`. Blanks around items and `=` are
/// tolerated; an empty string is the default formation.
pub fn parse(text: &str) -> Result<Formation, Vec<Diagnostic>> {
    let mut formation = Formation {
        text: text.to_owned(),
        ..Formation::default()
    };
    let mut errors = Vec::new();
    let mut offset = 0; // byte offset of the current item in `text`
    let mut chars = 0; // its offset in chars, counted as the items go
    let mut all_seen = false;
    for item in text.split(',') {
        let item_start = offset;
        let item_chars = chars;
        offset += item.len() + 1;
        chars += item.chars().count() + 1;
        // The location of `part`, a slice of `item`, counted from the
        // item's start: a formation of 10,000 items is checked in linear
        // time.
        let at = |part: &str, min_width: usize| {
            let within = (part.as_ptr() as usize).saturating_sub(item.as_ptr() as usize);
            let within = within.min(item.len());
            let byte = item_start + within;
            let start = item_chars + item[..within].chars().count();
            Location::counted(
                SOURCE,
                1,
                text,
                byte,
                byte + part.len().max(min_width),
                start,
            )
        };
        if item.trim().is_empty() {
            if text.trim().is_empty() {
                continue;
            }
            errors.push(
                Diagnostic::error("empty item in formation")
                    .at(at(item, 1))
                    .help("write `name=count` items separated by commas, e.g. `web=2,worker=1`"),
            );
            continue;
        }
        let trimmed = item.trim();
        let Some((name, count)) = trimmed.split_once('=') else {
            errors.push(
                Diagnostic::error(format!("expected `name=count`, found `{trimmed}`"))
                    .at(at(trimmed, 1))
                    .help(format!("write `{trimmed}=1`")),
            );
            continue;
        };
        let name = name.trim();
        let count_text = count.trim();
        let name_at = at(name, 1);
        if name.is_empty() || !name.chars().all(crate::procfile::is_name_char) {
            errors.push(
                Diagnostic::error(format!("invalid process name `{name}` in formation"))
                    .at(name_at)
                    .help("process names contain only letters, digits, `_` and `-`"),
            );
            continue;
        }
        if name.len() > crate::procfile::MAX_NAME_LEN {
            errors.push(
                Diagnostic::error(format!(
                    "process name `{}…` in formation is {} characters long: at most {} are allowed",
                    &name[..16],
                    name.len(),
                    crate::procfile::MAX_NAME_LEN
                ))
                .at(name_at),
            );
            continue;
        }
        let count = match count_text.parse::<u32>() {
            Ok(n) if n <= MAX_INSTANCES => n,
            _ => {
                errors.push(
                    Diagnostic::error(format!(
                        "invalid count `{count_text}` for `{name}`: expected a whole number from 0 to {MAX_INSTANCES}"
                    ))
                    .at(at(count_text, 1)),
                );
                continue;
            }
        };
        if name == "all" {
            // As for any name: a second `all=N` is a mistake, not an override.
            if all_seen {
                errors.push(Diagnostic::error("`all` appears twice in the formation").at(name_at));
            }
            all_seen = true;
            formation.all = Some(count);
        } else if formation.counts.contains_key(name) {
            errors.push(
                Diagnostic::error(format!("`{name}` appears twice in the formation")).at(name_at),
            );
        } else {
            formation.counts.insert(name.to_owned(), (count, name_at));
        }
    }
    if errors.is_empty() {
        Ok(formation)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_counts_and_all() {
        let f = parse(" all = 2 , web=3,worker=0").expect("parses");
        assert_eq!(f.all, Some(2));
        assert_eq!(f.count("web", 1), 3);
        assert_eq!(f.count("worker", 1), 0);
        assert_eq!(f.count("clock", 0), 2);
    }

    #[test]
    fn empty_is_default() {
        let f = parse("").expect("parses");
        assert_eq!(f.count("web", 1), 1);
        assert_eq!(f.count("web", 0), 0);
    }

    #[test]
    fn errors_point_into_the_flag() {
        let cases = [
            ("web", "expected `name=count`", 1),
            ("web=2,,x=1", "empty item", 7),
            ("web=two", "invalid count `two`", 5),
            ("web=-1", "invalid count `-1`", 5),
            ("web=99999", "invalid count", 5),
            ("w b=1", "invalid process name", 1),
            ("web=1,web=2", "appears twice", 7),
            (&format!(" {}=1", "n".repeat(64)), "64 characters long", 2),
        ];
        for (text, msg, col) in cases {
            let e = parse(text).expect_err(text);
            assert!(e[0].message.contains(msg), "{text}: {}", e[0].message);
            assert_eq!(e[0].location.as_ref().map(|l| l.col), Some(col), "{text}");
        }
    }
}
