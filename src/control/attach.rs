//! The server's side of `procrun connect` and `procrun send`: the `attach`
//! and `send` methods, for instances that run on a terminal of their own
//! (documented in `docs/control.md`).
//!
//! After `attach`'s response the connection carries the instance's
//! terminal: the server sends its recent output, then everything it writes,
//! as output frames (kind 1, the bytes as written); the client sends what it
//! types as input frames (kind 2), written to the terminal as they are, and
//! may send `resize` requests. Closing the connection detaches. The server
//! ends it with a `bye` when the instance's terminal closes (`exited`),
//! when the client reads too slowly (`too_slow`) or when the app ends
//! (`app_ended`). Any number of clients may be attached to one instance:
//! each sees all output, the input of each is delivered, and the window
//! size is the one set last.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, watch};

use crate::control::request::{Command, Reply};
use crate::control::server::{Context, Phase, ask, bye_with, params, respond, send};
use crate::control::wire::{
    self, Envelope, KIND_INPUT, KIND_JSON, KIND_OUTPUT, MAX_REQUEST, WireError,
};
use crate::supervisor::pty::{self, Input, Terminal};

/// How long `send` waits for the instance to take its line.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Output gathered into one frame.
const FRAME_BYTES: usize = 64 * 1024;

/// Input frames waiting for the terminal to take them.
const INPUT_QUEUE: usize = 256;

