//! The engine: one thread that owns the core and the store, applies requests in
//! arrival order, fires timers on the wall clock and commits in groups.
//!
//! One round: wait for the first request (or the next due time), take whatever else
//! has arrived (up to [`MAX_REQUESTS_PER_ROUND`]), apply it all, fire what is due,
//! then write every change in one transaction. Only then are the ingest requests of
//! the round acknowledged and the round's webhook attempts and chat actions sent: a
//! crash never loses an acknowledged event, and anything sent is already recorded,
//! so a resend after a restart carries the same id. Under load rounds grow, so one
//! disk sync covers many events (group commit).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use autoclose_core::action::ActionKind;
use autoclose_core::event::GatewayEvent;
use autoclose_core::{Core, Restored, TenantFailure};

use crate::clock::wall_ms;
use autoclose_runtime::RequestId;
use autoclose_store::{Batch, Store, StoreError, Stored};
use autoclose_webhook::outbound::{Attempt, Outbound};
use autoclose_webhook::retry::{AttemptResult, RetryPolicy};
use tokio::sync::oneshot;

use crate::callbacks::{Callbacks, Settled, action_type};
use crate::dispatch::{Dispatcher, PlatformJob};
use crate::gateway::{Gateway, Route};
use crate::metrics::Metrics;
use crate::request::{Refused, Request, Target};

/// Most requests applied in one round (one commit).
pub const MAX_REQUESTS_PER_ROUND: usize = 4096;

/// How often an engine that owns a shard of a shared store looks into the shard's
/// inbox when nothing else wakes it: the longest an event accepted by another node
/// waits before it is applied.
pub const INBOX_POLL: Duration = Duration::from_millis(100);

/// What the HTTP side may read of the engine's state.
#[derive(Debug, Default)]
pub struct Health {
    /// False once the engine has stopped (store failure or shutdown).
    pub running: AtomicBool,
    /// Wall-clock ms of the last successful commit.
    pub last_commit_ms: AtomicU64,
    /// The tenants whose component is failing, as of the last round.
    pub failing: Mutex<Vec<TenantFailure>>,
    /// Whether this node serves the shard: ingest hands its events to the engine
    /// then, and to the shard's inbox otherwise.
    pub owned: AtomicBool,
}

/// A chat action due now, as it leaves the engine.
enum Outgoing {
    /// A request to the generic callback.
    Http(Attempt),
    /// REST calls of a platform adapter.
    Platform(PlatformJob),
}

/// Collects the core's attempts; the engine sends them after the commit.
#[derive(Clone, Default)]
pub struct Collector(Arc<Mutex<Vec<Attempt>>>);

impl Collector {
    fn take(&self) -> Vec<Attempt> {
        self.0
            .lock()
            .map(|mut v| std::mem::take(&mut *v))
            .unwrap_or_default()
    }
}

impl Outbound for Collector {
    fn attempt(&mut self, attempt: Attempt) -> Option<AttemptResult> {
        if let Ok(mut pending) = self.0.lock() {
            pending.push(attempt);
        }
        None
    }
}

/// The engine's parts.
pub struct Engine {
    core: Core,
    /// The shard's store while this node serves it; `None` while another node does.
    store: Option<Box<dyn Store>>,
    /// On a shared store: told of a shard this engine stopped serving on its own (its
    /// commit refused or failed), so that the node takes it again or lets it go. On a
    /// store of its own (`None`), a failing commit stops the engine.
    lost: Option<tokio::sync::mpsc::UnboundedSender<usize>>,
    /// Inbox entries applied since the last commit.
    inbox_applied: Vec<u64>,
    callbacks: Callbacks,
    gateway: Gateway,
    collector: Collector,
    dispatcher: Dispatcher,
    metrics: Metrics,
    health: Arc<Health>,
    /// Attempts handed to the dispatcher whose result has not come back.
    outstanding: usize,
    /// Closed sessions are forgotten this long after their close.
    forget_closed_after: Duration,
    /// Changes of a core replaced by a reload in this round, not yet committed.
    carried: Option<autoclose_core::records::Changes>,
    /// This engine's shard, for metric labels.
    shard: usize,
    /// Steps of history each session keeps (see [`Engine::keep_history`]).
    history_steps: usize,
}

