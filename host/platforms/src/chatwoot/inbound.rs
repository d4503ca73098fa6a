//! A Chatwoot webhook delivery as gateway events: a pure function of the payload.
//!
//! | Chatwoot (`event`) | gateway event |
//! | --- | --- |
//! | `conversation_created` | `session_opened` (then `queued` when pending, `hold` when snoozed) |
//! | `message_created`, incoming | `message` from the `end_user` |
//! | `message_created`, outgoing or template by a user | `message` from an `agent`, with the name |
//! | `message_created`, by an agent bot or an automation (no sender) | `message` from a `bot` |
//! | `message_created`, ours (echoed) | `message` with `origin: "autoclose"`: changes nothing |
//! | `message_created`, private note or activity | nothing |
//! | `conversation_status_changed` resolved, `conversation_resolved` | `session_closed` |
//! | `conversation_status_changed` snoozed | `hold` until `snoozed_until` (or until an agent speaks) |
//! | `conversation_status_changed` pending | `queued` |
//! | `conversation_status_changed` open, `conversation_opened` | `session_opened` with `reopen` |
//! | `conversation_updated` with `assignee_id` or `team_id` changed | `transferred` |
//! | `webwidget_triggered` with a current conversation | `presence` visible |
//! | anything else (`message_updated`, `contact_*`, ...) | nothing |
//!
//! Every message carries `seq` = its id (ids grow), so that a delivery seen twice, or
//! read back by reconciliation, applies once.

use std::collections::BTreeMap;

use serde_json::Value;

use autoclose_core::event::{
    ClosedEvent, GatewayEvent, HoldEvent, MAX_NAME_BYTES, MAX_TEXT_BYTES, MessageEvent,
    OpenedEvent, PresenceEvent, Sender, SessionRef, Visibility,
};

use crate::mapped::Mapped;

use crate::ORIGIN;
use crate::fields::{clip, time_ms};

use super::payload::{Conversation, Message, MessageType};
use super::{ECHO_KEY, SOURCE_ID_PREFIX, channel_name};

/// Why a delivery could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// Not JSON, or no `event`.
    #[error("not a Chatwoot webhook payload: {0}")]
    Shape(String),
    /// The payload is another account's.
    #[error("the payload is account {given}'s; tenant {tenant:?} is account {expected}")]
    OtherAccount {
        /// The tenant the URL names.
        tenant: String,
        /// Its account.
        expected: u64,
        /// The payload's.
        given: u64,
    },
}

/// Maps one delivery for `tenant` (Chatwoot account `account_id`) at `now_ms`.
pub fn map(tenant: &str, account_id: u64, body: &[u8], now_ms: u64) -> Result<Mapped, Unreadable> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| Unreadable::Shape(e.to_string()))?;
    let Some(event) = value
        .get("event")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(Unreadable::Shape("no \"event\" field".into()));
    };
    let given = value
        .pointer("/account/id")
        .or_else(|| value.get("account_id"))
        .and_then(Value::as_u64);
    if let Some(given) = given
        && given != account_id
    {
        return Err(Unreadable::OtherAccount {
            tenant: tenant.to_owned(),
            expected: account_id,
            given,
        });
    }
    let read = |what: &str, e: serde_json::Error| Unreadable::Shape(format!("{what}: {e}"));
    match event.as_str() {
        "message_created" => {
            let message: Message =
                serde_json::from_value(value).map_err(|e| read("message_created", e))?;
            let Some(conversation) = &message.conversation else {
                return Err(Unreadable::Shape("message_created: no conversation".into()));
            };
            let channel = conversation.channel_type().map(channel_name);
            Ok(
                match message_event(tenant, conversation.id, channel, &message) {
                    Some(event) => Mapped::events(vec![event]),
                    None => Mapped::ignored(ignored_message(&message)),
                },
            )
        }
        "conversation_created" => {
            let conversation: Conversation =
                serde_json::from_value(value).map_err(|e| read(&event, e))?;
            let mut events = vec![opened(tenant, &conversation, false)];
            events.extend(status_event(tenant, &conversation, now_ms, false));
            Ok(Mapped::events(events))
        }
        "conversation_status_changed" => {
            let conversation: Conversation =
                serde_json::from_value(value).map_err(|e| read(&event, e))?;
            let events: Vec<GatewayEvent> = status_event(tenant, &conversation, now_ms, true)
                .into_iter()
                .collect();
            Ok(if events.is_empty() {
                Mapped::ignored("a status this adapter does not map")
            } else {
                Mapped::events(events)
            })
        }
        "conversation_opened" => {
            let conversation: Conversation =
                serde_json::from_value(value).map_err(|e| read(&event, e))?;
            Ok(Mapped::events(vec![opened(tenant, &conversation, true)]))
        }
        "conversation_resolved" => {
            let conversation: Conversation =
                serde_json::from_value(value).map_err(|e| read(&event, e))?;
            Ok(Mapped::events(vec![closed(tenant, conversation.id)]))
        }
        "conversation_updated" => {
            let conversation: Conversation =
                serde_json::from_value(value).map_err(|e| read(&event, e))?;
            Ok(
                if conversation.changed("assignee_id") || conversation.changed("team_id") {
                    Mapped::events(vec![GatewayEvent::Transferred(SessionRef {
                        tenant: tenant.to_owned(),
                        session: conversation.id.to_string(),
                    })])
                } else {
                    Mapped::ignored("an update that is not an assignment")
                },
            )
        }
        "webwidget_triggered" => {
            let Some(id) = value
                .pointer("/current_conversation/id")
                .and_then(Value::as_u64)
            else {
                return Ok(Mapped::ignored("the widget opened with no conversation"));
            };
            Ok(Mapped::events(vec![GatewayEvent::Presence(
                PresenceEvent {
                    tenant: tenant.to_owned(),
                    session: id.to_string(),
                    state: Visibility::Visible,
                },
            )]))
        }
        _ => Ok(Mapped::ignored("an event this adapter does not use")),
    }
}

