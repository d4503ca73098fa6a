//! Carrying the core's state across restarts and reloads: a journal of what
//! changed (so that a server writes only that, once per batch), a full snapshot, and
//! restoring from one.
//!
//! What is durable: sessions with their pending timers, webhook deliveries under way,
//! and the events held for a tenant whose component is failing. What is not: plugin
//! instances (they hold no state the contract promises to keep), failure counts and
//! back-off, follow-ups held for a backed-off tenant (a plugin's own close, webhook
//! outcomes), and the set of webhooks that answered 410 (they are tried again after a
//! restart).

use std::sync::Arc;

use autoclose_runtime::bindings::chat_gateway::plugin::events::{
    CloseCause, MessageField, SessionChange,
};
use autoclose_runtime::bindings::chat_gateway::plugin::types::{Presence, SenderRole};
use autoclose_runtime::{ChannelId, RequestId, SessionId, TenantId, TimerKey};

use crate::event::{GatewayEvent, OpenedEvent, PresenceEvent, Sender, Visibility};
use crate::hook::Hook;
use crate::outbox::Delivery;
use crate::records::{
    Changes, DeliveryRecord, HeldRecord, SessionRecord, Snapshot, StoredPresence, TimerRecord,
};

use crate::changes::Journal;
use crate::core::Core;

/// What [`Core::restore`] put back and what it had to leave out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restored {
    /// Sessions restored.
    pub sessions: usize,
    /// Pending timers restored.
    pub timers: usize,
    /// Deliveries restored.
    pub deliveries: usize,
    /// Held events delivered again.
    pub held: usize,
    /// What was left out and why, one line each (tenants or webhooks no longer in the
    /// configuration).
    pub dropped: Vec<String>,
}

impl Core {
    /// Starts recording which sessions and deliveries change, for
    /// [`Core::take_changes`]. Replay does not need this and does not pay for it.
    pub fn track_changes(&mut self) {
        self.journal.get_or_insert_with(Journal::default);
    }

    /// Notes that `session`'s record (or its timers) changed.
    pub(crate) fn touch_session(&mut self, session: SessionId) {
        if let Some(journal) = &mut self.journal {
            journal.note_session(session);
        }
    }

    /// Notes that delivery `request` changed or ended.
    pub(crate) fn touch_delivery(&mut self, request: RequestId) {
        if let Some(journal) = &mut self.journal {
            journal.deliveries.insert(request);
        }
    }

    /// The records changed since the last call (whole records, ready to write), or
    /// empty changes if tracking is off.
    pub fn take_changes(&mut self) -> Changes {
        let Some(journal) = &mut self.journal else {
            return Changes::default();
        };
        let Journal {
            sessions,
            deliveries,
            forgotten,
            held,
            held_dropped,
        } = std::mem::take(journal);
        let mut changes = Changes {
            next_request: self.state.next_request,
            now: self.state.now,
            forgotten,
            ..Changes::default()
        };
        for session in sessions {
            if let Some(record) = self.session_record(session) {
                changes.sessions.push(record);
            }
        }
        for request in deliveries {
            match self.state.outbox.get(request) {
                Some(delivery) => changes.deliveries.push(self.delivery_record(delivery)),
                None => changes.ended.push(request),
            }
        }
        for tenant in held {
            changes.held.push(self.held_record(tenant));
        }
        for tenant in held_dropped {
            changes.held.push(HeldRecord {
                tenant,
                events: Vec::new(),
            });
        }
        changes
    }

    /// Forgets sessions that closed at or before `closed_by` and have no webhook
    /// delivery under way: late events for a closed session are ignored only while it
    /// is remembered, so this bounds memory and store size by the retention instead of
    /// by every session ever seen. Returns how many were forgotten.
    pub fn forget_closed(&mut self, closed_by: u64) -> usize {
        let mut forgotten = 0;
        let mut busy = Vec::new();
        while let Some(&(closed_at, session)) = self.closed_order.front() {
            if closed_at > closed_by {
                break;
            }
            self.closed_order.pop_front();
            let still_closed = self
                .state
                .sessions
                .get(session)
                .is_some_and(|s| s.closed && s.closed_at == closed_at);
            if !still_closed {
                continue;
            }
            if self.state.outbox.iter().any(|d| d.session == session) {
                busy.push((closed_at, session));
                continue;
            }
            let Some(record) = self.state.sessions.remove(session) else {
                continue;
            };
            self.state.timers.cancel_session(session);
            if let Some(journal) = &mut self.journal {
                journal.sessions.remove(&session);
                let tenant = self.tenants[record.tenant.0 as usize].name.to_string();
                journal
                    .forgotten
                    .push((tenant, record.external.to_string()));
            }
            forgotten += 1;
        }
        for entry in busy.into_iter().rev() {
            self.closed_order.push_front(entry);
        }
        forgotten
    }

