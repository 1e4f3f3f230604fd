//! The `procrun.toml` reader and the resolution of policies: values,
//! precedence, defaults, and every error as the user sees it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::flags::{self, Flags};
use super::resolve::resolve;
use super::*;
use crate::cli::PolicyArgs;
use crate::policy::{Backoff, Policy, Restart};

const PROCFILE: &str = "web: serve\nworker: work\nclock: tick\n";

fn procfile() -> crate::procfile::Procfile {
    crate::procfile::parse(Path::new("Procfile"), PROCFILE).expect("procfile parses")
}

fn config(text: &str) -> Config {
    parse(PathBuf::from(FILE_NAME), text).unwrap_or_else(|e| {
        panic!("{}", crate::diagnostic::render_all(&e, false));
    })
}

/// The diagnostics for `text`, rendered as `procrun check` prints them.
fn errors(text: &str) -> String {
    match parse(PathBuf::from(FILE_NAME), text) {
        Ok(_) => panic!("`{text}` should be rejected"),
        Err(e) => crate::diagnostic::render_all(&e, false),
    }
}

/// Resolves `text` against [`PROCFILE`] with `flags` and `-t`.
fn policies(
    text: &str,
    flags: &Flags,
    timeout: Option<Duration>,
) -> Result<super::resolve::Resolved, Vec<Diagnostic>> {
    resolve(&procfile(), Some(&config(text)), flags, timeout)
}

fn policy(text: &str, name: &str) -> Policy {
    policies(text, &Flags::default(), None)
        .expect("resolves")
        .policies[name]
}

fn resolve_errors(text: &str, flags: &Flags) -> String {
    match policies(text, flags, None) {
        Ok(_) => panic!("`{text}` should be rejected"),
        Err(e) => crate::diagnostic::render_all(&e, false),
    }
}

fn flags(can_die: &[&str], any: bool, auto: &[&str], stop: &[&str]) -> Flags {
    let v = |s: &[&str]| s.iter().map(|s| (*s).to_owned()).collect();
    flags::parse(&PolicyArgs {
        can_die: v(can_die),
        any_can_die: any,
        auto_restart: v(auto),
        stop_signal: v(stop),
        tty: Vec::new(),
    })
    .expect("flags parse")
}

#[test]
fn every_key_is_read() {
    let c = config(
        r#"
[defaults]
stop_timeout = 7

[process.web]
restart = "on-failure"
can_die = true
stop_signal = "sigint"
stop_timeout = 10.5
backoff = { initial = 0.5, max = 60 }
max_restarts = 3
min_uptime = 2
port = false
tty = true

[process.worker]
restart = "always"
stop_signal = 3
max_restarts = "unlimited"
"#,
    );
    assert_eq!(
        c.defaults.stop_timeout.as_ref().map(|s| s.value),
        Some(Duration::from_secs(7))
    );
    let names: Vec<_> = c.processes.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["web", "worker"]);
    let web = policy_of(&c, "web");
    assert_eq!(
        web,
        Policy {
            restart: Restart::OnFailure,
            can_die: true,
            stop_signal: Signal::SIGINT,
            stop_timeout: Duration::from_millis(10_500),
            backoff: Backoff {
                initial: Duration::from_millis(500),
                max: Duration::from_secs(60),
            },
            max_restarts: Some(3),
            min_uptime: Duration::from_secs(2),
            port: false,
            tty: true,
        }
    );
    let worker = policy_of(&c, "worker");
    assert_eq!(worker.restart, Restart::Always);
    assert_eq!(worker.stop_signal, Signal::SIGQUIT);
    assert_eq!(worker.max_restarts, None);
    assert_eq!(worker.stop_timeout, Duration::from_secs(7));
    // A type without a section gets [defaults] and procrun's defaults.
    assert_eq!(
        policy_of(&c, "clock"),
        Policy {
            stop_timeout: Duration::from_secs(7),
            ..Policy::default()
        }
    );
}

fn policy_of(c: &Config, name: &str) -> Policy {
    resolve(&procfile(), Some(c), &Flags::default(), None)
        .expect("resolves")
        .policies[name]
}

#[test]
fn locations_point_at_values() {
    let c = config("[process.web]\nrestart   =  \"always\"\n");
    let at = &c.processes[0].patch.restart.as_ref().expect("set").at;
    assert_eq!((at.line, at.col, at.width), (2, 14, 8));
    assert_eq!(at.to_string(), "procrun.toml:2:14");
    let section = &c.processes[0].at;
    assert_eq!((section.line, section.col, section.width), (1, 10, 3));
}

