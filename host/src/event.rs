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

/// One event from a gateway. `type` selects the variant; unknown fields are errors so
/// that a typo never silently changes behaviour.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum GatewayEvent {
    /// A session started.
    SessionOpened {
        /// The tenant.
        tenant: String,
        /// The gateway's session id.
        session: String,
        /// The widget kind, e.g. `web_chat` or `http_api`.
        channel: String,
        /// Attributes such as `locale` or the end user's name.
        #[serde(default)]
        attributes: BTreeMap<String, String>,
    },
    /// A message was written.
    Message(MessageEvent),
    /// The end user's client reported its visibility.
    Presence {
        /// The tenant.
        tenant: String,
        /// The gateway's session id.
        session: String,
        /// What it reported.
        state: Visibility,
    },
    /// The session ended (by anyone other than a plugin).
    SessionClosed {
        /// The tenant.
        tenant: String,
        /// The gateway's session id.
        session: String,
    },
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
    /// The gateway's message id.
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
    /// The message carries an attachment.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attachment: bool,
}

impl GatewayEvent {
    /// The tenant the event belongs to.
    pub fn tenant(&self) -> &str {
        match self {
            GatewayEvent::SessionOpened { tenant, .. }
            | GatewayEvent::Presence { tenant, .. }
            | GatewayEvent::SessionClosed { tenant, .. } => tenant,
            GatewayEvent::Message(m) => &m.tenant,
        }
    }

    /// The gateway's id of the session the event belongs to.
    pub fn session(&self) -> &str {
        match self {
            GatewayEvent::SessionOpened { session, .. }
            | GatewayEvent::Presence { session, .. }
            | GatewayEvent::SessionClosed { session, .. } => session,
            GatewayEvent::Message(m) => &m.session,
        }
    }
}
