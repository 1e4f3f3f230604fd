//! The client commands: `ps`, `restart`, `stop`, `scale`, `logs`,
//! `signal`, `quit` (`connect` and `send` are in [`super::connect`]). Each finds the running `start` of the app by its app
//! root (or `--socket`), speaks the protocol of [`super::wire`] and prints
//! the answer. Blocking I/O: a client does one thing at a time.

use std::io::Write as _;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde_json::{Value, json};

use crate::control::endpoint::{self, Endpoint};
use crate::control::wire::{
    self, Envelope, FrameError, KIND_JSON, KIND_OUTPUT, MAX_FRAME, PROTOCOL,
};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::exit_code::ExitCode;

/// How long the server may take to greet.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// A connection to a running `procrun start`.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    next_id: u64,
}

fn failure(message: String) -> Error {
    Error::with_code(Diagnostic::error(message), ExitCode::FAILURE)
}

impl Client {
    /// Connects to the `start` of the app at `root` (or at `socket`).
    pub fn connect(root: &Path, socket: Option<&Path>) -> Result<Client, Error> {
        let ep: Endpoint = endpoint::endpoint(root, socket);
        let stream = match UnixStream::connect(&ep.socket) {
            Ok(s) => s,
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(failure(format!(
                    "cannot reach the control socket {}: permission denied (is it another user's procrun?)",
                    ep.socket.display()
                )));
            }
            Err(e) => {
                return Err(match endpoint::holder(&ep) {
                    Some(holder) => failure(format!(
                        "procrun is running for {}{} but its control socket {} does not answer: {}",
                        root.display(),
                        holder.map_or_else(String::new, |h| format!(" (pid {})", h.pid)),
                        ep.socket.display(),
                        crate::error::io_reason(&e)
                    )),
                    // A socket with nobody behind it: a procrun that was
                    // killed left it (the next `start` replaces it).
                    None if ep.socket.exists() => failure(format!(
                        "procrun is not running for {} (the socket at {} is stale: the procrun that made it is gone)",
                        root.display(),
                        ep.socket.display()
                    )),
                    None => failure(format!(
                        "procrun is not running for {} (no socket at {})",
                        root.display(),
                        ep.socket.display()
                    )),
                });
            }
        };
        let mut client = Client { stream, next_id: 1 };
        let io = |e: std::io::Error| Error::io("talking to procrun", e);
        client
            .stream
            .set_read_timeout(Some(HELLO_TIMEOUT))
            .map_err(io)?;
        match client.read()? {
            Envelope::Hello { protocol, .. } if protocol == PROTOCOL => {}
            Envelope::Hello { protocol, .. } => {
                return Err(failure(format!(
                    "the running procrun speaks control protocol {protocol}; this one speaks {PROTOCOL}: use the same procrun version"
                )));
            }
            Envelope::Response { error: Some(e), .. } => return Err(failure(e.message)),
            other => return Err(failure(format!("unexpected first message: {other:?}"))),
        }
        client.stream.set_read_timeout(None).map_err(io)?;
        let hello = Envelope::Hello {
            protocol: PROTOCOL,
            app: None,
            root: None,
            pid: None,
        };
        wire::write_json_blocking(&mut client.stream, &hello).map_err(io)?;
        Ok(client)
    }

    fn read_frame(&mut self) -> Result<wire::Frame, Error> {
        wire::read_frame_blocking(&mut self.stream, MAX_FRAME).map_err(|e| match e {
            FrameError::Closed => {
                failure("procrun closed the connection (has the app stopped?)".into())
            }
            FrameError::Io(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                failure("procrun did not answer in time".into())
            }
            other => failure(format!("reading procrun's answer: {other}")),
        })
    }

    fn read(&mut self) -> Result<Envelope, Error> {
        loop {
            let frame = self.read_frame()?;
            if frame.kind == KIND_JSON {
                return decode(&frame.payload)
                    .map_err(|e| failure(format!("procrun's answer is not valid: {e}")));
            }
        }
    }

    fn send(&mut self, method: &str, params: Value) -> Result<u64, Error> {
        let id = self.next_id;
        self.next_id += 1;
        let request = Envelope::Request {
            id,
            method: method.to_owned(),
            params,
        };
        wire::write_json_blocking(&mut self.stream, &request)
            .map_err(|e| Error::io("talking to procrun", e))?;
        Ok(id)
    }

    /// The answer to `id`.
    fn answer(&mut self, id: u64) -> Result<Value, Error> {
        loop {
            match self.read()? {
                Envelope::Response {
                    id: Some(got),
                    result,
                    error,
                } if got == id => {
                    return match error {
                        Some(e) => Err(refused(e)),
                        None => Ok(result.unwrap_or(Value::Null)),
                    };
                }
                Envelope::Response {
                    id: None,
                    error: Some(e),
                    ..
                } => return Err(refused(e)),
                Envelope::Bye { message, .. } => {
                    return Err(failure(format!("procrun: {message}")));
                }
                _ => {}
            }
        }
    }

    /// The connection itself, for a client that goes on speaking the
    /// protocol on its own (`connect`, after `attach`).
    pub fn into_stream(self) -> UnixStream {
        self.stream
    }

    /// Sends a request and waits for its result.
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, Error> {
        let id = self.send(method, params)?;
        self.answer(id)
    }

    /// `logs`: writes the output frames to `out` until the end of the
    /// replay (without `follow`) or until the app ends. Returns the
    /// server's bye, when a follow ended with one (not when the connection
    /// just closed).
    pub fn logs(
        &mut self,
        params: Value,
        out: &mut impl std::io::Write,
    ) -> Result<Option<Envelope>, Error> {
        let follow = params["follow"].as_bool().unwrap_or(false);
        let id = self.send("logs", params)?;
        self.answer(id)?;
        if !follow {
            // The replay is complete once a second request is answered:
            // frames come in order.
            let id = self.send("ping", Value::Null)?;
            loop {
                let frame = self.read_frame()?;
                match frame.kind {
                    KIND_OUTPUT => write_out(out, &frame.payload)?,
                    _ => {
                        if let Ok(Envelope::Response { id: Some(got), .. }) =
                            serde_json::from_slice::<Envelope>(&frame.payload)
                            && got == id
                        {
                            return Ok(None);
                        }
                    }
                }
            }
        }
        loop {
            let frame = match self.read_frame() {
                Ok(f) => f,
                Err(_) => return Ok(None),
            };
            match frame.kind {
                KIND_OUTPUT => write_out(out, &frame.payload)?,
                _ => {
                    if let Ok(bye @ Envelope::Bye { .. }) =
                        serde_json::from_slice::<Envelope>(&frame.payload)
                    {
                        return Ok(Some(bye));
                    }
                }
            }
        }
    }
}

