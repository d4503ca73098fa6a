//! A Rocket.Chat webhook delivery as gateway events: a pure function of the payload
//! (and of the room's channel, which no webhook carries: the caller reads it from
//! `rooms.info` once per room).
//!
//! | Rocket.Chat (`type`) | gateway event |
//! | --- | --- |
//! | `LivechatSessionStart` | `session_opened` |
//! | `LivechatSessionQueued` | `session_opened`, then `queued` |
//! | `LivechatSessionTaken`, `LivechatSessionForwarded` | `transferred` |
//! | `LivechatSession` (the close, by the agent or the visitor) | `session_closed` |
//! | `Message` by the visitor | `message` from the `end_user` |
//! | `Message` by an agent (or a bot user), with the name | `message` from an `agent` |
//! | `Message` ours (our `_id`, or the bot user's) | `message` with `origin: "autoclose"`: changes nothing |
//! | `Message` edited (`editedAt`), a system message (`t`), the closing message | nothing |
//! | `LivechatOfflineMessage`, `LivechatEdit`, `LeadCapture` | nothing |
//!
//! Every message carries its `_id`: the session's last message delivered again
//! (Rocket.Chat retries after a time-out), or read back by reconciliation, applies
//! once. No `seq`: ids are random, and times are not in order (Rocket.Chat keeps a
//! time the client gives within 10 s of its own).

use std::collections::BTreeMap;

use autoclose_core::event::{
    ClosedEvent, GatewayEvent, MAX_NAME_BYTES, MAX_TEXT_BYTES, MessageEvent, OpenedEvent, Sender,
    SessionRef,
};

use crate::ORIGIN;
use crate::fields::clip;
use crate::mapped::Mapped;

use super::MESSAGE_ID_PREFIX;
use super::payload::{Delivery, Message};

/// Why a delivery could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    /// Not JSON, or not the shape of a Rocket.Chat webhook.
    #[error("not a Rocket.Chat Omnichannel webhook payload: {0}")]
    Shape(String),
}

/// Reads a delivery.
pub fn parse(body: &[u8]) -> Result<Delivery, Unreadable> {
    serde_json::from_slice(body).map_err(|e| Unreadable::Shape(e.to_string()))
}

/// Whether mapping `delivery` needs the room's channel: it may open a session (a
/// session type, or a message that is not ours, which opens one the engine has not
/// seen).
pub fn needs_channel(delivery: &Delivery, bot_user: &str) -> bool {
    match delivery.kind.as_str() {
        "LivechatSessionStart" | "LivechatSessionQueued" => true,
        "Message" => delivery
            .messages
            .iter()
            .any(|m| countable(m) && !is_ours(m, bot_user)),
        _ => false,
    }
}

/// Maps `delivery` for `tenant`, whose posts are made as `bot_user`; `channel` is the
/// room's (see [`super::channel_name`]).
pub fn map(tenant: &str, bot_user: &str, delivery: &Delivery, channel: &str) -> Mapped {
    let Some(room) = delivery.room.as_deref() else {
        return Mapped::ignored("a delivery without a room");
    };
    let session = || SessionRef {
        tenant: tenant.to_owned(),
        session: room.to_owned(),
    };
    match delivery.kind.as_str() {
        "Message" => {
            let events: Vec<GatewayEvent> = delivery
                .messages
                .iter()
                .filter_map(|m| {
                    let visitor = delivery.visitor.as_ref().and_then(|v| v.id.as_deref());
                    message_event(tenant, room, Some(channel), bot_user, visitor, m)
                })
                .collect();
            if events.is_empty() {
                Mapped::ignored("an edit or a system message")
            } else {
                Mapped::events(events)
            }
        }
        "LivechatSessionStart" => Mapped::events(vec![opened(tenant, room, channel, delivery)]),
        "LivechatSessionQueued" => Mapped::events(vec![
            opened(tenant, room, channel, delivery),
            GatewayEvent::Queued(session()),
        ]),
        "LivechatSessionTaken" | "LivechatSessionForwarded" => {
            Mapped::events(vec![GatewayEvent::Transferred(session())])
        }
        "LivechatSession" => Mapped::events(vec![GatewayEvent::SessionClosed(ClosedEvent {
            tenant: tenant.to_owned(),
            session: room.to_owned(),
        })]),
        _ => Mapped::ignored("a webhook type this adapter does not use"),
    }
}

