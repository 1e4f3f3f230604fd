//! The control socket's framing, spoken by hand: a test that sends what no
//! client of procrun's would (garbage, half frames) reads and writes frames
//! itself (a 4-byte big-endian length, a kind byte, the payload;
//! docs/control.md).
#![allow(dead_code)]

use std::io::{Read as _, Write as _};
use std::os::unix::net::UnixStream;

use serde_json::Value;

/// Reads one frame from a raw connection: its kind and payload.
pub fn frame(s: &mut UnixStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).expect("a frame header");
    let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).expect("a frame payload");
    (head[4], payload)
}

/// Reads one JSON frame (kind 0).
pub fn json_frame(s: &mut UnixStream) -> Value {
    let (kind, payload) = frame(s);
    assert_eq!(kind, 0, "a JSON frame");
    serde_json::from_slice(&payload).expect("JSON")
}

/// `text` as one JSON frame (kind 0).
pub fn json_bytes(text: &str) -> Vec<u8> {
    let mut bytes = u32::try_from(text.len())
        .expect("short")
        .to_be_bytes()
        .to_vec();
    bytes.push(0);
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// Sends `text` as one JSON frame.
pub fn send_json(s: &mut UnixStream, text: &str) {
    s.write_all(&json_bytes(text)).expect("sent");
}
