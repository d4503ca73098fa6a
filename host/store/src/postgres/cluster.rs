//! One node's handle on the database the cluster shares: who is alive, which shard
//! leases it takes and gives back, and the inbox through which any node accepts
//! events for a shard another node owns.
//!
//! Liveness is a row per node in `nodes`, renewed like a lease (an expiry on the
//! database's clock), so that every node computes the same placement from the same
//! rows. Nothing here needs advisory locks or `LISTEN`/`NOTIFY`: the owner of a shard
//! polls its inbox, and correctness rests on the lease epochs alone.

use std::time::Duration;

use deadpool_postgres::Pool;
use postgres_types::Json;
use tokio::runtime::Handle;

use autoclose_config::PostgresSettings;
use autoclose_core::event::GatewayEvent;

use super::lease::{self, Lease, ShardLease, Taken};
use super::{PostgresStore, on_connection};
use crate::StoreError;

/// The meta key under which the shard count is recorded, once, by the first node.
const SHARDS_KEY: &str = "shards";

/// A live node as the database sees it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Node {
    /// Its id (host, process id and start time).
    pub node: String,
    /// How long it counts as alive without another heartbeat, in milliseconds on the
    /// database's clock.
    pub expires_in_ms: i64,
}

/// This node's place in the cluster.
#[derive(Clone)]
pub struct Cluster {
    pool: Pool,
    handle: Handle,
    schema: String,
    place: String,
    node: String,
    /// How long a lease or a heartbeat lasts without renewal.
    pub ttl: Duration,
    /// The number of virtual shards, the same on every node.
    pub shards: usize,
}

impl Cluster {
    /// Joins the database in `pool` as `node`, with `shards` virtual shards. The
    /// shard count is recorded by the first node; another one is refused (sessions
    /// would hash to other shards). Run from a blocking thread.
    pub fn new(
        pool: Pool,
        settings: &PostgresSettings,
        handle: &Handle,
        node: &str,
        shards: usize,
    ) -> Result<Self, StoreError> {
        let cluster = Cluster {
            pool,
            handle: handle.clone(),
            schema: settings.schema.clone(),
            place: settings.place(),
            node: node.to_owned(),
            ttl: settings.lease_ttl,
            shards,
        };
        let wanted = i64::try_from(shards).unwrap_or(i64::MAX);
        let s = &cluster.schema;
        let recorded: i64 =
            handle.block_on(cluster.with("record the shard count", async |client| {
                let row = client
                    .query_one(
                        &format!(
                            "INSERT INTO {s}.meta (shard, key, value) VALUES (-1, $1, $2)
                         ON CONFLICT (shard, key) DO UPDATE SET value = {s}.meta.value
                         RETURNING value"
                        ),
                        &[&SHARDS_KEY, &wanted],
                    )
                    .await?;
                Ok(row.get(0))
            }))?;
        if recorded != wanted {
            return Err(StoreError::Query {
                database: cluster.place.clone(),
                operation: "join",
                reason: format!(
                    "the store was written with --shards {recorded}, not {shards}; every node must start with the shard count it was written with"
                ),
            });
        }
        Ok(cluster)
    }

    /// This node's id.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The database as errors and logs name it (no password).
    pub fn place(&self) -> &str {
        &self.place
    }

    /// Runs `work` on a pooled connection; errors name `operation` and the database.
    async fn with<T>(
        &self,
        operation: &'static str,
        work: impl AsyncFnOnce(&mut deadpool_postgres::Client) -> Result<T, tokio_postgres::Error>,
    ) -> Result<T, StoreError> {
        on_connection(&self.pool, &self.place, operation, work).await
    }

    /// Says this node is alive for another `ttl` and returns every live node
    /// (itself included), in id order: the input of the placement.
    pub async fn heartbeat(&self) -> Result<Vec<Node>, StoreError> {
        let s = &self.schema;
        let ttl = millis(self.ttl);
        self.with("heartbeat", async |client| {
            client
                .execute(
                    &format!(
                        "INSERT INTO {s}.nodes (node, started_at, expires_at)
                         VALUES ($1, now(), now() + $2 * interval '1 millisecond')
                         ON CONFLICT (node) DO UPDATE SET expires_at = EXCLUDED.expires_at"
                    ),
                    &[&self.node, &ttl],
                )
                .await?;
            // Nodes gone for a while are removed by whoever sees them first.
            client
                .execute(
                    &format!("DELETE FROM {s}.nodes WHERE expires_at < now() - interval '1 hour'"),
                    &[],
                )
                .await?;
            live(client, s).await
        })
        .await
    }