/// Whether a message concerns a cycle at all: not an edit (delivered again under the
/// same id), not a system message, not the message the close left.
fn countable(message: &Message) -> bool {
    message.edited_at.is_none() && message.t.is_none() && !message.closing_message
}

/// Whether we posted `message`: its id is one we gave (set before the post is sent,
/// so an echo that arrives before the REST call has answered is recognised too), or
/// its author is the bot user the posts are made as.
pub fn is_ours(message: &Message, bot_user: &str) -> bool {
    message.id.starts_with(MESSAGE_ID_PREFIX)
        || message.author() == Some(bot_user)
        || message.agent_id.as_deref() == Some(bot_user)
}

/// The gateway event of one message (from a webhook or read back as a room's last
/// message), or `None` for edits and system messages.
///
/// A message is the visitor's when its author is the room's `visitor` (their user
/// id), or when it carries the visitor's token (stored messages do;
/// `afterOmnichannelSaveMessage` tells them apart by it). Everyone else is an agent:
/// Rocket.Chat's own bot agents are users too.
pub fn message_event(
    tenant: &str,
    room: &str,
    channel: Option<&str>,
    bot_user: &str,
    visitor: Option<&str>,
    message: &Message,
) -> Option<GatewayEvent> {
    if !countable(message) {
        return None;
    }
    let ours = is_ours(message, bot_user);
    let from_visitor =
        message.token.is_some() || (visitor.is_some() && message.author() == visitor);
    let sender = if ours {
        Sender::Bot
    } else if from_visitor {
        Sender::EndUser
    } else {
        Sender::Agent
    };
    let sender_name = match sender {
        Sender::Agent => message
            .u
            .as_ref()
            .and_then(|u| u.name.as_deref().or(u.username.as_deref()))
            .map(|n| clip(n, MAX_NAME_BYTES)),
        _ => None,
    };
    Some(GatewayEvent::Message(MessageEvent {
        tenant: tenant.to_owned(),
        session: room.to_owned(),
        sender,
        id: Some(clip(&message.id, MAX_NAME_BYTES)),
        text: message.msg.as_deref().map(|t| clip(t, MAX_TEXT_BYTES)),
        channel: channel.map(str::to_owned),
        origin: ours.then(|| ORIGIN.to_owned()),
        sender_name,
        attachment: message.file.is_some()
            || message.attachments.as_ref().is_some_and(|a| !a.is_empty()),
        // Not the time: Rocket.Chat keeps a time the client gives within 10 s of its
        // own, so a later reply can carry an earlier time. The id, repeated, is what
        // tells a repeat (see `MessageEvent::id`).
        seq: None,
    }))
}

