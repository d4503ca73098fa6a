//! The console at `/ui`: read-only pages that answer "why did this chat close (or
//! why was no warning sent)?" without reading logs.
//!
//! | page | what |
//! | --- | --- |
//! | `/ui/sessions` | sessions by tenant, id and state |
//! | `/ui/sessions/{tenant}/{session}` | one session: pending timers with countdowns, deliveries, its timeline with the rule behind each action |
//! | `/ui/tenants` | every tenant's counts and health |
//! | `/ui/tenants/{tenant}` | one tenant: failing component and back-off, counts, channels, what its settings do |
//!
//! Server-rendered HTML ([`pages`]) from what the engines answer ([`ask`]); the
//! words are [`words`]; who may look is [`auth`]. The console shows the shards
//! this node serves: on a cluster, a session on another node's shard says so.

mod ask;
pub mod auth;
pub mod pages;
pub mod words;

use axum::Form;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maud::Markup;
use serde::Deserialize;

use autoclose_core::view::{SessionQuery, SessionState};

use crate::access::Scope;
use crate::clock::wall_ms;
use crate::state::AppState;
use ask::{AskError, SessionAnswer};

/// Most sessions one search shows.
pub const MAX_SESSIONS_SHOWN: usize = 200;

/// The console's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(|| async { Redirect::to("/ui/sessions") }))
        .route("/ui/login", get(login_page).post(login))
        .route("/ui/logout", post(logout))
        .route("/ui/sessions", get(sessions))
        .route("/ui/sessions/{tenant}/{session}", get(session))
        .route("/ui/tenants", get(tenants))
        .route("/ui/tenants/{tenant}", get(tenant))
        .route("/ui/assets/console.js", get(script))
        .route("/ui/assets/console.css", get(style))
}

