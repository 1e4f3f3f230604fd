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
    own_port_of(&spec.command)
}

/// The PORT `command` sets itself, if it does.
pub fn own_port_of(command: &str) -> Option<u16> {
    crate::shell::leading_assignments(command)
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

/// An http check's target taken apart: where the probe connects and what
/// it asks for. `procrun.toml` is checked with [`HttpTarget::parse`], so
/// the probe and every export read the same host, port and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    /// The host as the URL names it, without an IPv6 address's brackets:
    /// `127.0.0.1`, `localhost`, `::1`.
    pub host: String,
    /// The port; 80 when the URL names none.
    pub port: u16,
    /// The path and query, from its `/`; the fragment (`#…`), which is
    /// never sent, is left out.
    pub path: String,
}

impl HttpTarget {
    /// A check's target: a path (`/health`, asked of 127.0.0.1:`port`) or
    /// a whole URL, `http://HOST[:PORT][/PATH]`, where HOST is a name, an
    /// IPv4 address or an IPv6 address in brackets (`http://[::1]:8080/`).
    /// The error says what is wrong, for a located message.
    pub fn parse(target: &str, port: u16) -> Result<HttpTarget, String> {
        let (host, port, rest) = match target.strip_prefix("http://") {
            Some(rest) => {
                let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                let (host, port) = authority(&rest[..end])?;
                (host, port, &rest[end..])
            }
            None if target.starts_with('/') => ("127.0.0.1".to_owned(), port, target),
            None => return Err("it must be a path starting with `/` or an http:// URL".into()),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        if let Some(c) = rest.chars().find(|c| !c.is_ascii_graphic()) {
            return Err(format!(
                "its path holds {}, which an HTTP request cannot carry as it is; percent-encode it (a space is %20)",
                describe_char(c)
            ));
        }
        let path = if rest.starts_with('/') {
            rest.to_owned()
        } else {
            format!("/{rest}")
        };
        Ok(HttpTarget { host, port, path })
    }

    /// Whether the host is an IPv6 address (written in brackets in a URL).
    pub fn is_ipv6(&self) -> bool {
        self.host.contains(':')
    }

    /// `HOST:PORT` as a URL and the `Host` header write it: `[::1]:8080`.
    pub fn authority(&self) -> String {
        if self.is_ipv6() {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The whole URL: `http://[::1]:8080/health`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority(), self.path)
    }

    /// Whether the host is this machine's loopback (`localhost`,
    /// 127.0.0.0/8, `::1`): inside a container, the container itself.
    pub fn is_loopback(&self) -> bool {
        self.host.eq_ignore_ascii_case("localhost")
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

/// The host and port of a URL's authority (`host`, `host:port`,
/// `[v6]:port`); 80 without a port.
fn authority(text: &str) -> Result<(String, u16), String> {
    if text.contains('@') {
        return Err("a user name or password in the URL is not supported".into());
    }
    let (host, port) = if let Some(rest) = text.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return Err("its IPv6 address lacks the closing `]`".into());
        };
        if inside.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("`[{inside}]` is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(p) => Some(p),
                None => return Err(format!("`{after}` after `]` is no `:PORT`")),
            },
        };
        (inside.to_owned(), port)
    } else {
        let (host, port) = match text.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (text, None),
        };
        if port.is_some_and(|p| p.contains(':')) {
            return Err("an IPv6 address goes in brackets: http://[::1]:8080/".into());
        }
        if host.is_empty() {
            return Err("the URL names no host".into());
        }
        if let Some(c) = host
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c)))
        {
            return Err(format!("its host holds {}", describe_char(c)));
        }
        (host.to_owned(), port)
    };
    let port = match port {
        None => 80,
        Some(p) => match p.parse::<u16>() {
            Ok(n) if n > 0 && p.bytes().all(|b| b.is_ascii_digit()) => n,
            _ => return Err(format!("`{p}` is not a port number (1-65535)")),
        },
    };
    Ok((host, port))
}

/// A character for a message: `' '` as `a space`, others quoted or as
/// `U+000A`.
fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".to_owned(),
        c if c.is_control() || !c.is_ascii() => format!("U+{:04X}", c as u32),
        c => format!("`{c}`"),
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
    fn http_targets() {
        let t = |s: &str| HttpTarget::parse(s, 5000);
        let ok = |s: &str| t(s).expect(s);
        assert_eq!(
            ok("/health?x=1"),
            HttpTarget {
                host: "127.0.0.1".into(),
                port: 5000,
                path: "/health?x=1".into()
            }
        );
        let v6 = ok("http://[::1]:8080/health#top");
        assert_eq!(
            (v6.host.as_str(), v6.port, v6.path.as_str()),
            ("::1", 8080, "/health")
        );
        assert_eq!(v6.authority(), "[::1]:8080");
        assert_eq!(v6.url(), "http://[::1]:8080/health");
        assert!(v6.is_ipv6() && v6.is_loopback());
        let bare = ok("http://[::1]");
        assert_eq!((bare.port, bare.path.as_str()), (80, "/"));
        let named = ok("http://localhost:9?q");
        assert_eq!(
            (named.host.as_str(), named.port, named.path.as_str()),
            ("localhost", 9, "/?q")
        );
        assert!(named.is_loopback() && !named.is_ipv6());
        assert!(!ok("http://db:5432/").is_loopback());
        assert!(ok("http://127.0.0.2/").is_loopback());
        for (bad, why) in [
            ("http://::1:8080/", "brackets"),
            ("http://[::1/", "closing"),
            ("http://[::g]:1/", "not an IPv6 address"),
            ("http://[::1]x/", "no `:PORT`"),
            ("http://h:0/", "not a port"),
            ("http://h:99999/", "not a port"),
            ("http://h:/", "not a port"),
            ("http://h:+1/", "not a port"),
            ("http:///x", "no host"),
            ("http://u:p@h/", "user name"),
            ("http://h o/", "a space"),
            ("http://h/a b", "a space"),
            ("/a\r\n", "U+000D"),
            ("/caf\u{e9}", "U+00E9"),
            ("health", "path starting"),
        ] {
            let e = t(bad).expect_err(bad);
            assert!(e.contains(why), "{bad}: {e}");
        }
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
}
