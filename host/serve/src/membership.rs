//! A node's part in a cluster on the PostgreSQL store: every third of the lease
//! lifetime it says it is alive, renews the leases of the shards it serves, and moves
//! shards as the placement over the live nodes says (taking the ones placed on it,
//! giving away a bounded number placed elsewhere).
//!
//! The engines do the serving; this task only decides which of them serve. A shard is
//! taken by taking its lease (which raises its epoch, fencing the previous owner),
//! reading its state, and handing both to the shard's engine ([`Request::Own`]). It is
//! given away by telling the engine to commit and forget ([`Request::Disown`]), then
//! releasing the lease so the next owner takes it at once.
//!
//! When the leases cannot be renewed for two thirds of their lifetime (the database is
//! unreachable), the node stops serving every shard before its leases can expire and
//! another node takes them; it goes on trying, and takes its share again when the
//! database answers.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autoclose_store::postgres::cluster::Cluster;
use autoclose_store::postgres::lease::Lease;
use autoclose_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::engine::Health;
use crate::metrics::Metrics;
use crate::placement;
use crate::request::{EngineSender, Request};

/// The leases this node holds, by shard: shared with the HTTP side (for `/healthz`)
/// and with the stop, which releases them.
pub type Held = Arc<Mutex<BTreeMap<usize, Lease>>>;

/// The task's parts.
pub struct Membership {
    /// The node's handle on the shared database.
    pub cluster: Arc<Cluster>,
    /// Each shard's engine.
    pub engines: Vec<EngineSender>,
    /// Each shard's health (its `owned` flag is the engine's).
    pub healths: Vec<Arc<Health>>,
    /// What this node holds.
    pub held: Held,
    /// Where moves are counted.
    pub metrics: Metrics,
    /// Shards an engine stopped serving on its own (a commit refused or failed).
    pub lost: mpsc::UnboundedReceiver<usize>,
}

impl Membership {
    /// Runs until aborted (at the node's stop, which then releases what is held).
    pub async fn run(mut self) {
        let ttl = self.cluster.ttl;
        let mut every = tokio::time::interval(ttl / 3);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_renewed = Instant::now();
        loop {
            every.tick().await;
            self.note_losses();
            match self.round().await {
                Ok(()) => last_renewed = Instant::now(),
                Err(e) => {
                    tracing::warn!("cluster round failed: {e}");
                    if last_renewed.elapsed() >= ttl * 2 / 3 && !self.held_shards().is_empty() {
                        tracing::error!(
                            "the shard leases could not be renewed for {:?}; this node stops serving its shards before the leases can expire, and takes its share again when the database answers",
                            last_renewed.elapsed()
                        );
                        for shard in self.held_shards() {
                            self.disown(shard).await;
                            self.forget(shard, "lost");
                        }
                    }
                }
            }
            self.metrics
                .shards_owned
                .set(i64::try_from(self.held_shards().len()).unwrap_or(i64::MAX));
        }
    }

    /// One round: heartbeat, renewals, then the placement's moves.
    async fn round(&mut self) -> Result<(), StoreError> {
        let nodes = self.cluster.heartbeat().await?;
        for shard in self.held_shards() {
            let Some(lease) = self.lease(shard) else {
                continue;
            };
            let renewed = self.cluster.renew(&lease).await;
            let outcome = match &renewed {
                Ok(true) => "renewed",
                Ok(false) => "lost",
                Err(_) => "failed",
            };
            Metrics::count(&self.metrics.lease_renewals, outcome, 1);
            if !renewed? {
                tracing::error!(
                    shard,
                    epoch = lease.epoch,
                    "the shard was taken over by another node; this node stops serving it"
                );
                self.disown(shard).await;
                self.forget(shard, "lost");
            }
        }
        let names: Vec<String> = nodes.into_iter().map(|n| n.node).collect();
        let held = self.held_shards();
        let shards = self.cluster.shards;
        let plan = placement::plan(
            self.cluster.node(),
            &names,
            &held,
            shards,
            placement::max_give(shards),
        );
        for shard in plan.give {
            let Some(lease) = self.lease(shard) else {
                continue;
            };
            self.disown(shard).await;
            self.forget(shard, "given");
            self.cluster.release(&lease).await?;
            tracing::info!(
                shard,
                to = placement::placement(shards, &names)[shard].unwrap_or(""),
                "gave the shard to the node it is placed on"
            );
        }
        for shard in plan.take {
            self.take(shard).await?;
        }
        Ok(())
    }