    /// Everything durable, as of now.
    pub fn snapshot(&self) -> Snapshot {
        let sessions = self
            .state
            .sessions
            .ids()
            .into_iter()
            .filter_map(|id| self.session_record(id))
            .collect();
        let mut deliveries: Vec<DeliveryRecord> = self
            .state
            .outbox
            .iter()
            .map(|d| self.delivery_record(d))
            .collect();
        deliveries.sort_by_key(|d| d.request);
        let held = (0..self.tenants.len())
            .map(|tenant| self.held_record(TenantId(tenant as u32)))
            .filter(|record| !record.events.is_empty())
            .collect();
        Snapshot {
            sessions,
            deliveries,
            held,
            next_request: self.state.next_request,
            now: self.state.now,
        }
    }

    /// Forgets every session, timer, delivery, held hook and action without recording
    /// it: the store keeps them for whoever serves them next. Called when the sessions
    /// this core serves went to another node (a shard given away or taken over), so
    /// that nothing of them is fired or sent from here again. The tenants, their
    /// instances and their configuration stay; host time only moves forward.
    pub fn forget_everything(&mut self) {
        let state = &mut *self.state;
        state.sessions.clear();
        state.timers.clear();
        state.channel_users.clear();
        state.gone.clear();
        state.outbox = crate::outbox::Outbox::default();
        self.actions.clear();
        self.follow_ups.clear();
        self.follow_up_counts.clear();
        self.wakeups.clear();
        self.closed_order.clear();
        for tenant in &mut self.tenants {
            tenant.queued.clear();
        }
        if let Some(journal) = &mut self.journal {
            *journal = Journal::default();
        }
    }

