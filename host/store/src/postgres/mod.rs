//! The PostgreSQL store: the same records as the redb store, one row each, in tables
//! that several nodes can share (every row carries its shard).
//!
//! Why PostgreSQL: it is what contact-centre vendors already run, with their own high
//! availability and backups, and the protocol is spoken by distributed databases
//! (CockroachDB, YugabyteDB) too. This store uses nothing they lack: no advisory locks,
//! no `LISTEN`/`NOTIFY`. Records are `jsonb`, so an operator can read them with SQL.
//!
//! The engine calls the store from its own thread ([`Store`] is synchronous); this
//! store runs its queries on the server's async runtime (`handle`), over a pool of
//! connections (deadpool-postgres). A commit is one transaction: all of the batch or
//! none, durable when `COMMIT` returns (with the server's default `synchronous_commit`).
//!
//! Several nodes share one database: each shard is owned by one node at a time through
//! a lease ([`lease`]), every commit checks the lease's epoch in its own transaction,
//! and a node that does not own a shard leaves that shard's events in its inbox
//! ([`cluster`]) for the owner, which applies them in its rounds and deletes them in
//! the same fenced commit.

pub mod cluster;
pub mod lease;
pub mod schema;
pub mod settings;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use postgres_types::{Json, ToSql};
use serde::de::DeserializeOwned;
use tokio::runtime::Handle;
use tokio_postgres::NoTls;

use autoclose_config::PostgresSettings;
use autoclose_core::event::GatewayEvent;
use autoclose_core::records::{
    CallbackRecord, DeliveryRecord, HeldRecord, SessionRecord, Snapshot,
};
use autoclose_runtime::RequestId;

use crate::{Batch, Inboxed, Store, StoreError, Stored};
use lease::Lease;
use schema::{Migrated, SCHEMA_VERSION};

const NEXT_REQUEST_KEY: &str = "next_request";
const NEXT_CALLBACK_KEY: &str = "next_callback";
const NOW_KEY: &str = "now";
/// Inbox entries read per query.
const INBOX_PAGE: i64 = 512;

/// The store of one shard in a PostgreSQL database.
pub struct PostgresStore {
    pub(crate) pool: Pool,
    pub(crate) handle: Handle,
    pub(crate) schema: String,
    pub(crate) shard: i32,
    /// The database as errors name it (no password).
    pub(crate) place: String,
    /// The shard's lease: every commit checks its epoch.
    pub(crate) lease: Lease,
}

/// Opens the pool and brings the schema to this build's version. Fails with a clear
/// error naming the database when it is unreachable or newer than this build.
pub fn connect(settings: &PostgresSettings, handle: &Handle) -> Result<Pool, StoreError> {
    let place = settings.place();
    let unreachable = |reason: String| StoreError::Unreachable {
        database: place.clone(),
        reason,
    };
    let config: tokio_postgres::Config = settings
        .url
        .parse()
        .map_err(|e: tokio_postgres::Error| unreachable(format!("store.url: {}", describe(&e))))?;
    let recycling = || ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match tls(&config, settings).map_err(unreachable)? {
        Some(tls) => Manager::from_config(config, tls, recycling()),
        None => Manager::from_config(config, NoTls, recycling()),
    };
    let pool = Pool::builder(manager)
        .max_size(settings.pool)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(|e| unreachable(e.to_string()))?;
    let schema = settings.schema.clone();
    let migrated = handle.block_on(async {
        let mut client = pool.get().await.map_err(|e| unreachable(chain(&e)))?;
        let mut tries = 0;
        loop {
            match schema::migrate(&mut client, &schema).await {
                Ok(migrated) => break Ok(migrated),
                // Nodes starting together on an empty database race to create the
                // schema; the loser finds it there on the next try.
                Err(e) if tries < 5 && schema::lost_a_creation_race(&e) => tries += 1,
                Err(e) => break Err(unreachable(describe(&e))),
            }
        }
    })?;
    match migrated {
        Migrated::Current { from } => {
            if from < SCHEMA_VERSION {
                tracing::info!(database = %place, from, to = SCHEMA_VERSION, "store schema migrated");
            }
            Ok(pool)
        }
        Migrated::Newer(found) => Err(StoreError::Newer {
            database: place,
            found,
            expected: SCHEMA_VERSION,
        }),
    }
}

