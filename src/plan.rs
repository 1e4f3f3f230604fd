//! The plan: what would run, decided once from the Procfile, the env files,
//! the formation and the base port. `start` spawns it, `check` prints it and
//! `export` renders it.

use std::path::{Path, PathBuf};

use indexmap::IndexMap;

use crate::diagnostic::{Diagnostic, Location};
use crate::env::EnvSet;
use crate::formation::{Formation, MAX_TOTAL_INSTANCES};
use crate::policy::Policy;
use crate::procfile::Procfile;
use crate::readiness::Readiness;

/// The default base port (foreman's).
pub const DEFAULT_PORT: u16 = 5000;

/// Ports between two consecutive process types.
pub const PORT_STEP: u32 = 100;

/// One process type of the Procfile, with its place in the formation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessType {
    /// The name, e.g. `web`.
    pub name: String,
    /// The command, verbatim from the Procfile.
    pub command: String,
    /// Position in the whole Procfile (0-based): decides port and colour.
    pub index: usize,
    /// How many instances run.
    pub count: u32,
    /// The PORT of instance 1.
    pub port: u32,
    /// What procrun does when an instance ends, and how it stops one.
    pub policy: Policy,
    /// When an instance is ready, and what it starts after.
    pub readiness: Readiness,
}

/// One instance to run, e.g. `web.2`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessSpec {
    /// `web.2`.
    pub name: String,
    /// `web`.
    pub type_name: String,
    /// Position of the type in the Procfile (0-based).
    pub type_index: usize,
    /// 1-based instance number.
    pub number: u32,
    /// The command, verbatim; run through `/bin/sh -c`.
    pub command: String,
    /// Its `PORT`.
    pub port: u16,
    /// The working directory (the app root).
    pub cwd: PathBuf,
    /// Variables to set on top of the inherited environment: the env files'
    /// values, then `PORT` and `PS`.
    pub env: Vec<(String, String)>,
    /// Its type's policy.
    pub policy: Policy,
    /// Its type's readiness check and start order.
    pub readiness: Readiness,
}

/// Where the base port came from (shown by `check`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSource {
    /// The `port` setting: `-p/--port`, `PROCRUN_PORT` or `.foreman`
    /// (`Settings::origins` says which).
    Flag,
    /// `PORT` in an env file.
    EnvFile(String),
    /// `PORT` in procrun's environment.
    Environment,
    /// Nothing set it.
    Default,
}

/// Everything that would run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The app root: every process runs there.
    pub root: PathBuf,
    /// Every Procfile entry in order, with its count (possibly 0).
    pub types: Vec<ProcessType>,
    /// The instances that run, in Procfile order then instance number.
    pub instances: Vec<ProcessSpec>,
    /// The base port.
    pub base_port: u16,
    /// Where it came from.
    pub port_source: PortSource,
    /// The env files' variables (without PORT/PS).
    pub env: EnvSet,
    /// Non-fatal findings of the Procfile, the env files and the plan.
    pub warnings: Vec<Diagnostic>,
}

/// What the user asked for.
#[derive(Clone, Debug, Default)]
pub struct PlanRequest {
    /// `-m/--formation`.
    pub formation: Formation,
    /// `start NAME…`: only these types (empty: all).
    pub selected: Vec<String>,
    /// `-p/--port`.
    pub port: Option<u16>,
    /// The app root.
    pub root: PathBuf,
}

