//! The export tests' fixture: a Procfile and an env file full of values that
//! must never become configuration or shell code, and what each process
//! must receive.
#![allow(dead_code)]

use std::path::Path;

/// The Procfile: `web` is a test app that reports its env, argv and cwd;
/// its arguments exercise the command quoting of every format.
pub const PROCFILE: &str = r##"web: /usr/bin/python3 -u envapp.py "100%" 'semi ;colon' "#hash" '$PORT' "$PORT" it\'s '%(here)s'
worker: echo "worker $PS starting; 50% done, PORT=$PORT" && exec sleep 1000
clock: /usr/bin/python3 -u clock.py
"##;

/// Every format, as the command line names it.
pub const FORMATS: [&str; 6] = [
    "systemd",
    "supervisord",
    "runit",
    "launchd",
    "compose",
    "kubernetes",
];

/// The formation: two webs, a worker, no clock.
pub const FORMATION: &str = "web=2,worker=1,clock=0";

/// The env file.
pub const ENV: &str = r#"# Hostile values: each must arrive byte for byte.
DATABASE_URL=postgres://u:p%40ss@db/app
QUOTES="it's \"quoted\" and \\back\\slashed"
DOLLARS='$HOME ${PATH} $(id) `id` $$ $(PORT)'
PERCENT='100% %n %i %(here)s %%'
COMMENTS='a ;b #c'
MULTILINE="line1\nline2\n[program:evil]\ncommand=touch /tmp/pwned"
INJECT='x"
Environment=EVIL=1
  evil: true'
XML='</string><key>Evil</key> & <!-- --> ]]>'
CR="carriage\rreturn"
# Each instance's own PORT and PS.
SELF="http://127.0.0.1:$PORT/$PS \$PORT 'q'"
"#;

/// The fixture's `procrun.toml`: every export runs its engine with
/// policies. `web` always restarts and stops with SIGINT (runit through
/// control/t), `worker` restarts on failure, `clock` may end and gets no
/// `PORT`; runs of a second count as healthy, so that supervisord marks
/// programs RUNNING after a second.
pub const CONFIG: &str = r#"[defaults]
min_uptime = 1

[process.web]
restart = "always"
stop_signal = "INT"
stop_timeout = 7
backoff = { initial = 2, max = 60 }
max_restarts = "unlimited"

[process.worker]
restart = "on-failure"
max_restarts = 3

[process.clock]
restart = "always"
can_die = true
port = false
"#;

/// A `procrun.toml` that sets the policies of [`policies`].
pub const POLICY_CONFIG: &str = r#"[process.web]
restart = "always"
stop_signal = "INT"
stop_timeout = 7
backoff = { initial = 2, max = 60 }
max_restarts = "unlimited"
min_uptime = 5

[process.worker]
restart = "on-failure"
stop_timeout = 1.5
max_restarts = 3
min_uptime = 2
port = false

[process.clock]
can_die = true
port = false
"#;

