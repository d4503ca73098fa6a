//! Sending attempts on the async runtime and reporting their results to the engine.
//!
//! The engine thread never waits for the network: it hands each attempt to a task
//! here and goes on; the result comes back as a request of its own. A semaphore caps
//! how many attempts are on the wire at once.

use std::sync::Arc;

use tokio::runtime::Handle;
use tokio::sync::Semaphore;

use autoclose_webhook::http::Clients;
use autoclose_webhook::outbound::Attempt;
use autoclose_webhook::retry::AttemptResult;

use crate::gateway::Chatwoot;
use crate::metrics::Metrics;
use crate::request::{EngineSender, Request, Target};

/// Most attempts on the wire at once, all targets together.
pub const MAX_CONCURRENT_ATTEMPTS: usize = 512;

/// Hands attempts to tasks on the runtime.
#[derive(Clone)]
pub struct Dispatcher {
    runtime: Handle,
    clients: Clients,
    permits: Arc<Semaphore>,
    results: EngineSender,
}

impl Dispatcher {
    /// A dispatcher whose tasks run on `runtime` and report to `results`.
    pub fn new(runtime: Handle, clients: Clients, results: EngineSender) -> Self {
        Dispatcher {
            runtime,
            clients,
            permits: Arc::new(Semaphore::new(MAX_CONCURRENT_ATTEMPTS)),
            results,
        }
    }

    /// Starts `attempt`; its result reaches the engine as [`Request::Attempted`],
    /// exactly once.
    pub fn send(&self, target: Target, attempt: Attempt) {
        let permits = self.permits.clone();
        let clients = self.clients.clone();
        let results = self.results.clone();
        self.runtime.spawn(async move {
            let result = match permits.acquire_owned().await {
                Ok(_permit) => clients.send(&attempt).await,
                Err(_) => AttemptResult::Failed("the server is shutting down".into()),
            };
            let _ = results.send(Request::Attempted { target, result });
        });
    }

    /// Starts a chat action of a Chatwoot tenant: REST calls instead of one request.
    /// What Chatwoot says that no webhook told (the conversation is resolved,
    /// snoozed, pending) reaches the engine as events first, then the result as
    /// [`Request::Attempted`], exactly once.
    pub fn send_chatwoot(&self, job: ChatwootJob, metrics: Metrics) {
        let permits = self.permits.clone();
        let results = self.results.clone();
        self.runtime.spawn(async move {
            let ChatwootJob {
                seq,
                attempt,
                tenant,
                session,
                body,
                chatwoot,
            } = job;
            let made = match (permits.acquire_owned().await, chatwoot.account(&tenant)) {
                (Ok(_permit), Some(account)) => {
                    autoclose_platforms::chatwoot::outbound::make(
                        &chatwoot.client,
                        Chatwoot::api(account),
                        &body,
                        attempt,
                        crate::engine::wall_ms(),
                    )
                    .await
                }
                _ => autoclose_platforms::chatwoot::outbound::Made {
                    result: AttemptResult::Failed("the server is shutting down".into()),
                    learned: Vec::new(),
                    skipped: None,
                    error: None,
                },
            };
            if let Some(why) = made.skipped {
                tracing::info!(tenant, session, "chatwoot: nothing posted: {why}");
                Metrics::count(&metrics.chatwoot_actions, "skipped", 1);
            } else if made.error.is_none() {
                Metrics::count(&metrics.chatwoot_actions, "made", 1);
            }
            if let Some(error) = &made.error {
                if error.is_final() {
                    tracing::error!(
                        tenant,
                        conversation = session,
                        "chatwoot refused the call; not retried (a revoked api_access_token, or a deleted conversation?): {error}"
                    );
                } else {
                    tracing::warn!(tenant, conversation = session, "chatwoot call failed: {error}");
                }
            }
            if !made.learned.is_empty() {
                // The engine applies these before the result: the cycle stops before
                // the next post of the session is tried.
                let (reply, _) = tokio::sync::oneshot::channel();
                let _ = results.send(Request::Ingest {
                    events: made.learned,
                    reply,
                });
            }
            let _ = results.send(Request::Attempted {
                target: Target::Callback(seq),
                result: made.result,
            });
        });
    }
}

/// One attempt of a chat action through Chatwoot's API.
pub struct ChatwootJob {
    /// The callback's sequence number.
    pub seq: u64,
    /// 1 on the first attempt.
    pub attempt: u32,
    /// Its tenant.
    pub tenant: String,
    /// Its session (the conversation's display id).
    pub session: String,
    /// The action, as the callback record holds it.
    pub body: Vec<u8>,
    /// The adapter.
    pub chatwoot: Arc<Chatwoot>,
}
