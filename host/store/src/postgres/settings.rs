//! Tenant settings managed through the admin API, in the PostgreSQL store's database:
//! the same versions and audit log as [`crate::settings::RedbSettings`], in tables
//! every node can read.
//!
//! A change locks its tenant's head row (`FOR UPDATE`) and compares the version it was
//! based on inside the transaction, so two nodes changing one tenant at once cannot
//! both win. Audit sequence numbers come from a counter row locked the same way: they
//! have no gaps and follow commit order.

use deadpool_postgres::Pool;
use postgres_types::Json;
use tokio::runtime::Handle;

use autoclose_config::PostgresSettings;

use super::describe;
use crate::StoreError;
use crate::settings::{
    AuditRecord, Change, CommitError, KEPT_VERSIONS, SettingsStore, SettingsVersion, TenantVersion,
};

/// The settings store in the PostgreSQL database.
pub struct PostgresSettingsStore {
    pool: Pool,
    handle: Handle,
    schema: String,
    place: String,
}

/// Why a step failed, before it becomes a [`StoreError`] or a [`CommitError`].
enum Failed {
    Db(tokio_postgres::Error),
    Stale(SettingsVersion),
    Corrupt(String, String),
}

impl From<tokio_postgres::Error> for Failed {
    fn from(e: tokio_postgres::Error) -> Self {
        Failed::Db(e)
    }
}

fn to_i64(version: SettingsVersion) -> i64 {
    i64::try_from(version.0).unwrap_or(i64::MAX)
}

impl PostgresSettingsStore {
    /// The settings store in `pool`'s database (its schema migrated by
    /// [`super::connect`]).
    pub fn new(pool: Pool, settings: &PostgresSettings, handle: &Handle) -> Self {
        PostgresSettingsStore {
            pool,
            handle: handle.clone(),
            schema: settings.schema.clone(),
            place: settings.place(),
        }
    }

    fn run<T>(
        &self,
        operation: &'static str,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> Result<T, Failed>,
    ) -> Result<T, Result<SettingsVersion, StoreError>> {
        let failed = |reason: String| StoreError::Query {
            database: self.place.clone(),
            operation,
            reason,
        };
        self.handle.block_on(async {
            let mut client = self
                .pool
                .get()
                .await
                .map_err(|e| Err(failed(e.to_string())))?;
            work(&mut client).await.map_err(|e| match e {
                Failed::Db(e) => Err(failed(describe(&e))),
                Failed::Stale(current) => Ok(current),
                Failed::Corrupt(key, reason) => Err(StoreError::Corrupt {
                    path: self.place.clone().into(),
                    table: "tenant_versions",
                    key,
                    reason,
                }),
            })
        })
    }

    /// [`Self::run`] for reads, which are never stale.
    fn read<T>(
        &self,
        operation: &'static str,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> Result<T, Failed>,
    ) -> Result<T, StoreError> {
        self.run(operation, work).map_err(|e| match e {
            Err(e) => e,
            Ok(_) => StoreError::Query {
                database: self.place.clone(),
                operation,
                reason: "a read was refused as stale".into(),
            },
        })
    }
}

fn decode_version(row: &tokio_postgres::Row) -> Result<TenantVersion, Failed> {
    let tenant: String = row.get(0);
    let version: i64 = row.get(1);
    let Json(record): Json<TenantVersion> = row
        .try_get(2)
        .map_err(|e| Failed::Corrupt(format!("{tenant}@{version}"), describe(&e)))?;
    if record.tenant != tenant || i64::try_from(record.version.0).ok() != Some(version) {
        return Err(Failed::Corrupt(
            format!("{tenant}@{version}"),
            "the record names another version".into(),
        ));
    }
    Ok(record)
}

