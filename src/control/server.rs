//! The control server: a thread of its own, with its own small runtime,
//! that accepts clients on the unix socket, answers their requests through
//! the dispatcher ([`super::request`]) and streams the log ring to `logs`
//! clients. Its own thread, so that rendering logs for a client, reading
//! `/proc` for `ps` or a client that reads slowly never delays the
//! dispatcher or the printer.
//!
//! Every connection: the server's hello, the client's hello, then requests,
//! each answered by exactly one response (and, for `logs`, output frames
//! after it). A client of another user is refused; a malformed request gets
//! an error and the connection stays usable; an oversized or unframed one
//! gets an error and the connection is closed. `attach` turns the
//! connection into a relay of one instance's terminal ([`super::attach`]). Nothing a client sends
//! reaches the app except through the dispatcher's typed requests.

use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::{mpsc, oneshot, watch};

use crate::control::request::{Command, InstanceStatus, Reply, Request};
use crate::control::usage::{Figures, Usage};
use crate::control::wire::{
    self, Envelope, FrameError, KIND_JSON, KIND_OUTPUT, LinesHead, MAX_REQUEST, PROTOCOL, WireError,
};
use crate::output::lines::Chunk;
use crate::output::notice::{Ident, Notice};
use crate::output::render::{Looks, Renderer};
use crate::output::ring::{self, Entry, Item, Ring};

/// A write to a client that takes longer than this drops the client.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Output gathered into one frame while following.
const FRAME_BYTES: usize = 64 * 1024;

/// How long a `"format":"lines"` follower's output is gathered before
/// it is written.
const GATHER: Duration = Duration::from_millis(10);

/// After the app ended: how long clients get to receive their last replies.
const LINGER: Duration = Duration::from_secs(2);

/// How long a client may take to send its hello (ours send it at once).
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// How many clients are served at once: a sixteenth of the open-files
/// limit, so that clients that connect and never leave cannot take the
/// descriptors the instances need (3 each, `usage`'s files a quarter at
/// most), within 16 and 1,024.
fn max_clients() -> usize {
    (super::usage::open_files_limit() / 16).clamp(16, 1024)
}

/// What the server needs from `start`.
#[derive(Debug)]
pub struct Context {
    /// The recent output.
    pub ring: Arc<Ring>,
    /// The way into the dispatcher.
    pub requests: mpsc::UnboundedSender<Request>,
    /// The app root, for the hello.
    pub root: String,
    /// How `start` prints (timestamps, prefix width) for `logs`.
    pub looks: Looks,
    /// The process types that can run, in Procfile order (`ps` lists
    /// them with their instance counts, so a type scaled to 0 is still
    /// known to a dashboard).
    pub types: Vec<String>,
}

/// Where the app is, as the server's tasks see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The app runs.
    Running,
    /// `start` is done, with this exit code (when it has one).
    Ended(Option<i32>),
}

/// The running server.
#[derive(Debug)]
pub struct Server {
    thread: Option<JoinHandle<()>>,
    stop: watch::Sender<Phase>,
}

