//! Readiness and start order, per process type: when an instance counts as
//! ready (`ready = …` in `procrun.toml`), and which types must be ready (or,
//! for one-shots, done) before it starts (`after = […]`). Resolved once
//! into the plan; the supervisor's state machine decides with it, and the
//! dispatcher runs the checks.

use std::time::Duration;

/// How long an instance may take to become ready when nothing says.
pub const DEFAULT_READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The pause between two probes when nothing says.
pub const DEFAULT_READY_INTERVAL: Duration = Duration::from_millis(250);

/// What makes an instance ready.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Check {
    /// Nothing: ready as soon as it has started.
    #[default]
    Started,
    /// A TCP connection to this port on 127.0.0.1 succeeds; `None`: its
    /// own `PORT`.
    Port(Option<u16>),
    /// A GET answers 2xx or 3xx: a path on `http://127.0.0.1:$PORT`, or a
    /// whole `http://` URL.
    Http(String),
    /// A line of its output (stdout or stderr) contains this text.
    Log(String),
    /// A line of its output matches this regular expression (checked when
    /// the file is read).
    LogRegex(String),
    /// This command (`sh -c`, with the instance's environment) exits 0.
    Exec(String),
}

impl Check {
    /// The kind, as `check`, the JSON `ready` event and the docs name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Check::Started => "started",
            Check::Port(_) => "port",
            Check::Http(_) => "http",
            Check::Log(_) => "log",
            Check::LogRegex(_) => "log_regex",
            Check::Exec(_) => "exec",
        }
    }

    /// What was found, for an instance whose PORT is `port`: `port 5432
    /// accepts connections`.
    pub fn describe(&self, port: u16) -> String {
        match self {
            Check::Started => "started".to_owned(),
            Check::Port(p) => format!("port {} accepts connections", p.unwrap_or(port)),
            Check::Http(target) => format!("GET {} succeeds", http_url(target, port)),
            Check::Log(text) => format!("its output contains {text:?}"),
            Check::LogRegex(re) => format!("its output matches /{re}/"),
            Check::Exec(cmd) => format!("`{cmd}` exits 0"),
        }
    }

    /// As `check` shows it: `ready=port`, `ready=http:/health`.
    pub fn short(&self) -> String {
        match self {
            Check::Started => String::new(),
            Check::Port(None) => "ready=port".to_owned(),
            Check::Port(Some(p)) => format!("ready=port:{p}"),
            Check::Http(t) => format!("ready=http:{t}"),
            Check::Log(_) => "ready=log".to_owned(),
            Check::LogRegex(_) => "ready=log-regex".to_owned(),
            Check::Exec(_) => "ready=exec".to_owned(),
        }
    }
}

/// The PORT a command sets itself (`PORT=3000 exec server`), if it does.
pub fn own_port(spec: &crate::plan::ProcessSpec) -> Option<u16> {
    crate::shell::leading_assignments(&spec.command)
        .into_iter()
        .find(|(name, _)| *name == "PORT")
        .and_then(|(_, value)| crate::plan::parse_port(value))
}

/// The port `ready = "port"` and a path-only http check probe: the
/// command's own PORT, else the instance's.
pub fn probe_port(spec: &crate::plan::ProcessSpec) -> u16 {
    own_port(spec).unwrap_or(spec.port)
}

/// The URL an http check asks: a path is on `http://127.0.0.1:PORT`.
pub fn http_url(target: &str, port: u16) -> String {
    if target.starts_with("http://") {
        target.to_owned()
    } else {
        format!("http://127.0.0.1:{port}{target}")
    }
}

/// An http check's URL, taken apart: what the probe connects to and asks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget<'a> {
    /// The host to connect to (an IPv6 address without its brackets).
    pub host: &'a str,
    pub port: u16,
    /// The `Host:` header: the URL's authority as written.
    pub authority: &'a str,
    /// The request target, from its `/`.
    pub path: &'a str,
}

