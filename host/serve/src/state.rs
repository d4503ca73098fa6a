//! What every HTTP handler shares: the server's state, and the JSON error answers.
//!
//! Apart from the routes ([`crate::api`], [`crate::admin`]) so that the route modules
//! depend on it and not on each other.

use std::sync::Arc;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use autoclose_config::Ingest;

use crate::access::Access;
use crate::engine::Health;
use crate::metrics::Metrics;
use crate::reload::Reloader;
use crate::request::EngineSender;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    /// The engines' queues, one per shard.
    pub shards: Arc<[EngineSender]>,
    /// Ingest settings (from the configuration the server started with).
    pub ingest: Arc<Ingest>,
    /// Engine liveness, one per shard.
    pub health: Arc<[Arc<Health>]>,
    /// Metrics and their registry.
    pub metrics: Metrics,
    /// The registry `GET /metrics` encodes.
    pub registry: Arc<prometheus_client::registry::Registry>,
    /// Builds and swaps in new configurations and tenant settings.
    pub reloader: Reloader,
    /// The tokens.
    pub access: Access,
    /// This node's handle on the cluster (the PostgreSQL store): the shard inboxes
    /// and what the shards and nodes routes list; `None` with the redb store.
    pub cluster: Option<Arc<autoclose_store::postgres::cluster::Cluster>>,
}

/// A JSON error response.
pub(crate) fn error(status: StatusCode, message: impl Into<String>, extra: Value) -> Response {
    let mut body = json!({ "error": message.into() });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    (status, Json(body)).into_response()
}

/// `401`, naming the token expected (never its value).
pub(crate) fn unauthorized(state: &AppState, expected: &str) -> Response {
    Metrics::count(&state.metrics.ingest_requests, "unauthorized", 1);
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        format!("missing or wrong bearer token (Authorization: Bearer <{expected}>)"),
        Value::Null,
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer"),
    );
    response
}
