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
}
