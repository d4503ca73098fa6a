//! The folder: writes what the commit log made durable into the store's tables, on
//! a thread of its own, a batch at a time.
//!
//! Why batches: each fold writes every record once however many commits changed it
//! (a session's ten events are one write), and the pages of one table once however
//! many records landed on them. A fold waits [`FOLD_EVERY`] after the first entry it
//! holds (or until it holds [`FOLD_BYTES`]), so under load a fold covers thousands
//! of events, and an idle store is folded within that time of its last commit.
//!
//! The folder knows nothing of redb: it is given the function that writes a
//! [`Pending`] (and frees the log segments it covered). When that fails, the folder
//! stops and the store's next commit reports why; the log still holds everything,
//! and the next open folds it.

use foldhash::HashMap;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::log::{Entry, Key, Meta};

/// How long the folder holds entries after the first one before writing them.
pub(crate) const FOLD_EVERY: Duration = Duration::from_secs(2);

/// A fold starts early once the records it holds reach this many bytes.
pub(crate) const FOLD_BYTES: usize = 64 << 20;

/// Log entries not yet in the tables, reduced to the last write of each record.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    /// Each record's last write (`None`: removed), history steps aside.
    pub records: HashMap<Key, Option<Vec<u8>>>,
    /// History steps, by tenant and session: kept apart so that a trim finds a
    /// session's steps at once and a step's key is not a map key of its own.
    pub steps: HashMap<(String, String), Steps>,
    /// The counters after the last entry.
    pub meta: Meta,
    /// The last entry's number.
    pub last: u64,
    bytes: usize,
}

/// What a fold does to one session's history steps.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Steps {
    /// Steps numbered below this are removed first (0: none).
    pub trim: u64,
    /// Then these are written, by number, in order.
    pub written: Vec<(u64, Vec<u8>)>,
}

impl Steps {
    fn trim(&mut self, below: u64) {
        self.trim = self.trim.max(below);
        // The steps written before the trim that it removes are not written.
        let kept = self.written.partition_point(|(n, _)| *n < below);
        self.written.drain(..kept);
    }

    fn write(&mut self, n: u64, value: Vec<u8>) {
        match self.written.last() {
            Some((last, _)) if *last >= n => {
                match self.written.binary_search_by_key(&n, |(m, _)| *m) {
                    Ok(at) => self.written[at].1 = value,
                    Err(at) => self.written.insert(at, (n, value)),
                }
            }
            _ => self.written.push((n, value)),
        }
    }
}

impl Pending {
    /// Adds `entry`, which comes after every entry already held.
    pub(crate) fn absorb(&mut self, entry: Entry) {
        for (key, value) in entry.ops {
            self.bytes += value.as_ref().map_or(0, Vec::len);
            match key {
                Key::Trim(tenant, session) => {
                    let below = trim_bound(value.as_deref());
                    self.steps.entry((tenant, session)).or_default().trim(below);
                }
                Key::Step(tenant, session, n) => {
                    let steps = self.steps.entry((tenant, session)).or_default();
                    match value {
                        Some(value) => steps.write(n, value),
                        // Not written by the store: a removal is a trim.
                        None => steps.written.retain(|(m, _)| *m != n),
                    }
                }
                key => {
                    self.records.insert(key, value);
                }
            }
        }
        self.meta = entry.meta;
        self.last = entry.seq;
    }

    /// Whether no entry is held.
    pub(crate) fn is_empty(&self) -> bool {
        self.last == 0
    }

    /// The records in key order (the tables' order: a fold visits each page once).
    pub(crate) fn sorted_records(&self) -> Vec<(&Key, Option<&[u8]>)> {
        let mut records: Vec<_> = self
            .records
            .iter()
            .map(|(k, v)| (k, v.as_deref()))
            .collect();
        records.sort_unstable_by(|a, b| a.0.cmp(b.0));
        records
    }

    /// The sessions' steps in key order.
    pub(crate) fn sorted_steps(&self) -> Vec<(&(String, String), &Steps)> {
        let mut steps: Vec<_> = self.steps.iter().collect();
        steps.sort_unstable_by(|a, b| a.0.cmp(b.0));
        steps
    }
}

/// The bound of a [`Key::Trim`]'s value: steps numbered below it go. A value that is
/// not 8 bytes removes nothing.
pub(crate) fn trim_bound(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|v| <[u8; 8]>::try_from(v).ok())
        .map_or(0, u64::from_le_bytes)
}

/// What the folder is told.
enum Message {
    /// A durable entry, to fold.
    Entry(Entry),
    /// Fold what is held now, then answer.
    Flush(Sender<()>),
}

/// The folding thread of one store.
pub(crate) struct Folder {
    sender: Option<Sender<Message>>,
    thread: Option<JoinHandle<()>>,
    failed: Arc<Mutex<Option<String>>>,
}

impl Folder {
    /// Starts the thread; `fold` writes a [`Pending`] into the tables.
    pub(crate) fn start(
        fold: impl FnMut(&Pending) -> Result<(), String> + Send + 'static,
    ) -> std::io::Result<Folder> {
        let (sender, receiver) = mpsc::channel();
        let failed = Arc::new(Mutex::new(None));
        let shared = failed.clone();
        let thread = std::thread::Builder::new()
            .name("autoclose-fold".into())
            .spawn(move || run(&receiver, fold, &shared))?;
        Ok(Folder {
            sender: Some(sender),
            thread: Some(thread),
            failed,
        })
    }

