//! The connected view: `Enter` on an instance that runs on a terminal of
//! its own (`start --tty`) connects the output pane to that terminal, as
//! `procrun connect` does for a whole terminal (docs/tty.md). Every key
//! goes to the instance ([`super::tty_keys`]) until Ctrl-] detaches; what
//! its terminal writes is run through a terminal emulator (the `vt100`
//! crate) sized to the pane, and the emulator's screen is what the pane
//! shows: text, colours, attributes and the cursor, never the raw bytes,
//! so nothing the program writes reaches the dashboard's terminal as a
//! control.
//!
//! The connection is the protocol's `attach` (docs/control.md), on a
//! connection of its own ([`super::tty_link`]); this module is its state
//! and how it changes, pure: what is to be sent comes out as
//! [`Effect`]s.

use std::time::Instant;

use ratatui::crossterm::event::KeyEvent;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};

use crate::control::connect::DETACH_NAME;
use crate::ui::keys;
use crate::ui::model::{Effect, Model, Selected};
use crate::ui::tty_keys::{self, Typed};

/// Rows of scrollback the emulator keeps: none. The pane shows the
/// program's screen; its lines are in the log ring and the output pane.
pub const SCROLLBACK: usize = 0;

/// Where the connection is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// `attach` sent, not answered yet.
    Connecting,
    /// Attached: output comes, keys go.
    Connected,
}

/// What the connection to an instance's terminal reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// `attach` was answered.
    Attached {
        /// The connection it is about.
        link: u64,
        /// The instance's name, as the server resolved it.
        name: String,
        /// Its pid.
        pid: Option<u32>,
    },
    /// Bytes its terminal wrote. The connection sends it without bytes to
    /// say that output waits to be taken ([`super::tty_link::Link::take_output`]).
    Output {
        /// The connection.
        link: u64,
        /// As written.
        bytes: Vec<u8>,
    },
    /// `attach` failed (refused, or procrun could not be reached).
    Refused {
        /// The connection.
        link: u64,
        /// Why, for the status line.
        reason: String,
    },
    /// The connection ended from procrun's side.
    Ended {
        /// The connection.
        link: u64,
        /// Not in the normal course of things: procrun dropped a client
        /// that read too slowly, or the connection was lost (not: the
        /// instance exited or was restarted, or the app ended).
        failed: bool,
        /// procrun's words (`web.1 has exited`), or why it was lost.
        message: String,
    },
}

/// The terminal of the connected instance, as an emulator keeps it.
pub struct Tty {
    /// The instance.
    pub name: String,
    /// Its pid, once attached.
    pub pid: Option<u32>,
    /// Which connection this is: reports of an earlier one are ignored.
    pub link: u64,
    /// Connecting or connected.
    pub phase: Phase,
    parser: vt100::Parser,
    /// The size the instance's terminal was last given (rows, columns).
    asked: (u16, u16),
    /// A new size to give it, once the pane was drawn at that size.
    resize: Option<(u16, u16)>,
}

impl std::fmt::Debug for Tty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tty")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .field("link", &self.link)
            .field("phase", &self.phase)
            .field("asked", &self.asked)
            .finish_non_exhaustive()
    }
}

fn nonzero(n: u16) -> std::num::NonZeroU16 {
    std::num::NonZeroU16::new(n).unwrap_or(std::num::NonZeroU16::MIN)
}

impl Tty {
    /// A terminal of `rows` × `cols` for `name`, before any output.
    pub fn new(name: String, link: u64, rows: u16, cols: u16) -> Tty {
        let (rows, cols) = (rows.max(1), cols.max(1));
        Tty {
            name,
            pid: None,
            link,
            phase: Phase::Connecting,
            parser: vt100::Parser::new(nonzero(rows), nonzero(cols), SCROLLBACK),
            asked: (rows, cols),
            resize: None,
        }
    }

