//! How the model is drawn: the layout for the terminal's size (the list
//! above the output below 120 columns, beside it from 120 on), the list's
//! columns for its width, the output pane's rows (wrapped or cut, search
//! matches marked), the status line and the overlays. Everything but
//! [`draw`] is a pure function of the model and a size, tested without a
//! terminal; [`draw`] itself is tested on ratatui's test backend
//! (`view_tests.rs`). One file: the layout, the columns and the rows are
//! the parts of one frame, and change together.

use std::time::{Instant, SystemTime};

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row as TableRow, Table, Wrap};
use unicode_width::UnicodeWidthChar as _;

use crate::control::client::{bytes, uptime};
use crate::output::style::{Clock, SYSTEM};
use crate::ui::keys::HELP;
use crate::ui::logs::{self, Kind};
use crate::ui::model::{Model, Overlay, Row, State};
use crate::ui::tty::Tty;

/// From this width on, the list stands beside the output.
pub const SIDE_BY_SIDE: u16 = 120;

/// The smallest terminal the dashboard draws in.
pub const MIN_SIZE: (u16, u16) = (30, 8);

/// The longest name a column shows whole (as `start`'s prefixes).
const NAME_CAP: usize = crate::output::style::DEFAULT_PREFIX_WIDTH;

/// Where each part goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    /// The process list, with its border.
    pub list: Rect,
    /// The output, with its border.
    pub pane: Rect,
    /// The status line.
    pub status: Rect,
}

/// The layout of a terminal of `area` for a list of `rows` rows whose
/// names are at most `name_width` wide.
pub fn layout(area: Rect, rows: usize, name_width: u16) -> Areas {
    let [body, status] = Layout::vertical([Constraint::Min(1), Constraint::Length(1)]).areas(area);
    let [list, pane] = if body.width >= SIDE_BY_SIDE {
        let wanted = full_width(name_width) + 2;
        let width = wanted.min(body.width / 2);
        Layout::horizontal([Constraint::Length(width), Constraint::Min(1)]).areas(body)
    } else {
        // The header and two borders; at most two fifths of the height.
        let wanted = u16::try_from(rows).unwrap_or(u16::MAX).saturating_add(3);
        let height = wanted.min((body.height * 2 / 5).max(5));
        Layout::vertical([Constraint::Length(height), Constraint::Min(1)]).areas(body)
    };
    Areas { list, pane, status }
}

/// A column of the list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    /// The state's symbol and the name.
    Name,
    /// The state's word.
    State,
    /// PORT.
    Port,
    /// Restarts.
    Restarts,
    /// How long it has run.
    Uptime,
    /// CPU%.
    Cpu,
    /// Resident memory.
    Rss,
}

impl Column {
    fn header(self) -> &'static str {
        match self {
            Column::Name => "  NAME",
            Column::State => "STATE",
            Column::Port => "PORT",
            Column::Restarts => "RST",
            Column::Uptime => "UP",
            Column::Cpu => "CPU%",
            Column::Rss => "RSS",
        }
    }

    fn width(self) -> u16 {
        match self {
            Column::Name => 0,
            Column::State => 8,
            Column::Port => 5,
            Column::Restarts => 3,
            Column::Uptime => 6,
            Column::Cpu => 5,
            Column::Rss => 6,
        }
    }
}

/// The columns in the order shown; the last ones go first when narrow.
const COLUMNS: [Column; 7] = [
    Column::Name,
    Column::State,
    Column::Port,
    Column::Restarts,
    Column::Uptime,
    Column::Cpu,
    Column::Rss,
];

/// The name column's width: the symbol, a space and the name.
fn name_column(name_width: u16) -> u16 {
    name_width.clamp(4, NAME_CAP as u16) + 2
}

/// Every column with one space between.
fn full_width(name_width: u16) -> u16 {
    COLUMNS[1..].iter().map(|c| c.width() + 1).sum::<u16>() + name_column(name_width)
}

/// The columns that fit in `width`, with their widths. The state's word
/// goes last: its symbol stays in the name column.
pub fn columns(width: u16, name_width: u16) -> Vec<(Column, u16)> {
    let name = name_column(name_width);
    let drop_order = [
        Column::Rss,
        Column::Cpu,
        Column::Restarts,
        Column::Port,
        Column::Uptime,
        Column::State,
    ];
    let mut shown: Vec<Column> = COLUMNS.to_vec();
    let total = |shown: &[Column]| -> u16 {
        shown
            .iter()
            .map(|&c| {
                if c == Column::Name {
                    name
                } else {
                    c.width() + 1
                }
            })
            .sum()
    };
    for gone in drop_order {
        if total(&shown) <= width {
            break;
        }
        shown.retain(|&c| c != gone);
    }
    shown
        .into_iter()
        .map(|c| {
            let w = if c == Column::Name {
                name.min(width)
            } else {
                c.width()
            };
            (c, w)
        })
        .collect()
}