/// The TLS connector for `config`: with `sslmode=require` in the URL, TLS whose server
/// certificate is verified (its chain against the public roots and `store.ca_file`, its
/// name against the URL's host, as libpq's `verify-full`); otherwise none, so that a
/// server's self-signed default certificate does not stop an unencrypted local setup.
fn tls(
    config: &tokio_postgres::Config,
    settings: &PostgresSettings,
) -> Result<Option<tokio_postgres_rustls::MakeRustlsConnect>, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let required = matches!(
        config.get_ssl_mode(),
        tokio_postgres::config::SslMode::Require
    );
    if !required {
        return match &settings.ca_file {
            Some(_) => Err(
                "store.ca_file is given but store.url does not ask for TLS: add ?sslmode=require to the URL".into(),
            ),
            None => Ok(None),
        };
    }
    let mut roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(file) = &settings.ca_file {
        let certificates = CertificateDer::pem_file_iter(file)
            .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("store.ca_file: {}: {e}", file.display()))?;
        if certificates.is_empty() {
            return Err(format!(
                "store.ca_file: {}: no certificate in it",
                file.display()
            ));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|e| format!("store.ca_file: {}: {e}", file.display()))?;
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Some(tokio_postgres_rustls::MakeRustlsConnect::new(client)))
}

/// Runs `work` on a connection of `pool`; errors name `operation` and the database
/// (`place`), with the cause in full.
pub(crate) async fn on_connection<T>(
    pool: &Pool,
    place: &str,
    operation: &'static str,
    work: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> Result<T, tokio_postgres::Error>,
) -> Result<T, StoreError> {
    let failed = |reason: String| StoreError::Query {
        database: place.to_owned(),
        operation,
        reason,
    };
    let mut client = pool.get().await.map_err(|e| failed(chain(&e)))?;
    work(&mut client).await.map_err(|e| failed(describe(&e)))
}

/// An error with every cause under it: a pool's "error performing TLS handshake" says
/// why only in its sources (an unknown issuer, a name mismatch).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// A driver error in full: its kind and, for an error the server sent, the server's
/// code and message (the driver's own text is only "db error").
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} ({})", db.message(), db.code().code()),
        None => match std::error::Error::source(e) {
            Some(source) => format!("{e}: {source}"),
            None => e.to_string(),
        },
    }
}

fn to_i64(value: u64, what: &'static str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Query {
        database: String::new(),
        operation: what,
        reason: format!("{value} is beyond a bigint"),
    })
}

impl PostgresStore {
    /// Runs `work` on a pooled connection on the async runtime, from the engine's
    /// thread.
    fn run<T>(
        &self,
        operation: &'static str,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        self.handle
            .block_on(on_connection(&self.pool, &self.place, operation, work))
    }

    fn decode<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key: String,
        value: serde_json::Value,
    ) -> Result<T, StoreError> {
        serde_json::from_value(value).map_err(|e| StoreError::Corrupt {
            path: self.place.clone().into(),
            table,
            key,
            reason: e.to_string(),
        })
    }
}

