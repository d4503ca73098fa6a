//! A chat action (the callback record the engine keeps, in order per session) made
//! as Chatwoot REST calls.
//!
//! - A post first reads the conversation: one resolved, snoozed or pending in
//!   Chatwoot (a webhook we never got) is not posted into; what the status says is
//!   handed back as events, so the cycle stops as the webhook would have stopped it.
//! - A post tried again after a failure whose outcome is unknown (a time-out, a reset,
//!   a 5xx) first looks for itself among the conversation's latest messages: Chatwoot
//!   takes no idempotency key, and a post it did make must not appear twice.
//! - An `agent_notice` post is a private note: only agents see it.
//! - A close resolves the conversation (idempotent in Chatwoot).

use serde::Deserialize;

use autoclose_core::event::GatewayEvent;
use autoclose_webhook::retry::AttemptResult;

use super::ECHO_KEY;
use super::client::{Account, CallError, Client};
use super::inbound;
use super::payload::{Conversation, Message};

/// The post kind that goes to agents only.
pub const AGENT_NOTICE: &str = "agent_notice";

/// A chat action as the engine's callback record holds it (the generic callback's
/// body, docs/contract.md).
#[derive(Debug, Deserialize)]
pub struct Action {
    /// The action id, the same on every attempt.
    pub id: String,
    /// `post_message` or `close_session`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The tenant.
    pub tenant: String,
    /// The session: the conversation's display id.
    pub session: String,
    /// The post's kind label (`warning`, `close`, `agent_notice`).
    #[serde(default, rename = "kind")]
    pub post_kind: Option<String>,
    /// The post's text.
    #[serde(default)]
    pub text: Option<String>,
}

/// What an action came to.
#[derive(Debug)]
pub struct Made {
    /// For the retry policy.
    pub result: AttemptResult,
    /// What Chatwoot said that no webhook told us (the conversation is resolved,
    /// snoozed or pending), for the engine to apply.
    pub learned: Vec<GatewayEvent>,
    /// Why nothing was posted although the action is done, for the log.
    pub skipped: Option<&'static str>,
    /// The error of the call that failed, for the log (names the conversation).
    pub error: Option<CallError>,
}

const OK: AttemptResult = AttemptResult::Answered {
    status: 200,
    retry_after_ms: None,
    body: Vec::new(),
};

impl Made {
    fn done() -> Self {
        Made {
            result: OK,
            learned: Vec::new(),
            skipped: None,
            error: None,
        }
    }

    fn skipped(why: &'static str, learned: Vec<GatewayEvent>) -> Self {
        Made {
            result: OK,
            learned,
            skipped: Some(why),
            error: None,
        }
    }

    fn failed(error: CallError) -> Self {
        Made {
            result: error.to_attempt(),
            learned: Vec::new(),
            skipped: None,
            error: Some(error),
        }
    }
}

/// Makes `body` (a callback record's body) for `account`; `attempt` is 1 on the first
/// try. `now_ms` turns a snooze into a hold.
pub async fn make(
    client: &Client,
    account: Account<'_>,
    body: &[u8],
    attempt: u32,
    now_ms: u64,
) -> Made {
    let action: Action = match serde_json::from_slice(body) {
        Ok(action) => action,
        Err(e) => {
            return Made {
                result: AttemptResult::Refused(format!("not a chat action: {e}")),
                learned: Vec::new(),
                skipped: None,
                error: None,
            };
        }
    };
    let Ok(conversation) = action.session.parse::<u64>() else {
        return Made {
            result: AttemptResult::Refused(format!(
                "session {:?} is not a Chatwoot conversation id",
                action.session
            )),
            learned: Vec::new(),
            skipped: None,
            error: None,
        };
    };
    match action.kind.as_str() {
        "close_session" => match client.set_status(account, conversation, "resolved").await {
            Ok(()) => Made::done(),
            Err(e) => Made::failed(e),
        },
        "post_message" => post(client, account, conversation, &action, attempt, now_ms).await,
        other => Made {
            result: AttemptResult::Refused(format!("unknown action type {other:?}")),
            learned: Vec::new(),
            skipped: None,
            error: None,
        },
    }
}

async fn post(
    client: &Client,
    account: Account<'_>,
    conversation: u64,
    action: &Action,
    attempt: u32,
    now_ms: u64,
) -> Made {
    let current = match client.conversation(account, conversation).await {
        Ok(current) => current,
        Err(e) => return Made::failed(e),
    };
    if let Some((why, learned)) = not_open(&action.tenant, &current, now_ms) {
        return Made::skipped(why, learned);
    }
    if attempt > 1 {
        match client.messages(account, conversation).await {
            Ok(messages) if already_posted(&messages, &action.id) => {
                return Made::skipped("posted by an earlier attempt", Vec::new());
            }
            Ok(_) => {}
            Err(e) => return Made::failed(e),
        }
    }
    let private = action.post_kind.as_deref() == Some(AGENT_NOTICE);
    let text = action.text.as_deref().unwrap_or_default();
    match client
        .post(account, conversation, text, private, &action.id)
        .await
    {
        Ok(_) => Made::done(),
        Err(e) => Made::failed(e),
    }
}

/// Why a conversation must not be posted into, and the events its status means: a
/// post into a resolved conversation would reach nobody (or reopen it), one into a
/// snoozed or pending one would break the wait the agent asked for.
pub fn not_open(
    tenant: &str,
    conversation: &Conversation,
    now_ms: u64,
) -> Option<(&'static str, Vec<GatewayEvent>)> {
    let why = match conversation.status.as_deref()? {
        "resolved" => "the conversation is resolved in Chatwoot",
        "snoozed" => "the conversation is snoozed in Chatwoot",
        "pending" => "the conversation is pending in Chatwoot",
        _ => return None,
    };
    Some((why, inbound::status_events(tenant, conversation, now_ms)))
}

/// Whether one of `messages` is the post of action `id`.
pub fn already_posted(messages: &[Message], id: &str) -> bool {
    messages.iter().any(|m| {
        m.content_attributes
            .as_ref()
            .and_then(|a| a.get(ECHO_KEY))
            .and_then(|v| v.as_str())
            == Some(id)
    })
}
