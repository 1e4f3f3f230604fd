//! The log ring: the recent output of every instance and procrun's recent
//! messages, kept in memory for `procrun logs` (and followers, who get each
//! new entry as it is printed).
//!
//! The printer thread records every message after writing it, so the ring
//! holds exactly what `start` printed, in the same order. A chunk is moved
//! in, not copied. Memory is bounded per instance by bytes
//! ([`LANE_BYTES`]) and for procrun's messages by count
//! ([`SYSTEM_ENTRIES`]): the oldest entries go first.
//!
//! A follower is a bounded channel, bounded by entries
//! ([`FOLLOWER_QUEUE`]) and by the bytes of output waiting in it
//! ([`FOLLOWER_BYTES`]: entries the ring has let go of stay alive while a
//! slow follower holds them). The printer never waits for one: when a
//! follower's channel is full its entries are counted as dropped, and a
//! [`Item::Gap`] tells it how many once there is room again.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::mpsc;

use crate::output::json::Stream;
use crate::output::lines::{Chunk, Tail};
use crate::output::notice::{Ident, Key, Notice};
use crate::output::printer::Message;

/// The output kept per instance, in bytes (about 2,000 lines of 128 bytes).
pub const LANE_BYTES: usize = 256 * 1024;

/// The output kept for all instances together: with more than 64 chatty
/// instances, each keeps its share of this.
pub const TOTAL_BYTES: usize = 16 * 1024 * 1024;

/// procrun's own messages kept.
pub const SYSTEM_ENTRIES: usize = 1000;

/// Entries a follower may have waiting before it drops some.
pub const FOLLOWER_QUEUE: usize = 4096;

/// Bytes of output a follower may have waiting before it drops some.
pub const FOLLOWER_BYTES: usize = 8 * 1024 * 1024;

/// What was printed.
#[derive(Debug)]
pub enum Item {
    /// Lines of one instance's stream.
    Output {
        /// Which instance.
        key: Key,
        /// Which pipe.
        stream: Stream,
        /// The lines.
        chunk: Chunk,
    },
    /// One of procrun's messages.
    Notice(Notice),
    /// A new instance (followers learn its prefix).
    Register(Ident),
    /// This many entries were not delivered to a follower.
    Gap(u64),
}

/// One recorded entry.
#[derive(Debug)]
pub struct Entry {
    /// Its place in the order of printing.
    pub seq: u64,
    /// When it was printed.
    pub time: SystemTime,
    /// What.
    pub item: Item,
}

/// What a `logs` request gets: every instance known, and the entries to
/// show, oldest first, each with the number of leading lines to leave out
/// (the first chunk of an instance may hold more lines than asked for).
#[derive(Debug, Default)]
pub struct Snapshot {
    /// Every instance registered so far.
    pub idents: Vec<Ident>,
    /// The entries, with their lines to skip.
    pub entries: Vec<(Arc<Entry>, usize)>,
}

#[derive(Debug, Default)]
struct Lane {
    entries: VecDeque<Arc<Entry>>,
    bytes: usize,
}

/// The ring's end of a follow (see [`follow`]).
#[derive(Debug)]
pub struct FollowSender {
    tx: mpsc::Sender<Arc<Entry>>,
    waiting: Arc<AtomicUsize>,
}

/// A follower's end: the entries printed after its snapshot, in order.
#[derive(Debug)]
pub struct Follow {
    rx: mpsc::Receiver<Arc<Entry>>,
    waiting: Arc<AtomicUsize>,
}

/// A new follow, for [`Ring::snapshot`].
pub fn follow() -> (FollowSender, Follow) {
    follow_with(FOLLOWER_QUEUE)
}

fn follow_with(entries: usize) -> (FollowSender, Follow) {
    let (tx, rx) = mpsc::channel(entries);
    let waiting = Arc::new(AtomicUsize::new(0));
    let sender = FollowSender {
        tx,
        waiting: Arc::clone(&waiting),
    };
    (sender, Follow { rx, waiting })
}

impl Follow {
    fn taken(&self, entry: Arc<Entry>) -> Arc<Entry> {
        self.waiting.fetch_sub(cost(&entry.item), Ordering::Relaxed);
        entry
    }

    /// The next entry; `None` once the ring let go of this follow.
    pub async fn recv(&mut self) -> Option<Arc<Entry>> {
        let entry = self.rx.recv().await?;
        Some(self.taken(entry))
    }

    /// The next entry if one waits.
    pub fn try_recv(&mut self) -> Option<Arc<Entry>> {
        let entry = self.rx.try_recv().ok()?;
        Some(self.taken(entry))
    }
}

