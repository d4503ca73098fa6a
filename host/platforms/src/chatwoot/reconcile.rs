//! What the webhooks would have said, read back through the API.
//!
//! Chatwoot does not retry an account webhook: a delivery that reached no node (all
//! down, a network cut, a deploy) is gone. Reconciliation reads the open conversations
//! and submits each one's last message as if its webhook had come now. Messages carry
//! their id as `seq`, so one that was already applied is dropped by the engine; one
//! that was missed starts (or stops) its cycle now.
//!
//! A missed resolve, snooze or pending is caught when a post is about to be made
//! (see [`super::outbound`]): the post reads the conversation first.

use autoclose_core::event::GatewayEvent;

use super::channel_name;
use super::client::{Account, Client};
use super::inbound::message_event;
use super::payload::Conversation;
use crate::fields::time_ms;
use crate::rest::CallError;

/// Most pages read in one round (25 conversations a page): 10,000 open conversations.
pub const MAX_PAGES: u32 = 400;

/// The events that catch `tenant` up with `conversations`: the last message of each
/// conversation whose last message is at most `window_ms` old at `now_ms`. Older ones
/// are left alone: on a first start, a month-old agent message would otherwise start a
/// cycle and close a conversation nobody is waiting on.
pub fn catch_up(
    tenant: &str,
    conversations: &[Conversation],
    now_ms: u64,
    window_ms: u64,
) -> Vec<GatewayEvent> {
    let mut events = Vec::new();
    for conversation in conversations {
        let Some(message) = &conversation.last_non_activity_message else {
            continue;
        };
        let at = message.created_at.as_ref().and_then(time_ms);
        if at.is_none_or(|at| now_ms.saturating_sub(at) > window_ms) {
            continue;
        }
        let channel = conversation.channel_type().map(channel_name);
        events.extend(message_event(tenant, conversation.id, channel, message));
    }
    // Oldest first, as the webhooks would have come.
    events.sort_by_key(|e| match e {
        GatewayEvent::Message(m) => m.seq.unwrap_or(0),
        _ => 0,
    });
    events
}

/// Every open conversation of `account`, page by page, at most [`MAX_PAGES`].
pub async fn open_conversations(
    client: &Client,
    account: Account<'_>,
) -> Result<Vec<Conversation>, CallError> {
    let mut all = Vec::new();
    for page in 1..=MAX_PAGES {
        let conversations = client.open_conversations(account, page).await?;
        if conversations.is_empty() {
            break;
        }
        all.extend(conversations);
    }
    Ok(all)
}