/// The widest name of the list.
pub fn name_width(model: &Model) -> u16 {
    let widest = model
        .rows()
        .iter()
        .map(|r| match r {
            Row::All => 3,
            Row::Instance(i) => i.name.chars().count(),
            Row::Type(t) => t.name.chars().count(),
        })
        .max()
        .unwrap_or(3);
    u16::try_from(widest.min(NAME_CAP)).unwrap_or(4)
}

/// The first row to show so that `selected` is among `height` rows.
pub fn list_top(top: usize, selected: usize, height: usize) -> usize {
    if height == 0 {
        return 0;
    }
    if selected < top {
        selected
    } else if selected >= top + height {
        selected + 1 - height
    } else {
        top
    }
}

/// A state's colour (the symbol and the word say it without).
pub fn state_style(state: State) -> Style {
    let color = match state {
        State::Running | State::Ready => Color::Green,
        State::Starting | State::Backoff | State::Stopping => Color::Yellow,
        State::Failed => Color::Red,
        State::Stopped | State::Exited | State::Skipped | State::Unknown => Color::DarkGray,
    };
    Style::new().fg(color)
}

/// A type's colour, as `start` colours its prefix (the palette of
/// `output::style`, in ratatui's names).
fn type_style(index: Option<usize>) -> Style {
    const PALETTE: [Color; 12] = [
        Color::Cyan,
        Color::Yellow,
        Color::Green,
        Color::Magenta,
        Color::Red,
        Color::Blue,
        Color::LightCyan,
        Color::LightYellow,
        Color::LightGreen,
        Color::LightMagenta,
        Color::LightRed,
        Color::LightBlue,
    ];
    index.map_or_else(Style::new, |i| Style::new().fg(PALETTE[i % PALETTE.len()]))
}

