//! Values that refer to `PORT` or `PS`, which procrun gives each instance
//! (`URL=http://localhost:$PORT/`): the env files are read before any
//! instance exists, so such a value is kept as a template too and expanded
//! again for each instance, which then sees its own port and name — the
//! value its process would compute from its own environment.

use std::collections::HashMap;

use super::expand::When;
use super::{EnvSet, MAX_EXPANDED_BYTES, MAX_VALUE_BYTES};
use crate::diagnostic::{Diagnostic, Location};

/// What a per-instance reference refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Of {
    /// The instance's `PORT`.
    Port,
    /// The instance's `PS`.
    Ps,
    /// An earlier value that refers to them, by its place in
    /// `EnvSet::templates`.
    Earlier(usize),
}

/// A piece of a template.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Piece {
    /// Text, with every other reference already expanded.
    Text(String),
    /// A reference whose value differs per instance.
    Ref {
        of: Of,
        default: Option<(String, When)>,
        /// As written: kept when the instance has no such variable.
        raw: String,
    },
}

/// One assignment whose value refers to PORT or PS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Template {
    pub(super) key: String,
    pub(super) source: String,
    pub(super) line: usize,
    pub(super) pieces: Vec<Piece>,
}

/// An instance's `PORT` or `PS`, as its values see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Given<'a> {
    /// This value.
    Value(&'a str),
    /// Set and never empty, but only known when the process starts: an
    /// export writes a reference for the process's shell to expand.
    Later,
    /// Not set (a type with `port = false` has no `PORT`).
    Unset,
}

/// The instance to expand values for.
#[derive(Clone, Copy, Debug)]
pub struct Instance<'a> {
    /// How messages name it (`web.2`, or a type).
    pub name: &'a str,
    /// Its `PORT`.
    pub port: Given<'a>,
    /// Its `PS`.
    pub ps: Given<'a>,
}

/// A part of a value as an instance gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Text.
    Text(String),
    /// The instance's `PORT`, for [`Given::Later`].
    Port,
    /// The instance's `PS`, for [`Given::Later`].
    Ps,
}

impl EnvSet {
    /// Whether the value of `key` refers to `PORT` or `PS`, and so differs
    /// per instance.
    pub fn is_per_instance(&self, key: &str) -> bool {
        self.per_instance.contains_key(key)
    }

    /// Whether any value does.
    pub fn has_per_instance(&self) -> bool {
        !self.per_instance.is_empty()
    }

    /// The values that refer to `PORT` or `PS`, as `instance` gets them,
    /// in the order of [`EnvSet::vars`]. What they expand to is taken off
    /// `budget`; past it, or past [`MAX_VALUE_BYTES`] for one value, the
    /// error names the variable.
    pub fn per_instance(
        &self,
        instance: Instance<'_>,
        budget: &mut usize,
    ) -> Result<Vec<(&str, Vec<Segment>)>, Diagnostic> {
        let mut done: Vec<Vec<Segment>> = Vec::with_capacity(self.templates.len());
        for template in &self.templates {
            let value = expand(template, instance, &done, budget)?;
            done.push(value);
        }
        Ok(self
            .vars
            .keys()
            .filter_map(|key| {
                let &at = self.per_instance.get(key)?;
                Some((key.as_str(), std::mem::take(&mut done[at])))
            })
            .collect())
    }

    /// Every variable as the instance named `ps`, with `port` (none for a
    /// type with `port = false`), gets it, in definition order. See
    /// [`EnvSet::per_instance`] for `budget`.
    pub fn for_instance(
        &self,
        port: Option<&str>,
        ps: &str,
        budget: &mut usize,
    ) -> Result<Vec<(String, String)>, Diagnostic> {
        let mut own: HashMap<&str, String> = HashMap::new();
        if self.has_per_instance() {
            let instance = Instance {
                name: ps,
                port: port.map_or(Given::Unset, Given::Value),
                ps: Given::Value(ps),
            };
            for (key, segments) in self.per_instance(instance, budget)? {
                own.insert(key, text_of(segments));
            }
        }
        Ok(self
            .vars
            .iter()
            .map(|(key, var)| {
                let value = own
                    .remove(key.as_str())
                    .unwrap_or_else(|| var.value.clone());
                (key.clone(), value)
            })
            .collect())
    }
}