/// Parses `http://host[:port][/path]` (an IPv6 host in brackets), or says
/// what is wrong with it. `ready.http` is checked with this when the file
/// is read, so that the probe never meets a URL it cannot ask.
pub fn parse_http_url(url: &str) -> Result<HttpTarget<'_>, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| "it must start with http:// (or be a path starting with `/`)".to_owned())?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    check_path(path)?;
    if authority.is_empty() {
        return Err("it names no host".to_owned());
    }
    if authority.contains('@') {
        return Err("a user name or password (`user@`) is not supported".to_owned());
    }
    let (host, port) =
        if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| "its IPv6 address has no closing `]`".to_owned())?;
            match after {
                "" => (host, None),
                _ => (
                    host,
                    Some(after.strip_prefix(':').ok_or_else(|| {
                        format!("`{after}` after the IPv6 address is not a `:PORT`")
                    })?),
                ),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
    if host.is_empty() {
        return Err("it names no host".to_owned());
    }
    let port = match port {
        None => 80,
        Some(text) => text
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0 && text.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| format!("`{text}` is not a port number (1-65535)"))?,
    };
    Ok(HttpTarget {
        host,
        port,
        authority,
        path,
    })
}

/// Whether `path` can be the target of an HTTP request line: a space or a
/// control character (a CR or LF would start a header of its own) must be
/// percent-encoded.
pub fn check_path(path: &str) -> Result<(), String> {
    match path.chars().find(|c| c.is_whitespace() || c.is_control()) {
        Some(' ') => Err("its path holds a space: percent-encode it (%20)".to_owned()),
        Some(c) if c.is_ascii() => Err(format!(
            "its path holds the character {}, which an HTTP request cannot carry: percent-encode it (%{:02X})",
            c.escape_debug(),
            u32::from(c)
        )),
        Some(c) => Err(format!(
            "its path holds the character {}, which an HTTP request cannot carry: percent-encode its UTF-8 bytes",
            c.escape_unicode()
        )),
        None => Ok(()),
    }
}

/// Everything procrun knows of a type's readiness and start order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Readiness {
    /// When an instance is ready.
    pub check: Check,
    /// Not ready by then: the instance has failed.
    pub timeout: Duration,
    /// The pause between two probes.
    pub interval: Duration,
    /// The types that must be ready (or, if they can die, have exited 0)
    /// before an instance of this type starts.
    pub after: Vec<String>,
}

impl Default for Readiness {
    fn default() -> Self {
        Readiness {
            check: Check::Started,
            timeout: DEFAULT_READY_TIMEOUT,
            interval: DEFAULT_READY_INTERVAL,
            after: Vec::new(),
        }
    }
}

impl Readiness {
    /// What differs from the defaults, as `check`'s POLICY column shows
    /// it: `ready=port, after=db,migrate`; empty when nothing does.
    pub fn describe(&self) -> Vec<String> {
        let mut items = Vec::new();
        if self.check != Check::Started {
            items.push(self.check.short());
            if self.timeout != DEFAULT_READY_TIMEOUT {
                items.push(format!(
                    "ready-timeout={}",
                    crate::policy::format_seconds(self.timeout)
                ));
            }
        }
        if !self.after.is_empty() {
            items.push(format!("after={}", self.after.join(",")));
        }
        items
    }
}

/// The plan's warnings about `after`: an entry naming a type that runs no
/// instance (with `-m` or `start NAME…`) holds nobody up; a type that can
/// die and has a `ready` check is waited for until it exits 0, not until
/// its check passes.
pub fn plan_warnings(plan: &crate::plan::Plan) -> Vec<crate::diagnostic::Diagnostic> {
    let mut out = Vec::new();
    for t in plan.types.iter().filter(|t| t.count > 0) {
        for dep in &t.readiness.after {
            let Some(d) = plan.types.iter().find(|d| d.name == *dep) else {
                continue;
            };
            if d.count == 0 {
                out.push(crate::diagnostic::Diagnostic::warning(format!(
                    "`{}` starts after `{dep}`, which runs no instance here: `{}` does not wait for it",
                    t.name, t.name
                )));
            } else if d.policy.can_die && d.readiness.check != Check::Started {
                out.push(
                    crate::diagnostic::Diagnostic::warning(format!(
                        "`{dep}` can die, so `{}` waits for it to exit with code 0, not for its `ready` check",
                        t.name
                    ))
                    .help(format!(
                        "a one-shot needs no `ready`; for a service that may die, remove `can_die` from `{dep}`"
                    )),
                );
            }
        }
    }
    out
}