/// `text` in at most `width` columns, ending in `…` when cut.
fn cut(text: &str, width: usize) -> String {
    let total: usize = text.chars().map(|c| c.width().unwrap_or(0)).sum();
    if total <= width {
        return text.to_owned();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    if width > 0 {
        out.push('…');
    }
    out
}

/// The cells of one row, for `columns`.
pub fn cells(
    model: &Model,
    row: &Row<'_>,
    columns: &[(Column, u16)],
    now: SystemTime,
) -> Vec<(String, Style)> {
    let dim = Style::new().fg(Color::DarkGray);
    columns
        .iter()
        .map(|&(column, width)| {
            let name_room = usize::from(width.saturating_sub(2));
            match (row, column) {
                (Row::All, Column::Name) => (
                    "* all".to_owned(),
                    Style::new().add_modifier(Modifier::BOLD),
                ),
                (Row::All, Column::State) => {
                    let live = model
                        .instances
                        .iter()
                        .filter(|i| i.state().is_live())
                        .count();
                    (format!("{live}/{} up", model.instances.len()), dim)
                }
                (Row::All, _) => (String::new(), dim),
                (Row::Type(t), Column::Name) => (format!("  {}", cut(&t.name, name_room)), dim),
                (Row::Type(_), Column::State) => ("0 inst.".to_owned(), dim),
                (Row::Type(_), _) => (String::new(), dim),
                (Row::Instance(i), column) => {
                    let state = i.state();
                    let text = match column {
                        Column::Name => {
                            let name = cut(&i.name, name_room);
                            return (
                                format!("{} {name}", state.symbol()),
                                type_style(model.type_index(&i.type_name)),
                            );
                        }
                        Column::State => {
                            return (i.state.clone(), state_style(state));
                        }
                        Column::Port => i.port.map(|p| p.to_string()),
                        Column::Restarts => Some(i.restarts.to_string()),
                        Column::Uptime => i.uptime(now).map(uptime),
                        Column::Cpu => i.cpu_percent.map(|c| format!("{c:.1}")),
                        Column::Rss => i.rss_bytes.map(bytes),
                    };
                    (text.unwrap_or_else(|| "-".to_owned()), Style::new())
                }
            }
        })
        .collect()
}

/// A piece of a pane row.
type Piece = (String, Style);

/// The pieces of one stored line: time, (in "all") the name, the text.
fn pieces(
    model: &Model,
    line: &logs::Line,
    merged: bool,
    clock: &mut Clock,
    name_width: usize,
) -> Vec<Piece> {
    let dim = Style::new().fg(Color::DarkGray);
    let mut out = Vec::with_capacity(4);
    if let Some(t) = line.time {
        let time = String::from_utf8_lossy(clock.at(t)).into_owned();
        out.push((format!("{time} "), dim));
    }
    let event = line.kind == Kind::Event;
    if merged {
        let (name, style) = if event {
            (SYSTEM.to_owned(), Style::new().add_modifier(Modifier::BOLD))
        } else {
            let type_name = line.name.rsplit_once('.').map_or(&*line.name, |(t, _)| t);
            (
                cut(&line.name, name_width),
                type_style(model.type_index(type_name)),
            )
        };
        out.push((format!("{name:<name_width$} | "), style));
    }
    let text_style = if event && !merged {
        Style::new()
            .add_modifier(Modifier::ITALIC)
            .fg(Color::DarkGray)
    } else {
        Style::new()
    };
    match model.search.as_deref() {
        Some(query) => {
            let marked = text_style.add_modifier(Modifier::REVERSED);
            let mut at = 0;
            for (a, b) in logs::find_all(&line.text, query) {
                if a > at {
                    out.push((line.text[at..a].to_owned(), text_style));
                }
                out.push((line.text[a..b].to_owned(), marked));
                at = b;
            }
            out.push((line.text[at..].to_owned(), text_style));
        }
        None => out.push((line.text.clone(), text_style)),
    }
    out
}

/// Splits pieces into rows of at most `width` columns (`wrap`), or cuts
/// them at `width`.
pub fn wrap(pieces: Vec<Piece>, width: usize, wrap: bool) -> Vec<Vec<Piece>> {
    let width = width.max(1);
    let mut rows: Vec<Vec<Piece>> = vec![Vec::new()];
    let mut used = 0;
    for (text, style) in pieces {
        let mut current = String::new();
        for c in text.chars() {
            let w = c.width().unwrap_or(0);
            if used + w > width {
                if !current.is_empty() {
                    push(&mut rows, std::mem::take(&mut current), style);
                }
                if !wrap {
                    return rows;
                }
                rows.push(Vec::new());
                used = 0;
            }
            current.push(c);
            used += w;
        }
        if !current.is_empty() {
            push(&mut rows, current, style);
        }
    }
    rows
}

fn push(rows: &mut [Vec<Piece>], text: String, style: Style) {
    if let Some(row) = rows.last_mut() {
        row.push((text, style));
    }
}

/// The rows the output pane shows, oldest first, for a pane of `width` ×
/// `height`: the lines up to the pane's bottom line, as many as fit; when
/// those do not fill the pane (scrolled to the top), the lines after it
/// too. Also returns the offset shown (the model's, or less when the lines
/// after were added).
pub fn pane_rows(model: &Model, width: u16, height: u16) -> (Vec<Vec<Piece>>, usize) {
    let Some(lines) = model.lines() else {
        return (Vec::new(), 0);
    };
    if lines.is_empty() || height == 0 {
        return (Vec::new(), 0);
    }
    let height = usize::from(height);
    let merged = model.selected == crate::ui::model::Selected::All;
    let name_width = lines_name_width(model);
    let mut clock = Clock::default();
    let mut rows_of = |i: usize| {
        lines.get(i).map_or_else(Vec::new, |line| {
            wrap(
                pieces(model, line, merged, &mut clock, name_width),
                usize::from(width),
                model.pane.wrap,
            )
        })
    };
    let last = lines.len() - 1;
    let mut bottom = last - model.pane.offset.min(last);
    let mut rows: Vec<Vec<Piece>> = Vec::new();
    for i in (0..=bottom).rev() {
        let mut wrapped = rows_of(i);
        wrapped.append(&mut rows);
        rows = wrapped;
        if rows.len() >= height {
            break;
        }
    }
    let extra = rows.len().saturating_sub(height);
    rows.drain(..extra);
    while rows.len() < height && bottom < last {
        bottom += 1;
        let room = height - rows.len();
        rows.extend(rows_of(bottom).into_iter().take(room));
    }
    (rows, last - bottom)
}

fn lines_name_width(model: &Model) -> usize {
    model
        .instances
        .iter()
        .map(|i| i.name.chars().count())
        .chain([SYSTEM.len()])
        .max()
        .unwrap_or(SYSTEM.len())
        .min(NAME_CAP)
}

/// The status line: the search prompt, a message, or the keys.
pub fn status_line(model: &Model, now: Instant) -> Line<'static> {
    if let Overlay::Search(query) = &model.overlay {
        return Line::from(vec![
            Span::styled("/", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(query.clone()),
            Span::styled("█", Style::new()),
            Span::styled(
                "   Enter: search  Esc: cancel",
                Style::new().fg(Color::DarkGray),
            ),
        ]);
    }
    if let Some(m) = model.message(now) {
        let style = if m.error {
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::new()
        };
        return Line::from(Span::styled(m.text.clone(), style));
    }
    if let Some(tty) = &model.tty {
        let bold = Style::new().add_modifier(Modifier::BOLD);
        return Line::from(vec![
            Span::raw(format!("connected to {}: every key goes to it  ", tty.name)),
            Span::styled(crate::control::connect::DETACH_NAME, bold),
            Span::raw(" detach"),
        ]);
    }
    let quit = if model.foreground {
        "q stop the app"
    } else {
        "q quit"
    };
    let connect = model.instance().is_some_and(|i| i.tty);
    let keys = [
        quit,
        if connect { "Enter connect" } else { "" },
        "? help",
        "r restart",
        "s stop",
        "S start",
        "+/- scale",
        "x kill",
        "/ search",
        "w wrap",
    ];
    let mut spans = Vec::new();
    for (i, k) in keys.iter().filter(|k| !k.is_empty()).enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        let (key, what) = k.split_once(' ').unwrap_or((k, ""));
        spans.push(Span::styled(
            key.to_owned(),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(format!(" {what}")));
    }
    Line::from(spans)
}

/// The output pane's title: whose output, and where in it.
pub fn pane_title(model: &Model) -> String {
    let whose = match &model.selected {
        crate::ui::model::Selected::All => "all".to_owned(),
        crate::ui::model::Selected::Instance(n) => n.clone(),
        crate::ui::model::Selected::Type(t) => format!("{t} (no instance)"),
    };
    let mut title = format!(" {whose} ");
    match (model.pane.follow, model.pane.offset) {
        (true, _) => title.push_str("· following "),
        (false, 0) => title.push_str("· paused (G follows) "),
        (false, 1) => title.push_str("· 1 line up "),
        (false, n) => title.push_str(&format!("· {n} lines up ")),
    }
    if !model.pane.wrap {
        title.push_str("· cut ");
    }
    if let Some(q) = &model.search {
        title.push_str(&format!("· /{q} "));
    }
    title
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn boxed(frame: &mut Frame<'_>, title: &str, lines: Vec<Line<'static>>) {
    let area = frame.area();
    let widest = lines.iter().map(Line::width).max().unwrap_or(0);
    let width = u16::try_from(widest + 4)
        .unwrap_or(u16::MAX)
        .max(title.len() as u16 + 4);
    let height = u16::try_from(lines.len() + 2).unwrap_or(u16::MAX);
    let r = centered(area, width, height);
    frame.render_widget(Clear, r);
    let block = Block::default()
        .borders(Borders::ALL)
        .title(title.to_owned())
        .title_style(Style::new().add_modifier(Modifier::BOLD));
    frame.render_widget(Paragraph::new(lines).block(block), r);
}

/// Draws the whole dashboard; keeps the list's scroll and the pane's
/// height in the model for the next keys.
pub fn draw(frame: &mut Frame<'_>, model: &mut Model, now: Instant, wall: SystemTime) {
    let area = frame.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        // While connected, q goes to the instance.
        let leave = if model.tty.is_some() {
            "Ctrl-] detaches"
        } else {
            "q quits"
        };
        let text = format!(
            "{}×{}: too small (at least {}×{}); {leave}",
            area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
        );
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), area);
        return;
    }
    let rows = model.rows();
    let name_width = name_width(model);
    let areas = layout(area, rows.len(), name_width);
    let selected = model.selected_row();
    let inner_list = areas.list.height.saturating_sub(3) as usize;
    let top = list_top(model.list_top, selected, inner_list);
    let columns = columns(areas.list.width.saturating_sub(2), name_width);
    let header = TableRow::new(columns.iter().map(|(c, _)| Cell::from(c.header())))
        .style(Style::new().add_modifier(Modifier::BOLD));
    let table_rows: Vec<TableRow<'static>> = rows
        .iter()
        .enumerate()
        .skip(top)
        .take(inner_list)
        .map(|(i, row)| {
            let cells = cells(model, row, &columns, wall)
                .into_iter()
                .map(|(text, style)| Cell::from(Span::styled(text, style)));
            let r = TableRow::new(cells);
            if i == selected {
                r.style(Style::new().add_modifier(Modifier::REVERSED))
            } else {
                r
            }
        })
        .collect();
    let widths: Vec<Constraint> = columns
        .iter()
        .map(|&(_, w)| Constraint::Length(w))
        .collect();
    let list_title = format!(" {} ", model.title);
    let table = Table::new(table_rows, widths)
        .header(header)
        .column_spacing(1)
        .block(Block::default().borders(Borders::ALL).title(list_title));
    drop(rows);
    model.list_top = top;
    frame.render_widget(table, areas.list);

    let inner = Block::default().borders(Borders::ALL).inner(areas.pane);
    model.pane.rows = inner.height;
    model.pane.cols = inner.width;
    if let Some(tty) = &mut model.tty {
        draw_tty(frame, tty, areas.pane, inner);
    } else {
        draw_output(frame, model, areas.pane, inner);
    }
    frame.render_widget(Paragraph::new(status_line(model, now)), areas.status);
    if model.ended.is_none()
        && model.overlay == Overlay::None
        && let Some((row, col)) = model.tty.as_ref().and_then(Tty::cursor)
    {
        // The program's cursor, where it is in the pane.
        let x = inner.x + col.min(inner.width.saturating_sub(1));
        let y = inner.y + row.min(inner.height.saturating_sub(1));
        frame.set_cursor_position((x, y));
    }
    draw_overlays(frame, model);
}

