//! Keys as a terminal sends them: while the dashboard is connected to an
//! instance's terminal ([`super::tty`]), every key the dashboard reads
//! (crossterm's decoded events) is turned back into the bytes xterm would
//! have written for it, and those go to the instance. Ctrl-] is kept back:
//! it detaches, as in `procrun connect`. Pure.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

/// What a key does while connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Typed {
    /// These bytes go to the instance's terminal.
    Bytes(Vec<u8>),
    /// Ctrl-]: back to the dashboard.
    Detach,
    /// Nothing (a key release, a key a terminal sends nothing for).
    Nothing,
}

/// The bytes `key` sends; `app_cursor`: the program asked for the
/// application cursor keys (DECCKM, `ESC[?1h`), as full-screen programs
/// do, and arrows, Home and End then start with `ESC O`.
pub fn typed(key: KeyEvent, app_cursor: bool) -> Typed {
    if key.kind == KeyEventKind::Release {
        return Typed::Nothing;
    }
    if is_detach(key) {
        return Typed::Detach;
    }
    let m = key.modifiers;
    let (ctrl, alt) = (
        m.contains(KeyModifiers::CONTROL),
        m.contains(KeyModifiers::ALT),
    );
    // xterm's modifier parameter: 1 + shift + 2·alt + 4·ctrl.
    let param =
        1 + u8::from(m.contains(KeyModifiers::SHIFT)) + 2 * u8::from(alt) + 4 * u8::from(ctrl);
    let bytes = match key.code {
        KeyCode::Char(c) if ctrl => match control_byte(c) {
            Some(b) => with_alt(alt, vec![b]),
            // Ctrl with a key that has no control code: the key alone.
            None => with_alt(alt, utf8(c)),
        },
        KeyCode::Char(c) => with_alt(alt, utf8(c)),
        KeyCode::Enter => with_alt(alt, b"\r".to_vec()),
        KeyCode::Tab if m.contains(KeyModifiers::SHIFT) => b"\x1b[Z".to_vec(),
        KeyCode::Tab => with_alt(alt, b"\t".to_vec()),
        KeyCode::BackTab => b"\x1b[Z".to_vec(),
        // xterm: Backspace is DEL, Ctrl-Backspace BS.
        KeyCode::Backspace => with_alt(alt, vec![if ctrl { 0x08 } else { 0x7f }]),
        KeyCode::Esc => with_alt(alt, b"\x1b".to_vec()),
        KeyCode::Up => cursor(b'A', param, app_cursor),
        KeyCode::Down => cursor(b'B', param, app_cursor),
        KeyCode::Right => cursor(b'C', param, app_cursor),
        KeyCode::Left => cursor(b'D', param, app_cursor),
        KeyCode::Home => cursor(b'H', param, app_cursor),
        KeyCode::End => cursor(b'F', param, app_cursor),
        KeyCode::Insert => tilde(2, param),
        KeyCode::Delete => tilde(3, param),
        KeyCode::PageUp => tilde(5, param),
        KeyCode::PageDown => tilde(6, param),
        KeyCode::F(n @ 1..=4) => {
            let last = b'P' + (n - 1);
            if param == 1 {
                vec![0x1b, b'O', last]
            } else {
                csi_modified(1, param, last)
            }
        }
        KeyCode::F(n @ 5..=12) => {
            // F5 is 15; 16 and 22 are skipped, as on VT220s.
            const CODES: [u8; 8] = [15, 17, 18, 19, 20, 21, 23, 24];
            tilde(CODES[usize::from(n - 5)], param)
        }
        _ => return Typed::Nothing,
    };
    Typed::Bytes(bytes)
}

/// Ctrl-] in each form crossterm reports it: as Ctrl+`]` (terminals with
/// an extended keyboard protocol), as Ctrl+`5` (the legacy decoding of
/// byte 0x1d, which is also what xterm sends for Ctrl-5) or as the bare
/// character.
pub fn is_detach(key: KeyEvent) -> bool {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    match key.code {
        KeyCode::Char(']' | '5') => ctrl,
        KeyCode::Char('\u{1d}') => true,
        _ => false,
    }
}

