//! The control protocol on the wire (documented in `docs/control.md`).
//!
//! Every message is a frame: a 4-byte big-endian length `N`, a 1-byte
//! kind, then `N` bytes of payload. Kind 0 carries one JSON envelope (a
//! hello, a request, a response, a bye); kind 1 carries output bytes exactly
//! as `procrun start` printed them (or, after `attach`, as the instance's
//! terminal wrote them), so child output of any bytes crosses the socket
//! unchanged; kind 2 carries what an attached client types; kind 3
//! carries one chunk of one instance's lines for a `logs` follower that
//! asked for them (`"format":"lines"`): a small header, then the lines'
//! bytes as the instance wrote them, so neither side renders, escapes or
//! parses anything per line. A length prefix, not a text line: a request can hold
//! any character, and a reader always knows where a message ends.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

use crate::output::json::Stream;
use crate::output::lines::Tail;

/// The protocol version; bumped only when the framing or the envelope
/// changes incompatibly (new fields and methods need no bump: unknown
/// fields are ignored).
pub const PROTOCOL: u32 = 1;

/// The largest frame a client may send.
pub const MAX_REQUEST: usize = 1024 * 1024;

/// The largest frame the server sends.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// A frame of JSON.
pub const KIND_JSON: u8 = 0;

/// A frame of output bytes.
pub const KIND_OUTPUT: u8 = 1;

/// A frame of input bytes: what a client connected to an instance's
/// terminal types (`attach`).
pub const KIND_INPUT: u8 = 2;

/// A frame of lines: one chunk of one instance's output
/// ([`push_lines`], [`read_lines`]).
pub const KIND_LINES: u8 = 3;

/// The bytes before the lines in a [`KIND_LINES`] frame: the instance's id
/// (4, big-endian), the stream (1), how the lines end (1), the time in
/// milliseconds since the Unix epoch (8, big-endian).
pub const LINES_HEAD: usize = 14;

/// The most bytes of lines in one [`KIND_LINES`] frame; a longer chunk
/// (none is, as read) goes in several.
pub const LINES_MAX: usize = 4 * 1024 * 1024;

/// One message, as JSON in a [`KIND_JSON`] frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Envelope {
    /// The first message of each side.
    Hello {
        /// The protocol version the sender speaks.
        protocol: u32,
        /// `procrun 0.1.0` (the server's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        app: Option<String>,
        /// The app root (the server's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        root: Option<String>,
        /// The pid of `procrun start` (the server's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// A request; exactly one response answers it.
    Request {
        /// Echoed in the response.
        id: u64,
        /// `ps`, `restart`, `stop`, `scale`, `logs`, `signal`, `quit`.
        method: String,
        /// The method's parameters.
        #[serde(default)]
        params: serde_json::Value,
    },
    /// The answer to a request: a result or an error.
    Response {
        /// The request's id (`null` when the request could not be read).
        id: Option<u64>,
        /// What the request did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        result: Option<serde_json::Value>,
        /// Why it did nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<WireError>,
    },
    /// The server ends the conversation (the app stopped, or a follow or an
    /// attachment ended).
    Bye {
        /// A stable code: `app_ended`, `exited` (the attached instance's
        /// terminal closed), `too_slow` (an attached client read too
        /// slowly).
        code: String,
        /// For people.
        message: String,
        /// `start`'s exit code, when the app ended and it is known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        exit_code: Option<i32>,
    },
    /// In a `"format":"lines"` follow: the id that the [`KIND_LINES`]
    /// frames of an instance carry, sent before its first one.
    Instance {
        /// The id ([`LinesHead::id`]); an instance keeps it through
        /// restarts, and ids are never reused.
        id: u32,
        /// `web.1`.
        name: String,
    },
}

/// An error reply.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WireError {
    /// Stable, never reused: `bad_frame`, `bad_request`, `expected_hello`,
    /// `unsupported_protocol`, `unknown_method`, `invalid_params`,
    /// `no_match`, `stopping`, `forbidden`, `ambiguous`, `no_tty`,
    /// `not_running`, `busy`.
    pub code: String,
    /// For people.
    pub message: String,
    /// With `no_match`: the names that exist.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known: Vec<String>,
}

impl WireError {
    /// An error with no list of names.
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        WireError {
            code: code.to_owned(),
            message: message.into(),
            known: Vec::new(),
        }
    }
}

/// A frame read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// [`KIND_JSON`] or [`KIND_OUTPUT`] (others are refused by readers).
    pub kind: u8,
    /// The payload.
    pub payload: Vec<u8>,
}