#[derive(Debug)]
struct Follower {
    tx: mpsc::Sender<Arc<Entry>>,
    waiting: Arc<AtomicUsize>,
    /// The instances it follows (`None`: all).
    keys: Option<Vec<Key>>,
    dropped: u64,
}

#[derive(Debug, Default)]
struct Inner {
    next: u64,
    idents: Vec<Option<Ident>>,
    lanes: Vec<Lane>,
    /// Lanes that hold output.
    active: usize,
    system: VecDeque<Arc<Entry>>,
    followers: Vec<Follower>,
}

/// The ring, shared by the printer (which records) and the control server
/// (which reads).
#[derive(Debug)]
pub struct Ring {
    inner: Mutex<Inner>,
    lane_bytes: usize,
    total_bytes: usize,
}

impl Default for Ring {
    fn default() -> Self {
        Ring::with_lane_bytes(LANE_BYTES)
    }
}

/// What an entry costs: its bytes and a little for the bookkeeping.
fn cost(item: &Item) -> usize {
    match item {
        Item::Output { chunk, .. } => chunk.data.capacity() + 64,
        _ => 64,
    }
}

/// The lines in a chunk.
fn line_count(chunk: &Chunk) -> usize {
    memchr::memchr_iter(b'\n', &chunk.data).count() + usize::from(chunk.tail != Tail::Lines)
}

