//! The embedded store: one redb file.
//!
//! Why redb: it is pure Rust (no C toolchain, nothing to install or run), its
//! transactions are ACID with copy-on-write pages and checksums, a commit is durable
//! when it returns (`Durability::Immediate`), and a process killed mid-write leaves
//! the last committed state (it repairs itself on the next open). One writer at a
//! time is all the server needs: it commits in groups from one thread.
//!
//! Records are JSON (versioned by [`RECORD_VERSION`]): a few hundred bytes each, easy
//! to inspect, and a damaged one is reported with its table and key.

use std::path::{Path, PathBuf};

use ::redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use autoclose_runtime::RequestId;
use serde::de::DeserializeOwned;

use crate::{Batch, Store, StoreError, Stored};
use autoclose_core::records::{
    CallbackRecord, DeliveryRecord, HeldRecord, RECORD_VERSION, SessionRecord, Snapshot,
};

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

/// The store in `dir/autoclose.redb`.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`, creating the directory if needed. A file
    /// that is not a store of this version is an error, never a reset.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        Self::open_file(dir, FILE_NAME)
    }

    /// Opens (or creates) the store `dir/name`, as [`RedbStore::open`].
    pub fn open_file(dir: &Path, name: &str) -> Result<Self, StoreError> {
        let (db, path) = create_database(dir, name)?;
        let store = RedbStore { db, path };
        store.check_version()?;
        Ok(store)
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, operation: &'static str, e: impl std::fmt::Display) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            operation,
            reason: e.to_string(),
        }
    }

    /// Stamps a new store with the record version, or checks an existing one's.
    fn check_version(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.io("begin", e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.io("open meta", e))?;
            let found = meta
                .get(VERSION_KEY)
                .map_err(|e| self.io("read meta", e))?
                .map(|v| v.value());
            match found {
                Some(found) if found == u64::from(RECORD_VERSION) => {}
                Some(found) => {
                    return Err(StoreError::Version {
                        path: self.path.clone(),
                        found: u32::try_from(found).unwrap_or(u32::MAX),
                        expected: RECORD_VERSION,
                    });
                }
                None => {
                    let empty = meta.is_empty().map_err(|e| self.io("read meta", e))?;
                    if !empty {
                        return Err(self.corrupt("meta", VERSION_KEY, "the version is missing"));
                    }
                    meta.insert(VERSION_KEY, u64::from(RECORD_VERSION))
                        .map_err(|e| self.io("write meta", e))?;
                }
            }
            // Create the other tables so that reads find them.
            txn.open_table(SESSIONS)
                .map_err(|e| self.io("open sessions", e))?;
            txn.open_table(DELIVERIES)
                .map_err(|e| self.io("open deliveries", e))?;
            txn.open_table(CALLBACKS)
                .map_err(|e| self.io("open callbacks", e))?;
            txn.open_table(HELD).map_err(|e| self.io("open held", e))?;
        }
        txn.commit().map_err(|e| self.io("commit", e))
    }

    fn corrupt(
        &self,
        table: &'static str,
        key: &str,
        reason: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            table,
            key: key.to_owned(),
            reason: reason.to_string(),
        }
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
        let txn = self.db.begin_write().map_err(|e| self.io("begin", e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.io("open meta", e))?;
            let mut put = |key: &str, value: u64| {
                meta.insert(key, value)
                    .map(|_| ())
                    .map_err(|e| self.io("write meta", e))
            };
            put(NEXT_REQUEST_KEY, batch.core.next_request.0)?;
            put(NOW_KEY, batch.core.now)?;
            put(NEXT_CALLBACK_KEY, batch.next_callback)?;

            let mut sessions = txn
                .open_table(SESSIONS)
                .map_err(|e| self.io("open sessions", e))?;
            // Removals first: a batch that forgets a session and then sees it again
            // keeps the new record.
            for (tenant, session) in &batch.core.forgotten {
                sessions
                    .remove((tenant.as_str(), session.as_str()))
                    .map_err(|e| self.io("write sessions", e))?;
            }
            for record in &batch.core.sessions {
                sessions
                    .insert(
                        (record.tenant.as_str(), record.session.as_str()),
                        encode(record).as_slice(),
                    )
                    .map_err(|e| self.io("write sessions", e))?;
            }

            let mut deliveries = txn
                .open_table(DELIVERIES)
                .map_err(|e| self.io("open deliveries", e))?;
            for request in &batch.core.ended {
                deliveries
                    .remove(request.0)
                    .map_err(|e| self.io("write deliveries", e))?;
            }
            for record in &batch.core.deliveries {
                deliveries
                    .insert(record.request.0, encode(record).as_slice())
                    .map_err(|e| self.io("write deliveries", e))?;
            }

            let mut callbacks = txn
                .open_table(CALLBACKS)
                .map_err(|e| self.io("open callbacks", e))?;
            let mut held = txn.open_table(HELD).map_err(|e| self.io("open held", e))?;
            for record in &batch.core.held {
                if record.events.is_empty() {
                    held.remove(record.tenant.as_str())
                        .map_err(|e| self.io("write held", e))?;
                } else {
                    held.insert(record.tenant.as_str(), encode(record).as_slice())
                        .map_err(|e| self.io("write held", e))?;
                }
            }
            for seq in &batch.callbacks_ended {
                callbacks
                    .remove(*seq)
                    .map_err(|e| self.io("write callbacks", e))?;
            }
            for record in &batch.callbacks {
                callbacks
                    .insert(record.seq, encode(record).as_slice())
                    .map_err(|e| self.io("write callbacks", e))?;
            }
        }
        txn.commit().map_err(|e| self.io("commit", e))
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
