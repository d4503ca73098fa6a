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

use autoclose_platforms::action::Made;

use crate::gateway::{Adapter, Chatwoot};
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

    /// Starts a chat action of a tenant a platform serves: REST calls instead of one
    /// request. What the platform says that no webhook told (the conversation is
    /// closed, snoozed, pending) reaches the engine as events first, then the result
    /// as [`Request::Attempted`], exactly once.
    pub fn send_platform(&self, job: PlatformJob, metrics: Metrics) {
        let permits = self.permits.clone();
        let results = self.results.clone();
        self.runtime.spawn(async move {
            let PlatformJob {
                seq,
                attempt,
                tenant,
                session,
                body,
                adapter,
            } = job;
            let platform = adapter.platform();
            let made = match permits.acquire_owned().await {
                Ok(_permit) => make(&adapter, &tenant, &body, attempt).await,
                Err(_) => Made::failed_without_call("the server is shutting down"),
            };
            let count = |outcome: &str| {
                Metrics::count_platform(&metrics.platform_actions, platform, outcome, 1)
            };
            if let Some(why) = made.skipped {
                tracing::info!(tenant, session, platform, "nothing posted: {why}");
                count("skipped");
            } else if made.is_made() {
                count("made");
            }
            if let Some(error) = &made.error {
                if error.is_final() {
                    tracing::error!(
                        tenant,
                        conversation = session,
                        platform,
                        "the platform refused the call; not retried (a revoked token, or a deleted conversation?): {error}"
                    );
                } else {
                    tracing::warn!(tenant, conversation = session, platform, "platform call failed: {error}");
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

/// Makes one attempt of an action through `adapter`.
async fn make(adapter: &Adapter, tenant: &str, body: &[u8], attempt: u32) -> Made {
    let now = crate::clock::wall_ms();
    match adapter {
        Adapter::Chatwoot(chatwoot) => match chatwoot.account(tenant) {
            Some(account) => {
                autoclose_platforms::chatwoot::outbound::make(
                    &chatwoot.client,
                    Chatwoot::api(account),
                    body,
                    attempt,
                    now,
                )
                .await
            }
            None => Made::failed_without_call("the tenant is no longer a Chatwoot account"),
        },
        Adapter::RocketChat(rocketchat) => match rocketchat.server(tenant) {
            Some((_, client)) => {
                autoclose_platforms::rocketchat::outbound::make(client, body).await
            }
            None => Made::failed_without_call("the tenant is no longer a Rocket.Chat workspace"),
        },
    }
}

/// One attempt of a chat action through a platform's API.
pub struct PlatformJob {
    /// The callback's sequence number.
    pub seq: u64,
    /// 1 on the first attempt.
    pub attempt: u32,
    /// Its tenant.
    pub tenant: String,
    /// Its session (the platform's conversation or room id).
    pub session: String,
    /// The action, as the callback record holds it.
    pub body: Vec<u8>,
    /// The adapter.
    pub adapter: Adapter,
}