/// The control code Ctrl+`c` sends, as xterm maps it.
fn control_byte(c: char) -> Option<u8> {
    match c {
        'a'..='z' => Some(c as u8 - b'a' + 1),
        'A'..='Z' => Some(c as u8 - b'A' + 1),
        ' ' | '@' | '2' => Some(0x00),
        '[' | '3' => Some(0x1b),
        '\\' | '4' => Some(0x1c),
        '^' | '6' => Some(0x1e),
        '_' | '/' | '-' | '7' => Some(0x1f),
        '?' | '8' => Some(0x7f),
        // Already a control character (crossterm passes some through).
        c if (c as u32) < 0x20 => Some(c as u8),
        _ => None,
    }
}

fn utf8(c: char) -> Vec<u8> {
    let mut buf = [0u8; 4];
    c.encode_utf8(&mut buf).as_bytes().to_vec()
}

/// Alt sends ESC before the key.
fn with_alt(alt: bool, bytes: Vec<u8>) -> Vec<u8> {
    if alt {
        let mut out = Vec::with_capacity(bytes.len() + 1);
        out.push(0x1b);
        out.extend(bytes);
        out
    } else {
        bytes
    }
}

/// An arrow, Home or End: `ESC[A`, `ESC O A` in application mode,
/// `ESC[1;5A` with modifiers.
fn cursor(last: u8, param: u8, app_cursor: bool) -> Vec<u8> {
    match (param, app_cursor) {
        (1, true) => vec![0x1b, b'O', last],
        (1, false) => vec![0x1b, b'[', last],
        _ => csi_modified(1, param, last),
    }
}

/// `ESC[N~`, or `ESC[N;M~` with modifiers.
fn tilde(n: u8, param: u8) -> Vec<u8> {
    if param == 1 {
        format!("\x1b[{n}~").into_bytes()
    } else {
        csi_modified(n, param, b'~')
    }
}

