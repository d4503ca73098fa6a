//! The Chatwoot adapter's HTTP side: the account webhooks (`POST
//! /v1/chatwoot/{tenant}`) and reconciliation through the REST API. The mapping
//! itself is `autoclose_platforms::chatwoot`; this module authenticates, hands the
//! events to the engines like any ingest, and counts.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use autoclose_platforms::chatwoot::signature::{self, Delivery};
use autoclose_platforms::chatwoot::{inbound, reconcile};

use crate::clock::wall_ms;
use crate::gateway::Chatwoot;
use crate::ingest::{apply_delivery, count_failed_round, submit_found};
use crate::metrics::Metrics;
use crate::state::{AppState, error};

/// The query of a webhook URL: the token of Chatwoot versions that sign nothing.
#[derive(Deserialize, utoipa::IntoParams)]
pub struct WebhookQuery {
    /// `webhook_url_token` of the account (Chatwoot before 4.11.2).
    #[serde(default)]
    token: Option<String>,
}

/// A Chatwoot account webhook. Point the account's webhook (Settings → Integrations
/// → Webhooks) here, subscribed to conversation and message events.
#[utoipa::path(
    post,
    path = "/v1/chatwoot/{tenant}",
    tag = "ingest",
    params(
        ("tenant" = String, Path, description = "The tenant the Chatwoot account is (gateway.chatwoot.accounts)"),
        WebhookQuery,
    ),
    request_body(content = Value, description = "Chatwoot's webhook payload, as Chatwoot sends it", content_type = "application/json"),
    responses(
        (status = 200, description = "Applied (durable), or nothing to apply (a private note, an event not used)", body = Value),
        (status = 400, description = "Not a Chatwoot payload, another account's, or no Chatwoot account is configured for this tenant", body = Value),
        (status = 401, description = "A missing or wrong signature, a timestamp too far off, or a wrong URL token", body = Value),
        (status = 503, description = "Shutting down or the store failed; reconciliation catches up", body = Value),
    )
)]
pub async fn webhook(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    Query(query): Query<WebhookQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let count = |outcome: &str| {
        Metrics::count_platform(&state.metrics.platform_webhooks, "chatwoot", outcome, 1)
    };
    let Some(chatwoot) = state.access.chatwoot() else {
        count("bad_request");
        return error(
            StatusCode::BAD_REQUEST,
            "no Chatwoot accounts are configured (gateway.chatwoot)",
            Value::Null,
        );
    };
    let Some(account) = chatwoot.account(&tenant) else {
        count("bad_request");
        return error(
            StatusCode::BAD_REQUEST,
            format!("no Chatwoot account for tenant {tenant:?} (gateway.chatwoot.accounts)"),
            Value::Null,
        );
    };
    let now = wall_ms();
    // Checked in a block of its own: the header lookup borrows `headers` and must not
    // live across an await (the handler's future must be Send).
    let verified = {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let delivery = Delivery {
            header: &header,
            url_token: query.token.as_deref(),
            body: &body,
        };
        signature::verify(
            &account.inbound,
            &delivery,
            now,
            chatwoot.settings.max_clock_skew_ms,
        )
    };
    if let Err(refused) = verified {
        count("unauthorized");
        tracing::warn!(tenant, "chatwoot webhook refused: {refused}");
        return error(StatusCode::UNAUTHORIZED, refused.to_string(), Value::Null);
    }
    let mapped = match inbound::map(&tenant, account.account_id, &body, now) {
        Ok(mapped) => mapped,
        Err(unreadable) => {
            count("bad_request");
            tracing::warn!(tenant, "chatwoot webhook not read: {unreadable}");
            return error(StatusCode::BAD_REQUEST, unreadable.to_string(), Value::Null);
        }
    };
    if let Some(why) = mapped.ignored {
        count("ignored");
        tracing::debug!(tenant, "chatwoot webhook: nothing to apply: {why}");
        return (
            StatusCode::OK,
            axum::Json(json!({"applied": 0, "ignored": why})),
        )
            .into_response();
    }
    let applied = mapped.events.len();
    match apply_delivery(&state, "chatwoot", &tenant, mapped.events).await {
        Ok(()) => (StatusCode::OK, axum::Json(json!({ "applied": applied }))).into_response(),
        Err(answer) => answer,
    }
}

/// One round over every account: reads the open conversations and submits each
/// recent last message (the engines drop those already applied).
pub async fn reconcile_once(state: &AppState, chatwoot: &Chatwoot) {
    for (tenant, account) in &chatwoot.settings.accounts {
        let api = Chatwoot::api(account);
        let conversations = match reconcile::open_conversations(&chatwoot.client, api).await {
            Ok(conversations) => conversations,
            Err(e) => {
                count_failed_round(state, "chatwoot", tenant, &e);
                continue;
            }
        };
        let events = reconcile::catch_up(
            tenant,
            &conversations,
            wall_ms(),
            chatwoot.settings.timing.reconcile_window_ms,
        );
        let submitted = events.len();
        submit_found(state, "chatwoot", tenant, events).await;
        tracing::info!(
            tenant,
            open = conversations.len(),
            submitted,
            "chatwoot reconciliation done"
        );
    }
}