impl Server {
    /// Serves `listener` on a thread of its own until [`Server::finish`].
    pub fn start(
        listener: std::os::unix::net::UnixListener,
        ctx: Context,
    ) -> std::io::Result<Server> {
        listener.set_nonblocking(true)?;
        let (stop, stopped) = watch::channel(Phase::Running);
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!("control socket: starting its runtime: {e}");
                        return;
                    }
                };
                runtime.block_on(serve(listener, Arc::new(ctx), stopped));
            })?;
        Ok(Server {
            thread: Some(thread),
            stop,
        })
    }

    /// The app has ended with `exit_code`: followers get a bye (which
    /// carries it), pending replies go out, and the server stops (within 2
    /// seconds).
    pub fn finish(mut self, exit_code: Option<i32>) {
        let _ = self.stop.send(Phase::Ended(exit_code));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    listener: std::os::unix::net::UnixListener,
    ctx: Arc<Context>,
    mut stopped: watch::Receiver<Phase>,
) {
    let listener = match tokio::net::UnixListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!("control socket: {e}");
            return;
        }
    };
    let samples = Arc::new(Mutex::new(Usage::default()));
    let mut tasks = tokio::task::JoinSet::new();
    let most = max_clients();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Clients that have left count no more, joined or not.
                    while tasks.try_join_next().is_some() {}
                    if tasks.len() >= most {
                        turn_away(&stream, most);
                    } else {
                        tasks.spawn(connection(stream, Arc::clone(&ctx), Arc::clone(&samples), stopped.clone()));
                    }
                }
                Err(e) => {
                    // Out of descriptors, say: wait instead of spinning.
                    tracing::debug!("control socket: accepting: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    ctx.ring.close_followers();
    let _ =
        tokio::time::timeout(LINGER, async { while tasks.join_next().await.is_some() {} }).await;
}

/// Answers a client past [`max_clients`] with `busy` and closes it: one
/// small frame into an empty socket buffer, written without waiting.
fn turn_away(stream: &UnixStream, most: usize) {
    let envelope = Envelope::Response {
        id: None,
        result: None,
        error: Some(WireError::new(
            "busy",
            format!("{most} clients are connected already, the most this procrun serves at once"),
        )),
    };
    let _ = stream.try_write(&wire::encode_json(&envelope));
    tracing::debug!("control socket: turned a client away: {most} connected");
}

/// Writes one frame, or fails when the client does not take it in time.
pub(super) async fn send(w: &mut OwnedWriteHalf, frame: &[u8]) -> std::io::Result<()> {
    match tokio::time::timeout(WRITE_TIMEOUT, wire::write_frame(w, frame)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
    }
}

pub(super) async fn respond(
    w: &mut OwnedWriteHalf,
    id: Option<u64>,
    answer: Result<Value, WireError>,
) -> std::io::Result<()> {
    let envelope = match answer {
        Ok(result) => Envelope::Response {
            id,
            result: Some(result),
            error: None,
        },
        Err(error) => Envelope::Response {
            id,
            result: None,
            error: Some(error),
        },
    };
    send(w, &wire::encode_json(&envelope)).await
}

async fn connection(
    stream: UnixStream,
    ctx: Arc<Context>,
    samples: Arc<Mutex<Usage>>,
    mut stopped: watch::Receiver<Phase>,
) {
    let cred = stream.peer_cred().ok();
    let from = cred.as_ref().and_then(|c| c.pid()).map(|p| p as u32);
    let (mut rd, mut wr) = stream.into_split();
    let me = nix::unistd::geteuid().as_raw();
    if cred.as_ref().is_none_or(|c| c.uid() != me) {
        let who = cred.map_or_else(
            || "an unknown user".to_owned(),
            |c| format!("uid {}", c.uid()),
        );
        tracing::warn!("control socket: refused a client of {who}");
        let _ = respond(
            &mut wr,
            None,
            Err(WireError::new(
                "forbidden",
                format!("only uid {me} may control this procrun"),
            )),
        )
        .await;
        return;
    }
    let hello = Envelope::Hello {
        protocol: PROTOCOL,
        app: Some(format!("procrun {}", env!("CARGO_PKG_VERSION"))),
        root: Some(ctx.root.clone()),
        pid: Some(std::process::id()),
    };
    if send(&mut wr, &wire::encode_json(&hello)).await.is_err() {
        return;
    }
    let mut greeted = false;
    loop {
        let read = async {
            if greeted {
                wire::read_frame(&mut rd, MAX_REQUEST).await
            } else {
                // One that never greets only holds a place.
                tokio::time::timeout(HELLO_TIMEOUT, wire::read_frame(&mut rd, MAX_REQUEST))
                    .await
                    .unwrap_or_else(|_| Err(FrameError::Io(std::io::ErrorKind::TimedOut.into())))
            }
        };
        let frame = tokio::select! {
            frame = read => frame,
            _ = stopped.changed() => {
                let _ = bye(&mut wr, &stopped).await;
                return;
            }
        };
        let frame = match frame {
            Ok(f) => f,
            Err(FrameError::Closed) => return,
            Err(e @ FrameError::TooLarge(..)) => {
                let _ = respond(
                    &mut wr,
                    None,
                    Err(WireError::new("bad_frame", e.to_string())),
                )
                .await;
                return;
            }
            Err(FrameError::Io(e)) => {
                tracing::debug!("control socket: reading a request: {e}");
                return;
            }
        };
        if frame.kind != KIND_JSON {
            let message = format!(
                "a client sends JSON frames (kind 0), not kind {}",
                frame.kind
            );
            let _ = respond(&mut wr, None, Err(WireError::new("bad_frame", message))).await;
            return;
        }
        let envelope: Envelope = match serde_json::from_slice(&frame.payload) {
            Ok(e) => e,
            Err(e) => {
                let error = WireError::new("bad_request", format!("not a valid message: {e}"));
                if respond(&mut wr, None, Err(error)).await.is_err() {
                    return;
                }
                continue;
            }
        };
        match envelope {
            Envelope::Hello { protocol, .. } if protocol == PROTOCOL => greeted = true,
            Envelope::Hello { protocol, .. } => {
                let message = format!("this procrun speaks protocol {PROTOCOL}, not {protocol}");
                let _ = respond(
                    &mut wr,
                    None,
                    Err(WireError::new("unsupported_protocol", message)),
                )
                .await;
                return;
            }
            Envelope::Request { id, .. } if !greeted => {
                let error = WireError::new("expected_hello", "send a hello before any request");
                if respond(&mut wr, Some(id), Err(error)).await.is_err() {
                    return;
                }
            }
            Envelope::Request { id, method, params } if method == "logs" => {
                let keep = logs(&mut rd, &mut wr, &ctx, id, params, from, &mut stopped).await;
                if !keep {
                    return;
                }
            }
            Envelope::Request { id, method, params } if method == "attach" => {
                super::attach::attach(&mut rd, &mut wr, &ctx, id, params, from, &mut stopped).await;
                return;
            }
            Envelope::Request { id, method, .. } if method == "ps" => {
                let frame = ps(&ctx, &samples, id, from).await;
                if send(&mut wr, &frame).await.is_err() {
                    return;
                }
            }
            Envelope::Request { id, method, params } => {
                let answer = request(&ctx, &method, params, from).await;
                if respond(&mut wr, Some(id), answer).await.is_err() {
                    return;
                }
            }
            Envelope::Response { .. } | Envelope::Bye { .. } | Envelope::Instance { .. } => {
                let error = WireError::new(
                    "bad_request",
                    "a client sends hello and request messages only",
                );
                if respond(&mut wr, None, Err(error)).await.is_err() {
                    return;
                }
            }
        }
    }
}

async fn bye(w: &mut OwnedWriteHalf, phase: &watch::Receiver<Phase>) -> std::io::Result<()> {
    let exit_code = match *phase.borrow() {
        Phase::Ended(code) => code,
        Phase::Running => None,
    };
    let message = match exit_code {
        Some(code) => format!("the app has stopped (exit code {code})"),
        None => "the app has stopped".to_owned(),
    };
    bye_envelope(w, "app_ended", &message, exit_code).await
}

/// Ends the conversation with `code` (an attached terminal's end).
pub(super) async fn bye_with(
    w: &mut OwnedWriteHalf,
    code: &str,
    message: &str,
) -> std::io::Result<()> {
    bye_envelope(w, code, message, None).await
}

async fn bye_envelope(
    w: &mut OwnedWriteHalf,
    code: &str,
    message: &str,
    exit_code: Option<i32>,
) -> std::io::Result<()> {
    let envelope = Envelope::Bye {
        code: code.into(),
        message: message.into(),
        exit_code,
    };
    send(w, &wire::encode_json(&envelope)).await
}

/// Parses the params of a method.
pub(super) fn params<T: for<'de> Deserialize<'de> + Default>(
    params: Value,
) -> Result<T, WireError> {
    if params.is_null() {
        return Ok(T::default());
    }
    serde_json::from_value(params)
        .map_err(|e| WireError::new("invalid_params", format!("invalid parameters: {e}")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Names {
    names: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ScaleParams {
    counts: serde_json::Map<String, Value>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SignalParams {
    signal: String,
    names: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(default)]
struct LogsParams {
    names: Vec<String>,
    lines: usize,
    follow: bool,
    color: bool,
    json: bool,
    /// `text`, `json` or `lines`; absent: `json` says.
    format: Option<String>,
}

impl Default for LogsParams {
    fn default() -> Self {
        LogsParams {
            names: Vec::new(),
            lines: 100,
            follow: false,
            color: false,
            json: false,
            format: None,
        }
    }
}

/// How `logs` sends the ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// Kind-1 frames of what `start` printed.
    Text,
    /// Kind-1 frames of the records of `--log-format json`.
    Json,
    /// Kind-3 frames of each chunk's lines as the instance wrote them, and
    /// procrun's messages as JSON records in kind-1 frames: for a program
    /// that keeps the lines (a dashboard), nothing rendered or escaped.
    Lines,
}

impl LogsParams {
    fn format(&self) -> Result<Format, WireError> {
        match self.format.as_deref() {
            None if self.json => Ok(Format::Json),
            None | Some("text") => Ok(Format::Text),
            Some("json") => Ok(Format::Json),
            Some("lines") => Ok(Format::Lines),
            Some(other) => Err(WireError::new(
                "invalid_params",
                format!("no logs format `{other}` (text, json, lines)"),
            )),
        }
    }
}

/// Asks the dispatcher.
pub(super) async fn ask(
    ctx: &Context,
    command: Command,
    from: Option<u32>,
) -> Result<Reply, WireError> {
    let (reply, answer) = oneshot::channel();
    let gone = || WireError::new("stopping", "the app is stopping");
    ctx.requests
        .send(Request {
            command,
            from,
            reply,
        })
        .map_err(|_| gone())?;
    answer.await.map_err(|_| gone())?
}

/// `ps`: the response frame, every instance with its CPU% and memory,
/// serialized straight from the statuses (no JSON tree in between: this
/// is a thousand objects at a dashboard's every poll).
async fn ps(ctx: &Context, usage: &Mutex<Usage>, id: u64, from: Option<u32>) -> Vec<u8> {
    let list = match ask(ctx, Command::Ps, from).await {
        Ok(Reply::Instances(list)) => list,
        Ok(_) => Vec::new(),
        Err(error) => {
            return wire::encode_json(&Envelope::Response {
                id: Some(id),
                result: None,
                error: Some(error),
            });
        }
    };
    let wanted: Vec<_> = list.iter().map(|s| (s.pid, s.started_at)).collect();
    let figures = usage
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .sample(&wanted, Instant::now());
    let response = PsResponse {
        id,
        result: PsResult {
            instances: list
                .iter()
                .zip(figures)
                .map(|(s, f)| StatusRow::new(s, f))
                .collect(),
            types: type_counts(&ctx.types, &list),
        },
    };
    // Serializing these plain types cannot fail.
    let json = serde_json::to_vec(&response).unwrap_or_default();
    wire::encode(KIND_JSON, &json)
}

/// The response to `ps`, as [`Envelope::Response`] would write it.
#[derive(Serialize)]
#[serde(tag = "type", rename = "response")]
struct PsResponse<'a> {
    id: u64,
    result: PsResult<'a>,
}

#[derive(Serialize)]
struct PsResult<'a> {
    instances: Vec<StatusRow<'a>>,
    types: Vec<TypeCount<'a>>,
}

#[derive(Serialize)]
struct TypeCount<'a> {
    name: &'a str,
    count: usize,
}

/// Answers every method but `logs`, `attach` and `ps`.
async fn request(
    ctx: &Context,
    method: &str,
    raw: Value,
    from: Option<u32>,
) -> Result<Value, WireError> {
    let command = match method {
        // Answered in order after everything sent before it (the end of a
        // `logs` replay, say).
        "ping" => return Ok(json!({})),
        "restart" => Command::Restart(params::<Names>(raw)?.names),
        "stop" => {
            let names = params::<Names>(raw)?.names;
            if names.is_empty() {
                return Err(WireError::new(
                    "invalid_params",
                    "stop needs at least one name",
                ));
            }
            Command::Stop(names)
        }
        "scale" => {
            let p = params::<ScaleParams>(raw)?;
            if p.counts.is_empty() {
                return Err(WireError::new(
                    "invalid_params",
                    "scale needs counts, e.g. {\"web\": 3}",
                ));
            }
            let mut counts = Vec::new();
            for (name, n) in p.counts {
                let n = n
                    .as_u64()
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        WireError::new(
                            "invalid_params",
                            format!("the count of `{name}` is not a whole number: {n}"),
                        )
                    })?;
                counts.push((name, n));
            }
            Command::Scale(counts)
        }
        "signal" => {
            let p = params::<SignalParams>(raw)?;
            let signal = crate::supervisor::machine::parse_signal(&p.signal).ok_or_else(|| {
                WireError::new("invalid_params", format!("`{}` is not a signal", p.signal))
            })?;
            if p.names.is_empty() {
                return Err(WireError::new(
                    "invalid_params",
                    "signal needs at least one name",
                ));
            }
            Command::Signal(signal, p.names)
        }
        "quit" => Command::Quit,
        "send" => return super::attach::send_text(ctx, raw, from).await,
        other => {
            return Err(WireError::new(
                "unknown_method",
                format!(
                    "no method `{other}` (ps, restart, stop, scale, logs, signal, quit, attach, send, ping)"
                ),
            ));
        }
    };
    match ask(ctx, command, from).await? {
        Reply::Instances(list) => {
            let instances: Vec<Value> = list.iter().map(|s| status_json(s, None)).collect();
            Ok(json!({ "instances": instances }))
        }
        Reply::Quit(code) => Ok(json!({ "exit_code": code })),
        Reply::Keys(_) | Reply::Terminal(_) => Ok(json!({})),
    }
}

