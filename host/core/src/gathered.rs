//! The events gathered for one call of `hooks.on-events` (see `batch`).

use autoclose_runtime::{SessionId, TenantId};

use crate::hook::Hook;

/// Events gathered for one call, as parallel lists (scanning the sessions touches a
/// few cache lines, not every event).
#[derive(Default)]
pub(crate) struct Batch {
    pub(crate) tenant: TenantId,
    /// Each event's host time.
    pub(crate) times: Vec<u64>,
    /// Each event's session.
    pub(crate) sessions: Vec<SessionId>,
    /// The events.
    pub(crate) hooks: Vec<Hook>,
    /// Per event of the call being made, how often it was delivered before.
    pub(crate) redeliveries: Vec<u8>,
    /// When the first timer, retry or wake-up was due as the batch began.
    pub(crate) due: Option<u64>,
}

impl Batch {
    pub(crate) fn len(&self) -> usize {
        self.hooks.len()
    }

    pub(crate) fn push(&mut self, tenant: TenantId, at: u64, hook: Hook) {
        self.tenant = tenant;
        self.times.push(at);
        self.sessions.push(hook.session());
        self.hooks.push(hook);
    }

    /// The events, emptying the batch.
    pub(crate) fn take(&mut self) -> Vec<(u64, Hook)> {
        self.sessions.clear();
        self.times.drain(..).zip(self.hooks.drain(..)).collect()
    }
}
