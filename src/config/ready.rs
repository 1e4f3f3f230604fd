//! `ready`, `ready_timeout`, `ready_interval` and `after` in
//! `procrun.toml`: reading the values, then resolving them per type, with
//! unknown names and cycles in `after` reported at their place.

use indexmap::IndexMap;

use super::check::{Cx, Value};
use super::{Config, Patch, Set, suggest};
use crate::diagnostic::{Diagnostic, Location};
use crate::policy::Policy;
use crate::procfile::Procfile;
use crate::readiness::{Check, Readiness};

const READY_HELP: &str = r#"write `ready = "port"`, or a table: `{ port = 5432 }`, `{ http = "/health" }`, `{ log = "TEXT" }`, `{ log_regex = "RE" }` or `{ exec = "COMMAND" }`"#;

impl Cx<'_> {
    /// `ready = "port"` or a table with one check.
    pub(super) fn ready(&mut self, value: &Value<'_>) -> Option<Check> {
        if let Some(text) = value.get_ref().as_str() {
            if text == "port" {
                return Some(Check::Port(None));
            }
            let help = if text.starts_with("http://") || text.starts_with('/') {
                format!("write `ready = {{ http = \"{text}\" }}`")
            } else if let Some(kind) = suggest(text, &["port"]) {
                format!("did you mean \"{kind}\"?")
            } else {
                READY_HELP.to_owned()
            };
            self.error(
                value.span(),
                format!("unknown ready check \"{text}\""),
                Some(help),
            );
            return None;
        }
        let Some(table) = value.get_ref().as_table() else {
            self.error(
                value.span(),
                format!(
                    "`ready` must be \"port\" or a table, found {}",
                    super::a(value.get_ref().type_str())
                ),
                Some(READY_HELP.to_owned()),
            );
            return None;
        };
        let mut found: Option<Check> = None;
        let kinds = ["port", "http", "log", "log_regex", "exec"];
        for (key, value) in table {
            let name = key.get_ref().as_ref();
            if !kinds.contains(&name) {
                let help = match suggest(name, &kinds) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => READY_HELP.to_owned(),
                };
                self.error(
                    key.span(),
                    format!("unknown ready check `{name}`"),
                    Some(help),
                );
                continue;
            }
            if found.is_some() {
                self.error(
                    key.span(),
                    "`ready` takes one check".to_owned(),
                    Some("keep one of the keys".to_owned()),
                );
                continue;
            }
            found = self.one_check(name, value);
        }
        if found.is_none() && table.is_empty() {
            self.error(
                value.span(),
                "`ready` is an empty table".to_owned(),
                Some(READY_HELP.to_owned()),
            );
        }
        found
    }

    fn one_check(&mut self, name: &str, value: &Value<'_>) -> Option<Check> {
        if name == "port" {
            let port = value
                .get_ref()
                .as_integer()
                .and_then(|i| i64::from_str_radix(i.as_str(), i.radix()).ok())
                .and_then(|n| u16::try_from(n).ok())
                .filter(|p| *p > 0);
            if port.is_none() {
                self.error(
                    value.span(),
                    "`ready.port` must be a port number (1-65535)".to_owned(),
                    Some("e.g. `ready = { port = 5432 }`".to_owned()),
                );
            }
            return port.map(|p| Check::Port(Some(p)));
        }
        let Some(text) = value.get_ref().as_str() else {
            self.error(
                value.span(),
                format!(
                    "`ready.{name}` must be a string, found {}",
                    super::a(value.get_ref().type_str())
                ),
                None,
            );
            return None;
        };
        let problem = match name {
            _ if text.trim().is_empty() => Some(format!("`ready.{name}` must not be empty")),
            "http" if text.starts_with("https://") => Some(
                "`ready.http` cannot use TLS (https): give a path, or an http:// URL".to_owned(),
            ),
            "http" if !text.starts_with('/') && !text.starts_with("http://") => Some(format!(
                "`ready.http` must be a path starting with `/` or an http:// URL, found \"{text}\""
            )),
            "http" => {
                let checked = if text.starts_with('/') {
                    crate::readiness::check_path(text)
                } else {
                    crate::readiness::parse_http_url(text).map(|_| ())
                };
                checked
                    .err()
                    .map(|why| format!("`ready.http` is not a URL procrun can ask: {why}"))
            }
            "exec" if text.contains('\0') => {
                Some("`ready.exec` contains a NUL character, which no command can hold".to_owned())
            }
            "log_regex" => regex::Regex::new(text).err().map(|e| {
                // The regex crate's message draws its own caret over
                // several lines; its last line says what is wrong.
                let text = e.to_string();
                let why = text.lines().last().unwrap_or_default().trim();
                let why = why.strip_prefix("error: ").unwrap_or(why);
                format!("`ready.log_regex` is not a valid regular expression: {why}")
            }),
            _ => None,
        };
        if let Some(message) = problem {
            self.error(value.span(), message, None);
            return None;
        }
        let text = text.to_owned();
        Some(match name {
            "http" => Check::Http(text),
            "log" => Check::Log(text),
            "log_regex" => Check::LogRegex(text),
            _ => Check::Exec(text),
        })
    }

    /// `after = ["db", "migrate"]`.
    pub(super) fn after(&mut self, value: &Value<'_>) -> Option<Vec<Set<String>>> {
        let help = r#"write a list of process types, e.g. `after = ["db", "migrate"]`"#;
        let items: Vec<&Value<'_>> = match value.get_ref() {
            super::DeValue::Array(items) => items.iter().collect(),
            _ => {
                self.error(
                    value.span(),
                    format!(
                        "`after` must be a list of process types, found {}",
                        super::describe_value(value.get_ref())
                    ),
                    Some(help.to_owned()),
                );
                return None;
            }
        };
        let mut names = Vec::new();
        for item in items {
            match item.get_ref().as_str() {
                Some(name) => names.push(Set {
                    value: name.to_owned(),
                    at: self.src.at(item.span()),
                }),
                None => self.error(
                    item.span(),
                    format!(
                        "`after` lists process types by name, found {}",
                        super::a(item.get_ref().type_str())
                    ),
                    Some(help.to_owned()),
                ),
            }
        }
        Some(names)
    }
}

