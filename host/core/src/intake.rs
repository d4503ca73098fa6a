//! Intake: what a gateway event tells the host about its session, recorded before any
//! plugin hears of it, and the hook the event becomes.

use autoclose_runtime::TenantId;
use autoclose_runtime::bindings::chat_gateway::plugin::events::{
    CloseCause, MessageEvent, SessionChange,
};
use autoclose_runtime::bindings::chat_gateway::plugin::types::{Presence, SenderRole};

use crate::bounds::{MAX_TIME_MS, MAX_UNKNOWN_TENANTS_REMEMBERED};
use crate::core::Core;
use crate::error::EventError;
use crate::event::{ChannelNeed, GatewayEvent, OpenedEvent, PresenceEvent, Sender, Visibility};
use crate::hook::{Hook, message_fields, session_hook};

impl Core {
    /// Records what `event` tells the host (a session opened, the user's presence, a
    /// close, ...) at the current host time, and returns the hook to deliver, if any:
    /// none for an unknown tenant, a closed session, or a session without a channel.
    pub(crate) fn prepare(
        &mut self,
        event: &GatewayEvent,
    ) -> Result<Option<(TenantId, Hook)>, EventError> {
        let Some(&tenant) = self.tenant_ids.get(event.tenant()) else {
            // Once per unknown tenant at info (a misrouted gateway would flood the log),
            // every event at debug.
            let first = {
                let mut reported = self
                    .unknown_tenants
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                reported.len() < MAX_UNKNOWN_TENANTS_REMEMBERED
                    && reported.insert(event.tenant().to_owned())
            };
            if first {
                tracing::info!(
                    tenant = event.tenant(),
                    session = event.session(),
                    "no such tenant configured: event ignored (further events of this tenant are logged at debug)"
                );
            } else {
                tracing::debug!(
                    tenant = event.tenant(),
                    session = event.session(),
                    "no such tenant configured: event ignored"
                );
            }
            return Ok(None);
        };
        let session = self.state.sessions.open_or_get(tenant, event.session());
        self.touch_session(session);
        let now = self.state.now;
        let Some(record) = self.state.sessions.get_mut(session) else {
            return Ok(None);
        };
        if record.closed
            && let GatewayEvent::SessionOpened(OpenedEvent { reopen: true, .. }) = event
        {
            // The platform reopened the conversation: a new life under the same id.
            // The timers went with the close; what the plugin kept goes now.
            record.closed = false;
            record.closed_at = 0;
            record.plugin_state.clear();
            record.presence = Presence::Unknown;
        } else if let GatewayEvent::SessionOpened(OpenedEvent { reopen: true, .. }) = event {
            if record.channel.is_some() {
                // Already open: nothing to start again.
                return Ok(None);
            }
        } else if let GatewayEvent::Message(crate::event::MessageEvent {
            seq,
            id,
            origin: None,
            ..
        }) = event
        {
            // Echoes of a plugin's own posts (`origin` set) neither count nor advance
            // the sequence: an end user's reply written just before our warning, whose
            // webhook comes after the warning's echo, must still cancel the cycle.
            if let Some(seq) = seq {
                if record.last_seq.is_some_and(|last| *seq <= last) {
                    tracing::debug!(
                        tenant = event.tenant(),
                        session = event.session(),
                        seq,
                        "message seen before (its seq is not above the last): ignored"
                    );
                    return Ok(None);
                }
                record.last_seq = Some(*seq);
            }
            // The last message again (a webhook retried, a last message read back by
            // reconciliation): a repeat, on platforms whose ids do not grow.
            if let Some(id) = id {
                if record.last_id.as_deref() == Some(id.as_str()) {
                    tracing::debug!(
                        tenant = event.tenant(),
                        session = event.session(),
                        id,
                        "the session's last message again: ignored"
                    );
                    return Ok(None);
                }
                record.last_id = Some(id.clone());
            }
        }
        if record.closed {
            tracing::debug!(
                tenant = event.tenant(),
                session = event.session(),
                "session already closed: event ignored"
            );
            return Ok(None);
        }
        let hook = match event {
            GatewayEvent::SessionOpened(OpenedEvent {
                channel,
                attributes,
                ..
            }) => {
                let channel = self.state.channels.intern(channel);
                let record = self
                    .state
                    .sessions
                    .get_mut(session)
                    .expect("session exists");
                record.channel = Some(channel);
                self.state.channel_users.insert((tenant, channel));
                record.attributes = attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                session_hook(tenant, session, channel, now, SessionChange::Opened)
            }
            GatewayEvent::Message(message) => {
                let channel = match (record.channel, &message.channel) {
                    (Some(channel), _) => channel,
                    (None, Some(name)) => {
                        let channel = self.state.channels.intern(name);
                        if let Some(record) = self.state.sessions.get_mut(session) {
                            record.channel = Some(channel);
                        }
                        self.state.channel_users.insert((tenant, channel));
                        channel
                    }
                    (None, None) => return Err(EventError::no_channel(event)),
                };
                let fields = self.tenants[tenant.0 as usize].interests.message_fields;
                Hook::Message(MessageEvent {
                    state: None,
                    tenant: tenant.0,
                    session: session.0,
                    channel: channel.0,
                    sender: match message.sender {
                        Sender::Agent => SenderRole::Agent,
                        Sender::EndUser => SenderRole::EndUser,
                        Sender::Bot => SenderRole::Bot,
                        Sender::System => SenderRole::System,
                    },
                    at: now,
                    has_attachment: message.attachment,
                    origin: message.origin.clone(),
                    fields: message_fields(message, fields),
                })
            }
            GatewayEvent::Hold(_) | GatewayEvent::Queued(_) | GatewayEvent::Transferred(_) => {
                let Some(channel) = record.channel else {
                    return Ok(None);
                };
                let change = match event {
                    GatewayEvent::Hold(hold) => {
                        SessionChange::Hold(hold.duration.map(|d| now.saturating_add(d.as_ms())))
                    }
                    GatewayEvent::Queued(_) => SessionChange::Queued,
                    _ => SessionChange::Transferred,
                };
                session_hook(tenant, session, channel, now, change)
            }
            GatewayEvent::Presence(PresenceEvent { state, .. }) => {
                let presence = match state {
                    Visibility::Visible => Presence::Visible,
                    Visibility::Hidden => Presence::Hidden,
                };
                record.presence = presence;
                let Some(channel) = record.channel else {
                    return Ok(None);
                };
                session_hook(
                    tenant,
                    session,
                    channel,
                    now,
                    SessionChange::Presence(presence),
                )
            }
            GatewayEvent::SessionClosed(_) => {
                record.closed = true;
                record.closed_at = now;
                self.closed_order.push_back((now, session));
                let channel = record.channel;
                self.state.timers.cancel_session(session);
                let Some(channel) = channel else {
                    return Ok(None);
                };
                session_hook(
                    tenant,
                    session,
                    channel,
                    now,
                    SessionChange::Closed(CloseCause::External),
                )
            }
        };
        self.record_received(&hook);
        Ok(Some((tenant, hook)))
    }