impl SettingsStore for PostgresSettingsStore {
    fn current(&self) -> Result<Vec<TenantVersion>, StoreError> {
        let s = self.schema.clone();
        self.read("read tenant settings", async |client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT v.tenant, v.version, v.record FROM {s}.tenant_versions v
                         JOIN {s}.tenant_heads h ON h.tenant = v.tenant AND h.version = v.version
                         ORDER BY v.tenant"
                    ),
                    &[],
                )
                .await?;
            rows.iter().map(decode_version).collect()
        })
    }

    fn versions(&self, tenant: &str) -> Result<Vec<TenantVersion>, StoreError> {
        let s = self.schema.clone();
        self.read("read tenant versions", async |client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT tenant, version, record FROM {s}.tenant_versions
                         WHERE tenant = $1 ORDER BY version"
                    ),
                    &[&tenant],
                )
                .await?;
            rows.iter().map(decode_version).collect()
        })
    }

    fn commit(&self, change: Change) -> Result<(TenantVersion, AuditRecord), CommitError> {
        let s = self.schema.clone();
        let tenant = change.tenant.clone();
        let based_on = change.based_on;
        self.run("write tenant settings", async |client| {
            let txn = client.transaction().await?;
            txn.execute(
                &format!(
                    "INSERT INTO {s}.tenant_heads (tenant, version) VALUES ($1, 0)
                     ON CONFLICT (tenant) DO NOTHING"
                ),
                &[&change.tenant],
            )
            .await?;
            let row = txn
                .query_one(
                    &format!("SELECT version FROM {s}.tenant_heads WHERE tenant = $1 FOR UPDATE"),
                    &[&change.tenant],
                )
                .await?;
            let current = SettingsVersion(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0));
            if current != change.based_on {
                return Err(Failed::Stale(current));
            }
            let version = SettingsVersion(current.0 + 1);
            let record = TenantVersion {
                tenant: change.tenant.clone(),
                version,
                document: change.document,
                at_ms: change.at_ms,
                by: change.by.clone(),
            };
            txn.execute(
                &format!(
                    "INSERT INTO {s}.tenant_versions (tenant, version, record) VALUES ($1, $2, $3)"
                ),
                &[&change.tenant, &to_i64(version), &Json(&record)],
            )
            .await?;
            txn.execute(
                &format!("UPDATE {s}.tenant_heads SET version = $2 WHERE tenant = $1"),
                &[&change.tenant, &to_i64(version)],
            )
            .await?;
            let keep_from = (version.0 + 1).saturating_sub(KEPT_VERSIONS as u64);
            txn.execute(
                &format!("DELETE FROM {s}.tenant_versions WHERE tenant = $1 AND version < $2"),
                &[&change.tenant, &i64::try_from(keep_from).unwrap_or(0)],
            )
            .await?;
            // The audit counter: a row locked like the heads, so that sequence numbers
            // have no gaps and follow commit order.
            txn.execute(
                &format!(
                    "INSERT INTO {s}.meta (shard, key, value) VALUES (-1, 'next_audit', 1)
                     ON CONFLICT (shard, key) DO NOTHING"
                ),
                &[],
            )
            .await?;
            let row = txn
                .query_one(
                    &format!(
                        "UPDATE {s}.meta SET value = value + 1 WHERE shard = -1 AND key = 'next_audit'
                         RETURNING value - 1"
                    ),
                    &[],
                )
                .await?;
            let seq: i64 = row.get(0);
            let audit = AuditRecord {
                seq: u64::try_from(seq).unwrap_or(0),
                at_ms: change.at_ms,
                tenant: change.tenant.clone(),
                by: change.by,
                kind: change.kind,
                old_version: current,
                new_version: version,
                restored: change.restored,
            };
            txn.execute(
                &format!("INSERT INTO {s}.tenant_audit (seq, tenant, record) VALUES ($1, $2, $3)"),
                &[&seq, &change.tenant, &Json(&audit)],
            )
            .await?;
            txn.commit().await?;
            Ok((record, audit))
        })
        .map_err(|e| match e {
            Ok(current) => CommitError::Stale {
                tenant,
                based_on,
                current,
            },
            Err(e) => CommitError::Store(e),
        })
    }

    fn audit(&self, tenant: Option<&str>, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let s = self.schema.clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read("read the audit log", async |client| {
            let rows = client
                .query(
                    &format!(
                        "SELECT seq, record FROM {s}.tenant_audit
                         WHERE $1::text IS NULL OR tenant = $1
                         ORDER BY seq DESC LIMIT $2"
                    ),
                    &[&tenant, &limit],
                )
                .await?;
            let mut records = Vec::with_capacity(rows.len());
            for row in rows.iter().rev() {
                let seq: i64 = row.get(0);
                let Json(record): Json<AuditRecord> = row
                    .try_get(1)
                    .map_err(|e| Failed::Corrupt(format!("audit {seq}"), describe(&e)))?;
                records.push(record);
            }
            Ok(records)
        })
    }
}
