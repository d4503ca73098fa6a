//! The few Rocket.Chat REST calls the adapter makes, each authenticated as the bot
//! user (`X-User-Id`, `X-Auth-Token`). Routes from `apps/meteor/app/api/server/v1/chat.ts`,
//! `rooms.ts`, `im.ts` and `apps/meteor/app/livechat/server/api/v1/room.ts`,
//! `apps/meteor/app/livechat/imports/server/rest/rooms.ts`.

use serde::Deserialize;
use serde_json::{Value, json};

use autoclose_config::{Credential, RocketChatServer};

use crate::rest::{CallError, Rest};

use super::payload::Room;

/// Rooms per page of `livechat/rooms` (Rocket.Chat caps `count` at 100).
pub const PAGE: u32 = 100;

/// A REST client for one workspace, as its bot user.
#[derive(Clone)]
pub struct Client {
    rest: Rest,
    user_id: String,
    token: Credential,
}

#[derive(Deserialize)]
struct RoomInfo {
    room: Room,
}

#[derive(Deserialize)]
struct RoomList {
    #[serde(default)]
    rooms: Vec<Room>,
    #[serde(default)]
    total: Option<u64>,
}

#[derive(Deserialize)]
struct DirectRoom {
    room: DirectRoomId,
}

/// `im.create`'s room: `_id` (it carries `rid` too, the same id).
#[derive(Deserialize)]
struct DirectRoomId {
    #[serde(rename = "_id")]
    id: String,
}

impl Client {
    /// A client for `server`, each call bounded by `timeout_ms`.
    pub fn new(server: &RocketChatServer, timeout_ms: u64) -> Result<Self, String> {
        Ok(Client {
            rest: Rest::new("Rocket.Chat", &server.url, timeout_ms)?,
            user_id: server.user_id.clone(),
            token: server.auth_token.clone(),
        })
    }

    /// The bot user's id: its posts' author.
    pub fn user_id(&self) -> &str {
        &self.user_id
    }

    /// The room `rid` (`GET rooms.info`).
    pub async fn room(&self, rid: &str) -> Result<Room, CallError> {
        let path = format!("api/v1/rooms.info?roomId={}", encode(rid));
        let info: RoomInfo = self.call("GET", &path, None).await?;
        Ok(info.room)
    }

    /// Posts `text` into `rid` as the bot user, with message id `id`
    /// (`POST chat.sendMessage`): Rocket.Chat keeps the id, so the echo is ours, and
    /// refuses a second message with it, so a post is never made twice.
    pub async fn send(&self, rid: &str, id: &str, text: &str) -> Result<(), CallError> {
        let body = json!({ "message": { "_id": id, "rid": rid, "msg": text } });
        let _: Value = self
            .call("POST", "api/v1/chat.sendMessage", Some(body))
            .await?;
        Ok(())
    }

    /// Whether the message with id `id` exists (`GET chat.getMessage`): a post whose
    /// retry was refused was made by an earlier attempt exactly when it does.
    pub async fn message_exists(&self, id: &str) -> Result<bool, CallError> {
        let path = format!("api/v1/chat.getMessage?msgId={}", encode(id));
        match self.call::<Value>("GET", &path, None).await {
            Ok(answer) => Ok(answer.pointer("/message/_id").and_then(Value::as_str) == Some(id)),
            Err(e) if matches!(e.status(), Some(400 | 404)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Closes the livechat room `rid` with `comment` (`POST
    /// livechat/room.closeByUser`; a comment is required by default).
    pub async fn close(&self, rid: &str, comment: &str) -> Result<(), CallError> {
        let body = json!({ "rid": rid, "comment": comment });
        let _: Value = self
            .call("POST", "api/v1/livechat/room.closeByUser", Some(body))
            .await?;
        Ok(())
    }

    /// The direct-message room between the bot user and `username` (`POST im.create`,
    /// which answers the existing one if there is one).
    pub async fn direct_room(&self, username: &str) -> Result<String, CallError> {
        let body = json!({ "username": username });
        let room: DirectRoom = self.call("POST", "api/v1/im.create", Some(body)).await?;
        Ok(room.room.id)
    }

    /// The open, served livechat rooms from `offset` (`GET livechat/rooms?open=true`;
    /// queued and on-hold rooms are not among them), and the total.
    pub async fn open_rooms(&self, offset: u64) -> Result<(Vec<Room>, Option<u64>), CallError> {
        // Oldest first, so that rooms closing during the scan do not shift the pages
        // still to read.
        let path = format!(
            "api/v1/livechat/rooms?open=true&count={PAGE}&offset={offset}&sort={}",
            encode(r#"{"ts":1}"#)
        );
        let list: RoomList = self.call("GET", &path, None).await?;
        Ok((list.rooms, list.total))
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, CallError> {
        let headers = [
            ("x-user-id", self.user_id.as_str()),
            ("x-auth-token", self.token.expose()),
        ];
        self.rest.call(method, path, &headers, body).await
    }
}

/// `text` as a query value.
fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
