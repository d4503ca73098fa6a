//! The events a gateway reports, in the JSON shape of scenario lines and ingest requests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    /// A human agent.
    Agent,
    /// The customer.
    EndUser,
    /// An automated participant for the contact centre.
    Bot,
    /// A gateway notice.
    System,
}

/// What the end user's client reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// The chat is on screen.
    Visible,
    /// The chat is in a background tab or app.
    Hidden,
}

/// One event from a gateway, tagged by `type` in JSON. Unknown fields are errors so
/// that a typo never silently changes behaviour; parse with [`GatewayEvent::from_json`]
/// for errors that name the field.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum GatewayEvent {
    /// A session started.
    SessionOpened(OpenedEvent),
    /// A message was written.
    Message(MessageEvent),
    /// The end user's client reported its visibility.
    Presence(PresenceEvent),
    /// The session ended (by anyone other than a plugin).
    SessionClosed(ClosedEvent),
    /// The agent asked the end user to wait.
    Hold(HoldEvent),
    /// The session went back to a queue.
    Queued(SessionRef),
    /// The session was handed to another agent or team.
    Transferred(SessionRef),
}

/// The event types, as written in `type`.
pub const EVENT_TYPES: [&str; 7] = [
    "session_opened",
    "message",
    "presence",
    "session_closed",
    "hold",
    "queued",
    "transferred",
];

/// Longest tenant name, session id, channel name, message id and origin, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest message text, in bytes.
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// Most attributes on a `session_opened` event.
pub const MAX_ATTRIBUTES: usize = 64;
/// Longest attribute name (`MAX_NAME_BYTES`) and value, in bytes.
pub const MAX_ATTRIBUTE_VALUE_BYTES: usize = 1024;

/// A session started.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenedEvent {
    /// The tenant.
    pub tenant: String,
    /// The gateway's session id.
    pub session: String,
    /// The widget kind, e.g. `web_chat` or `http_api`.
    pub channel: String,
    /// Attributes such as `locale` or the end user's name.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
    /// The platform reopened a closed conversation under the same id (Chatwoot does
    /// when a resolved conversation gets a new message): a closed session starts
    /// afresh, an open one is left as it is. Without it a closed session ignores the
    /// event, as a late or repeated open.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reopen: bool,
}

/// The end user's client reported its visibility.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresenceEvent {
    /// The tenant.
    pub tenant: String,
    /// The gateway's session id.
    pub session: String,
    /// What it reported.
    pub state: Visibility,
}

/// The session ended (by anyone other than a plugin).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClosedEvent {
    /// The tenant.
    pub tenant: String,
    /// The gateway's session id.
    pub session: String,
}

/// The agent asked the end user to wait: for a while (`for`), or until an agent
/// speaks again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HoldEvent {
    /// The tenant.
    pub tenant: String,
    /// The gateway's session id.
    pub session: String,
    /// How long the hold lasts (`"10m"`); absent: until the next agent message.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub duration: Option<autoclose_duration::Duration>,
}

/// An event that names a session and nothing else (`queued`, `transferred`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionRef {
    /// The tenant.
    pub tenant: String,
    /// The gateway's session id.
    pub session: String,
}

/// A message event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageEvent {
    /// The tenant.
    pub tenant: String,
    /// The gateway's session id.
    pub session: String,
    /// Who wrote it.
    pub sender: Sender,
    /// The gateway's message id. The session's last message (not an echo) delivered
    /// again with the same id is a repeat and is dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The session's channel, for gateways that do not send `session_opened`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
    /// The plugin that posted it, when the gateway echoes a plugin's post back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The writer's display name (an agent's name for `{{agent_name}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_name: Option<String>,
    /// The message carries an attachment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attachment: bool,
    /// A number that grows with every message of the session, such as the platform's
    /// message id (Chatwoot's ids grow): a message whose `seq` is not above the
    /// highest seen in its session is a repeated or stale delivery and is dropped, so
    /// a webhook delivered twice, or found again by reconciliation, applies once.
    /// Echoes of a plugin's own posts (`origin` set) are left out of it: they change
    /// nothing, and must not make an earlier reply look stale.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

