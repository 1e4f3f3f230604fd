//! Instances on a terminal of their own (`start --tty`, `tty = true`):
//! spawning one on a new pseudo-terminal, reading its output into lines,
//! and the [`Terminal`] that `procrun connect` and `procrun send` reach it
//! through.
//!
//! The instance is `/bin/sh -c COMMAND` as on pipes, but it is a session
//! leader (`setsid`) whose controlling terminal is the pty's slave
//! (`TIOCSCTTY`), with stdin, stdout and stderr on the slave: a program sees
//! a terminal (colours, line-buffered output, prompts) and Ctrl-C typed
//! through `connect` reaches its foreground group. Its session's process
//! group is its pid, so procrun signals it as any instance (stop signal,
//! timeout, SIGKILL), and the watchdog kills it if procrun dies. Unlike a
//! pipe instance it is not in procrun's session, so procrun's own terminal
//! no longer reaches it (docs/design.md, pitfall 10): the Ctrl-C typed at
//! `start` stops it through procrun, once.
//!
//! `openpty` of `nix` rather than a pty crate: procrun already owns process
//! groups, the subreaper and the watchdog; all this needs is the pair of
//! descriptors and two calls in the child.
//!
//! Window size: procrun's own terminal's (stdout, stdin or stderr, the first
//! that is one), updated on SIGWINCH; without one `COLUMNS`×`LINES`, else
//! 80×24. While a client is connected, its window's size wins (the last one
//! set, among several clients); the last one to leave gives it back.
//!
//! Over 400 lines (its tests at the end) because the spawn, the reader and
//! the [`Terminal`] they share are one thing: the pty's two descriptors and
//! who may use them.

use std::os::fd::{AsFd as _, AsRawFd as _, OwnedFd};
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::pty::Winsize;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::output::json::Stream;
use crate::output::notice::Key;
use crate::output::printer::OutputSender;
use crate::output::terminal::{IDLE, TerminalLines, without_sgr};
use crate::plan::ProcessSpec;
use crate::supervisor::probe::LogMatch;
use crate::supervisor::spawn::{SpawnContext, guard_child};
use crate::supervisor::unit::{DRAIN_IDLE, DRAIN_TOTAL};

/// `TERM` when neither procrun's environment nor the env files set it.
pub const DEFAULT_TERM: &str = "xterm-256color";

/// The raw output kept for a client that connects (its recent screen).
pub const RECENT: usize = 8 * 1024;

/// Reads of output waiting for one connected client; a client further
/// behind is dropped rather than slowing the instance.
pub const CLIENT_QUEUE: usize = 1024;

/// Bytes of output waiting for one connected client, at most: a client
/// that does not read holds no more than this (a read is up to 64 KiB, so
/// [`CLIENT_QUEUE`] alone would let it hold 64 MiB).
pub const CLIENT_BYTES: usize = 1 << 20;

/// The window size without a terminal.
const DEFAULT_SIZE: (u16, u16) = (24, 80);

/// The window size instances get: procrun's terminal's, else
/// `COLUMNS`×`LINES`, else 80×24.
pub fn window_size() -> Winsize {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO, libc::STDERR_FILENO] {
        let mut ws = size(0, 0);
        // SAFETY: TIOCGWINSZ writes one winsize into a valid pointer; a
        // descriptor that is no terminal makes it fail, nothing more.
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
            return ws;
        }
    }
    let var = |name: &str| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.trim().parse::<u16>().ok())
            .filter(|&n| n > 0)
    };
    size(
        var("LINES").unwrap_or(DEFAULT_SIZE.0),
        var("COLUMNS").unwrap_or(DEFAULT_SIZE.1),
    )
}

