//! The dashboard's state, and how it changes: from the control protocol's
//! answers (`ps`, the followed log records, the end of the app) and from
//! the user's intents ([`super::keys`]). Pure: no terminal, no socket; what
//! is to be asked of procrun comes out as [`Effect`]s for the session to
//! carry out. What each action asks is in [`super::actions`], what `ps`
//! says in [`super::status`]; the tests are in `model_tests.rs`; what is
//! left (about 500 lines) is the state and its updates, one concept.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ui::keys::Intent;
use crate::ui::logs::{self, Incoming, Kind, Lines, Store};
pub use crate::ui::status::{Instance, Ps, State, TypeCount};
use crate::ui::tty::Tty;

/// How long a message stays in the status line.
pub const MESSAGE_TIME: Duration = Duration::from_secs(6);

/// At most this many requests at once (each has a connection of its own).
pub const MAX_IN_FLIGHT: usize = 8;

/// What the list's selection is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selected {
    /// Every instance, merged.
    All,
    /// One instance, by name.
    Instance(String),
    /// A type that has no instance (scaled to 0).
    Type(String),
}

/// One row of the list.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Row<'a> {
    /// The merged stream.
    All,
    /// An instance.
    Instance(&'a Instance),
    /// A type without instances.
    Type(&'a TypeCount),
}

/// A request for procrun, made by the session on a connection of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The protocol's method.
    pub method: &'static str,
    /// Its params.
    pub params: Value,
    /// What the status line calls it: `restart of web.1`.
    pub label: String,
}

/// What the session is to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Effect {
    /// Send this request.
    Call(Call),
    /// Ask for `ps` now, not at the next tick.
    Poll,
    /// Leave the dashboard.
    Quit,
    /// Connect to `name`'s terminal, sized `rows` × `cols`, on a
    /// connection of its own, `link` ([`super::tty`]).
    Attach {
        /// Which connection (its reports carry it).
        link: u64,
        /// The instance.
        name: String,
        /// The pane's text rows.
        rows: u16,
        /// The pane's text columns.
        cols: u16,
    },
    /// Bytes typed for the connected instance.
    Type(Vec<u8>),
    /// Give the connected instance's terminal this size.
    Resize {
        /// Rows.
        rows: u16,
        /// Columns.
        cols: u16,
    },
    /// Close the connection to the instance's terminal.
    Detach,
}

/// What covers the panes.
#[derive(Clone, Debug, PartialEq)]
pub enum Overlay {
    /// Nothing.
    None,
    /// The keys.
    Help,
    /// A question; `y` sends the call (and, for a quit, leaves after).
    Confirm {
        /// The question.
        question: String,
        /// What `y` does.
        call: Call,
    },
    /// A search being typed.
    Search(String),
}

/// The output pane's position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pane {
    /// Lines between the newest line and the one at the pane's bottom.
    pub offset: usize,
    /// New lines scroll the pane.
    pub follow: bool,
    /// Long lines wrap (else they are cut at the pane's edge).
    pub wrap: bool,
    /// The pane's text rows, as last drawn.
    pub rows: u16,
    /// The pane's text columns, as last drawn.
    pub cols: u16,
}

/// How the app ended, as far as the dashboard knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ended {
    /// `start`'s exit code, when known.
    pub exit_code: Option<i32>,
    /// For people: `the app has stopped (exit code 0)`, `the connection to
    /// procrun was lost`.
    pub reason: String,
}

/// A line for the status bar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The text.
    pub text: String,
    /// A refusal or failure (shown in red).
    pub error: bool,
    /// Since when.
    pub at: Instant,
}

