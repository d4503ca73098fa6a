//! The Rocket.Chat adapter: a workspace's Omnichannel webhooks in, its REST API out.
//!
//! Built from Rocket.Chat's source (6.14 and the 7.x files; tests/fixtures/rocketchat
//! names each file and commit): webhook payloads from
//! `apps/meteor/app/livechat/server/hooks/sendToCRM.ts` and `getLivechatRoomGuestInfo`
//! (`apps/meteor/app/livechat/server/lib/guests.ts`), sent by
//! `apps/meteor/app/livechat/server/lib/webhooks.ts`; REST calls from
//! `apps/meteor/app/api/server/v1/chat.ts`, `rooms.ts` and
//! `apps/meteor/app/livechat/server/api/v1/room.ts`.
//!
//! - [`token`]: is a delivery the workspace's?
//! - [`inbound`]: a delivery as gateway events.
//! - [`outbound`]: a chat action as REST calls.
//! - [`reconcile`]: catching up with what no webhook told us.
//! - [`client`]: the REST calls; [`payload`]: the JSON they and the webhooks carry.

pub mod client;
pub mod inbound;
pub mod outbound;
pub mod payload;
pub mod reconcile;
pub mod token;

/// The header that carries the workspace's webhook token (`Livechat_secret_token`).
pub const TOKEN_HEADER: &str = "x-rocketchat-livechat-token";

/// Our posts' message `_id` prefix. `chat.sendMessage` keeps the `_id` it is given
/// and refuses a second message with the same one, so a post is idempotent, and its
/// echo (a `Message` webhook, sometimes before the REST call has answered) is
/// recognised by its id.
pub const MESSAGE_ID_PREFIX: &str = "autoclose-";

/// The message `_id` of action `action`'s post.
pub fn message_id(action: &str) -> String {
    format!("{MESSAGE_ID_PREFIX}{action}")
}

/// The channel a room's `source.type` is in tenant settings: `web_chat` for the
/// livechat widget, `http_api` for rooms opened through the livechat REST API, and the
/// type itself otherwise (`email`, `sms`, `app`, `other`). Without a source (a room
/// older than sources, or one not read), `web_chat`: the widget is how most rooms
/// start.
pub fn channel_name(source_type: Option<&str>) -> String {
    match source_type {
        None | Some("widget") => "web_chat".to_owned(),
        Some("api") => "http_api".to_owned(),
        Some(other) => {
            let name: String = other
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            if name.is_empty() {
                "web_chat".to_owned()
            } else {
                name
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_become_channel_names() {
        assert_eq!(channel_name(Some("widget")), "web_chat");
        assert_eq!(channel_name(Some("api")), "http_api");
        assert_eq!(channel_name(Some("email")), "email");
        assert_eq!(channel_name(Some("Other App")), "other_app");
        assert_eq!(channel_name(None), "web_chat");
        assert_eq!(message_id("act_1f"), "autoclose-act_1f");
    }
}