/// One message. A response's result is parsed once, into its JSON tree,
/// not first into serde's buffer for a tagged enum and then again (the
/// result of a `ps` of a thousand instances is 280 KB).
fn decode(payload: &[u8]) -> serde_json::Result<Envelope> {
    let mut message: Value = serde_json::from_slice(payload)?;
    let result = match message.as_object_mut() {
        Some(map) if map.get("type").and_then(Value::as_str) == Some("response") => {
            map.remove("result")
        }
        _ => None,
    };
    let mut envelope: Envelope = serde_json::from_value(message)?;
    if let Envelope::Response { result: r, .. } = &mut envelope {
        *r = result.filter(|v| !v.is_null());
    }
    Ok(envelope)
}

fn write_out(out: &mut impl std::io::Write, bytes: &[u8]) -> Result<(), Error> {
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        // `procrun logs | head`: the reader is gone, which is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Error::with_code(
            Diagnostic::error("stdout closed"),
            ExitCode::OK,
        )),
        Err(e) => Err(Error::io("writing the logs", e)),
    }
}

/// A refusal of the server as an error of this command.
fn refused(e: wire::WireError) -> Error {
    let code = match e.code.as_str() {
        "no_match" | "invalid_params" | "ambiguous" => ExitCode::USAGE,
        _ => ExitCode::FAILURE,
    };
    let mut d = Diagnostic::error(e.message);
    if !e.known.is_empty() {
        d = d.help(format!("known: {}", known_list(&e.known)));
    }
    Error::with_code(d, code)
}

/// The names a refusal lists, the first [`KNOWN_SHOWN`] of them: an app
/// scaled to a thousand instances would otherwise print them all.
fn known_list(known: &[String]) -> String {
    let shown = known[..known.len().min(KNOWN_SHOWN)].join(", ");
    match known.len().checked_sub(KNOWN_SHOWN) {
        Some(more) if more > 0 => format!("{shown} and {more} more (procrun ps lists them)"),
        _ => shown,
    }
}

/// How many known names a refusal shows.
const KNOWN_SHOWN: usize = 20;

