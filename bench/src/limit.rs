//! The limit multiplexer: the least a line-prefixing runner has to do, as
//! the ceiling procrun is measured against.
//!
//! `mux K CMD [--pipe-size BYTES] [--read BYTES] [--out-pipe-size BYTES]
//! [--groups]` starts K copies of
//! `/bin/sh -c CMD` (posix_spawn, through std without a `pre_exec` hook),
//! each with its stdout on a pipe of its own (enlarged to `--pipe-size`,
//! 1 MiB by default, as far as `/proc/sys/fs/pipe-max-size` allows; its
//! own stdout pipe too, as procrun enlarges its), and
//! copies their lines to its stdout, each behind the same 18-byte prefix
//! procrun prints (`HH:MM:SS w.1    | `, the time formatted once per
//! second). One `epoll_wait` per round, one `read` per ready pipe, every
//! whole line of the round gathered into one buffer and written with one
//! `write`: one scan for newlines and one copy per byte, nothing checked
//! (no UTF-8, no line cap, no stderr, no back-pressure accounting). It
//! stops on SIGINT, SIGTERM or SIGHUP (SIGTERM to every child, then waits
//! for them), or when every pipe is closed.
//!
//! With `--groups` each child leads a process group of its own (so that
//! the terminal's Ctrl-C reaches the multiplexer alone, as it reaches
//! procrun); a stop signals the groups one by one and reads every pipe to
//! its end before it reaps: the least a runner that stops its instances
//! itself, losing no line, has to do.
//!
//! Rust with only std and libc rather than C: every call in the loop is a
//! direct libc call, the same a C version would make; the harness needs no
//! C compiler; and the bench keeps its rule that one binary plays every
//! role.

use std::io::Write as _;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::process::{Command, ExitCode, Stdio};

use crate::{Result, opt, sys};

/// One child's pipe and the partial line it left.
struct Stream {
    fd: i32,
    /// The part of the prefix after the time: `w.1    | `.
    name: Vec<u8>,
    buf: Vec<u8>,
    len: usize,
    open: bool,
}

