//! The core of the autoclose host: sessions, timers and one plugin instance per
//! tenant, driven by gateway events and by time.
//!
//! Time is an input. Every entry point takes the host time in milliseconds; replay
//! passes virtual time from the scenario, `serve` passes the wall clock. Nothing here
//! sleeps, reads a clock or does I/O: webhook attempts leave through
//! [`autoclose_webhook::outbound::Outbound`], and actions are collected for the caller
//! with [`Core::take_actions`].
//!
//! Ordering rules, relied on by plugins:
//! - an event at time `t` is handled before any timer due at `t`;
//! - timers fire in due order, ties in the order they were set; a webhook retry due at
//!   the same instant as a timer comes after it;
//! - a hook's actions apply in the order the hook asked for them, after it returns;
//! - follow-ups (a plugin's own close, synchronous HTTP answers) are handled before
//!   the next event or timer.
//!
//! The stages of handling something, each a module: [`intake`](Core::handle) records
//! what an event says and makes the hook; `invoke` calls the tenant's plugin and
//! hands back what it asked for; `apply` carries it out; `deliveries` runs the webhook
//! requests; `drive` is the loop that sequences them, and `batch` the variant that
//! delivers several events in one call. `journal` notes what changed for a store.

#![warn(missing_docs)]

pub mod action;
mod apply;
mod batch;
mod bounds;
#[cfg(test)]
mod capability_tests;
mod changes;
mod core;
mod deliveries;
mod drive;
mod error;
pub mod event;
mod gathered;
pub mod history;
mod hook;
mod intake;
mod invoke;
mod journal;
pub mod outbox;
mod recording;
pub mod records;
pub mod sessions;
pub mod split;
pub mod start;
mod state;
mod step_log;
pub mod steps;
mod tenant;
pub mod timers;
pub mod view;

pub use crate::core::{Core, HookObserver, UnknownTenants};
pub use batch::MAX_BATCH_EVENTS;
pub use bounds::{
    MAX_FOLLOW_UPS, MAX_TIME_MS, MAX_TIMER_REDELIVERIES, MAX_UNKNOWN_TENANTS_REMEMBERED,
    MIN_TIMER_DELAY_MS, rfc3339,
};
pub use error::{CoreError, EventError};
pub use journal::Restored;
pub use state::{HostState, PluginComponent, Runtime};
pub use tenant::{
    FIRST_BACKOFF, MAX_BACKOFF, MAX_QUEUED_EVENTS, QUIET_RESET_MS, TenantFailure, TenantStats,
    backoff,
};