/// `[{"name":"web","count":2},…]`: every type, with how many instances
/// `ps` shows of it (0 for a type scaled down to none).
fn type_counts<'a>(types: &'a [String], list: &[InstanceStatus]) -> Vec<TypeCount<'a>> {
    types
        .iter()
        .map(|name| TypeCount {
            name,
            count: list.iter().filter(|s| s.type_name == *name).count(),
        })
        .collect()
}

/// One instance as the methods show it (`docs/control.md`).
#[derive(Serialize)]
struct StatusRow<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    type_name: &'a str,
    instance: u32,
    pid: Option<u32>,
    state: &'a str,
    port: Option<u16>,
    restarts: u32,
    started_at: Option<String>,
    exit_code: Option<i32>,
    tty: bool,
    cpu_percent: Option<f64>,
    rss_bytes: Option<u64>,
}

impl<'a> StatusRow<'a> {
    fn new(s: &'a InstanceStatus, usage: Option<Figures>) -> Self {
        StatusRow {
            name: &s.name,
            type_name: &s.type_name,
            instance: s.number,
            pid: s.pid,
            state: s.state,
            port: s.port,
            restarts: s.restarts,
            started_at: s
                .started_at
                .map(|t| humantime::format_rfc3339_millis(t).to_string()),
            exit_code: s.exit_code,
            tty: s.tty,
            cpu_percent: usage.map(|u| (u.cpu_percent * 10.0).round() / 10.0),
            rss_bytes: usage.map(|u| u.rss_bytes),
        }
    }
}

