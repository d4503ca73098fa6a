//! A chat action (the callback record the engine keeps, in order per session) made
//! as Rocket.Chat REST calls.
//!
//! - A post first reads the room: one closed, on hold or back in the queue in
//!   Rocket.Chat (a webhook we never got) is not posted into; what the room says is
//!   handed back as events, so the cycle stops as the webhook would have stopped it.
//! - A post goes out with a message `_id` made from the action id. Rocket.Chat
//!   refuses a second message with the same id, so a post retried after a failure
//!   whose outcome is unknown is never made twice: when the retry is refused, the
//!   message is looked up by its id, and found means done.
//! - An `agent_notice` post is a direct message from the bot user to the serving
//!   agent: livechat rooms have no note only agents see.
//! - A close reads the room as well (on hold or queued: no close, the wait goes on),
//!   then closes it with a comment (Rocket.Chat requires one by default); a room that
//!   is already closed is a close done.

use autoclose_core::event::{ClosedEvent, GatewayEvent, HoldEvent, SessionRef};

use crate::action::{Action, Made};

use super::client::Client;
use super::message_id;
use super::payload::Room;

/// The comment of our closes, after which the action's reason follows.
pub const CLOSE_COMMENT: &str = "Closed by autoclose";

/// Makes `body` (a callback record's body) through `client`. Every attempt makes the
/// same calls: the message id, not the attempt number, keeps a post single.
pub async fn make(client: &Client, body: &[u8]) -> Made {
    let action = match Action::parse(body) {
        Ok(action) => action,
        Err(reason) => return Made::refused(reason),
    };
    match action.kind.as_str() {
        "close_session" => close(client, &action).await,
        "post_message" => post(client, &action).await,
        other => Made::refused(format!("unknown action type {other:?}")),
    }
}

/// Closes the room, unless Rocket.Chat says it must wait (on hold, back in the queue:
/// no webhook tells either) or it is closed already.
async fn close(client: &Client, action: &Action) -> Made {
    let room = match client.room(&action.session).await {
        Ok(room) => room,
        Err(e) => return Made::failed(e),
    };
    if !room.is_open() {
        return Made::skipped("the room was already closed", Vec::new());
    }
    if let Some((why, learned)) = not_open(&action.tenant, &room) {
        return Made::skipped(why, learned);
    }
    let comment = match action.reason.as_deref() {
        Some(reason) => format!("{CLOSE_COMMENT} ({reason})"),
        None => CLOSE_COMMENT.to_owned(),
    };
    match client.close(&action.session, &comment).await {
        Ok(()) => Made::done(),
        // Two closes at once: Rocket.Chat asks to try again.
        Err(e) if e.body().contains("error-room-cannot-be-closed-try-again") => Made {
            result: autoclose_webhook::retry::AttemptResult::Failed(e.to_string()),
            error: Some(e),
            ..Made::done()
        },
        // `error-room-already-closed`, or, in newer versions, `error-not-authorized`
        // for a room whose subscriptions the close removed: the room says which.
        Err(e) if e.status() == Some(400) => match client.room(&action.session).await {
            Ok(room) if !room.is_open() => Made::skipped("the room was already closed", Vec::new()),
            Ok(_) => Made::failed(e),
            // The follow-up failed on its own: its error is the one to retry.
            Err(follow_up) => Made::failed(follow_up),
        },
        Err(e) => Made::failed(e),
    }
}

async fn post(client: &Client, action: &Action) -> Made {
    let room = match client.room(&action.session).await {
        Ok(room) => room,
        Err(e) => return Made::failed(e),
    };
    if let Some((why, learned)) = not_open(&action.tenant, &room) {
        return Made::skipped(why, learned);
    }
    let text = action.text.as_deref().unwrap_or_default();
    let id = message_id(&action.id);
    let target = if action.is_agent_notice() {
        let Some(agent) = room.served_by.as_ref().and_then(|s| s.username.as_deref()) else {
            return Made::skipped("no serving agent to notify", Vec::new());
        };
        match client.direct_room(agent).await {
            Ok(direct) => direct,
            Err(e) => return Made::failed(e),
        }
    } else {
        action.session.clone()
    };
    match client.send(&target, &id, text).await {
        Ok(()) => Made::done(),
        Err(e) if e.status() == Some(400) => match client.message_exists(&id).await {
            Ok(true) => Made::skipped("posted by an earlier attempt", Vec::new()),
            Ok(false) => Made::failed(e),
            // The look-up failed on its own: its error is the one to retry.
            Err(follow_up) => Made::failed(follow_up),
        },
        Err(e) => Made::failed(e),
    }
}

/// Why a room must not be posted into, and the events its state means: a post into a
/// closed room reaches nobody, one into a room on hold or in the queue breaks the wait
/// an agent (or the routing) asked for.
pub fn not_open(tenant: &str, room: &Room) -> Option<(&'static str, Vec<GatewayEvent>)> {
    let session = room.id.clone();
    if !room.is_open() {
        return Some((
            "the room is closed in Rocket.Chat",
            vec![GatewayEvent::SessionClosed(ClosedEvent {
                tenant: tenant.to_owned(),
                session,
            })],
        ));
    }
    if room.on_hold == Some(true) {
        // A hold without an end: until the visitor writes or an agent resumes it.
        return Some((
            "the room is on hold in Rocket.Chat",
            vec![GatewayEvent::Hold(HoldEvent {
                tenant: tenant.to_owned(),
                session,
                duration: None,
            })],
        ));
    }
    if room.served_by.is_none() {
        return Some((
            "the room is back in the queue in Rocket.Chat",
            vec![GatewayEvent::Queued(SessionRef {
                tenant: tenant.to_owned(),
                session,
            })],
        ));
    }
    None
}