/// `procrun ps`.
pub fn ps(client: &mut Client, as_json: bool) -> Result<i32, Error> {
    let mut result = client.call("ps", Value::Null)?;
    let list = match result["instances"].take() {
        Value::Array(list) => list,
        _ => Vec::new(),
    };
    let mut out = String::new();
    if as_json {
        out = serde_json::to_string_pretty(&list).unwrap_or_default();
        out.push('\n');
    } else {
        out.push_str(&table(&list));
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(ExitCode::OK)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `ps` table.
fn table(list: &[Value]) -> String {
    let header = [
        "NAME", "TYPE", "PID", "STATE", "UPTIME", "RESTARTS", "PORT", "CPU%", "RSS",
    ];
    let now = SystemTime::now();
    let rows: Vec<[String; 9]> = list
        .iter()
        .map(|i| {
            let uptime = i["started_at"]
                .as_str()
                .and_then(|t| humantime::parse_rfc3339(t).ok())
                .and_then(|t| now.duration_since(t).ok())
                .map_or_else(|| "-".to_owned(), uptime);
            let cpu = i["cpu_percent"]
                .as_f64()
                .map_or_else(|| "-".to_owned(), |c| format!("{c:.1}"));
            let rss = i["rss_bytes"]
                .as_u64()
                .map_or_else(|| "-".to_owned(), bytes);
            let state = match (text(&i["state"]).as_str(), i["exit_code"].as_i64()) {
                (s @ ("exited" | "failed"), Some(code)) => format!("{s} ({code})"),
                (s, _) => s.to_owned(),
            };
            [
                text(&i["name"]),
                text(&i["type"]),
                text(&i["pid"]),
                state,
                uptime,
                text(&i["restarts"]),
                text(&i["port"]),
                cpu,
                rss,
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    out
}

/// `1h02m`, `3m05s`, `12s`.
pub fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h{:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d{:02}h", s / 86_400, s / 3600 % 24),
    }
}

/// `12.3M`.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if f >= K * K * K {
        format!("{:.1}G", f / K / K / K)
    } else if f >= K * K {
        format!("{:.1}M", f / K / K)
    } else {
        format!("{:.0}K", f / K)
    }
}

/// One line per instance after an action: `web.1  running  pid 4242`.
fn report(verb: &str, result: &Value) -> String {
    let mut out = String::new();
    for i in result["instances"].as_array().into_iter().flatten() {
        let mut line = format!("{verb} {}: {}", text(&i["name"]), text(&i["state"]));
        if let Some(pid) = i["pid"].as_u64() {
            line.push_str(&format!(", pid {pid}"));
            if let Some(port) = i["port"].as_u64() {
                line.push_str(&format!(", PORT {port}"));
            }
        }
        if let Some(code) = i["exit_code"].as_i64()
            && matches!(i["state"].as_str(), Some("exited" | "failed"))
        {
            line.push_str(&format!(", exit code {code}"));
        }
        out.push_str(&line);
        out.push('\n');
    }
    if out.is_empty() {
        out.push_str(&format!("{verb}: no instance\n"));
    }
    out
}

fn print(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// `procrun restart [NAME…]`.
pub fn restart(client: &mut Client, names: &[String]) -> Result<i32, Error> {
    let result = client.call("restart", json!({ "names": names }))?;
    print(&report("restarted", &result));
    Ok(ExitCode::OK)
}

/// `procrun stop NAME…`.
pub fn stop(client: &mut Client, names: &[String]) -> Result<i32, Error> {
    let result = client.call("stop", json!({ "names": names }))?;
    print(&report("stopped", &result));
    Ok(ExitCode::OK)
}

/// Parses `web=3,worker=1`.
pub fn parse_counts(specs: &[String]) -> Result<serde_json::Map<String, Value>, Error> {
    let mut counts = serde_json::Map::new();
    for spec in specs {
        for item in spec.split(',') {
            let item = item.trim();
            if item.is_empty() {
                return Err(Diagnostic::error(format!("empty item in `{spec}`"))
                    .help("write TYPE=N[,TYPE=N], e.g. procrun scale web=2,worker=3")
                    .into());
            }
            let parsed = item
                .split_once('=')
                .and_then(|(name, n)| Some((name.trim(), n.trim().parse::<u32>().ok()?)))
                .filter(|(name, _)| !name.is_empty());
            match parsed {
                Some((name, n)) => {
                    if counts.insert(name.to_owned(), Value::from(n)).is_some() {
                        return Err(Diagnostic::error(format!(
                            "`{name}` is given twice: say its number once"
                        ))
                        .into());
                    }
                }
                None => {
                    return Err(Diagnostic::error(format!(
                        "`{item}` is not TYPE=N (a process type and a whole number, e.g. worker=3)"
                    ))
                    .into());
                }
            }
        }
    }
    if counts.is_empty() {
        return Err(
            Diagnostic::error("give at least one TYPE=N, e.g. procrun scale worker=3").into(),
        );
    }
    Ok(counts)
}

/// `procrun scale TYPE=N…`.
pub fn scale(client: &mut Client, specs: &[String]) -> Result<i32, Error> {
    let counts = parse_counts(specs)?;
    let result = client.call("scale", json!({ "counts": counts }))?;
    if result["instances"].as_array().is_none_or(Vec::is_empty) {
        let already: Vec<String> = counts.iter().map(|(t, n)| format!("{t}={n}")).collect();
        print(&format!(
            "nothing to scale: already {}\n",
            already.join(",")
        ));
    } else {
        print(&report("scaled", &result));
    }
    Ok(ExitCode::OK)
}

/// `procrun signal SIGNAL NAME…`.
pub fn signal(client: &mut Client, signal: &str, names: &[String]) -> Result<i32, Error> {
    let mut result = client.call("signal", json!({ "signal": signal, "names": names }))?;
    // An instance with no process (stopped, ended, waiting) got nothing.
    let (sent, not): (Vec<Value>, Vec<Value>) = match result["instances"].take() {
        Value::Array(list) => list.into_iter().partition(|i| i["pid"].is_u64()),
        _ => (Vec::new(), Vec::new()),
    };
    let mut out = String::new();
    if !sent.is_empty() || not.is_empty() {
        let verb = format!("sent {} to", signal.to_ascii_uppercase());
        out.push_str(&report(&verb, &json!({ "instances": sent })));
    }
    if !not.is_empty() {
        out.push_str(&report("not sent to", &json!({ "instances": not })));
    }
    print(&out);
    Ok(ExitCode::OK)
}

/// `procrun quit`: returns once `start` is done.
pub fn quit(client: &mut Client) -> Result<i32, Error> {
    let result = client.call("quit", Value::Null)?;
    match result["exit_code"].as_i64() {
        Some(code) => print(&format!("procrun start stopped (exit code {code})\n")),
        None => print("procrun start stopped\n"),
    }
    Ok(ExitCode::OK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_list_of_known_names_is_cut_and_says_how_many_more() {
        let few: Vec<String> = ["web", "web.1", "worker"].map(String::from).to_vec();
        assert_eq!(known_list(&few), "web, web.1, worker");
        let many: Vec<String> = (1..=1000).map(|i| format!("web.{i}")).collect();
        let shown = known_list(&many);
        assert!(shown.starts_with("web.1, web.2, "), "{shown}");
        assert!(shown.contains("web.20 and 980 more"), "{shown}");
        assert!(!shown.contains("web.21"), "{shown}");
        let exact: Vec<String> = (1..=KNOWN_SHOWN).map(|i| format!("w.{i}")).collect();
        assert!(!known_list(&exact).contains("more"));
    }

    #[test]
    fn counts_parse_and_refuse_what_is_not_type_equals_n() {
        let c = parse_counts(&["web=3,worker=0".into()]).expect("parsed");
        assert_eq!(c["web"], 3);
        assert_eq!(c["worker"], 0);
        for bad in [
            "web",
            "web=x",
            "=3",
            "web=-1",
            "",
            "web=1,",
            ",web=1",
            "web=1,web=2",
        ] {
            assert!(parse_counts(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_table_aligns_and_shows_dashes_for_nothing() {
        let list = vec![
            json!({"name":"web.1","type":"web","pid":42,"state":"running","restarts":0,"port":5000,
                   "started_at":null,"cpu_percent":1.5,"rss_bytes":10_485_760}),
            json!({"name":"worker.10","type":"worker","pid":null,"state":"exited","exit_code":3,
                   "restarts":2,"port":null,"started_at":null,"cpu_percent":null,"rss_bytes":null}),
        ];
        let t = table(&list);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("NAME       TYPE    PID  STATE"), "{t}");
        assert!(
            lines[1].contains("running") && lines[1].ends_with("10.0M"),
            "{t}"
        );
        assert!(
            lines[2].contains("exited (3)") && lines[2].ends_with('-'),
            "{t}"
        );
    }
}
