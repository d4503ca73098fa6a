//! A fake Rocket.Chat for tests: a real HTTP server on 127.0.0.1 with the few REST
//! endpoints the adapter uses, checking `X-User-Id` and `X-Auth-Token` and the bodies
//! as Rocket.Chat does, and the Omnichannel webhooks it sends, with the secret token
//! header of `apps/meteor/app/livechat/server/lib/webhooks.ts`.
//!
//! Webhook payloads and REST answers are the fixtures of tests/fixtures/rocketchat
//! (built from Rocket.Chat's source, see its README) with the room, the message and
//! the times replaced: the shapes are Rocket.Chat's, not invented here.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The bot user's id (the fixtures' `support.bot`).
pub const BOT_ID: &str = "bT5q8RnW2xYhKjLmP";
/// The bot user's personal access token the fake accepts.
pub const AUTH_TOKEN: &str = "rc-personal-access-token-0123";
/// The Omnichannel webhooks' secret token.
pub const WEBHOOK_TOKEN: &str = "rc-livechat-webhook-token-abcdef";
/// The serving agent of every room (the fixtures' `alice.agent`).
pub const AGENT_ID: &str = "Gk3HzZ7cYw9nqBdPs";
/// The visitor of every room (the fixtures' `guest-42`).
pub const VISITOR_ID: &str = "5tFJN3W8N9rRpzu8c";