/// Everything the dashboard shows.
#[derive(Debug)]
pub struct Model {
    /// `procrun 0.1.0 · /path/app`.
    pub title: String,
    /// As of the last `ps`.
    pub instances: Vec<Instance>,
    /// As of the last `ps`.
    pub types: Vec<TypeCount>,
    /// The output.
    pub store: Store,
    /// The selection.
    pub selected: Selected,
    /// The first row the list shows.
    pub list_top: usize,
    /// The output pane.
    pub pane: Pane,
    /// The search, once entered (`n`/`N` move between matches).
    pub search: Option<String>,
    /// The line of the current match.
    pub search_at: Option<u64>,
    /// What covers the panes.
    pub overlay: Overlay,
    /// The status line's message.
    pub message: Option<Message>,
    /// Set once the app has ended.
    pub ended: Option<Ended>,
    /// Under `start --ui`: quitting stops the app.
    pub foreground: bool,
    /// A quit was sent: leave once the app has ended.
    pub quitting: bool,
    /// Requests not answered yet.
    pub in_flight: usize,
    /// The counts asked for by `+`/`-` not yet seen in `ps`.
    pub(super) scale_to: HashMap<String, u32>,
    /// The instance terminal the pane is connected to (`Enter`).
    pub tty: Option<Tty>,
    /// Connections to instance terminals made so far.
    pub(super) links: u64,
}

impl Model {
    /// A dashboard before the first `ps`.
    pub fn new(title: String, foreground: bool) -> Model {
        Model {
            title,
            instances: Vec::new(),
            types: Vec::new(),
            store: Store::default(),
            selected: Selected::All,
            list_top: 0,
            pane: Pane {
                offset: 0,
                follow: true,
                wrap: true,
                rows: 10,
                cols: 80,
            },
            search: None,
            search_at: None,
            overlay: Overlay::None,
            message: None,
            ended: None,
            foreground,
            quitting: false,
            in_flight: 0,
            scale_to: HashMap::new(),
            tty: None,
            links: 0,
        }
    }

