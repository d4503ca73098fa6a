//! Where `serve` keeps its state (`store` key): the embedded redb files in the data
//! directory (the default, no setup), or a PostgreSQL database that several nodes can
//! share.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::FieldError;
use crate::env::resolve_env;

/// Where `serve` keeps its state.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum StoreSettings {
    /// redb files in the data directory.
    #[default]
    Redb,
    /// A PostgreSQL database (or one that speaks its protocol).
    Postgres(PostgresSettings),
}

/// How to reach the PostgreSQL store.
#[derive(Clone, PartialEq, Eq)]
pub struct PostgresSettings {
    /// The connection URL (`postgres://user:password@host:port/database`); it may
    /// carry a password, so it is never printed whole ([`PostgresSettings::place`]).
    pub url: String,
    /// The schema the tables live in, created if missing.
    pub schema: String,
    /// Connections in the pool.
    pub pool: usize,
    /// How long a shard's lease lasts without renewal: how long a crashed node's
    /// shards wait before another node (or its restart) takes them.
    pub lease_ttl: std::time::Duration,
    /// The certificates (PEM) that may sign the database server's, beside the public
    /// roots: for a private CA or a self-signed server. Resolved against the
    /// configuration file's directory.
    pub ca_file: Option<std::path::PathBuf>,
}

/// Default lease of a shard: 10 s.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Default schema of the PostgreSQL store.
pub const DEFAULT_SCHEMA: &str = "autoclose";
/// Default connections in the pool.
pub const DEFAULT_POOL: usize = 8;

impl PostgresSettings {
    /// The database as errors and logs name it: the URL without user or password.
    pub fn place(&self) -> String {
        let rest = self
            .url
            .split_once("://")
            .map_or(self.url.as_str(), |(_, rest)| rest);
        let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        let host = host.split_once('?').map_or(host, |(host, _)| host);
        format!("postgres://{host} (schema {})", self.schema)
    }
}

impl std::fmt::Debug for StoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreSettings::Redb => f.write_str("Redb"),
            StoreSettings::Postgres(p) => f.debug_tuple("Postgres").field(&p.place()).finish(),
        }
    }
}

/// The `store` section as written.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStore {
    /// `redb` (the default: files in the data directory) or `postgres`.
    kind: StoreKind,
    /// For `postgres`: the connection URL, `postgres://user:password@host:5432/database`
    /// (`env:NAME` reads it from the environment, which keeps the password out of the file).
    url: Option<String>,
    /// For `postgres`: the schema the tables go in (default `autoclose`).
    schema: Option<String>,
    /// For `postgres`: connections in the pool (default 8).
    pool: Option<usize>,
    /// For `postgres`: how long a shard's lease lasts without renewal, e.g. "10s" (the
    /// default): how long a crashed node's shards wait before they are taken again.
    lease_ttl: Option<String>,
    /// For `postgres`: a PEM file of the certificates that may sign the server's (a
    /// private CA, or the server's own self-signed one), trusted beside the public roots
    /// for connections with `sslmode=require` in the URL. Relative to this file.
    ca_file: Option<String>,
}

/// The kinds of store.
#[derive(Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum StoreKind {
    /// redb files in the data directory.
    Redb,
    /// A PostgreSQL database.
    Postgres,
}

impl RawStore {
    /// The checked section. Errors name the field.
    pub(crate) fn parse(
        self,
        env: &impl Fn(&str) -> Option<String>,
        base: &std::path::Path,
    ) -> Result<StoreSettings, FieldError> {
        match self.kind {
            StoreKind::Redb => {
                if self.url.is_some()
                    || self.schema.is_some()
                    || self.pool.is_some()
                    || self.lease_ttl.is_some()
                    || self.ca_file.is_some()
                {
                    return Err(FieldError::new(
                        "store".into(),
                        "url, schema, pool, lease_ttl and ca_file are for \"kind\": \"postgres\""
                            .into(),
                    ));
                }
                Ok(StoreSettings::Redb)
            }
            StoreKind::Postgres => {
                let Some(url) = self.url else {
                    return Err(FieldError::new(
                        "store.url".into(),
                        "a postgres store needs its URL, e.g. \"env:DATABASE_URL\"".into(),
                    ));
                };
                let url = resolve_env(&url, env)
                    .map_err(|reason| FieldError::new("store.url".into(), reason))?;
                if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                    return Err(FieldError::new(
                        "store.url".into(),
                        "must start with postgres:// or postgresql://".into(),
                    ));
                }
                let schema = self.schema.unwrap_or_else(|| DEFAULT_SCHEMA.to_owned());
                let valid = schema.len() <= 63
                    && schema.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                    && schema
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                if !valid {
                    return Err(FieldError::new(
                        "store.schema".into(),
                        format!(
                            "{schema:?} is not a schema name: lowercase letters, digits and _, starting with a letter or _, at most 63"
                        ),
                    ));
                }
                let pool = self.pool.unwrap_or(DEFAULT_POOL);
                if !(1..=256).contains(&pool) {
                    return Err(FieldError::new(
                        "store.pool".into(),
                        format!("{pool} is out of range (1 to 256)"),
                    ));
                }
                let lease_ttl = match self.lease_ttl {
                    None => DEFAULT_LEASE_TTL,
                    Some(text) => {
                        let ms = autoclose_duration::Duration::parse(&text)
                            .map_err(|reason| FieldError::new("store.lease_ttl".into(), reason))?
                            .as_ms();
                        if !(1_000..=600_000).contains(&ms) {
                            return Err(FieldError::new(
                                "store.lease_ttl".into(),
                                format!("{text} is out of range (1s to 10m)"),
                            ));
                        }
                        std::time::Duration::from_millis(ms)
                    }
                };
                let ca_file = self.ca_file.map(|file| base.join(file));
                if let Some(file) = &ca_file
                    && !file.is_file()
                {
                    return Err(FieldError::new(
                        "store.ca_file".into(),
                        format!("{} is not a file", file.display()),
                    ));
                }
                Ok(StoreSettings::Postgres(PostgresSettings {
                    url,
                    schema,
                    pool,
                    lease_ttl,
                    ca_file,
                }))
            }
        }
    }
}