impl GatewayEvent {
    /// Parses an event object (without `at_ms`). The error names the field, e.g.
    /// `sender: unknown variant `customer`, expected one of ...`.
    pub fn from_json(
        mut object: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, String> {
        let kind = match object.remove("type") {
            None => return Err("missing type".to_owned()),
            Some(serde_json::Value::String(kind)) => kind,
            Some(other) => return Err(format!("type: {other} is not a string")),
        };
        let rest = serde_json::Value::Object(object);
        let event = match kind.as_str() {
            "session_opened" => autoclose_config::fields(rest).map(GatewayEvent::SessionOpened),
            "message" => autoclose_config::fields(rest).map(GatewayEvent::Message),
            "presence" => autoclose_config::fields(rest).map(GatewayEvent::Presence),
            "session_closed" => autoclose_config::fields(rest).map(GatewayEvent::SessionClosed),
            "hold" => autoclose_config::fields(rest).map(GatewayEvent::Hold),
            "queued" => autoclose_config::fields(rest).map(GatewayEvent::Queued),
            "transferred" => autoclose_config::fields(rest).map(GatewayEvent::Transferred),
            other => Err(format!(
                "type: unknown event type {other:?} (expected one of {})",
                EVENT_TYPES.join(", ")
            )),
        }?;
        event.check_sizes()?;
        Ok(event)
    }

    /// Checks every field against its size bound; the error names the field.
    pub fn check_sizes(&self) -> Result<(), String> {
        let name = |field: &str, value: &str| {
            if value.len() > MAX_NAME_BYTES {
                Err(format!(
                    "{field}: {} bytes; at most {MAX_NAME_BYTES}",
                    value.len()
                ))
            } else {
                Ok(())
            }
        };
        name("tenant", self.tenant())?;
        name("session", self.session())?;
        match self {
            GatewayEvent::SessionOpened(e) => {
                name("channel", &e.channel)?;
                if e.attributes.len() > MAX_ATTRIBUTES {
                    return Err(format!(
                        "attributes: {} entries; at most {MAX_ATTRIBUTES}",
                        e.attributes.len()
                    ));
                }
                for (key, value) in &e.attributes {
                    name("attributes", key)?;
                    if value.len() > MAX_ATTRIBUTE_VALUE_BYTES {
                        return Err(format!(
                            "attributes.{key}: {} bytes; at most {MAX_ATTRIBUTE_VALUE_BYTES}",
                            value.len()
                        ));
                    }
                }
            }
            GatewayEvent::Message(e) => {
                for (field, value) in [
                    ("id", &e.id),
                    ("channel", &e.channel),
                    ("origin", &e.origin),
                    ("sender_name", &e.sender_name),
                ] {
                    if let Some(value) = value {
                        name(field, value)?;
                    }
                }
                if let Some(text) = &e.text
                    && text.len() > MAX_TEXT_BYTES
                {
                    return Err(format!(
                        "text: {} bytes; at most {MAX_TEXT_BYTES}",
                        text.len()
                    ));
                }
            }
            GatewayEvent::Presence(_)
            | GatewayEvent::SessionClosed(_)
            | GatewayEvent::Hold(_)
            | GatewayEvent::Queued(_)
            | GatewayEvent::Transferred(_) => {}
        }
        Ok(())
    }

    /// The tenant the event belongs to.
    pub fn tenant(&self) -> &str {
        match self {
            GatewayEvent::SessionOpened(e) => &e.tenant,
            GatewayEvent::Message(e) => &e.tenant,
            GatewayEvent::Presence(e) => &e.tenant,
            GatewayEvent::SessionClosed(e) => &e.tenant,
            GatewayEvent::Hold(e) => &e.tenant,
            GatewayEvent::Queued(e) | GatewayEvent::Transferred(e) => &e.tenant,
        }
    }

    /// The gateway's id of the session the event belongs to.
    pub fn session(&self) -> &str {
        match self {
            GatewayEvent::SessionOpened(e) => &e.session,
            GatewayEvent::Message(e) => &e.session,
            GatewayEvent::Presence(e) => &e.session,
            GatewayEvent::SessionClosed(e) => &e.session,
            GatewayEvent::Hold(e) => &e.session,
            GatewayEvent::Queued(e) | GatewayEvent::Transferred(e) => &e.session,
        }
    }
}

/// What an event means for its session's channel, the rule every check of "a message
/// needs a known channel" applies (the core's intake, its batch check, a scenario's
/// check): an opening or a message naming a channel gives the session one; a message
/// without one needs the session's channel to be known already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChannelNeed {
    /// The event gives its session a channel.
    Gives,
    /// The event is a message that needs the channel known.
    Needs,
    /// The event neither gives nor needs one.
    Neither,
}

impl GatewayEvent {
    /// What this event means for its session's channel.
    pub fn channel_need(&self) -> ChannelNeed {
        match self {
            GatewayEvent::SessionOpened(_) => ChannelNeed::Gives,
            GatewayEvent::Message(m) if m.channel.is_some() => ChannelNeed::Gives,
            GatewayEvent::Message(_) => ChannelNeed::Needs,
            _ => ChannelNeed::Neither,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: serde_json::Value) -> Result<GatewayEvent, String> {
        let serde_json::Value::Object(object) = value else {
            return Err("not an object".into());
        };
        GatewayEvent::from_json(object)
    }

    #[test]
    fn every_field_is_bounded_and_the_error_names_it() {
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        let e =
            parse(serde_json::json!({"type": "session_closed", "tenant": long, "session": "s"}))
                .expect_err("long tenant");
        assert_eq!(
            e,
            format!(
                "tenant: {} bytes; at most {MAX_NAME_BYTES}",
                MAX_NAME_BYTES + 1
            )
        );
        let text = "y".repeat(MAX_TEXT_BYTES + 1);
        let e = parse(serde_json::json!({"type": "message", "tenant": "a", "session": "s", "sender": "agent", "text": text}))
            .expect_err("long text");
        assert!(e.starts_with("text: "), "{e}");
        let attributes: BTreeMap<String, String> = (0..=MAX_ATTRIBUTES)
            .map(|i| (format!("k{i}"), "v".to_owned()))
            .collect();
        let e = parse(serde_json::json!({"type": "session_opened", "tenant": "a", "session": "s", "channel": "c", "attributes": attributes}))
            .expect_err("too many attributes");
        assert!(e.starts_with("attributes: 65 entries"), "{e}");
        let e = parse(serde_json::json!({"type": "session_opened", "tenant": "a", "session": "s", "channel": "c", "attributes": {"locale": "z".repeat(MAX_ATTRIBUTE_VALUE_BYTES + 1)}}))
            .expect_err("long value");
        assert!(e.starts_with("attributes.locale: "), "{e}");
        let at_bound = "x".repeat(MAX_NAME_BYTES);
        assert!(parse(serde_json::json!({"type": "presence", "tenant": at_bound, "session": "s", "state": "hidden"})).is_ok());
    }
}