/// A window of `rows`×`cols`.
pub fn size(rows: u16, cols: u16) -> Winsize {
    Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

/// What the unit task reads the terminal's output with.
#[derive(Debug)]
pub struct Reader {
    master: AsyncFd<OwnedFd>,
    terminal: Arc<Terminal>,
    color: bool,
}

/// Starts `spec` on a new pty of `size`; `color` keeps the colours of its
/// output (procrun colours its own). Must be called on the main thread, in
/// the runtime, like [`super::spawn::spawn`].
pub fn spawn(
    spec: &ProcessSpec,
    ctx: SpawnContext,
    size: Winsize,
    color: bool,
) -> std::io::Result<(Child, Arc<Terminal>, Reader)> {
    let pty = nix::pty::openpty(Some(&size), None)?;
    // Neither end may leak into another child (every spawn is on this
    // thread, so none can happen between openpty and these).
    for fd in [&pty.master, &pty.slave] {
        fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC))?;
    }
    let flags = OFlag::from_bits_truncate(fcntl(&pty.master, FcntlArg::F_GETFL)?);
    fcntl(&pty.master, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;

    // As spawn.rs does for pipes, but without PYTHONUNBUFFERED: on a
    // terminal Python writes each line at once by itself.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(crate::shell::script(&spec.command))
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::from(pty.slave.try_clone()?))
        .stdout(Stdio::from(pty.slave.try_clone()?))
        .stderr(Stdio::from(pty.slave))
        .kill_on_drop(false);
    if !spec.policy.port {
        cmd.env_remove("PORT");
    }
    if !spec.env.iter().any(|(k, _)| k == "TERM") && std::env::var_os("TERM").is_none() {
        cmd.env("TERM", DEFAULT_TERM);
    }
    guard_child(&mut cmd, ctx);
    // SAFETY: between fork and exec the closure makes two async-signal-safe
    // system calls and allocates nothing. stdin is the slave by then.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() == -1 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::ioctl(libc::STDIN_FILENO, libc::TIOCSCTTY as _, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    // procrun's copies of the slave close here: once the instance and its
    // descendants close theirs, reading the master ends.
    drop(cmd);
    let pid = child.id().unwrap_or(0);
    let terminal = Arc::new(Terminal::new(
        spec.name.clone(),
        pid,
        pty.master.try_clone()?,
        size,
    ));
    let reader = Reader {
        // SAFETY: the OwnedFd is owned by the AsyncFd and stays open as
        // long as it.
        master: unsafe { AsyncFd::register_with_interest(pty.master, Interest::READABLE)? },
        terminal: Arc::clone(&terminal),
        color,
    };
    Ok((child, terminal, reader))
}

/// One run of a tty instance as clients reach it: its recent output, the
/// connected clients, its window size, and a way to type into it.
#[derive(Debug)]
pub struct Terminal {
    name: String,
    pid: u32,
    /// A descriptor of the master for input and the window size.
    master: OwnedFd,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    /// The last [`RECENT`] (up to twice as many) bytes of output, as
    /// written.
    recent: Vec<u8>,
    clients: Vec<Client>,
    next_id: u64,
    /// Orders the clients' resizes: the latest wins.
    next_resize: u64,
    /// procrun's own window size.
    own: Winsize,
    /// The size last set (rows, cols).
    applied: (u16, u16),
    /// The instance's terminal closed: nobody can connect any more.
    ended: bool,
}

#[derive(Debug)]
struct Client {
    id: u64,
    tx: mpsc::Sender<Vec<u8>>,
    /// Bytes sent and not yet received, shared with its [`Output`].
    queued: Arc<AtomicUsize>,
    /// The client's window and when it set it.
    size: Option<(u64, Winsize)>,
}

/// The last [`RECENT`] bytes of `kept`, from the start of a line when one
/// starts in their first half: not in the middle of an escape sequence.
fn recent_screen(kept: &[u8]) -> &[u8] {
    let Some(cut) = kept.len().checked_sub(RECENT) else {
        return kept;
    };
    match memchr::memchr(b'\n', &kept[cut..cut + RECENT / 2]) {
        Some(nl) => &kept[cut + nl + 1..],
        None => &kept[cut..],
    }
}

/// A connected client's side of a [`Terminal`].
#[derive(Debug)]
pub struct Attached {
    /// Its id, for [`Terminal::resize`] and [`Terminal::detach`].
    pub id: u64,
    /// The recent output, to show first.
    pub recent: Vec<u8>,
    /// Everything written from then on; closed when the instance's terminal
    /// closes or the client fell too far behind.
    pub output: Output,
}

/// The output waiting for a connected client, counted in bytes.
#[derive(Debug)]
pub struct Output {
    rx: mpsc::Receiver<Vec<u8>>,
    queued: Arc<AtomicUsize>,
}

impl Output {
    /// The next read of output; `None` once the client is let go.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let bytes = self.rx.recv().await?;
        self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
        Some(bytes)
    }

    /// The next read of output if one is waiting.
    pub fn try_recv(&mut self) -> Option<Vec<u8>> {
        let bytes = self.rx.try_recv().ok()?;
        self.queued.fetch_sub(bytes.len(), Ordering::Relaxed);
        Some(bytes)
    }
}

