//! Asking the engines what the console shows, and putting their answers together:
//! sessions from every shard this node serves, one session from its own shard, a
//! tenant's counts summed over the shards.

use std::time::Duration;

use autoclose_core::TenantStats;
use autoclose_core::view::{Found, SessionDetail, SessionQuery, TenantOverview};
use tokio::sync::oneshot;

use crate::inspect::{Inspect, Inspected, TenantAbout};
use crate::request::Request;
use crate::shards::shard_of;
use crate::state::AppState;

/// Longest wait for an engine's answer: one round, even a large one, is far
/// shorter; an engine that does not answer is shown as not answering.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// Why the console could not show something.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    /// An engine has stopped or did not answer in time.
    #[error("shard {0} did not answer (its engine stopped or is busy)")]
    NoAnswer(usize),
}

/// What one engine answers, or that it has stopped or took too long.
async fn ask_one(state: &AppState, shard: usize, query: Inspect) -> Result<Inspected, AskError> {
    let (reply, answer) = oneshot::channel();
    let sender = state.shards.get(shard).ok_or(AskError::NoAnswer(shard))?;
    sender
        .send(Request::Inspect { query, reply })
        .map_err(|_| AskError::NoAnswer(shard))?;
    match tokio::time::timeout(ANSWER_WITHIN, answer).await {
        Ok(Ok(inspected)) => Ok(inspected),
        _ => Err(AskError::NoAnswer(shard)),
    }
}

/// What every engine answers, asked all at once.
async fn ask_all(state: &AppState, query: Inspect) -> Result<Vec<Inspected>, AskError> {
    let mut waiting = Vec::with_capacity(state.shards.len());
    for (shard, sender) in state.shards.iter().enumerate() {
        let (reply, answer) = oneshot::channel();
        sender
            .send(Request::Inspect {
                query: query.clone(),
                reply,
            })
            .map_err(|_| AskError::NoAnswer(shard))?;
        waiting.push((shard, answer));
    }
    let mut answers = Vec::with_capacity(waiting.len());
    for (shard, answer) in waiting {
        match tokio::time::timeout(ANSWER_WITHIN, answer).await {
            Ok(Ok(inspected)) => answers.push(inspected),
            _ => return Err(AskError::NoAnswer(shard)),
        }
    }
    Ok(answers)
}

/// The sessions matching `query` on every shard this node serves, newest activity
/// first, at most `query.limit`.
pub async fn sessions(state: &AppState, query: SessionQuery) -> Result<Found, AskError> {
    let limit = query.limit;
    let mut found = Found::default();
    for answer in ask_all(state, Inspect::Sessions(query)).await? {
        if let Inspected::Sessions(part) = answer {
            found.matched += part.matched;
            found.sessions.extend(part.sessions);
        }
    }
    found
        .sessions
        .sort_by(|a, b| b.last_at.cmp(&a.last_at).then(a.session.cmp(&b.session)));
    found.sessions.truncate(limit);
    Ok(found)
}

/// Where one session is.
pub enum SessionAnswer {
    /// Here, whole.
    Found(Box<SessionDetail>),
    /// Its shard is served by another node.
    Elsewhere(usize),
    /// Not known (never seen, or forgotten after its close).
    Unknown,
}

/// `tenant`'s session `session`, from its shard.
pub async fn session(
    state: &AppState,
    tenant: &str,
    session: &str,
) -> Result<SessionAnswer, AskError> {
    let shard = shard_of(tenant, session, state.shards.len());
    let query = Inspect::Session {
        tenant: tenant.to_owned(),
        session: session.to_owned(),
    };
    Ok(match ask_one(state, shard, query).await? {
        Inspected::Session(Some(detail)) => SessionAnswer::Found(detail),
        Inspected::NotServed => SessionAnswer::Elsewhere(shard),
        _ => SessionAnswer::Unknown,
    })
}

/// Every tenant's counts, summed over the shards this node serves, in
/// configuration order.
pub async fn tenants(state: &AppState) -> Result<Vec<TenantOverview>, AskError> {
    let mut merged: Vec<TenantOverview> = Vec::new();
    for answer in ask_all(state, Inspect::Tenants).await? {
        let Inspected::Tenants(part) = answer else {
            continue;
        };
        for overview in part {
            match merged.iter_mut().find(|t| t.name == overview.name) {
                Some(known) => add(known, overview),
                None => merged.push(overview),
            }
        }
    }
    Ok(merged)
}

/// One tenant, summed over the shards this node serves, with what explaining its
/// settings takes; `None` when it is not configured (or no shard is served here).
pub async fn tenant(state: &AppState, name: &str) -> Result<Option<TenantAbout>, AskError> {
    let mut merged: Option<TenantAbout> = None;
    for answer in ask_all(state, Inspect::Tenant(name.to_owned())).await? {
        let Inspected::Tenant(Some(about)) = answer else {
            continue;
        };
        match &mut merged {
            Some(known) => add(&mut known.overview, about.overview),
            None => merged = Some(*about),
        }
    }
    Ok(merged)
}

/// Adds one shard's counts of a tenant to another's.
fn add(to: &mut TenantOverview, more: TenantOverview) {
    for channel in more.channels {
        if !to.channels.contains(&channel) {
            to.channels.push(channel);
        }
    }
    to.channels.sort();
    to.open += more.open;
    to.closed += more.closed;
    to.timers += more.timers;
    to.deliveries += more.deliveries;
    to.held += more.held;
    to.stats = sum(to.stats, more.stats);
    if to.failing.is_none() && more.failing.is_some() {
        to.failing = more.failing;
        to.failures = more.failures;
        to.retry_at = more.retry_at;
    }
}

fn sum(a: TenantStats, b: TenantStats) -> TenantStats {
    TenantStats {
        hooks_ok: a.hooks_ok + b.hooks_ok,
        hooks_failed: a.hooks_failed + b.hooks_failed,
        restarts: a.restarts + b.restarts,
        events_dropped: a.events_dropped + b.events_dropped,
        events_deferred: a.events_deferred + b.events_deferred,
        deliveries_ok: a.deliveries_ok + b.deliveries_ok,
        deliveries_failed: a.deliveries_failed + b.deliveries_failed,
        retries: a.retries + b.retries,
    }
}