impl Store for PostgresStore {
    fn load(&self) -> Result<Stored, StoreError> {
        let s = &self.schema;
        let shard = self.shard;
        type Rows = Vec<tokio_postgres::Row>;
        let (meta, sessions, deliveries, callbacks, held): (Rows, Rows, Rows, Rows, Rows) = self
            .run("load", async |client| {
                let txn = client.build_transaction().read_only(true).start().await?;
                let meta = txn
                    .query(&format!("SELECT key, value FROM {s}.meta WHERE shard = $1"), &[&shard])
                    .await?;
                let sessions = txn
                    .query(
                        &format!("SELECT tenant, session, record FROM {s}.sessions WHERE shard = $1"),
                        &[&shard],
                    )
                    .await?;
                let deliveries = txn
                    .query(
                        &format!("SELECT request, record FROM {s}.deliveries WHERE shard = $1 ORDER BY request"),
                        &[&shard],
                    )
                    .await?;
                let callbacks = txn
                    .query(
                        &format!("SELECT seq, record FROM {s}.callbacks WHERE shard = $1 ORDER BY seq"),
                        &[&shard],
                    )
                    .await?;
                let held = txn
                    .query(
                        &format!("SELECT tenant, record FROM {s}.held WHERE shard = $1 ORDER BY tenant"),
                        &[&shard],
                    )
                    .await?;
                txn.commit().await?;
                Ok((meta, sessions, deliveries, callbacks, held))
            })?;
        let read_meta = |key: &str| -> u64 {
            meta.iter()
                .find(|row| row.get::<_, &str>(0) == key)
                .map_or(0, |row| u64::try_from(row.get::<_, i64>(1)).unwrap_or(0))
        };
        let mut stored = Stored {
            core: Snapshot {
                next_request: RequestId(read_meta(NEXT_REQUEST_KEY)),
                now: read_meta(NOW_KEY),
                ..Snapshot::default()
            },
            next_callback: read_meta(NEXT_CALLBACK_KEY),
            callbacks: Vec::new(),
        };
        for row in sessions {
            let (tenant, session): (String, String) = (row.get(0), row.get(1));
            let key = format!("{tenant}/{session}");
            let record: SessionRecord = self.decode("sessions", key.clone(), row.get(2))?;
            if record.tenant != tenant || record.session != session {
                return Err(StoreError::Corrupt {
                    path: self.place.clone().into(),
                    table: "sessions",
                    key,
                    reason: "the record names another session".into(),
                });
            }
            stored.core.sessions.push(record);
        }
        for row in deliveries {
            let request: i64 = row.get(0);
            let record: DeliveryRecord =
                self.decode("deliveries", request.to_string(), row.get(1))?;
            stored.core.deliveries.push(record);
        }
        for row in callbacks {
            let seq: i64 = row.get(0);
            let record: CallbackRecord = self.decode("callbacks", seq.to_string(), row.get(1))?;
            stored.callbacks.push(record);
        }
        for row in held {
            let tenant: String = row.get(0);
            let record: HeldRecord = self.decode("held", tenant, row.get(1))?;
            stored.core.held.push(record);
        }
        Ok(stored)
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        let s = self.schema.clone();
        let shard = self.shard;
        let held_epoch = self.lease.epoch;
        let next_request = to_i64(batch.core.next_request.0, "commit")?;
        let now = to_i64(batch.core.now, "commit")?;
        let next_callback = to_i64(batch.next_callback, "commit")?;
        let ended: Vec<i64> = batch
            .core
            .ended
            .iter()
            .map(|r| to_i64(r.0, "commit"))
            .collect::<Result<_, _>>()?;
        let delivery_keys: Vec<i64> = batch
            .core
            .deliveries
            .iter()
            .map(|r| to_i64(r.request.0, "commit"))
            .collect::<Result<_, _>>()?;
        let callbacks_ended: Vec<i64> = batch
            .callbacks_ended
            .iter()
            .map(|seq| to_i64(*seq, "commit"))
            .collect::<Result<_, _>>()?;
        let inbox_applied: Vec<i64> = batch
            .inbox_applied
            .iter()
            .map(|seq| to_i64(*seq, "commit"))
            .collect::<Result<_, _>>()?;
        let callback_keys: Vec<i64> = batch
            .callbacks
            .iter()
            .map(|r| to_i64(r.seq, "commit"))
            .collect::<Result<_, _>>()?;
        // Each table's rows in one statement, in the order the redb store writes them
        // (removals before writes of the same keys).
        let forgotten: (Vec<&str>, Vec<&str>) = batch
            .core
            .forgotten
            .iter()
            .map(|(t, s)| (t.as_str(), s.as_str()))
            .unzip();
        let session_tenants: Vec<&str> = batch
            .core
            .sessions
            .iter()
            .map(|r| r.tenant.as_str())
            .collect();
        let session_ids: Vec<&str> = batch
            .core
            .sessions
            .iter()
            .map(|r| r.session.as_str())
            .collect();
        let sessions: Vec<Json<&SessionRecord>> = batch.core.sessions.iter().map(Json).collect();
        let deliveries: Vec<Json<&DeliveryRecord>> =
            batch.core.deliveries.iter().map(Json).collect();
        let (emptied, kept): (Vec<&HeldRecord>, Vec<&HeldRecord>) =
            batch.core.held.iter().partition(|r| r.events.is_empty());
        let emptied: Vec<&str> = emptied.iter().map(|r| r.tenant.as_str()).collect();
        let kept_tenants: Vec<&str> = kept.iter().map(|r| r.tenant.as_str()).collect();
        let kept: Vec<Json<&HeldRecord>> = kept.iter().map(|r| Json(*r)).collect();
        let callbacks: Vec<Json<&CallbackRecord>> = batch.callbacks.iter().map(Json).collect();

        let mut statements: Vec<(String, Vec<&(dyn ToSql + Sync)>)> = vec![(
            format!(
                "INSERT INTO {s}.meta (shard, key, value) VALUES ($1, $2, $3), ($1, $4, $5), ($1, $6, $7)
                 ON CONFLICT (shard, key) DO UPDATE SET value = EXCLUDED.value"
            ),
            vec![
                &shard,
                &NEXT_REQUEST_KEY,
                &next_request,
                &NOW_KEY,
                &now,
                &NEXT_CALLBACK_KEY,
                &next_callback,
            ],
        )];
        if !forgotten.0.is_empty() {
            statements.push((
                format!(
                    "DELETE FROM {s}.sessions WHERE shard = $1
                     AND (tenant, session) IN (SELECT * FROM UNNEST($2::text[], $3::text[]))"
                ),
                vec![&shard, &forgotten.0, &forgotten.1],
            ));
        }
        if !sessions.is_empty() {
            statements.push((
                format!(
                    "INSERT INTO {s}.sessions (shard, tenant, session, record)
                     SELECT $1, * FROM UNNEST($2::text[], $3::text[], $4::jsonb[])
                     ON CONFLICT (shard, tenant, session) DO UPDATE SET record = EXCLUDED.record"
                ),
                vec![&shard, &session_tenants, &session_ids, &sessions],
            ));
        }
        if !ended.is_empty() {
            statements.push((
                format!("DELETE FROM {s}.deliveries WHERE shard = $1 AND request = ANY($2)"),
                vec![&shard, &ended],
            ));
        }
        if !deliveries.is_empty() {
            statements.push((
                upsert(&s, "deliveries", "request"),
                vec![&shard, &delivery_keys, &deliveries],
            ));
        }
        if !emptied.is_empty() {
            statements.push((
                format!("DELETE FROM {s}.held WHERE shard = $1 AND tenant = ANY($2)"),
                vec![&shard, &emptied],
            ));
        }
        if !kept.is_empty() {
            statements.push((
                format!(
                    "INSERT INTO {s}.held (shard, tenant, record)
                     SELECT $1, * FROM UNNEST($2::text[], $3::jsonb[])
                     ON CONFLICT (shard, tenant) DO UPDATE SET record = EXCLUDED.record"
                ),
                vec![&shard, &kept_tenants, &kept],
            ));
        }
        if !callbacks_ended.is_empty() {
            statements.push((
                format!("DELETE FROM {s}.callbacks WHERE shard = $1 AND seq = ANY($2)"),
                vec![&shard, &callbacks_ended],
            ));
        }
        if !inbox_applied.is_empty() {
            statements.push((
                format!("DELETE FROM {s}.inbox WHERE shard = $1 AND seq = ANY($2)"),
                vec![&shard, &inbox_applied],
            ));
        }
        if !callbacks.is_empty() {
            statements.push((
                upsert(&s, "callbacks", "seq"),
                vec![&shard, &callback_keys, &callbacks],
            ));
        }
        self.run("commit", async |client| {
            // Statements are prepared once per connection (cached), then sent without
            // waiting for each other's answers: the driver pipelines requests polled
            // together, in the order given, on the one connection of the transaction.
            let fence = client.prepare_cached(&lease::fence(&s)).await?;
            let mut prepared = Vec::with_capacity(statements.len());
            for (sql, _) in &statements {
                prepared.push(client.prepare_cached(sql).await?);
            }
            let txn = client.transaction().await?;
            // The fence goes first: the shard's epoch, its row locked against a
            // takeover until this transaction ends.
            let fence_params: [&(dyn ToSql + Sync); 1] = [&shard];
            let fenced = txn.query_opt(&fence, &fence_params);
            let executions = prepared
                .iter()
                .zip(&statements)
                .map(|(statement, (_, params))| txn.execute(statement, params));
            let (epoch, _) = futures_util::future::try_join(
                fenced,
                futures_util::future::try_join_all(executions),
            )
            .await?;
            let epoch: Option<i64> = epoch.map(|row| row.get(0));
            if epoch != Some(held_epoch) {
                // Dropping the transaction rolls it back: nothing of it lands.
                return Ok(Err(epoch.unwrap_or(0)));
            }
            txn.commit().await.map(Ok)
        })?
        .map_err(|current| StoreError::Fenced {
            database: self.place.clone(),
            shard: self.shard,
            epoch: self.lease.epoch,
            current,
        })
    }