/// What Enter sends: a carriage return, which the terminal turns into a
/// newline for a program that reads lines (and which a program in raw mode,
/// a readline prompt, takes as Enter).
pub const ENTER: &str = "\r";

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AttachParams {
    name: String,
    rows: Option<u16>,
    cols: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct SendParams {
    name: String,
    text: String,
    enter: bool,
}

impl Default for SendParams {
    fn default() -> Self {
        SendParams {
            name: String::new(),
            text: String::new(),
            enter: true,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SizeParams {
    rows: u16,
    cols: u16,
}

/// The terminal of the instance a client names.
async fn terminal(
    ctx: &Context,
    name: &str,
    what: &'static str,
    from: Option<u32>,
) -> Result<std::sync::Arc<Terminal>, WireError> {
    if name.is_empty() {
        return Err(WireError::new(
            "invalid_params",
            format!("{what} needs the name of an instance, e.g. web.1"),
        ));
    }
    let command = Command::Terminal {
        name: name.to_owned(),
        what,
    };
    match ask(ctx, command, from).await? {
        Reply::Terminal(t) => Ok(t.0),
        other => Err(WireError::new(
            "bad_request",
            format!("unexpected answer {other:?}"),
        )),
    }
}

/// `send`: writes the text (and Enter) to the instance's terminal.
pub async fn send_text(ctx: &Context, raw: Value, from: Option<u32>) -> Result<Value, WireError> {
    let p = params::<SendParams>(raw)?;
    let t = terminal(ctx, &p.name, "send", from).await?;
    let mut text = p.text;
    if p.enter {
        text.push_str(ENTER);
    }
    let input = t
        .input()
        .map_err(|e| WireError::new("not_running", format!("{}: {e}", t.name())))?;
    match tokio::time::timeout(SEND_TIMEOUT, input.write_all(text.as_bytes())).await {
        Ok(Ok(())) => Ok(json!({ "name": t.name(), "bytes": text.len() })),
        Ok(Err(e)) => Err(WireError::new(
            "not_running",
            format!("{} did not take the input: {e}", t.name()),
        )),
        Err(_) => Err(WireError::new(
            "busy",
            format!(
                "{} has not read its input for {}s: its terminal's input queue is full",
                t.name(),
                SEND_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// `attach`: answers, then relays the terminal both ways until one side
/// ends. The connection is over afterwards.
pub async fn attach(
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    ctx: &Context,
    id: u64,
    raw: Value,
    from: Option<u32>,
    stopped: &mut watch::Receiver<Phase>,
) {
    let p = match params::<AttachParams>(raw) {
        Ok(p) => p,
        Err(e) => {
            let _ = respond(wr, Some(id), Err(e)).await;
            return;
        }
    };
    let t = match terminal(ctx, &p.name, "connect", from).await {
        Ok(t) => t,
        Err(e) => {
            let _ = respond(wr, Some(id), Err(e)).await;
            return;
        }
    };
    let size = match (p.rows, p.cols) {
        (Some(rows), Some(cols)) if rows > 0 && cols > 0 => Some(pty::size(rows, cols)),
        _ => None,
    };
    let (input, attached) = match (t.input(), t.attach(size)) {
        (Ok(input), Some(attached)) => (input, attached),
        _ => {
            let e = WireError::new("not_running", format!("{} is not running", t.name()));
            let _ = respond(wr, Some(id), Err(e)).await;
            return;
        }
    };
    let client = attached.id;
    let answer = json!({ "name": t.name(), "pid": t.pid(), "clients": t.clients() });
    if respond(wr, Some(id), Ok(answer)).await.is_ok() {
        relay(rd, wr, &t, input, attached, stopped).await;
    }
    t.detach(client);
}

/// The attached connection's loop.
async fn relay(
    rd: &mut OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    t: &Terminal,
    input: Input,
    attached: pty::Attached,
    stopped: &mut watch::Receiver<Phase>,
) {
    let pty::Attached {
        id: client,
        recent,
        mut output,
    } = attached;
    if !recent.is_empty() && send(wr, &wire::encode(KIND_OUTPUT, &recent)).await.is_err() {
        return;
    }
    // Typing goes through a task of its own: a program that does not read
    // its input must not hold up its output.
    let (keys, mut keys_rx) = mpsc::channel::<Vec<u8>>(INPUT_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = keys_rx.recv().await {
            if input.write_all(&bytes).await.is_err() {
                break;
            }
        }
    });
    let mut inbox = Vec::new();
    let mut out = Vec::with_capacity(FRAME_BYTES);
    loop {
        tokio::select! {
            bytes = output.recv() => match bytes {
                Some(bytes) => {
                    out.extend_from_slice(&bytes);
                    while out.len() < FRAME_BYTES {
                        let Some(more) = output.try_recv() else { break };
                        out.extend_from_slice(&more);
                    }
                    let frame = wire::encode(KIND_OUTPUT, &out);
                    out.clear();
                    if send(wr, &frame).await.is_err() {
                        break;
                    }
                }
                None => {
                    let (code, message) = if t.ended() {
                        ("exited", format!("{} has exited", t.name()))
                    } else {
                        ("too_slow", format!("this client read {}'s output too slowly", t.name()))
                    };
                    let _ = bye_with(wr, code, &message).await;
                    break;
                }
            },
            // Reading into a buffer loses nothing when another branch wins.
            read = rd.read_buf(&mut inbox) => {
                if !matches!(read, Ok(n) if n > 0) {
                    break; // the client left: detached
                }
                if !handle_client(wr, t, client, &mut inbox, &keys).await {
                    break;
                }
            }
            _ = stopped.changed() => {
                let _ = bye_with(wr, "app_ended", "the app has stopped").await;
                break;
            }
        }
    }
    drop(keys);
    writer.abort();
}

/// Handles the whole frames a client sent; false when the connection
/// must end.
async fn handle_client(
    wr: &mut OwnedWriteHalf,
    t: &Terminal,
    client: u64,
    inbox: &mut Vec<u8>,
    keys: &mpsc::Sender<Vec<u8>>,
) -> bool {
    loop {
        let frame = match wire::take_frame(inbox, MAX_REQUEST) {
            Ok(Some(frame)) => frame,
            Ok(None) => return true,
            Err(e) => {
                let _ = respond(wr, None, Err(WireError::new("bad_frame", e.to_string()))).await;
                return false;
            }
        };
        match frame.kind {
            KIND_INPUT => {
                if keys.try_send(frame.payload).is_err() {
                    tracing::debug!("{}: input dropped: the program does not read it", t.name());
                }
            }
            KIND_JSON => {
                let answer = match serde_json::from_slice::<Envelope>(&frame.payload) {
                    Ok(Envelope::Request {
                        id,
                        method,
                        params: raw,
                    }) if method == "resize" => {
                        let result = params::<SizeParams>(raw).and_then(|p| {
                            if p.rows == 0 || p.cols == 0 {
                                return Err(WireError::new(
                                    "invalid_params",
                                    "resize needs rows and cols above 0",
                                ));
                            }
                            t.resize(client, pty::size(p.rows, p.cols));
                            Ok(json!({}))
                        });
                        respond(wr, Some(id), result).await
                    }
                    Ok(Envelope::Request { id, method, .. }) => {
                        let e = WireError::new(
                            "unknown_method",
                            format!(
                                "`{method}` while attached: only resize (close the connection to detach)"
                            ),
                        );
                        respond(wr, Some(id), Err(e)).await
                    }
                    Ok(_) | Err(_) => {
                        let e = WireError::new(
                            "bad_request",
                            "while attached a client sends input frames and resize requests",
                        );
                        respond(wr, None, Err(e)).await
                    }
                };
                if answer.is_err() {
                    return false;
                }
            }
            other => {
                let message = format!("an attached client sends kind 0 or 2, not {other}");
                let _ = respond(wr, None, Err(WireError::new("bad_frame", message))).await;
                return false;
            }
        }
    }
}