#[test]
fn an_empty_file_and_no_file_change_nothing() {
    let empty = resolve(&procfile(), Some(&config("")), &Flags::default(), None).expect("ok");
    let none = resolve(&procfile(), None, &Flags::default(), None).expect("ok");
    assert_eq!(empty, none);
    assert!(none.policies.values().all(|p| *p == Policy::default()));
    assert_eq!(none.policies.len(), 3);
}

#[test]
fn restart_alone_gets_the_default_tuning() {
    let p = policy("[process.web]\nrestart = \"always\"\n", "web");
    assert_eq!(
        p,
        Policy {
            restart: Restart::Always,
            ..Policy::default()
        }
    );
    assert_eq!(p.backoff, Backoff::default());
    assert_eq!(p.max_restarts, Some(10));
    assert_eq!(p.min_uptime, Duration::from_secs(10));
}

#[test]
fn a_type_section_wins_over_defaults() {
    let text = "[defaults]\nrestart = \"always\"\ncan_die = true\nbackoff = { max = 10 }\n\
                [process.web]\nrestart = \"no\"\nbackoff.initial = 2\n";
    let web = policy(text, "web");
    assert_eq!(web.restart, Restart::No);
    assert!(web.can_die);
    assert_eq!(
        web.backoff,
        Backoff {
            initial: Duration::from_secs(2),
            max: Duration::from_secs(10),
        }
    );
    let worker = policy(text, "worker");
    assert_eq!(worker.restart, Restart::Always);
    assert_eq!(worker.backoff.initial, Duration::from_secs(1));
}

#[test]
fn stop_timeout_precedence() {
    let t = Some(Duration::from_secs(3));
    let none = Flags::default();
    let secs = |text: &str, timeout, name: &str| {
        policies(text, &none, timeout).expect("ok").policies[name]
            .stop_timeout
            .as_secs_f64()
    };
    // Nothing: 5 s.
    assert_eq!(secs("", None, "web"), 5.0);
    // [defaults] alone.
    assert_eq!(secs("[defaults]\nstop_timeout = 8\n", None, "web"), 8.0);
    // -t wins over [defaults] ...
    assert_eq!(secs("[defaults]\nstop_timeout = 8\n", t, "web"), 3.0);
    // ... and [process.X] over -t.
    let text = "[defaults]\nstop_timeout = 8\n[process.web]\nstop_timeout = 20\n";
    assert_eq!(secs(text, t, "web"), 20.0);
    assert_eq!(secs(text, t, "worker"), 3.0);
    assert_eq!(secs(text, None, "worker"), 8.0);
}

#[test]
fn flags_win_over_the_file() {
    let text = "[process.web]\nrestart = \"on-failure\"\ncan_die = false\nstop_signal = \"INT\"\n";
    let f = flags(&["web"], false, &["web"], &["web=QUIT"]);
    let r = policies(text, &f, None).expect("ok");
    let web = r.policies["web"];
    assert_eq!(web.restart, Restart::Always);
    assert!(web.can_die);
    assert_eq!(web.stop_signal, Signal::SIGQUIT);
    assert_eq!(r.policies["worker"], Policy::default());
}

#[test]
fn all_and_any_can_die_reach_every_type() {
    let r = policies(
        "",
        &flags(&[], true, &["all"], &["all=INT", "clock=HUP"]),
        None,
    )
    .expect("ok");
    for (name, p) in &r.policies {
        assert!(p.can_die, "{name}");
        assert_eq!(p.restart, Restart::Always, "{name}");
    }
    assert_eq!(r.policies["web"].stop_signal, Signal::SIGINT);
    // A type named explicitly wins over `all`, whatever the order.
    assert_eq!(r.policies["clock"].stop_signal, Signal::SIGHUP);
    let r = policies("", &flags(&["all"], false, &[], &[]), None).expect("ok");
    assert!(r.policies.values().all(|p| p.can_die));
}

#[test]
fn kill_is_allowed_with_a_warning_stop_is_not() {
    let c = config("[process.web]\nstop_signal = \"KILL\"\n");
    assert_eq!(c.warnings.len(), 1);
    insta::assert_snapshot!(
        "kill_warning",
        crate::diagnostic::render_all(&c.warnings, false)
    );
    insta::assert_snapshot!(
        "stop_signal_stop",
        errors("[process.web]\nstop_signal = \"SIGSTOP\"\n")
    );
}

#[test]
fn syntax_errors_are_located() {
    insta::assert_snapshot!(
        "syntax",
        errors("[process.web]\nrestart = always\n[process.worker\n")
    );
    insta::assert_snapshot!(
        "duplicate_key",
        errors("[process.web]\nport = true\nport = false\n")
    );
}