impl Engine {
    /// An engine over a core already restored from `store` (`None`: the shard is not
    /// served here until [`Request::Own`]). The core must send its attempts to
    /// `collector`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        mut core: Core,
        store: Option<Box<dyn Store>>,
        callbacks: Callbacks,
        gateway: Gateway,
        collector: Collector,
        dispatcher: Dispatcher,
        metrics: Metrics,
        health: Arc<Health>,
    ) -> Self {
        instrument(&mut core, &metrics);
        // Health tells about failing tenants from the first request on.
        if let Ok(mut failing) = health.failing.lock() {
            *failing = core.failing_tenants();
        }
        health.owned.store(store.is_some(), Ordering::SeqCst);
        Engine {
            core,
            store,
            lost: None,
            inbox_applied: Vec::new(),
            callbacks,
            gateway,
            collector,
            dispatcher,
            metrics,
            health,
            outstanding: 0,
            forget_closed_after: super::DEFAULT_FORGET_CLOSED_AFTER,
            carried: None,
            shard: 0,
            history_steps: 0,
        }
    }

    /// Labels this engine's metrics as shard `index`.
    pub fn shard(mut self, index: usize) -> Self {
        self.shard = index;
        self
    }

    /// On a shared store: a failing commit makes the engine stop serving the shard
    /// (told to `lost`) instead of stopping it, and the inbox is polled.
    pub fn shared(mut self, lost: tokio::sync::mpsc::UnboundedSender<usize>) -> Self {
        self.lost = Some(lost);
        self
    }

    /// Keeps the last `steps` steps of every session's history (0: none), for the
    /// console, in this core and in every core a reload brings.
    pub fn keep_history(mut self, steps: usize) -> Self {
        self.history_steps = steps;
        self.core.keep_history(steps);
        self
    }

    /// Forgets closed sessions `after` their close instead of after the default.
    pub fn forget_closed_after(mut self, after: Duration) -> Self {
        self.forget_closed_after = after;
        self
    }

    /// Runs until asked to stop or until the store fails; returns the store error in
    /// the latter case.
    pub fn run(mut self, requests: Receiver<Request>) -> Result<(), StoreError> {
        self.health.running.store(true, Ordering::SeqCst);
        let result = self.run_rounds(&requests);
        self.health.running.store(false, Ordering::SeqCst);
        // Refuse whatever is still queued rather than leave it hanging.
        while let Ok(request) = requests.try_recv() {
            if let Request::Ingest { reply, .. } = request {
                let _ = reply.send(Err(Refused::Unavailable));
            }
        }
        result
    }

    fn run_rounds(&mut self, requests: &Receiver<Request>) -> Result<(), StoreError> {
        // What was restored may be due already: fire it and send it first.
        self.round(Vec::new())?;
        loop {
            let mut wait = self
                .next_due()
                .map(|due| Duration::from_millis(due.saturating_sub(wall_ms())));
            if self.lost.is_some() && self.store.is_some() {
                wait = Some(wait.map_or(INBOX_POLL, |w| w.min(INBOX_POLL)));
            }
            let first = match wait {
                Some(wait) => match requests.recv_timeout(wait) {
                    Ok(request) => Some(request),
                    Err(RecvTimeoutError::Timeout) => None,
                    Err(RecvTimeoutError::Disconnected) => return Ok(()),
                },
                None => match requests.recv() {
                    Ok(request) => Some(request),
                    Err(_) => return Ok(()),
                },
            };
            let mut round: Vec<Request> = first.into_iter().collect();
            while round.len() < MAX_REQUESTS_PER_ROUND {
                match requests.try_recv() {
                    Ok(request) => round.push(request),
                    Err(_) => break,
                }
            }
            if let Some(grace) = round.iter().find_map(|r| match r {
                Request::Stop { grace } => Some(*grace),
                _ => None,
            }) {
                self.round(round)?;
                return self.drain(requests, grace);
            }
            self.round(round)?;
        }
    }

    fn next_due(&self) -> Option<u64> {
        [self.core.next_due(), self.callbacks.next_due()]
            .into_iter()
            .flatten()
            .min()
    }

    /// Applies a round of requests, fires what is due, commits, then answers and
    /// sends.
    fn round(&mut self, requests: Vec<Request>) -> Result<(), StoreError> {
        let mut replies = Vec::new();
        let mut disowning = Vec::new();
        // What other nodes accepted for the shard comes first: it was acknowledged
        // before anything in this round was sent.
        let mut events_in_round = match self.read_inbox() {
            Ok(applied) => applied,
            Err(e) => return self.store_failed(e, replies),
        };
        for request in requests {
            match request {
                Request::Ingest { events, reply } => {
                    if self.store.is_none() {
                        let _ = reply.send(Err(Refused::NotOwned));
                        continue;
                    }
                    let now = wall_ms();
                    if let Err((index, source)) = self.core.check(now, &events) {
                        let _ = reply.send(Err(Refused::Event { index, source }));
                        continue;
                    }
                    self.apply(now, &events);
                    events_in_round += events.len() as u64;
                    replies.push((reply, events.len()));
                }
                Request::Attempted { target, result } => self.attempted(target, result),
                Request::Own {
                    store,
                    stored,
                    reply,
                } => {
                    let restored = self.own(store, *stored);
                    let _ = reply.send(restored);
                    match self.read_inbox() {
                        Ok(applied) => events_in_round += applied,
                        Err(e) => return self.store_failed(e, replies),
                    }
                }
                Request::Disown { reply } => disowning.push(reply),
                Request::Check { reply, .. } if self.store.is_none() => {
                    let _ = reply.send(Err(Refused::NotOwned));
                }
                Request::Check { events, reply } => {
                    let checked = self
                        .core
                        .check(wall_ms(), &events)
                        .map_err(|(index, source)| Refused::Event { index, source });
                    let _ = reply.send(checked);
                }
                Request::Reload {
                    core,
                    gateway,
                    reply,
                } => {
                    let restored = self.reload(*core, *gateway);
                    let _ = reply.send(restored);
                }
                Request::ReplaceTenant {
                    tenant,
                    component,
                    reply,
                } => {
                    self.core.advance_to(wall_ms());
                    let started = self.core.replace_tenant(&tenant, component);
                    self.publish();
                    let _ = reply.send(started);
                }
                Request::Inspect { query, reply } => {
                    let served = self.store.is_some();
                    let _ = reply.send(crate::inspect::answer(&self.core, served, query));
                }
                Request::Stop { .. } => {}
            }
        }
        let now = wall_ms();
        self.core.advance_to(now);
        let retention = self.forget_closed_after.as_millis() as u64;
        let forgotten = self.core.forget_closed(now.saturating_sub(retention));
        self.metrics.sessions_forgotten.inc_by(forgotten as u64);
        self.collect_actions();
        let callback_attempts = self.due_callbacks();
        let webhook_attempts = self.collector.take();
        if let Err(e) = self.commit(events_in_round) {
            return self.store_failed(e, replies);
        }
        for (reply, count) in replies {
            let _ = reply.send(Ok(count));
        }
        if !disowning.is_empty() {
            // Given away: what this round recorded is sent by the next owner, with
            // the same ids, rather than by both.
            self.forget();
            for reply in disowning {
                let _ = reply.send(());
            }
            return Ok(());
        }
        self.outstanding += webhook_attempts.len() + callback_attempts.len();
        for attempt in webhook_attempts {
            self.dispatcher
                .send(Target::Webhook(attempt.request), attempt);
        }
        for outgoing in callback_attempts {
            match outgoing {
                Outgoing::Http(attempt) => self
                    .dispatcher
                    .send(Target::Callback(attempt.request), attempt),
                Outgoing::Platform(job) => self.dispatcher.send_platform(job, self.metrics.clone()),
            }
        }
        self.publish();
        Ok(())
    }

    /// After a stop: no more timers or new sends; wait up to `grace` for the attempts
    /// under way, record their results, and end.
    fn drain(&mut self, requests: &Receiver<Request>, grace: Duration) -> Result<(), StoreError> {
        let deadline = Instant::now() + grace;
        while self.outstanding > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(
                    in_flight = self.outstanding,
                    "shutdown grace period over: attempts still under way are resent after the restart, with the same ids"
                );
                break;
            }
            match requests.recv_timeout(left) {
                Ok(Request::Attempted { target, result }) => self.attempted(target, result),
                Ok(Request::Ingest { reply, .. }) => {
                    let _ = reply.send(Err(Refused::Unavailable));
                }
                Ok(Request::Check { reply, .. }) => {
                    let _ = reply.send(Err(Refused::Unavailable));
                }
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        // Retries the results asked for stay scheduled in the store, for after the
        // restart; what the plugin did in answer is recorded and sent after it.
        self.collect_actions();
        self.collector.take();
        self.commit(0)?;
        self.publish();
        Ok(())
    }

    /// The store failed (or refused a commit after a takeover): nothing of the round
    /// is acknowledged or sent. On a store of its own the engine stops (a restart
    /// resumes from the last commit); on a shared one it stops serving the shard and
    /// says so, and the node takes the shard again from the store once it can.
    fn store_failed(
        &mut self,
        e: StoreError,
        replies: Vec<(oneshot::Sender<Result<usize, Refused>>, usize)>,
    ) -> Result<(), StoreError> {
        for (reply, _) in replies {
            let _ = reply.send(Err(Refused::Unavailable));
        }
        let Some(lost) = &self.lost else {
            tracing::error!("{e}: stopping; restart to resume from the last commit");
            return Err(e);
        };
        if matches!(e, StoreError::Fenced { .. }) {
            self.metrics.fenced_commits.inc();
        }
        tracing::error!(
            shard = self.shard,
            "{e}: this node stops serving the shard; what was not committed is not sent, and the shard is served again from the store"
        );
        let _ = lost.send(self.shard);
        self.forget();
        Ok(())
    }

    /// Starts serving the shard from what `store` held.
    fn own(&mut self, store: Box<dyn Store>, stored: Stored) -> Restored {
        self.forget();
        let (restored, callbacks) = restore(&mut self.core, stored, wall_ms());
        for line in &restored.dropped {
            tracing::warn!(shard = self.shard, "left out of the store: {line}");
        }
        self.callbacks = callbacks;
        self.store = Some(store);
        self.health.owned.store(true, Ordering::SeqCst);
        self.publish();
        restored
    }

    /// Forgets the shard's state: it is served elsewhere (or again later) from the
    /// store. Results of attempts still on the wire are ignored when they come back.
    fn forget(&mut self) {
        self.health.owned.store(false, Ordering::SeqCst);
        self.store = None;
        self.core.forget_everything();
        self.callbacks = Callbacks::restore(Vec::new(), 0, wall_ms());
        self.carried = None;
        self.inbox_applied.clear();
        self.collector.take();
        self.publish();
    }

    /// Applies the shard's inbox (events other nodes accepted for it); returns how
    /// many events were applied. Entries the core refuses (a message for a session
    /// never opened) are dropped and counted: they were acknowledged elsewhere, so
    /// there is nobody to tell.
    fn read_inbox(&mut self) -> Result<u64, StoreError> {
        let Some(store) = self.store.as_mut() else {
            return Ok(0);
        };
        if self.lost.is_none() {
            return Ok(0);
        }
        let entries = store.inbox()?;
        let mut applied = 0u64;
        for entry in entries {
            let now = wall_ms();
            let count = entry.events.len() as u64;
            match self.core.check(now, &entry.events) {
                Ok(()) => {
                    self.apply(now, &entry.events);
                    applied += count;
                    Metrics::count(&self.metrics.inbox_events, "applied", count);
                }
                Err((index, source)) => {
                    Metrics::count(&self.metrics.inbox_events, "refused", count);
                    tracing::warn!(
                        shard = self.shard,
                        seq = entry.seq,
                        "events accepted by another node are refused here and dropped: events[{index}]: {source}"
                    );
                }
            }
            self.inbox_applied.push(entry.seq);
        }
        Ok(applied)
    }

    /// Applies checked events and counts them.
    fn apply(&mut self, now: u64, events: &[GatewayEvent]) {
        for event in events {
            if let Err(e) = self.core.handle(now, event) {
                tracing::warn!("event refused after its check: {e}");
            }
            self.metrics
                .events
                .get_or_create(&super::metrics::EventType {
                    r#type: event_type(event).to_owned(),
                })
                .inc();
        }
    }

    fn attempted(&mut self, target: Target, result: AttemptResult) {
        self.outstanding = self.outstanding.saturating_sub(1);
        match target {
            Target::Webhook(request) => self.core.complete_attempt(RequestId(request), result),
            Target::Callback(seq) => {
                let now = wall_ms();
                let Some((tenant, session, id, attempt, action)) =
                    self.callbacks.get(seq).map(|r| {
                        let action = action_type(r);
                        (
                            r.tenant.clone(),
                            r.session.clone(),
                            r.id.clone(),
                            r.attempts,
                            action,
                        )
                    })
                else {
                    return;
                };
                let platform = match self.gateway.route(&tenant) {
                    Route::Platform(adapter) => Some(adapter.platform()),
                    _ => None,
                };
                let policy = self.gateway.retry(&tenant);
                let settled = self.callbacks.settle(seq, &result, now, &policy);
                if let Some(outcome) = settled.describe(&result) {
                    self.core.record_action_attempt(
                        &tenant,
                        &session,
                        (&id, &action),
                        attempt,
                        outcome,
                    );
                }
                match settled {
                    Settled::Delivered => Metrics::count(&self.metrics.actions, "delivered", 1),
                    Settled::Retry(at) => {
                        Metrics::count(&self.metrics.retries, "callback", 1);
                        if let Some(platform) = platform {
                            Metrics::count_platform(
                                &self.metrics.platform_actions,
                                platform,
                                "retried",
                                1,
                            );
                        }
                        tracing::info!(
                            seq,
                            tenant,
                            session,
                            retry_at_ms = at,
                            "chat action failed ({result}); retrying"
                        );
                    }
                    Settled::GaveUp(reason) => {
                        Metrics::count(&self.metrics.actions, "given_up", 1);
                        if let Some(platform) = platform {
                            Metrics::count_platform(
                                &self.metrics.platform_actions,
                                platform,
                                "final",
                                1,
                            );
                        }
                        tracing::warn!(seq, tenant, session, "gave up on a chat action: {reason}");
                    }
                    Settled::Unknown => {}
                }
            }
        }
    }

    fn reload(&mut self, mut core: Core, gateway: Gateway) -> Restored {
        // What the old core did in this round is kept: its actions become
        // callbacks, its changes are committed with the round.
        self.collect_actions();
        let old = self.core.take_changes();
        match &mut self.carried {
            Some(carried) => carried.absorb(old),
            None => self.carried = Some(old),
        }
        let snapshot = self.core.snapshot();
        let now = wall_ms();
        core.track_changes();
        core.keep_history(self.history_steps);
        let restored = core.restore(snapshot, now);
        for line in &restored.dropped {
            tracing::warn!("reload: left out {line}");
        }
        instrument(&mut core, &self.metrics);
        // Deliveries the old core left pending on the wire stay pending: their
        // results come back by request id, which the new core keeps.
        self.publish();
        self.metrics.reset_tenant_baseline(self.shard);
        self.core = core;
        self.gateway = gateway;
        restored
    }

    /// Turns the gateway's posts and closes into callbacks.
    fn collect_actions(&mut self) {
        for action in self.core.drain_actions() {
            match &action.kind {
                ActionKind::PostMessage { tenant, .. }
                | ActionKind::CloseSession { tenant, .. } => {
                    let policy = self.gateway.retry(tenant);
                    self.callbacks.push(&action, &policy);
                }
                ActionKind::Webhook {
                    tenant,
                    webhook,
                    id,
                    ..
                } => tracing::debug!(tenant, webhook, id, "webhook delivery queued"),
                ActionKind::WebhookAttempt {
                    tenant,
                    webhook,
                    id,
                    attempt,
                    result,
                    outcome,
                    ..
                } => tracing::debug!(
                    tenant,
                    webhook,
                    id,
                    attempt,
                    result,
                    outcome,
                    "webhook attempt"
                ),
            }
        }
    }

    /// The callbacks due now, as attempts on the wire (the generic callback) or as
    /// platform jobs (REST calls).
    fn due_callbacks(&mut self) -> Vec<Outgoing> {
        let now = wall_ms();
        let mut due = Vec::new();
        while let Some(next) = self.callbacks.pop_due(now) {
            let record = match next {
                Ok(record) => record,
                Err((id, reason)) => {
                    Metrics::count(&self.metrics.actions, "given_up", 1);
                    tracing::warn!(id, "gave up on a chat action: {reason}");
                    continue;
                }
            };
            match self.gateway.route(&record.tenant) {
                Route::Callback(callback) => {
                    let endpoint = &callback.endpoint;
                    let kind = action_type(&record);
                    due.push(Outgoing::Http(Attempt {
                        request: record.seq,
                        number: record.attempts,
                        webhook: "gateway".into(),
                        event_type: kind,
                        id: record.id,
                        method: endpoint.method.clone(),
                        url: endpoint.url.clone(),
                        headers: endpoint
                            .headers
                            .iter()
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                        secrets: endpoint.secrets.clone().into(),
                        body: record.body.into(),
                        timeout_ms: endpoint.timeout_ms,
                        allow_private_networks: true,
                    }));
                }
                Route::Platform(adapter) => due.push(Outgoing::Platform(PlatformJob {
                    seq: record.seq,
                    attempt: record.attempts,
                    tenant: record.tenant,
                    session: record.session,
                    body: record.body,
                    adapter,
                })),
                Route::Nowhere => {
                    // Settled at once: nothing can take it.
                    let refused = AttemptResult::Refused(format!(
                        "tenant {:?} has no gateway (no gateway.actions_url, and no platform serves it)",
                        record.tenant
                    ));
                    self.callbacks
                        .settle(record.seq, &refused, now, &RetryPolicy::default());
                    Metrics::count(&self.metrics.actions, "given_up", 1);
                    tracing::warn!(
                        tenant = record.tenant,
                        "a chat action has no gateway: dropped"
                    );
                }
            }
        }
        due
    }

    fn commit(&mut self, events: u64) -> Result<(), StoreError> {
        let (callbacks, callbacks_ended) = self.callbacks.take_changes();
        let changes = match self.carried.take() {
            Some(mut carried) => {
                carried.absorb(self.core.take_changes());
                carried
            }
            None => self.core.take_changes(),
        };
        let Some(store) = self.store.as_mut() else {
            // Not served here: nothing of it is this node's to write.
            return Ok(());
        };
        let batch = Batch {
            core: changes,
            callbacks,
            callbacks_ended,
            next_callback: self.callbacks.next_seq(),
            inbox_applied: std::mem::take(&mut self.inbox_applied),
        };
        if batch.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        store.commit(&batch)?;
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        if events > 0 {
            self.metrics.batch_events.observe(events as f64);
        }
        self.health
            .last_commit_ms
            .store(wall_ms(), Ordering::Relaxed);
        Ok(())
    }

    fn publish(&self) {
        let (m, shard) = (&self.metrics, self.shard);
        Metrics::set(&m.pending_timers, shard, self.core.pending_timers());
        Metrics::set(&m.pending_deliveries, shard, self.core.deliveries_pending());
        Metrics::set(&m.pending_callbacks, shard, self.callbacks.len());
        Metrics::set(&m.sessions, shard, self.core.sessions_seen());
        let failing = self.core.failing_tenants();
        Metrics::set(&m.failing_tenants, shard, failing.len());
        if let Ok(mut published) = self.health.failing.lock() {
            *published = failing;
        }
        for tenant in self.core.tenant_names() {
            if let Some(stats) = self.core.tenant_stats(tenant) {
                m.tenant_stats(shard, tenant, stats);
            }
        }
    }
}