/// Why no frame could be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("the connection was closed")]
    Closed,
    /// The announced length is above the limit.
    #[error("a frame of {0} bytes is larger than the limit of {1}")]
    TooLarge(usize, usize),
    /// Reading failed (or the connection closed inside a frame).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// The header of a [`KIND_LINES`] frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinesHead {
    /// The instance, as an [`Envelope::Instance`] announced it.
    pub id: u32,
    /// Which of its streams.
    pub stream: Stream,
    /// How the bytes end: [`Tail::Lines`], every line with its `\n`;
    /// otherwise the bytes after the last `\n` are a line too: the
    /// stream's last, without a newline ([`Tail::Eof`]), or the first
    /// piece of a longer line ([`Tail::Split`]).
    pub tail: Tail,
    /// When procrun read them, in milliseconds since the Unix epoch.
    pub time_ms: u64,
}

/// Why a [`KIND_LINES`] frame could not be read.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LinesError {
    /// Fewer bytes than the header.
    #[error("a lines frame of {0} bytes is shorter than its {LINES_HEAD}-byte header")]
    Short(usize),
    /// A stream code this reader does not know.
    #[error("a lines frame names stream {0}, which is not 0, 1 or 2")]
    Stream(u8),
    /// A tail code this reader does not know.
    #[error("a lines frame ends its lines with code {0}, which is not 0, 1 or 2")]
    Tail(u8),
    /// Whole lines that do not end with a newline.
    #[error("a lines frame of whole lines does not end with a newline")]
    Unterminated,
}

fn stream_code(stream: Stream) -> u8 {
    match stream {
        Stream::Stdout => 0,
        Stream::Stderr => 1,
        Stream::Pty => 2,
    }
}

fn tail_code(tail: Tail) -> u8 {
    match tail {
        Tail::Lines => 0,
        Tail::Eof => 1,
        Tail::Split => 2,
    }
}

/// Appends `data` (lines of one stream, ending as `head.tail` says) to
/// `out` as [`KIND_LINES`] frames: one, unless `data` holds more than
/// [`LINES_MAX`] bytes.
pub fn push_lines(out: &mut Vec<u8>, head: LinesHead, data: &[u8]) {
    let mut rest = data;
    loop {
        let (piece, after) = rest.split_at(rest.len().min(LINES_MAX));
        let tail = if after.is_empty() {
            head.tail
        } else if piece.ends_with(b"\n") {
            Tail::Lines
        } else {
            // Cut inside a line: it goes on in the next frame.
            Tail::Split
        };
        let len = u32::try_from(LINES_HEAD + piece.len()).unwrap_or(u32::MAX);
        out.reserve(5 + LINES_HEAD + piece.len());
        out.extend_from_slice(&len.to_be_bytes());
        out.push(KIND_LINES);
        out.extend_from_slice(&head.id.to_be_bytes());
        out.push(stream_code(head.stream));
        out.push(tail_code(tail));
        out.extend_from_slice(&head.time_ms.to_be_bytes());
        out.extend_from_slice(piece);
        rest = after;
        if rest.is_empty() {
            return;
        }
    }
}

/// The header and the lines of a [`KIND_LINES`] frame's payload.
pub fn read_lines(payload: &[u8]) -> Result<(LinesHead, &[u8]), LinesError> {
    let Some((head, data)) = payload.split_first_chunk::<LINES_HEAD>() else {
        return Err(LinesError::Short(payload.len()));
    };
    let id = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
    let stream = match head[4] {
        0 => Stream::Stdout,
        1 => Stream::Stderr,
        2 => Stream::Pty,
        other => return Err(LinesError::Stream(other)),
    };
    let tail = match head[5] {
        0 => Tail::Lines,
        1 => Tail::Eof,
        2 => Tail::Split,
        other => return Err(LinesError::Tail(other)),
    };
    if tail == Tail::Lines && data.last().is_some_and(|&b| b != b'\n') {
        return Err(LinesError::Unterminated);
    }
    let mut time = [0u8; 8];
    time.copy_from_slice(&head[6..]);
    Ok((
        LinesHead {
            id,
            stream,
            tail,
            time_ms: u64::from_be_bytes(time),
        },
        data,
    ))
}

/// The bytes of a frame.
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 5);
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    out
}

/// The frame of an envelope.
pub fn encode_json(envelope: &Envelope) -> Vec<u8> {
    // Serializing these plain types cannot fail.
    let json = serde_json::to_vec(envelope).unwrap_or_default();
    encode(KIND_JSON, &json)
}

fn header(bytes: [u8; 5], max: usize) -> Result<(u8, usize), FrameError> {
    let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
    if len > max {
        return Err(FrameError::TooLarge(len, max));
    }
    Ok((bytes[4], len))
}