    /// Puts back what `snapshot` holds, into a core that has handled nothing yet,
    /// and moves host time to at least `now`. Sessions and deliveries of tenants no
    /// longer configured, and deliveries to webhooks no longer configured, are left
    /// out and reported. A delivery without a next attempt time (its attempt was under
    /// way when the snapshot was taken) is not scheduled: the caller either reports
    /// that attempt's result later (a reload) or sets `next_at` first (a restart).
    ///
    /// What is restored is what the store already holds, so it is not journaled; what
    /// is left out is (as forgotten sessions and ended deliveries), so that a store
    /// does not keep rows no core will ever read. Turn tracking on first.
    pub fn restore(&mut self, snapshot: Snapshot, now: u64) -> Restored {
        let mut restored = Restored::default();
        self.state.now = self.state.now.max(snapshot.now).max(now);
        self.state.next_request = self.state.next_request.max(snapshot.next_request);
        for record in snapshot.sessions {
            let Some(&tenant) = self.tenant_ids.get(&record.tenant) else {
                restored.dropped.push(format!(
                    "session {:?} of tenant {:?}: the tenant is no longer configured",
                    record.session, record.tenant
                ));
                if let Some(journal) = &mut self.journal {
                    journal.forgotten.push((record.tenant, record.session));
                }
                continue;
            };
            let session = self.state.sessions.open_or_get(tenant, &record.session);
            let channel = record.channel.as_deref().map(|name| {
                let channel = self.state.channels.intern(name);
                self.state.channel_users.insert((tenant, channel));
                channel
            });
            if let Some(s) = self.state.sessions.get_mut(session) {
                s.channel = channel;
                s.attributes = record.attributes;
                s.plugin_state = record.state;
                s.presence = match record.presence {
                    StoredPresence::Unknown => Presence::Unknown,
                    StoredPresence::Visible => Presence::Visible,
                    StoredPresence::Hidden => Presence::Hidden,
                };
                s.closed = record.closed;
                s.closed_at = record.closed_at.unwrap_or(0);
                s.last_seq = record.last_seq;
                s.last_id = record.last_id.clone();
                s.history = record.history;
            }
            if record.closed {
                self.closed_order
                    .push_back((record.closed_at.unwrap_or(0), session));
            }
            if !record.closed {
                for timer in &record.timers {
                    let key = TimerKey {
                        session,
                        key: timer.key,
                    };
                    self.state.timers.restore(
                        key,
                        tenant,
                        timer.due,
                        timer.seq,
                        &timer.payload,
                        timer.redeliveries,
                    );
                    restored.timers += 1;
                }
            }
            restored.sessions += 1;
        }
        // Oldest close first, whatever order the store gave.
        self.closed_order.make_contiguous().sort_unstable();
        for record in snapshot.deliveries {
            let Some(&tenant) = self.tenant_ids.get(&record.tenant) else {
                restored.dropped.push(format!(
                    "delivery {} of tenant {:?}: the tenant is no longer configured",
                    record.id, record.tenant
                ));
                // Tell the store it ended.
                self.touch_delivery(record.request);
                continue;
            };
            if !self.state.webhooks.contains_key(&record.webhook) {
                restored.dropped.push(format!(
                    "delivery {} of tenant {:?}: webhook {:?} is no longer configured",
                    record.id, record.tenant, record.webhook
                ));
                // Tell the store it ended.
                self.touch_delivery(record.request);
                continue;
            }
            let session = self.state.sessions.open_or_get(tenant, &record.session);
            self.state.next_request = self.state.next_request.max(RequestId(record.request.0 + 1));
            self.state.outbox.insert(Delivery {
                request: record.request,
                tenant,
                session,
                webhook: record.webhook,
                event_type: record.event_type,
                id: record.id,
                body: Arc::from(record.body),
                queued_at: record.queued_at,
                deadline: record.deadline,
                attempts: record.attempts,
                next_at: None,
            });
            if let Some(at) = record.next_at {
                self.state.outbox.schedule(record.request, at);
            }
            restored.deliveries += 1;
        }
        // Events held for a failing tenant are delivered now, in order, to the fresh
        // instance (held again if it still fails).
        let now = self.state.now;
        for record in snapshot.held {
            if !self.tenant_ids.contains_key(&record.tenant) {
                restored.dropped.push(format!(
                    "{} held events of tenant {:?}: the tenant is no longer configured",
                    record.events.len(),
                    record.tenant
                ));
                if let Some(journal) = &mut self.journal {
                    journal.held_dropped.push(record.tenant);
                }
                continue;
            }
            if let Some(&tenant) = self.tenant_ids.get(&record.tenant) {
                self.touch_held(tenant);
            }
            for held in record.events {
                if let Err(e) = self.handle(now, &held.event) {
                    restored
                        .dropped
                        .push(format!("a held event of tenant {:?}: {e}", record.tenant));
                }
                restored.held += 1;
            }
        }
        restored
    }

    /// Notes that `tenant`'s held events changed.
    pub(crate) fn touch_held(&mut self, tenant: TenantId) {
        if let Some(journal) = &mut self.journal {
            journal.note_held(tenant);
        }
    }

    pub(crate) fn held_record(&self, tenant: TenantId) -> HeldRecord {
        let slot = &self.tenants[tenant.0 as usize];
        HeldRecord {
            tenant: slot.name.to_string(),
            events: slot
                .queued
                .iter()
                .filter_map(|hook| self.hook_event(hook))
                .collect(),
        }
    }

    pub(crate) fn session_record(&self, session: SessionId) -> Option<SessionRecord> {
        let record = self.state.sessions.get(session)?;
        let tenant = self.tenants.get(record.tenant.0 as usize)?;
        Some(SessionRecord {
            tenant: tenant.name.to_string(),
            session: record.external.to_string(),
            channel: record
                .channel
                .and_then(|c| self.state.channels.name(c))
                .map(str::to_owned),
            attributes: record.attributes.clone(),
            state: record.plugin_state.clone(),
            presence: match record.presence {
                Presence::Unknown => StoredPresence::Unknown,
                Presence::Visible => StoredPresence::Visible,
                Presence::Hidden => StoredPresence::Hidden,
            },
            closed: record.closed,
            closed_at: record.closed.then_some(record.closed_at),
            last_seq: record.last_seq,
            last_id: record.last_id.clone(),
            history: record.history.clone(),
            timers: self
                .state
                .timers
                .entries_of(session)
                .map(|(key, due, seq, payload, redeliveries)| TimerRecord {
                    key: key.key,
                    due,
                    seq,
                    payload: payload.to_vec(),
                    redeliveries,
                })
                .collect(),
        })
    }