/// A warning per type whose `ready` or `after` an export leaves out.
pub fn not_exported(plan: &crate::plan::Plan) -> Vec<crate::diagnostic::Diagnostic> {
    plan.types
        .iter()
        .filter_map(|t| {
            let r = &t.readiness;
            let (keys, verb) = match (r.check != Check::Started, !r.after.is_empty()) {
                (true, true) => ("`ready` and `after`", "are"),
                (true, false) => ("`ready`", "is"),
                (false, true) => ("`after`", "is"),
                (false, false) => return None,
            };
            Some(
                crate::diagnostic::Diagnostic::warning(format!(
                    "{keys} of `{}` {verb} not exported yet: the exported services do not wait for each other",
                    t.name
                ))
                .help("order the services with the engine's own settings for now"),
            )
        })
        .collect()
}

/// The start order as levels: each type's level is one more than the
/// highest of the types it starts after (level 1: none). `after` must be
/// free of cycles and name only known types (see
/// [`crate::config::ready::resolve`]); unknown names are ignored here.
pub fn levels<'a>(types: &[(&'a str, &'a [String])]) -> Vec<Vec<&'a str>> {
    let mut level: Vec<Option<usize>> = vec![None; types.len()];
    // At most one pass per type: a cycle (never expected) stops there.
    for _ in 0..=types.len() {
        let mut changed = false;
        for (i, (_, after)) in types.iter().enumerate() {
            if level[i].is_some() {
                continue;
            }
            let deps: Option<Vec<usize>> = after
                .iter()
                .filter_map(|a| types.iter().position(|(n, _)| n == a))
                .map(|j| level[j])
                .collect();
            if let Some(deps) = deps {
                level[i] = Some(deps.into_iter().max().map_or(0, |m| m + 1));
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let top = level.iter().flatten().max().copied().unwrap_or(0);
    let mut out = vec![Vec::new(); top + 1];
    for (i, (name, _)) in types.iter().enumerate() {
        out[level[i].unwrap_or(top)].push(*name);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_after() {
        let none: Vec<String> = Vec::new();
        let web = vec!["db".to_owned(), "migrate".to_owned()];
        let migrate = vec!["db".to_owned()];
        let types = [
            ("web", web.as_slice()),
            ("db", none.as_slice()),
            ("migrate", migrate.as_slice()),
            ("worker", migrate.as_slice()),
            ("clock", none.as_slice()),
        ];
        assert_eq!(
            levels(&types),
            vec![vec!["db", "clock"], vec!["migrate", "worker"], vec!["web"]]
        );
    }

    #[test]
    fn descriptions() {
        assert_eq!(
            Check::Port(None).describe(5432),
            "port 5432 accepts connections"
        );
        assert_eq!(
            Check::Http("/health".into()).describe(5000),
            "GET http://127.0.0.1:5000/health succeeds"
        );
        assert_eq!(
            Check::Http("http://localhost:9/x".into()).describe(5000),
            "GET http://localhost:9/x succeeds"
        );
        let r = Readiness {
            check: Check::Port(Some(5432)),
            after: vec!["db".into()],
            ..Readiness::default()
        };
        assert_eq!(r.describe(), ["ready=port:5432", "after=db"]);
    }
    #[test]
    fn http_urls_are_taken_apart_as_the_probe_asks_them() {
        let t = parse_http_url("http://localhost:9/x?y=1").expect("valid");
        assert_eq!(
            (t.host, t.port, t.authority, t.path),
            ("localhost", 9, "localhost:9", "/x?y=1")
        );
        let t = parse_http_url("http://[::1]:8080").expect("valid");
        assert_eq!(
            (t.host, t.port, t.authority, t.path),
            ("::1", 8080, "[::1]:8080", "/")
        );
        assert_eq!(parse_http_url("http://h").expect("valid").port, 80);
        for (url, why) in [
            ("http://", "no host"),
            ("http://:80/", "no host"),
            ("http://[::1", "closing `]`"),
            ("http://[::1]x/", "not a `:PORT`"),
            ("http://h:99999/", "`99999` is not a port"),
            ("http://h:0/", "`0` is not a port"),
            ("http://h:+80/", "`+80` is not a port"),
            ("http://u:p@h:1/", "user name"),
            ("http://h/a b", "a space"),
            ("http://h/\r\nX: y", "%0D"),
            ("http://h/\0", "%00"),
            ("ftp://h/", "http://"),
        ] {
            let found = parse_http_url(url).expect_err(url);
            assert!(found.contains(why), "{url}: {found}");
        }
    }
}