fn csi_modified(n: u8, param: u8, last: u8) -> Vec<u8> {
    let mut out = format!("\x1b[{n};{param}").into_bytes();
    out.push(last);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn with(code: KeyCode, m: KeyModifiers) -> KeyEvent {
        KeyEvent::new(code, m)
    }

    fn bytes(key: KeyEvent) -> Vec<u8> {
        match typed(key, false) {
            Typed::Bytes(b) => b,
            other => panic!("{key:?} sends nothing: {other:?}"),
        }
    }

    #[test]
    fn text_is_sent_as_utf8() {
        assert_eq!(bytes(key(KeyCode::Char('a'))), b"a");
        assert_eq!(
            bytes(with(KeyCode::Char('A'), KeyModifiers::SHIFT)),
            b"A",
            "shift is in the character"
        );
        assert_eq!(bytes(key(KeyCode::Char('é'))), "é".as_bytes());
        assert_eq!(bytes(key(KeyCode::Char('漢'))), "漢".as_bytes());
        assert_eq!(bytes(key(KeyCode::Char(' '))), b" ");
    }

    #[test]
    fn editing_keys_send_what_a_terminal_sends() {
        assert_eq!(bytes(key(KeyCode::Enter)), b"\r");
        assert_eq!(bytes(key(KeyCode::Backspace)), [0x7f]);
        assert_eq!(
            bytes(with(KeyCode::Backspace, KeyModifiers::CONTROL)),
            [0x08]
        );
        assert_eq!(bytes(key(KeyCode::Tab)), b"\t");
        assert_eq!(bytes(key(KeyCode::BackTab)), b"\x1b[Z");
        assert_eq!(bytes(with(KeyCode::Tab, KeyModifiers::SHIFT)), b"\x1b[Z");
        assert_eq!(bytes(key(KeyCode::Esc)), [0x1b]);
        assert_eq!(bytes(key(KeyCode::Delete)), b"\x1b[3~");
        assert_eq!(bytes(key(KeyCode::Insert)), b"\x1b[2~");
        assert_eq!(bytes(key(KeyCode::PageUp)), b"\x1b[5~");
        assert_eq!(bytes(key(KeyCode::PageDown)), b"\x1b[6~");
    }

    #[test]
    fn cursor_keys_follow_the_programs_mode_and_modifiers() {
        assert_eq!(bytes(key(KeyCode::Up)), b"\x1b[A");
        assert_eq!(bytes(key(KeyCode::Down)), b"\x1b[B");
        assert_eq!(bytes(key(KeyCode::Right)), b"\x1b[C");
        assert_eq!(bytes(key(KeyCode::Left)), b"\x1b[D");
        assert_eq!(bytes(key(KeyCode::Home)), b"\x1b[H");
        assert_eq!(bytes(key(KeyCode::End)), b"\x1b[F");
        assert_eq!(
            typed(key(KeyCode::Up), true),
            Typed::Bytes(b"\x1bOA".to_vec())
        );
        assert_eq!(
            typed(key(KeyCode::End), true),
            Typed::Bytes(b"\x1bOF".to_vec())
        );
        assert_eq!(
            bytes(with(KeyCode::Left, KeyModifiers::CONTROL)),
            b"\x1b[1;5D"
        );
        assert_eq!(
            typed(with(KeyCode::Up, KeyModifiers::SHIFT), true),
            Typed::Bytes(b"\x1b[1;2A".to_vec()),
            "a modified arrow is the same in both modes"
        );
        assert_eq!(
            bytes(with(
                KeyCode::Delete,
                KeyModifiers::ALT | KeyModifiers::CONTROL
            )),
            b"\x1b[3;7~"
        );
    }

    #[test]
    fn function_keys_are_xterms() {
        assert_eq!(bytes(key(KeyCode::F(1))), b"\x1bOP");
        assert_eq!(bytes(key(KeyCode::F(4))), b"\x1bOS");
        assert_eq!(bytes(key(KeyCode::F(5))), b"\x1b[15~");
        assert_eq!(bytes(key(KeyCode::F(6))), b"\x1b[17~");
        assert_eq!(bytes(key(KeyCode::F(10))), b"\x1b[21~");
        assert_eq!(bytes(key(KeyCode::F(11))), b"\x1b[23~");
        assert_eq!(bytes(key(KeyCode::F(12))), b"\x1b[24~");
        assert_eq!(
            bytes(with(KeyCode::F(1), KeyModifiers::SHIFT)),
            b"\x1b[1;2P"
        );
        assert_eq!(
            bytes(with(KeyCode::F(5), KeyModifiers::CONTROL)),
            b"\x1b[15;5~"
        );
        assert_eq!(typed(key(KeyCode::F(13)), false), Typed::Nothing);
        assert_eq!(typed(key(KeyCode::CapsLock), false), Typed::Nothing);
    }

    #[test]
    fn ctrl_letters_are_control_bytes_and_alt_is_an_escape_prefix() {
        let ctrl = |c| bytes(with(KeyCode::Char(c), KeyModifiers::CONTROL));
        assert_eq!(ctrl('c'), [0x03], "Ctrl-C goes to the program");
        assert_eq!(ctrl('z'), [0x1a]);
        assert_eq!(ctrl('d'), [0x04]);
        assert_eq!(ctrl('a'), [0x01]);
        assert_eq!(ctrl('C'), [0x03]);
        assert_eq!(ctrl(' '), [0x00]);
        assert_eq!(ctrl('['), [0x1b]);
        assert_eq!(ctrl('\\'), [0x1c]);
        assert_eq!(ctrl('4'), [0x1c], "crossterm's decoding of 0x1c");
        assert_eq!(ctrl('7'), [0x1f]);
        assert_eq!(ctrl('?'), [0x7f]);
        assert_eq!(ctrl('1'), b"1", "no control code: the key alone");
        assert_eq!(bytes(with(KeyCode::Char('b'), KeyModifiers::ALT)), b"\x1bb");
        assert_eq!(
            bytes(with(
                KeyCode::Char('x'),
                KeyModifiers::ALT | KeyModifiers::CONTROL
            )),
            [0x1b, 0x18]
        );
        assert_eq!(bytes(with(KeyCode::Enter, KeyModifiers::ALT)), b"\x1b\r");
    }

    #[test]
    fn ctrl_bracket_detaches_in_each_form() {
        for k in [
            with(KeyCode::Char(']'), KeyModifiers::CONTROL),
            with(KeyCode::Char('5'), KeyModifiers::CONTROL),
            key(KeyCode::Char('\u{1d}')),
        ] {
            assert_eq!(typed(k, false), Typed::Detach, "{k:?}");
        }
        assert_eq!(bytes(key(KeyCode::Char(']'))), b"]");
        assert_eq!(bytes(key(KeyCode::Char('5'))), b"5");
        let release = KeyEvent {
            kind: KeyEventKind::Release,
            ..key(KeyCode::Char('a'))
        };
        assert_eq!(typed(release, false), Typed::Nothing);
    }
}
