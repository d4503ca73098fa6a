//! Platform adapters: `serve` speaking a contact-centre platform's own webhooks and
//! REST API, so that the platform needs no gateway of its own.
//!
//! Each adapter has the same three parts, pure where it can be:
//! - inbound: a webhook delivery authenticated, then mapped to [`GatewayEvent`]s
//!   (our own posts, echoed back, carry `origin: "autoclose"` and change nothing);
//! - outbound: a chat action (the callback record the engine keeps in order per
//!   session) made as the platform's REST calls, with an [`AttemptResult`] that the
//!   engine's retry policy settles;
//! - reconciliation: what the webhooks would have said, read back through the API, for
//!   the deliveries that reached no node.
//!
//! [`GatewayEvent`]: autoclose_core::event::GatewayEvent
//! [`AttemptResult`]: autoclose_webhook::retry::AttemptResult

#![warn(missing_docs)]

/// The origin our echoed posts get, on every platform: the built-in component ignores
/// messages from it, so our own warning never restarts a cycle.
pub const ORIGIN: &str = "autoclose";

pub mod action;
pub mod chatwoot;
pub mod fields;
pub mod mapped;
pub mod rest;
pub mod rocketchat;
