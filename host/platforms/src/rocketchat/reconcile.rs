//! What the webhooks would have said, read back through the API.
//!
//! Rocket.Chat retries a failed webhook a few times, 20 s apart, in memory only: a
//! delivery that found no node through that window (or that Rocket.Chat lost in a
//! restart) is gone. Reconciliation reads the open rooms and submits each one's last
//! message as if its webhook had come now. Messages carry their time as `seq`, so one
//! that was already applied is dropped by the engine; one that was missed starts (or
//! stops) its cycle now.
//!
//! A missed close, hold or return to the queue is caught when a post is about to be
//! made (see [`super::outbound`]): the post reads the room first.

use autoclose_core::event::GatewayEvent;

use crate::rest::CallError;

use super::client::{Client, PAGE};
use super::inbound::message_event;
use super::payload::Room;

/// Most rooms read in one round: 100 pages of 100.
pub const MAX_ROOMS: u64 = 10_000;

/// The events that catch `tenant` up with `rooms`: the last message of each room
/// whose last message is at most `window_ms` old at `now_ms` (older ones are left
/// alone: on a first start, a month-old agent message would otherwise start a cycle
/// and close a room nobody is waiting on). `bot_user` is who our posts come from.
pub fn catch_up(
    tenant: &str,
    bot_user: &str,
    rooms: &[Room],
    now_ms: u64,
    window_ms: u64,
) -> Vec<GatewayEvent> {
    let mut events: Vec<(u64, GatewayEvent)> = Vec::new();
    for room in rooms {
        let Some(message) = &room.last_message else {
            continue;
        };
        let Some(at) = message.ts_ms() else {
            continue;
        };
        if now_ms.saturating_sub(at) > window_ms {
            continue;
        }
        let visitor = room.v.as_ref().and_then(|v| v.id.as_deref());
        let channel = room.channel();
        if let Some(event) =
            message_event(tenant, &room.id, Some(&channel), bot_user, visitor, message)
        {
            events.push((at, event));
        }
    }
    // Oldest first, as the webhooks would have come.
    events.sort_by_key(|(at, _)| *at);
    events.into_iter().map(|(_, e)| e).collect()
}

/// Every open, served room of the workspace, page by page, at most [`MAX_ROOMS`].
pub async fn open_rooms(client: &Client) -> Result<Vec<Room>, CallError> {
    let mut all = Vec::new();
    let mut offset = 0;
    while offset < MAX_ROOMS {
        let (rooms, total) = client.open_rooms(offset).await?;
        let read = rooms.len() as u64;
        all.extend(rooms);
        offset += read;
        // A workspace may cap pages below ours (`API_Upper_Count_Limit`): only an
        // empty page or the total ends the scan.
        let done = match total {
            Some(total) => offset >= total,
            None => read < u64::from(PAGE),
        };
        if read == 0 || done {
            break;
        }
    }
    Ok(all)
}
