//! The embedded store: one redb file, with a commit log in front of it.
//!
//! Why redb: it is pure Rust (no C toolchain, nothing to install or run), its
//! transactions are ACID with copy-on-write pages and checksums, and a process
//! killed mid-write leaves the last committed state (it repairs itself on the next
//! open).
//!
//! Why a log in front of it: a commit appends the batch's records to the log
//! ([`crate::log`]) and syncs it, which is what makes it durable; the folder
//! ([`crate::fold`]) writes them into the redb tables on its own thread, a couple of
//! seconds' worth at a time, recording the last entry folded in the same transaction. An open
//! folds whatever the log holds after that entry before anything is read, so the
//! tables are all a reader ever needs.
//!
//! Records are JSON (versioned by [`RECORD_VERSION`]): a few hundred bytes each, easy
//! to inspect, and a damaged one is reported with its table and key.

mod steps;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use autoclose_runtime::RequestId;
use serde::de::DeserializeOwned;

use crate::fold::{Folder, Pending};
use crate::log::{self, Entry, Key, Log, Meta, Op};
use crate::{Batch, Store, StoreError, Stored};
use autoclose_core::records::{
    CallbackRecord, DeliveryRecord, HeldRecord, RECORD_VERSION, SessionRecord, Snapshot,
};
use steps::{Histories, STEPS};

/// File name of the store inside the data directory.
pub const FILE_NAME: &str = "autoclose.redb";

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const SESSIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("sessions");
const DELIVERIES: TableDefinition<u64, &[u8]> = TableDefinition::new("deliveries");
const CALLBACKS: TableDefinition<u64, &[u8]> = TableDefinition::new("callbacks");
const HELD: TableDefinition<&str, &[u8]> = TableDefinition::new("held");

const VERSION_KEY: &str = "version";
const NEXT_REQUEST_KEY: &str = "next_request";
const NEXT_CALLBACK_KEY: &str = "next_callback";
const NOW_KEY: &str = "now";
/// The last log entry whose records are in the tables.
const FOLDED_KEY: &str = "folded";

