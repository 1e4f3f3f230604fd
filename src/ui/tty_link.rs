//! The connected view's connection (see [`super::tty`]): an `attach` on a
//! connection of its own, as `procrun connect` makes (docs/control.md).
//! Two threads, so that the drawing thread never waits on the socket: one
//! connects, then reads the instance's output frames and hands them on as
//! [`Event`]s; the other writes what the drawing thread queues (typed
//! bytes as input frames, `resize` requests). Dropping the [`Link`] ends
//! both: the writer, seeing its queue closed, shuts the connection down,
//! which ends the reader and detaches (the instance runs on).
//!
//! The reader does not queue each output frame for the drawing thread: it
//! gathers the bytes in one bounded inbox and says only that some are
//! waiting; the drawing thread takes them all at once. So a program that
//! floods its terminal (`yes`) is held back by the socket, as a terminal
//! holds it back, instead of filling the dashboard's queue with seconds of
//! output that every key would wait behind.

use std::io::Write as _;
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use serde_json::json;

use crate::control::wire::{self, Envelope, KIND_INPUT, KIND_JSON, KIND_OUTPUT, MAX_FRAME};
use crate::ui::session::{Target, describe};
use crate::ui::tty::Event;

/// Writes waiting for the connection; beyond, typed bytes are dropped
/// (and the status line says so) rather than the screen waiting.
const QUEUE: usize = 256;

/// A write procrun does not take within this long ends the connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// What the writer sends.
#[derive(Debug)]
enum Out {
    Input(Vec<u8>),
    Resize(u16, u16),
}

/// Output bytes the reader holds for the drawing thread; beyond, the
/// reader waits (and with it the instance's terminal).
const INBOX: usize = 256 * 1024;

/// Output read and not yet taken by the drawing thread.
#[derive(Debug, Default)]
struct Inbox {
    state: Mutex<Waiting>,
    taken: Condvar,
}

#[derive(Debug, Default)]
struct Waiting {
    bytes: Vec<u8>,
    /// The drawing thread was told and has not taken them yet.
    told: bool,
    /// The drawing thread let go of the connection.
    closed: bool,
}

impl Inbox {
    /// Adds `bytes`; true when the drawing thread is to be told (it was
    /// not yet). Waits while the inbox is full; false also when closed.
    fn put(&self, bytes: &[u8]) -> Option<bool> {
        let mut w = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        while w.bytes.len() >= INBOX && !w.closed {
            w = self.taken.wait(w).unwrap_or_else(PoisonError::into_inner);
        }
        if w.closed {
            return None;
        }
        w.bytes.extend_from_slice(bytes);
        Some(!std::mem::replace(&mut w.told, true))
    }

    fn take(&self) -> Vec<u8> {
        let mut w = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        w.told = false;
        let bytes = std::mem::take(&mut w.bytes);
        self.taken.notify_all();
        bytes
    }

    fn close(&self) {
        let mut w = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        w.closed = true;
        self.taken.notify_all();
    }
}

/// The drawing thread's end of the connection.
#[derive(Debug)]
pub struct Link {
    /// Which connection this is ([`Event`]s name it).
    id: u64,
    out: SyncSender<Out>,
    inbox: Arc<Inbox>,
}

impl Drop for Link {
    fn drop(&mut self) {
        // A reader waiting for room gives up (the writer shuts the socket).
        self.inbox.close();
    }
}

impl Link {
    /// Starts connecting to `name`'s terminal, sized `rows` × `cols`;
    /// `report` hands the drawing thread what happens, and returns false
    /// once the dashboard is gone.
    pub fn open(
        target: &Target,
        link: u64,
        name: String,
        (rows, cols): (u16, u16),
        mut report: impl FnMut(Event) -> bool + Send + 'static,
    ) -> std::io::Result<Link> {
        let (out, outbox) = mpsc::sync_channel(QUEUE);
        let target = target.clone();
        let inbox = Arc::new(Inbox::default());
        let filled = Arc::clone(&inbox);
        std::thread::Builder::new()
            .name("ui-tty".into())
            .spawn(move || {
                run(
                    &target,
                    link,
                    &name,
                    (rows, cols),
                    outbox,
                    &filled,
                    &mut report,
                );
            })?;
        Ok(Link {
            id: link,
            out,
            inbox,
        })
    }