/// Each type's readiness, for every Procfile entry. `after` must name
/// Procfile entries and have no cycles; `ready` and `after` only make
/// sense per type (not in `[defaults]`); `ready = "port"` needs a PORT.
pub fn resolve(
    procfile: &Procfile,
    config: Option<&Config>,
    policies: &IndexMap<String, Policy>,
) -> Result<IndexMap<String, Readiness>, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let empty = Patch::default();
    let defaults = config.map_or(&empty, |c| &c.defaults);
    let per_type = |key: &str, at: &Location| {
        Diagnostic::error(format!(
            "`{key}` belongs to one process type, not [defaults]"
        ))
        .at(at.clone())
        .help("move it to a `[process.NAME]` section")
    };
    if let Some(s) = &defaults.ready {
        errors.push(per_type("ready", &s.at));
    }
    if let Some(s) = &defaults.after {
        errors.push(per_type("after", &s.at));
    }
    let mut base = Readiness::default();
    apply(&mut base, defaults);

    let mut out = IndexMap::new();
    // Type → its `after` items, with their places, for the cycle check.
    let mut edges: IndexMap<&str, Vec<&Set<String>>> = IndexMap::new();
    for entry in &procfile.entries {
        let section = config.and_then(|c| c.processes.iter().find(|s| s.name == entry.name));
        let mut readiness = base.clone();
        if let Some(section) = section {
            let patch = &section.patch;
            apply(&mut readiness, patch);
            for item in patch.after.iter().flat_map(|s| &s.value) {
                if procfile.get(&item.value).is_none() {
                    let help = crate::plan::unknown_type_help(procfile, &item.value);
                    errors.push(
                        Diagnostic::error(format!(
                            "`after` names `{}`, which is no process type",
                            item.value
                        ))
                        .at(item.at.clone())
                        .help(help),
                    );
                } else {
                    edges.entry(entry.name.as_str()).or_default().push(item);
                    if !readiness.after.contains(&item.value) {
                        readiness.after.push(item.value.clone());
                    }
                }
            }
            if let (Some(ready), Some(policy)) = (&patch.ready, policies.get(&entry.name))
                && ready.value == Check::Port(None)
                && !policy.port
            {
                errors.push(
                    Diagnostic::error(format!(
                        "`ready = \"port\"` needs a PORT, but `{}` has `port = false`",
                        entry.name
                    ))
                    .at(ready.at.clone())
                    .help("name the port: `ready = { port = 5432 }`"),
                );
            }
            if let Some(timeout) = &patch.ready_timeout
                && timeout.value.is_zero()
            {
                errors.push(zero_timeout(&timeout.at));
            }
            if let Some(interval) = &patch.ready_interval
                && interval.value.is_zero()
            {
                errors.push(
                    Diagnostic::error("`ready_interval` must be above 0")
                        .at(interval.at.clone())
                        .help("e.g. `ready_interval = 0.25` (seconds between probes)"),
                );
            }
        }
        out.insert(entry.name.clone(), readiness);
    }
    if let Some(interval) = &defaults.ready_interval
        && interval.value.is_zero()
    {
        errors.push(
            Diagnostic::error("`ready_interval` must be above 0")
                .at(interval.at.clone())
                .help("e.g. `ready_interval = 0.25` (seconds between probes)"),
        );
    }
    if let Some(timeout) = &defaults.ready_timeout
        && timeout.value.is_zero()
    {
        errors.push(zero_timeout(&timeout.at));
    }
    errors.extend(cycles(&edges));
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn zero_timeout(at: &Location) -> Diagnostic {
    Diagnostic::error("`ready_timeout` must be above 0: no instance could ever be ready")
        .at(at.clone())
        .help("e.g. `ready_timeout = 60` (seconds)")
}