/// What the env file's variables must arrive as.
pub const EXPECTED_ENV: &[(&str, &str)] = &[
    ("DATABASE_URL", "postgres://u:p%40ss@db/app"),
    ("QUOTES", r#"it's "quoted" and \back\slashed"#),
    ("DOLLARS", "$HOME ${PATH} $(id) `id` $$ $(PORT)"),
    ("PERCENT", "100% %n %i %(here)s %%"),
    ("COMMENTS", "a ;b #c"),
    (
        "MULTILINE",
        "line1\nline2\n[program:evil]\ncommand=touch /tmp/pwned",
    ),
    ("INJECT", "x\"\nEnvironment=EVIL=1\n  evil: true"),
    ("XML", "</string><key>Evil</key> & <!-- --> ]]>"),
    ("CR", "carriage\rreturn"),
];

/// What `SELF` must arrive as in the instance `ps` on `port`.
pub fn expected_self(port: u16, ps: &str) -> String {
    format!("http://127.0.0.1:{port}/{ps} $PORT 'q'")
}

/// The web's arguments after the shell ran its command, given its PORT.
pub fn expected_args(port: u16) -> Vec<String> {
    vec![
        "100%".into(),
        "semi ;colon".into(),
        "#hash".into(),
        "$PORT".into(),
        port.to_string(),
        "it's".into(),
        "%(here)s".into(),
    ]
}

/// Writes the fixture app into `dir`.
pub fn write_app(dir: &Path) {
    std::fs::write(dir.join("Procfile"), PROCFILE).expect("write Procfile");
    std::fs::write(dir.join(".env"), ENV).expect("write .env");
    std::fs::write(dir.join("procrun.toml"), CONFIG).expect("write procrun.toml");
    std::fs::write(dir.join("envapp.py"), include_str!("../engines/envapp.py"))
        .expect("write envapp.py");
    std::fs::write(
        dir.join("clock.py"),
        "import time\nwhile True: time.sleep(1)\n",
    )
    .expect("write clock.py");
}

/// Decodes the `KIND NAME HEX` lines of `envapp.py` and
/// `inspect_export.py`: (kind, name, key, value).
pub fn decode_lines(text: &str) -> Vec<(String, String, String, String)> {
    text.lines()
        .filter_map(|line| {
            let parts: Vec<&str> = line.split(' ').collect();
            match parts.as_slice() {
                [kind, name, hex] => Some((
                    (*kind).to_owned(),
                    (*name).to_owned(),
                    String::new(),
                    unhex(hex),
                )),
                [kind, name, key, hex] => Some((
                    (*kind).to_owned(),
                    (*name).to_owned(),
                    (*key).to_owned(),
                    unhex(hex),
                )),
                _ => None,
            }
        })
        .collect()
}

/// Hex to text (the value itself when it is not hex).
pub fn unhex(hex: &str) -> String {
    if !hex.len().is_multiple_of(2) || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return hex.to_owned();
    }
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digit"))
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The formation of [`policy_plan`]: every type runs.
pub const POLICY_FORMATION: &str = "web=2,worker=1,clock=1";

/// The policies of [`policy_plan`], per type: `web` always restarts and
/// stops with SIGINT, `worker` restarts on failure and gets no `PORT`,
/// `clock` is a one-shot that may end (`can_die`).
pub fn policies() -> Vec<(&'static str, procrun::policy::Policy)> {
    use nix::sys::signal::Signal;
    use procrun::policy::{Backoff, Policy, Restart};
    use std::time::Duration;
    vec![
        (
            "web",
            Policy {
                restart: Restart::Always,
                stop_signal: Signal::SIGINT,
                stop_timeout: Duration::from_secs(7),
                backoff: Backoff {
                    initial: Duration::from_secs(2),
                    max: Duration::from_secs(60),
                },
                max_restarts: None,
                min_uptime: Duration::from_secs(5),
                ..Policy::default()
            },
        ),
        (
            "worker",
            Policy {
                restart: Restart::OnFailure,
                stop_timeout: Duration::from_millis(1500),
                max_restarts: Some(3),
                min_uptime: Duration::from_secs(2),
                port: false,
                ..Policy::default()
            },
        ),
        (
            "clock",
            Policy {
                restart: Restart::No,
                can_die: true,
                port: false,
                ..Policy::default()
            },
        ),
    ]
}

/// The fixture's plan for an app in `root` with [`policies`] (built in
/// code: what `procrun.toml` would set), base port `base`.
pub fn policy_plan(root: &Path, base: u16) -> procrun::plan::Plan {
    let procfile = procrun::procfile::parse(Path::new("Procfile"), PROCFILE).expect("parses");
    let env = procrun::env::parse(".env", ENV, &|_| None).expect("parses");
    let request = procrun::plan::PlanRequest {
        formation: procrun::formation::parse(POLICY_FORMATION).expect("parses"),
        selected: vec![],
        port: Some(base),
        root: root.to_path_buf(),
    };
    let policies: indexmap::IndexMap<String, procrun::policy::Policy> = policies()
        .into_iter()
        .map(|(name, policy)| (name.to_owned(), policy))
        .collect();
    procrun::plan::build_with(&procfile, &env, &request, &policies, &|_| None).expect("plans")
}

/// The readiness fixture's Procfile: `db` serves (the env app) and is
/// ready when its port accepts connections; `migrate` is a one-shot
/// after it, and `web` refuses to start before `migrate` left its mark;
/// `broken` is a one-shot that fails, so `skipped`, after it, must never
/// start; `worker` is ready on a line of output, which some engines
/// cannot check. `$MARKS` (from the env file) is where the marks go.
pub const READY_PROCFILE: &str = r#"db: exec /usr/bin/python3 -u envapp.py
migrate: sleep 0.5 && mkdir -p "$MARKS" && echo migrated > "$MARKS/migrated"
broken: echo broken; exit 3
web: test -e "$MARKS/migrated" || { echo "web started before migrate"; exit 1; }; exec /usr/bin/python3 -u envapp.py
skipped: mkdir -p "$MARKS" && touch "$MARKS/skipped-ran" && exec sleep 1000
worker: echo "worker up"; exec sleep 1000
"#;

/// The readiness fixture's `procrun.toml`: every kind of check an engine
/// can map, one it cannot (`log`), `after` with one-shots that succeed and
/// fail, and an exec check whose command holds quotes, `$`, `%`, `;`, `#`
/// and a backslash.
pub const READY_CONFIG: &str = r#"[process.db]
ready = "port"
ready_timeout = 30
ready_interval = 0.5

[process.migrate]
can_die = true
after = ["db"]

[process.broken]
can_die = true

[process.web]
after = ["db", "migrate"]
ready = { http = "/?probe=1" }

[process.skipped]
after = ["broken"]
ready = { exec = '''true; test -e "$MARKS/skipped-ran" && test '100%' = "100%" && test '$(PORT)' != "$PORT" && test 'a\b' = "a\\b" # it's ready''' }
ready_interval = 1.5

[process.worker]
after = ["db"]
ready = { log = "worker up" }
"#;

/// The exec check of [`READY_CONFIG`]'s `skipped`, as `sh -c` must get it.
pub const READY_EXEC: &str = r#"true; test -e "$MARKS/skipped-ran" && test '100%' = "100%" && test '$(PORT)' != "$PORT" && test 'a\b' = "a\\b" # it's ready"#;

/// Writes the readiness fixture into `dir`, with its marks in `marks`.
pub fn write_ready_app(dir: &Path, marks: &str) {
    std::fs::write(dir.join("Procfile"), READY_PROCFILE).expect("write Procfile");
    std::fs::write(dir.join(".env"), format!("MARKS={marks}\n")).expect("write .env");
    std::fs::write(dir.join("procrun.toml"), READY_CONFIG).expect("write procrun.toml");
    std::fs::write(dir.join("envapp.py"), include_str!("../engines/envapp.py"))
        .expect("write envapp.py");
}
