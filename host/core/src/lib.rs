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
#[cfg(test)]
mod capability_tests;
mod core;
mod deliveries;
mod drive;
mod error;
pub mod event;
mod hook;
mod intake;
mod invoke;
mod journal;
pub mod outbox;
pub mod records;
pub mod sessions;
pub mod start;
mod state;
mod tenant;
pub mod timers;

use std::time::{Duration, UNIX_EPOCH};

pub use crate::core::{Core, HookObserver};
pub use batch::MAX_BATCH_EVENTS;
pub use error::{CoreError, EventError};
pub use journal::Restored;
pub use state::HostState;
pub use tenant::{
    FIRST_BACKOFF, MAX_BACKOFF, MAX_QUEUED_EVENTS, QUIET_RESET_MS, TenantStats, backoff,
};

/// The runtime the core's tenants run on: instances that read the core's state.
pub type Runtime = autoclose_runtime::Runtime<HostState>;

/// A component loaded for the core's tenants.
pub type PluginComponent = autoclose_runtime::PluginComponent<HostState>;

/// The earliest a timer may fire, after the time it is set at (see `timers.set` in
/// the WIT): a floor that keeps a plugin from spinning the host through timers.
pub const MIN_TIMER_DELAY_MS: u64 = 1_000;

/// The latest host time accepted: the last millisecond of year 9999, which RFC 3339
/// timestamps can still show.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// Times a timer whose hook failed is delivered again before it is dropped.
pub const MAX_TIMER_REDELIVERIES: u8 = 3;

/// Follow-up hooks (a plugin's own close, webhook outcomes known at once) one tenant
/// may cause from one event or timer before it is treated as failing: a plugin that
/// answers every webhook outcome with another request would otherwise never stop.
pub const MAX_FOLLOW_UPS: u32 = 256;

/// Unknown tenant names remembered for log-once reporting; beyond this, debug only.
pub const MAX_UNKNOWN_TENANTS_REMEMBERED: usize = 1024;

/// Milliseconds since the Unix epoch as RFC 3339 (UTC, whole seconds); times past
/// [`MAX_TIME_MS`] show as its last second.
pub fn rfc3339(ms: u64) -> String {
    let ms = ms.min(MAX_TIME_MS);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}
