//! Property tests for the pure parsers: arbitrary input never panics,
//! rendering and parsing again is stable, and the .env parser agrees with
//! dotenvy on the input both accept.

use std::path::Path;

use proptest::prelude::*;

use procrun::{env, formation, procfile};

fn no_env(_: &str) -> Option<String> {
    None
}

fn name() -> impl Strategy<Value = String> {
    "[A-Za-z0-9_-]{1,12}"
}

/// A command: no newline, no leading/trailing blanks, not empty.
fn command() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,40}[!-~])?"
}

/// The (name, command) pairs of `text` read line by line, for texts of
/// `name[ ]:[ ]command` lines, comments and blank lines; `None` where the
/// Procfile is invalid: an empty command, a repeated name, or no entry.
fn expected_entries(text: &str) -> Option<Vec<(String, String)>> {
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let (name, command) = line.split_once(':')?;
        let (name, command) = (name.trim(), command.trim());
        if command.is_empty() || entries.iter().any(|(n, _)| n == name) {
            return None;
        }
        entries.push((name.to_owned(), command.to_owned()));
    }
    (!entries.is_empty()).then_some(entries)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn procfile_parser_never_panics(text in "\\PC*") {
        let _ = procfile::parse(Path::new("Procfile"), &text);
    }

    #[test]
    fn procfile_parser_never_panics_on_line_noise(text in "([a-z:# \t\r\n=-]|é){0,80}") {
        if let Err(errors) = procfile::parse(Path::new("Procfile"), &text) {
            for e in errors {
                let _ = e.render(true);
            }
        }
    }

    #[test]
    fn procfile_render_then_parse_gives_the_same_entries(
        entries in proptest::collection::vec((name(), command()), 1..8)
    ) {
        let mut seen = std::collections::HashSet::new();
        let entries: Vec<procfile::Entry> = entries
            .into_iter()
            .filter(|(n, _)| seen.insert(n.clone()))
            .enumerate()
            .map(|(i, (name, command))| procfile::Entry { name, command, line: i + 1 })
            .collect();
        let text = procfile::render(&entries);
        let parsed = procfile::parse(Path::new("Procfile"), &text).expect("rendered Procfile parses");
        prop_assert_eq!(parsed.entries, entries);
    }

    /// Text that may or may not be a valid Procfile: it parses exactly when
    /// a simple reading of the grammar says so, into the entries that
    /// reading finds, and those render and parse back to themselves.
    #[test]
    fn parsed_procfiles_round_trip(text in "([a-z]{1,3}[ ]?:[ ]?[a-z :$'\"]{0,6}\r?\n|#[^\n]*\n|\n){1,8}") {
        let expected = expected_entries(&text);
        let strip = |p: procfile::Procfile| -> Vec<(String, String)> {
            p.entries.into_iter().map(|e| (e.name, e.command)).collect()
        };
        match (procfile::parse(Path::new("P"), &text), expected) {
            (Ok(first), Some(expected)) => {
                let again = procfile::parse(Path::new("P"), &procfile::render(&first.entries))
                    .expect("rendered Procfile parses");
                let first = strip(first);
                prop_assert_eq!(&first, &expected);
                prop_assert_eq!(strip(again), first);
            }
            (Err(errors), None) => prop_assert!(!errors.is_empty()),
            (got, expected) => prop_assert!(
                false,
                "{:?}: parsed {:?}, expected {:?}",
                text,
                got.map(strip).map_err(|e| e.len()),
                expected
            ),
        }
    }
    #[test]
    fn env_parser_never_panics(text in "\\PC*") {
        let _ = env::parse(".env", &text, &no_env);
    }

    #[test]
    fn env_parser_never_panics_on_tricky_bytes(text in "([A-Z=#'\"$\\\\{}:\\- \t\r\n]|export ){0,60}") {
        if let Err(errors) = env::parse(".env", &text, &no_env) {
            for e in errors {
                let _ = e.render(false);
            }
        }
    }

    /// On plain `KEY=value` files (no `$`, which dotenvy expands from the
    /// process environment first), procrun and dotenvy read the same values.
    #[test]
    fn env_agrees_with_dotenvy(
        lines in proptest::collection::vec(
            ("[A-Z_][A-Z0-9_]{0,8}", "[A-Za-z0-9_./:@,+-]{0,12}", 0..4usize),
            1..8,
        )
    ) {
        let text: String = lines
            .iter()
            .map(|(k, v, style)| match style {
                0 => format!("{k}={v}\n"),
                1 => format!("export {k}={v}\n"),
                2 => format!("{k}='{v}'\n"),
                _ => format!("{k}=\"{v}\"  # note\n"),
            })
            .collect();
        let ours: Vec<(String, String)> = env::parse(".env", &text, &no_env)
            .expect("procrun parses")
            .pairs()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut theirs: indexmap::IndexMap<String, String> = indexmap::IndexMap::new();
        for item in dotenvy::from_read_iter(text.as_bytes()) {
            let (k, v) = item.expect("dotenvy parses");
            theirs.insert(k, v);
        }
        let theirs: Vec<(String, String)> = theirs.into_iter().collect();
        prop_assert_eq!(ours, theirs);
    }

    #[test]
    fn formation_parser_never_panics(text in "\\PC{0,40}") {
        let _ = formation::parse(&text);
    }

    #[test]
    fn formation_round_trips(items in proptest::collection::btree_map(name(), 0u32..200, 0..6)) {
        let text: Vec<String> = items.iter().map(|(k, v)| format!("{k} = {v}")).collect();
        let parsed = formation::parse(&text.join(" , ")).expect("valid formation");
        for (k, v) in &items {
            if k == "all" {
                prop_assert_eq!(parsed.all, Some(*v));
            } else {
                prop_assert_eq!(parsed.count(k, 999), *v);
            }
        }
    }
}
