//! The part of the core's state that a plugin's capability calls read: lent to the
//! instance's store for the duration of each call (see [`autoclose_runtime::World`]).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use autoclose_config::Webhook;
use autoclose_runtime::{ChannelId, RequestId, SessionId, SessionView, TenantId, TimerKey, World};

use crate::outbox::Outbox;
use crate::sessions::{Channels, Sessions};
use crate::timers::TimerStore;

/// Sessions, channels, timers and deliveries: what hooks read, and what the core
/// changes once they return.
#[derive(Debug, Default)]
pub struct HostState {
    /// All sessions.
    pub sessions: Sessions,
    /// Channel names.
    pub channels: Channels,
    /// Which tenants use which channels: a tenant's plugin may read the names of its
    /// own channels only.
    pub channel_users: foldhash::HashSet<(TenantId, ChannelId)>,
    /// Pending timers.
    pub timers: TimerStore,
    /// The operator's webhooks.
    pub webhooks: Arc<BTreeMap<String, Webhook>>,
    /// Webhooks that answered 410 Gone, per tenant: nothing more goes to them.
    pub gone: HashSet<(TenantId, String)>,
    /// Deliveries under way.
    pub outbox: Outbox,
    /// Host time in ms.
    pub now: u64,
    /// Next outbound request id.
    pub next_request: RequestId,
}

impl HostState {
    /// Puts a timer whose delivery must wait (its tenant is backed off, or its hook
    /// failed) back into the store, due at `at`, if its session is still open; returns
    /// whether it did. Timers wait as timers (durable where the store is), not in a
    /// queue.
    pub fn hold_timer(
        &mut self,
        tenant: TenantId,
        key: TimerKey,
        at: u64,
        payload: &[u8],
        redeliveries: u8,
    ) -> bool {
        if self.sessions.open_of(tenant, key.session).is_none() {
            return false;
        }
        self.timers
            .set_redelivery(key, tenant, at, payload, redeliveries);
        true
    }

    /// The gateway's id of `session` (empty for an unknown one).
    #[inline]
    pub fn external(&self, session: SessionId) -> String {
        self.sessions
            .get(session)
            .map(|s| s.external.to_string())
            .unwrap_or_default()
    }
}

impl World for HostState {
    #[inline]
    fn now(&self) -> u64 {
        self.now
    }

    #[inline]
    fn session(&self, tenant: TenantId, session: SessionId) -> Option<SessionView<'_>> {
        self.sessions
            .get(session)
            .filter(|s| s.tenant == tenant)
            .map(|s| SessionView {
                external: &s.external,
                attributes: &s.attributes,
                presence: s.presence,
                state: &s.plugin_state,
                closed: s.closed,
            })
    }

    #[inline]
    fn channel_name(&self, tenant: TenantId, channel: ChannelId) -> Option<&str> {
        if !self.channel_users.contains(&(tenant, channel)) {
            return None;
        }
        self.channels.name(channel)
    }

    #[inline]
    fn timer_pending(&self, key: TimerKey) -> bool {
        self.timers.contains(key)
    }

    #[inline]
    fn timer_keys(&self, session: SessionId) -> impl Iterator<Item = u32> + '_ {
        self.timers.keys_of(session).map(|k| k.key)
    }

    #[inline]
    fn timers_of(&self, tenant: TenantId) -> usize {
        self.timers.count_of(tenant)
    }

    #[inline]
    fn webhook_configured(&self, webhook: &str) -> bool {
        self.webhooks.contains_key(webhook)
    }

    #[inline]
    fn webhook_gone(&self, tenant: TenantId, webhook: &str) -> bool {
        self.gone.contains(&(tenant, webhook.to_owned()))
    }

    #[inline]
    fn in_flight(&self, tenant: TenantId) -> usize {
        self.outbox.count(tenant)
    }

    #[inline]
    fn next_request(&mut self) -> RequestId {
        let id = self.next_request;
        self.next_request = RequestId(id.0 + 1);
        id
    }
}

/// The runtime the core's tenants run on: instances that read the core's state.
pub type Runtime = autoclose_runtime::Runtime<HostState>;

/// A component loaded for the core's tenants.
pub type PluginComponent = autoclose_runtime::PluginComponent<HostState>;