/// Puts a shard's stored state into `core` (tracking changes) and its callbacks into
/// a queue, at `now`. Attempts that were on the wire when the state was written (a
/// crash, or another node serving the shard) are made again, with their ids.
pub fn restore(core: &mut Core, mut stored: Stored, now: u64) -> (Restored, Callbacks) {
    for delivery in &mut stored.core.deliveries {
        delivery.next_at.get_or_insert(now);
    }
    core.track_changes();
    let restored = core.restore(stored.core, now);
    let callbacks = Callbacks::restore(stored.callbacks, stored.next_callback, now);
    (restored, callbacks)
}

/// Turns on what an engine needs of its core: change tracking, and hook timings
/// into the metrics.
fn instrument(core: &mut Core, metrics: &Metrics) {
    let observer = metrics.clone();
    core.track_changes();
    core.set_hook_observer(Box::new(move |took| observer.observe_hook(took)));
}

/// The `type` of an event, as in the ingest schema.
pub fn event_type(event: &GatewayEvent) -> &'static str {
    match event {
        GatewayEvent::SessionOpened(_) => "session_opened",
        GatewayEvent::Message(_) => "message",
        GatewayEvent::Presence(_) => "presence",
        GatewayEvent::SessionClosed(_) => "session_closed",
        GatewayEvent::Hold(_) => "hold",
        GatewayEvent::Queued(_) => "queued",
        GatewayEvent::Transferred(_) => "transferred",
    }
}
