//! The HTTP interface: ingest, health and metrics, with the admin routes of
//! [`crate::admin`].
//!
//! | route | what |
//! | --- | --- |
//! | `POST /v1/events` | one event or a JSON array of events; `202` once durable |
//! | `POST /v1/chatwoot/{tenant}` | a Chatwoot account webhook ([`crate::chatwoot`]) |
//! | `POST /v1/rocketchat/{tenant}` | a Rocket.Chat Omnichannel webhook ([`crate::rocketchat`]) |
//! | `/v1/admin/...` | reload, tenant settings, audit ([`crate::admin`]) |
//! | `GET /healthz` | `200` while the engine runs (`degraded` naming failing tenants), `503` after it stopped |
//! | `GET /metrics` | Prometheus text format |
//!
//! Errors are JSON: `{"error": "...", "index": 3, "field": "sender"}` (`index` and
//! `field` when known). A refused request applies nothing.

use std::sync::atomic::Ordering;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::{Value, json};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use autoclose_config::DEFAULT_MAX_BODY_BYTES;
use autoclose_core::TenantFailure;
use autoclose_core::event::GatewayEvent;

use crate::admin;
use crate::ingest::apply;
use crate::metrics::Metrics;
use crate::request::Refused;
pub use crate::state::AppState;
use crate::state::{error, unauthorized};

/// Largest body of an admin request (a tenant's document): 1 MiB.
pub const MAX_ADMIN_BODY_BYTES: usize = 1024 * 1024;

/// The router with every route.
pub fn router(state: AppState) -> Router {
    let (router, _) = routes(state.ingest.max_body_bytes).split_for_parts();
    router
        .merge(crate::console::routes().layer(DefaultBodyLimit::max(MAX_ADMIN_BODY_BYTES)))
        .with_state(state)
}

/// The document's header; the paths come from the routes.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "autoclose serve",
        description = "The sidecar's HTTP interface: events in, health and metrics, and the admin API (reload, tenant settings one tenant at a time, audit). Generated from the routes themselves; docs/openapi.json is checked against it in CI.",
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "ingest", description = "Events from the gateway"),
        (name = "admin", description = "Reload and tenant settings (the operator's token or a tenant's)"),
        (name = "operations", description = "Health and metrics"),
    )
)]
struct Header;

/// Declares the bearer-token scheme every `/v1` route takes.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route with its OpenAPI description.
fn routes(max_body_bytes: usize) -> OpenApiRouter<AppState> {
    let events = OpenApiRouter::new()
        .routes(routes!(ingest))
        .routes(routes!(crate::chatwoot::webhook))
        .routes(routes!(crate::rocketchat::webhook))
        .layer(DefaultBodyLimit::max(max_body_bytes));
    let admin = OpenApiRouter::new()
        .routes(routes!(admin::reload))
        .routes(routes!(admin::shards))
        .routes(routes!(admin::nodes))
        .routes(routes!(admin::list))
        .routes(routes!(admin::get, admin::put, admin::delete))
        .routes(routes!(admin::versions))
        .routes(routes!(admin::rollback))
        .routes(routes!(admin::audit))
        .layer(DefaultBodyLimit::max(MAX_ADMIN_BODY_BYTES));
    OpenApiRouter::with_openapi(<Header as utoipa::OpenApi>::openapi())
        .merge(events)
        .merge(admin)
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(openapi_document))
}

/// The OpenAPI document of every route `serve` answers, generated from the routes
/// (what `GET /v1/openapi.json` serves and `docs/openapi.json` holds).
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes(DEFAULT_MAX_BODY_BYTES).into_openapi()
}

/// This document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI document of every route", body = Value))
)]
async fn openapi_document() -> Response {
    Json(openapi()).into_response()
}