/// Reads one frame of at most `max` bytes.
pub async fn read_frame(r: &mut (impl AsyncRead + Unpin), max: usize) -> Result<Frame, FrameError> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        let n = r.read(&mut head[got..]).await?;
        if n == 0 {
            return Err(if got == 0 {
                FrameError::Closed
            } else {
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()
            });
        }
        got += n;
    }
    let (kind, len) = header(head, max)?;
    let mut payload = vec![0; len];
    r.read_exact(&mut payload).await?;
    Ok(Frame { kind, payload })
}

/// A frame in a buffer, not copied out of it ([`frame_at`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameRef<'a> {
    /// Its kind.
    pub kind: u8,
    /// Its payload.
    pub payload: &'a [u8],
    /// The bytes of the buffer it takes, header included.
    pub len: usize,
}

/// The first whole frame of at most `max` bytes in `buf`, without copying
/// it; `Ok(None)` until one is complete.
pub fn frame_at(buf: &[u8], max: usize) -> Result<Option<FrameRef<'_>>, FrameError> {
    let Some(head) = buf.first_chunk::<5>() else {
        return Ok(None);
    };
    let (kind, len) = header(*head, max)?;
    Ok(buf.get(5..5 + len).map(|payload| FrameRef {
        kind,
        payload,
        len: 5 + len,
    }))
}

/// Takes the first whole frame of at most `max` bytes out of `buf`, which
/// holds what was read so far; `Ok(None)` until one is complete. For
/// readers that must not lose a partial frame when they wait on something
/// else too (reading into a buffer is cancel-safe, [`read_frame`] is not).
pub fn take_frame(buf: &mut Vec<u8>, max: usize) -> Result<Option<Frame>, FrameError> {
    let Some(at) = frame_at(buf, max)? else {
        return Ok(None);
    };
    let frame = Frame {
        kind: at.kind,
        payload: at.payload.to_vec(),
    };
    buf.drain(..at.len);
    Ok(Some(frame))
}

/// Writes one frame.
pub async fn write_frame(w: &mut (impl AsyncWrite + Unpin), frame: &[u8]) -> std::io::Result<()> {
    w.write_all(frame).await?;
    w.flush().await
}

