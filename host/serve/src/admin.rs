//! The admin routes: reloading the file, and tenant settings one tenant at a time.
//!
//! | route | who | what |
//! | --- | --- | --- |
//! | `POST /v1/admin/reload` | operator | re-read the file and the components |
//! | `GET /v1/admin/tenants` | operator, tenant | the tenants the token may see |
//! | `GET /v1/admin/tenants/{tenant}` | operator, tenant | its document and version (`ETag`) |
//! | `PUT /v1/admin/tenants/{tenant}` | operator, tenant | check, store and apply a document |
//! | `DELETE /v1/admin/tenants/{tenant}` | operator, tenant | remove the API's settings |
//! | `GET /v1/admin/tenants/{tenant}/versions` | operator, tenant | the kept versions |
//! | `POST /v1/admin/tenants/{tenant}/rollback` | operator, tenant | write an older version again |
//! | `GET /v1/admin/audit` | operator, tenant | who changed what, when |
//!
//! Changes take `If-Match: "<version>"` and answer `412` when it is not current, so
//! that two people editing one tenant do not lose each other's work.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use autoclose_store::settings::SettingsVersion;

use crate::access::Scope;
use crate::settings::{Put, SettingsError};
use crate::state::{AppState, error, unauthorized};

/// A refused admin request: the response saying why (boxed: a response is large and
/// refusals are the rare path).
pub struct Refusal(Box<Response>);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Refusal(Box::new(response))
    }
}

impl From<SettingsError> for Refusal {
    fn from(e: SettingsError) -> Self {
        Refusal(Box::new(refused(e)))
    }
}

/// What an admin handler answers.
type Answer = Result<Response, Refusal>;

/// Most audit records one request returns.
pub const MAX_AUDIT_RECORDS: usize = 1000;

/// The scope of a request, or the response refusing it.
fn scope_of(state: &AppState, headers: &HeaderMap) -> Result<Scope, Refusal> {
    state.access.admin_scope(headers).ok_or_else(|| {
        unauthorized(state, "admin.token (or ingest.token), or a tenant's token").into()
    })
}

/// Refuses a request that is not the operator's: `401` without a valid token, `403`
/// for a tenant's token, saying that only the operator's token `does`.
fn operator_only(state: &AppState, headers: &HeaderMap, does: &str) -> Result<(), Refusal> {
    match scope_of(state, headers)? {
        Scope::Admin => Ok(()),
        Scope::Tenant { .. } => Err(Refusal::from(error(
            StatusCode::FORBIDDEN,
            format!("only the operator's token {does}"),
            Value::Null,
        ))),
    }
}

/// The scope of a request on `tenant`'s settings, or the response refusing it.
fn scope_for(state: &AppState, headers: &HeaderMap, tenant: &str) -> Result<Scope, Refusal> {
    let scope = scope_of(state, headers)?;
    if !scope.covers(tenant) {
        return Err(Refusal::from(error(
            StatusCode::FORBIDDEN,
            format!("this token is scoped to another tenant; it cannot read or change {tenant:?}"),
            Value::Null,
        )));
    }
    Ok(scope)
}

/// `If-Match: "3"` (or `3`, or `W/"3"`), `None` when absent or `*`.
fn if_match(headers: &HeaderMap) -> Result<Option<SettingsVersion>, Refusal> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text == "*" {
        return Ok(None);
    }
    let bare = text.trim_start_matches("W/").trim_matches('"');
    bare.parse::<u64>()
        .map(|v| Some(SettingsVersion(v)))
        .map_err(|_| {
            Refusal::from(error(
                StatusCode::BAD_REQUEST,
                format!("If-Match: {text:?} is not a version; send the ETag of a GET, e.g. \"3\""),
                Value::Null,
            ))
        })
}

fn etag(version: SettingsVersion) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

fn refused(e: SettingsError) -> Response {
    let (status, extra) = match &e {
        SettingsError::NotFound { .. } => (StatusCode::NOT_FOUND, Value::Null),
        SettingsError::Forbidden(_) => (StatusCode::FORBIDDEN, Value::Null),
        SettingsError::Invalid { path, .. } => {
            (StatusCode::UNPROCESSABLE_ENTITY, json!({"path": path}))
        }
        SettingsError::Stale { current, .. } => (
            StatusCode::PRECONDITION_FAILED,
            json!({"current_version": current}),
        ),
        SettingsError::Conflict(_) => (StatusCode::CONFLICT, Value::Null),
        SettingsError::Store(_) | SettingsError::Task(_) => {
            (StatusCode::SERVICE_UNAVAILABLE, Value::Null)
        }
        SettingsError::Apply(_) => (StatusCode::INTERNAL_SERVER_ERROR, Value::Null),
    };
    let message = match &e {
        SettingsError::Invalid { .. } => format!("refused, nothing changed: {e}"),
        _ => e.to_string(),
    };
    error(status, message, extra)
}

