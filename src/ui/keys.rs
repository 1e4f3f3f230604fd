//! Keys to intents: what a key means depends only on what is shown (a
//! question, the search prompt, the help, or the panes), so the mapping is
//! a pure function, and the help overlay lists the same table.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::ui::model::Overlay;

/// What a key asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Nothing.
    None,
    /// Move the selection by this many rows.
    Select(isize),
    /// Scroll the output up (older) by lines.
    ScrollUp(usize),
    /// Scroll the output down (newer) by lines.
    ScrollDown(usize),
    /// A page up.
    PageUp,
    /// A page down.
    PageDown,
    /// Half a page up.
    HalfUp,
    /// Half a page down.
    HalfDown,
    /// The oldest line kept.
    Top,
    /// The newest line, and follow.
    Follow,
    /// Wrap long lines, or cut them.
    ToggleWrap,
    /// Show the keys.
    Help,
    /// Close what covers the panes (or clear the search).
    Close,
    /// Open the search prompt.
    SearchStart,
    /// A character of the search.
    SearchType(char),
    /// Erase the last character of the search.
    SearchErase,
    /// Search for what was typed.
    SearchSubmit,
    /// The next older match.
    NextMatch,
    /// The next newer match.
    PreviousMatch,
    /// The answer to a question.
    Answer(bool),
    /// Restart the selected instance (every one from "all").
    Restart,
    /// Stop the selected instance.
    Stop,
    /// Start the selected stopped instance.
    Start,
    /// One more instance of the selected type.
    ScaleUp,
    /// One less.
    ScaleDown,
    /// SIGKILL to the selected instance.
    Kill,
    /// Leave the dashboard (under `start --ui`: stop the app).
    Quit,
    /// Connect the pane to the selected instance's terminal (`--tty`).
    Connect,
}

/// The keys, as the help overlay shows them.
pub const HELP: &[(&str, &str)] = &[
    ("j k ↓ ↑", "select a process (\"all\": every one, merged)"),
    ("r", "restart (on \"all\": every instance, asks first)"),
    ("s  S", "stop; start a stopped one"),
    ("+  -", "one more / one less instance of the type"),
    ("x", "send SIGKILL (asks first)"),
    (
        "PgUp PgDn",
        "scroll the output a page (Ctrl-U Ctrl-D: half)",
    ),
    ("K  J", "scroll the output a line (Shift-↑ Shift-↓)"),
    ("g  G", "oldest line; newest line, and follow"),
    ("/  n  N", "search; older match; newer match (Esc clears)"),
    ("w", "wrap long lines, or cut them"),
    (
        "Enter",
        "connect to a --tty instance: keys go to it, Ctrl-] detaches",
    ),
    ("?", "this help"),
    ("q", "quit"),
];