/// Reads one frame of at most `max` bytes, blocking (the clients).
pub fn read_frame_blocking(r: &mut impl Read, max: usize) -> Result<Frame, FrameError> {
    let mut head = [0u8; 5];
    let mut got = 0;
    while got < head.len() {
        match r.read(&mut head[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let (kind, len) = header(head, max)?;
    let mut payload = vec![0; len];
    r.read_exact(&mut payload)?;
    Ok(Frame { kind, payload })
}

/// Writes one envelope, blocking (the clients).
pub fn write_json_blocking(w: &mut impl Write, envelope: &Envelope) -> std::io::Result<()> {
    w.write_all(&encode_json(envelope))?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_any_bytes() {
        let payload: Vec<u8> = (0..=255).collect();
        let bytes = encode(KIND_OUTPUT, &payload);
        assert_eq!(&bytes[..5], &[0, 0, 1, 0, 1]);
        let frame = read_frame_blocking(&mut &bytes[..], MAX_FRAME).expect("a frame");
        assert_eq!(frame.kind, KIND_OUTPUT);
        assert_eq!(frame.payload, payload);
    }

    #[test]
    fn frames_are_taken_whole_from_a_buffer() {
        let mut stream = encode(KIND_INPUT, b"ab");
        stream.extend(encode(KIND_JSON, b"{}"));
        let mut buf = Vec::new();
        let mut got = Vec::new();
        for &b in &stream {
            buf.push(b);
            while let Some(frame) = take_frame(&mut buf, MAX_REQUEST).expect("valid") {
                got.push(frame);
            }
        }
        assert!(buf.is_empty());
        assert_eq!(
            got,
            [
                Frame {
                    kind: KIND_INPUT,
                    payload: b"ab".to_vec()
                },
                Frame {
                    kind: KIND_JSON,
                    payload: b"{}".to_vec()
                }
            ]
        );
        let mut huge = vec![0x7f, 0xff, 0xff, 0xff, 2];
        assert!(matches!(
            take_frame(&mut huge, MAX_REQUEST),
            Err(FrameError::TooLarge(..))
        ));
    }

    #[test]
    fn an_oversized_frame_is_refused_before_reading_it() {
        let bytes = [0x7f, 0xff, 0xff, 0xff, 0];
        assert!(matches!(
            read_frame_blocking(&mut &bytes[..], MAX_REQUEST),
            Err(FrameError::TooLarge(_, MAX_REQUEST))
        ));
        assert!(matches!(
            read_frame_blocking(&mut &b""[..], MAX_REQUEST),
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            read_frame_blocking(&mut &[0u8, 0, 0][..], MAX_REQUEST),
            Err(FrameError::Io(_))
        ));
    }

    #[test]
    fn envelopes_are_tagged_json_and_ignore_unknown_fields() {
        let hello = Envelope::Hello {
            protocol: PROTOCOL,
            app: None,
            root: None,
            pid: None,
        };
        let json = serde_json::to_string(&hello).expect("json");
        assert_eq!(json, r#"{"type":"hello","protocol":1}"#);
        let request: Envelope =
            serde_json::from_str(r#"{"type":"request","id":7,"method":"ps","future":"field"}"#)
                .expect("parsed");
        assert_eq!(
            request,
            Envelope::Request {
                id: 7,
                method: "ps".into(),
                params: serde_json::Value::Null
            }
        );
    }

    fn head(id: u32, stream: Stream, tail: Tail) -> LinesHead {
        LinesHead {
            id,
            stream,
            tail,
            time_ms: 1_764_000_000_123,
        }
    }

    /// Every frame in `bytes`, as (kind, payload).
    fn frames(mut bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
        let mut all = Vec::new();
        while let Some(at) = frame_at(bytes, MAX_FRAME).expect("valid") {
            all.push((at.kind, at.payload.to_vec()));
            bytes = &bytes[at.len..];
        }
        assert!(bytes.is_empty(), "no partial frame left");
        all
    }

    #[test]
    fn lines_frames_round_trip_any_bytes() {
        let mut data: Vec<u8> = (0..=255u8).filter(|&b| b != b'\n').collect();
        data.extend_from_slice(b"\n\xff\xfe not UTF-8\r\n");
        let mut out = Vec::new();
        let sent = head(7, Stream::Stderr, Tail::Lines);
        push_lines(&mut out, sent, &data);
        push_lines(&mut out, head(u32::MAX, Stream::Pty, Tail::Eof), b"last");
        let got = frames(&out);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, KIND_LINES);
        assert_eq!(read_lines(&got[0].1), Ok((sent, &data[..])));
        let (h, bytes) = read_lines(&got[1].1).expect("valid");
        assert_eq!(
            (h.id, h.stream, h.tail, bytes),
            (u32::MAX, Stream::Pty, Tail::Eof, &b"last"[..])
        );
        assert_eq!(h.time_ms, 1_764_000_000_123);
    }

    #[test]
    fn a_chunk_of_many_lines_is_one_frame() {
        let data: Vec<u8> = (0..10_000)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        let mut out = Vec::new();
        push_lines(&mut out, head(1, Stream::Stdout, Tail::Lines), &data);
        assert_eq!(out.len(), 5 + LINES_HEAD + data.len());
        let got = frames(&out);
        let (_, bytes) = read_lines(&got[0].1).expect("valid");
        assert_eq!(memchr::memchr_iter(b'\n', bytes).count(), 10_000);
        assert_eq!(bytes, &data[..]);
    }

    #[test]
    fn a_chunk_above_the_limit_goes_in_pieces_that_say_where_a_line_was_cut() {
        let mut data = vec![b'x'; LINES_MAX + 10];
        data.push(b'\n');
        let mut out = Vec::new();
        push_lines(&mut out, head(1, Stream::Stdout, Tail::Lines), &data);
        let got = frames(&out);
        let pieces: Vec<_> = got
            .iter()
            .map(|(_, p)| read_lines(p).expect("valid"))
            .collect();
        assert_eq!(pieces.len(), 2);
        assert_eq!(pieces[0].0.tail, Tail::Split);
        assert_eq!(pieces[1].0.tail, Tail::Lines);
        assert_eq!([pieces[0].1, pieces[1].1].concat(), data);
    }

    #[test]
    fn a_bad_lines_frame_is_an_error() {
        let mut out = Vec::new();
        push_lines(&mut out, head(3, Stream::Stdout, Tail::Lines), b"a\nb\n");
        let payload = &out[5..];
        for n in 0..LINES_HEAD {
            assert_eq!(read_lines(&payload[..n]), Err(LinesError::Short(n)));
        }
        let mut bad = payload.to_vec();
        bad[4] = 9;
        assert_eq!(read_lines(&bad), Err(LinesError::Stream(9)));
        let mut bad = payload.to_vec();
        bad[5] = 200;
        assert_eq!(read_lines(&bad), Err(LinesError::Tail(200)));
        assert_eq!(
            read_lines(&payload[..payload.len() - 1]),
            Err(LinesError::Unterminated)
        );
        // Garbage of every length: an error or a frame, never a panic.
        let mut seed = 0x2545_f491_u32;
        for len in 0..64 {
            let junk: Vec<u8> = (0..len)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed as u8
                })
                .collect();
            let _ = read_lines(&junk);
            let _ = frame_at(&junk, MAX_FRAME);
        }
        // A frame cut short is not complete yet.
        assert!(matches!(
            frame_at(&out[..out.len() - 1], MAX_FRAME),
            Ok(None)
        ));
    }
}
