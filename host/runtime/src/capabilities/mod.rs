//! The capabilities a plugin imports, one interface a file.
//!
//! Capabilities never act directly: they check the call against the tenant's rights
//! and the limits, then record a [`crate::Command`]. The core applies the commands
//! after the call returns, and drops them if it trapped, so a call's effects are
//! all-or-nothing. Reads (sessions, clock, pending timers) go to the host's state,
//! which is lent to the store for the call (see [`crate::World`]).

mod chat;
mod clock;
mod http;
mod logging;
mod sessions;
mod timers;

use crate::bindings::chat_gateway::plugin::{events, types};
use crate::state::InstanceState;
use crate::world::World;

/// Longest `kind` label of a post and `reason` of a close.
const MAX_KIND_BYTES: usize = 64;

impl<W: World> types::Host for InstanceState<W> {}
impl<W: World> events::Host for InstanceState<W> {}

/// A limit as the `u32` the contract reports it in.
fn clamp_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}