    /// Checks that `events` would be accepted, in this order, without applying any of
    /// them: a caller that must take all of a batch or none checks first. Returns the
    /// index of the first refused event and why.
    pub fn check(&self, at: u64, events: &[GatewayEvent]) -> Result<(), (usize, EventError)> {
        if at > MAX_TIME_MS {
            return Err((0, EventError::TimeOutOfRange(at)));
        }
        let mut opened: std::collections::HashSet<(&str, &str)> = Default::default();
        for (index, event) in events.iter().enumerate() {
            let key = (event.tenant(), event.session());
            match event.channel_need() {
                ChannelNeed::Gives => {
                    opened.insert(key);
                }
                ChannelNeed::Needs => {
                    // Unknown tenants and closed sessions are ignored, not refused.
                    let known = opened.contains(&key)
                        || match self.tenant_ids.get(event.tenant()) {
                            None => true,
                            Some(&tenant) => self
                                .state
                                .sessions
                                .find(tenant, event.session())
                                .and_then(|id| self.state.sessions.get(id))
                                .is_some_and(|s| s.channel.is_some() || s.closed),
                        };
                    if !known {
                        return Err((index, EventError::no_channel(event)));
                    }
                }
                ChannelNeed::Neither => {}
            }
        }
        Ok(())
    }
}