impl Terminal {
    /// The terminal of instance `name` (`pid`), whose master is `master`,
    /// opened with procrun's window size `size`.
    fn new(name: String, pid: u32, master: OwnedFd, size: Winsize) -> Terminal {
        Terminal {
            name,
            pid,
            master,
            state: Mutex::new(State {
                recent: Vec::new(),
                clients: Vec::new(),
                next_id: 1,
                next_resize: 1,
                own: size,
                applied: (size.ws_row, size.ws_col),
                ended: false,
            }),
        }
    }

    /// The instance's name (`web.1`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The pid of its process (its session and group).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the instance's terminal has closed.
    pub fn ended(&self) -> bool {
        self.state().ended
    }

    /// Whether client `id` is still connected (a client that fell behind
    /// is dropped).
    pub fn is_attached(&self, id: u64) -> bool {
        self.state().clients.iter().any(|c| c.id == id)
    }

    /// How many clients are connected.
    pub fn clients(&self) -> usize {
        self.state().clients.len()
    }

    /// Connects a client with a window of `size` (if it has one); `None`
    /// when the terminal has closed. The recent output and the live output
    /// that follows it neither overlap nor leave a gap.
    pub fn attach(&self, size: Option<Winsize>) -> Option<Attached> {
        let mut state = self.state();
        if state.ended {
            return None;
        }
        let (tx, rx) = mpsc::channel(CLIENT_QUEUE);
        let id = state.next_id;
        state.next_id += 1;
        let size = size.map(|s| {
            let n = state.next_resize;
            state.next_resize += 1;
            (n, s)
        });
        let queued = Arc::new(AtomicUsize::new(0));
        state.clients.push(Client {
            id,
            tx,
            queued: Arc::clone(&queued),
            size,
        });
        let recent = recent_screen(&state.recent).to_vec();
        self.apply(&mut state);
        Some(Attached {
            id,
            recent,
            output: Output { rx, queued },
        })
    }

    /// Client `id` left.
    pub fn detach(&self, id: u64) {
        let mut state = self.state();
        state.clients.retain(|c| c.id != id);
        self.apply(&mut state);
    }

    /// Client `id`'s window is now `size`.
    pub fn resize(&self, id: u64, size: Winsize) {
        let mut state = self.state();
        let n = state.next_resize;
        state.next_resize += 1;
        if let Some(c) = state.clients.iter_mut().find(|c| c.id == id) {
            c.size = Some((n, size));
        }
        self.apply(&mut state);
    }

    /// procrun's own window is now `size`.
    pub fn set_own_size(&self, size: Winsize) {
        let mut state = self.state();
        state.own = size;
        self.apply(&mut state);
    }

    /// Sets the size that wins, if it changed (the kernel then sends
    /// SIGWINCH to the terminal's foreground group).
    fn apply(&self, state: &mut State) {
        let size = state
            .clients
            .iter()
            .filter_map(|c| c.size)
            .max_by_key(|(n, _)| *n)
            .map_or(state.own, |(_, s)| s);
        if (size.ws_row, size.ws_col) == state.applied || state.ended {
            return;
        }
        // SAFETY: TIOCSWINSZ reads one winsize from a valid pointer.
        if unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) } == 0 {
            state.applied = (size.ws_row, size.ws_col);
        }
    }

    /// Output the instance wrote: kept as recent, and sent to every client.
    fn output(&self, bytes: &[u8]) {
        let mut state = self.state();
        let recent = &mut state.recent;
        recent.extend_from_slice(bytes);
        // Trimmed once twice as long, not on every read.
        if recent.len() > 2 * RECENT {
            let cut = recent.len() - RECENT;
            recent.drain(..cut);
        }
        let before = state.clients.len();
        state.clients.retain(|c| {
            // Counted before the send, so that the receiver never takes
            // away more than was added.
            let before = c.queued.fetch_add(bytes.len(), Ordering::Relaxed);
            before + bytes.len() <= CLIENT_BYTES && c.tx.try_send(bytes.to_vec()).is_ok()
        });
        if state.clients.len() != before {
            tracing::debug!(
                "{}: a connected client fell behind and was dropped",
                self.name
            );
            self.apply(&mut state);
        }
    }

    /// The terminal closed: clients are let go.
    fn end(&self) {
        let mut state = self.state();
        state.ended = true;
        state.clients.clear();
    }

    /// A way to type into the terminal, for a task of the current runtime.
    pub fn input(&self) -> std::io::Result<Input> {
        Ok(Input {
            // SAFETY: as in `spawn`: the AsyncFd owns this descriptor.
            fd: unsafe {
                AsyncFd::register_with_interest(self.master.try_clone()?, Interest::WRITABLE)?
            },
        })
    }
}

