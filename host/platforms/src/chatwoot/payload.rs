//! The parts of Chatwoot's JSON that the adapter reads, in the two shapes Chatwoot
//! writes them: webhook payloads (`Message#webhook_data`, `Conversation#webhook_data`
//! in `app/models/message.rb` and `app/models/conversation.rb`) and REST answers (the
//! jbuilder views under `app/views/api/v1/accounts/conversations/`). Unknown fields
//! are ignored: Chatwoot adds fields between versions.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// A message, from a `message_created` webhook or a REST answer.
#[derive(Clone, Debug, Deserialize)]
pub struct Message {
    /// The message id: grows with every message of the installation.
    pub id: u64,
    /// The text; absent for an attachment alone.
    #[serde(default)]
    pub content: Option<String>,
    /// Who it is for: a string in webhooks, an integer in REST answers.
    #[serde(deserialize_with = "message_type")]
    pub message_type: MessageType,
    /// A private note, seen by agents only.
    #[serde(default, deserialize_with = "lenient_bool")]
    pub private: bool,
    /// The writer, as its `webhook_data` (no `type` for a contact) or `push_event_data`.
    #[serde(default)]
    pub sender: Option<Writer>,
    /// `Contact`, `User` or `AgentBot`, in REST answers.
    #[serde(default)]
    pub sender_type: Option<String>,
    /// Attributes a poster set; ours carry [`super::ECHO_KEY`].
    #[serde(default)]
    pub content_attributes: Option<Value>,
    /// The id the poster gave; ours start with [`super::SOURCE_ID_PREFIX`].
    #[serde(default)]
    pub source_id: Option<String>,
    /// Attached files.
    #[serde(default)]
    pub attachments: Option<Vec<Value>>,
    /// The message's conversation (webhooks only).
    #[serde(default)]
    pub conversation: Option<Conversation>,
    /// The account (webhooks only).
    #[serde(default)]
    pub account: Option<Named>,
    /// The inbox (webhooks only).
    #[serde(default)]
    pub inbox: Option<Named>,
    /// When it was written: an ISO 8601 string in webhooks, Unix seconds in REST.
    #[serde(default)]
    pub created_at: Option<Value>,
}

/// `message_type` of a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MessageType {
    /// From the contact (`incoming`, 0).
    Incoming,
    /// From an agent, a bot or an automation (`outgoing`, 1).
    Outgoing,
    /// A status line Chatwoot writes itself (`activity`, 2).
    Activity,
    /// A template message (`template`, 3), such as a greeting or a WhatsApp template.
    Template,
    /// A type this adapter does not know.
    Other,
}

/// A writer of a message.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Writer {
    /// `user`, `agent_bot` or `contact`; absent in a contact's `webhook_data`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// The display name.
    #[serde(default)]
    pub name: Option<String>,
    /// Its id.
    #[serde(default)]
    pub id: Option<u64>,
}

/// Something with an id and a name (an account, an inbox, a team).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Named {
    /// Its id.
    #[serde(default)]
    pub id: Option<u64>,
    /// Its name.
    #[serde(default)]
    pub name: Option<String>,
}

/// A conversation: the top level of a conversation webhook, a message's
/// `conversation`, an item of the conversation list.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Conversation {
    /// The display id (the number in the conversation's URL and in REST paths).
    pub id: u64,
    /// The inbox type, e.g. `Channel::WebWidget` (webhooks).
    #[serde(default)]
    pub channel: Option<String>,
    /// `open`, `resolved`, `pending` or `snoozed`.
    #[serde(default)]
    pub status: Option<String>,
    /// Until when it is snoozed: ISO 8601 in webhooks, Unix seconds in some answers.
    #[serde(default)]
    pub snoozed_until: Option<Value>,
    /// The inbox's id.
    #[serde(default)]
    pub inbox_id: Option<u64>,
    /// The account's id (webhooks of conversation events).
    #[serde(default)]
    pub account_id: Option<u64>,
    /// Contact, assignee, team and (in REST answers) the channel.
    #[serde(default)]
    pub meta: Option<Meta>,
    /// What the widget reported (`browser_language`, ...).
    #[serde(default)]
    pub additional_attributes: Option<Value>,
    /// The last message that is not an activity line (REST answers).
    #[serde(default)]
    pub last_non_activity_message: Option<Box<Message>>,
    /// What changed, on `conversation_updated` and `conversation_status_changed`:
    /// a list of `{attribute: {previous_value, current_value}}` (or one object).
    #[serde(default)]
    pub changed_attributes: Option<Value>,
}

/// A conversation's `meta`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Meta {
    /// The contact.
    #[serde(default)]
    pub sender: Option<Writer>,
    /// The assigned agent.
    #[serde(default)]
    pub assignee: Option<Writer>,
    /// The team.
    #[serde(default)]
    pub team: Option<Named>,
    /// The inbox type (REST answers).
    #[serde(default)]
    pub channel: Option<String>,
}

impl Conversation {
    /// The inbox type, wherever this shape carries it.
    pub fn channel_type(&self) -> Option<&str> {
        self.channel
            .as_deref()
            .or_else(|| self.meta.as_ref()?.channel.as_deref())
    }

    /// Whether `attribute` is among the changed attributes.
    pub fn changed(&self, attribute: &str) -> bool {
        match &self.changed_attributes {
            Some(Value::Array(items)) => items.iter().any(|item| item.get(attribute).is_some()),
            Some(Value::Object(map)) => map.contains_key(attribute),
            _ => false,
        }
    }
}

impl Message {
    /// Whether the writer is an agent bot.
    pub fn from_bot(&self) -> bool {
        self.sender_type.as_deref() == Some("AgentBot")
            || self
                .sender
                .as_ref()
                .and_then(|s| s.kind.as_deref())
                .is_some_and(|k| k == "agent_bot")
    }

    /// Whether the writer is a user (an agent or an administrator).
    pub fn from_user(&self) -> bool {
        self.sender_type.as_deref() == Some("User")
            || self
                .sender
                .as_ref()
                .and_then(|s| s.kind.as_deref())
                .is_some_and(|k| k == "user")
    }
}

fn message_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<MessageType, D::Error> {
    Ok(match Value::deserialize(deserializer)? {
        Value::String(s) => match s.as_str() {
            "incoming" => MessageType::Incoming,
            "outgoing" => MessageType::Outgoing,
            "activity" => MessageType::Activity,
            "template" => MessageType::Template,
            _ => MessageType::Other,
        },
        Value::Number(n) => match n.as_u64() {
            Some(0) => MessageType::Incoming,
            Some(1) => MessageType::Outgoing,
            Some(2) => MessageType::Activity,
            Some(3) => MessageType::Template,
            _ => MessageType::Other,
        },
        _ => MessageType::Other,
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    Ok(matches!(
        Value::deserialize(deserializer)?,
        Value::Bool(true)
    ))
}