#[test]
fn a_ready_url_string_and_a_quoted_tty_are_rejected() {
    insta::assert_snapshot!(
        "ready_string_tty_string",
        errors(
            "[process.web]\nready = \"http://localhost:5000\"\ntty = \"true\"\n\n[defaults]\nafter = [\"db\"]\n"
        )
    );
}

#[test]
fn unknown_keys_and_sections_suggest() {
    insta::assert_snapshot!(
        "unknown_keys",
        errors(
            "restart = \"always\"\n\n[default]\nstop_timeout = 1\n\n[web]\nport = false\n\n\
             [process]\ncan_die = true\n\n[process.worker]\nstop-signal = \"INT\"\nrestrat = \"always\"\n\
             colour = \"red\"\nbackoff = { inital = 1 }\n"
        )
    );
}

#[test]
fn values_are_validated() {
    insta::assert_snapshot!(
        "bad_values",
        errors(
            r#"[process.web]
restart = "sometimes"
can_die = "true"
stop_signal = "TERMINATE"
stop_timeout = -1
min_uptime = inf
max_restarts = -2

[process.worker]
restart = true
port = 1
stop_signal = 99
stop_timeout = "10 seconds"
min_uptime = 90000
max_restarts = 1.5
backoff = 5

[process.clock]
restart = "on_failure"
stop_timeout = nan
backoff = { initial = 10, max = 2 }
max_restarts = "forever"
"#
        )
    );
}

#[test]
fn sections_must_name_procfile_entries() {
    insta::assert_snapshot!(
        "unknown_section_name",
        resolve_errors(
            "[process.wbe]\nrestart = \"always\"\n\n[process.mailer]\nport = false\n",
            &Flags::default()
        )
    );
}

#[test]
fn flags_must_name_procfile_entries() {
    insta::assert_snapshot!(
        "unknown_flag_names",
        resolve_errors("", &flags(&["web,wroker"], false, &["db"], &["clok=INT"]))
    );
}

#[test]
fn backoff_is_checked_after_merging() {
    insta::assert_snapshot!(
        "backoff_merged",
        resolve_errors(
            "[defaults]\nbackoff = { max = 20 }\n\n[process.web]\nrestart = \"always\"\nbackoff.initial = 25\n\n\
             [process.worker]\nbackoff = { initial = 40 }\n",
            &Flags::default()
        )
    );
    // The [defaults] problem is reported once, not for every type.
    let e = policies(
        "[defaults]\nbackoff.initial = 60\n",
        &Flags::default(),
        None,
    )
    .expect_err("max below initial");
    assert_eq!(e.len(), 1, "{e:?}");
}

#[test]
fn useless_settings_are_warned_about() {
    let r = policies(
        "[defaults]\nmin_uptime = 3\n[process.web]\nmax_restarts = 2\n\
         [process.worker]\nrestart = \"always\"\nmax_restarts = \"unlimited\"\nbackoff = { initial = 0, max = 0 }\n",
        &Flags::default(),
        None,
    )
    .expect("ok");
    insta::assert_snapshot!(
        "useless_settings",
        crate::diagnostic::render_all(&r.warnings, false)
    );
    // Once a flag makes it restart, the setting matters.
    let r = policies(
        "[process.web]\nmax_restarts = 2\n",
        &flags(&[], false, &["web"], &[]),
        None,
    )
    .expect("ok");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn a_missing_file_is_fine_unless_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join(FILE_NAME);
    let default = ConfigRef {
        path: path.clone(),
        required: false,
    };
    assert_eq!(load(&default), Ok(None));
    let named = ConfigRef {
        path: path.clone(),
        required: true,
    };
    let e = load(&named).expect_err("required");
    assert!(e[0].message.starts_with("cannot read config file"), "{e:?}");
    std::fs::write(&path, b"[process.web]\nport = false # caf\xe9\n").expect("write");
    let e = load(&default).expect_err("not UTF-8");
    assert!(e[0].message.contains("is not valid UTF-8"), "{e:?}");
    std::fs::write(&path, "\u{feff}[process.web]\r\nport = false\r\n").expect("write");
    let c = load(&default).expect("reads").expect("exists");
    assert_eq!(
        c.processes[0].patch.port.as_ref().map(|s| s.value),
        Some(false)
    );
}

#[test]
fn suggestions_are_close_words_only() {
    assert_eq!(suggest("restrat", KEYS), Some("restart"));
    assert_eq!(suggest("can-die", KEYS), Some("can_die"));
    assert_eq!(suggest("stop_sig", KEYS), Some("stop_signal"));
    assert_eq!(suggest("timeout", KEYS), None);
    assert_eq!(suggest("colour", KEYS), None);
    assert_eq!(suggest("on_failure", RESTART_VALUES), Some("on-failure"));
}
