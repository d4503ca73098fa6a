//! What a plugin asked for during a call, checked and recorded by the capabilities,
//! for the core to apply once the call has returned (and to drop if it trapped).

use serde_json::Value;

use crate::ids::{RequestId, SessionId, TimerKey};

/// A plugin's request, applied by the core once the call has returned.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Set or replace a timer.
    SetTimer {
        /// Which timer.
        key: TimerKey,
        /// When it fires.
        due: u64,
        /// What it carries.
        payload: Vec<u8>,
    },
    /// Cancel a timer.
    CancelTimer(TimerKey),
    /// Post a message.
    Post {
        /// Into which session.
        session: SessionId,
        /// The plugin's label.
        kind: String,
        /// The text.
        text: String,
    },
    /// Call a webhook.
    Send(SendRequest),
    /// Replace what the plugin keeps for a session.
    SetState {
        /// Which session.
        session: SessionId,
        /// The bytes; empty clears them.
        state: Vec<u8>,
    },
    /// Close a session.
    Close {
        /// Which session.
        session: SessionId,
        /// Why.
        reason: String,
    },
}

/// A plugin's webhook request, checked and waiting to be queued for delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct SendRequest {
    /// For which session.
    pub session: SessionId,
    /// The request id returned to the plugin.
    pub request: RequestId,
    /// The webhook's name.
    pub webhook: String,
    /// The event type.
    pub event_type: String,
    /// The data object.
    pub data: Value,
    /// Makes the delivery id; `None`: unique per request.
    pub idempotency_key: Option<String>,
    /// No attempt after this instant.
    pub deliver_by: Option<u64>,
}

impl Command {
    /// The session the command acts on: it counts against that session's event.
    #[inline]
    pub fn session(&self) -> SessionId {
        match self {
            Command::SetTimer { key, .. } | Command::CancelTimer(key) => key.session,
            Command::Post { session, .. }
            | Command::SetState { session, .. }
            | Command::Close { session, .. } => *session,
            Command::Send(send) => send.session,
        }
    }
}
