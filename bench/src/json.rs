//! A strict parser for one NDJSON record of `procrun start --log-format
//! json` (docs/json.md): it validates the whole line as one JSON object and
//! picks out the fields the checker needs, skipping (but still validating)
//! every other field, nested values included.
//!
//! Hand-written rather than serde_json: the reader thread must keep up with
//! procrun on a 2-core machine, and these records are flat objects whose
//! strings rarely hold an escape, so a byte scan with `memchr` that borrows
//! the strings does less work than a general parser.

use std::borrow::Cow;

/// The fields of one record that the checker uses.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Record<'a> {
    pub name: Option<Cow<'a, [u8]>>,
    pub seq: Option<u64>,
    pub stream: Option<Cow<'a, [u8]>>,
    pub event: Option<Cow<'a, [u8]>>,
    /// The child's line, unescaped.
    pub msg: Option<Cow<'a, [u8]>>,
    /// The line came as `msg_b64` (it was not valid UTF-8).
    pub msg_b64: bool,
    pub partial: bool,
    pub split: bool,
}

/// Nesting limit for skipped values: deeper is treated as invalid.
const MAX_DEPTH: usize = 64;

/// Bytes that end the plain run of a string: `"`, `\` and the control
/// characters, which JSON does not allow unescaped.
static SPECIAL: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

/// Length of the run of `s` before its first `"`, `\` or control
/// character (all of `s` if none). The reader thread spends most of its
/// time here, on a 27-byte timestamp and a 99-byte line per record: 16
/// bytes at a time with SSE2 (part of every x86_64 CPU), eight at a time
/// (SWAR) elsewhere.
fn plain_run(s: &[u8]) -> usize {
    let mut i = 0;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        // SAFETY: SSE2 is baseline on x86_64; each load reads 16 bytes
        // within `s`.
        unsafe {
            let quote = _mm_set1_epi8(b'"' as i8);
            let backslash = _mm_set1_epi8(b'\\' as i8);
            let control = _mm_set1_epi8(0x1f);
            while i + 16 <= s.len() {
                let x = _mm_loadu_si128(s.as_ptr().add(i).cast());
                // x <= 0x1f, unsigned: max(x, 0x1f) == 0x1f.
                let hit = _mm_or_si128(
                    _mm_or_si128(_mm_cmpeq_epi8(x, quote), _mm_cmpeq_epi8(x, backslash)),
                    _mm_cmpeq_epi8(_mm_max_epu8(x, control), control),
                );
                let mask = _mm_movemask_epi8(hit);
                if mask != 0 {
                    return i + mask.trailing_zeros() as usize;
                }
                i += 16;
            }
        }
    }
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // The high bit of each byte of `v` below `n` (n ≤ 0x80) survives; a
    // zero byte is one below 1. Exact for "is there any", which is all
    // that is asked: the word is then scanned bytewise.
    let below = |v: u64, n: u64| v.wrapping_sub(ONES * n) & !v & HIGH;
    while let Some(chunk) = s.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
        let hit = below(x ^ (ONES * u64::from(b'"')), 1)
            | below(x ^ (ONES * u64::from(b'\\')), 1)
            | below(x, 0x20);
        if hit != 0 {
            break;
        }
        i += 8;
    }
    i + s[i..]
        .iter()
        .position(|&b| SPECIAL[usize::from(b)])
        .unwrap_or(s.len() - i)
}

/// The fast path of [`parse`]: a child line's record exactly as procrun
/// writes it — `{"ts":"…","name":"…","type":"…","instance":N[,"pid":N],
/// "stream":"…","seq":N,"msg":"…"}`, no whitespace, strings without
/// escapes. Such a line is one valid JSON object, so this is as strict as
/// the parser; anything else (`None`) goes to the parser. A third of the
/// reader's time per record, where the reader must keep up with procrun.
fn line_record(line: &[u8]) -> Option<Record<'_>> {
    fn string<'a>(p: &mut &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
        let rest = p.strip_prefix(key)?;
        let n = plain_run(rest);
        (rest.get(n) == Some(&b'"')).then_some(())?;
        *p = &rest[n + 1..];
        Some(&rest[..n])
    }
    fn number(p: &mut &[u8], key: &[u8]) -> Option<u64> {
        let rest = p.strip_prefix(key)?;
        let n = rest.iter().take_while(|b| b.is_ascii_digit()).count();
        // JSON has no leading zeros; twenty digits may overflow.
        if n == 0 || n > 19 || (n > 1 && rest[0] == b'0') {
            return None;
        }
        let v = rest[..n]
            .iter()
            .fold(0u64, |v, &d| v * 10 + u64::from(d - b'0'));
        *p = &rest[n..];
        Some(v)
    }
    let mut p = line;
    string(&mut p, b"{\"ts\":\"")?;
    let name = string(&mut p, b",\"name\":\"")?;
    string(&mut p, b",\"type\":\"")?;
    number(&mut p, b",\"instance\":")?;
    if p.starts_with(b",\"pid\":") {
        number(&mut p, b",\"pid\":")?;
    }
    let stream = string(&mut p, b",\"stream\":\"")?;
    let seq = number(&mut p, b",\"seq\":")?;
    let msg = string(&mut p, b",\"msg\":\"")?;
    (p == b"}").then_some(())?;
    Some(Record {
        name: Some(Cow::Borrowed(name)),
        seq: Some(seq),
        stream: Some(Cow::Borrowed(stream)),
        msg: Some(Cow::Borrowed(msg)),
        ..Record::default()
    })
}