/// The text of segments that hold nothing but text.
fn text_of(segments: Vec<Segment>) -> String {
    segments
        .into_iter()
        .map(|s| match s {
            Segment::Text(t) => t,
            // Only `Given::Later` makes these, never `for_instance`.
            Segment::Port | Segment::Ps => String::new(),
        })
        .collect()
}

/// Whether segments expand to nothing (`PORT` and `PS` never do).
fn is_empty(segments: &[Segment]) -> bool {
    segments
        .iter()
        .all(|s| matches!(s, Segment::Text(t) if t.is_empty()))
}

/// Appends `segments` to `out`, joining adjacent text; returns the bytes
/// added (a `PORT` or `PS` counts as one).
fn append(out: &mut Vec<Segment>, segments: &[Segment]) -> usize {
    let mut added = 0;
    for s in segments {
        match (out.last_mut(), s) {
            (Some(Segment::Text(last)), Segment::Text(t)) => {
                last.push_str(t);
                added += t.len();
            }
            (_, s) => {
                added += match s {
                    Segment::Text(t) => t.len(),
                    Segment::Port | Segment::Ps => 1,
                };
                out.push(s.clone());
            }
        }
    }
    added
}

/// Expands one template for `instance`, given the values of the templates
/// before it.
fn expand(
    template: &Template,
    instance: Instance<'_>,
    done: &[Vec<Segment>],
    budget: &mut usize,
) -> Result<Vec<Segment>, Diagnostic> {
    let given = |g: Given<'_>, later: Segment| match g {
        Given::Value(v) => Some(vec![Segment::Text(v.to_owned())]),
        Given::Later => Some(vec![later]),
        Given::Unset => None,
    };
    let mut out = Vec::new();
    let mut size = 0;
    for piece in &template.pieces {
        let added = match piece {
            Piece::Text(t) => append(&mut out, &[Segment::Text(t.clone())]),
            Piece::Ref { of, default, raw } => {
                let found = match of {
                    Of::Port => given(instance.port, Segment::Port),
                    Of::Ps => given(instance.ps, Segment::Ps),
                    Of::Earlier(at) => Some(done[*at].clone()),
                };
                let text = |t: &str| vec![Segment::Text(t.to_owned())];
                let segments = match (found, default) {
                    (Some(v), Some((d, When::UnsetOrEmpty))) if is_empty(&v) => text(d),
                    (Some(v), _) => v,
                    (None, Some((d, _))) => text(d),
                    (None, None) => text(raw),
                };
                let added = append(&mut out, &segments);
                if added > *budget {
                    return Err(too_much(
                        template,
                        instance,
                        &format!(
                            "the env files' values for all instances expand to more than {} MiB in all",
                            MAX_EXPANDED_BYTES >> 20
                        ),
                    ));
                }
                *budget -= added;
                added
            }
        };
        size += added;
        if size > MAX_VALUE_BYTES {
            return Err(too_much(
                template,
                instance,
                &format!(
                    "the value is larger than {} MiB, the most procrun accepts for one variable",
                    MAX_VALUE_BYTES >> 20
                ),
            ));
        }
    }
    Ok(out)
}

/// The error for a value that outgrew a cap for `instance`.
fn too_much(template: &Template, instance: Instance<'_>, what: &str) -> Diagnostic {
    Diagnostic::error(format!(
        "`{}` for `{}`: {what}",
        template.key, instance.name
    ))
    .at(Location::line(&template.source, template.line))
    .help("procrun caps what `$` references expand to (see docs/files.md): does a chain of references repeat a large value?")
}
