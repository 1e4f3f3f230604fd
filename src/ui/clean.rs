//! Child output made safe to draw: a child's line may hold any escape
//! sequence (colours, cursor moves, a terminal title, a screen clear), and
//! the dashboard draws it inside a pane of its own, so nothing of it may
//! reach the terminal as a control. Every escape sequence and control
//! character is removed; a tab becomes spaces; a carriage return keeps what
//! follows it, as a terminal would show a progress line that rewrites
//! itself. No terminal emulation: the pane shows lines of plain text.

/// The longest line kept, in characters; the rest is cut with a note.
pub const MAX_CHARS: usize = 16 * 1024;

/// Tab stops, as terminals set them.
const TAB: usize = 8;

/// `text` without escape sequences or control characters; most lines are
/// plain printable ASCII and come back as they are, without a copy.
pub fn clean_owned(text: String) -> String {
    let plain = text.len() <= MAX_CHARS && text.bytes().all(|b| (b' '..=b'~').contains(&b));
    if plain { text } else { clean(&text) }
}

/// `text` without escape sequences or control characters.
pub fn clean(text: &str) -> String {
    // After the last carriage return: `50%\r100%` shows `100%`. A trailing
    // one (`line\r`) overwrites nothing.
    let text = text.trim_end_matches('\r');
    let text = match text.rfind('\r') {
        Some(i) => &text[i + 1..],
        None => text,
    };
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut column = 0;
    let mut kept = 0;
    while let Some(c) = chars.next() {
        if kept >= MAX_CHARS {
            let rest = chars.count() + 1;
            out.push_str(&format!(" … ({rest} more characters)"));
            break;
        }
        match c {
            '\x1b' => skip_escape(&mut chars),
            // A C1 control: CSI, OSC and DCS in their 8-bit forms too.
            '\u{9b}' => skip_csi(&mut chars),
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => skip_string(&mut chars),
            '\t' => {
                let spaces = TAB - column % TAB;
                out.extend(std::iter::repeat_n(' ', spaces));
                column += spaces;
                kept += spaces;
            }
            // Controls, and the characters that reorder or break a line
            // (bidirectional overrides, line separators): a pane shows
            // them as nothing.
            c if c.is_control() || is_layout_control(c) => {}
            c => {
                out.push(c);
                column += 1;
                kept += 1;
            }
        }
    }
    out
}

fn is_layout_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

type Chars<'a> = std::iter::Peekable<std::str::Chars<'a>>;

/// After an ESC: a CSI (`ESC [` … final byte), a string (OSC `ESC ]`, DCS
/// `ESC P`, SOS, PM, APC: up to BEL or ST), or a two-character sequence.
fn skip_escape(chars: &mut Chars<'_>) {
    match chars.next() {
        Some('[') => skip_csi(chars),
        Some(']' | 'P' | 'X' | '^' | '_') => skip_string(chars),
        // `ESC ( B` and the like: intermediates, then one final character.
        Some(c) if (' '..='/').contains(&c) => {
            while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
            chars.next();
        }
        _ => {}
    }
}

/// Parameters and intermediates, then the final byte (`@` to `~`).
fn skip_csi(chars: &mut Chars<'_>) {
    for c in chars.by_ref() {
        if ('@'..='~').contains(&c) {
            return;
        }
        if !(' '..='?').contains(&c) {
            // Not a CSI after all: stop at the first character that
            // cannot be part of one (it is dropped with the sequence).
            return;
        }
    }
}

/// Up to BEL, `ESC \` or the 8-bit ST; an unterminated one ends the line.
fn skip_string(chars: &mut Chars<'_>) {
    while let Some(c) = chars.next() {
        match c {
            '\x07' | '\u{9c}' => return,
            '\x1b' => {
                chars.next_if_eq(&'\\');
                return;
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_and_cursor_moves_are_removed() {
        assert_eq!(clean("\x1b[1;31merror\x1b[0m: disk"), "error: disk");
        assert_eq!(clean("a\x1b[2J\x1b[Hb"), "ab");
        assert_eq!(clean("\x1b[?1049h\x1b[?25lhidden"), "hidden");
        assert_eq!(clean("\u{9b}31mred"), "red");
    }

    #[test]
    fn strings_like_a_window_title_are_removed_whole() {
        assert_eq!(clean("\x1b]0;my title\x07after"), "after");
        assert_eq!(clean("\x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\"), "link");
        assert_eq!(clean("\x1bPq#0;2;0;0;0\x1b\\img"), "img");
        // Unterminated: the rest of the line goes with it.
        assert_eq!(clean("ok\x1b]0;never ends"), "ok");
    }

    #[test]
    fn other_escapes_and_controls_are_dropped() {
        assert_eq!(clean("\x1b(Bplain\x1b7\x1b8"), "plain");
        assert_eq!(
            clean("bell\x07 back\x08space\x00nul\x7f"),
            "bell backspacenul"
        );
        assert_eq!(clean("c1\u{85}\u{9c}"), "c1");
        assert_eq!(clean("abc\u{202e}fed\u{2028}"), "abcfed");
        assert_eq!(
            clean("lone escape at the end\x1b"),
            "lone escape at the end"
        );
    }

    #[test]
    fn tabs_expand_to_stops_and_text_is_kept() {
        assert_eq!(clean("a\tb"), "a       b");
        assert_eq!(clean("12345678\tx"), "12345678        x");
        assert_eq!(clean("héllo wörld ✓ 漢字"), "héllo wörld ✓ 漢字");
    }

    #[test]
    fn plain_text_is_kept_without_a_copy() {
        let text = String::from("GET / 200 3ms");
        let at = text.as_ptr();
        let kept = clean_owned(text);
        assert_eq!((kept.as_str(), kept.as_ptr()), ("GET / 200 3ms", at));
        assert_eq!(clean_owned("a\tb\x1b[1m".into()), "a       b");
        assert_eq!(
            clean_owned("x".repeat(MAX_CHARS + 1)).chars().count(),
            MAX_CHARS + 22
        );
    }

    #[test]
    fn a_carriage_return_keeps_what_follows() {
        assert_eq!(clean("10%\r50%\r100%"), "100%");
        assert_eq!(clean("done\r"), "done");
        assert_eq!(clean("\r\r"), "");
    }

    #[test]
    fn a_huge_line_is_cut_with_a_note() {
        let line = "x".repeat(MAX_CHARS + 10);
        let cleaned = clean(&line);
        assert!(cleaned.starts_with(&"x".repeat(MAX_CHARS)));
        assert!(
            cleaned.ends_with(" … (10 more characters)"),
            "{}",
            &cleaned[MAX_CHARS..]
        );
    }
}
