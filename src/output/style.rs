//! How a line looks: the prefix (`HH:MM:SS web.1  | `), its colour and the
//! clock that stamps it.

/// The name procrun's own messages appear under.
pub const SYSTEM: &str = "system";

use owo_colors::{AnsiColors, Style};

/// Foreground colours cycled through by process type, in Procfile order:
/// the six basic colours, then their bright versions.
const PALETTE: [AnsiColors; 12] = [
    AnsiColors::Cyan,
    AnsiColors::Yellow,
    AnsiColors::Green,
    AnsiColors::Magenta,
    AnsiColors::Red,
    AnsiColors::Blue,
    AnsiColors::BrightCyan,
    AnsiColors::BrightYellow,
    AnsiColors::BrightGreen,
    AnsiColors::BrightMagenta,
    AnsiColors::BrightRed,
    AnsiColors::BrightBlue,
];

/// The style of process type number `type_index` (0-based Procfile order).
pub fn color_of(type_index: usize) -> Style {
    Style::new().color(PALETTE[type_index % PALETTE.len()])
}

/// `system`'s style: bold in the terminal's own colour, readable on light
/// and dark themes alike.
fn system_style() -> Style {
    Style::new().bold()
}

/// The prefix of one name, split around the timestamp: a line is
/// `before` + time + `after` + text.
#[derive(Clone, Debug)]
pub struct Prefix {
    /// Written before the timestamp (the colour, if any).
    pub before: Vec<u8>,
    /// Written after the timestamp: ` web.1  | ` (with the colour reset).
    pub after: Vec<u8>,
}

impl Prefix {
    /// The prefix of `name` padded to `width`, coloured with `color` when
    /// given; `timestamps` decides whether a space separates it from the time.
    pub fn new(name: &str, width: usize, color: Option<Style>, timestamps: bool) -> Self {
        let lead = if timestamps { " " } else { "" };
        // The escape codes are computed once per name, never per line.
        let (before, reset) = match color {
            Some(style) => (
                style.prefix_formatter().to_string(),
                style.suffix_formatter().to_string(),
            ),
            None => (String::new(), String::new()),
        };
        Prefix {
            before: before.into_bytes(),
            after: format!("{lead}{name:<width$} |{reset} ").into_bytes(),
        }
    }

    /// The prefix of an instance.
    pub fn instance(
        name: &str,
        type_index: usize,
        width: usize,
        color: bool,
        timestamps: bool,
    ) -> Self {
        Prefix::new(name, width, color.then(|| color_of(type_index)), timestamps)
    }

    /// The prefix of procrun's own messages.
    pub fn system(width: usize, color: bool, timestamps: bool) -> Self {
        Prefix::new(SYSTEM, width, color.then(system_style), timestamps)
    }
}

/// The width names are padded to: the longest instance name, and `system`.
pub fn name_width<'a>(names: impl IntoIterator<Item = &'a str>) -> usize {
    names
        .into_iter()
        .map(str::len)
        .chain([SYSTEM.len()])
        .max()
        .unwrap_or(SYSTEM.len())
}

/// The prefix width `--prefix-width` defaults to: names longer than this
/// are shortened, so one long type name does not push every line right.
pub const DEFAULT_PREFIX_WIDTH: usize = 20;

/// `name` shortened to `cap` characters with `…` in the middle, unless it
/// fits (or `cap` is 0: no limit), and distinct from every name `taken`
/// says is in use. The end of a name usually tells instances apart
/// (`…-worker.1`, `…-web.1`), so the end keeps the larger share; when that
/// collides, the cut moves until it does not, and a name that cannot be
/// shortened uniquely is shown whole. `cap` is at least `system`'s width.
pub fn shorten(name: &str, cap: usize, taken: &dyn Fn(&str) -> bool) -> String {
    let chars: Vec<char> = name.chars().collect();
    let cap = match cap {
        0 => return name.to_owned(),
        n => n.max(SYSTEM.len()),
    };
    if chars.len() <= cap {
        return name.to_owned();
    }
    let keep = cap - 1;
    let base_head = keep / 2;
    let cut = |head: usize| {
        let tail = keep - head;
        let mut out: String = chars[..head].iter().collect();
        out.push('…');
        out.extend(&chars[chars.len() - tail..]);
        out
    };
    // Heads from the even split outwards: fewer head chars first.
    let heads = (0..=keep).map(|i| {
        if i % 2 == 0 {
            base_head.checked_sub(i / 2)
        } else {
            Some(base_head + i / 2 + 1).filter(|h| *h <= keep)
        }
    });
    heads
        .flatten()
        .map(cut)
        .find(|short| !taken(short))
        .unwrap_or_else(|| name.to_owned())
}

