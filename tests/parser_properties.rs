//! Property tests for the pure parsers: arbitrary input never panics,
//! rendering and parsing again is stable, and the .env parser agrees with
//! dotenvy on the input both accept.
//!
//! They double as a fuzzer that runs on stable Rust (see "Fuzzing" in
//! docs/design.md): `PROCRUN_FUZZ_CASES=N` runs each property N times
//! instead of 512, and `PROCRUN_FUZZ_SECONDS=S` makes
//! `fuzz_within_a_time_budget` feed fresh random input to every parser for
//! S seconds (without it, that test does nothing).

use std::path::Path;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

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

/// Cases per property: `PROCRUN_FUZZ_CASES`, else 512.
fn cases() -> u32 {
    std::env::var("PROCRUN_FUZZ_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(512)
}

/// Parses `text` as a Procfile: no panic; what parses renders and parses
/// back to the same entries; every diagnostic renders.
fn check_procfile(text: &str) {
    match procfile::parse(Path::new("Procfile"), text) {
        Ok(p) => {
            let again = procfile::parse(Path::new("Procfile"), &procfile::render(&p.entries))
                .expect("a rendered Procfile parses");
            let strip = |v: &[procfile::Entry]| -> Vec<(String, String)> {
                v.iter()
                    .map(|e| (e.name.clone(), e.command.clone()))
                    .collect()
            };
            assert_eq!(strip(&again.entries), strip(&p.entries), "{text:?}");
            for e in &p.entries {
                assert!(e.name.len() <= procfile::MAX_NAME_LEN);
                assert!(!e.command.contains(['\0', '\r', '\n']), "{text:?}");
            }
            p.warnings.iter().for_each(|w| drop(w.render(true)));
        }
        Err(errors) => errors.iter().for_each(|e| drop(e.render(true))),
    }
}

/// Parses `text` as an env file, with `inherited` variables for its
/// references: no panic; no value over the cap or holding a NUL; every
/// diagnostic renders.
fn check_env(text: &str, inherited: &[(String, String)]) {
    let lookup = |k: &str| {
        inherited
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    match env::parse(".env", text, &lookup) {
        Ok(set) => {
            for (_, v) in set.pairs() {
                assert!(v.len() <= env::MAX_VALUE_BYTES);
                assert!(!v.contains('\0'), "{text:?}");
            }
            // Each instance's values, with its own PORT and PS: capped too.
            let mut budget = env::MAX_EXPANDED_BYTES;
            match set.for_instance(Some("65535"), "a-long-process-name.100", &mut budget) {
                Ok(vars) => {
                    assert_eq!(vars.len(), set.vars.len());
                    for (_, v) in &vars {
                        assert!(v.len() <= env::MAX_VALUE_BYTES);
                    }
                }
                Err(e) => drop(e.render(false)),
            }
            let limits = env::ExecLimits {
                arg_max: 4096,
                max_arg_strlen: Some(1024),
            };
            for w in env::exec_size_warnings(None, &set, &[], &limits) {
                drop(w.render(false));
            }
        }
        Err(errors) => errors.iter().for_each(|e| drop(e.render(false))),
    }
}

fn check_formation(text: &str) {
    if let Err(errors) = formation::parse(text) {
        errors.iter().for_each(|e| drop(e.render(false)));
    }
}

/// Env files built to stress expansion: chains of references to earlier
/// keys (doubling ones among them), defaults, quotes and comments.
fn env_with_references() -> impl Strategy<Value = String> {
    let key = "[A-D]";
    let piece = prop_oneof![
        "[a-z #]{0,8}",
        key.prop_map(|k| format!("${k}")),
        Just("$PORT${PS}".to_owned()),
        key.prop_map(|k| format!("${{{k}}}${{{k}}}")),
        (key, "[a-z #}$]{0,6}").prop_map(|(k, d)| format!("${{{k}:-{d}}}")),
        Just("${".to_owned()),
        Just("\\$".to_owned()),
    ];
    let value = proptest::collection::vec(piece, 0..6).prop_map(|p| p.concat());
    let line = (key, value, 0..3usize).prop_map(|(k, v, quote)| match quote {
        0 => format!("{k}={v}\n"),
        1 => format!("{k}=\"{v}\"\n"),
        _ => format!("export {k}='{v}' # c\n"),
    });
    proptest::collection::vec(line, 1..40).prop_map(|l| l.concat())
}

/// With `PROCRUN_FUZZ_SECONDS=S`: every parser, fed fresh random input
/// (arbitrary text, tricky characters, expansion chains that hit the caps)
/// until S seconds have passed. A failure is shrunk and shown as usual.
#[test]
fn fuzz_within_a_time_budget() {
    let Some(seconds) = std::env::var("PROCRUN_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let config = Config {
        cases: 64,
        failure_persistence: None,
        ..Config::default()
    };
    let mut rounds = 0u64;
    let big = "x".repeat(64 * 1024);
    let inherited = vec![
        ("A".to_owned(), big.clone()),
        ("B".to_owned(), String::new()),
    ];
    while Instant::now() < deadline {
        let mut runner = TestRunner::new(config.clone());
        let text = |t: String| {
            check_procfile(&t);
            check_env(&t, &[]);
            check_formation(&t);
            Ok(())
        };
        let results = [
            runner.run(&"\\PC{0,200}", text).map_err(|e| e.to_string()),
            runner
                .run(&"([a-z:#= \t\r\n\0{}$'\"-]|é|\u{feff}){0,120}", text)
                .map_err(|e| e.to_string()),
            runner
                .run(&env_with_references(), |t| {
                    check_env(&t, &inherited);
                    Ok(())
                })
                .map_err(|e| e.to_string()),
            runner
                .run(&proptest::collection::vec(any::<u8>(), 0..200), |bytes| {
                    if let Ok(text) = procfile::decode_utf8("Procfile", &bytes) {
                        check_procfile(text);
                    }
                    Ok(())
                })
                .map_err(|e| e.to_string()),
        ];
        for result in results {
            if let Err(e) = result {
                panic!("{e}");
            }
        }
        rounds += 1;
    }
    eprintln!("fuzzed for {seconds} s: {rounds} rounds of 4 × 64 inputs");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

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

proptest! {
    /// The `exec` rewrite of a command never panics, keeps the command's
    /// text, and adds nothing but one `exec ` (after leading assignments).
    #[test]
    fn shell_script_only_ever_inserts_exec(command in "([A-Z_]{1,3}=[a-z\u{e9}\u{3000}]{0,3}[ \t]{1,2}){0,3}(\\PC|[ \t;&|$'\"=\u{3000}]){0,40}") {
        let script = procrun::shell::script(&command);
        if script != command {
            let at = script.find("exec ").expect("an exec");
            prop_assert_eq!(format!("{}{}", &script[..at], &script[at + 5..]), command.clone());
        }
        let _ = procrun::shell::leading_assignments(&command);
    }
}