/// The fixture `name`, parsed.
pub fn fixture(name: &str) -> Value {
    let path = format!("{}/fixtures/rocketchat/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A message the fake holds.
#[derive(Clone, Debug)]
pub struct Stored {
    /// Its id.
    pub id: String,
    /// Its room.
    pub rid: String,
    /// The author's user id.
    pub author: String,
    /// The text.
    pub msg: String,
    /// When (Unix ms).
    pub ts_ms: u64,
}

/// A livechat room the fake holds.
#[derive(Clone, Debug)]
struct Room {
    open: bool,
    on_hold: bool,
    source: String,
    comment: Option<String>,
}

#[derive(Default)]
struct World {
    rooms: BTreeMap<String, Room>,
    messages: Vec<Stored>,
    /// Statuses for the next `chat.sendMessage` calls, used up in order: the message
    /// is stored, then this status answered (an uncertain failure).
    send_failures: Vec<u16>,
    /// Every REST call: method and path.
    calls: Vec<(String, String)>,
    revoked: bool,
    /// Where webhooks of the bot's posts and closes go (serve's webhook URL), sent
    /// before the REST answer, as Rocket.Chat 6.x awaits its first attempt.
    echo_to: Option<String>,
    /// What the echoes were answered: status and body.
    echo_answers: Vec<(u16, String)>,
}

#[derive(Clone)]
struct Shared(Arc<(Mutex<World>, Condvar)>);

impl Shared {
    fn record_echo(&self, answer: (u16, String)) {
        let (lock, wake) = &*self.0;
        lock.lock()
            .unwrap_or_else(|e| e.into_inner())
            .echo_answers
            .push(answer);
        wake.notify_all();
    }
}

/// A running fake; stops when dropped.
pub struct FakeRocketChat {
    /// Where it listens.
    pub addr: SocketAddr,
    shared: Shared,
    _runtime: tokio::runtime::Runtime,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn iso(ms: u64) -> String {
    jiff::Timestamp::from_millisecond(ms as i64)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl FakeRocketChat {
    /// Starts the fake with no rooms.
    pub fn start() -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let shared = Shared(Arc::new((Mutex::new(World::default()), Condvar::new())));
        let app = axum::Router::new()
            .route("/api/v1/rooms.info", get(rooms_info))
            .route("/api/v1/livechat/rooms", get(livechat_rooms))
            .route("/api/v1/chat.sendMessage", post(send_message))
            .route("/api/v1/chat.getMessage", get(get_message))
            .route("/api/v1/im.create", post(im_create))
            .route("/api/v1/livechat/room.closeByUser", post(close_by_user))
            .with_state(shared.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("addr: {e}"));
        runtime.spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeRocketChat {
            addr,
            shared,
            _runtime: runtime,
        }
    }

    /// The workspace URL (`gateway.rocketchat.servers.<tenant>.url`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn world<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        let (lock, wake) = &*self.shared.0;
        let mut world = lock.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut world);
        wake.notify_all();
        out
    }

    /// Opens room `rid`, served by the agent, from `source` (`widget`, `api`).
    pub fn open(&self, rid: &str, source: &str) {
        self.world(|w| {
            w.rooms.insert(
                rid.into(),
                Room {
                    open: true,
                    on_hold: false,
                    source: source.into(),
                    comment: None,
                },
            )
        });
    }

    /// Puts room `rid` on hold without telling anyone (no webhook fires for it).
    pub fn hold(&self, rid: &str) {
        self.world(|w| {
            if let Some(room) = w.rooms.get_mut(rid) {
                room.on_hold = true;
            }
        });
    }

    /// Whether room `rid` is open, and the comment it was closed with.
    pub fn room(&self, rid: &str) -> Option<(bool, Option<String>)> {
        self.world(|w| w.rooms.get(rid).map(|r| (r.open, r.comment.clone())))
    }

    /// Stores a message written in Rocket.Chat by `author` (the visitor or the agent).
    pub fn write(&self, rid: &str, author: &str, text: &str) -> Stored {
        self.world(|w| {
            let stored = Stored {
                id: format!("m{}", w.messages.len() + 1),
                rid: rid.into(),
                author: author.into(),
                msg: text.into(),
                ts_ms: now_ms(),
            };
            w.messages.push(stored.clone());
            stored
        })
    }

    /// The next `chat.sendMessage` calls store the message, then answer these.
    pub fn fail_sends(&self, statuses: &[u16]) {
        self.world(|w| w.send_failures.extend_from_slice(statuses));
    }

    /// Every token is refused from now on.
    pub fn revoke(&self) {
        self.world(|w| w.revoked = true);
    }

    /// Sends the webhooks of the bot's posts and closes to `url`, before answering.
    pub fn echo_to(&self, url: String) {
        self.world(|w| w.echo_to = Some(url));
    }

    /// What serve answered the echoes, once there are `count` of them.
    pub fn echo_answers(&self, count: usize, timeout: Duration) -> Vec<(u16, String)> {
        let (lock, wake) = &*self.shared.0;
        let deadline = Instant::now() + timeout;
        let mut world = lock.lock().unwrap_or_else(|e| e.into_inner());
        while world.echo_answers.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {count} echoes: {:?}",
                world.echo_answers
            );
            world = wake
                .wait_timeout(world, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        world.echo_answers.clone()
    }

    /// The messages the bot posted into `rid`.
    pub fn posted(&self, rid: &str) -> Vec<Stored> {
        self.world(|w| {
            w.messages
                .iter()
                .filter(|m| m.rid == rid && m.author == BOT_ID)
                .cloned()
                .collect()
        })
    }

    /// The REST calls made so far.
    pub fn calls(&self) -> Vec<(String, String)> {
        self.world(|w| w.calls.clone())
    }

    /// Waits until `ready` holds of the messages and the rooms' open flags.
    pub fn wait_until(
        &self,
        timeout: Duration,
        what: &str,
        ready: impl Fn(&[Stored], &BTreeMap<String, bool>) -> bool,
    ) {
        let (lock, wake) = &*self.shared.0;
        let deadline = Instant::now() + timeout;
        let mut world = lock.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let open: BTreeMap<String, bool> = world
                .rooms
                .iter()
                .map(|(k, r)| (k.clone(), r.open))
                .collect();
            if ready(&world.messages, &open) {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "timed out waiting for {what}; calls: {:?}",
                world.calls
            );
            world = wake
                .wait_timeout(world, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A message entry as a webhook carries it (from `message_agent.json` /
/// `message_visitor.json`), for `m`.
fn webhook_message(m: &Stored) -> Value {
    let (name, template) = match m.author.as_str() {
        VISITOR_ID => ("message_visitor.json", VISITOR_ID),
        BOT_ID => ("message_agent_bot_echo.json", BOT_ID),
        _ => ("message_agent.json", AGENT_ID),
    };
    let mut entry = fixture(name)["messages"][0].clone();
    assert_eq!(entry["u"]["_id"], template, "fixture {name}");
    entry["_id"] = m.id.clone().into();
    entry["rid"] = m.rid.clone().into();
    entry["msg"] = m.msg.clone().into();
    entry["ts"] = iso(m.ts_ms).into();
    entry["_updatedAt"] = iso(m.ts_ms).into();
    entry
}

/// The `Message` webhook for `m`: `message_agent.json`'s envelope (the room's guest
/// info) around the one message.
pub fn message_webhook(m: &Stored) -> Value {
    let mut payload = fixture("message_agent.json");
    payload["_id"] = m.rid.clone().into();
    payload["lastMessageAt"] = iso(m.ts_ms).into();
    payload["messages"] = json!([webhook_message(m)]);
    payload
}

/// A session webhook (`session_start.json`, `session_close.json`, ...) for `rid`.
pub fn session_webhook(fixture_name: &str, rid: &str) -> Value {
    let mut payload = fixture(fixture_name);
    payload["_id"] = rid.into();
    if let Some(messages) = payload["messages"].as_array_mut() {
        for m in messages {
            m["rid"] = rid.into();
        }
    }
    payload
}

/// The room as `rooms.info` writes it (`rest_rooms_info.json` with this room's state).
fn rest_room(world: &World, rid: &str, room: &Room) -> Value {
    let mut answer = fixture("rest_rooms_info.json")["room"].clone();
    answer["_id"] = rid.into();
    if room.open {
        answer["open"] = true.into();
    } else if let Some(fields) = answer.as_object_mut() {
        // closeRoomById unsets `open`.
        fields.remove("open");
        fields.insert("closedAt".into(), iso(now_ms()).into());
        fields.insert("closer".into(), "user".into());
    }
    if room.on_hold {
        answer["onHold"] = true.into();
    }
    answer["source"]["type"] = room.source.clone().into();
    match world.messages.iter().rfind(|m| m.rid == rid) {
        Some(last) => {
            let mut message = answer["lastMessage"].clone();
            message["_id"] = last.id.clone().into();
            message["rid"] = rid.into();
            message["msg"] = last.msg.clone().into();
            message["ts"] = iso(last.ts_ms).into();
            message["u"]["_id"] = last.author.clone().into();
            if last.author == VISITOR_ID {
                // Stored visitor messages carry the visitor's token.
                message["token"] = answer["v"]["token"].clone();
                message["u"]["username"] = "guest-42".into();
            }
            answer["lastMessage"] = message;
        }
        None => {
            if let Some(fields) = answer.as_object_mut() {
                fields.remove("lastMessage");
            }
        }
    }
    answer
}

/// Rocket.Chat's answer to a bad token (`rest_unauthorized.json`).
fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        Json(fixture("rest_unauthorized.json")),
    )
        .into_response()
}

fn failure(error: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"success": false, "error": error})),
    )
        .into_response()
}

