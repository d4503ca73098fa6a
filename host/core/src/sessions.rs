//! What the host knows about each chat session, and the interning of names into the
//! small handles that cross the component boundary.

// foldhash (seeded per process) rather than SipHash: these maps are looked up on every
// event. foldhash resists deliberate collisions only minimally; that fits here because
// the keys (tenant names, session ids) come from the operator's own gateway, which
// `serve` authenticates, not from end users.
use foldhash::HashMap;

use autoclose_runtime::bindings::chat_gateway::plugin::types::Presence;
use autoclose_runtime::{ChannelId, SessionId, TenantId};

/// Interns channel names into dense handles, so that hot-path calls carry integers.
#[derive(Debug, Default)]
pub struct Channels {
    ids: HashMap<Box<str>, ChannelId>,
    names: Vec<Box<str>>,
}

impl Channels {
    /// The handle of `name`, allocating one on first sight.
    #[inline]
    pub fn intern(&mut self, name: &str) -> ChannelId {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        // Fewer than 2^32 channel names: each is one a gateway sent in an event.
        let id = ChannelId(u32::try_from(self.names.len()).unwrap_or(u32::MAX));
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The handle of `name` if it was interned.
    #[inline]
    pub fn get(&self, name: &str) -> Option<ChannelId> {
        self.ids.get(name).copied()
    }

    /// The name behind `id`.
    #[inline]
    pub fn name(&self, id: ChannelId) -> Option<&str> {
        self.names.get(id.0 as usize).map(|n| &**n)
    }
}

/// One session as the gateway described it.
#[derive(Debug)]
pub struct Session {
    /// Its tenant.
    pub tenant: TenantId,
    /// The gateway's session id.
    pub external: Box<str>,
    /// Its channel, once known (from `session_opened` or a message).
    pub channel: Option<ChannelId>,
    /// Attributes from `session_opened`, sorted by name.
    pub attributes: Vec<(String, String)>,
    /// What the end user's client last reported.
    pub presence: Presence,
    /// What the tenant's plugin keeps for the session (`sessions.set-state`); empty
    /// for most sessions.
    pub plugin_state: Vec<u8>,
    /// Closed sessions stay as tombstones so late events are recognised and ignored,
    /// until they are forgotten (see `Core::forget_closed`).
    pub closed: bool,
    /// Host time of the close (meaningful once `closed`).
    pub closed_at: u64,
    /// The highest message `seq` the gateway gave in this session: later messages at
    /// or below it are repeats (see `MessageEvent::seq`).
    pub last_seq: Option<u64>,
    /// The id of the last message (not an echo) the gateway gave in this session: the
    /// same id again at once is a repeat (see `MessageEvent::id`).
    pub last_id: Option<String>,
    /// What happened to the session, for people, while the core keeps histories
    /// (behind a pointer: most cores keep none, and then it costs one). Shared with
    /// the store's record of the session until the commit, so that taking the
    /// changes copies no history; a step added before that copies it then.
    pub history: Option<std::sync::Arc<crate::history::History>>,
}

/// All sessions, addressable by handle or by (tenant, gateway id).
#[derive(Debug, Default)]
pub struct Sessions {
    /// Per tenant, the gateway's session ids; looked up by `&str` without allocating.
    by_key: HashMap<TenantId, HashMap<Box<str>, SessionId>>,
    /// By handle. Handles are never reused: a plugin holding a stale handle can never
    /// reach another session through it.
    records: HashMap<SessionId, Session>,
    next_id: SessionId,
}

impl Sessions {
    /// Forgets every session, keeping the next handle: a handle is never reused, even
    /// after the sessions it could name went to another node.
    pub fn clear(&mut self) {
        self.by_key.clear();
        self.records.clear();
    }

    /// The handle of the tenant's session `external`, creating the record on first sight.
    pub fn open_or_get(&mut self, tenant: TenantId, external: &str) -> SessionId {
        let ids = self.by_key.entry(tenant).or_default();
        if let Some(id) = ids.get(external) {
            return *id;
        }
        let id = self.next_id;
        self.next_id = SessionId(id.0 + 1);
        self.records.insert(
            id,
            Session {
                tenant,
                external: external.into(),
                channel: None,
                attributes: Vec::new(),
                presence: Presence::Unknown,
                plugin_state: Vec::new(),
                closed: false,
                closed_at: 0,
                last_seq: None,
                last_id: None,
                history: None,
            },
        );
        ids.insert(external.into(), id);
        id
    }

    /// The id of `tenant`'s session `external`, if it is known.
    #[inline]
    pub fn find(&self, tenant: TenantId, external: &str) -> Option<SessionId> {
        self.by_key.get(&tenant)?.get(external).copied()
    }

    /// The session `id`.
    #[inline]
    pub fn get(&self, id: SessionId) -> Option<&Session> {
        self.records.get(&id)
    }

    /// Forgets session `id` entirely: a later event with its gateway id starts a new
    /// session with a new handle.
    pub fn remove(&mut self, id: SessionId) -> Option<Session> {
        let session = self.records.remove(&id)?;
        if let Some(ids) = self.by_key.get_mut(&session.tenant) {
            ids.remove(&session.external);
        }
        Some(session)
    }

    /// Every handle, in creation order.
    pub fn ids(&self) -> Vec<SessionId> {
        let mut ids: Vec<SessionId> = self.records.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    /// The session `id`, mutably.
    #[inline]
    pub fn get_mut(&mut self, id: SessionId) -> Option<&mut Session> {
        self.records.get_mut(&id)
    }

    /// The session `id` if it belongs to `tenant` and is open: the view a tenant's
    /// plugin gets, so that one tenant can never reach another's sessions.
    #[inline]
    pub fn open_of(&self, tenant: TenantId, id: SessionId) -> Option<&Session> {
        self.get(id).filter(|s| s.tenant == tenant && !s.closed)
    }

    /// Number of sessions ever seen (open and closed).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no session was ever seen.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_get_dense_stable_ids() {
        let mut names = Channels::default();
        assert_eq!(names.intern("web_chat"), ChannelId(0));
        assert_eq!(names.intern("http_api"), ChannelId(1));
        assert_eq!(names.intern("web_chat"), ChannelId(0));
        assert_eq!(names.name(ChannelId(1)), Some("http_api"));
        assert_eq!(names.get("other"), None);
    }

    #[test]
    fn sessions_are_scoped_by_tenant() {
        let mut sessions = Sessions::default();
        let (t0, t1) = (TenantId(0), TenantId(1));
        let a = sessions.open_or_get(t0, "s1");
        let b = sessions.open_or_get(t1, "s1");
        assert_ne!(a, b);
        assert_eq!(sessions.open_or_get(t0, "s1"), a);
        assert!(sessions.open_of(t0, a).is_some());
        assert!(
            sessions.open_of(t1, a).is_none(),
            "tenant 1 must not see tenant 0's session"
        );
        if let Some(s) = sessions.get_mut(a) {
            s.closed = true;
        }
        assert!(sessions.open_of(t0, a).is_none());
    }
}
