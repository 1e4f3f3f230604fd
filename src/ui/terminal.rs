//! The terminal while the dashboard owns it: raw mode and the alternate
//! screen on entry, and both undone on every way out (a return, an error,
//! a panic, which runs the hook even when panics abort), so the shell gets
//! back the terminal it had.
//!
//! Under `start --ui` the dashboard shares its process with the
//! supervisor, whose printer writes stdout and whose warnings go to
//! stderr: [`Redirect`] points stdout at `/dev/null` (the log ring keeps
//! the output) and stderr into memory while the dashboard draws, and gives
//! the terminal back to both afterwards, printing what was said on stderr.

use std::fs::File;
use std::io::{BufWriter, IsTerminal as _, Read as _, Write as _};
use std::os::fd::{AsFd, AsRawFd as _, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, Once, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ratatui::Terminal;
use ratatui::backend::CrosstermBackend;
use ratatui::crossterm::{cursor, execute, terminal};

/// The terminal's descriptor while the dashboard is on it (-1: not), for
/// the panic hook.
static ON_SCREEN: AtomicI32 = AtomicI32::new(-1);

/// What leaves the alternate screen and shows the cursor again.
const LEAVE: &[u8] = b"\x1b[?1049l\x1b[?25h";

/// The most of stderr kept while the dashboard draws.
const STDERR_CAP: usize = 64 * 1024;

/// The ratatui terminal the dashboard draws on.
pub type Term = Terminal<CrosstermBackend<BufWriter<File>>>;

/// A copy of `fd` that children do not inherit.
fn dup_private(fd: impl AsFd) -> std::io::Result<OwnedFd> {
    let copy = nix::unistd::dup(fd)?;
    nix::fcntl::fcntl(
        &copy,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )?;
    Ok(copy)
}

/// Whether the dashboard can run here: stdin and stdout on a terminal.
pub fn check_terminal() -> Result<(), String> {
    if std::io::stdin().is_terminal() && std::io::stdout().is_terminal() {
        Ok(())
    } else {
        Err("the dashboard needs a terminal: stdin and stdout are not one (procrun ps and procrun logs -f work anywhere)".into())
    }
}

/// The dashboard's screen: dropping it restores the terminal.
pub struct Screen {
    /// What ratatui draws on.
    pub term: Term,
}

impl std::fmt::Debug for Screen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen").finish_non_exhaustive()
    }
}

impl Screen {
    /// Raw mode and the alternate screen on the terminal `out` writes to.
    pub fn enter(out: File) -> std::io::Result<Screen> {
        install_panic_hook();
        terminal::enable_raw_mode()?;
        ON_SCREEN.store(out.as_raw_fd(), Ordering::SeqCst);
        let mut writer = BufWriter::new(out);
        let entered = execute!(writer, terminal::EnterAlternateScreen, cursor::Hide)
            .and_then(|()| Terminal::new(CrosstermBackend::new(writer)));
        match entered {
            Ok(term) => Ok(Screen { term }),
            Err(e) => {
                restore();
                Err(e)
            }
        }
    }
}

impl Drop for Screen {
    fn drop(&mut self) {
        let _ = self.term.backend_mut().flush();
        restore();
    }
}

/// Leaves the alternate screen and raw mode, once.
fn restore() {
    let fd = ON_SCREEN.swap(-1, Ordering::SeqCst);
    if fd < 0 {
        return;
    }
    // SAFETY: `fd` is the terminal's descriptor, open while the screen
    // is; writing a few bytes to it has no other effect.
    unsafe {
        libc::write(fd, LEAVE.as_ptr().cast(), LEAVE.len());
    }
    let _ = terminal::disable_raw_mode();
}

fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // The message must land on a sane terminal.
            restore();
            previous(info);
        }));
    });
}

/// The terminal for `procrun ui`: a private copy of stdout.
pub fn stdout_terminal() -> std::io::Result<File> {
    Ok(File::from(dup_private(std::io::stdout())?))
}

/// stdout and stderr taken away from the terminal while the dashboard of
/// `start --ui` draws on it; given back when dropped.
#[derive(Debug)]
pub struct Redirect {
    terminal: OwnedFd,
    stderr: OwnedFd,
    said: Arc<Mutex<(Vec<u8>, usize)>>,
    reader: Option<JoinHandle<()>>,
}

impl Redirect {
    /// Points stdout at /dev/null and stderr at a pipe read into memory.
    pub fn take() -> std::io::Result<Redirect> {
        let terminal = dup_private(std::io::stdout())?;
        let stderr = dup_private(std::io::stderr())?;
        let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let said = Arc::new(Mutex::new((Vec::new(), 0)));
        let kept = Arc::clone(&said);
        let reader = std::thread::Builder::new()
            .name("stderr".into())
            .spawn(move || {
                let mut pipe = File::from(read);
                let mut buf = [0u8; 4096];
                loop {
                    match pipe.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let mut said = kept.lock().unwrap_or_else(PoisonError::into_inner);
                            let room = STDERR_CAP.saturating_sub(said.0.len()).min(n);
                            said.0.extend_from_slice(&buf[..room]);
                            said.1 += n - room;
                        }
                    }
                }
            })?;
        let redirect = Redirect {
            terminal,
            stderr,
            said,
            reader: Some(reader),
        };
        nix::unistd::dup2_stdout(&null)?;
        nix::unistd::dup2_stderr(&write)?;
        Ok(redirect)
    }

    /// The terminal, for the dashboard to draw on.
    pub fn terminal(&self) -> std::io::Result<File> {
        Ok(File::from(dup_private(&self.terminal)?))
    }
}

impl Drop for Redirect {
    /// Gives stdout and stderr back to the terminal and prints what was
    /// said on stderr meanwhile.
    fn drop(&mut self) {
        let _ = nix::unistd::dup2_stdout(&self.terminal);
        // The pipe's only writer was descriptor 2: the reader sees its end.
        let _ = nix::unistd::dup2_stderr(&self.stderr);
        if let Some(reader) = self.reader.take() {
            // Bounded: a process that inherited the pipe would keep it open.
            let deadline = Instant::now() + Duration::from_secs(1);
            while !reader.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
        let said = self.said.lock().unwrap_or_else(PoisonError::into_inner);
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&said.0);
        if said.1 > 0 {
            let _ = writeln!(
                err,
                "… {} more bytes of procrun's messages left out",
                said.1
            );
        }
    }
}
