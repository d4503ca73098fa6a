//! What the store keeps: the durable part of the core's state, as plain data that
//! any backend can write.
//!
//! Sessions carry their pending timers (a session has a handful at most, bounded by
//! `limits.timers_per_session`), so one write covers every change an event makes to
//! a session. Webhook deliveries are kept one record each until they end. Records name
//! tenants and sessions by their external names: the core's integer handles are
//! per process and change across restarts.

use serde::{Deserialize, Serialize};

use autoclose_runtime::RequestId;

use crate::event::GatewayEvent;

/// Version of the record encoding; a store written by another version is refused.
pub const RECORD_VERSION: u32 = 1;

/// A session with everything needed to carry it across a restart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The tenant's name.
    pub tenant: String,
    /// The gateway's session id.
    pub session: String,
    /// The channel (widget kind), once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The attributes given when the session opened.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<(String, String)>,
    /// The end user's last reported presence.
    #[serde(default)]
    pub presence: StoredPresence,
    /// Closed sessions are kept so that late events for them stay ignored.
    #[serde(default)]
    pub closed: bool,
    /// Host time of the close, for forgetting closed sessions after a while.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<u64>,
    /// Pending timers, in no particular order (`seq` keeps the firing order of ties).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<TimerRecord>,
    /// What the plugin keeps for the session, base64.
    #[serde(default, with = "base64_bytes", skip_serializing_if = "Vec::is_empty")]
    pub state: Vec<u8>,
    /// The highest message `seq` seen, so that a repeated webhook stays a repeat after
    /// a restart or on another node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// The id of the last message that was not an echo, so that the same message
    /// delivered again (or read back by reconciliation) stays a repeat after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_id: Option<String>,
    /// What happened to the session, for people (see [`crate::history`]); absent
    /// while the core keeps no history.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history: Option<std::sync::Arc<crate::history::History>>,
}

/// The end user's presence as stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoredPresence {
    /// Never reported.
    #[default]
    Unknown,
    /// Looking at the chat.
    Visible,
    /// In another tab or app.
    Hidden,
}

/// A pending timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerRecord {
    /// The plugin's key.
    pub key: u32,
    /// Host time it fires at.
    pub due: u64,
    /// Set order: timers due at the same instant fire in this order.
    pub seq: u64,
    /// The plugin's payload, base64.
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// Times it was delivered before and its hook failed.
    #[serde(default)]
    pub redeliveries: u8,
}

/// A webhook delivery that has not ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    /// The request id the plugin was given.
    pub request: RequestId,
    /// The tenant's name.
    pub tenant: String,
    /// The session's id.
    pub session: String,
    /// The webhook's name.
    pub webhook: String,
    /// The plugin's event type.
    pub event_type: String,
    /// The `webhook-id`: the same for every attempt, before and after a restart.
    pub id: String,
    /// The exact body, base64.
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
    /// Host time it was queued at.
    pub queued_at: u64,
    /// No attempt after this host time.
    pub deadline: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due; `None` while an attempt is under way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<u64>,
}

/// The events held for a tenant whose component is failing, oldest first: delivered
/// when the tenant is back, or at once after a restart or a reload.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRecord {
    /// The tenant's name.
    pub tenant: String,
    /// The events with the host time they arrived at; empty: nothing held.
    pub events: Vec<HeldEvent>,
}

/// One held event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldEvent {
    /// Host time it arrived at.
    pub at_ms: u64,
    /// The event as the gateway sent it (only what the plugin is shown).
    pub event: GatewayEvent,
}

/// Everything the core keeps durably: what a restart starts from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// Every session known.
    pub sessions: Vec<SessionRecord>,
    /// Deliveries under way.
    pub deliveries: Vec<DeliveryRecord>,
    /// Events held for failing tenants.
    pub held: Vec<HeldRecord>,
    /// The next request id to hand out (ids are never reused).
    pub next_request: RequestId,
    /// The host time when the snapshot was taken.
    pub now: u64,
}

/// What changed since the last time the changes were taken: to be written in one
/// transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sessions written whole (timers included).
    pub sessions: Vec<SessionRecord>,
    /// Sessions forgotten, by tenant and session id: to delete.
    pub forgotten: Vec<(String, String)>,
    /// Deliveries written whole.
    pub deliveries: Vec<DeliveryRecord>,
    /// Deliveries that ended, by request id.
    pub ended: Vec<RequestId>,
    /// Tenants whose held events changed, written whole (empty: delete).
    pub held: Vec<HeldRecord>,
    /// The next request id.
    pub next_request: RequestId,
    /// The host time.
    pub now: u64,
}

impl Changes {
    /// Appends `later` (changes made after these): its records win, its removals
    /// apply after these records.
    pub fn absorb(&mut self, later: Changes) {
        let written: std::collections::HashSet<(String, String)> = later
            .sessions
            .iter()
            .map(|s| (s.tenant.clone(), s.session.clone()))
            .collect();
        self.sessions
            .retain(|s| !written.contains(&(s.tenant.clone(), s.session.clone())));
        let forgotten: std::collections::HashSet<&(String, String)> =
            later.forgotten.iter().collect();
        self.sessions
            .retain(|s| !forgotten.contains(&(s.tenant.clone(), s.session.clone())));
        self.sessions.extend(later.sessions);
        self.forgotten.extend(later.forgotten);
        let ended: std::collections::HashSet<RequestId> = later.ended.iter().copied().collect();
        let rewritten: std::collections::HashSet<RequestId> =
            later.deliveries.iter().map(|d| d.request).collect();
        self.deliveries
            .retain(|d| !ended.contains(&d.request) && !rewritten.contains(&d.request));
        self.deliveries.extend(later.deliveries);
        self.ended.extend(later.ended);
        let rewritten: std::collections::HashSet<&String> =
            later.held.iter().map(|h| &h.tenant).collect();
        self.held.retain(|h| !rewritten.contains(&h.tenant));
        self.held.extend(later.held);
        self.next_request = self.next_request.max(later.next_request);
        self.now = self.now.max(later.now);
    }

    /// Whether nothing durable changed.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
            && self.forgotten.is_empty()
            && self.deliveries.is_empty()
            && self.ended.is_empty()
            && self.held.is_empty()
    }
}

/// Byte strings as base64 text inside JSON records.
mod base64_bytes {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

/// A chat action (post a message, close a session) on its way to the gateway's
/// callback, kept until the gateway acknowledged it or it was given up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallbackRecord {
    /// Order of creation; actions of one session are delivered in this order.
    pub seq: u64,
    /// The action id the gateway deduplicates on: the same for every attempt.
    pub id: String,
    /// The tenant's name.
    pub tenant: String,
    /// The session's id.
    pub session: String,
    /// The exact body, base64.
    #[serde(with = "base64_bytes")]
    pub body: Vec<u8>,
    /// Host time it was created at.
    pub queued_at: u64,
    /// No attempt after this host time.
    pub deadline: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due; `None` while one is under way or while an
    /// earlier action of the same session is still on its way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_at: Option<u64>,
}
