//! Tenant settings managed one tenant at a time (`/v1/admin/tenants`): every version of
//! every tenant's document, and an audit record of every change.
//!
//! Why a store of its own, beside the shards' stores: settings are per tenant, not per
//! session, every shard runs the same ones, and they change a few times a day where
//! sessions change thousands of times a second. Versions are never reused: a delete
//! is a version without a document, and a rollback writes a new version holding an
//! older document, so "version 7" names one document forever and an `If-Match` on it
//! cannot be fooled by a delete and a re-create.
//!
//! A change is checked against the version it was based on inside its write
//! transaction ([`SettingsStore::commit`]): a lost update is refused by the store
//! itself, not only by the caller's lock, which is what several nodes on one database
//! will need.

use std::path::{Path, PathBuf};

use ::redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::StoreError;

/// Versions kept per tenant, the current one included; older ones are pruned when a
/// new one is written.
pub const KEPT_VERSIONS: usize = 20;

/// File name of the settings store inside the data directory.
pub const SETTINGS_FILE: &str = "tenants.redb";

/// Version of the records this build writes in the settings store.
pub const SETTINGS_VERSION: u64 = 1;

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const VERSIONS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("versions");
const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
const VERSION_KEY: &str = "version";
const NEXT_AUDIT_KEY: &str = "next_audit";

/// A tenant's settings version number: 1 for its first document, then one more per
/// change. `0` names "nothing stored" (a tenant only in the file, or unknown).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct SettingsVersion(pub u64);

impl std::fmt::Display for SettingsVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One version of one tenant's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantVersion {
    /// The tenant.
    pub tenant: String,
    /// Its number.
    pub version: SettingsVersion,
    /// The tenant's document, as a tenant of the configuration file is written
    /// (`webhooks`, `component`, `limits` and the component's settings); `None`: the
    /// tenant was deleted at this version.
    pub document: Option<Map<String, Value>>,
    /// When it was written (Unix milliseconds).
    pub at_ms: u64,
    /// Who wrote it: the token's name (`admin`, or `tenant:<name>`).
    pub by: String,
}

/// What a change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// A document was written (`PUT`).
    Put,
    /// The tenant's managed settings were removed (`DELETE`).
    Delete,
    /// An older version's document was written again (`POST .../rollback`).
    Rollback,
}

/// One change, as the audit log keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Its place in the log, from 1.
    pub seq: u64,
    /// When (Unix milliseconds).
    pub at_ms: u64,
    /// The tenant changed.
    pub tenant: String,
    /// Who changed it: the token's name.
    pub by: String,
    /// What was done.
    pub kind: ChangeKind,
    /// The version before the change (`0`: none).
    pub old_version: SettingsVersion,
    /// The version the change wrote.
    pub new_version: SettingsVersion,
    /// For a rollback, the version whose document was restored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored: Option<SettingsVersion>,
}

/// A change to write: a new version of one tenant, based on the version the writer saw.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// The tenant.
    pub tenant: String,
    /// The version the writer based the change on (`0`: none stored).
    pub based_on: SettingsVersion,
    /// The new document; `None` deletes.
    pub document: Option<Map<String, Value>>,
    /// What is done.
    pub kind: ChangeKind,
    /// For a rollback, the version restored.
    pub restored: Option<SettingsVersion>,
    /// When (Unix milliseconds).
    pub at_ms: u64,
    /// Who: the token's name.
    pub by: String,
}