fn apply(readiness: &mut Readiness, patch: &Patch) {
    if let Some(s) = &patch.ready {
        readiness.check = s.value.clone();
    }
    if let Some(s) = &patch.ready_timeout {
        readiness.timeout = s.value;
    }
    if let Some(s) = &patch.ready_interval {
        readiness.interval = s.value;
    }
}

/// One error per cycle of `after`: `web → worker → web`, at the first
/// item, with a note at each further one.
fn cycles(edges: &IndexMap<&str, Vec<&Set<String>>>) -> Vec<Diagnostic> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Open,
        Done,
    }
    fn visit<'a>(
        node: &'a str,
        edges: &IndexMap<&'a str, Vec<&'a Set<String>>>,
        marks: &mut IndexMap<&'a str, Mark>,
        path: &mut Vec<(&'a str, &'a Set<String>)>,
        out: &mut Vec<Diagnostic>,
    ) {
        marks.insert(node, Mark::Open);
        for item in edges.get(node).into_iter().flatten() {
            let next = item.value.as_str();
            path.push((node, item));
            match marks.get(next).copied().unwrap_or(Mark::New) {
                Mark::New => visit(next, edges, marks, path, out),
                Mark::Open => {
                    let start = path.iter().position(|(n, _)| *n == next).unwrap_or(0);
                    let cycle = &path[start..];
                    let mut names: Vec<&str> = cycle.iter().map(|(n, _)| *n).collect();
                    names.push(next);
                    let chain = names.join(" → ");
                    let mut d = Diagnostic::error(format!("`after` has a cycle: {chain}"))
                        .at(cycle[0].1.at.clone())
                        .help("a type cannot wait, even indirectly, for itself: remove one of these `after` entries");
                    for (from, item) in &cycle[1..] {
                        d = d.note(
                            format!("`{from}` starts after `{}` here", item.value),
                            Some(item.at.clone()),
                        );
                    }
                    out.push(d);
                }
                Mark::Done => {}
            }
            path.pop();
        }
        marks.insert(node, Mark::Done);
    }
    let mut marks = IndexMap::new();
    let mut out = Vec::new();
    for node in edges.keys() {
        if marks.get(node).copied().unwrap_or(Mark::New) == Mark::New {
            visit(node, edges, &mut marks, &mut Vec::new(), &mut out);
        }
    }
    out
}