fn authorized(shared: &Shared, headers: &HeaderMap, method: &str, path: String) -> bool {
    let (lock, wake) = &*shared.0;
    let mut world = lock.lock().unwrap_or_else(|e| e.into_inner());
    world.calls.push((method.into(), path));
    wake.notify_all();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    !world.revoked
        && header("x-user-id") == Some(BOT_ID)
        && header("x-auth-token") == Some(AUTH_TOKEN)
}

async fn rooms_info(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let rid = query.get("roomId").cloned().unwrap_or_default();
    if !authorized(&shared, &headers, "GET", format!("rooms.info?roomId={rid}")) {
        return unauthorized();
    }
    let world = shared.0.0.lock().unwrap_or_else(|e| e.into_inner());
    match world.rooms.get(&rid) {
        Some(room) => {
            Json(json!({"room": rest_room(&world, &rid, room), "success": true})).into_response()
        }
        None => (
            StatusCode::BAD_REQUEST,
            Json(json!({"success": false, "error": "not-allowed", "errorType": "Not Allowed"})),
        )
            .into_response(),
    }
}

async fn livechat_rooms(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    if !authorized(
        &shared,
        &headers,
        "GET",
        format!("livechat/rooms?{query:?}"),
    ) {
        return unauthorized();
    }
    let count: usize = query
        .get("count")
        .and_then(|c| c.parse().ok())
        .unwrap_or(50)
        .min(100);
    let offset: usize = query
        .get("offset")
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let world = shared.0.0.lock().unwrap_or_else(|e| e.into_inner());
    // open=true: open, not on hold, served.
    let open: Vec<Value> = world
        .rooms
        .iter()
        .filter(|(_, r)| r.open && !r.on_hold)
        .map(|(rid, r)| rest_room(&world, rid, r))
        .collect();
    let page: Vec<Value> = open.iter().skip(offset).take(count).cloned().collect();
    Json(json!({"rooms": page, "count": page.len(), "offset": offset, "total": open.len(), "success": true}))
        .into_response()
}