/// An HTML answer, with headers that keep it from being framed, cached or
/// reaching anything but this server.
fn html(status: StatusCode, markup: Markup) -> Response {
    let mut response = (status, markup).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The way to the sign-in page, for a request without a valid token.
fn to_sign_in() -> Response {
    Redirect::to("/ui/login").into_response()
}

/// A tenant the viewer may not see.
fn forbidden(tenant: &str) -> Response {
    html(
        StatusCode::FORBIDDEN,
        pages::problem(
            "Not yours",
            &format!("This token is scoped to another tenant; it cannot see {tenant:?}."),
        ),
    )
}

fn unavailable(e: AskError) -> Response {
    html(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::problem("Not answering", &e.to_string()),
    )
}

async fn login_page() -> Response {
    html(StatusCode::OK, pages::sign_in(None))
}

#[derive(Deserialize)]
struct SignIn {
    token: String,
}

async fn login(State(state): State<AppState>, Form(form): Form<SignIn>) -> Response {
    let token = form.token.trim();
    let cookie = auth::sign_in(token);
    match (state.access.scope_of_token(token), cookie) {
        (Some(_), Some(cookie)) => {
            let mut response = Redirect::to("/ui/sessions").into_response();
            response.headers_mut().insert(header::SET_COOKIE, cookie);
            response
        }
        _ => html(
            StatusCode::UNAUTHORIZED,
            pages::sign_in(Some(
                "That token opens nothing here: give the operator's token or a tenant's.",
            )),
        ),
    }
}

async fn logout() -> Response {
    let mut response = Redirect::to("/ui/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, auth::sign_out());
    response
}

/// The sessions page's query string.
#[derive(Deserialize, Default)]
struct Search {
    #[serde(default)]
    tenant: String,
    #[serde(default)]
    session: String,
    #[serde(default)]
    state: String,
}

async fn sessions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(search): Query<Search>,
) -> Response {
    let Some(scope) = auth::viewer(&state, &headers) else {
        return to_sign_in();
    };
    let visible: Vec<String> = match &scope {
        Scope::Tenant { tenant, .. } => vec![tenant.clone()],
        Scope::Admin => match ask::tenants(&state).await {
            Ok(tenants) => tenants.into_iter().map(|t| t.name).collect(),
            Err(e) => return unavailable(e),
        },
    };
    let tenant = match (&scope, search.tenant.trim()) {
        (Scope::Tenant { tenant, .. }, _) => Some(tenant.clone()),
        (Scope::Admin, "") => None,
        (Scope::Admin, name) => Some(name.to_owned()),
    };
    let wanted = SessionState::parse(search.state.trim());
    let text = search.session.trim();
    let query = SessionQuery {
        tenant: tenant.clone(),
        session: (!text.is_empty()).then(|| text.to_owned()),
        state: wanted,
        limit: MAX_SESSIONS_SHOWN,
    };
    match ask::sessions(&state, query).await {
        Ok(found) => html(
            StatusCode::OK,
            pages::sessions(
                &pages::SessionFilter {
                    tenants: &visible,
                    tenant: tenant.as_deref(),
                    session: text,
                    state: wanted,
                },
                &found,
            ),
        ),
        Err(e) => unavailable(e),
    }
}

async fn session(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((tenant, session)): Path<(String, String)>,
) -> Response {
    match auth::viewer(&state, &headers) {
        Some(scope) if scope.covers(&tenant) => {}
        Some(_) => return forbidden(&tenant),
        None => return to_sign_in(),
    }
    match ask::session(&state, &tenant, &session).await {
        Ok(SessionAnswer::Found(detail)) => html(StatusCode::OK, pages::session(&detail)),
        Ok(SessionAnswer::Elsewhere(shard)) => html(
            StatusCode::NOT_FOUND,
            pages::problem(
                "On another node",
                &format!(
                    "Session {session:?} of {tenant:?} is on shard {shard}, which another node serves now: open its console (GET /v1/admin/nodes lists who serves what)."
                ),
            ),
        ),
        Ok(SessionAnswer::Unknown) => html(
            StatusCode::NOT_FOUND,
            pages::problem(
                "No such session",
                &format!(
                    "{tenant:?} has no session {session:?} here: it was never seen, or it closed and was forgotten after --forget-closed-after."
                ),
            ),
        ),
        Err(e) => unavailable(e),
    }
}

async fn tenants(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(scope) = auth::viewer(&state, &headers) else {
        return to_sign_in();
    };
    match ask::tenants(&state).await {
        Ok(mut all) => {
            all.retain(|t| scope.covers(&t.name));
            html(StatusCode::OK, pages::tenants(&all))
        }
        Err(e) => unavailable(e),
    }
}

async fn tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Response {
    match auth::viewer(&state, &headers) {
        Some(scope) if scope.covers(&name) => {}
        Some(_) => return forbidden(&name),
        None => return to_sign_in(),
    }
    let about = match ask::tenant(&state, &name).await {
        Ok(Some(about)) => about,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::problem(
                    "No such tenant",
                    &format!("{name:?} is not configured (or no shard is served here)."),
                ),
            );
        }
        Err(e) => return unavailable(e),
    };
    // Explaining calls into the component: off the async threads.
    let explained = match about.setup.clone() {
        None => Err("its component has not loaded, so it cannot explain its settings".to_owned()),
        Some((component, setup)) => {
            let runtime = about.runtime.clone();
            tokio::task::spawn_blocking(move || match runtime.explain(&component, &setup) {
                Ok(Ok(text)) => Ok(text),
                Ok(Err(e)) => Err(format!(
                    "its component refuses its settings: {}: {}",
                    e.path, e.reason
                )),
                Err(e) => Err(format!("its component could not explain its settings: {e}")),
            })
            .await
            .unwrap_or_else(|e| Err(format!("explaining failed: {e}")))
        }
    };
    html(
        StatusCode::OK,
        pages::tenant(&about.overview, explained, wall_ms()),
    )
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", pages::SCRIPT)
}

async fn style() -> Response {
    asset("text/css; charset=utf-8", pages::STYLE)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "max-age=300"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}
