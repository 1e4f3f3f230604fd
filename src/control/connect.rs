//! `procrun connect NAME` and `procrun send NAME TEXT`: the clients of an
//! instance that runs on a terminal of its own (`start --tty`).
//!
//! `connect` puts the local terminal in raw mode, so every key (Ctrl-C and
//! Ctrl-Z too) goes to the instance, shows the instance's recent output and
//! then its live output as its terminal writes it (unprefixed), and
//! forwards the local window size. Ctrl-] detaches; the instance runs on.
//! The local terminal is restored however the connection ends: a detach,
//! the instance's exit, `start` ending, a signal to `connect`.

use std::io::{IsTerminal as _, Read as _, Write as _};
use std::os::fd::AsFd as _;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicUsize, Ordering};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, SetArg, Termios};
use serde_json::json;

use crate::control::client::Client;
use crate::control::wire::{self, Envelope, KIND_INPUT, KIND_JSON, KIND_OUTPUT, MAX_FRAME};
use crate::diagnostic::Diagnostic;
use crate::error::Error;
use crate::exit_code::ExitCode;
use crate::supervisor::pty::window_size;

/// The key that detaches: Ctrl-] (as telnet's escape character).
pub const DETACH: u8 = 0x1d;

/// The detach key as the help and the greeting name it.
pub const DETACH_NAME: &str = "Ctrl-]";

/// The signal that ended `connect`, if one did (0: none).
static ENDED_BY: AtomicUsize = AtomicUsize::new(0);

/// How a connection ended.
#[derive(Debug, PartialEq, Eq)]
enum End {
    /// The user pressed the detach key, or stdin ended.
    Detached,
    /// The server said goodbye.
    Bye { code: String, message: String },
    /// The connection broke.
    Lost(String),
    /// `connect` got this signal.
    Signal(i32),
}

fn failure(message: impl Into<String>) -> Error {
    Error::with_code(Diagnostic::error(message.into()), ExitCode::FAILURE)
}

/// `procrun send NAME TEXT`.
pub fn send(client: &mut Client, name: &str, text: &str) -> Result<i32, Error> {
    client.call("send", json!({ "name": name, "text": text }))?;
    Ok(ExitCode::OK)
}

/// `procrun connect NAME`.
pub fn connect(mut client: Client, name: &str) -> Result<i32, Error> {
    if !std::io::stdin().is_terminal() {
        return Err(
            Diagnostic::error("procrun connect needs a terminal: its stdin is not one")
                .help(format!(
                    "from a script, type a line with `procrun send {name} TEXT`"
                ))
                .into(),
        );
    }
    let size = window_size();
    let result = client.call(
        "attach",
        json!({ "name": name, "rows": size.ws_row, "cols": size.ws_col }),
    )?;
    let name = result["name"].as_str().unwrap_or(name).to_owned();
    let pid = result["pid"].as_u64().unwrap_or(0);
    let mut stream = client.into_stream();
    let io = |e: std::io::Error| Error::io("connecting the terminal", e);
    let (wake_rd, wake_wr) = UnixStream::pair().map_err(io)?;
    wake_rd.set_nonblocking(true).map_err(io)?;
    let mut ids = Vec::new();
    for signal in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
        ids.push(
            signal_hook::flag::register_usize(signal, &ENDED_BY, signal as usize).map_err(io)?,
        );
    }
    for signal in [
        libc::SIGWINCH,
        libc::SIGTERM,
        libc::SIGHUP,
        libc::SIGINT,
        libc::SIGQUIT,
    ] {
        let pipe = wake_wr.try_clone().map_err(io)?;
        ids.push(signal_hook::low_level::pipe::register(signal, pipe).map_err(io)?);
    }
    let end = {
        let _raw = RawMode::enter()
            .map_err(|e| failure(format!("cannot put the terminal in raw mode: {e}")))?;
        // Said once every key goes through: what is typed after reading it
        // reaches the program.
        stderr_print!("procrun: connected to {name} (pid {pid}); detach with {DETACH_NAME}\r\n");
        let end = relay(&mut stream, &wake_rd);
        // Colours or a hidden cursor the program left on stay with it.
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"\x1b[0m\x1b[?25h");
        let _ = out.flush();
        end
    };
    for id in ids {
        signal_hook::low_level::unregister(id);
    }
    match end {
        End::Detached => {
            stderr_println!("\nprocrun: detached from {name}; it keeps running");
            Ok(ExitCode::OK)
        }
        End::Bye { code, .. } if code == "exited" => {
            stderr_println!("\nprocrun: {name} has exited");
            Ok(ExitCode::OK)
        }
        End::Bye { message, .. } => Err(failure(format!("{message}; disconnected from {name}"))),
        End::Lost(why) => Err(failure(format!(
            "the connection to procrun start was lost ({why}); disconnected from {name}"
        ))),
        End::Signal(n) => {
            stderr_println!("\nprocrun: detached from {name}; it keeps running");
            Ok(128 + n)
        }
    }
}

