//! What changed since a store last took the changes: the journal the core keeps while
//! change tracking is on (see `journal`).

use std::collections::HashSet;

use autoclose_runtime::{RequestId, SessionId, TenantId};

/// What changed since the changes were last taken.
#[derive(Debug, Default)]
pub(crate) struct Journal {
    pub(crate) sessions: HashSet<SessionId>,
    pub(crate) deliveries: HashSet<RequestId>,
    pub(crate) forgotten: Vec<(String, String)>,
    pub(crate) held: HashSet<TenantId>,
    /// Tenants no longer configured whose held events were left out.
    pub(crate) held_dropped: Vec<String>,
}

impl Journal {
    /// Notes that `session`'s record (or its timers) changed.
    pub(crate) fn note_session(&mut self, session: SessionId) {
        self.sessions.insert(session);
    }

    /// Notes that `tenant`'s held events changed.
    pub(crate) fn note_held(&mut self, tenant: TenantId) {
        self.held.insert(tenant);
    }
}