/// `session_opened` for `room`, with the attributes groups and templates use: `name`
/// (the visitor) and `department`.
fn opened(tenant: &str, room: &str, channel: &str, delivery: &Delivery) -> GatewayEvent {
    let mut attributes = BTreeMap::new();
    let name = delivery
        .visitor
        .as_ref()
        .and_then(|v| v.name.as_deref())
        .or(delivery.label.as_deref());
    if let Some(name) = name {
        attributes.insert("name".to_owned(), clip(name, 1024));
    }
    if let Some(department) = &delivery.department_id {
        attributes.insert("department".to_owned(), clip(department, 1024));
    }
    GatewayEvent::SessionOpened(OpenedEvent {
        tenant: tenant.to_owned(),
        session: room.to_owned(),
        channel: channel.to_owned(),
        attributes,
        reopen: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoclose_core::event::Sender;

    /// The bot user of the fixtures: `support.bot`, whose echo is
    /// `message_agent_bot_echo.json`.
    const BOT: &str = "bT5q8RnW2xYhKjLmP";

    fn fixture(name: &str) -> Delivery {
        let path = format!(
            "{}/../../tests/fixtures/rocketchat/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        parse(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    fn message(mapped: &Mapped) -> &MessageEvent {
        match mapped.events.as_slice() {
            [GatewayEvent::Message(m)] => m,
            other => panic!("not one message: {other:?}"),
        }
    }

    #[test]
    fn messages_map_to_their_sender() {
        let visitor = map("acme", BOT, &fixture("message_visitor.json"), "web_chat");
        let m = message(&visitor);
        assert_eq!(m.sender, Sender::EndUser);
        assert_eq!(m.session, "xHvyg7PbT9oLGHwRk");
        assert_eq!(m.channel.as_deref(), Some("web_chat"));
        assert_eq!(m.seq, None);
        assert_eq!(m.id.as_deref(), Some("r7WfQk2YbN9mXzPtA"));
        assert_eq!(m.origin, None);

        let agent = map("acme", BOT, &fixture("message_agent.json"), "web_chat");
        let m = message(&agent);
        assert_eq!(m.sender, Sender::Agent);
        assert_eq!(m.sender_name.as_deref(), Some("Alice Agent"));

        let echo = map(
            "acme",
            BOT,
            &fixture("message_agent_bot_echo.json"),
            "web_chat",
        );
        let m = message(&echo);
        assert_eq!(
            m.origin.as_deref(),
            Some(ORIGIN),
            "the bot user's post is ours"
        );
        // Another bot user's post is an agent's: it starts a cycle like one.
        let other = map(
            "acme",
            "someone-else",
            &fixture("message_agent_bot_echo.json"),
            "web_chat",
        );
        assert_eq!(message(&other).sender, Sender::Agent);
        assert_eq!(message(&other).origin, None);
        assert!(!needs_channel(&fixture("message_agent_bot_echo.json"), BOT));
        assert!(needs_channel(&fixture("message_agent.json"), BOT));
    }

    #[test]
    fn our_message_id_is_ours_whoever_posted_it() {
        let mut delivery = fixture("message_agent.json");
        delivery.messages[0].id = super::super::message_id("act_0a1b");
        let m = map("acme", BOT, &delivery, "web_chat");
        assert_eq!(message(&m).origin.as_deref(), Some(ORIGIN));
    }

    #[test]
    fn edits_and_system_messages_map_to_nothing() {
        let mut delivery = fixture("message_agent.json");
        delivery.messages[0].edited_at = Some(serde_json::Value::from("2025-03-04T09:18:00.000Z"));
        assert!(map("acme", BOT, &delivery, "web_chat").events.is_empty());
        let mut delivery = fixture("message_agent.json");
        delivery.messages[0].t = Some("uj".into());
        assert!(map("acme", BOT, &delivery, "web_chat").ignored.is_some());
    }

    #[test]
    fn session_types_open_queue_transfer_and_close() {
        let start = map("acme", BOT, &fixture("session_start.json"), "http_api");
        match start.events.as_slice() {
            [GatewayEvent::SessionOpened(o)] => {
                assert_eq!(o.channel, "http_api");
                assert_eq!(o.attributes["name"], "Jane Doe");
                assert_eq!(o.attributes["department"], "8CsKfPT7cgbYMjNqH");
            }
            other => panic!("{other:?}"),
        }
        let queued = map("acme", BOT, &fixture("session_queued.json"), "web_chat");
        assert!(matches!(
            queued.events.as_slice(),
            [GatewayEvent::SessionOpened(_), GatewayEvent::Queued(_)]
        ));
        for name in ["session_taken.json", "session_forwarded.json"] {
            let m = map("acme", BOT, &fixture(name), "web_chat");
            assert!(
                matches!(m.events.as_slice(), [GatewayEvent::Transferred(_)]),
                "{name}: {m:?}"
            );
        }
        let closed = map("acme", BOT, &fixture("session_close.json"), "web_chat");
        assert!(matches!(
            closed.events.as_slice(),
            [GatewayEvent::SessionClosed(_)]
        ));
        let offline = fixture("offline_message.json");
        assert!(map("acme", BOT, &offline, "web_chat").ignored.is_some());
        assert!(parse(b"[1, 2]").is_err());
    }
}
