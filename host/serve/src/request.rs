//! What an engine is asked to do: its mailbox's messages, and how an ingest request
//! is refused. Shared by the engine, which takes them, and by the HTTP side and the
//! dispatcher, which send them.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use autoclose_config::TenantConfig;
use autoclose_core::event::GatewayEvent;
use autoclose_core::{Core, CoreError, EventError, PluginComponent, Restored};
use autoclose_store::{Store, Stored};
use autoclose_webhook::retry::AttemptResult;
use tokio::sync::oneshot;

/// What the engine is asked to do.
pub enum Request {
    /// Record these events (all or none) and answer once they are durable.
    Ingest {
        /// The checked events, in order.
        events: Vec<GatewayEvent>,
        /// Gets the outcome after the commit.
        reply: oneshot::Sender<Result<usize, Refused>>,
    },
    /// An attempt ended.
    Attempted {
        /// Which delivery.
        target: Target,
        /// How it went.
        result: AttemptResult,
    },
    /// Swap in a core built from a new configuration, carrying the state over.
    Reload {
        /// The new core (already configured).
        core: Box<Core>,
        /// The new gateways (callback and platform adapters).
        gateway: Box<crate::gateway::Gateway>,
        /// Gets what was carried over.
        reply: oneshot::Sender<Restored>,
    },
    /// Give one tenant new settings (or add it), leaving every other tenant as it is.
    ReplaceTenant {
        /// The tenant's new settings.
        tenant: Box<TenantConfig>,
        /// Its component, loaded (off the engine thread: compiling takes long).
        component: Arc<PluginComponent>,
        /// Gets whether its new instance started.
        reply: oneshot::Sender<Result<(), CoreError>>,
    },
    /// Check events as [`Request::Ingest`] would, without applying them: the first
    /// phase of a request whose events span several shards.
    Check {
        /// The events, in order.
        events: Vec<GatewayEvent>,
        /// Gets the outcome.
        reply: oneshot::Sender<Result<(), Refused>>,
    },
    /// Serve this shard from now on: its state as the store holds it (this node just
    /// took its lease). The engine restores it, applies the shard's inbox, and fires
    /// and sends for it.
    Own {
        /// The shard's store, fenced by the lease just taken.
        store: Box<dyn Store>,
        /// What the store held.
        stored: Box<Stored>,
        /// Gets what was restored.
        reply: oneshot::Sender<Restored>,
    },
    /// Stop serving this shard: commit what is pending, then forget the shard's state
    /// (another node takes it from the store) and send nothing more for it.
    Disown {
        /// Answered once the last commit is done (or failed).
        reply: oneshot::Sender<()>,
    },
    /// Read what the console shows; changes nothing.
    Inspect {
        /// What to read.
        query: crate::inspect::Inspect,
        /// Gets the answer.
        reply: oneshot::Sender<crate::inspect::Inspected>,
    },
    /// Stop firing timers and sending; finish what is under way, commit, and end.
    Stop {
        /// Longest wait for attempts under way.
        grace: Duration,
    },
}

/// What an attempt was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// A webhook delivery (the gateway's request id).
    Webhook(u64),
    /// A chat-action callback (its sequence number).
    Callback(u64),
}

/// Why an ingest request was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// An event cannot be applied (e.g. a message for a session with no channel).
    #[error("events[{index}]: {source}")]
    Event {
        /// Which event.
        index: usize,
        /// Why.
        source: EventError,
    },
    /// The store failed: nothing of the request is acknowledged.
    #[error("the store failed; try again later")]
    Unavailable,
    /// This node does not serve the events' shard (another node owns it): they go to
    /// the shard's inbox instead.
    #[error("the shard is served by another node")]
    NotOwned,
}

/// The sending half engines are reached through.
pub type EngineSender = Sender<Request>;