pub fn mux(args: &[String]) -> Result<ExitCode> {
    let k: usize = args
        .first()
        .and_then(|k| k.parse().ok())
        .ok_or("mux: expected K CMD")?;
    let cmd = args.get(1).ok_or("mux: expected K CMD")?;
    let pipe_size: i32 = opt(args, "--pipe-size")?.unwrap_or(1 << 20);
    let read_size: usize = opt(args, "--read")?.unwrap_or(256 * 1024);
    let out_pipe_size: i32 = opt(args, "--out-pipe-size")?.unwrap_or(1 << 20);
    let groups = args.iter().any(|a| a == "--groups");
    if out_pipe_size > 0 {
        // SAFETY: fcntl on stdout; failure (not a pipe) changes nothing.
        unsafe { libc::fcntl(1, libc::F_SETPIPE_SZ, out_pipe_size) };
    }
    sys::raise_nofile();
    let width = format!("w.{k}").len().max("system".len());
    let mut children = Vec::with_capacity(k);
    let mut streams = Vec::with_capacity(k);
    for i in 1..=k {
        let mut fds = [0; 2];
        // SAFETY: pipe2 writes two descriptors into the array.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(format!("mux: pipe: {}", std::io::Error::last_os_error()));
        }
        if pipe_size > 0 {
            // SAFETY: fcntl on a descriptor we own; failure keeps 64 KiB.
            unsafe { libc::fcntl(fds[0], libc::F_SETPIPE_SZ, pipe_size) };
        }
        // SAFETY: the write end is ours; the Command closes it after spawning.
        let write = unsafe { OwnedFd::from_raw_fd(fds[1]) };
        let mut command = Command::new("/bin/sh");
        command
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stdout(Stdio::from(write));
        if groups {
            // Set through posix_spawn's attributes: no pre_exec, no fork.
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
        }
        let child = command.spawn().map_err(|e| format!("mux: {e}"))?;
        children.push(child);
        let name = format!("{:width$} | ", format!("w.{i}"));
        streams.push(Stream {
            fd: fds[0],
            name: name.into_bytes(),
            buf: vec![0; read_size],
            len: 0,
            open: true,
        });
    }
    // Blocked only now: the children would inherit the mask.
    let set = sys::block_signals(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP]);
    // SAFETY: plain syscalls on descriptors we own.
    let (ep, sigfd) = unsafe {
        let ep = libc::epoll_create1(libc::EPOLL_CLOEXEC);
        let sigfd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC);
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: u64::MAX,
        };
        libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, sigfd, &mut ev);
        for (i, s) in streams.iter().enumerate() {
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, s.fd, &mut ev);
        }
        (ep, sigfd)
    };
    let mut out: Vec<u8> = Vec::with_capacity(4 << 20);
    let mut stdout = crate::stdout_file();
    let mut clock = Clock::default();
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 256];
    let mut open = k;
    let mut stop = false;
    let mut signalled = false;
    // Without groups a stop ends the loop; with them, the pipes drain first.
    while open > 0 && (groups || !stop) {
        if stop && !signalled {
            // Each group on its own, then on reading until every pipe ends.
            for c in &children {
                // SAFETY: a plain syscall; the group is our child's.
                unsafe { libc::kill(-(c.id() as i32), libc::SIGTERM) };
            }
            signalled = true;
        }
        // SAFETY: `events` has room for its length.
        let n = unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), events.len() as i32, -1) };
        if n < 0 {
            continue; // EINTR
        }
        let time = clock.now();
        for ev in &events[..n as usize] {
            let id = ev.u64;
            if id == u64::MAX {
                // Taken, so that the signalfd is not ready again while the
                // pipes drain.
                let mut info = [0u8; 128];
                // SAFETY: reading one signalfd_siginfo into a buffer its size.
                unsafe { libc::read(sigfd, info.as_mut_ptr().cast(), info.len()) };
                stop = true;
                continue;
            }
            let s = &mut streams[id as usize];
            if s.len == s.buf.len() {
                // A line longer than the buffer: grow it (never in the bench).
                s.buf.resize(s.buf.len() * 2, 0);
            }
            // SAFETY: reading into the free tail of the stream's buffer.
            let got = unsafe {
                libc::read(
                    s.fd,
                    s.buf[s.len..].as_mut_ptr().cast(),
                    s.buf.len() - s.len,
                )
            };
            if got < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted
            {
                continue;
            }
            if got <= 0 {
                if s.len > 0 {
                    s.buf[s.len] = b'\n';
                    s.len += 1;
                }
                lines(s, &time, &mut out);
                // SAFETY: closing a descriptor we own (also leaves epoll).
                unsafe { libc::close(s.fd) };
                s.open = false;
                open -= 1;
                continue;
            }
            s.len += got as usize;
            lines(s, &time, &mut out);
        }
        if !out.is_empty() {
            if stdout.write_all(&out).is_err() {
                stop = true;
            }
            out.clear();
        }
    }
    if stop && !groups {
        for c in &children {
            sys::kill(c.id(), libc::SIGTERM);
        }
    }
    let code = sys::wait_all(children);
    // SAFETY: closing descriptors we own.
    unsafe {
        libc::close(sigfd);
        libc::close(ep);
    }
    Ok(ExitCode::from(code as u8))
}

/// Appends every whole line of `s` to `out` behind its prefix and keeps
/// the partial line at the front of the buffer.
fn lines(s: &mut Stream, time: &[u8], out: &mut Vec<u8>) {
    let data = &s.buf[..s.len];
    let mut from = 0;
    for nl in memchr::memchr_iter(b'\n', data) {
        out.extend_from_slice(time);
        out.extend_from_slice(&s.name);
        out.extend_from_slice(&data[from..=nl]);
        from = nl + 1;
    }
    s.buf.copy_within(from..s.len, 0);
    s.len -= from;
}

/// `HH:MM:SS ` in local time, formatted once per second.
#[derive(Default)]
struct Clock {
    second: i64,
    text: [u8; 9],
}

impl Clock {
    fn now(&mut self) -> [u8; 9] {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: clock_gettime writes into the timespec we pass.
        unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) };
        if ts.tv_sec != self.second || self.text[2] == 0 {
            self.second = ts.tv_sec;
            // SAFETY: localtime_r fills the tm we pass.
            let tm = unsafe {
                let mut tm: libc::tm = std::mem::zeroed();
                libc::localtime_r(&ts.tv_sec, &mut tm);
                tm
            };
            let mut t = Vec::with_capacity(9);
            let _ = write!(t, "{:02}:{:02}:{:02} ", tm.tm_hour, tm.tm_min, tm.tm_sec);
            self.text.copy_from_slice(&t);
        }
        self.text
    }
}