/// The intent of `key` while `overlay` is shown.
pub fn intent(overlay: &Overlay, key: KeyEvent) -> Intent {
    if key.kind == KeyEventKind::Release {
        return Intent::None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && key.code == KeyCode::Char('c') {
        // Ctrl-C answers no to a question, else it quits (raw mode: it
        // is a key here, not a signal).
        return match overlay {
            Overlay::Confirm { .. } => Intent::Answer(false),
            Overlay::Search(_) | Overlay::Help => Intent::Close,
            Overlay::None => Intent::Quit,
        };
    }
    match overlay {
        Overlay::Confirm { .. } => Intent::Answer(matches!(key.code, KeyCode::Char('y' | 'Y'))),
        Overlay::Help => Intent::Close,
        Overlay::Search(_) => match key.code {
            KeyCode::Enter => Intent::SearchSubmit,
            KeyCode::Esc => Intent::Close,
            KeyCode::Backspace => Intent::SearchErase,
            KeyCode::Char(c) if !ctrl => Intent::SearchType(c),
            _ => Intent::None,
        },
        Overlay::None if ctrl => match key.code {
            KeyCode::Char('u') => Intent::HalfUp,
            KeyCode::Char('d') => Intent::HalfDown,
            KeyCode::Char('b') => Intent::PageUp,
            KeyCode::Char('f') => Intent::PageDown,
            _ => Intent::None,
        },
        Overlay::None
            if key.modifiers.contains(KeyModifiers::SHIFT)
                && matches!(key.code, KeyCode::Up | KeyCode::Down) =>
        {
            if key.code == KeyCode::Up {
                Intent::ScrollUp(1)
            } else {
                Intent::ScrollDown(1)
            }
        }
        Overlay::None => match key.code {
            KeyCode::Char('K') => Intent::ScrollUp(1),
            KeyCode::Char('J') => Intent::ScrollDown(1),
            KeyCode::Char('j') | KeyCode::Down => Intent::Select(1),
            KeyCode::Char('k') | KeyCode::Up => Intent::Select(-1),
            KeyCode::PageUp => Intent::PageUp,
            KeyCode::PageDown => Intent::PageDown,
            KeyCode::Char('g') | KeyCode::Home => Intent::Top,
            KeyCode::Char('G' | 'f') | KeyCode::End => Intent::Follow,
            KeyCode::Char('w') => Intent::ToggleWrap,
            KeyCode::Char('/') => Intent::SearchStart,
            KeyCode::Char('n') => Intent::NextMatch,
            KeyCode::Char('N') => Intent::PreviousMatch,
            KeyCode::Char('?') | KeyCode::F(1) => Intent::Help,
            KeyCode::Esc => Intent::Close,
            KeyCode::Char('r') => Intent::Restart,
            KeyCode::Char('s') => Intent::Stop,
            KeyCode::Char('S') => Intent::Start,
            KeyCode::Char('+' | '=') => Intent::ScaleUp,
            KeyCode::Char('-') => Intent::ScaleDown,
            KeyCode::Char('x') => Intent::Kill,
            KeyCode::Char('q') => Intent::Quit,
            KeyCode::Enter => Intent::Connect,
            _ => Intent::None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ui::model::Call;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn ctrl(c: char) -> KeyEvent {
        KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL)
    }

    #[test]
    fn the_panes_take_single_letters() {
        let none = Overlay::None;
        let i = |code| intent(&none, key(code));
        assert_eq!(i(KeyCode::Char('j')), Intent::Select(1));
        assert_eq!(i(KeyCode::Up), Intent::Select(-1));
        assert_eq!(i(KeyCode::Char('r')), Intent::Restart);
        assert_eq!(i(KeyCode::Char('s')), Intent::Stop);
        assert_eq!(i(KeyCode::Char('S')), Intent::Start);
        assert_eq!(i(KeyCode::Char('+')), Intent::ScaleUp);
        assert_eq!(i(KeyCode::Char('-')), Intent::ScaleDown);
        assert_eq!(i(KeyCode::Char('x')), Intent::Kill);
        assert_eq!(i(KeyCode::Char('q')), Intent::Quit);
        assert_eq!(i(KeyCode::Char('/')), Intent::SearchStart);
        assert_eq!(i(KeyCode::Enter), Intent::Connect);
        assert_eq!(i(KeyCode::Char('z')), Intent::None);
        assert_eq!(intent(&none, ctrl('c')), Intent::Quit);
        assert_eq!(intent(&none, ctrl('u')), Intent::HalfUp);
        let release = KeyEvent {
            kind: KeyEventKind::Release,
            ..key(KeyCode::Char('q'))
        };
        assert_eq!(intent(&none, release), Intent::None);
    }

    #[test]
    fn a_question_takes_only_y_as_yes() {
        let ask = Overlay::Confirm {
            question: "?".into(),
            call: Call {
                method: "quit",
                params: serde_json::Value::Null,
                label: "quit".into(),
            },
        };
        assert_eq!(intent(&ask, key(KeyCode::Char('y'))), Intent::Answer(true));
        assert_eq!(intent(&ask, key(KeyCode::Enter)), Intent::Answer(false));
        assert_eq!(intent(&ask, key(KeyCode::Char('q'))), Intent::Answer(false));
        assert_eq!(intent(&ask, ctrl('c')), Intent::Answer(false));
    }

    #[test]
    fn the_search_prompt_takes_text() {
        let search = Overlay::Search("ab".into());
        assert_eq!(
            intent(&search, key(KeyCode::Char('q'))),
            Intent::SearchType('q')
        );
        assert_eq!(
            intent(&search, key(KeyCode::Char('/'))),
            Intent::SearchType('/')
        );
        assert_eq!(
            intent(&search, key(KeyCode::Backspace)),
            Intent::SearchErase
        );
        assert_eq!(intent(&search, key(KeyCode::Enter)), Intent::SearchSubmit);
        assert_eq!(intent(&search, key(KeyCode::Esc)), Intent::Close);
        assert_eq!(
            intent(&Overlay::Help, key(KeyCode::Char('r'))),
            Intent::Close
        );
    }
}