    pub(crate) fn delivery_record(&self, delivery: &Delivery) -> DeliveryRecord {
        DeliveryRecord {
            request: delivery.request,
            tenant: self.tenants[delivery.tenant.0 as usize].name.to_string(),
            session: self.external(delivery.session),
            webhook: delivery.webhook.clone(),
            event_type: delivery.event_type.clone(),
            id: delivery.id.clone(),
            body: delivery.body.to_vec(),
            queued_at: delivery.queued_at,
            deadline: delivery.deadline,
            attempts: delivery.attempts,
            next_at: delivery.next_at,
        }
    }
    /// The gateway event a held hook stands for, with its time: what the store keeps
    /// of events held for a failing tenant. Follow-ups (a plugin's own close, webhook
    /// outcomes) are not events and are not kept.
    pub(crate) fn hook_event(&self, hook: &Hook) -> Option<crate::records::HeldEvent> {
        let names = |session: SessionId| {
            let record = self.state.sessions.get(session)?;
            let tenant = self.tenants.get(record.tenant.0 as usize)?;
            Some((tenant.name.to_string(), record.external.to_string()))
        };
        let (at_ms, event) = match hook {
            Hook::Message(m) => {
                let (tenant, session) = names(SessionId(m.session))?;
                let channel = self
                    .state
                    .channels
                    .name(ChannelId(m.channel))
                    .map(str::to_owned);
                (
                    m.at,
                    GatewayEvent::Message(crate::event::MessageEvent {
                        tenant,
                        session,
                        sender: match m.sender {
                            SenderRole::Agent => Sender::Agent,
                            SenderRole::EndUser => Sender::EndUser,
                            SenderRole::Bot => Sender::Bot,
                            SenderRole::System => Sender::System,
                        },
                        id: m.fields.iter().flatten().find_map(|f| match f {
                            MessageField::MessageId(id) => Some(id.clone()),
                            _ => None,
                        }),
                        text: m.fields.iter().flatten().find_map(|f| match f {
                            MessageField::Text(text) => Some(text.clone()),
                            _ => None,
                        }),
                        channel,
                        origin: m.origin.clone(),
                        sender_name: m.fields.iter().flatten().find_map(|f| match f {
                            MessageField::SenderName(name) => Some(name.clone()),
                            _ => None,
                        }),
                        attachment: m.has_attachment,
                        seq: None,
                    }),
                )
            }
            Hook::Session(e) => {
                let (tenant, session) = names(SessionId(e.session))?;
                let event = match &e.change {
                    SessionChange::Opened => GatewayEvent::SessionOpened(OpenedEvent {
                        tenant,
                        channel: self.state.channels.name(ChannelId(e.channel))?.to_owned(),
                        attributes: self
                            .state
                            .sessions
                            .get(SessionId(e.session))?
                            .attributes
                            .iter()
                            .cloned()
                            .collect(),
                        reopen: false,
                        session,
                    }),
                    SessionChange::Presence(p) => GatewayEvent::Presence(PresenceEvent {
                        tenant,
                        session,
                        state: match p {
                            Presence::Visible => Visibility::Visible,
                            _ => Visibility::Hidden,
                        },
                    }),
                    SessionChange::Closed(CloseCause::External) => {
                        GatewayEvent::SessionClosed(crate::event::ClosedEvent { tenant, session })
                    }
                    SessionChange::Closed(CloseCause::Plugin(_)) => return None,
                    SessionChange::Hold(until) => GatewayEvent::Hold(crate::event::HoldEvent {
                        tenant,
                        session,
                        duration: until.and_then(|until| {
                            autoclose_duration::Duration::from_ms(until.saturating_sub(e.at)).ok()
                        }),
                    }),
                    SessionChange::Queued => {
                        GatewayEvent::Queued(crate::event::SessionRef { tenant, session })
                    }
                    SessionChange::Transferred => {
                        GatewayEvent::Transferred(crate::event::SessionRef { tenant, session })
                    }
                };
                (e.at, event)
            }
            Hook::Timer(..) | Hook::Http(_) => return None,
        };
        Some(crate::records::HeldEvent { at_ms, event })
    }
}