/// Builds the plan with every type's default policy. `inherited` looks up
/// procrun's own environment (for `$PORT`). Every problem is reported.
pub fn build(
    procfile: &Procfile,
    env: &EnvSet,
    request: &PlanRequest,
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Vec<Diagnostic>> {
    build_with(procfile, env, request, &IndexMap::new(), inherited)
}

/// Builds the plan with the given policies (type name → policy; a type
/// missing from `policies` gets [`Policy::default`]). A type whose policy
/// has `port: false` gets no `PORT` in its instances' env (its port range
/// stays reserved, so the next types' ports do not move).
pub fn build_with(
    procfile: &Procfile,
    env: &EnvSet,
    request: &PlanRequest,
    policies: &IndexMap<String, Policy>,
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Result<Plan, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    // Every non-fatal finding in one place: the Procfile's, the env files'
    // and the plan's own.
    let mut warnings = procfile.warnings.clone();
    warnings.extend(env.warnings.iter().cloned());
    let known = procfile.names().collect::<Vec<_>>().join(", ");

    for (name, (_, at)) in &request.formation.counts {
        if procfile.get(name).is_none() {
            errors.push(
                Diagnostic::error(format!("unknown process type `{name}` in the formation"))
                    .at(at.clone())
                    .help(unknown_type_help(procfile, name)),
            );
        }
    }
    for name in &request.selected {
        if procfile.get(name).is_none() {
            errors.push(
                Diagnostic::error(format!("unknown process type `{name}`"))
                    .help(unknown_type_help(procfile, name)),
            );
        }
    }

    let (base_port, port_source) = match base_port(env, request.port, inherited) {
        Ok(found) => found,
        Err(d) => {
            errors.push(d);
            (DEFAULT_PORT, PortSource::Default)
        }
    };
    if let Some(var) = env.vars.get("PORT") {
        warnings.push(
            Diagnostic::warning(format!(
                "`{}` sets PORT={}: procrun uses it as the base port and gives each instance its own PORT",
                var.source, var.value
            ))
            .at(Location::file(&format!("{}:{}", var.source, var.line))),
        );
    }
    if let Some(var) = env.vars.get("PS") {
        warnings.push(
            Diagnostic::warning(format!(
                "`{}` sets PS, which procrun overrides with each instance's name (web.1, …)",
                var.source
            ))
            .at(Location::file(&format!("{}:{}", var.source, var.line))),
        );
    }

    let counts: Vec<u32> = procfile
        .entries
        .iter()
        .map(|entry| {
            if request.selected.is_empty() {
                // No -m at all means `all=1`; with -m, unnamed types get 0.
                let unnamed = u32::from(
                    request.formation.all.is_none() && request.formation.counts.is_empty(),
                );
                request.formation.count(&entry.name, unnamed)
            } else if request.selected.contains(&entry.name) {
                request.formation.count(&entry.name, 1)
            } else {
                0
            }
        })
        .collect();
    // Before any instance is built: ten million of them would exhaust the
    // memory just to be refused.
    let total: u64 = counts.iter().map(|&n| u64::from(n)).sum();
    if total > MAX_TOTAL_INSTANCES {
        let mut d = Diagnostic::error(format!(
            "the formation asks for {total} instances in all: procrun runs at most {MAX_TOTAL_INSTANCES}"
        ))
        .help(format!(
            "{} process types; lower the counts, e.g. -m all=1",
            procfile.entries.len()
        ));
        if !request.formation.text.trim().is_empty() {
            d = d.at(request.formation.whole());
        }
        errors.push(d);
        return Err(errors);
    }

    let mut types = Vec::new();
    let mut specs = Vec::new();
    // What the values that refer to PORT or PS expand to, for all
    // instances together.
    let mut budget = crate::env::MAX_EXPANDED_BYTES;
    let mut env_failed = false;
    // Ports past 65535: one error for the first, with how many more.
    let mut over_port: Option<Diagnostic> = None;
    let mut over_port_more = 0u64;
    for ((index, entry), count) in procfile.entries.iter().enumerate().zip(counts) {
        let policy = policies.get(&entry.name).copied().unwrap_or_default();
        let port = u32::from(base_port) + PORT_STEP * index as u32;
        if count > PORT_STEP {
            warnings.push(Diagnostic::warning(format!(
                "{count} instances of `{}`: their ports overlap the next process type's (each type gets {PORT_STEP} ports)",
                entry.name
            )));
        }
        if let Some(number) = (1..=count).find(|n| port + n - 1 > u32::from(u16::MAX)) {
            if over_port.is_none() {
                over_port = Some(Diagnostic::error(format!(
                    "`{}.{number}` would get PORT={}, above the highest port 65535",
                    entry.name,
                    port + number - 1
                )));
            } else {
                over_port_more += 1;
            }
            over_port_more += u64::from(count - number);
        }
        types.push(ProcessType {
            name: entry.name.clone(),
            command: entry.command.clone(),
            index,
            count,
            port,
            policy,
            readiness: Readiness::default(),
        });
        if let Some(t) = types.last() {
            for number in 1..=count {
                match instance_spec(t, number, env, &request.root, &mut budget) {
                    Ok(Some(spec)) => specs.push(spec),
                    // Above port 65535: reported above.
                    Ok(None) => break,
                    // Said once: the budget is spent for every instance.
                    Err(d) => {
                        if !env_failed {
                            env_failed = true;
                            errors.push(d);
                        }
                        break;
                    }
                }
            }
        }
    }

    warnings.extend(unset_in_commands(procfile, env, &types, inherited));

    if let Some(d) = over_port {
        let more = match over_port_more {
            0 => String::new(),
            1 => " (and 1 more instance)".to_owned(),
            n => format!(" (and {n} more instances)"),
        };
        errors.push(d.help(format!(
            "choose a lower base port with -p/--port, or run fewer instances{more}"
        )));
    }
    if errors.is_empty() && specs.is_empty() {
        errors.push(
            Diagnostic::error("the formation starts no process").help(format!(
                "give at least one type a count above 0, e.g. -m all=1 (types: {known})"
            )),
        );
    }
    if errors.is_empty() {
        Ok(Plan {
            root: request.root.clone(),
            types,
            instances: specs,
            base_port,
            port_source,
            env: env.clone(),
            warnings,
        })
    } else {
        Err(errors)
    }
}

/// Instance `number` of type `t`: its name, PORT (`None` above 65535),
/// and the env files' variables with its own PORT and PS (values that
/// refer to them are expanded for this instance, from `budget`).
fn instance_spec(
    t: &ProcessType,
    number: u32,
    env: &EnvSet,
    root: &Path,
    budget: &mut usize,
) -> Result<Option<ProcessSpec>, Diagnostic> {
    let Ok(port) = u16::try_from(t.port + number - 1) else {
        return Ok(None);
    };
    let name = format!("{}.{number}", t.name);
    // `$PORT` and `$PS` in the env files' values are this instance's own.
    let own_port = t.policy.port.then(|| port.to_string());
    let mut vars = env.for_instance(own_port.as_deref(), &name, budget)?;
    vars.retain(|(k, _)| k != "PORT" && k != "PS");
    // Kept as long as the instance: no room beyond its two.
    vars.reserve_exact(2);
    if t.policy.port {
        vars.push(("PORT".to_owned(), port.to_string()));
    }
    vars.push(("PS".to_owned(), name.clone()));
    Ok(Some(ProcessSpec {
        name,
        type_name: t.name.clone(),
        type_index: t.index,
        number,
        command: t.command.clone(),
        port,
        cwd: root.to_owned(),
        env: vars,
        policy: t.policy,
        readiness: t.readiness.clone(),
    }))
}

impl Plan {
    /// The spec of instance `number` of type `type_name`, by the same rules
    /// as the plan's own (scaling up while running); `None` for an unknown
    /// type or a PORT above 65535.
    pub fn instance(&self, type_name: &str, number: u32) -> Option<ProcessSpec> {
        let t = self.types.iter().find(|t| t.name == type_name)?;
        let mut budget = crate::env::MAX_EXPANDED_BYTES;
        instance_spec(t, number, &self.env, &self.root, &mut budget)
            .ok()
            .flatten()
    }

    /// Gives each type (and its instances) its readiness; a type missing
    /// from `readiness` keeps the default.
    pub fn set_readiness(&mut self, readiness: &IndexMap<String, Readiness>) {
        for t in &mut self.types {
            if let Some(r) = readiness.get(&t.name) {
                t.readiness = r.clone();
            }
        }
        for i in &mut self.instances {
            if let Some(r) = readiness.get(&i.type_name) {
                i.readiness = r.clone();
            }
        }
    }

    /// Whether some type starts after another.
    pub fn ordered(&self) -> bool {
        self.types.iter().any(|t| !t.readiness.after.is_empty())
    }
}

/// The help of an unknown process type `name`: the closest entry, if one
/// is close, and every entry of the Procfile.
pub fn unknown_type_help(procfile: &Procfile, name: &str) -> String {
    let names: Vec<&str> = procfile.names().collect();
    let defines = format!(
        "`{}` defines: {}",
        procfile.path.display(),
        names.join(", ")
    );
    match crate::diagnostic::suggest(name, &names) {
        Some(s) => format!("did you mean `{s}`? {defines}"),
        None => defines,
    }
}

/// A warning for each `$NAME` in the command of a type that runs where
/// NAME is set neither by the env files, nor by procrun (`PORT`, `PS`), nor
/// in procrun's environment: the shell would expand it to nothing.
fn unset_in_commands(
    procfile: &Procfile,
    env: &EnvSet,
    types: &[ProcessType],
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Vec<Diagnostic> {
    procfile
        .references
        .iter()
        .filter_map(|r| {
            let t = types.get(r.entry).filter(|t| t.count > 0)?;
            let name = r.name.as_str();
            let set = match name {
                "PORT" => t.policy.port,
                "PS" | crate::supervisor::spawn::PYTHONUNBUFFERED => true,
                _ => env.vars.contains_key(name) || inherited(name).is_some(),
            };
            if set {
                return None;
            }
            let d = Diagnostic::warning(format!(
                "`${name}` in the command of `{}` is not set: the shell expands it to nothing",
                t.name
            ))
            .at(r.location.clone());
            Some(if name == "PORT" {
                d.help(format!(
                    "`{}` has `port = false`, so procrun gives it no PORT",
                    t.name
                ))
            } else {
                d.help(format!(
                    "set {name} in an env file or in procrun's environment, or give it a default: `${{{name}:-…}}`"
                ))
            })
        })
        .collect()
}

/// `-p` > `PORT` in the env files > `$PORT` > 5000.
fn base_port(
    env: &EnvSet,
    flag: Option<u16>,
    inherited: &dyn Fn(&str) -> Option<String>,
) -> Result<(u16, PortSource), Diagnostic> {
    if let Some(port) = flag {
        return Ok((port, PortSource::Flag));
    }
    if let Some(var) = env.vars.get("PORT") {
        return parse_port(&var.value)
            .map(|p| (p, PortSource::EnvFile(var.source.clone())))
            .ok_or_else(|| {
                Diagnostic::error(format!(
                    "PORT={:?} in `{}` is not a port number (1-65535)",
                    var.value, var.source
                ))
                .at(Location::file(&format!("{}:{}", var.source, var.line)))
            });
    }
    if let Some(value) = inherited("PORT") {
        return parse_port(&value)
            .map(|p| (p, PortSource::Environment))
            .ok_or_else(|| {
                Diagnostic::error(format!(
                    "PORT={value:?} in the environment is not a port number (1-65535)"
                ))
                .help("unset PORT or pass -p/--port")
            });
    }
    Ok((DEFAULT_PORT, PortSource::Default))
}

/// A port number from 1 to 65535.
pub fn parse_port(text: &str) -> Option<u16> {
    text.trim().parse::<u16>().ok().filter(|p| *p > 0)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
