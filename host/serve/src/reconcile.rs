//! Reconciliation's schedule: every platform adapter reads back, now and then, what
//! its webhooks would have said (a delivery that reached no node is otherwise gone),
//! and hands it to the engines, which drop what they already applied.
//!
//! What is read and how it maps is each adapter's ([`crate::chatwoot`],
//! [`crate::rocketchat`]); this module says when, and submits.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::state::AppState;

/// How often the schedule looks at the configuration (a reload may add, drop or
/// retime an adapter).
const TICK: Duration = Duration::from_secs(5);

/// Reconciles every adapter at start and then every `reconcile_every` of its own
/// (`0s`: at start only), for as long as the server runs. On a cluster only the node
/// serving shard 0 does, so the API is read once per round, not once per node.
pub async fn forever(state: AppState) {
    let mut chatwoot = Schedule::default();
    let mut rocketchat = Schedule::default();
    loop {
        let ours = state.cluster.is_none() || state.health[0].owned.load(Ordering::SeqCst);
        if ours {
            if let Some(adapter) = state.access.chatwoot() {
                let every = adapter.settings.timing.reconcile_every_ms;
                if chatwoot.due(every) {
                    crate::chatwoot::reconcile_once(&state, &adapter).await;
                    chatwoot.ran();
                }
            }
            if let Some(adapter) = state.access.rocketchat() {
                let every = adapter.settings.timing.reconcile_every_ms;
                if rocketchat.due(every) {
                    crate::rocketchat::reconcile_once(&state, &adapter).await;
                    rocketchat.ran();
                }
            }
        }
        tokio::time::sleep(TICK).await;
    }
}

/// When one adapter last ran.
#[derive(Default)]
struct Schedule {
    last: Option<Instant>,
}

impl Schedule {
    /// Whether a round is due, every `every_ms` (`0`: once).
    fn due(&self, every_ms: u64) -> bool {
        match self.last {
            None => true,
            Some(_) if every_ms == 0 => false,
            Some(last) => last.elapsed() >= Duration::from_millis(every_ms),
        }
    }

    fn ran(&mut self) {
        self.last = Some(Instant::now());
    }
}