    /// The output read on connection `id` since the last call (after an
    /// [`Event::Output`] said some is waiting); nothing for another
    /// connection.
    pub fn take_output(&self, id: u64) -> Vec<u8> {
        if id == self.id {
            self.inbox.take()
        } else {
            Vec::new()
        }
    }

    /// Queues typed bytes; false when the queue is full and they were
    /// dropped.
    pub fn send(&self, bytes: Vec<u8>) -> bool {
        !matches!(
            self.out.try_send(Out::Input(bytes)),
            Err(TrySendError::Full(_))
        )
    }

    /// Queues a new window size.
    pub fn resize(&self, rows: u16, cols: u16) {
        // A full queue drops it; the next change sends the size again.
        let _ = self.out.try_send(Out::Resize(rows, cols));
    }
}

fn run(
    target: &Target,
    link: u64,
    name: &str,
    (rows, cols): (u16, u16),
    outbox: Receiver<Out>,
    inbox: &Inbox,
    report: &mut impl FnMut(Event) -> bool,
) {
    let attached = target.connect().and_then(|mut client| {
        let params = json!({ "name": name, "rows": rows, "cols": cols });
        let answer = client.call("attach", params)?;
        Ok((client, answer))
    });
    let (client, answer) = match attached {
        Ok(ok) => ok,
        Err(e) => {
            report(Event::Refused {
                link,
                reason: describe(&e),
            });
            return;
        }
    };
    let mut stream = client.into_stream();
    let writer = stream.try_clone().and_then(|w| {
        w.set_write_timeout(Some(WRITE_TIMEOUT))?;
        std::thread::Builder::new()
            .name("ui-tty-write".into())
            .spawn(move || write(w, &outbox))
    });
    if let Err(e) = writer {
        report(Event::Refused {
            link,
            reason: format!("connecting to {name}: {e}"),
        });
        return;
    }
    let attached = Event::Attached {
        link,
        name: answer["name"].as_str().unwrap_or(name).to_owned(),
        pid: answer["pid"].as_u64().and_then(|p| u32::try_from(p).ok()),
    };
    if !report(attached) {
        return;
    }
    read(&mut stream, link, inbox, report);
}

/// Gathers output frames in `inbox` until a bye or the end of the
/// connection; tells the drawing thread when there is output to take, with
/// an [`Event::Output`] without bytes.
fn read(stream: &mut UnixStream, link: u64, inbox: &Inbox, report: &mut impl FnMut(Event) -> bool) {
    loop {
        let frame = match wire::read_frame_blocking(stream, MAX_FRAME) {
            Ok(frame) => frame,
            Err(e) => {
                // Also how a detach ends this thread: the report is then
                // about a connection the dashboard let go, and ignored.
                report(Event::Ended {
                    link,
                    failed: true,
                    message: format!("the connection to procrun was lost ({e})"),
                });
                return;
            }
        };
        match frame.kind {
            KIND_OUTPUT => match inbox.put(&frame.payload) {
                None => return,
                Some(true) => {
                    let bytes = Vec::new();
                    if !report(Event::Output { link, bytes }) {
                        return;
                    }
                }
                Some(false) => {}
            },
            KIND_JSON => {
                // Else the answer to a resize: nothing to say.
                if let Ok(Envelope::Bye { code, message, .. }) =
                    serde_json::from_slice::<Envelope>(&frame.payload)
                {
                    // `exited`, `app_ended`: as things go; `too_slow`.
                    let failed = !matches!(code.as_str(), "exited" | "app_ended");
                    report(Event::Ended {
                        link,
                        failed,
                        message,
                    });
                    return;
                }
            }
            _ => {}
        }
    }
}

/// Writes what is queued until the queue closes (a detach), then shuts
/// the connection down.
fn write(mut stream: UnixStream, outbox: &Receiver<Out>) {
    // Above the ids the client used before it attached.
    let mut id = 1_000u64;
    while let Ok(out) = outbox.recv() {
        let frame = match out {
            Out::Input(bytes) => wire::encode(KIND_INPUT, &bytes),
            Out::Resize(rows, cols) => {
                id += 1;
                wire::encode_json(&Envelope::Request {
                    id,
                    method: "resize".into(),
                    params: json!({ "rows": rows, "cols": cols }),
                })
            }
        };
        if stream.write_all(&frame).is_err() {
            break;
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}