    /// Takes `shard` if its lease is free (or expired): reads its state and hands it
    /// to its engine. A lease still held by another node is left for a later round.
    async fn take(&mut self, shard: usize) -> Result<(), StoreError> {
        let started = Instant::now();
        let Some(lease) = self.cluster.take(shard).await? else {
            return Ok(());
        };
        // Held from now on: a stop in the middle releases it.
        if let Ok(mut held) = self.held.lock() {
            held.insert(shard, lease.clone());
        }
        let epoch = lease.epoch;
        let store = self.cluster.store(lease);
        let loaded = tokio::task::spawn_blocking(move || store.load().map(|s| (store, s)))
            .await
            .map_err(|e| StoreError::Query {
                database: self.cluster.place().to_owned(),
                operation: "load a shard",
                reason: e.to_string(),
            });
        let (store, stored) = match loaded.and_then(|l| l) {
            Ok(loaded) => loaded,
            Err(e) => {
                self.forget(shard, "lost");
                return Err(e);
            }
        };
        let (reply, restored) = oneshot::channel();
        let own = Request::Own {
            store: Box::new(store),
            stored: Box::new(stored),
            reply,
        };
        if self.engines[shard].send(own).is_err() {
            return Ok(());
        }
        let Ok(restored) = restored.await else {
            return Ok(());
        };
        let took = started.elapsed();
        self.metrics.takeover_seconds.observe(took.as_secs_f64());
        Metrics::count(&self.metrics.shard_moves, "taken", 1);
        tracing::info!(
            shard,
            epoch,
            sessions = restored.sessions,
            timers = restored.timers,
            deliveries = restored.deliveries,
            took_ms = took.as_millis() as u64,
            "took the shard"
        );
        Ok(())
    }

    /// Tells `shard`'s engine to commit and stop serving it; waits until it has.
    async fn disown(&self, shard: usize) {
        // New events for the shard go to its inbox from now on.
        self.healths[shard].owned.store(false, Ordering::SeqCst);
        let (reply, done) = oneshot::channel();
        if self.engines[shard].send(Request::Disown { reply }).is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(30), done).await;
        }
    }

    /// Drops `shard` from what is held, counted as `why`.
    fn forget(&self, shard: usize, why: &str) {
        let removed = self
            .held
            .lock()
            .map(|mut held| held.remove(&shard).is_some())
            .unwrap_or(false);
        if removed {
            Metrics::count(&self.metrics.shard_moves, why, 1);
        }
    }

    /// Shards whose engine stopped serving them on its own since the last round: no
    /// longer held (a later round takes them again if they are placed here).
    fn note_losses(&mut self) {
        while let Ok(shard) = self.lost.try_recv() {
            if !self.healths[shard].owned.load(Ordering::SeqCst) {
                self.forget(shard, "lost");
            }
        }
    }

    fn held_shards(&self) -> Vec<usize> {
        self.held
            .lock()
            .map(|held| held.keys().copied().collect())
            .unwrap_or_default()
    }

    fn lease(&self, shard: usize) -> Option<Lease> {
        self.held.lock().ok()?.get(&shard).cloned()
    }
}

/// At a graceful stop, once the engines committed: lets every held lease go and
/// leaves the live nodes, so that the others take the shards at once.
pub async fn leave(cluster: &Cluster, held: &Held) {
    let leases: Vec<Lease> = held
        .lock()
        .map(|mut held| std::mem::take(&mut *held).into_values().collect())
        .unwrap_or_default();
    for lease in &leases {
        let _ = cluster.release(lease).await;
    }
    cluster.leave().await;
}