    /// What the instance's terminal wrote.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.process(bytes);
    }

    /// The emulated screen.
    pub fn screen(&self) -> &vt100::Screen {
        self.parser.screen()
    }

    /// The pane is `rows` × `cols`: the emulator takes that size at once,
    /// and the instance's terminal is to be given it (see [`Tty::take_resize`]).
    pub fn fit(&mut self, rows: u16, cols: u16) {
        let (rows, cols) = (rows.max(1), cols.max(1));
        let (r, c) = self.parser.screen().size();
        if (r.get(), c.get()) != (rows, cols) {
            self.parser.set_size(nonzero(rows), nonzero(cols));
        }
        if self.asked != (rows, cols) {
            self.asked = (rows, cols);
            self.resize = Some((rows, cols));
        }
    }

    /// The size to give the instance's terminal, if it changed.
    pub fn take_resize(&mut self) -> Option<(u16, u16)> {
        self.resize.take()
    }

    /// The pane's title: who is connected and how to leave.
    pub fn title(&self) -> String {
        match (self.phase, self.pid) {
            (Phase::Connecting, _) => {
                format!(" {} · connecting… · {DETACH_NAME} cancels ", self.name)
            }
            (Phase::Connected, Some(pid)) => format!(
                " {} · connected (pid {pid}) · {DETACH_NAME} detaches ",
                self.name
            ),
            (Phase::Connected, None) => {
                format!(" {} · connected · {DETACH_NAME} detaches ", self.name)
            }
        }
    }

    /// The screen's rows as styled text, one line per row.
    pub fn lines(&self) -> Vec<Line<'static>> {
        let screen = self.screen();
        let (rows, cols) = screen.size();
        (0..rows.get())
            .map(|row| {
                let mut spans: Vec<Span<'static>> = Vec::new();
                let mut text = String::new();
                let mut style = Style::new();
                for col in 0..cols.get() {
                    let Some(cell) = screen.cell(row, col) else {
                        continue;
                    };
                    if cell.is_wide_continuation() {
                        continue;
                    }
                    let s = cell_style(cell);
                    if s != style && !text.is_empty() {
                        spans.push(Span::styled(std::mem::take(&mut text), style));
                    }
                    style = s;
                    push_cell(&mut text, cell.contents());
                }
                if !text.is_empty() {
                    spans.push(Span::styled(text, style));
                }
                Line::from(spans)
            })
            .collect()
    }

    /// Where the program's cursor is (row, column), unless it hid it.
    pub fn cursor(&self) -> Option<(u16, u16)> {
        let screen = self.screen();
        (!screen.hide_cursor()).then(|| screen.cursor_position())
    }

    /// Whether the program asked for application cursor keys.
    pub fn app_cursor(&self) -> bool {
        self.screen().application_cursor()
    }
}

/// A cell's text, or a space for an empty one; never a control character
/// (the emulator keeps none, and the pane must not get one either way).
fn push_cell(text: &mut String, contents: &str) {
    if contents.is_empty() {
        text.push(' ');
        return;
    }
    let mut any = false;
    for c in contents.chars().filter(|c| !c.is_control()) {
        text.push(c);
        any = true;
    }
    if !any {
        text.push(' ');
    }
}

/// A terminal colour in ratatui's terms: the 16 named ones by name, so
/// that they look as the user's terminal shows them.
pub fn color(c: vt100::Color) -> Color {
    const NAMED: [Color; 16] = [
        Color::Black,
        Color::Red,
        Color::Green,
        Color::Yellow,
        Color::Blue,
        Color::Magenta,
        Color::Cyan,
        Color::Gray,
        Color::DarkGray,
        Color::LightRed,
        Color::LightGreen,
        Color::LightYellow,
        Color::LightBlue,
        Color::LightMagenta,
        Color::LightCyan,
        Color::White,
    ];
    match c {
        vt100::Color::Default => Color::Reset,
        vt100::Color::Idx(i) if i < 16 => NAMED[usize::from(i)],
        vt100::Color::Idx(i) => Color::Indexed(i),
        vt100::Color::Rgb(r, g, b) => Color::Rgb(r, g, b),
    }
}

fn cell_style(cell: &vt100::Cell) -> Style {
    let mut style = Style::new()
        .fg(color(cell.fgcolor()))
        .bg(color(cell.bgcolor()));
    for (on, m) in [
        (cell.bold(), Modifier::BOLD),
        (cell.dim(), Modifier::DIM),
        (cell.italic(), Modifier::ITALIC),
        (cell.underline(), Modifier::UNDERLINED),
        (cell.inverse(), Modifier::REVERSED),
    ] {
        if on {
            style = style.add_modifier(m);
        }
    }
    style
}