/// The store in `dir/autoclose.redb`.
pub struct RedbStore {
    db: Arc<Database>,
    path: PathBuf,
    log: Log,
    /// Why the log cannot be appended to any more (a write or sync failed).
    broken: Option<String>,
    folder: Folder,
    /// What the log holds of each session's history.
    histories: Histories,
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`, creating the directory if needed. A file
    /// that is not a store of this version is an error, never a reset.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_file(dir, FILE_NAME)
    }

    /// Opens (or creates) the store `dir/name`, as [`RedbStore::open`], and folds
    /// what its log holds.
    pub fn open_file(dir: &Path, name: &str) -> Result<Self, StoreError> {
        Self::open_with(dir, name, true)
    }

    /// Opens the store; with `fold` false nothing is folded after the open (the tests'
    /// stand-in for a process killed before its first fold).
    fn open_with(dir: &Path, name: &str, fold: bool) -> Result<Self, StoreError> {
        let (db, path) = create_database(dir, name)?;
        let db = Arc::new(db);
        check_version(&db, &path)?;
        let next_seq = recover(&db, &path, dir, name)?;
        let log = Log::start(dir, name, next_seq).map_err(|e| io(&path, "start the log", e))?;
        let folding = (db.clone(), path.clone(), dir.to_owned(), name.to_owned());
        let folder = Folder::start(move |pending: &Pending| {
            let (db, path, dir, name) = &folding;
            if !fold {
                return Ok(());
            }
            fold_into(db, path, pending).map_err(|e| e.to_string())?;
            if let Err(e) = log::remove_folded(dir, name, pending.last) {
                tracing::warn!(store = %path.display(), "cannot remove folded log segments: {e}");
            }
            Ok(())
        })
        .map_err(|e| io(&path, "start the folder", e))?;
        Ok(RedbStore {
            db,
            path,
            log,
            broken: None,
            folder,
            histories: Histories::default(),
        })
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, operation: &'static str, e: impl std::fmt::Display) -> StoreError {
        io(&self.path, operation, e)
    }

    fn corrupt(
        &self,
        table: &'static str,
        key: &str,
        reason: impl std::fmt::Display,
    ) -> StoreError {
        corrupt(&self.path, table, key, reason)
    }

    fn decode<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key: &str,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| self.corrupt(table, key, e))
    }
}

fn io(path: &Path, operation: &'static str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Io {
        path: path.to_owned(),
        operation,
        reason: e.to_string(),
    }
}

fn corrupt(
    path: &Path,
    table: &'static str,
    key: &str,
    reason: impl std::fmt::Display,
) -> StoreError {
    StoreError::Corrupt {
        path: path.to_owned(),
        table,
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

/// Stamps a new store with the record version, or checks an existing one's.
fn check_version(db: &Database, path: &Path) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(|e| io(path, "begin", e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| io(path, "open meta", e))?;
        let found = meta
            .get(VERSION_KEY)
            .map_err(|e| io(path, "read meta", e))?
            .map(|v| v.value());
        match found {
            Some(found) if found == u64::from(RECORD_VERSION) => {}
            Some(found) => {
                return Err(StoreError::Version {
                    path: path.to_owned(),
                    found: u32::try_from(found).unwrap_or(u32::MAX),
                    expected: RECORD_VERSION,
                });
            }
            None => {
                let empty = meta.is_empty().map_err(|e| io(path, "read meta", e))?;
                if !empty {
                    return Err(corrupt(path, "meta", VERSION_KEY, "the version is missing"));
                }
                meta.insert(VERSION_KEY, u64::from(RECORD_VERSION))
                    .map_err(|e| io(path, "write meta", e))?;
            }
        }
        // Create the other tables so that reads find them.
        txn.open_table(SESSIONS)
            .map_err(|e| io(path, "open sessions", e))?;
        txn.open_table(DELIVERIES)
            .map_err(|e| io(path, "open deliveries", e))?;
        txn.open_table(CALLBACKS)
            .map_err(|e| io(path, "open callbacks", e))?;
        txn.open_table(HELD).map_err(|e| io(path, "open held", e))?;
        txn.open_table(STEPS)
            .map_err(|e| io(path, "open history steps", e))?;
    }
    txn.commit().map_err(|e| io(path, "commit", e))
}

/// Folds the log entries after the last folded one into the tables, removes the
/// segments, and gives the number the next entry gets.
fn recover(db: &Database, path: &Path, dir: &Path, name: &str) -> Result<u64, StoreError> {
    let folded = {
        let txn = db.begin_read().map_err(|e| io(path, "begin", e))?;
        let meta = txn.open_table(META).map_err(|e| io(path, "open meta", e))?;
        meta.get(FOLDED_KEY)
            .map_err(|e| io(path, "read meta", e))?
            .map_or(0, |v| v.value())
    };
    let segments = log::segments(dir, name).map_err(|e| io(path, "list the log", e))?;
    let mut pending = Pending::default();
    let mut last = folded;
    for (index, (_, segment_path)) in segments.iter().enumerate() {
        let bytes = std::fs::read(segment_path).map_err(|e| io(segment_path, "read the log", e))?;
        let segment = log::read_segment(segment_path, &bytes, index + 1 == segments.len())
            .map_err(|d| corrupt(&d.path, "log", &format!("byte {}", d.offset), d.reason))?;
        if let Some((at, cut)) = segment.torn {
            tracing::warn!(
                segment = %segment_path.display(),
                at,
                bytes = cut,
                "the log ends in a torn write (a commit that never returned): cut off"
            );
        }
        for entry in segment.entries {
            if entry.seq <= folded {
                continue;
            }
            if entry.seq != last + 1 {
                return Err(corrupt(
                    segment_path,
                    "log",
                    &format!("entry {}", entry.seq),
                    format_args!(
                        "the log jumps from entry {last} to entry {}: entries are missing",
                        entry.seq
                    ),
                ));
            }
            last = entry.seq;
            pending.absorb(entry);
        }
    }
    if !pending.is_empty() {
        fold_into(db, path, &pending)?;
        tracing::info!(
            store = %path.display(),
            entries = last - folded,
            "folded the commit log into the store"
        );
    }
    for (_, segment_path) in &segments {
        std::fs::remove_file(segment_path).map_err(|e| io(segment_path, "remove the log", e))?;
    }
    Ok(last + 1)
}

/// Writes `pending` into the tables in one transaction, with the last entry's
/// number: all of it or none.
fn fold_into(db: &Database, path: &Path, pending: &Pending) -> Result<(), StoreError> {
    let txn = db.begin_write().map_err(|e| io(path, "begin", e))?;
    {
        let mut meta = txn.open_table(META).map_err(|e| io(path, "open meta", e))?;
        for (key, value) in [
            (NEXT_REQUEST_KEY, pending.meta.next_request),
            (NOW_KEY, pending.meta.now),
            (NEXT_CALLBACK_KEY, pending.meta.next_callback),
            (FOLDED_KEY, pending.last),
        ] {
            meta.insert(key, value)
                .map_err(|e| io(path, "write meta", e))?;
        }
        let mut sessions = txn
            .open_table(SESSIONS)
            .map_err(|e| io(path, "open sessions", e))?;
        let mut deliveries = txn
            .open_table(DELIVERIES)
            .map_err(|e| io(path, "open deliveries", e))?;
        let mut callbacks = txn
            .open_table(CALLBACKS)
            .map_err(|e| io(path, "open callbacks", e))?;
        let mut held = txn.open_table(HELD).map_err(|e| io(path, "open held", e))?;
        let mut rows = txn
            .open_table(STEPS)
            .map_err(|e| io(path, "open history steps", e))?;
        for (key, value) in pending.sorted_records() {
            let written = match key {
                Key::Session(tenant, session) => {
                    let key = (tenant.as_str(), session.as_str());
                    match value {
                        Some(value) => sessions.insert(key, value).map(drop),
                        None => sessions.remove(key).map(drop),
                    }
                }
                Key::Delivery(request) => match value {
                    Some(value) => deliveries.insert(*request, value).map(drop),
                    None => deliveries.remove(*request).map(drop),
                },
                Key::Callback(seq) => match value {
                    Some(value) => callbacks.insert(*seq, value).map(drop),
                    None => callbacks.remove(*seq).map(drop),
                },
                Key::Held(tenant) => match value {
                    Some(value) => held.insert(tenant.as_str(), value).map(drop),
                    None => held.remove(tenant.as_str()).map(drop),
                },
                Key::Step(..) | Key::Trim(..) => Ok(()),
            };
            written.map_err(|e| io(path, "write a record", e))?;
        }
        // A session's trim before its steps: a step written after a trim in the log
        // is written after it here.
        for ((tenant, session), pending) in pending.sorted_steps() {
            steps::write(&mut rows, (tenant, session), pending)
                .map_err(|e| io(path, "write history steps", e))?;
        }
    }
    txn.commit().map_err(|e| io(path, "commit", e))
}

impl RedbStore {
    /// The log entry of `batch`: its records in the order the batch gives them
    /// (removals before the records written after them), each encoded once, and of
    /// each session's history only the steps added since it was last written.
    fn entry_of(&mut self, seq: u64, batch: &Batch) -> Entry {
        let core = &batch.core;
        let mut ops: Vec<Op> = Vec::with_capacity(
            2 * core.forgotten.len()
                + 2 * core.sessions.len()
                + core.ended.len()
                + core.deliveries.len()
                + core.held.len()
                + batch.callbacks_ended.len()
                + batch.callbacks.len(),
        );
        for (tenant, session) in &core.forgotten {
            self.histories.forget(tenant, session, &mut ops);
        }
        for record in &core.sessions {
            self.histories.ops(record, &mut ops);
        }
        ops.extend(
            core.ended
                .iter()
                .map(|request| (Key::Delivery(request.0), None)),
        );
        ops.extend(
            core.deliveries
                .iter()
                .map(|record| (Key::Delivery(record.request.0), Some(encode(record)))),
        );
        ops.extend(core.held.iter().map(|record| {
            let value = (!record.events.is_empty()).then(|| encode(record));
            (Key::Held(record.tenant.clone()), value)
        }));
        ops.extend(
            batch
                .callbacks_ended
                .iter()
                .map(|seq| (Key::Callback(*seq), None)),
        );
        ops.extend(
            batch
                .callbacks
                .iter()
                .map(|record| (Key::Callback(record.seq), Some(encode(record)))),
        );
        Entry {
            seq,
            meta: Meta {
                next_request: core.next_request.0,
                now: core.now,
                next_callback: batch.next_callback,
            },
            ops,
        }
    }
}

/// Opens (or creates) the redb file `dir/name`, creating `dir` if needed.
pub(crate) fn create_database(dir: &Path, name: &str) -> Result<(Database, PathBuf), StoreError> {
    let path = dir.join(name);
    let open_error = |reason: String| StoreError::Open {
        path: path.clone(),
        reason,
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| open_error(format!("cannot create {}: {e}", dir.display())))?;
    let db = Database::create(&path).map_err(|e| open_error(e.to_string()))?;
    Ok((db, path))
}

fn encode<T: serde::Serialize>(record: &T) -> Vec<u8> {
    serde_json::to_vec(record).expect("records serialize")
}

impl Store for RedbStore {
    fn load(&self) -> Result<Stored, StoreError> {
        // Everything committed so far is in the tables before they are read.
        self.folder.flush();
        if let Some(reason) = self.folder.failure() {
            return Err(self.io("fold the log", reason));
        }
        let txn = self.db.begin_read().map_err(|e| self.io("begin", e))?;
        let meta = txn.open_table(META).map_err(|e| self.io("open meta", e))?;
        let read_meta = |key: &str| -> Result<u64, StoreError> {
            Ok(meta
                .get(key)
                .map_err(|e| self.io("read meta", e))?
                .map_or(0, |v| v.value()))
        };
        let mut stored = Stored {
            core: Snapshot {
                next_request: RequestId(read_meta(NEXT_REQUEST_KEY)?),
                now: read_meta(NOW_KEY)?,
                ..Snapshot::default()
            },
            next_callback: read_meta(NEXT_CALLBACK_KEY)?,
            callbacks: Vec::new(),
        };

        let sessions = txn
            .open_table(SESSIONS)
            .map_err(|e| self.io("open sessions", e))?;
        for entry in sessions.iter().map_err(|e| self.io("read sessions", e))? {
            let (key, value) = entry.map_err(|e| self.io("read sessions", e))?;
            let (tenant, session) = key.value();
            let name = format!("{tenant}/{session}");
            let record: SessionRecord = self.decode("sessions", &name, value.value())?;
            if record.tenant != tenant || record.session != session {
                return Err(self.corrupt("sessions", &name, "the record names another session"));
            }
            stored.core.sessions.push(record);
        }

        self.load_steps(&txn, &mut stored.core.sessions)?;

        let deliveries = txn
            .open_table(DELIVERIES)
            .map_err(|e| self.io("open deliveries", e))?;
        for entry in deliveries
            .iter()
            .map_err(|e| self.io("read deliveries", e))?
        {
            let (key, value) = entry.map_err(|e| self.io("read deliveries", e))?;
            let key = key.value();
            let record: DeliveryRecord =
                self.decode("deliveries", &key.to_string(), value.value())?;
            if record.request != RequestId(key) {
                return Err(self.corrupt(
                    "deliveries",
                    &key.to_string(),
                    "the record names another request",
                ));
            }
            stored.core.deliveries.push(record);
        }

        let callbacks = txn
            .open_table(CALLBACKS)
            .map_err(|e| self.io("open callbacks", e))?;
        for entry in callbacks.iter().map_err(|e| self.io("read callbacks", e))? {
            let (key, value) = entry.map_err(|e| self.io("read callbacks", e))?;
            let key = key.value();
            let record: CallbackRecord =
                self.decode("callbacks", &key.to_string(), value.value())?;
            if record.seq != key {
                return Err(self.corrupt(
                    "callbacks",
                    &key.to_string(),
                    "the record names another sequence number",
                ));
            }
            stored.callbacks.push(record);
        }

        let held = txn.open_table(HELD).map_err(|e| self.io("open held", e))?;
        for entry in held.iter().map_err(|e| self.io("read held", e))? {
            let (key, value) = entry.map_err(|e| self.io("read held", e))?;
            let tenant = key.value();
            let record: HeldRecord = self.decode("held", tenant, value.value())?;
            if record.tenant != tenant {
                return Err(self.corrupt("held", tenant, "the record names another tenant"));
            }
            stored.core.held.push(record);
        }
        Ok(stored)
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        if let Some(reason) = self.broken.clone().or_else(|| self.folder.failure()) {
            return Err(self.io("commit", reason));
        }
        let entry = self.entry_of(self.log.next_seq(), batch);
        if let Err(e) = self.log.append(&entry) {
            // What a failed append left is cut off at the next open; nothing is
            // appended after it.
            let reason = format!("the log could not be written ({e}); restart to resume");
            self.broken = Some(reason.clone());
            return Err(self.io("append to the log", reason));
        }
        self.folder.fold(entry);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "autoclose-store-{name}-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn what_is_committed_is_loaded_back_after_reopening() {
        let dir = temp_dir("roundtrip");
        crate::conformance::what_is_committed_is_loaded_back(|| {
            RedbStore::open(&dir).expect("open")
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn batch(sessions: Vec<SessionRecord>, forgotten: &[&str], now: u64) -> Batch {
        Batch {
            core: autoclose_core::records::Changes {
                sessions,
                forgotten: forgotten
                    .iter()
                    .map(|s| ("acme".to_owned(), (*s).to_owned()))
                    .collect(),
                deliveries: vec![crate::conformance::delivery(now)],
                next_request: RequestId(now + 1),
                now,
                ..Default::default()
            },
            next_callback: 5,
            ..Batch::default()
        }
    }

    /// Commits three batches with nothing folded, as if the process was killed
    /// after them: the tables are empty, everything is in the log.
    fn killed_after_three_commits(dir: &Path) {
        use crate::conformance::session;
        let mut store = RedbStore::open_with(dir, FILE_NAME, false).expect("open");
        store
            .commit(&batch(vec![session("s1", 2), session("s2", 0)], &[], 10))
            .expect("commit");
        store
            .commit(&batch(vec![session("s1", 1)], &["s2"], 20))
            .expect("commit");
        store
            .commit(&batch(vec![session("s3", 0)], &[], 30))
            .expect("commit");
        drop(store);
        let db = Database::create(dir.join(FILE_NAME)).expect("raw open");
        let txn = db.begin_read().expect("read");
        let sessions = txn.open_table(SESSIONS).expect("sessions");
        assert_eq!(sessions.len().expect("len"), 0, "nothing folded");
    }

    fn assert_all_three_loaded(store: &RedbStore) {
        use crate::conformance::session;
        let stored = store.load().expect("load");
        assert_eq!(
            stored.core.sessions,
            vec![session("s1", 1), session("s3", 0)]
        );
        let requests: Vec<u64> = stored.core.deliveries.iter().map(|d| d.request.0).collect();
        assert_eq!(requests, vec![10, 20, 30]);
        assert_eq!(stored.core.next_request, RequestId(31));
        assert_eq!(stored.core.now, 30);
        assert_eq!(stored.next_callback, 5);
    }

    #[test]
    fn what_only_the_log_holds_is_folded_at_the_next_open() {
        let dir = temp_dir("recover");
        killed_after_three_commits(&dir);
        let mut store = RedbStore::open(&dir).expect("open");
        assert_all_three_loaded(&store);
        assert_eq!(
            log::segments(&dir, FILE_NAME).expect("list").len(),
            1,
            "folded segments removed, one new one"
        );
        // Numbering goes on after the folded entries.
        assert_eq!(store.log.next_seq(), 4);
        store
            .commit(&batch(vec![crate::conformance::session("s4", 0)], &[], 40))
            .expect("commit");
        drop(store);
        let store = RedbStore::open(&dir).expect("reopen");
        assert_eq!(store.load().expect("load").core.sessions.len(), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_torn_last_append_is_cut_off_and_the_rest_kept() {
        let dir = temp_dir("torn");
        killed_after_three_commits(&dir);
        let segments = log::segments(&dir, FILE_NAME).expect("list");
        let (_, last) = segments.last().expect("a segment");
        let mut bytes = std::fs::read(last).expect("read");
        let torn: Vec<u8> = bytes[..40].to_vec();
        bytes.extend_from_slice(&torn);
        std::fs::write(last, &bytes).expect("write");
        let store = RedbStore::open(&dir).expect("open");
        assert_all_three_loaded(&store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_damaged_log_stops_the_open_and_is_left_alone() {
        let dir = temp_dir("damaged-log");
        killed_after_three_commits(&dir);
        let segments = log::segments(&dir, FILE_NAME).expect("list");
        let (_, segment) = segments.last().expect("a segment");
        let mut bytes = std::fs::read(segment).expect("read");
        bytes[60] ^= 0x01;
        std::fs::write(segment, &bytes).expect("write");
        let error = RedbStore::open(&dir).err().expect("refused");
        let text = error.to_string();
        let name = segment.file_name().and_then(|n| n.to_str()).expect("name");
        assert!(text.contains(name), "{text}");
        assert!(text.contains("table log, key byte 0"), "{text}");
        assert!(text.contains("checksum"), "{text}");
        assert_eq!(std::fs::read(segment).expect("read"), bytes, "left alone");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// `name` after `pushed` more steps, keeping at most `capacity`.
    fn grown(name: &str, pushed: u64, capacity: usize) -> SessionRecord {
        let mut record = crate::conformance::session(name, 1);
        let history = Arc::make_mut(record.history.as_mut().expect("a history"));
        let step = history.steps[0].clone();
        for i in 0..pushed {
            let mut step = step.clone();
            step.at = 10_000 + i;
            history.push(capacity, step);
        }
        record
    }

    fn step_rows(dir: &Path, session: &str) -> Vec<std::ops::Range<u64>> {
        let db = Database::create(dir.join(FILE_NAME)).expect("raw open");
        let txn = db.begin_read().expect("read");
        let steps = txn.open_table(STEPS).expect("steps");
        steps
            .iter()
            .expect("iter")
            .filter_map(|row| {
                let (key, _) = row.expect("row");
                let (_, s, first, end) = key.value();
                (s == session).then_some(first..end)
            })
            .collect()
    }

    /// Histories growing past their bound and a forgotten session, folded as they
    /// go (`fold`) or only at the next open: the same steps either way.
    fn histories_are_written_step_by_step(fold: bool) {
        let dir = temp_dir(if fold { "steps-folded" } else { "steps-log" });
        let mut store = RedbStore::open_with(&dir, FILE_NAME, fold).expect("open");
        store
            .commit(&batch(vec![grown("s1", 1, 4), grown("s2", 2, 4)], &[], 10))
            .expect("commit");
        store
            .commit(&batch(vec![grown("s1", 3, 4)], &[], 20))
            .expect("commit");
        store
            .commit(&batch(vec![grown("s1", 6, 4)], &["s2"], 30))
            .expect("commit");
        drop(store);
        let store = RedbStore::open(&dir).expect("reopen");
        let stored = store.load().expect("load");
        assert_eq!(stored.core.sessions, vec![grown("s1", 6, 4)]);
        let history = stored.core.sessions[0].history.clone().expect("history");
        assert_eq!((history.dropped, history.steps.len()), (4, 4));
        drop(store);
        // Rows wholly below the first kept step are removed; one across it may stay.
        let rows = step_rows(&dir, "s1");
        assert!(rows.iter().all(|r| r.end > 4), "{rows:?}");
        let kept: Vec<u64> = rows.into_iter().flatten().filter(|n| *n >= 4).collect();
        assert_eq!(kept, vec![4, 5, 6, 7]);
        assert!(
            step_rows(&dir, "s2").is_empty(),
            "forgotten with the session"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_history_replaced_by_another_is_written_whole() {
        let dir = temp_dir("steps-replaced");
        let mut store = RedbStore::open(&dir).expect("open");
        store
            .commit(&batch(vec![grown("s1", 3, 8)], &[], 10))
            .expect("commit");
        // As many steps, or more, but other ones: none of the first may stay.
        let mut replaced = grown("s1", 4, 8);
        let history = Arc::make_mut(replaced.history.as_mut().expect("a history"));
        for step in &mut history.steps {
            step.at += 50_000;
        }
        store
            .commit(&batch(vec![replaced.clone()], &[], 20))
            .expect("commit");
        drop(store);
        let store = RedbStore::open(&dir).expect("reopen");
        assert_eq!(store.load().expect("load").core.sessions, vec![replaced]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn histories_are_written_step_by_step_and_trimmed() {
        histories_are_written_step_by_step(true);
        histories_are_written_step_by_step(false);
    }

    #[test]
    fn a_file_that_is_not_a_store_is_refused_and_left_alone() {
        let dir = temp_dir("garbage");
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join(FILE_NAME);
        let garbage = vec![0x5a_u8; 8192];
        std::fs::write(&file, &garbage).expect("write");
        let error = RedbStore::open(&dir).err().expect("refused");
        let text = error.to_string();
        assert!(text.contains(FILE_NAME), "{text}");
        assert_eq!(
            std::fs::read(&file).expect("read"),
            garbage,
            "file untouched"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