/// The gateway event of one message (from a webhook or read back through the API),
/// or `None` for what never concerns a cycle: private notes and activity lines.
pub fn message_event(
    tenant: &str,
    conversation: u64,
    channel: Option<String>,
    message: &Message,
) -> Option<GatewayEvent> {
    if message.private
        || matches!(
            message.message_type,
            MessageType::Activity | MessageType::Other
        )
    {
        return None;
    }
    let ours = is_ours(message);
    let sender = match message.message_type {
        MessageType::Incoming => Sender::EndUser,
        _ if ours => Sender::Bot,
        _ if message.from_user() => Sender::Agent,
        // Agent bots, and automations and campaigns, which post without a sender.
        _ => Sender::Bot,
    };
    let sender_name = match sender {
        Sender::Agent => message
            .sender
            .as_ref()
            .and_then(|s| s.name.as_deref())
            .map(|n| clip(n, MAX_NAME_BYTES)),
        _ => None,
    };
    Some(GatewayEvent::Message(MessageEvent {
        tenant: tenant.to_owned(),
        session: conversation.to_string(),
        sender,
        id: Some(message.id.to_string()),
        text: message.content.as_deref().map(|t| clip(t, MAX_TEXT_BYTES)),
        channel,
        origin: ours.then(|| ORIGIN.to_owned()),
        sender_name,
        attachment: message.attachments.as_ref().is_some_and(|a| !a.is_empty()),
        seq: Some(message.id),
    }))
}

/// Whether we posted `message`: our marker in its content attributes or its source
/// id. Both are set before the post is sent, so the echo is recognised even when it
/// arrives before the REST call that made it has answered.
pub fn is_ours(message: &Message) -> bool {
    let marked = message
        .content_attributes
        .as_ref()
        .and_then(|a| a.get(ECHO_KEY))
        .is_some();
    marked
        || message
            .source_id
            .as_deref()
            .is_some_and(|s| s.starts_with(SOURCE_ID_PREFIX))
}

fn ignored_message(message: &Message) -> &'static str {
    if message.private {
        "a private note"
    } else {
        "an activity line"
    }
}

/// `session_opened` for `conversation`, with the attributes groups and templates use:
/// `inbox_id`, `team`, `name` (the contact) and `locale` (the widget's browser
/// language).
fn opened(tenant: &str, conversation: &Conversation, reopen: bool) -> GatewayEvent {
    let mut attributes = BTreeMap::new();
    if let Some(inbox) = conversation.inbox_id {
        attributes.insert("inbox_id".to_owned(), inbox.to_string());
    }
    let meta = conversation.meta.as_ref();
    if let Some(team) = meta.and_then(|m| m.team.as_ref()?.name.as_deref()) {
        attributes.insert("team".to_owned(), clip(team, 1024));
    }
    if let Some(name) = meta.and_then(|m| m.sender.as_ref()?.name.as_deref()) {
        attributes.insert("name".to_owned(), clip(name, 1024));
    }
    if let Some(locale) = conversation
        .additional_attributes
        .as_ref()
        .and_then(|a| a.get("browser_language"))
        .and_then(Value::as_str)
    {
        attributes.insert("locale".to_owned(), clip(locale, 64));
    }
    GatewayEvent::SessionOpened(OpenedEvent {
        tenant: tenant.to_owned(),
        session: conversation.id.to_string(),
        channel: conversation
            .channel_type()
            .map_or_else(|| "chatwoot".to_owned(), channel_name),
        attributes,
        reopen,
    })
}

fn closed(tenant: &str, conversation: u64) -> GatewayEvent {
    GatewayEvent::SessionClosed(ClosedEvent {
        tenant: tenant.to_owned(),
        session: conversation.to_string(),
    })
}

/// What a conversation's status means, read from the API rather than from a status
/// change: resolved closes, snoozed holds, pending queues, open is nothing.
pub fn status_events(tenant: &str, conversation: &Conversation, now_ms: u64) -> Vec<GatewayEvent> {
    status_event(tenant, conversation, now_ms, false)
        .into_iter()
        .collect()
}

/// The event of a conversation's status: resolved closes, snoozed holds, pending
/// queues; open reopens when `changed` (a status change), and is nothing on creation.
fn status_event(
    tenant: &str,
    conversation: &Conversation,
    now_ms: u64,
    changed: bool,
) -> Option<GatewayEvent> {
    let session = conversation.id.to_string();
    match conversation.status.as_deref()? {
        "resolved" => Some(closed(tenant, conversation.id)),
        "snoozed" => {
            let until = conversation.snoozed_until.as_ref().and_then(time_ms);
            // A hold lasts 1s to 7d; a longer snooze holds for 7 days.
            let duration = until.and_then(|until| {
                let ms = until
                    .saturating_sub(now_ms)
                    .clamp(autoclose_duration::MIN_MS, autoclose_duration::MAX_MS);
                autoclose_duration::Duration::from_ms(ms).ok()
            });
            Some(GatewayEvent::Hold(HoldEvent {
                tenant: tenant.to_owned(),
                session,
                duration,
            }))
        }
        "pending" => Some(GatewayEvent::Queued(SessionRef {
            tenant: tenant.to_owned(),
            session,
        })),
        "open" if changed => Some(opened(tenant, conversation, true)),
        _ => None,
    }
}