/// Local wall-clock time as `HH:MM:SS`, formatted once per second.
#[derive(Debug, Default)]
pub struct Clock {
    second: i64,
    text: [u8; 8],
}

impl Clock {
    /// The current time's text.
    pub fn now(&mut self) -> &[u8] {
        self.at(std::time::SystemTime::now())
    }

    /// The text of `time`.
    pub fn at(&mut self, time: std::time::SystemTime) -> &[u8] {
        let secs = time
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        if secs != self.second || self.text[0] == 0 {
            self.second = secs;
            let (h, m, s) = local_hms(secs);
            let text = format!("{h:02}:{m:02}:{s:02}");
            self.text.copy_from_slice(&text.as_bytes()[..8]);
        }
        &self.text
    }
}

/// Hours, minutes and seconds of the local time at `secs` since the epoch.
fn local_hms(secs: i64) -> (i32, i32, i32) {
    let t = secs as libc::time_t;
    // SAFETY: an all-zero `tm` is a valid value of this plain C struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the
    // thread-safe variant and only writes into `tm`.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        (tm.tm_hour, tm.tm_min, tm.tm_sec)
    } else {
        let day = secs.rem_euclid(86_400) as i32;
        (day / 3600, day / 60 % 60, day % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_pads_and_colours() {
        let p = Prefix::instance("web.1", 0, 8, false, true);
        assert_eq!(p.before, b"");
        assert_eq!(p.after, b" web.1    | ");
        let p = Prefix::instance("web.1", 0, 6, true, false);
        assert_eq!(p.before, b"\x1b[36m");
        assert_eq!(p.after, b"web.1  |\x1b[0m ");
        assert_eq!(color_of(12), color_of(0));
        assert_ne!(color_of(1), color_of(0));
    }

    #[test]
    fn width_counts_system() {
        assert_eq!(name_width(["web.1"]), 6);
        assert_eq!(name_width(["worker.10", "web.1"]), 9);
    }

    #[test]
    fn long_names_are_shortened_in_the_middle_and_stay_distinct() {
        let none = |_: &str| false;
        assert_eq!(shorten("web.1", 20, &none), "web.1");
        assert_eq!(
            shorten("very-long-name-web.1", 20, &none),
            "very-long-name-web.1"
        );
        let worker = shorten("very-long-name-worker.1", 20, &none);
        assert_eq!(worker, "very-long…e-worker.1");
        assert_eq!(worker.chars().count(), 20);
        assert_eq!(
            shorten("very-long-name-worker.1", 0, &none),
            "very-long-name-worker.1"
        );
        // A cap below `system`'s width is `system`'s width.
        assert_eq!(shorten("abcdefghij", 2, &none), "ab…hij");
        // Two names that end alike: the second moves its cut.
        let a = shorten("alpha-service-background-worker.1", 12, &none);
        let b = shorten("gamma-service-background-worker.1", 12, &|s| s == a);
        assert_ne!(a, b);
        assert_eq!((a.chars().count(), b.chars().count()), (12, 12));
        // No distinct cut: the whole name.
        assert_eq!(shorten("abcdefgh", 7, &|_| true), "abcdefgh");
    }

    #[test]
    fn clock_text_is_hh_mm_ss() {
        let mut c = Clock::default();
        let t = c.now().to_vec();
        assert_eq!(t.len(), 8);
        assert_eq!(t[2], b':');
        assert_eq!(t[5], b':');
    }
}