/// The pane connected to an instance's terminal: its emulated screen.
fn draw_tty(frame: &mut Frame<'_>, tty: &mut Tty, area: Rect, inner: Rect) {
    tty.fit(inner.height, inner.width);
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(Style::new().fg(Color::Cyan))
        .title(tty.title())
        .title_style(Style::new().add_modifier(Modifier::BOLD));
    frame.render_widget(Paragraph::new(tty.lines()).block(block), area);
}

/// The output pane: the selected lines.
fn draw_output(frame: &mut Frame<'_>, model: &mut Model, area: Rect, inner: Rect) {
    let (rows, offset) = pane_rows(model, inner.width, inner.height);
    model.pane.offset = offset;
    let pane_block = Block::default()
        .borders(Borders::ALL)
        .title(pane_title(model));
    let text: Vec<Line<'static>> = rows
        .into_iter()
        .map(|row| {
            Line::from(
                row.into_iter()
                    .map(|(t, s)| Span::styled(t, s))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    let text = if text.is_empty() {
        let empty = match model.lines() {
            None => "no instance: + starts one",
            Some(_) => "no output yet",
        };
        vec![Line::styled(empty, Style::new().fg(Color::DarkGray))]
    } else {
        text
    };
    frame.render_widget(Paragraph::new(text).block(pane_block), area);
}

/// What covers the panes: the end of the app, the help, a question.
fn draw_overlays(frame: &mut Frame<'_>, model: &Model) {
    if let Some(ended) = &model.ended {
        let leave = if model.quitting {
            "leaving…"
        } else {
            "press any key to leave"
        };
        boxed(
            frame,
            " the app has ended ",
            vec![
                Line::raw(ended.reason.clone()),
                Line::raw(""),
                Line::raw(leave),
            ],
        );
        return;
    }
    match &model.overlay {
        Overlay::Help => {
            let lines = HELP
                .iter()
                .map(|(k, what)| {
                    Line::from(vec![
                        Span::styled(
                            format!("{k:<10}"),
                            Style::new().add_modifier(Modifier::BOLD),
                        ),
                        Span::raw(*what),
                    ])
                })
                .chain([
                    Line::raw(""),
                    Line::raw(if model.foreground {
                        "q stops the app (asks first while processes run)"
                    } else {
                        "q leaves the dashboard; the app keeps running"
                    }),
                    Line::styled("any key closes this", Style::new().fg(Color::DarkGray)),
                ])
                .collect();
            boxed(frame, " keys ", lines);
        }
        Overlay::Confirm { question, .. } => boxed(
            frame,
            " confirm ",
            vec![
                Line::raw(question.clone()),
                Line::raw(""),
                Line::from(vec![
                    Span::styled("y", Style::new().add_modifier(Modifier::BOLD)),
                    Span::raw(" yes   any other key: no"),
                ]),
            ],
        ),
        Overlay::None | Overlay::Search(_) => {}
    }
}

#[cfg(test)]
#[path = "view_tests.rs"]
mod tests;