/// Why a change was not written.
#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    /// The tenant's current version is not the one the change was based on: someone
    /// changed it in between (a lost update refused).
    #[error("tenant {tenant}: the current version is {current}, not {based_on}")]
    Stale {
        /// The tenant.
        tenant: String,
        /// What the change was based on.
        based_on: SettingsVersion,
        /// What is current.
        current: SettingsVersion,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A durable home for the tenant settings managed through the admin API.
pub trait SettingsStore: Send + Sync {
    /// The newest version of every tenant that has one (deleted ones included, with
    /// no document), in tenant order.
    fn current(&self) -> Result<Vec<TenantVersion>, StoreError>;

    /// The kept versions of `tenant`, oldest first.
    fn versions(&self, tenant: &str) -> Result<Vec<TenantVersion>, StoreError>;

    /// Writes `change` as the tenant's next version, with its audit record, in one
    /// transaction, if the tenant's current version is still `change.based_on`.
    fn commit(&self, change: Change) -> Result<(TenantVersion, AuditRecord), CommitError>;

    /// The audit log, oldest first: the last `limit` records, of `tenant` only when
    /// given.
    fn audit(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;
}

/// The settings store in one redb file, `dir/tenants.redb`.
pub struct RedbSettings {
    db: Database,
    path: PathBuf,
}

impl RedbSettings {
    /// Opens (or creates) the settings store in `dir`. A file of another record version
    /// is an error, never a reset.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let (db, path) = crate::redb::create_database(dir, SETTINGS_FILE)?;
        let store = RedbSettings { db, path };
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

    fn corrupt(
        &self,
        table: &'static str,
        key: String,
        reason: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            table,
            key,
            reason: reason.to_string(),
        }
    }

    fn check_version(&self) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.io("begin", e))?;
        {
            let mut meta = txn.open_table(META).map_err(|e| self.io("open meta", e))?;
            let found = meta
                .get(VERSION_KEY)
                .map_err(|e| self.io("read meta", e))?
                .map(|v| v.value());
            match found {
                Some(SETTINGS_VERSION) => {}
                Some(found) => {
                    return Err(StoreError::Version {
                        path: self.path.clone(),
                        found: u32::try_from(found).unwrap_or(u32::MAX),
                        expected: u32::try_from(SETTINGS_VERSION).unwrap_or(u32::MAX),
                    });
                }
                None => {
                    meta.insert(VERSION_KEY, SETTINGS_VERSION)
                        .map_err(|e| self.io("write meta", e))?;
                }
            }
            txn.open_table(VERSIONS)
                .map_err(|e| self.io("open versions", e))?;
            txn.open_table(AUDIT)
                .map_err(|e| self.io("open audit", e))?;
        }
        txn.commit().map_err(|e| self.io("commit", e))
    }

    fn decode_version(
        &self,
        tenant: &str,
        version: u64,
        bytes: &[u8],
    ) -> Result<TenantVersion, StoreError> {
        let key = format!("{tenant}@{version}");
        let record: TenantVersion =
            serde_json::from_slice(bytes).map_err(|e| self.corrupt("versions", key.clone(), e))?;
        if record.tenant != tenant || record.version != SettingsVersion(version) {
            return Err(self.corrupt("versions", key, "the record names another version"));
        }
        Ok(record)
    }

    /// The newest stored version number of `tenant` in `table` (0: none).
    fn newest<T: ReadableTable<(&'static str, u64), &'static [u8]>>(
        &self,
        table: &T,
        tenant: &str,
    ) -> Result<SettingsVersion, StoreError> {
        let newest = table
            .range((tenant, 0)..=(tenant, u64::MAX))
            .map_err(|e| self.io("read versions", e))?
            .next_back()
            .transpose()
            .map_err(|e| self.io("read versions", e))?
            .map_or(0, |(key, _)| key.value().1);
        Ok(SettingsVersion(newest))
    }
}

fn encode<T: Serialize>(record: &T) -> Vec<u8> {
    // Records are plain data (strings, numbers, JSON values): they always serialize.
    serde_json::to_vec(record).unwrap_or_default()
}

