//! The durable store behind `autoclose serve`: sessions with their timers, webhook
//! deliveries and chat-action callbacks under way.
//!
//! The interface is deliberately narrow (load everything at start, then commit
//! batches of whole records) so that another backend, for example one on a shared
//! database that lets several sidecars split the work, needs only these two calls.
//! [`redb::RedbStore`] is the default: an embedded file that needs no setup, with a
//! commit log in front of it (`log`, folded into the file by `fold`).

#![warn(missing_docs)]

#[cfg(test)]
mod conformance;
mod fold;
mod log;
pub mod postgres;
pub mod redb;
pub mod settings;

use std::path::PathBuf;

use autoclose_core::event::GatewayEvent;
use autoclose_core::records::{CallbackRecord, Changes, Snapshot};

/// Why the store failed. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be opened (missing permissions, not a store, locked by
    /// another process).
    #[error("cannot open the store {path}: {reason}")]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A record could not be read back: the file is damaged or was written by
    /// something else. Never reset silently.
    #[error("the store {path} is damaged: table {table}, key {key}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The table.
        table: &'static str,
        /// The record's key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The store was written by another version of the record format.
    #[error(
        "the store {path} holds records of version {found}; this build reads version {expected}"
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// What the file says.
        found: u32,
        /// What this build writes.
        expected: u32,
    },
    /// The database could not be reached, or its URL is not one.
    #[error("cannot reach the store {database}: {reason}")]
    Unreachable {
        /// The database, without user or password.
        database: String,
        /// Why.
        reason: String,
    },
    /// The database's schema is newer than this build: it was written by a newer
    /// autoclose, and is not touched.
    #[error(
        "the store {database} has schema version {found}; this build knows versions up to {expected}: run the autoclose that wrote it, or a newer one"
    )]
    Newer {
        /// The database, without user or password.
        database: String,
        /// The version found.
        found: i32,
        /// The newest this build knows.
        expected: i32,
    },
    /// A commit was refused because another node took the shard over: nothing of
    /// the commit landed, and this node must stop firing and sending for the shard.
    #[error(
        "the store {database}: shard {shard} was taken over (epoch {current}, this node held {epoch}); the commit was refused"
    )]
    Fenced {
        /// The database, without user or password.
        database: String,
        /// The shard.
        shard: i32,
        /// The epoch this node held.
        epoch: i64,
        /// The epoch found.
        current: i64,
    },
    /// A query failed (the database went away, a constraint, a timeout).
    #[error("store {database}: {operation} failed: {reason}")]
    Query {
        /// The database, without user or password.
        database: String,
        /// What was being done.
        operation: &'static str,
        /// Why.
        reason: String,
    },
    /// Reading or writing failed (I/O error, disk full).
    #[error("store {path}: {operation} failed: {reason}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// Why.
        reason: String,
    },
}

/// Everything a store holds: what a restart starts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stored {
    /// The core's sessions, timers and deliveries.
    pub core: Snapshot,
    /// Chat actions on their way to the gateway, in creation order.
    pub callbacks: Vec<CallbackRecord>,
    /// The next callback sequence number.
    pub next_callback: u64,
}

/// One batch of changes, written in one transaction: all of it or none.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// The core's changes.
    pub core: Changes,
    /// Callbacks written whole.
    pub callbacks: Vec<CallbackRecord>,
    /// Callbacks that ended, by sequence number.
    pub callbacks_ended: Vec<u64>,
    /// The next callback sequence number.
    pub next_callback: u64,
    /// Inbox entries applied in this batch, by sequence number: removed in the same
    /// transaction, so an entry is applied exactly once by whoever owns the shard.
    pub inbox_applied: Vec<u64>,
}

impl Batch {
    /// Whether there is nothing to write.
    pub fn is_empty(&self) -> bool {
        self.core.is_empty()
            && self.callbacks.is_empty()
            && self.callbacks_ended.is_empty()
            && self.inbox_applied.is_empty()
    }
}

/// Events a node that does not own their shard made durable for its owner: one
/// ingest request's part for the shard, all of it applied or none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inboxed {
    /// Its place in the shard's inbox; applied in this order.
    pub seq: u64,
    /// The events, in the order they came.
    pub events: Vec<GatewayEvent>,
}

/// A durable home for the core's state.
pub trait Store: Send {
    /// Reads everything; called once at start.
    fn load(&self) -> Result<Stored, StoreError>;

    /// Writes `batch` atomically; when this returns `Ok`, the batch survives a crash
    /// of the process or the machine.
    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError>;

    /// The events other nodes left for this shard, oldest first: all of them, since
    /// the owner must apply every acknowledged one before the events sent to it
    /// directly. A store only one node uses has none.
    fn inbox(&mut self) -> Result<Vec<Inboxed>, StoreError> {
        Ok(Vec::new())
    }
}
