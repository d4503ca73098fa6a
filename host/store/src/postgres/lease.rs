//! Shard ownership: one node at a time owns a shard, through a lease (owner, epoch,
//! expiry on the database's clock), and every commit of the shard's changes checks the
//! epoch inside its own transaction.
//!
//! Why the epoch and not the lease alone (Temporal's `range_id`, Restate's leader
//! epoch): a node paused past its lease (a long GC, SIGSTOP, a VM migration) does not
//! know it lost the shard. When it wakes, its next commit finds a higher epoch and is
//! refused, so nothing it does after losing the shard becomes durable or is sent as
//! done. The commit reads the lease row `FOR SHARE` and a takeover updates it, so the
//! two serialize: a commit either lands before the takeover or is refused after it.

use std::time::Duration;

use tokio_postgres::GenericClient;

/// A shard's lease as its owner holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// The shard.
    pub shard: i32,
    /// Who owns it: the node's id.
    pub owner: String,
    /// The generation, one more at each takeover; commits carry it.
    pub epoch: i64,
}

/// What taking a lease found.
#[derive(Debug, PartialEq, Eq)]
pub enum Taken {
    /// The lease is ours (the shard was free, expired, or already ours).
    Ours(Lease),
    /// Another node holds it for this much longer.
    Held {
        /// The node holding it.
        owner: String,
        /// Its lease's remaining time, on the database's clock.
        left: Duration,
    },
}

/// Takes shard `shard`'s lease for `owner` for `ttl`, unless another node holds an
/// unexpired one. A takeover raises the epoch.
pub async fn take(
    client: &mut tokio_postgres::Client,
    schema: &str,
    shard: i32,
    owner: &str,
    ttl: Duration,
) -> Result<Taken, tokio_postgres::Error> {
    let txn = client.transaction().await?;
    txn.execute(
        &format!(
            "INSERT INTO {schema}.shard_leases (shard, owner, epoch, expires_at)
             VALUES ($1, '', 0, now()) ON CONFLICT (shard) DO NOTHING"
        ),
        &[&shard],
    )
    .await?;
    let row = txn
        .query_one(
            &format!(
                "SELECT owner, epoch, GREATEST(EXTRACT(EPOCH FROM expires_at - now()), 0)::float8
                 FROM {schema}.shard_leases WHERE shard = $1 FOR UPDATE"
            ),
            &[&shard],
        )
        .await?;
    let (holder, epoch, left): (String, i64, f64) = (row.get(0), row.get(1), row.get(2));
    if holder != owner && left > 0.0 {
        return Ok(Taken::Held {
            owner: holder,
            left: Duration::from_secs_f64(left),
        });
    }
    let epoch = epoch + 1;
    txn.execute(
        &format!(
            "UPDATE {schema}.shard_leases
             SET owner = $2, epoch = $3, expires_at = now() + $4 * interval '1 millisecond'
             WHERE shard = $1"
        ),
        &[&shard, &owner, &epoch, &millis(ttl)],
    )
    .await?;
    txn.commit().await?;
    Ok(Taken::Ours(Lease {
        shard,
        owner: owner.to_owned(),
        epoch,
    }))
}

/// Extends `lease` by `ttl` from now; `false` when it is no longer ours (taken over).
pub async fn renew(
    client: &impl GenericClient,
    schema: &str,
    lease: &Lease,
    ttl: Duration,
) -> Result<bool, tokio_postgres::Error> {
    let updated = client
        .execute(
            &format!(
                "UPDATE {schema}.shard_leases SET expires_at = now() + $4 * interval '1 millisecond'
                 WHERE shard = $1 AND owner = $2 AND epoch = $3"
            ),
            &[&lease.shard, &lease.owner, &lease.epoch, &millis(ttl)],
        )
        .await?;
    Ok(updated == 1)
}

/// Lets `lease` go at once (its expiry set to now), so that another node takes the
/// shard without waiting; `false` when it was no longer ours anyway.
pub async fn release(
    client: &impl GenericClient,
    schema: &str,
    lease: &Lease,
) -> Result<bool, tokio_postgres::Error> {
    renew(client, schema, lease, Duration::ZERO).await
}

/// A shard's lease as every node can read it.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct ShardLease {
    /// The shard.
    pub shard: i32,
    /// The node owning it (empty: never owned).
    pub owner: String,
    /// Its generation.
    pub epoch: i64,
    /// How long it lasts without renewal, in milliseconds on the database's clock
    /// (negative: expired, free to take).
    pub expires_in_ms: i64,
}

/// Every shard's lease, in shard order.
pub async fn list(
    client: &impl GenericClient,
    schema: &str,
) -> Result<Vec<ShardLease>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "SELECT shard, owner, epoch,
                        (EXTRACT(EPOCH FROM expires_at - now()) * 1000)::bigint
                 FROM {schema}.shard_leases ORDER BY shard"
            ),
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| ShardLease {
            shard: row.get(0),
            owner: row.get(1),
            epoch: row.get(2),
            expires_in_ms: row.get(3),
        })
        .collect())
}

/// The statement a commit runs first, in its transaction: the shard's current epoch,
/// with the row locked against a takeover until the commit ends.
pub fn fence(schema: &str) -> String {
    format!("SELECT epoch FROM {schema}.shard_leases WHERE shard = $1 FOR SHARE")
}

fn millis(ttl: Duration) -> f64 {
    ttl.as_secs_f64() * 1000.0
}