impl Model {
    /// A key: to the connected instance, if there is one; else what it
    /// means to the dashboard.
    pub fn apply_key(&mut self, key: KeyEvent, now: Instant) -> Vec<Effect> {
        if self.tty.is_some() {
            return self.tty_key(key, now);
        }
        let intent = keys::intent(&self.overlay, key);
        self.apply(intent, now)
    }

    /// `Enter`: connect the pane to the selected instance's terminal.
    pub(super) fn connect(&mut self, now: Instant) -> Vec<Effect> {
        let Some(i) = self.instance() else {
            let text = match &self.selected {
                Selected::Type(t) => format!("{t} has no instance to connect to: + starts one"),
                _ => "select an instance that runs on a terminal (--tty) to connect to it".into(),
            };
            self.say(text, true, now);
            return Vec::new();
        };
        if !i.tty {
            let text = format!(
                "{} runs without a terminal: start it with `procrun start --tty={}` (or tty = true in procrun.toml) to connect to it",
                i.name, i.type_name
            );
            self.say(text, true, now);
            return Vec::new();
        }
        if i.pid.is_none() {
            let text = format!("{} is {}: no terminal to connect to", i.name, i.state);
            self.say(text, true, now);
            return Vec::new();
        }
        let name = i.name.clone();
        self.links += 1;
        let link = self.links;
        let (rows, cols) = (self.pane.rows.max(1), self.pane.cols.max(1));
        self.tty = Some(Tty::new(name.clone(), link, rows, cols));
        vec![Effect::Attach {
            link,
            name,
            rows,
            cols,
        }]
    }

    /// What the connection reported.
    pub fn apply_tty(&mut self, event: Event, now: Instant) -> Vec<Effect> {
        let link = match &event {
            Event::Attached { link, .. }
            | Event::Output { link, .. }
            | Event::Refused { link, .. }
            | Event::Ended { link, .. } => *link,
        };
        let Some(tty) = self.tty.as_mut().filter(|t| t.link == link) else {
            // An earlier connection, already let go.
            return Vec::new();
        };
        match event {
            Event::Attached { name, pid, .. } => {
                tty.phase = Phase::Connected;
                tty.pid = pid;
                tty.name = name;
                let text = format!(
                    "connected to {}: every key goes to it; {DETACH_NAME} detaches",
                    tty.name
                );
                self.say(text, false, now);
                Vec::new()
            }
            Event::Output { bytes, .. } => {
                tty.feed(&bytes);
                Vec::new()
            }
            Event::Refused { reason, .. } => {
                self.tty = None;
                self.say(reason, true, now);
                vec![Effect::Detach]
            }
            Event::Ended {
                failed, message, ..
            } => {
                self.tty = None;
                self.say(format!("{message}: disconnected"), failed, now);
                vec![Effect::Detach, Effect::Poll]
            }
        }
    }

    /// A key while connected.
    fn tty_key(&mut self, key: KeyEvent, now: Instant) -> Vec<Effect> {
        let Some(tty) = &self.tty else {
            return Vec::new();
        };
        match tty_keys::typed(key, tty.app_cursor()) {
            Typed::Bytes(bytes) => vec![Effect::Type(bytes)],
            Typed::Detach => self.detach(now),
            Typed::Nothing => Vec::new(),
        }
    }

    /// Back to the dashboard; the instance runs on.
    pub(super) fn detach(&mut self, now: Instant) -> Vec<Effect> {
        let Some(tty) = self.tty.take() else {
            return Vec::new();
        };
        let text = match tty.phase {
            Phase::Connected => format!("detached from {}; it keeps running", tty.name),
            Phase::Connecting => format!("not connecting to {}", tty.name),
        };
        self.say(text, false, now);
        vec![Effect::Detach]
    }

    /// The size the connected instance's terminal is to be given, if the
    /// pane was drawn at a new one.
    pub fn take_tty_resize(&mut self) -> Option<Effect> {
        let (rows, cols) = self.tty.as_mut()?.take_resize()?;
        Some(Effect::Resize { rows, cols })
    }
}

#[cfg(test)]
#[path = "tty_tests.rs"]
mod tests;