    /// Why the folder stopped, if it did.
    pub(crate) fn failure(&self) -> Option<String> {
        self.failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Hands over a durable entry.
    pub(crate) fn fold(&self, entry: Entry) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Message::Entry(entry));
        }
    }

    /// Waits until everything handed over is in the tables (or the folder failed).
    pub(crate) fn flush(&self) {
        let (reply, answer) = mpsc::channel();
        if let Some(sender) = &self.sender
            && sender.send(Message::Flush(reply)).is_ok()
        {
            let _ = answer.recv();
        }
    }
}

impl Drop for Folder {
    /// Folds what is held, then ends the thread: a store closed cleanly leaves an
    /// empty log.
    fn drop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(
    receiver: &Receiver<Message>,
    mut fold: impl FnMut(&Pending) -> Result<(), String>,
    failed: &Mutex<Option<String>>,
) {
    let mut pending = Pending::default();
    let mut since = Instant::now();
    loop {
        let received = if pending.is_empty() {
            receiver.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            receiver.recv_timeout(FOLD_EVERY.saturating_sub(since.elapsed()))
        };
        let (stop, flushed) = match received {
            Ok(Message::Entry(entry)) => {
                if pending.is_empty() {
                    since = Instant::now();
                }
                pending.absorb(entry);
                (false, None)
            }
            Ok(Message::Flush(reply)) => (false, Some(reply)),
            Err(RecvTimeoutError::Timeout) => (false, None),
            Err(RecvTimeoutError::Disconnected) => (true, None),
        };
        let due = stop
            || flushed.is_some()
            || since.elapsed() >= FOLD_EVERY
            || pending.bytes >= FOLD_BYTES;
        if due && !pending.is_empty() {
            if let Err(e) = fold(&pending) {
                tracing::error!(
                    "{e}: the log keeps what was committed; it is folded at the next start"
                );
                *failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                return;
            }
            pending = Pending::default();
        }
        if let Some(reply) = flushed {
            let _ = reply.send(());
        }
        if stop {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, ops: Vec<(Key, Option<Vec<u8>>)>) -> Entry {
        Entry {
            seq,
            meta: Meta {
                now: seq,
                ..Meta::default()
            },
            ops,
        }
    }

    #[test]
    fn the_last_write_of_each_record_wins() {
        let a = || Key::Session("acme".into(), "a".into());
        let mut pending = Pending::default();
        pending.absorb(entry(
            1,
            vec![(a(), Some(b"1".to_vec())), (Key::Delivery(3), None)],
        ));
        pending.absorb(entry(2, vec![(a(), None), (a(), Some(b"2".to_vec()))]));
        pending.absorb(entry(3, vec![(Key::Delivery(3), Some(b"d".to_vec()))]));
        assert_eq!(pending.last, 3);
        assert_eq!(pending.meta.now, 3);
        let sorted: Vec<_> = pending
            .sorted_records()
            .into_iter()
            .map(|(k, v)| (k.clone(), v.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(
            sorted,
            vec![
                (a(), Some(b"2".to_vec())),
                (Key::Delivery(3), Some(b"d".to_vec()))
            ]
        );
    }

    #[test]
    fn a_trim_drops_the_steps_it_removes_and_keeps_the_later_ones() {
        let step = |n: u64| (Key::Step("acme".into(), "a".into(), n), Some(vec![n as u8]));
        let trim = |below: u64| {
            (
                Key::Trim("acme".into(), "a".into()),
                Some(below.to_le_bytes().to_vec()),
            )
        };
        let mut pending = Pending::default();
        pending.absorb(entry(1, vec![step(0), step(1), step(2), trim(2)]));
        pending.absorb(entry(2, vec![trim(u64::MAX), step(0)]));
        pending.absorb(entry(3, vec![trim(1), step(2), step(1)]));
        let steps = &pending.steps[&("acme".to_owned(), "a".to_owned())];
        assert_eq!(steps.trim, u64::MAX, "the highest bound is kept");
        assert_eq!(steps.written, vec![(1, vec![1]), (2, vec![2])], "in order");
    }

    #[test]
    fn a_flush_folds_what_is_held_and_a_failure_is_kept() {
        let folded = Arc::new(Mutex::new(Vec::new()));
        let seen = folded.clone();
        let folder = Folder::start(move |pending: &Pending| {
            seen.lock().expect("lock").push(pending.last);
            if pending.last >= 3 {
                Err("disk full".to_owned())
            } else {
                Ok(())
            }
        })
        .expect("start");
        folder.fold(entry(1, Vec::new()));
        folder.fold(entry(2, Vec::new()));
        folder.flush();
        assert_eq!(folded.lock().expect("lock").last(), Some(&2), "both folded");
        assert_eq!(folder.failure(), None);
        folder.fold(entry(3, Vec::new()));
        folder.flush();
        assert_eq!(folder.failure().as_deref(), Some("disk full"));
        folder.fold(entry(4, Vec::new()));
        folder.flush();
        drop(folder);
        assert_eq!(
            folded.lock().expect("lock").last(),
            Some(&3),
            "stopped after it failed"
        );
    }

    #[test]
    fn closing_the_folder_folds_what_it_holds() {
        let folded = Arc::new(Mutex::new(Vec::new()));
        let seen = folded.clone();
        let folder = Folder::start(move |pending: &Pending| {
            seen.lock().expect("lock").push(pending.last);
            Ok(())
        })
        .expect("start");
        folder.fold(entry(1, Vec::new()));
        drop(folder);
        assert_eq!(*folded.lock().expect("lock"), vec![1]);
    }
}
