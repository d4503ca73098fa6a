//! Events into the engines: from `POST /v1/events`, from a platform's webhook, or
//! found by a platform's reconciliation. Every way in ends in [`apply`], which makes
//! the events durable in their shards (or, on a cluster, in the inbox of the node
//! that serves the shard) before it answers.

use std::sync::atomic::Ordering;

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use tokio::sync::oneshot;

use autoclose_core::event::GatewayEvent;

use crate::metrics::Metrics;
use crate::request::{Refused, Request};
use crate::shards::shard_of;
use crate::state::{AppState, error};

/// Applies the `events` a `platform` webhook delivered for `tenant`, counting the
/// outcome in `autoclose_platform_webhooks_total`; the error is the answer to give
/// (`400` for a refused event, `503` while events cannot be taken: the platform, or
/// reconciliation, tries again).
pub async fn apply_delivery(
    state: &AppState,
    platform: &str,
    tenant: &str,
    events: Vec<GatewayEvent>,
) -> Result<(), Response> {
    let count = |outcome: &str| {
        Metrics::count_platform(&state.metrics.platform_webhooks, platform, outcome, 1)
    };
    match apply(state, events).await {
        Ok(()) => {
            count("accepted");
            Ok(())
        }
        Err(Refused::Event { index, source }) => {
            count("bad_request");
            tracing::warn!(tenant, platform, "webhook: event {index} refused: {source}");
            Err(error(
                StatusCode::BAD_REQUEST,
                format!("events[{index}]: {source}"),
                Value::Null,
            ))
        }
        Err(Refused::Unavailable | Refused::NotOwned) => {
            count("unavailable");
            Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "not accepting events (shutting down or the store failed); reconciliation catches up",
                Value::Null,
            ))
        }
    }
}

/// Events a call to the engines carries at most when reconciliation submits.
const SLICE: usize = 100;

/// The events of one request for one shard, with their indexes in the request.
struct Part {
    shard: usize,
    events: Vec<GatewayEvent>,
    indexes: Vec<usize>,
}

/// Hands a request's events to their shards and waits until every shard has
/// committed its part. A request within one shard is checked and applied in one step;
/// one that spans shards is checked by every shard first, so that a refused event
/// applies nothing anywhere. Errors carry the event's index in the request.
pub(crate) async fn apply(state: &AppState, events: Vec<GatewayEvent>) -> Result<(), Refused> {
    let shards = state.shards.len();
    let mut parts: Vec<Part> = Vec::new();
    for (index, event) in events.into_iter().enumerate() {
        let shard = shard_of(event.tenant(), event.session(), shards);
        match parts.iter_mut().find(|p| p.shard == shard) {
            Some(part) => {
                part.events.push(event);
                part.indexes.push(index);
            }
            None => parts.push(Part {
                shard,
                events: vec![event],
                indexes: vec![index],
            }),
        }
    }
    let in_request = |part: &Part, refused: Refused| match refused {
        Refused::Event { index, source } => Refused::Event {
            index: part.indexes.get(index).copied().unwrap_or(index),
            source,
        },
        other => other,
    };
    let owned = |part: &Part| state.health[part.shard].owned.load(Ordering::SeqCst);
    if parts.len() > 1 {
        // Parts for shards another node serves are checked by that node when it
        // applies them.
        let mut checks = Vec::new();
        for part in parts.iter().filter(|p| owned(p)) {
            let (reply, answer) = oneshot::channel();
            let events = part.events.clone();
            state.shards[part.shard]
                .send(Request::Check { events, reply })
                .map_err(|_| Refused::Unavailable)?;
            checks.push((part, answer));
        }
        for (part, answer) in checks {
            match answer.await.map_err(|_| Refused::Unavailable)? {
                Ok(()) | Err(Refused::NotOwned) => {}
                Err(refused) => return Err(in_request(part, refused)),
            }
        }
    }
    let mut answers = Vec::new();
    for part in &mut parts {
        if !owned(part) && state.cluster.is_some() {
            answers.push(None);
            continue;
        }
        let (reply, answer) = oneshot::channel();
        // On a shared store the events are kept, in case the engine no longer
        // serves the shard and they go to its inbox after all.
        let events = if state.cluster.is_some() {
            part.events.clone()
        } else {
            std::mem::take(&mut part.events)
        };
        state.shards[part.shard]
            .send(Request::Ingest { events, reply })
            .map_err(|_| Refused::Unavailable)?;
        answers.push(Some(answer));
    }
    let mut first_error = None;
    for (part, answer) in parts.iter().zip(answers) {
        let result = match answer {
            Some(answer) => answer
                .await
                .map_err(|_| Refused::Unavailable)
                .and_then(|r| r.map(|_| ())),
            None => Err(Refused::NotOwned),
        };
        let result = match (result, &state.cluster) {
            (Err(Refused::NotOwned), Some(cluster)) => to_inbox(state, cluster, part).await,
            (result, _) => result,
        };
        if let Err(refused) = result {
            first_error.get_or_insert(in_request(part, refused));
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Makes a part durable in its shard's inbox, for the node that serves the shard.
async fn to_inbox(
    state: &AppState,
    cluster: &autoclose_store::postgres::cluster::Cluster,
    part: &Part,
) -> Result<(), Refused> {
    match cluster.push_inbox(part.shard, &part.events).await {
        Ok(()) => {
            Metrics::count(
                &state.metrics.inbox_events,
                "written",
                part.events.len() as u64,
            );
            Ok(())
        }
        Err(e) => {
            tracing::warn!(shard = part.shard, "cannot accept events: {e}");
            Err(Refused::Unavailable)
        }
    }
}

/// Submits `events` of `tenant`, found by `platform`'s reconciliation, in slices, so
/// that one refused event (a conversation of a tenant that fails its check) does not
/// hold back the others; counts what was submitted.
pub async fn submit_found(
    state: &AppState,
    platform: &str,
    tenant: &str,
    events: Vec<GatewayEvent>,
) {
    let submitted = events.len();
    for chunk in events.chunks(SLICE) {
        if let Err(refused) = apply(state, chunk.to_vec()).await {
            tracing::warn!(
                tenant,
                platform,
                "reconciliation: events refused: {refused}"
            );
        }
    }
    Metrics::count_platform(
        &state.metrics.platform_reconciled,
        platform,
        "submitted",
        submitted as u64,
    );
}

/// Counts a failed round of `platform` for `tenant`.
pub fn count_failed_round(
    state: &AppState,
    platform: &str,
    tenant: &str,
    error: &dyn std::fmt::Display,
) {
    Metrics::count_platform(&state.metrics.platform_reconciled, platform, "failed", 1);
    tracing::warn!(tenant, platform, "reconciliation failed: {error}");
}
