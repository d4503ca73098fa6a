//! What plugins did, as the host reports it: one transcript line per action.

use serde::Serialize;
use serde_json::Value;

/// An action taken by a plugin, stamped with the host time it was taken at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Action {
    /// Host time in milliseconds (virtual under replay).
    pub at_ms: u64,
    /// What was done.
    #[serde(flatten)]
    pub kind: ActionKind,
}

/// The kinds of action, tagged `action` in JSON.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum ActionKind {
    /// A message posted into a session's history.
    PostMessage {
        /// The tenant.
        tenant: String,
        /// The gateway's session id.
        session: String,
        /// The plugin's label for the post (`warning`, `close`, ...).
        kind: String,
        /// The text.
        text: String,
    },
    /// A webhook request queued for delivery.
    Webhook {
        /// The tenant.
        tenant: String,
        /// The gateway's session id.
        session: String,
        /// The event type, e.g. `chat.auto_close.warning`.
        event: String,
        /// The webhook's name.
        webhook: String,
        /// The `webhook-id`: the same for every attempt of this delivery.
        id: String,
        /// HTTP method.
        method: String,
        /// Target URL.
        url: String,
        /// The JSON body as it is sent.
        body: Value,
    },
    /// One attempt of a webhook delivery and what follows from it.
    WebhookAttempt {
        /// The tenant.
        tenant: String,
        /// The gateway's session id.
        session: String,
        /// The webhook's name.
        webhook: String,
        /// The `webhook-id`.
        id: String,
        /// 1 for the first attempt.
        attempt: u32,
        /// What the receiver did: `status 503`, `timed out after 10s`, ...
        result: String,
        /// `delivered after N attempts`, `retry at <ms>` or `gave up: <reason>`.
        outcome: String,
    },
    /// A session closed by a plugin.
    CloseSession {
        /// The tenant.
        tenant: String,
        /// The gateway's session id.
        session: String,
        /// Why.
        reason: String,
    },
}