/// Parses a request body into events: one object or an array of them. The error
/// names the event's index and, where known, the field.
pub fn parse_events(
    body: &[u8],
    max_events: usize,
) -> Result<Vec<GatewayEvent>, (StatusCode, String, Value)> {
    let bad = |message: String, extra: Value| (StatusCode::BAD_REQUEST, message, extra);
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        bad(
            format!("not valid JSON: {e}"),
            json!({"line": e.line(), "column": e.column()}),
        )
    })?;
    let items = match value {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        other => {
            return Err(bad(
                format!(
                    "expected an event object or an array of them, not {}",
                    kind_of(&other)
                ),
                Value::Null,
            ));
        }
    };
    if items.is_empty() {
        return Err(bad("the array holds no events".into(), Value::Null));
    }
    if items.len() > max_events {
        return Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} events in one request; at most {max_events} (ingest.max_events_per_request)",
                items.len()
            ),
            Value::Null,
        ));
    }
    let mut events = Vec::with_capacity(items.len());
    for (index, item) in items.into_iter().enumerate() {
        let Value::Object(object) = item else {
            return Err(bad(
                format!(
                    "events[{index}]: expected an event object, not {}",
                    kind_of(&item)
                ),
                json!({"index": index}),
            ));
        };
        if object.contains_key("at_ms") {
            return Err(bad(
                format!("events[{index}].at_ms: the server stamps the time; leave at_ms out"),
                json!({"index": index, "field": "at_ms"}),
            ));
        }
        let event = GatewayEvent::from_json(object).map_err(|message| {
            let field = field_of(&message);
            bad(
                format!("events[{index}].{message}").replace(".missing", ": missing"),
                json!({"index": index, "field": field}),
            )
        })?;
        events.push(event);
    }
    Ok(events)
}

/// The field a parse error names (`sender: unknown variant ...` gives `sender`).
fn field_of(message: &str) -> Option<String> {
    if let Some(start) = message.find("missing field `") {
        let rest = &message[start + "missing field `".len()..];
        return rest.split('`').next().map(str::to_owned);
    }
    if let Some(rest) = message.strip_prefix("missing ") {
        return Some(rest.trim_matches('`').to_owned());
    }
    let (path, _) = message.split_once(": ")?;
    let is_path = !path.is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.[]".contains(c));
    is_path.then(|| path.to_owned())
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Events from the gateway: one object or an array; `202` once they are durable.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "ingest",
    request_body(content = Value, description = "One event object or a JSON array of them (docs/formats.md)", content_type = "application/json"),
    responses(
        (status = 202, description = "Durable: every event is stored and will be applied in order", body = Value, example = json!({"accepted": 2})),
        (status = 400, description = "Refused, nothing applied; names the event's index and field", body = Value),
        (status = 401, description = "Missing or wrong ingest token", body = Value),
        (status = 413, description = "Too many events or too large a body", body = Value),
        (status = 503, description = "Shutting down or the store failed; send again", body = Value),
    ),
    security(("bearer" = []))
)]
async fn ingest(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !state.access.may_ingest(&headers) {
        return unauthorized(&state, "ingest.token");
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let outcome = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            };
            Metrics::count(&state.metrics.ingest_requests, outcome, 1);
            return error(
                status,
                format!(
                    "{} (ingest.max_body_bytes is {})",
                    rejection.body_text(),
                    state.ingest.max_body_bytes
                ),
                Value::Null,
            );
        }
    };
    let events = match parse_events(&body, state.ingest.max_events_per_request) {
        Ok(events) => events,
        Err((status, message, extra)) => {
            let outcome = if status == StatusCode::PAYLOAD_TOO_LARGE {
                "too_large"
            } else {
                "bad_request"
            };
            Metrics::count(&state.metrics.ingest_requests, outcome, 1);
            return error(status, message, extra);
        }
    };
    let count = events.len();
    match apply(&state, events).await {
        Ok(()) => {
            Metrics::count(&state.metrics.ingest_requests, "accepted", 1);
            (StatusCode::ACCEPTED, Json(json!({ "accepted": count }))).into_response()
        }
        Err(Refused::Event { index, source }) => {
            Metrics::count(&state.metrics.ingest_requests, "bad_request", 1);
            error(
                StatusCode::BAD_REQUEST,
                format!("events[{index}]: {source}"),
                json!({"index": index}),
            )
        }
        // NotOwned only reaches here without a shared store, which has no other node.
        Err(Refused::Unavailable | Refused::NotOwned) => {
            Metrics::count(&state.metrics.ingest_requests, "unavailable", 1);
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "not accepting events (shutting down or the store failed); send them again",
                Value::Null,
            )
        }
    }
}