    /// The list's rows: all, the instances, the types without instances.
    pub fn rows(&self) -> Vec<Row<'_>> {
        let mut rows = vec![Row::All];
        rows.extend(self.instances.iter().map(Row::Instance));
        rows.extend(
            self.types
                .iter()
                .filter(|t| t.count == 0 && !self.instances.iter().any(|i| i.type_name == t.name))
                .map(Row::Type),
        );
        rows
    }

    /// The index of the selected row.
    pub fn selected_row(&self) -> usize {
        self.rows()
            .iter()
            .position(|r| row_is(r, &self.selected))
            .unwrap_or(0)
    }

    /// The selected instance, if an instance is selected.
    pub fn instance(&self) -> Option<&Instance> {
        match &self.selected {
            Selected::Instance(name) => self.instances.iter().find(|i| i.name == *name),
            _ => None,
        }
    }

    /// The lines of the output pane.
    pub fn lines(&self) -> Option<&Lines> {
        match &self.selected {
            Selected::All => Some(self.store.merged()),
            Selected::Instance(name) => self.store.of(name),
            Selected::Type(_) => None,
        }
    }

    /// The colour index of a type: its place in the Procfile.
    pub fn type_index(&self, type_name: &str) -> Option<usize> {
        self.types.iter().position(|t| t.name == type_name)
    }

    /// The message to show now, if any.
    pub fn message(&self, now: Instant) -> Option<&Message> {
        self.message
            .as_ref()
            .filter(|m| now.duration_since(m.at) < MESSAGE_TIME)
    }

    pub(super) fn say(&mut self, text: impl Into<String>, error: bool, now: Instant) {
        self.message = Some(Message {
            text: text.into(),
            error,
            at: now,
        });
    }

    /// A new `ps`.
    pub fn apply_ps(&mut self, mut ps: Ps) {
        if ps.types.is_empty() {
            for i in &ps.instances {
                match ps.types.iter_mut().find(|t| t.name == i.type_name) {
                    Some(t) => t.count += 1,
                    None => ps.types.push(TypeCount {
                        name: i.type_name.clone(),
                        count: 1,
                    }),
                }
            }
        }
        let row = self.selected_row();
        self.instances = ps.instances;
        self.types = ps.types;
        for t in &self.types {
            if self.scale_to.get(&t.name) == Some(&t.count) {
                self.scale_to.remove(&t.name);
            }
        }
        // The selection went away (scaled down): the row that took its
        // place, or the type's row once it has no instance left.
        let rows = self.rows();
        if !rows.iter().any(|r| row_is(r, &self.selected)) {
            let fallback = match &self.selected {
                Selected::Instance(name) => {
                    let type_name = name.rsplit_once('.').map_or(name.as_str(), |(t, _)| t);
                    rows.iter().find_map(|r| match r {
                        Row::Type(t) if t.name == type_name => Some(Selected::Type(t.name.clone())),
                        _ => None,
                    })
                }
                _ => None,
            };
            let selected = fallback.unwrap_or_else(|| selection_of(&rows[row.min(rows.len() - 1)]));
            self.select(selected);
        }
    }

    /// Records of the followed stream (whole NDJSON lines); returns whether
    /// procrun's events were among them (then `ps` has news).
    pub fn apply_records(&mut self, bytes: &[u8]) -> bool {
        let mut events = false;
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', bytes).chain([bytes.len()]);
        let lines = ends
            .filter_map(move |end| {
                let line = &bytes[start..end];
                start = end + 1;
                logs::parse(line)
            })
            .inspect(|l| events |= l.kind == Kind::Event);
        self.apply_lines(lines);
        events
    }

    /// Lines read from the followed stream.
    pub fn apply_lines<'a>(&mut self, batch: impl IntoIterator<Item = Incoming<'a>>) {
        let mut grew = 0;
        for line in batch {
            let name = self.store.push(line);
            if match &self.selected {
                Selected::All => true,
                Selected::Instance(n) => **n == *name,
                Selected::Type(_) => false,
            } {
                grew += 1;
            }
        }
        if !self.pane.follow {
            // Stay on the lines being read.
            self.pane.offset += grew;
        }
        self.clamp();
    }

    /// The app ended (or the connection to it was lost). Returns what to do.
    pub fn apply_end(&mut self, ended: Ended) -> Vec<Effect> {
        if self.ended.is_none() {
            self.ended = Some(ended);
        }
        self.overlay = Overlay::None;
        // Its terminal went with the app.
        let mut effects = match self.tty.take() {
            Some(tty) => {
                let text = format!("disconnected from {}: the app has ended", tty.name);
                self.say(text, false, Instant::now());
                vec![Effect::Detach]
            }
            None => Vec::new(),
        };
        if self.quitting {
            effects.push(Effect::Quit);
        }
        effects
    }

    /// A request was answered.
    pub fn apply_done(
        &mut self,
        call: &Call,
        result: Result<Value, String>,
        now: Instant,
    ) -> Vec<Effect> {
        self.in_flight = self.in_flight.saturating_sub(1);
        match result {
            Ok(v) if call.method == "quit" => {
                let code = v["exit_code"].as_i64().and_then(|c| i32::try_from(c).ok());
                let reason = match code {
                    Some(c) => format!("the app has stopped (exit code {c})"),
                    None => "the app has stopped".to_owned(),
                };
                return self.apply_end(Ended {
                    exit_code: code,
                    reason,
                });
            }
            Ok(_) => self.say(format!("done: {}", call.label), false, now),
            Err(e) => {
                if call.method == "scale"
                    && let Some(t) = call.params["counts"]
                        .as_object()
                        .and_then(|c| c.keys().next())
                {
                    self.scale_to.remove(t);
                }
                if call.method == "quit" {
                    self.quitting = false;
                }
                self.say(format!("{}: {e}", call.label), true, now);
            }
        }
        vec![Effect::Poll]
    }

    /// `ps` failed (the app is ending, or the connection broke).
    pub fn apply_ps_failed(&mut self, reason: &str, now: Instant) {
        if self.ended.is_none() {
            self.say(format!("ps: {reason}"), true, now);
        }
    }

    fn select(&mut self, selected: Selected) {
        if selected != self.selected {
            self.selected = selected;
            self.pane.offset = 0;
            self.pane.follow = true;
            self.search_at = None;
        }
    }

    fn clamp(&mut self) {
        let len = self.lines().map_or(0, Lines::len);
        self.pane.offset = self.pane.offset.min(len.saturating_sub(1));
    }

    fn scroll_up(&mut self, n: usize) {
        self.pane.follow = false;
        self.pane.offset += n;
        self.clamp();
    }

    fn scroll_down(&mut self, n: usize) {
        self.pane.offset = self.pane.offset.saturating_sub(n);
        if self.pane.offset == 0 {
            self.pane.follow = true;
        }
    }

    fn page(&self) -> usize {
        usize::from(self.pane.rows.max(2) - 1)
    }

    /// What the user asked for.
    pub fn apply(&mut self, intent: Intent, now: Instant) -> Vec<Effect> {
        if self.ended.is_some() {
            // The end is shown; any key leaves.
            return match intent {
                Intent::None => Vec::new(),
                _ => vec![Effect::Quit],
            };
        }
        match intent {
            Intent::None => {}
            Intent::Select(delta) => {
                let rows = self.rows();
                let at = self.selected_row() as isize + delta;
                let at = at.clamp(0, rows.len() as isize - 1) as usize;
                let selected = selection_of(&rows[at]);
                self.select(selected);
            }
            Intent::ScrollUp(n) => self.scroll_up(n),
            Intent::ScrollDown(n) => self.scroll_down(n),
            Intent::PageUp => self.scroll_up(self.page()),
            Intent::PageDown => self.scroll_down(self.page()),
            Intent::HalfUp => self.scroll_up(self.page().div_ceil(2)),
            Intent::HalfDown => self.scroll_down(self.page().div_ceil(2)),
            Intent::Top => {
                let len = self.lines().map_or(0, Lines::len);
                let shown = self.page() + 1;
                self.scroll_up(len.saturating_sub(shown));
            }
            Intent::Follow => {
                self.pane.offset = 0;
                self.pane.follow = true;
            }
            Intent::ToggleWrap => {
                self.pane.wrap = !self.pane.wrap;
                let on = if self.pane.wrap { "on" } else { "off" };
                self.say(format!("wrapping {on}"), false, now);
            }
            Intent::Help => self.overlay = Overlay::Help,
            Intent::Close => {
                if self.overlay == Overlay::None {
                    self.search = None;
                    self.search_at = None;
                }
                self.overlay = Overlay::None;
            }
            Intent::SearchStart => self.overlay = Overlay::Search(String::new()),
            Intent::SearchType(c) => {
                if let Overlay::Search(q) = &mut self.overlay {
                    q.push(c);
                }
            }
            Intent::SearchErase => {
                if let Overlay::Search(q) = &mut self.overlay {
                    q.pop();
                }
            }
            Intent::SearchSubmit => {
                let query = match std::mem::replace(&mut self.overlay, Overlay::None) {
                    Overlay::Search(q) => q,
                    _ => String::new(),
                };
                if query.is_empty() {
                    self.search = None;
                    self.search_at = None;
                } else {
                    self.search = Some(query);
                    self.search_at = None;
                    self.find(true, now);
                }
            }
            Intent::NextMatch => self.find(true, now),
            Intent::PreviousMatch => self.find(false, now),
            Intent::Answer(yes) => {
                if let Overlay::Confirm { call, .. } =
                    std::mem::replace(&mut self.overlay, Overlay::None)
                    && yes
                {
                    return self.send(call, now);
                }
            }
            Intent::Restart => return self.restart(now),
            Intent::Stop => return self.stop(now),
            Intent::Start => return self.start(now),
            Intent::ScaleUp => return self.scale(1, now),
            Intent::ScaleDown => return self.scale(-1, now),
            Intent::Kill => return self.kill(now),
            Intent::Quit => return self.quit(now),
            Intent::Connect => return self.connect(now),
        }
        Vec::new()
    }
}

fn row_is(row: &Row<'_>, selected: &Selected) -> bool {
    match (row, selected) {
        (Row::All, Selected::All) => true,
        (Row::Instance(i), Selected::Instance(n)) => i.name == *n,
        (Row::Type(t), Selected::Type(n)) => t.name == *n,
        _ => false,
    }
}

fn selection_of(row: &Row<'_>) -> Selected {
    match row {
        Row::All => Selected::All,
        Row::Instance(i) => Selected::Instance(i.name.clone()),
        Row::Type(t) => Selected::Type(t.name.clone()),
    }
}
