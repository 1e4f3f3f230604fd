//! How systemd reads a service, for the export property tests: the config
//! parser (src/shared/conf-parser.c), specifier expansion, word extraction
//! with C unescaping (src/basic/extract-word.c, escape.c), the validity of
//! an environment assignment (src/basic/env-util.c, utf8.c) and `$$` in
//! ExecStart= (replace_env_argv), as in https://github.com/systemd/systemd.

use std::collections::BTreeMap;

/// What an engine starts: argv and the variables procrun sets.
#[derive(Debug, PartialEq, Eq)]
pub struct Started {
    pub argv: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// Lines end at `\n`, `\r` (or `\r\n`) and NUL (read_line()).
fn lines(text: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut line = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'\r' => {
                out.push(std::mem::take(&mut line));
                if text.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
            }
            b'\n' | b'\0' => out.push(std::mem::take(&mut line)),
            b => line.push(b),
        }
        i += 1;
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

fn strip(mut s: &[u8]) -> &[u8] {
    let ws = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    while s.first().is_some_and(ws) {
        s = &s[1..];
    }
    while s.last().is_some_and(ws) {
        s = &s[..s.len() - 1];
    }
    s
}

/// `key=value` assignments of a section, continuation lines joined.
fn assignments(text: &[u8], section: &str) -> Result<Vec<(String, Vec<u8>)>, String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut continuation: Option<Vec<u8>> = None;
    for raw in lines(text) {
        if raw.len() >= 1024 * 1024 {
            return Err("line too long".into());
        }
        let l = strip(&raw);
        if l.first().is_some_and(|b| *b == b'#' || *b == b';') {
            continue;
        }
        let mut l = match continuation.take() {
            Some(mut c) => {
                c.extend_from_slice(l);
                c
            }
            None => l.to_vec(),
        };
        let mut escaped = false;
        for b in &l {
            escaped = !escaped && *b == b'\\';
        }
        if escaped {
            let n = l.len();
            l[n - 1] = b' ';
            continuation = Some(l);
            continue;
        }
        let l = strip(&l);
        if l.is_empty() {
            continue;
        }
        if l[0] == b'[' {
            current = String::from_utf8_lossy(&l[1..l.len() - 1]).into_owned();
            continue;
        }
        let eq = l
            .iter()
            .position(|b| *b == b'=')
            .ok_or("a line without =")?;
        if current == section {
            let key = String::from_utf8_lossy(strip(&l[..eq])).into_owned();
            out.push((key, strip(&l[eq + 1..]).to_vec()));
        }
    }
    Ok(out)
}

/// Specifiers: procrun writes only `%%`.
fn specifiers(v: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'%' {
            if v.get(i + 1) != Some(&b'%') {
                return Err(format!("specifier %{:?}", v.get(i + 1).map(|b| *b as char)));
            }
            i += 1;
        }
        out.push(v[i]);
        i += 1;
    }
    Ok(out)
}

fn hex(b: u8) -> Option<u32> {
    (b as char).to_digit(16)
}

/// One C escape after a backslash (cunescape_one): the bytes and how
/// many input bytes it took.
fn unescape_one(s: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let simple = |b: u8| Ok((vec![b], 1));
    match s.first().copied().ok_or("a trailing backslash")? {
        b'a' => simple(7),
        b'b' => simple(8),
        b'f' => simple(12),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(11),
        b'\\' => simple(b'\\'),
        b'"' => simple(b'"'),
        b'\'' => simple(b'\''),
        b's' => simple(b' '),
        b'x' => {
            let (a, b) = (
                s.get(1).copied().and_then(hex),
                s.get(2).copied().and_then(hex),
            );
            match (a, b) {
                (Some(a), Some(b)) if a * 16 + b != 0 => Ok((vec![(a * 16 + b) as u8], 3)),
                _ => Err("bad \\x escape".into()),
            }
        }
        b'u' | b'U' => {
            let n = if s[0] == b'u' { 4 } else { 8 };
            let mut c = 0u32;
            for i in 1..=n {
                c = c * 16 + s.get(i).copied().and_then(hex).ok_or("bad \\u escape")?;
            }
            let c = char::from_u32(c)
                .filter(|c| *c != '\0')
                .ok_or("bad \\u escape")?;
            Ok((c.to_string().into_bytes(), n + 1))
        }
        b'0'..=b'7' => {
            let mut c = 0u32;
            for i in 0..3 {
                let d = s.get(i).copied().filter(|b| (b'0'..=b'7').contains(b));
                c = c * 8 + u32::from(d.ok_or("bad octal escape")? - b'0');
            }
            if c == 0 || c > 255 {
                return Err("bad octal escape".into());
            }
            Ok((vec![c as u8], 3))
        }
        b => Err(format!("unknown escape \\{}", b as char)),
    }
}

/// Words with EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE.
fn words(v: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut i = 0;
    let ws = |b: u8| matches!(b, b' ' | b'\t' | b'\n' | b'\r');
    loop {
        while i < v.len() && ws(v[i]) {
            i += 1;
        }
        if i == v.len() {
            return Ok(out);
        }
        let mut word = Vec::new();
        let mut quote: Option<u8> = None;
        while i < v.len() {
            let b = v[i];
            if b == b'\\' {
                let (bytes, n) = unescape_one(&v[i + 1..])?;
                word.extend(bytes);
                i += 1 + n;
                continue;
            }
            match quote {
                Some(q) if b == q => quote = None,
                Some(_) => word.push(b),
                None if b == b'"' || b == b'\'' => quote = Some(b),
                None if ws(b) => break,
                None => word.push(b),
            }
            i += 1;
        }
        if quote.is_some() {
            return Err("an unterminated quote".into());
        }
        out.push(word);
    }
}

/// utf8_is_valid(): valid UTF-8 without noncharacters.
fn text(bytes: Vec<u8>) -> Result<String, String> {
    let s = String::from_utf8(bytes).map_err(|_| "invalid UTF-8")?;
    if s.chars().any(|c| {
        let n = c as u32;
        (0xFDD0..=0xFDEF).contains(&n) || (n & 0xFFFE) == 0xFFFE
    }) {
        return Err("a noncharacter".into());
    }
    Ok(s)
}

/// `$$` → `$`; procrun writes no other `$`.
fn dollars(s: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '$' && chars.next() != Some('$') {
            return Err("a variable reference".into());
        }
        out.push(c);
    }
    Ok(out)
}

/// What a service starts: ExecStart='s argv and Environment='s
/// variables (an invalid assignment is ignored by systemd, so it is
/// an error here).
pub fn read_service(unit: &[u8]) -> Result<Started, String> {
    let mut env = BTreeMap::new();
    let mut argv = None;
    for (key, value) in assignments(unit, "Service")? {
        match key.as_str() {
            "Environment" => {
                for word in words(&specifiers(&value)?)? {
                    let word = text(word)?;
                    let (k, v) = word.split_once('=').ok_or("an assignment without =")?;
                    env.insert(k.to_owned(), v.to_owned());
                }
            }
            "ExecStart" => {
                let args: Result<Vec<String>, String> = words(&specifiers(&value)?)?
                    .into_iter()
                    .map(|w| text(w).and_then(|s| dollars(&s)))
                    .collect();
                argv = Some(args?);
            }
            _ => {}
        }
    }
    Ok(Started {
        argv: argv.ok_or("no ExecStart=")?,
        env,
    })
}