/// Writes to a terminal's master: what a client types.
#[derive(Debug)]
pub struct Input {
    fd: AsyncFd<OwnedFd>,
}

impl Input {
    /// Writes all of `bytes`; waits while the terminal's input queue is full
    /// (the program does not read).
    pub async fn write_all(&self, mut bytes: &[u8]) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|fd| {
                nix::unistd::write(fd.get_ref().as_fd(), bytes).map_err(std::io::Error::from)
            }) {
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => {}
            }
        }
        Ok(())
    }
}

/// Reads once from the master; `Ok(0)` at the end (Linux reports the
/// closing of the last slave as EIO).
async fn read(master: &AsyncFd<OwnedFd>, buf: &mut [u8]) -> std::io::Result<usize> {
    loop {
        let mut guard = master.readable().await?;
        match guard
            .try_io(|fd| nix::unistd::read(fd.get_ref().as_fd(), buf).map_err(std::io::Error::from))
        {
            Ok(Ok(n)) => return Ok(n),
            Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Ok(Err(e)) => return Err(e),
            Err(_would_block) => {}
        }
    }
}

/// Reads the terminal's output into lines, as the pipe pump does (the same
/// drain limits after the instance's exit), and hands every read to the
/// connected clients.
pub async fn pump(
    reader: Reader,
    key: Key,
    output: OutputSender,
    link: Arc<crate::supervisor::unit::Link>,
    log_match: Option<Arc<LogMatch>>,
) {
    let Reader {
        master,
        terminal,
        color,
    } = reader;
    let mut lines = TerminalLines::new(color);
    let mut buf = vec![0u8; 64 * 1024];
    let mut chunks = Vec::new();
    let mut drain_until: Option<Instant> = None;
    let mut idle_at: Option<Instant> = None;
    let mut pace = output.pacing().stream();
    let send = |chunk| {
        let output = &output;
        let log_match = &log_match;
        async move {
            // The check reads the text, not the colours around it.
            let found = log_match.as_ref().is_some_and(|m: &Arc<LogMatch>| {
                match color.then(|| without_sgr(&chunk)).flatten() {
                    Some(plain) => m.scan(&plain),
                    None => m.scan(&chunk),
                }
            });
            output.lines(key, Stream::Pty, chunk).await;
            if found && let Some(m) = log_match {
                m.report();
            }
        }
    };
    let far = Instant::now() + std::time::Duration::from_secs(86_400 * 365);
    /// What woke the pump.
    enum Wake {
        Read(std::io::Result<usize>),
        Exited,
        Drained,
        Idle,
    }
    loop {
        let drain_at = drain_until.map(|until| (Instant::now() + DRAIN_IDLE).min(until));
        let wake = tokio::select! {
            biased;
            read = read(&master, &mut buf) => Wake::Read(read),
            () = link.exited(), if drain_until.is_none() => Wake::Exited,
            () = tokio::time::sleep_until(drain_at.unwrap_or(far)), if drain_at.is_some() => Wake::Drained,
            () = tokio::time::sleep_until(idle_at.unwrap_or(far)), if idle_at.is_some() => Wake::Idle,
        };
        let read = match wake {
            Wake::Read(read) => read,
            Wake::Exited => {
                drain_until = Some(Instant::now() + DRAIN_TOTAL);
                continue;
            }
            Wake::Drained => {
                tracing::debug!("instance {}: terminal still open after exit, left", key.0);
                break;
            }
            Wake::Idle => {
                idle_at = None;
                if let Some(prompt) = lines.idle() {
                    send(prompt).await;
                }
                continue;
            }
        };
        match read {
            Ok(0) => break,
            Ok(mut n) => {
                // A terminal hands out little at a time: take what else is
                // there now, so that a flood costs few messages.
                while n < buf.len() {
                    match nix::unistd::read(master.get_ref().as_fd(), &mut buf[n..]) {
                        Ok(more) if more > 0 => n += more,
                        _ => break,
                    }
                }
                pace.read(n);
                terminal.output(&buf[..n]);
                lines.push(&buf[..n], &mut chunks);
                for chunk in chunks.drain(..) {
                    send(chunk).await;
                }
                idle_at = Some(Instant::now() + IDLE);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                tracing::debug!("instance {}: reading its terminal: {e}", key.0);
                break;
            }
        }
    }
    terminal.end();
    if let Some(last) = lines.finish() {
        send(last).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal on a new pty of procrun's size 24×80, and its slave.
    fn terminal() -> (Terminal, OwnedFd) {
        let pty = nix::pty::openpty(Some(&size(24, 80)), None).expect("openpty");
        (
            Terminal::new("web.1".into(), 0, pty.master, size(24, 80)),
            pty.slave,
        )
    }

    /// The size the program sees.
    fn seen(slave: &OwnedFd) -> (u16, u16) {
        let mut ws = size(0, 0);
        // SAFETY: TIOCGWINSZ writes one winsize into a valid pointer.
        let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) };
        assert_eq!(rc, 0);
        (ws.ws_row, ws.ws_col)
    }

    #[test]
    fn the_size_set_last_wins_and_procruns_comes_back_when_all_have_left() {
        let (t, slave) = terminal();
        let a = t.attach(Some(size(40, 120))).expect("open");
        assert_eq!(seen(&slave), (40, 120));
        let b = t.attach(None).expect("open");
        assert_eq!(
            seen(&slave),
            (40, 120),
            "a client without a size changes nothing"
        );
        t.resize(b.id, size(50, 132));
        assert_eq!(seen(&slave), (50, 132));
        t.set_own_size(size(30, 100));
        assert_eq!(seen(&slave), (50, 132), "clients win over procrun");
        t.resize(a.id, size(41, 121));
        assert_eq!(seen(&slave), (41, 121));
        t.detach(a.id);
        assert_eq!(seen(&slave), (50, 132), "the other client's size");
        t.detach(b.id);
        assert_eq!(seen(&slave), (30, 100), "procrun's own again");
        assert_eq!(t.clients(), 0);
    }

    #[test]
    fn recent_output_is_capped_starts_at_a_line_and_joins_the_live_output() {
        let (t, _slave) = terminal();
        for i in 0..2000 {
            t.output(format!("line {i}\r\n").as_bytes());
        }
        let mut a = t.attach(None).expect("open");
        assert!(a.recent.len() <= RECENT, "{}", a.recent.len());
        assert!(a.recent.starts_with(b"line "), "starts at a line");
        assert!(a.recent.ends_with(b"line 1999\r\n"));
        t.output(b"next\r\n");
        assert_eq!(a.output.try_recv().expect("live"), b"next\r\n");
        t.end();
        assert!(a.output.try_recv().is_none(), "closed at the end");
        assert!(
            t.attach(None).is_none(),
            "nobody connects to an ended terminal"
        );
    }

    #[test]
    fn a_client_that_falls_behind_is_dropped_and_others_go_on() {
        let (t, _slave) = terminal();
        let slow = t.attach(None).expect("open");
        let mut fast = t.attach(None).expect("open");
        for _ in 0..CLIENT_QUEUE {
            t.output(b"x");
            fast.output.try_recv().expect("read");
        }
        assert!(t.is_attached(slow.id));
        t.output(b"one too many");
        assert!(!t.is_attached(slow.id), "dropped");
        assert!(t.is_attached(fast.id));
        assert!(!t.ended(), "a drop is not the end");
    }

    #[test]
    fn a_client_holds_at_most_client_bytes_of_output() {
        let (t, _slave) = terminal();
        let slow = t.attach(None).expect("open");
        let mut reading = t.attach(None).expect("open");
        let read = vec![b'x'; 64 * 1024];
        for _ in 0..CLIENT_BYTES / read.len() {
            t.output(&read);
        }
        assert!(t.is_attached(slow.id), "a full queue is kept");
        // The reader takes one read: room for exactly one more.
        reading.output.try_recv().expect("read");
        t.output(&read);
        assert!(!t.is_attached(slow.id), "one read past the cap drops it");
        assert!(t.is_attached(reading.id));
        // What is read is counted off: the reader never falls behind.
        for _ in 0..3 * CLIENT_BYTES / read.len() {
            while reading.output.try_recv().is_some() {}
            t.output(&read);
        }
        assert!(t.is_attached(reading.id));
    }
}