/// Liveness for load balancers: `ok`, `degraded` (naming the failing tenants; still
/// `200`, the node serves the others) or `stopped` (`503`).
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "Running: status ok or degraded, with the failing tenants", body = Value),
        (status = 503, description = "An engine stopped", body = Value),
    )
)]
async fn healthz(State(state): State<AppState>) -> Response {
    let running = state
        .health
        .iter()
        .all(|h| h.running.load(Ordering::SeqCst));
    let last_commit_ms = state
        .health
        .iter()
        .map(|h| h.last_commit_ms.load(Ordering::Relaxed))
        .max()
        .unwrap_or(0);
    // A failing tenant degrades the node, but the node still serves the others: a
    // load balancer should keep it (200).
    let mut failing: Vec<TenantFailure> = Vec::new();
    for health in state.health.iter() {
        if let Ok(list) = health.failing.lock() {
            for failure in list.iter() {
                if !failing.iter().any(|f| f.tenant == failure.tenant) {
                    failing.push(failure.clone());
                }
            }
        }
    }
    let status = match (running, failing.is_empty()) {
        (false, _) => "stopped",
        (true, true) => "ok",
        (true, false) => "degraded",
    };
    let owned = state
        .health
        .iter()
        .filter(|h| h.owned.load(Ordering::SeqCst))
        .count();
    let body = json!({
        "status": status,
        "shards": state.health.len(),
        // On the PostgreSQL store: the shards this node serves now, and its id.
        "shards_owned": owned,
        "node": state.cluster.as_ref().map(|c| c.node()),
        "last_commit_ms": last_commit_ms,
        "failing": failing,
    });
    let status = if running {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus metrics (OpenMetrics text).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "OpenMetrics text", content_type = "application/openmetrics-text"))
)]
async fn metrics(State(state): State<AppState>) -> Response {
    let mut text = String::new();
    if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &state.registry) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}"),
            Value::Null,
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_event_and_the_field() {
        let (status, message, extra) = parse_events(
            br#"[{"type":"message","tenant":"a","session":"s","sender":"agent"},
                {"type":"message","tenant":"a","session":"s","sender":"customer"}]"#,
            10,
        )
        .expect_err("refused");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            message.starts_with("events[1].sender: unknown variant"),
            "{message}"
        );
        assert_eq!(extra["index"], 1);
        assert_eq!(extra["field"], "sender");

        let (_, message, extra) =
            parse_events(br#"{"type":"message","tenant":"a","sender":"agent"}"#, 10)
                .expect_err("refused");
        assert!(message.contains("session"), "{message}");
        assert_eq!(extra["field"], "session");

        let (_, message, _) = parse_events(br#"{"type":"hello"}"#, 10).expect_err("refused");
        assert!(
            message.contains("unknown event type \"hello\""),
            "{message}"
        );

        let (status, ..) = parse_events(b"[{},{}]", 1).expect_err("refused");
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        let (_, message, extra) = parse_events(b"{\n  \"type\": ", 1).expect_err("refused");
        assert!(message.starts_with("not valid JSON"), "{message}");
        assert_eq!(extra["line"], 2);
    }

    #[test]
    fn the_checked_in_openapi_document_is_the_routes_own() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let checked_in: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let generated = serde_json::to_value(openapi()).unwrap_or(Value::Null);
        assert!(
            checked_in == generated,
            "{path} is not the document of the routes: run `cargo run -- openapi > docs/openapi.json`"
        );
        // Every route of the router is in it.
        let paths = generated["paths"].as_object().map(|p| p.len()).unwrap_or(0);
        assert_eq!(paths, 14, "{generated}");
    }
}