async fn send_message(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&shared, &headers, "POST", "chat.sendMessage".into()) {
        return unauthorized();
    }
    let message = &body["message"];
    let (Some(rid), Some(msg)) = (message["rid"].as_str(), message["msg"].as_str()) else {
        return failure("Match error: Missing key 'rid'");
    };
    let id = message["_id"].as_str().map(str::to_owned);
    let (stored, status, echo_to) = {
        let (lock, wake) = &*shared.0;
        let mut world = lock.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = &id
            && world.messages.iter().any(|m| &m.id == id)
        {
            // sendMessage() returns undefined for an existing _id, and the answer's
            // normalisation then throws (rest_send_message_duplicate.json).
            return (
                StatusCode::BAD_REQUEST,
                Json(fixture("rest_send_message_duplicate.json")),
            )
                .into_response();
        }
        let direct = rid.starts_with("dm-");
        if !direct && !world.rooms.contains_key(rid) {
            return (
                StatusCode::BAD_REQUEST,
                Json(fixture("rest_send_message_not_allowed.json")),
            )
                .into_response();
        }
        let stored = Stored {
            id: id.unwrap_or_else(|| format!("m{}", world.messages.len() + 1)),
            rid: rid.into(),
            author: BOT_ID.into(),
            msg: msg.into(),
            ts_ms: now_ms(),
        };
        world.messages.push(stored.clone());
        let status = if world.send_failures.is_empty() {
            200
        } else {
            world.send_failures.remove(0)
        };
        wake.notify_all();
        let echo = (!direct).then(|| world.echo_to.clone()).flatten();
        (stored, status, echo)
    };
    if let Some(url) = echo_to {
        // The agent-message webhook fires for the bot's post, before the answer.
        let answer = deliver_async(&url, &message_webhook(&stored), WEBHOOK_TOKEN).await;
        shared.record_echo(answer);
    }
    if status != 200 {
        return (
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "upstream failure",
        )
            .into_response();
    }
    let mut answer = fixture("rest_send_message_ok.json");
    answer["message"]["_id"] = stored.id.into();
    answer["message"]["rid"] = stored.rid.into();
    answer["message"]["msg"] = stored.msg.into();
    answer["message"]["ts"] = iso(stored.ts_ms).into();
    Json(answer).into_response()
}

async fn get_message(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let id = query.get("msgId").cloned().unwrap_or_default();
    if !authorized(
        &shared,
        &headers,
        "GET",
        format!("chat.getMessage?msgId={id}"),
    ) {
        return unauthorized();
    }
    let world = shared.0.0.lock().unwrap_or_else(|e| e.into_inner());
    match world.messages.iter().find(|m| m.id == id) {
        Some(m) => Json(json!({"message": webhook_message(m), "success": true})).into_response(),
        None => failure("error-not-allowed"),
    }
}

async fn im_create(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(&shared, &headers, "POST", "im.create".into()) {
        return unauthorized();
    }
    let Some(username) = body["username"].as_str() else {
        return failure("Body param \"username\" or \"usernames\" is required");
    };
    Json(json!({"room": {"_id": format!("dm-{username}"), "rid": format!("dm-{username}"), "t": "d", "usernames": ["support.bot", username]}, "success": true}))
        .into_response()
}

async fn close_by_user(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authorized(
        &shared,
        &headers,
        "POST",
        "livechat/room.closeByUser".into(),
    ) {
        return unauthorized();
    }
    if let Some(unknown) = body.as_object().and_then(|o| {
        o.keys()
            .find(|k| !["rid", "comment", "tags"].contains(&k.as_str()))
    }) {
        return failure(&format!("must NOT have additional properties: {unknown}"));
    }
    let Some(rid) = body["rid"].as_str().map(str::to_owned) else {
        return failure("must have required property 'rid'");
    };
    // Livechat_request_comment_when_closing_conversation is on by default.
    let Some(comment) = body["comment"].as_str().filter(|c| !c.is_empty()) else {
        return failure("error-comment-is-required");
    };
    let echo_to = {
        let (lock, wake) = &*shared.0;
        let mut world = lock.lock().unwrap_or_else(|e| e.into_inner());
        let echo = world.echo_to.clone();
        let Some(room) = world.rooms.get_mut(&rid) else {
            return failure("error-invalid-room");
        };
        if !room.open {
            return (
                StatusCode::BAD_REQUEST,
                Json(fixture("rest_close_already_closed.json")),
            )
                .into_response();
        }
        room.open = false;
        room.comment = Some(comment.into());
        wake.notify_all();
        echo
    };
    if let Some(url) = echo_to {
        let answer = deliver_async(
            &url,
            &session_webhook("session_close.json", &rid),
            WEBHOOK_TOKEN,
        )
        .await;
        shared.record_echo(answer);
    }
    Json(fixture("rest_close_ok.json")).into_response()
}

async fn deliver_async(url: &str, payload: &Value, token: &str) -> (u16, String) {
    let request = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-rocketchat-livechat-token", token)
        .body(payload.to_string());
    match request.send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            (status, answer.text().await.unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}

/// Sends `payload` to `url` as Rocket.Chat would, with `token` in the secret token
/// header; the status and the body of the answer.
pub fn deliver(url: &str, payload: &Value, token: &str) -> (u16, String) {
    let answer = reqwest::blocking::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("x-rocketchat-livechat-token", token)
        .body(payload.to_string())
        .send();
    match answer {
        Ok(answer) => {
            let status = answer.status().as_u16();
            (status, answer.text().unwrap_or_default())
        }
        Err(e) => (0, e.to_string()),
    }
}