impl Ring {
    /// A ring keeping `lane_bytes` of output per instance.
    pub fn with_lane_bytes(lane_bytes: usize) -> Self {
        Ring {
            inner: Mutex::new(Inner::default()),
            lane_bytes,
            total_bytes: TOTAL_BYTES.max(lane_bytes),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // The printer records and readers copy: a panic in either leaves
        // nothing half-changed that matters, so a poisoned lock is used on.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a message the printer has written. The buffers of the
    /// entries it lets go of (and of a short chunk, which is copied) go to
    /// `recycle`, for another read.
    pub fn record(&self, message: Message, mut recycle: impl FnMut(Vec<u8>)) {
        let item = match message {
            Message::Register(ident) => Item::Register(ident),
            Message::Output {
                key,
                stream,
                mut chunk,
                permit,
            } => {
                drop(permit);
                if chunk.data.capacity() > 2 * chunk.data.len() + 4096 {
                    // A large read buffer holding a few lines: keep the
                    // lines, give the buffer back.
                    let read = std::mem::take(&mut chunk.data);
                    chunk.data = read.as_slice().to_vec();
                    recycle(read);
                }
                Item::Output { key, stream, chunk }
            }
            Message::Notice(notice) => Item::Notice(notice),
        };
        let mut inner = self.lock();
        inner.next += 1;
        let entry = Arc::new(Entry {
            seq: inner.next,
            time: SystemTime::now(),
            item,
        });
        match &entry.item {
            Item::Register(ident) => {
                let i = ident.key.index();
                if inner.idents.len() <= i {
                    inner.idents.resize_with(i + 1, || None);
                }
                inner.idents[i] = Some(ident.clone());
            }
            Item::Output { key, .. } => {
                let i = key.index();
                if inner.lanes.len() <= i {
                    inner.lanes.resize_with(i + 1, Lane::default);
                }
                if inner.lanes[i].entries.is_empty() {
                    inner.active += 1;
                }
                let cap = self.lane_bytes.min(self.total_bytes / inner.active.max(1));
                let lane = &mut inner.lanes[i];
                lane.bytes += cost(&entry.item);
                lane.entries.push_back(Arc::clone(&entry));
                while lane.bytes > cap && lane.entries.len() > 1 {
                    if let Some(old) = lane.entries.pop_front() {
                        lane.bytes -= cost(&old.item);
                        // Unless a follower still holds it.
                        if let Ok(Entry {
                            item: Item::Output { chunk, .. },
                            ..
                        }) = Arc::try_unwrap(old)
                        {
                            recycle(chunk.data);
                        }
                    }
                }
            }
            Item::Notice(_) | Item::Gap(_) => {
                inner.system.push_back(Arc::clone(&entry));
                if inner.system.len() > SYSTEM_ENTRIES {
                    inner.system.pop_front();
                }
            }
        }
        if !inner.followers.is_empty() {
            let seq = inner.next;
            inner.followers.retain_mut(|f| deliver(f, &entry, seq));
        }
    }

    /// The last `lines` lines of each instance in `keys` (all when
    /// `None`) and procrun's last `lines` messages that concern them, in
    /// printing order. With `follow`, the channel gets every entry recorded
    /// from now on (no gap, no repeat).
    pub fn snapshot(
        &self,
        keys: Option<&[Key]>,
        lines: usize,
        follow: Option<FollowSender>,
    ) -> Snapshot {
        let mut inner = self.lock();
        let wanted = |k: Key| keys.is_none_or(|ks| ks.contains(&k));
        let mut entries = Vec::new();
        for (i, lane) in inner.lanes.iter().enumerate() {
            if !wanted(Key(i as u32)) {
                continue;
            }
            let mut left = lines;
            for entry in lane.entries.iter().rev() {
                if left == 0 {
                    break;
                }
                let Item::Output { chunk, .. } = &entry.item else {
                    continue;
                };
                let n = line_count(chunk);
                let skip = n.saturating_sub(left);
                left -= n - skip;
                entries.push((Arc::clone(entry), skip));
            }
        }
        let system: Vec<&Arc<Entry>> = inner
            .system
            .iter()
            .rev()
            .filter(|e| match &e.item {
                Item::Notice(n) => keys.is_none_or(|ks| concerns(n, ks)),
                _ => false,
            })
            .take(lines)
            .collect();
        entries.extend(system.into_iter().map(|e| (Arc::clone(e), 0)));
        entries.sort_by_key(|(e, _)| e.seq);
        if let Some(FollowSender { tx, waiting }) = follow {
            inner.followers.push(Follower {
                tx,
                waiting,
                keys: keys.map(<[Key]>::to_vec),
                dropped: 0,
            });
        }
        Snapshot {
            idents: inner.idents.iter().flatten().cloned().collect(),
            entries,
        }
    }

    /// How many followers are attached (for tests and `ps`).
    pub fn followers(&self) -> usize {
        self.lock().followers.len()
    }

    /// Ends every follow: their channels close once drained.
    pub fn close_followers(&self) {
        self.lock().followers.clear();
    }
}

/// Whether a notice is about one of `keys`, or about procrun as a whole.
fn concerns(notice: &Notice, keys: &[Key]) -> bool {
    let subjects = notice.keys();
    subjects.is_empty() || subjects.iter().any(|k| keys.contains(k))
}

/// Offers `entry` to a follower; false once the follower is gone.
fn deliver(f: &mut Follower, entry: &Arc<Entry>, seq: u64) -> bool {
    let relevant = match (&entry.item, &f.keys) {
        (_, None) | (Item::Register(_), _) => true,
        (Item::Output { key, .. }, Some(keys)) => keys.contains(key),
        (Item::Notice(n), Some(keys)) => concerns(n, keys),
        (Item::Gap(_), _) => false,
    };
    if !relevant {
        return !f.tx.is_closed();
    }
    if f.tx.is_closed() {
        return false;
    }
    // Room for the entry, and before it for the gap to report: else this
    // one is left out too. Only the printer sends, so the room seen here
    // is there when sending.
    let bytes = cost(&entry.item);
    let gap = (f.dropped > 0).then(|| {
        Arc::new(Entry {
            seq,
            time: entry.time,
            item: Item::Gap(f.dropped),
        })
    });
    let needed = bytes + gap.as_ref().map_or(0, |g| cost(&g.item));
    let slots = 1 + usize::from(gap.is_some());
    if f.tx.capacity() < slots || f.waiting.load(Ordering::Relaxed) + needed > FOLLOWER_BYTES {
        f.dropped += 1;
        return true;
    }
    // Counted before they can be taken, so the count never goes below 0.
    f.waiting.fetch_add(needed, Ordering::Relaxed);
    if let Some(gap) = gap {
        if f.tx.try_send(gap).is_err() {
            return false;
        }
        f.dropped = 0;
    }
    if f.tx.try_send(Arc::clone(entry)).is_err() {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::printer::tests::{ident, output};

    fn lines_of(snapshot: &Snapshot) -> Vec<String> {
        let mut all = Vec::new();
        for (entry, skip) in &snapshot.entries {
            match &entry.item {
                Item::Output { key, chunk, .. } => {
                    let mut n = 0;
                    chunk.for_each_line(|line, _| {
                        n += 1;
                        if n > *skip {
                            all.push(format!("{}:{}", key.0, String::from_utf8_lossy(line)));
                        }
                    });
                }
                Item::Notice(notice) => all.push(notice.text(&|k| format!("#{}", k.0))),
                _ => {}
            }
        }
        all
    }

    #[test]
    fn keeps_the_last_lines_per_instance_in_printing_order() {
        let ring = Ring::default();
        ring.record(Message::Register(ident(0, "web.1", 0)), drop);
        ring.record(Message::Register(ident(1, "worker.1", 1)), drop);
        ring.record(output(0, Stream::Stdout, b"a\nb\nc\n", Tail::Lines), drop);
        ring.record(output(1, Stream::Stderr, b"x\n", Tail::Lines), drop);
        ring.record(Message::Notice(Notice::GaveUp), drop);
        ring.record(output(0, Stream::Stdout, b"d\n", Tail::Lines), drop);
        let all = ring.snapshot(None, 2, None);
        assert_eq!(all.idents.len(), 2);
        assert_eq!(
            lines_of(&all),
            [
                "0:c",
                "1:x",
                "processes still not gone after SIGKILL; giving up on them",
                "0:d"
            ]
        );
        let web = ring.snapshot(Some(&[Key(0)]), 10, None);
        assert_eq!(
            lines_of(&web),
            [
                "0:a",
                "0:b",
                "0:c",
                "processes still not gone after SIGKILL; giving up on them",
                "0:d"
            ],
            "notices about no instance in particular are included"
        );
    }

    #[test]
    fn memory_is_bounded_per_instance() {
        let ring = Ring::with_lane_bytes(1000);
        for i in 0..100 {
            ring.record(
                output(
                    0,
                    Stream::Stdout,
                    format!("{i:0>99}\n").as_bytes(),
                    Tail::Lines,
                ),
                drop,
            );
        }
        let kept = ring.snapshot(None, 1000, None);
        assert!(kept.entries.len() < 10, "{}", kept.entries.len());
        assert_eq!(
            lines_of(&kept).last().map(String::as_str),
            Some(&*format!("0:{:0>99}", 99))
        );
    }

    #[test]
    fn many_instances_share_the_total() {
        let ring = Ring {
            inner: Mutex::new(Inner::default()),
            lane_bytes: 10_000,
            total_bytes: 20_000,
        };
        for round in 0..50 {
            for key in 0..10 {
                let line = format!("{round:0>199}\n");
                ring.record(
                    output(key, Stream::Stdout, line.as_bytes(), Tail::Lines),
                    drop,
                );
            }
        }
        let inner = ring.lock();
        let total: usize = inner.lanes.iter().map(|l| l.bytes).sum();
        assert!(total <= 20_000 + 10 * 300, "{total}");
        assert!(
            inner.lanes.iter().all(|l| l.entries.len() >= 5),
            "each keeps its share"
        );
    }

    #[test]
    fn followers_get_what_comes_after_their_snapshot_and_gaps_when_slow() {
        let ring = Ring::default();
        ring.record(output(0, Stream::Stdout, b"old\n", Tail::Lines), drop);
        let (tx, mut rx) = follow_with(2);
        let snap = ring.snapshot(None, 10, Some(tx));
        assert_eq!(lines_of(&snap), ["0:old"]);
        for i in 0..5 {
            ring.record(
                output(0, Stream::Stdout, format!("{i}\n").as_bytes(), Tail::Lines),
                drop,
            );
        }
        let first = rx.try_recv().expect("an entry");
        assert!(matches!(first.item, Item::Output { .. }));
        let _second = rx.try_recv().expect("an entry");
        assert!(rx.try_recv().is_none(), "the rest were dropped");
        ring.record(output(0, Stream::Stdout, b"late\n", Tail::Lines), drop);
        match rx.try_recv().expect("a gap").item {
            Item::Gap(n) => assert_eq!(n, 3),
            ref other => panic!("expected a gap, got {other:?}"),
        }
        drop(rx);
        ring.record(output(0, Stream::Stdout, b"gone\n", Tail::Lines), drop);
        assert_eq!(ring.followers(), 0, "a closed follower is dropped");
    }

    #[test]
    fn a_slow_follower_holds_at_most_its_bytes_of_output() {
        let ring = Ring::default();
        let (tx, mut rx) = follow();
        let _ = ring.snapshot(None, 0, Some(tx));
        let line = vec![b'x'; 1024 * 1024 - 1];
        let big = || {
            let mut data = line.clone();
            data.push(b'\n');
            output(0, Stream::Stdout, &data, Tail::Lines)
        };
        for _ in 0..20 {
            ring.record(big(), drop);
        }
        let mut held = 0;
        while let Some(entry) = rx.try_recv() {
            assert!(
                matches!(entry.item, Item::Output { .. }),
                "{:?}",
                entry.item
            );
            held += 1;
        }
        assert!((1..=8).contains(&held), "{held} MiB held");
        // Taken: room again, and the gap says how many were left out.
        ring.record(big(), drop);
        match rx.try_recv().expect("a gap").item {
            Item::Gap(n) => assert_eq!(n, 20 - held),
            ref other => panic!("expected a gap, got {other:?}"),
        }
        assert!(rx.try_recv().is_some(), "and the new entry");
    }
}