impl SettingsStore for RedbSettings {
    fn current(&self) -> Result<Vec<TenantVersion>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.io("begin", e))?;
        let table = txn
            .open_table(VERSIONS)
            .map_err(|e| self.io("open versions", e))?;
        let mut current: Vec<TenantVersion> = Vec::new();
        for entry in table.iter().map_err(|e| self.io("read versions", e))? {
            let (key, value) = entry.map_err(|e| self.io("read versions", e))?;
            let (tenant, version) = key.value();
            let record = self.decode_version(tenant, version, value.value())?;
            // Keys are in (tenant, version) order: a tenant's newest comes last.
            match current.last_mut() {
                Some(last) if last.tenant == record.tenant => *last = record,
                _ => current.push(record),
            }
        }
        Ok(current)
    }

    fn versions(&self, tenant: &str) -> Result<Vec<TenantVersion>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.io("begin", e))?;
        let table = txn
            .open_table(VERSIONS)
            .map_err(|e| self.io("open versions", e))?;
        let mut versions = Vec::new();
        for entry in table
            .range((tenant, 0)..=(tenant, u64::MAX))
            .map_err(|e| self.io("read versions", e))?
        {
            let (key, value) = entry.map_err(|e| self.io("read versions", e))?;
            let (name, version) = key.value();
            versions.push(self.decode_version(name, version, value.value())?);
        }
        Ok(versions)
    }

    fn commit(&self, change: Change) -> Result<(TenantVersion, AuditRecord), CommitError> {
        let txn = self.db.begin_write().map_err(|e| self.io("begin", e))?;
        let written = {
            let mut table = txn
                .open_table(VERSIONS)
                .map_err(|e| self.io("open versions", e))?;
            let current = self.newest(&table, &change.tenant)?;
            if current != change.based_on {
                return Err(CommitError::Stale {
                    tenant: change.tenant,
                    based_on: change.based_on,
                    current,
                });
            }
            let version = SettingsVersion(current.0 + 1);
            let record = TenantVersion {
                tenant: change.tenant.clone(),
                version,
                document: change.document,
                at_ms: change.at_ms,
                by: change.by.clone(),
            };
            table
                .insert(
                    (change.tenant.as_str(), version.0),
                    encode(&record).as_slice(),
                )
                .map_err(|e| self.io("write versions", e))?;
            // Keep the newest KEPT_VERSIONS.
            let keep_from = (version.0 + 1).saturating_sub(KEPT_VERSIONS as u64);
            if keep_from > 1 {
                table
                    .retain_in(
                        (change.tenant.as_str(), 0)..(change.tenant.as_str(), keep_from),
                        |_, _| false,
                    )
                    .map_err(|e| self.io("prune versions", e))?;
            }

            let mut meta = txn.open_table(META).map_err(|e| self.io("open meta", e))?;
            let seq = meta
                .get(NEXT_AUDIT_KEY)
                .map_err(|e| self.io("read meta", e))?
                .map_or(1, |v| v.value());
            meta.insert(NEXT_AUDIT_KEY, seq + 1)
                .map_err(|e| self.io("write meta", e))?;
            let audit = AuditRecord {
                seq,
                at_ms: change.at_ms,
                tenant: change.tenant,
                by: change.by,
                kind: change.kind,
                old_version: current,
                new_version: version,
                restored: change.restored,
            };
            let mut log = txn
                .open_table(AUDIT)
                .map_err(|e| self.io("open audit", e))?;
            log.insert(seq, encode(&audit).as_slice())
                .map_err(|e| self.io("write audit", e))?;
            (record, audit)
        };
        txn.commit().map_err(|e| self.io("commit", e))?;
        Ok(written)
    }

    fn audit(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.io("begin", e))?;
        let log = txn
            .open_table(AUDIT)
            .map_err(|e| self.io("open audit", e))?;
        let mut records = Vec::new();
        for entry in log.iter().map_err(|e| self.io("read audit", e))?.rev() {
            if records.len() >= limit {
                break;
            }
            let (key, value) = entry.map_err(|e| self.io("read audit", e))?;
            let seq = key.value();
            let record: AuditRecord = serde_json::from_slice(value.value())
                .map_err(|e| self.corrupt("audit", seq.to_string(), e))?;
            if tenant.is_none_or(|t| t == record.tenant) {
                records.push(record);
            }
        }
        records.reverse();
        Ok(records)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("autoclose-settings-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn versions_count_up_refuse_lost_updates_and_survive_reopening() {
        let dir = scratch("versions");
        crate::conformance::settings_versions(|| RedbSettings::open(&dir).expect("open"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_the_newest_versions_are_kept() {
        let dir = scratch("prune");
        crate::conformance::settings_pruned(RedbSettings::open(&dir).expect("open"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