/// Parses `line` (without its newline) as exactly one JSON object; `None`
/// if it is not valid JSON, not an object, has anything after the object,
/// or a known field has the wrong type (`seq` must be a whole number).
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    // JSON text is UTF-8; checking it once here lets the string scanner
    // work on bytes.
    std::str::from_utf8(line).ok()?;
    if let Some(rec) = line_record(line) {
        return Some(rec);
    }
    let mut p = Parser { s: line, i: 0 };
    let mut rec = Record::default();
    p.ws();
    p.eat(b'{')?;
    p.ws();
    if p.peek() == Some(b'}') {
        p.i += 1;
    } else {
        loop {
            p.ws();
            let key = p.string()?;
            p.ws();
            p.eat(b':')?;
            p.ws();
            match &*key {
                b"name" => rec.name = Some(p.string()?),
                b"stream" => rec.stream = Some(p.string()?),
                b"event" => rec.event = Some(p.string()?),
                b"msg" => rec.msg = Some(p.string()?),
                b"msg_b64" => {
                    p.string()?;
                    rec.msg_b64 = true;
                }
                b"seq" => rec.seq = Some(p.uint()?),
                b"partial" => rec.partial = p.boolean()?,
                b"split" => rec.split = p.boolean()?,
                _ => p.value(0)?,
            }
            p.ws();
            match p.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
    }
    p.ws();
    (p.i == line.len()).then_some(rec)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.i += 1;
        Some(b)
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        (self.next()? == b).then_some(())
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        let end = self.i + word.len();
        (self.s.get(self.i..end)? == word).then(|| self.i = end)
    }

    fn boolean(&mut self) -> Option<bool> {
        match self.peek()? {
            b't' => self.literal(b"true").map(|_| true),
            b'f' => self.literal(b"false").map(|_| false),
            _ => None,
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
        self.i - start
    }

    /// `0` or a digit string without a leading zero.
    fn int_part(&mut self) -> Option<()> {
        match self.peek()? {
            b'0' => {
                self.i += 1;
                Some(())
            }
            b'1'..=b'9' => {
                self.digits();
                Some(())
            }
            _ => None,
        }
    }

    /// A non-negative JSON integer (no fraction, no exponent) that fits u64.
    fn uint(&mut self) -> Option<u64> {
        let start = self.i;
        self.int_part()?;
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let mut v: u64 = 0;
        for &d in &self.s[start..self.i] {
            v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        Some(v)
    }

    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        self.int_part()?;
        if self.peek() == Some(b'.') {
            self.i += 1;
            (self.digits() > 0).then_some(())?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            (self.digits() > 0).then_some(())?;
        }
        Some(())
    }

    /// A string, borrowed when it has no escape.
    fn string(&mut self) -> Option<Cow<'a, [u8]>> {
        self.eat(b'"')?;
        let rest = &self.s[self.i..];
        let end = plain_run(rest);
        if end == rest.len() {
            return None;
        }
        if rest[end] < 0x20 {
            return None;
        }
        if rest[end] == b'"' {
            self.i += end + 1;
            return Some(Cow::Borrowed(&rest[..end]));
        }
        let mut out = rest[..end].to_vec();
        self.i += end;
        loop {
            match self.next()? {
                b'"' => return Some(Cow::Owned(out)),
                b'\\' => self.escape(&mut out)?,
                b if b < 0x20 => return None,
                b => out.push(b),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let c = match self.next()? {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hi = self.hex4()?;
                let code = if (0xd800..0xdc00).contains(&hi) {
                    // A high surrogate must be followed by a low one.
                    self.literal(b"\\u")?;
                    let lo = self.hex4()?;
                    if !(0xdc00..0xe000).contains(&lo) {
                        return None;
                    }
                    0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00)
                } else {
                    hi
                };
                char::from_u32(code)?
            }
            _ => return None,
        };
        let mut buf = [0u8; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        Some(())
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        let mut v = 0;
        for &d in digits {
            v = v * 16 + char::from(d).to_digit(16)?;
        }
        self.i += 4;
        Some(v)
    }

    /// Skips any value, validating it.
    fn value(&mut self, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            open @ (b'{' | b'[') => {
                let close = if open == b'{' { b'}' } else { b']' };
                self.i += 1;
                self.ws();
                if self.peek() == Some(close) {
                    self.i += 1;
                    return Some(());
                }
                loop {
                    self.ws();
                    if open == b'{' {
                        self.string()?;
                        self.ws();
                        self.eat(b':')?;
                        self.ws();
                    }
                    self.value(depth + 1)?;
                    self.ws();
                    match self.next()? {
                        b',' => {}
                        b if b == close => return Some(()),
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_record_borrows_its_strings() {
        let line = br#"{"ts":"2026-12-01T12:00:00.123456Z","name":"web.1","type":"web","instance":1,"pid":4242,"stream":"stdout","seq":17,"msg":"listening on :5000"}"#;
        let r = parse(line).expect("valid");
        assert_eq!(r.name.as_deref(), Some(&b"web.1"[..]));
        assert_eq!(r.seq, Some(17));
        assert_eq!(r.stream.as_deref(), Some(&b"stdout"[..]));
        assert_eq!(r.msg.as_deref(), Some(&b"listening on :5000"[..]));
        assert!(matches!(r.msg, Some(Cow::Borrowed(_))));
        assert_eq!(r.event, None);
    }

    #[test]
    fn events_escapes_and_unknown_fields() {
        let line = br#" { "name" : "w.1", "seq":3, "stream":"system", "event":"restart", "delay_ms":10, "x":{"a":[1,-2.5e3,true,null,{}]}, "msg":"a\"b\\c\/\n\u00e9\ud83d\ude00", "partial":true } "#;
        let r = parse(line).expect("valid");
        assert_eq!(r.event.as_deref(), Some(&b"restart"[..]));
        assert_eq!(r.msg.as_deref(), Some("a\"b\\c/\né😀".as_bytes()));
        assert!(r.partial && !r.split && !r.msg_b64);
        assert_eq!(parse(b"{}"), Some(Record::default()));
    }

    #[test]
    fn the_fast_path_agrees_with_the_parser() {
        let line = br#"{"ts":"2026-12-01T12:00:00.123456Z","name":"web.1","type":"web","instance":1,"pid":4242,"stream":"stdout","seq":17,"msg":"listening"}"#;
        let fast = line_record(line).expect("procrun's shape");
        assert_eq!(fast.msg.as_deref(), Some(&b"listening"[..]));
        assert_eq!(fast.seq, Some(17));
        // The same record through the parser alone.
        let mut spaced = line.to_vec();
        spaced.insert(1, b' ');
        assert!(line_record(&spaced).is_none());
        assert_eq!(parse(&spaced), Some(fast));
        // What the fast path leaves to the parser, which decides.
        for other in [
            &br#"{"ts":"t","name":"w","type":"w","instance":1,"stream":"stdout","seq":01,"msg":"x"}"#[..],
            br#"{"ts":"t","name":"w","type":"w","instance":1,"stream":"stdout","seq":1,"msg":"a"b"}"#,
            br#"{"ts":"t","name":"w","type":"w","instance":1,"stream":"stdout","seq":1,"msg":"x"} "#,
            br#"{"ts":"t","name":"w","type":"w","instance":1,"stream":"stdout","seq":1,"msg":"x"}}"#,
        ] {
            assert!(line_record(other).is_none(), "{}", String::from_utf8_lossy(other));
        }
        assert!(parse(br#"{"ts":"t","name":"w","type":"w","instance":1,"stream":"stdout","seq":01,"msg":"x"}"#).is_none());
    }

    #[test]
    fn plain_run_finds_the_first_special_byte() {
        for len in 0..40 {
            for special in [b'"', b'\\', b'\n', 0, 0x1f] {
                for at in 0..=len {
                    let mut s: Vec<u8> = (0..len).map(|i| b' ' + (i % 90) as u8).collect();
                    s.iter_mut().for_each(|b| {
                        if matches!(*b, b'"' | b'\\') {
                            *b = 0xc3;
                        }
                    });
                    if at < len {
                        s[at] = special;
                    }
                    assert_eq!(plain_run(&s), at, "{s:?}");
                }
            }
        }
    }

    #[test]
    fn rejects_what_is_not_one_object() {
        for bad in [
            &b""[..],
            b"{",
            b"[]",
            b"{}{}",
            br#"{"a":1}{"b":2}"#,
            br#"{"a":1,}"#,
            br#"{"a" 1}"#,
            br#"{"a":01}"#,
            br#"{"a":1.}"#,
            br#"{"a":tru}"#,
            br#"{"seq":1.5}"#,
            br#"{"seq":-1}"#,
            br#"{"seq":"1"}"#,
            br#"{"partial":1}"#,
            b"{\"msg\":\"a\tb\"}",
            br#"{"msg":"\x"}"#,
            br#"{"msg":"\ud800"}"#,
            br#"{"msg":"\ud800\u0041"}"#,
            br#"{"msg":"cut"#,
            b"{\"msg\":\"\xe9\"}",
        ] {
            assert_eq!(parse(bad), None, "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{{\"x\":{}{}}}", "[".repeat(100), "]".repeat(100));
        assert_eq!(parse(deep.as_bytes()), None);
    }
}
