//! The Rocket.Chat adapter's HTTP side: the Omnichannel webhooks (`POST
//! /v1/rocketchat/{tenant}`) and reconciliation through the REST API. The mapping
//! itself is `autoclose_platforms::rocketchat`; this module authenticates, reads each
//! room's channel once, hands the events to the engines like any ingest, and counts.
//!
//! Rocket.Chat takes exactly `200` as success and keeps a `200`'s body on the room
//! (sent back in later payloads as `crmData`), so success is answered with an empty
//! body. Its first attempt may hold up the message that caused it (in 6.x the agent's
//! post waits for our answer), so nothing here waits on our own posts.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use autoclose_platforms::rocketchat::{TOKEN_HEADER, channel_name, inbound, reconcile, token};

use crate::clock::wall_ms;
use crate::gateway::RocketChat;
use crate::ingest::{apply_delivery, count_failed_round, submit_found};
use crate::metrics::Metrics;
use crate::state::{AppState, error};

/// A Rocket.Chat Omnichannel webhook. Point the workspace's webhook (Administration
/// → Omnichannel → Webhooks) here, with its secret token set.
#[utoipa::path(
    post,
    path = "/v1/rocketchat/{tenant}",
    tag = "ingest",
    params(
        ("tenant" = String, Path, description = "The tenant the workspace is (gateway.rocketchat.servers)"),
        ("X-RocketChat-Livechat-Token" = String, Header, description = "The webhook's secret token"),
    ),
    request_body(content = Value, description = "Rocket.Chat's webhook payload, as Rocket.Chat sends it", content_type = "application/json"),
    responses(
        (status = 200, description = "Applied (durable), or nothing to apply; the body is empty, since Rocket.Chat stores it on the room"),
        (status = 400, description = "Not a Rocket.Chat payload, or no workspace is configured for this tenant", body = Value),
        (status = 401, description = "A missing or wrong token", body = Value),
        (status = 503, description = "Shutting down or the store failed; Rocket.Chat retries, reconciliation catches up", body = Value),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let count = |outcome: &str| {
        Metrics::count_platform(&state.metrics.platform_webhooks, "rocketchat", outcome, 1)
    };
    let Some(adapter) = state.access.rocketchat() else {
        count("bad_request");
        return error(
            StatusCode::BAD_REQUEST,
            "no Rocket.Chat workspaces are configured (gateway.rocketchat)",
            Value::Null,
        );
    };
    let Some((server, client)) = adapter.server(&tenant) else {
        count("bad_request");
        return error(
            StatusCode::BAD_REQUEST,
            format!("no Rocket.Chat workspace for tenant {tenant:?} (gateway.rocketchat.servers)"),
            Value::Null,
        );
    };
    let given = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok());
    if let Err(refused) = token::verify(given, &server.webhook_token) {
        count("unauthorized");
        tracing::warn!(tenant, "rocketchat webhook refused: {refused}");
        return error(StatusCode::UNAUTHORIZED, refused.to_string(), Value::Null);
    }
    let delivery = match inbound::parse(&body) {
        Ok(delivery) => delivery,
        Err(unreadable) => {
            count("bad_request");
            tracing::warn!(tenant, "rocketchat webhook not read: {unreadable}");
            return error(StatusCode::BAD_REQUEST, unreadable.to_string(), Value::Null);
        }
    };
    let bot = client.user_id().to_owned();
    let channel = match delivery.room.as_deref() {
        Some(room) if inbound::needs_channel(&delivery, &bot) => {
            channel_of(&adapter, &tenant, room).await
        }
        _ => channel_name(None),
    };
    let mapped = inbound::map(&tenant, &bot, &delivery, &channel);
    if let Some(why) = mapped.ignored {
        count("ignored");
        tracing::debug!(tenant, "rocketchat webhook: nothing to apply: {why}");
        return StatusCode::OK.into_response();
    }
    match apply_delivery(&state, "rocketchat", &tenant, mapped.events).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(answer) => answer,
    }
}

/// The channel of `tenant`'s `room`: remembered, or read once from `rooms.info`. A
/// room that cannot be read counts as the widget's (`web_chat`), and is read again
/// next time.
async fn channel_of(adapter: &RocketChat, tenant: &str, room: &str) -> String {
    if let Some(channel) = adapter.remembered_channel(tenant, room) {
        return channel;
    }
    let Some((_, client)) = adapter.server(tenant) else {
        return channel_name(None);
    };
    match client.room(room).await {
        Ok(info) => {
            let channel = info.channel();
            adapter.remember_channel(tenant, room, channel.clone());
            channel
        }
        Err(e) => {
            tracing::warn!(
                tenant,
                room,
                "rocketchat: the room's channel could not be read, taken as web_chat: {e}"
            );
            channel_name(None)
        }
    }
}

/// One round over every workspace: reads the open rooms and submits each recent last
/// message (the engines drop those already applied).
pub async fn reconcile_once(state: &AppState, adapter: &RocketChat) {
    for tenant in adapter.settings.servers.keys() {
        let Some((_, client)) = adapter.server(tenant) else {
            continue;
        };
        let rooms = match reconcile::open_rooms(client).await {
            Ok(rooms) => rooms,
            Err(e) => {
                count_failed_round(state, "rocketchat", tenant, &e);
                continue;
            }
        };
        for room in &rooms {
            adapter.remember_channel(tenant, &room.id, room.channel());
        }
        let events = reconcile::catch_up(
            tenant,
            client.user_id(),
            &rooms,
            wall_ms(),
            adapter.settings.timing.reconcile_window_ms,
        );
        let submitted = events.len();
        submit_found(state, "rocketchat", tenant, events).await;
        tracing::info!(
            tenant,
            open = rooms.len(),
            submitted,
            "rocketchat reconciliation done"
        );
    }
}
