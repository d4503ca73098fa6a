//! The PostgreSQL store's tables, created and migrated at start.
//!
//! Each migration is one step from the version before; the version reached is kept in
//! `schema_version`. Migrating runs in one transaction that first locks the version
//! row (`FOR UPDATE`), so nodes starting together migrate once; no advisory lock, which
//! PostgreSQL-wire databases such as CockroachDB lack. A database at a version newer
//! than this build knows is refused, never rewritten.

use tokio_postgres::Client;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 4;

/// The statements of each migration, in order: `MIGRATIONS[0]` takes an empty schema
/// to version 1. `{schema}` is replaced by the (checked) schema name.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE {schema}.meta (
    shard integer NOT NULL,
    key text NOT NULL,
    value bigint NOT NULL,
    PRIMARY KEY (shard, key)
);
CREATE TABLE {schema}.sessions (
    shard integer NOT NULL,
    tenant text NOT NULL,
    session text NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (shard, tenant, session)
);
CREATE TABLE {schema}.deliveries (
    shard integer NOT NULL,
    request bigint NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (shard, request)
);
CREATE TABLE {schema}.callbacks (
    shard integer NOT NULL,
    seq bigint NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (shard, seq)
);
CREATE TABLE {schema}.held (
    shard integer NOT NULL,
    tenant text NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (shard, tenant)
);
"#,
    r#"
CREATE TABLE {schema}.tenant_heads (
    tenant text PRIMARY KEY,
    version bigint NOT NULL
);
CREATE TABLE {schema}.tenant_versions (
    tenant text NOT NULL,
    version bigint NOT NULL,
    record jsonb NOT NULL,
    PRIMARY KEY (tenant, version)
);
CREATE TABLE {schema}.tenant_audit (
    seq bigint PRIMARY KEY,
    tenant text NOT NULL,
    record jsonb NOT NULL
);
CREATE INDEX tenant_audit_by_tenant ON {schema}.tenant_audit (tenant, seq);
"#,
    r#"
CREATE TABLE {schema}.shard_leases (
    shard integer PRIMARY KEY,
    owner text NOT NULL,
    epoch bigint NOT NULL,
    expires_at timestamptz NOT NULL
);
"#,
    r#"
CREATE TABLE {schema}.nodes (
    node text PRIMARY KEY,
    started_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL
);
CREATE TABLE {schema}.inbox (
    shard integer NOT NULL,
    seq bigserial NOT NULL,
    events jsonb NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (shard, seq)
);
"#,
];

/// What migrating found.
#[derive(Debug, PartialEq, Eq)]
pub enum Migrated {
    /// The schema is at [`SCHEMA_VERSION`] (after `from` steps, 0 if it already was).
    Current {
        /// The version found before migrating.
        from: i32,
    },
    /// The schema is newer than this build.
    Newer(i32),
}

/// Brings `schema` to [`SCHEMA_VERSION`], creating it if missing.
pub async fn migrate(client: &mut Client, schema: &str) -> Result<Migrated, tokio_postgres::Error> {
    client
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {schema};
             CREATE TABLE IF NOT EXISTS {schema}.schema_version (
                 id integer PRIMARY KEY CHECK (id = 1),
                 version integer NOT NULL
             );
             INSERT INTO {schema}.schema_version (id, version) VALUES (1, 0)
                 ON CONFLICT (id) DO NOTHING;"
        ))
        .await?;
    let txn = client.transaction().await?;
    let row = txn
        .query_one(
            &format!("SELECT version FROM {schema}.schema_version WHERE id = 1 FOR UPDATE"),
            &[],
        )
        .await?;
    let found: i32 = row.get(0);
    if found > SCHEMA_VERSION {
        return Ok(Migrated::Newer(found));
    }
    let from = usize::try_from(found).unwrap_or(0);
    for migration in MIGRATIONS.iter().skip(from) {
        txn.batch_execute(&migration.replace("{schema}", schema))
            .await?;
    }
    txn.execute(
        &format!("UPDATE {schema}.schema_version SET version = $1 WHERE id = 1"),
        &[&SCHEMA_VERSION],
    )
    .await?;
    txn.commit().await?;
    Ok(Migrated::Current { from: found })
}

/// Whether `e` is another node's concurrent `CREATE ... IF NOT EXISTS` winning: two
/// sessions creating the same schema or table at once may both pass the check, and the
/// second fails on the catalog's unique index instead of skipping.
pub fn lost_a_creation_race(e: &tokio_postgres::Error) -> bool {
    use tokio_postgres::error::SqlState;
    e.code().is_some_and(|code| {
        [
            SqlState::UNIQUE_VIOLATION,
            SqlState::DUPLICATE_SCHEMA,
            SqlState::DUPLICATE_TABLE,
            SqlState::DUPLICATE_OBJECT,
        ]
        .contains(code)
    })
}