/// One instance as JSON (`docs/control.md`).
pub fn status_json(s: &InstanceStatus, usage: Option<Figures>) -> Value {
    serde_json::to_value(StatusRow::new(s, usage)).unwrap_or(Value::Null)
}

/// `logs`: the response, then the ring's entries as output frames, then
/// (with `follow`) every new entry until the client leaves or the app
/// ends. Returns whether the connection may go on.
async fn logs(
    rd: &mut tokio::net::unix::OwnedReadHalf,
    wr: &mut OwnedWriteHalf,
    ctx: &Context,
    id: u64,
    raw: Value,
    from: Option<u32>,
    stopped: &mut watch::Receiver<Phase>,
) -> bool {
    let p = match params::<LogsParams>(raw) {
        Ok(p) => p,
        Err(e) => return respond(wr, Some(id), Err(e)).await.is_ok(),
    };
    let format = match p.format() {
        Ok(f) => f,
        Err(e) => return respond(wr, Some(id), Err(e)).await.is_ok(),
    };
    let keys = if p.names.is_empty() {
        None
    } else {
        match ask(ctx, Command::Select(p.names.clone()), from).await {
            Ok(Reply::Keys(keys)) => Some(keys),
            Ok(_) => None,
            Err(e) => return respond(wr, Some(id), Err(e)).await.is_ok(),
        }
    };
    let (tx, mut rx) = if p.follow {
        let (tx, rx) = ring::follow();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let snapshot = ctx.ring.snapshot(keys.as_deref(), p.lines, tx);
    let mut answer = json!({ "follow": p.follow });
    if format == Format::Lines {
        // Says that this server knows the format: one that does not
        // ignores the field and sends records.
        answer["format"] = "lines".into();
    }
    if respond(wr, Some(id), Ok(answer)).await.is_err() {
        return false;
    }
    let mut feed = Feed {
        renderer: Renderer::new(Looks {
            color: p.color,
            json: format != Format::Text,
            ..ctx.looks
        }),
        lines: format == Format::Lines,
        scratch: Vec::new(),
    };
    let mut buf = Vec::with_capacity(FRAME_BYTES);
    for ident in snapshot.idents {
        feed.register(ident, &mut buf);
    }
    for (entry, skip) in &snapshot.entries {
        feed.entry(entry, *skip, &mut buf);
        if buf.len() >= FRAME_BYTES && feed.flush(wr, &mut buf).await.is_err() {
            return false;
        }
    }
    if feed.flush(wr, &mut buf).await.is_err() {
        return false;
    }
    let Some(rx) = rx.as_mut() else {
        return true;
    };
    let mut probe = [0u8; 1];
    loop {
        tokio::select! {
            entry = rx.recv() => match entry {
                Some(entry) => {
                    feed.entry(&entry, 0, &mut buf);
                    feed.drain(rx, &mut buf);
                    if feed.lines && buf.len() < FRAME_BYTES {
                        // Nothing more waits: what comes in the next few
                        // milliseconds goes in the same write. A dashboard
                        // draws at most every 33 ms, and a write per entry
                        // costs both sides a system call and a wake-up.
                        tokio::time::sleep(GATHER).await;
                        feed.drain(rx, &mut buf);
                    }
                    if feed.flush(wr, &mut buf).await.is_err() {
                        return false;
                    }
                }
                None => {
                    // The ring let go: the app ended.
                    let _ = bye(wr, stopped).await;
                    return false;
                }
            },
            // A following client sends nothing: end-of-file (or anything)
            // means it left.
            _ = rd.read(&mut probe) => return false,
            _ = stopped.changed() => {
                while let Some(more) = rx.try_recv() {
                    feed.entry(&more, 0, &mut buf);
                }
                let _ = feed.flush(wr, &mut buf).await;
                let _ = bye(wr, stopped).await;
                return false;
            }
        }
    }
}

/// Turns ring entries into what one `logs` client gets.
struct Feed {
    renderer: Renderer,
    /// [`Format::Lines`]: the buffer holds whole frames (lines frames,
    /// announcements, records); otherwise it is the payload of one kind-1
    /// frame.
    lines: bool,
    /// One notice's records, before they are framed.
    scratch: Vec<u8>,
}

impl Feed {
    /// Makes an instance known (with lines: announces its id).
    fn register(&mut self, ident: Ident, out: &mut Vec<u8>) {
        if self.lines {
            let announce = Envelope::Instance {
                id: ident.key.0,
                name: ident.name.clone(),
            };
            out.extend_from_slice(&wire::encode_json(&announce));
        }
        self.renderer.register(ident);
    }

    /// Appends one entry, leaving out its first `skip` lines.
    fn entry(&mut self, entry: &Entry, skip: usize, out: &mut Vec<u8>) {
        if !self.lines {
            render(&mut self.renderer, entry, skip, out);
            return;
        }
        match &entry.item {
            Item::Output { key, stream, chunk } => {
                let start = if skip == 0 {
                    0
                } else {
                    memchr::memchr_iter(b'\n', &chunk.data)
                        .nth(skip - 1)
                        .map_or(chunk.data.len(), |i| i + 1)
                };
                let data = &chunk.data[start..];
                if data.is_empty() && chunk.tail == crate::output::lines::Tail::Lines {
                    return;
                }
                let time_ms = entry
                    .time
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                let head = LinesHead {
                    id: key.0,
                    stream: *stream,
                    tail: chunk.tail,
                    time_ms,
                };
                wire::push_lines(out, head, data);
            }
            Item::Register(ident) => self.register(ident.clone(), out),
            Item::Notice(_) | Item::Gap(_) => {
                self.scratch.clear();
                render(&mut self.renderer, entry, 0, &mut self.scratch);
                if !self.scratch.is_empty() {
                    out.extend_from_slice(&wire::encode(KIND_OUTPUT, &self.scratch));
                }
            }
        }
    }

    /// Appends the entries waiting in `rx`, up to a frame's worth.
    fn drain(&mut self, rx: &mut ring::Follow, out: &mut Vec<u8>) {
        while out.len() < FRAME_BYTES {
            let Some(more) = rx.try_recv() else { break };
            self.entry(&more, 0, out);
        }
    }

    /// Sends what `buf` holds, in one write.
    async fn flush(&self, wr: &mut OwnedWriteHalf, buf: &mut Vec<u8>) -> std::io::Result<()> {
        if self.lines {
            if buf.is_empty() {
                return Ok(());
            }
            let sent = send(wr, buf).await;
            buf.clear();
            return sent;
        }
        flush(wr, buf).await
    }
}

async fn flush(wr: &mut OwnedWriteHalf, buf: &mut Vec<u8>) -> std::io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let frame = wire::encode(KIND_OUTPUT, buf);
    buf.clear();
    send(wr, &frame).await
}

/// Renders one ring entry as `start` printed it, at its own time.
fn render(renderer: &mut Renderer, entry: &Entry, skip: usize, out: &mut Vec<u8>) {
    renderer.set_time(Some(entry.time));
    match &entry.item {
        Item::Output { key, stream, chunk } if skip > 0 => {
            let start = memchr::memchr_iter(b'\n', &chunk.data)
                .nth(skip - 1)
                .map_or(chunk.data.len(), |i| i + 1);
            let rest = Chunk {
                data: chunk.data[start..].to_vec(),
                tail: chunk.tail,
            };
            if !rest.data.is_empty() || rest.tail != crate::output::lines::Tail::Lines {
                renderer.output(*key, *stream, &rest, out);
            }
        }
        Item::Output { key, stream, chunk } => renderer.output(*key, *stream, chunk, out),
        Item::Notice(notice) => renderer.notice(notice, out),
        Item::Register(ident) => renderer.register(ident.clone()),
        Item::Gap(count) => renderer.notice(&Notice::Dropped { count: *count }, out),
    }
}
