//! The JSON Rocket.Chat writes, as far as the adapter reads it. Unknown fields are
//! ignored and most fields are optional: versions differ, and a field the adapter
//! does not need must never make a delivery unreadable.
//!
//! Shapes from `getLivechatRoomGuestInfo` (`apps/meteor/app/livechat/server/lib/guests.ts`)
//! and `sendToCRM` (`apps/meteor/app/livechat/server/hooks/sendToCRM.ts`) for the
//! webhooks, and `IOmnichannelRoom` / `IMessage`
//! (`packages/core-typings/src/IRoom.ts`, `IMessage`) for the REST answers. Dates are
//! ISO 8601 text in both.

use serde::Deserialize;
use serde_json::Value;

use crate::fields::time_ms;

/// One webhook delivery (`Livechat_webhookUrl`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Delivery {
    /// `Message`, `LivechatSession` (the close), `LivechatSessionStart`,
    /// `LivechatSessionQueued`, `LivechatSessionTaken`, `LivechatSessionForwarded`,
    /// `LivechatOfflineMessage`, `LivechatEdit`, `LeadCapture`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The room's id (absent on `LivechatOfflineMessage`, which has no room).
    #[serde(rename = "_id", default)]
    pub room: Option<String>,
    /// The room's label: the visitor's display name.
    #[serde(default)]
    pub label: Option<String>,
    /// The visitor.
    #[serde(default)]
    pub visitor: Option<Visitor>,
    /// `Message`: the one message just saved; the session types: every visible
    /// message of the room, oldest first.
    #[serde(default)]
    pub messages: Vec<Message>,
    /// The room's department.
    #[serde(default)]
    pub department_id: Option<String>,
    /// `LivechatSession`: who closed (`user` or `visitor`).
    #[serde(default)]
    pub closer: Option<String>,
}

/// The visitor of a room, as a webhook names them.
#[derive(Debug, Clone, Deserialize)]
pub struct Visitor {
    /// Their id.
    #[serde(rename = "_id", default)]
    pub id: Option<String>,
    /// Their name.
    #[serde(default)]
    pub name: Option<String>,
    /// Their username (`guest-42`).
    #[serde(default)]
    pub username: Option<String>,
}

/// A user as a message names them.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    /// Their id.
    #[serde(rename = "_id", default)]
    pub id: Option<String>,
    /// Their username.
    #[serde(default)]
    pub username: Option<String>,
    /// Their display name.
    #[serde(default)]
    pub name: Option<String>,
}

/// One message, in a webhook or a REST answer.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Its id (the one we gave, for our posts).
    #[serde(rename = "_id")]
    pub id: String,
    /// Its author.
    #[serde(default)]
    pub u: Option<User>,
    /// Its text.
    #[serde(default)]
    pub msg: Option<String>,
    /// When it was written.
    #[serde(default)]
    pub ts: Option<Value>,
    /// Webhooks: the author's id when the author is not the visitor (agents and bots
    /// alike).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// REST answers: the visitor's token, set on messages the visitor wrote.
    #[serde(default)]
    pub token: Option<String>,
    /// A system message's type (`livechat-close`, `uj`, ...); absent on what people
    /// and bots write.
    #[serde(default)]
    pub t: Option<String>,
    /// Set when the message was edited: an edit is delivered again under the same id.
    #[serde(default)]
    pub edited_at: Option<Value>,
    /// The message the close left (inside a `LivechatSession`).
    #[serde(default)]
    pub closing_message: bool,
    /// Attachments.
    #[serde(default)]
    pub attachments: Option<Vec<Value>>,
    /// An uploaded file.
    #[serde(default)]
    pub file: Option<Value>,
}

impl Message {
    /// When it was written, in Unix ms.
    pub fn ts_ms(&self) -> Option<u64> {
        self.ts.as_ref().and_then(time_ms)
    }

    /// The author's id.
    pub fn author(&self) -> Option<&str> {
        self.u.as_ref().and_then(|u| u.id.as_deref())
    }
}

/// A livechat room (`rooms.info`, `livechat/rooms`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// Its id.
    #[serde(rename = "_id")]
    pub id: String,
    /// `true` while open; a closed room has no `open` at all.
    #[serde(default)]
    pub open: Option<bool>,
    /// Put on hold by an agent (Enterprise): waits until the visitor writes or an
    /// agent resumes it.
    #[serde(default)]
    pub on_hold: Option<bool>,
    /// The serving agent; absent while the room waits in the queue.
    #[serde(default)]
    pub served_by: Option<ServedBy>,
    /// Where the room came from.
    #[serde(default)]
    pub source: Option<Source>,
    /// The last message, system messages included.
    #[serde(default)]
    pub last_message: Option<Message>,
    /// The visitor's display name.
    #[serde(default)]
    pub fname: Option<String>,
    /// The visitor.
    #[serde(default)]
    pub v: Option<Visitor>,
    /// The department.
    #[serde(default)]
    pub department_id: Option<String>,
}

impl Room {
    /// Whether the room is open (a closed room has lost its `open` field).
    pub fn is_open(&self) -> bool {
        self.open == Some(true)
    }

    /// The room's channel name.
    pub fn channel(&self) -> String {
        super::channel_name(self.source.as_ref().and_then(|s| s.kind.as_deref()))
    }
}

/// The serving agent of a room.
#[derive(Debug, Clone, Deserialize)]
pub struct ServedBy {
    /// Their id.
    #[serde(rename = "_id", default)]
    pub id: Option<String>,
    /// Their username.
    #[serde(default)]
    pub username: Option<String>,
}

/// Where a room came from (`IOmnichannelSource`).
#[derive(Debug, Clone, Deserialize)]
pub struct Source {
    /// `widget`, `api`, `email`, `sms`, `app`, `other`.
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../tests/fixtures/rocketchat/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn every_webhook_fixture_reads() {
        for (name, kind, messages) in [
            ("message_visitor.json", "Message", 1),
            ("message_agent.json", "Message", 1),
            ("message_agent_bot_echo.json", "Message", 1),
            ("session_start.json", "LivechatSessionStart", 0),
            ("session_queued.json", "LivechatSessionQueued", 0),
            ("session_taken.json", "LivechatSessionTaken", 0),
            ("session_forwarded.json", "LivechatSessionForwarded", 2),
            ("session_close.json", "LivechatSession", 5),
        ] {
            let delivery: Delivery =
                serde_json::from_slice(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(delivery.kind, kind, "{name}");
            assert_eq!(delivery.messages.len(), messages, "{name}");
            assert_eq!(
                delivery.room.as_deref(),
                Some("xHvyg7PbT9oLGHwRk"),
                "{name}"
            );
        }
    }

    #[test]
    fn rooms_read_from_both_answers() {
        #[derive(Deserialize)]
        struct Info {
            room: Room,
        }
        #[derive(Deserialize)]
        struct List {
            rooms: Vec<Room>,
        }
        let info: Info = serde_json::from_slice(&fixture("rest_rooms_info.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(info.room.is_open());
        assert_eq!(info.room.channel(), "web_chat");
        let last = info
            .room
            .last_message
            .as_ref()
            .unwrap_or_else(|| panic!("last"));
        assert_eq!(last.author(), Some("Gk3HzZ7cYw9nqBdPs"));
        assert_eq!(last.ts_ms(), Some(1_741_079_861_590));
        let list: List = serde_json::from_slice(&fixture("rest_livechat_rooms.json"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!list.rooms.is_empty());
    }
}
