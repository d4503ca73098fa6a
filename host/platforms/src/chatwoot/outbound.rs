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

use crate::action::{Action, Made};
use crate::fields::time_ms;
use autoclose_core::event::GatewayEvent;

use super::client::{Account, Client};
use super::inbound;
use super::payload::{Conversation, Message};
use super::{ECHO_KEY, SOURCE_ID_PREFIX};

/// Makes `body` (a callback record's body) for `account`; `attempt` is 1 on the first
/// try. `now_ms` turns a snooze into a hold.
pub async fn make(
    client: &Client,
    account: Account<'_>,
    body: &[u8],
    attempt: u32,
    now_ms: u64,
) -> Made {
    let action = match Action::parse(body) {
        Ok(action) => action,
        Err(reason) => return Made::refused(reason),
    };
    let Ok(conversation) = action.session.parse::<u64>() else {
        return Made::refused(format!(
            "session {:?} is not a Chatwoot conversation id",
            action.session
        ));
    };
    match action.kind.as_str() {
        "close_session" => close(client, account, conversation, &action, now_ms).await,
        "post_message" => post(client, account, conversation, &action, attempt, now_ms).await,
        other => Made::refused(format!("unknown action type {other:?}")),
    }
}

/// Resolves the conversation, unless Chatwoot says it must wait (snoozed, pending:
/// a webhook we never got) or is resolved already.
async fn close(
    client: &Client,
    account: Account<'_>,
    conversation: u64,
    action: &Action,
    now_ms: u64,
) -> Made {
    let current = match client.conversation(account, conversation).await {
        Ok(current) => current,
        Err(e) => return Made::failed(e),
    };
    if let Some((why, learned)) = not_open(&action.tenant, &current, now_ms) {
        return Made::skipped(why, learned);
    }
    match client.set_status(account, conversation, "resolved").await {
        Ok(()) => Made::done(),
        Err(e) => Made::failed(e),
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
    let private = action.is_agent_notice();
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
///
/// A snooze whose `snoozed_until` has passed is over: Chatwoot's job reopens such a
/// conversation within minutes of the time, and the hold it meant has ended here
/// already, so the post goes ahead rather than waiting on the job.
pub fn not_open(
    tenant: &str,
    conversation: &Conversation,
    now_ms: u64,
) -> Option<(&'static str, Vec<GatewayEvent>)> {
    let why = match conversation.status.as_deref()? {
        "resolved" => "the conversation is resolved in Chatwoot",
        "snoozed"
            if conversation
                .snoozed_until
                .as_ref()
                .and_then(time_ms)
                .is_some_and(|until| until <= now_ms) =>
        {
            return None;
        }
        "snoozed" => "the conversation is snoozed in Chatwoot",
        "pending" => "the conversation is pending in Chatwoot",
        _ => return None,
    };
    Some((why, inbound::status_events(tenant, conversation, now_ms)))
}

/// Whether one of `messages` is the post of action `id`.
pub fn already_posted(messages: &[Message], id: &str) -> bool {
    let source_id = format!("{SOURCE_ID_PREFIX}{id}");
    messages.iter().any(|m| {
        m.content_attributes
            .as_ref()
            .and_then(|a| a.get(ECHO_KEY))
            .and_then(|v| v.as_str())
            == Some(id)
            || m.source_id.as_deref() == Some(source_id.as_str())
    })
}