    fn inbox(&mut self) -> Result<Vec<Inboxed>, StoreError> {
        let s = &self.schema;
        let shard = self.shard;
        // Everything committed so far, in pages: the owner applies all of it before
        // the events sent to it directly, which may follow an entry of any page.
        let mut entries = Vec::new();
        let mut after: i64 = -1;
        loop {
            let rows = self.run("read the shard's inbox", async |client| {
                let statement = client
                    .prepare_cached(&format!(
                        "SELECT seq, events FROM {s}.inbox WHERE shard = $1 AND seq > $2 ORDER BY seq LIMIT $3"
                    ))
                    .await?;
                client
                    .query(&statement, &[&shard, &after, &INBOX_PAGE])
                    .await
            })?;
            let full = rows.len() as i64 == INBOX_PAGE;
            for row in rows {
                let seq: i64 = row.get(0);
                let events: Vec<GatewayEvent> =
                    self.decode("inbox", seq.to_string(), row.get(1))?;
                after = after.max(seq);
                entries.push(Inboxed {
                    seq: u64::try_from(seq).unwrap_or(0),
                    events,
                });
            }
            if !full {
                return Ok(entries);
            }
        }
    }
}

/// The statement writing records under a bigint key column (`$2`, with the records in
/// `$3`) in one statement.
fn upsert(schema: &str, table: &str, key: &str) -> String {
    format!(
        "INSERT INTO {schema}.{table} (shard, {key}, record)
         SELECT $1, * FROM UNNEST($2::bigint[], $3::jsonb[])
         ON CONFLICT (shard, {key}) DO UPDATE SET record = EXCLUDED.record"
    )
}

#[cfg(test)]
mod tests;
