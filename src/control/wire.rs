//! The control protocol on the wire (documented in `docs/control.md`).
//!
//! Every message is a frame: a 4-byte big-endian length `N`, a 1-byte
//! kind, then `N` bytes of payload. Kind 0 carries one JSON envelope (a
//! hello, a request, a response, a bye); kind 1 carries output bytes exactly
//! as `procrun start` printed them (or, after `attach`, as the instance's
//! terminal wrote them), so child output of any bytes crosses the socket
//! unchanged; kind 2 carries what an attached client types. A length prefix, not a text line: a request can hold
//! any character, and a reader always knows where a message ends.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

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

/// Takes the first whole frame of at most `max` bytes out of `buf`, which
/// holds what was read so far; `Ok(None)` until one is complete. For
/// readers that must not lose a partial frame when they wait on something
/// else too (reading into a buffer is cancel-safe, [`read_frame`] is not).
pub fn take_frame(buf: &mut Vec<u8>, max: usize) -> Result<Option<Frame>, FrameError> {
    let Some(head) = buf.first_chunk::<5>() else {
        return Ok(None);
    };
    let (kind, len) = header(*head, max)?;
    if buf.len() < 5 + len {
        return Ok(None);
    }
    let payload = buf[5..5 + len].to_vec();
    buf.drain(..5 + len);
    Ok(Some(Frame { kind, payload }))
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
}