    /// The live nodes, without a heartbeat of this one.
    pub async fn nodes(&self) -> Result<Vec<Node>, StoreError> {
        let s = &self.schema;
        self.with("read the nodes", async |client| live(client, s).await)
            .await
    }

    /// Removes this node from the live ones (at a graceful stop), so that the others
    /// place its shards at once.
    pub async fn leave(&self) {
        let s = &self.schema;
        let _ = self
            .with("leave", async |client| {
                client
                    .execute(
                        &format!("DELETE FROM {s}.nodes WHERE node = $1"),
                        &[&self.node],
                    )
                    .await
            })
            .await;
    }

    /// Takes shard `shard`'s lease unless another node holds one that has not expired
    /// (`None` then); a takeover raises the epoch.
    pub async fn take(&self, shard: usize) -> Result<Option<Lease>, StoreError> {
        let shard = i32::try_from(shard).unwrap_or(i32::MAX);
        let taken = self
            .with("take a shard's lease", async |client| {
                lease::take(client, &self.schema, shard, &self.node, self.ttl).await
            })
            .await?;
        Ok(match taken {
            Taken::Ours(lease) => Some(lease),
            Taken::Held { .. } => None,
        })
    }

    /// Extends `held` by the lease lifetime; `false` when another node took it over.
    pub async fn renew(&self, held: &Lease) -> Result<bool, StoreError> {
        self.with("renew a shard's lease", async |client| {
            lease::renew(&***client, &self.schema, held, self.ttl).await
        })
        .await
    }

    /// Lets `held` go at once, for the node the placement gives it to.
    pub async fn release(&self, held: &Lease) -> Result<bool, StoreError> {
        self.with("release a shard's lease", async |client| {
            lease::release(&***client, &self.schema, held).await
        })
        .await
    }

    /// Every shard's lease, in shard order.
    pub async fn leases(&self) -> Result<Vec<ShardLease>, StoreError> {
        self.with("read the shard leases", async |client| {
            lease::list(&***client, &self.schema).await
        })
        .await
    }

    /// The store of a shard this node holds `held` for: its commits are checked
    /// against the lease's epoch.
    pub fn store(&self, held: Lease) -> PostgresStore {
        PostgresStore {
            pool: self.pool.clone(),
            handle: self.handle.clone(),
            schema: self.schema.clone(),
            shard: held.shard,
            place: self.place.clone(),
            lease: held,
        }
    }

    /// Makes `events` durable in shard `shard`'s inbox, for its owner to apply in
    /// order: what ingest on a node that does not own the shard answers `202` after.
    pub async fn push_inbox(
        &self,
        shard: usize,
        events: &[GatewayEvent],
    ) -> Result<(), StoreError> {
        let shard = i32::try_from(shard).unwrap_or(i32::MAX);
        let s = &self.schema;
        self.with("write to a shard's inbox", async |client| {
            let statement = client
                .prepare_cached(&format!(
                    "INSERT INTO {s}.inbox (shard, events) VALUES ($1, $2)"
                ))
                .await?;
            client.execute(&statement, &[&shard, &Json(events)]).await
        })
        .await
        .map(|_| ())
    }
}

/// The nodes whose heartbeat has not expired, in id order.
async fn live(
    client: &deadpool_postgres::Client,
    schema: &str,
) -> Result<Vec<Node>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT node, (EXTRACT(EPOCH FROM expires_at - now()) * 1000)::bigint
                 FROM {schema}.nodes WHERE expires_at > now() ORDER BY node"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Node {
            node: row.get(0),
            expires_in_ms: row.get(1),
        })
        .collect())
}

fn millis(ttl: Duration) -> f64 {
    ttl.as_secs_f64() * 1000.0
}