/// `POST /v1/admin/reload`: re-read the file and the components, tenant by tenant.
#[utoipa::path(
    post,
    path = "/v1/admin/reload",
    tag = "admin",
    responses(
        (status = 200, description = "Applied: tenants applied, unchanged and refused (each refused one keeps what it ran, or is held failed)", body = Value),
        (status = 401, description = "Missing or wrong token", body = Value),
        (status = 403, description = "A tenant's token", body = Value),
        (status = 422, description = "A host-level error; nothing changed", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn reload(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    operator_only(&state, &headers, "reloads the configuration")?;
    match state.reloader.reload().await {
        Ok(report) => Ok((StatusCode::OK, Json(report)).into_response()),
        Err(reason) => Err(Refusal::from(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("reload refused; the running configuration is unchanged: {reason}"),
            Value::Null,
        ))),
    }
}

/// `GET /v1/admin/shards`: which node owns which shard, with its epoch and how long
/// its lease lasts (the PostgreSQL store); with the redb store, this node owns all.
#[utoipa::path(
    get,
    path = "/v1/admin/shards",
    tag = "admin",
    responses(
        (status = 200, description = "The store, this node's id and every shard's lease: shard, owner, epoch, expires_in_ms", body = Value),
        (status = 401, description = "Missing or wrong token", body = Value),
        (status = 403, description = "A tenant's token", body = Value),
        (status = 503, description = "The database did not answer", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn shards(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    operator_only(&state, &headers, "sees the shards")?;
    let Some(cluster) = &state.cluster else {
        return Ok(Json(json!({
            "store": "redb",
            "node": Value::Null,
            "shards": (0..state.shards.len()).map(|shard| json!({"shard": shard, "owner": "this node"})).collect::<Vec<_>>(),
        }))
        .into_response());
    };
    let shards = cluster.leases().await.map_err(unavailable)?;
    Ok(Json(json!({
        "store": "postgres",
        "node": cluster.node(),
        "shards": shards,
    }))
    .into_response())
}

/// `GET /v1/admin/nodes`: the live nodes of the cluster and the shards each owns (the
/// PostgreSQL store); with the redb store, this node alone.
#[utoipa::path(
    get,
    path = "/v1/admin/nodes",
    tag = "admin",
    responses(
        (status = 200, description = "This node's id and every live node: node, expires_in_ms, shards (the ones whose unexpired lease it holds)", body = Value),
        (status = 401, description = "Missing or wrong token", body = Value),
        (status = 403, description = "A tenant's token", body = Value),
        (status = 503, description = "The database did not answer", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn nodes(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    operator_only(&state, &headers, "sees the nodes")?;
    let Some(cluster) = &state.cluster else {
        return Ok(Json(json!({
            "store": "redb",
            "node": Value::Null,
            "nodes": [{"node": "this node", "shards": (0..state.shards.len()).collect::<Vec<_>>()}],
        }))
        .into_response());
    };
    let nodes = cluster.nodes().await.map_err(unavailable)?;
    let leases = cluster.leases().await.map_err(unavailable)?;
    let nodes: Vec<Value> = nodes
        .into_iter()
        .map(|node| {
            let owned: Vec<i32> = leases
                .iter()
                .filter(|l| l.owner == node.node && l.expires_in_ms > 0)
                .map(|l| l.shard)
                .collect();
            json!({"node": node.node, "expires_in_ms": node.expires_in_ms, "shards": owned})
        })
        .collect();
    Ok(Json(json!({
        "store": "postgres",
        "node": cluster.node(),
        "nodes": nodes,
    }))
    .into_response())
}

/// The answer when the database does not answer.
fn unavailable(e: autoclose_store::StoreError) -> Refusal {
    Refusal::from(error(
        StatusCode::SERVICE_UNAVAILABLE,
        e.to_string(),
        Value::Null,
    ))
}

/// `GET /v1/admin/tenants`: the tenants the token may see, where their settings
/// come from (`file` or `api`) and their version.
#[utoipa::path(
    get,
    path = "/v1/admin/tenants",
    tag = "admin",
    responses(
        (status = 200, description = "The tenants", body = Value, example = json!({"tenants": [{"tenant": "acme", "source": "api", "version": 3, "in_file": true}]})),
        (status = 401, description = "Missing or wrong token", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn list(State(state): State<AppState>, headers: HeaderMap) -> Answer {
    let scope = scope_of(&state, &headers)?;
    let tenants: Vec<Value> = state
        .reloader
        .tenants(&scope)
        .await
        .into_iter()
        .map(|t| {
            json!({
                "tenant": t.tenant,
                "source": t.source,
                "version": t.version,
                "in_file": t.in_file,
            })
        })
        .collect();
    Ok(Json(json!({ "tenants": tenants })).into_response())
}

/// `GET /v1/admin/tenants/{tenant}`: the document that runs, and its version as
/// the `ETag`.
#[utoipa::path(
    get,
    path = "/v1/admin/tenants/{tenant}",
    tag = "admin",
    params(
        ("tenant" = String, Path, description = "The tenant, as gateways name it"),
    ),
    responses(
        (status = 200, description = "The tenant: source, version, in_file, document", body = Value, headers(("ETag" = String, description = "The version, for If-Match"))),
        (status = 401, description = "Missing or wrong token", body = Value),
        (status = 403, description = "A token of another tenant", body = Value),
        (status = 404, description = "No such tenant", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Answer {
    scope_for(&state, &headers, &tenant)?;
    let view = state.reloader.tenant(&tenant).await?;
    let tag = etag(view.version);
    let mut response = Json(view).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    Ok(response)
}

/// `PUT /v1/admin/tenants/{tenant}`: the body is the tenant's document, as a tenant
/// of the file is written. Checked by the host and the tenant's component, stored as
/// the next version with an audit record, then applied.
#[utoipa::path(
    put,
    path = "/v1/admin/tenants/{tenant}",
    tag = "admin",
    params(
        ("tenant" = String, Path, description = "The tenant, as gateways name it"),
        ("If-Match" = Option<String>, Header, description = "The version the change is based on, as the ETag of a GET: \"3\""),
    ),
    request_body(content = Value, description = "The tenant's document: webhooks, component, limits (operator only) and the component's settings", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored and applied: the new version, the audit record, what applying carried over", body = Value, headers(("ETag" = String, description = "The new version"))),
        (status = 400, description = "Not JSON, or a bad If-Match", body = Value),
        (status = 401, description = "Missing or wrong token", body = Value),
        (status = 403, description = "Another tenant's token, a webhook not granted, limits or a component file from a tenant's token", body = Value),
        (status = 412, description = "If-Match is not the current version (a lost update refused)", body = Value),
        (status = 422, description = "Refused by the host or the component; `path` names the field; nothing changed", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn put(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let scope = scope_for(&state, &headers, &tenant)?;
    let if_match = if_match(&headers)?;
    let document: Map<String, Value> = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(document)) => document,
        Ok(_) => {
            return Err(Refusal::from(SettingsError::Invalid {
                path: String::new(),
                reason: "the body must be the tenant's document, a JSON object".into(),
            }));
        }
        Err(e) => {
            return Err(Refusal::from(error(
                StatusCode::BAD_REQUEST,
                format!("not valid JSON: {e}"),
                json!({"line": e.line(), "column": e.column()}),
            )));
        }
    };
    let put = Put {
        tenant,
        document,
        if_match,
    };
    changed(state.reloader.put(&scope, put).await)
}

/// The answer to a change: the report, and the new version as the `ETag`.
fn changed(result: Result<crate::settings::ChangeReport, SettingsError>) -> Answer {
    let report = result?;
    let tag = etag(report.version);
    let mut response = Json(report).into_response();
    response.headers_mut().insert(header::ETAG, tag);
    Ok(response)
}

/// `DELETE /v1/admin/tenants/{tenant}`: removes what the API set; the file's settings
/// run again, or a tenant only the API defined is removed.
#[utoipa::path(
    delete,
    path = "/v1/admin/tenants/{tenant}",
    tag = "admin",
    params(
        ("tenant" = String, Path, description = "The tenant, as gateways name it"),
        ("If-Match" = Option<String>, Header, description = "The version the change is based on, as the ETag of a GET: \"3\""),
    ),
    responses(
        (status = 200, description = "Deleted (a version without a document) and applied", body = Value, headers(("ETag" = String, description = "The new version"))),
        (status = 401, description = "Missing or wrong token", body = Value),
        (status = 403, description = "A token of another tenant", body = Value),
        (status = 404, description = "No such tenant", body = Value),
        (status = 409, description = "Only the file defines the tenant", body = Value),
        (status = 412, description = "If-Match is not the current version", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Answer {
    let scope = scope_for(&state, &headers, &tenant)?;
    let if_match = if_match(&headers)?;
    changed(state.reloader.delete(&scope, &tenant, if_match).await)
}

/// `GET /v1/admin/tenants/{tenant}/versions`: the kept versions, oldest first.
#[utoipa::path(
    get,
    path = "/v1/admin/tenants/{tenant}/versions",
    tag = "admin",
    params(
        ("tenant" = String, Path, description = "The tenant, as gateways name it"),
    ),
    responses(
        (status = 200, description = "The versions: version, document (null: a deletion), at_ms, by", body = Value),
        (status = 401, description = "Missing or wrong token", body = Value),
        (status = 403, description = "A token of another tenant", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn versions(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Answer {
    scope_for(&state, &headers, &tenant)?;
    let versions = state.reloader.versions(&tenant).await?;
    Ok(Json(json!({ "tenant": tenant, "versions": versions })).into_response())
}

/// The body of a rollback.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// The version whose document is written again.
    pub version: u64,
}

/// `POST /v1/admin/tenants/{tenant}/rollback` with `{"version": N}`: writes version
/// N's document again as the next version (checked like a `PUT`).
#[utoipa::path(
    post,
    path = "/v1/admin/tenants/{tenant}/rollback",
    tag = "admin",
    params(
        ("tenant" = String, Path, description = "The tenant, as gateways name it"),
        ("If-Match" = Option<String>, Header, description = "The version the change is based on, as the ETag of a GET: \"3\""),
    ),
    request_body(content = Value, description = "The version to restore", content_type = "application/json", example = json!({"version": 1})),
    responses(
        (status = 200, description = "Restored as a new version and applied", body = Value, headers(("ETag" = String, description = "The new version"))),
        (status = 401, description = "Missing or wrong token", body = Value),
        (status = 403, description = "A token of another tenant", body = Value),
        (status = 404, description = "No such version kept", body = Value),
        (status = 409, description = "That version is a deletion", body = Value),
        (status = 412, description = "If-Match is not the current version", body = Value),
        (status = 422, description = "The old document no longer passes", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn rollback(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let scope = scope_for(&state, &headers, &tenant)?;
    let if_match = if_match(&headers)?;
    let to = match serde_json::from_slice::<Rollback>(&body) {
        Ok(rollback) => SettingsVersion(rollback.version),
        Err(e) => {
            return Err(Refusal::from(error(
                StatusCode::BAD_REQUEST,
                format!("the body must be {{\"version\": N}}: {e}"),
                Value::Null,
            )));
        }
    };
    changed(state.reloader.rollback(&scope, &tenant, to, if_match).await)
}

/// The query of `GET /v1/admin/audit`.
#[derive(Deserialize)]
pub struct AuditQuery {
    /// Only this tenant's changes (a tenant's token sees only its own anyway).
    pub tenant: Option<String>,
    /// The last this many records (at most [`MAX_AUDIT_RECORDS`]; default 100).
    pub limit: Option<usize>,
}

/// `GET /v1/admin/audit`: who changed which tenant, when, from which version to
/// which, oldest first.
#[utoipa::path(
    get,
    path = "/v1/admin/audit",
    tag = "admin",
    params(
        ("tenant" = Option<String>, Query, description = "Only this tenant's changes"),
        ("limit" = Option<u32>, Query, description = "The last this many records (default 100, at most 1000)"),
    ),
    responses(
        (status = 200, description = "The records: seq, at_ms, tenant, by, kind, old_version, new_version, restored", body = Value),
        (status = 401, description = "Missing or wrong token", body = Value),
        (status = 403, description = "A tenant's token asking for another tenant", body = Value),
    ),
    security(("bearer" = []))
)]
pub async fn audit(
    State(state): State<AppState>,
    Query(query): Query<AuditQuery>,
    headers: HeaderMap,
) -> Answer {
    let scope = scope_of(&state, &headers)?;
    let tenant = match (&scope, query.tenant) {
        (Scope::Admin, tenant) => tenant,
        (Scope::Tenant { tenant: own, .. }, Some(asked)) if &asked != own => {
            return Err(Refusal::from(error(
                StatusCode::FORBIDDEN,
                format!("this token is scoped to another tenant; it cannot read {asked:?}"),
                Value::Null,
            )));
        }
        (Scope::Tenant { tenant: own, .. }, _) => Some(own.clone()),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_AUDIT_RECORDS);
    let records = state.reloader.audit(tenant, limit).await?;
    Ok(Json(json!({ "audit": records })).into_response())
}
