//! What the capabilities read of the host's state while a hook runs.
//!
//! The runtime owns the sandbox, not the sessions and timers: those are the core's.
//! A capability call (is this session the tenant's and open? how many timers does it
//! have?) reads them through this trait, which the core implements over its own state.
//! The state is lent to the instance's store for the duration of each call (moved in
//! and back out, no locking and no copying), so every read sees the host as the
//! hook's event left it.

use crate::bindings::chat_gateway::plugin::types::Presence;
use crate::ids::{ChannelId, RequestId, SessionId, TenantId, TimerKey};

/// One session as a plugin may see it.
#[derive(Clone, Copy, Debug)]
pub struct SessionView<'a> {
    /// The gateway's own id of the session.
    pub external: &'a str,
    /// Attributes from the session's opening, in name order.
    pub attributes: &'a [(String, String)],
    /// What the end user's client last reported.
    pub presence: Presence,
    /// What the tenant's plugin keeps for the session (`sessions.set-state`).
    pub state: &'a [u8],
    /// The session has ended: the plugin may read it, not act on it.
    pub closed: bool,
}

/// The host's state as the capabilities read it. `Default` is an empty world: what an
/// instance sees outside a call, and during `about` calls.
pub trait World: Default + Send + 'static {
    /// The host time in ms.
    fn now(&self) -> u64;

    /// `tenant`'s session `session`, open or closed; `None` for another tenant's or
    /// an unknown one.
    fn session(&self, tenant: TenantId, session: SessionId) -> Option<SessionView<'_>>;

    /// The name of `channel`, if one of `tenant`'s sessions uses it: a plugin may
    /// read the names of its own tenant's channels only.
    fn channel_name(&self, tenant: TenantId, channel: ChannelId) -> Option<&str>;

    /// Whether the timer `key` is pending.
    fn timer_pending(&self, key: TimerKey) -> bool;

    /// The keys of `session`'s pending timers.
    fn timer_keys(&self, session: SessionId) -> impl Iterator<Item = u32> + '_;

    /// How many timers `tenant` has pending across its sessions.
    fn timers_of(&self, tenant: TenantId) -> usize;

    /// Whether the operator configured a webhook of that name.
    fn webhook_configured(&self, webhook: &str) -> bool;

    /// Whether `webhook` answered 410 Gone for `tenant`: nothing more goes to it.
    fn webhook_gone(&self, tenant: TenantId, webhook: &str) -> bool;

    /// `tenant`'s webhook deliveries under way.
    fn in_flight(&self, tenant: TenantId) -> usize;

    /// A fresh request id, for `http.send` to return.
    fn next_request(&mut self) -> RequestId;
}