/// The local terminal in raw mode until dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enter() -> nix::Result<RawMode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSADRAIN, &self.saved);
    }
}

/// Relays until the connection ends: keys to the socket as input frames,
/// output frames to stdout, window changes as `resize` requests.
fn relay(stream: &mut UnixStream, wake: &UnixStream) -> End {
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    let mut inbox = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut next_id = 1_000u64;
    loop {
        let mut fds = [
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
            PollFd::new(stream.as_fd(), PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return End::Lost(e.to_string()),
        }
        let ready = |i: usize| {
            fds[i].revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)
            })
        };
        let (keys, socket, woken) = (ready(0), ready(1), ready(2));
        if woken {
            let mut drain = [0u8; 64];
            while matches!((&*wake).read(&mut drain), Ok(n) if n > 0) {}
            let signal = ENDED_BY.swap(0, Ordering::SeqCst);
            if signal != 0 {
                return End::Signal(signal as i32);
            }
            let size = window_size();
            let resize = Envelope::Request {
                id: next_id,
                method: "resize".into(),
                params: json!({ "rows": size.ws_row, "cols": size.ws_col }),
            };
            next_id += 1;
            if let Err(e) = wire::write_json_blocking(stream, &resize) {
                return End::Lost(e.to_string());
            }
        }
        if socket {
            match stream.read(&mut buf) {
                Ok(0) => return End::Lost("procrun closed it".into()),
                Ok(n) => inbox.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return End::Lost(e.to_string()),
            }
            loop {
                let frame = match wire::take_frame(&mut inbox, MAX_FRAME) {
                    Ok(Some(frame)) => frame,
                    Ok(None) => break,
                    Err(e) => return End::Lost(e.to_string()),
                };
                match frame.kind {
                    KIND_OUTPUT
                        if stdout
                            .write_all(&frame.payload)
                            .and_then(|()| stdout.flush())
                            .is_err() =>
                    {
                        return End::Detached;
                    }
                    KIND_JSON => {
                        if let Ok(Envelope::Bye { code, message, .. }) =
                            serde_json::from_slice::<Envelope>(&frame.payload)
                        {
                            return End::Bye { code, message };
                        }
                    }
                    _ => {}
                }
            }
        }
        if keys {
            let n = match nix::unistd::read(stdin.as_fd(), &mut buf) {
                Ok(0) => return End::Detached,
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => continue,
                Err(_) => return End::Detached,
            };
            let typed = &buf[..n];
            let (send, detach) = match memchr::memchr(DETACH, typed) {
                Some(i) => (&typed[..i], true),
                None => (typed, false),
            };
            if !send.is_empty()
                && let Err(e) = stream.write_all(&wire::encode(KIND_INPUT, send))
            {
                return End::Lost(e.to_string());
            }
            if detach {
                return End::Detached;
            }
        }
    }
}
