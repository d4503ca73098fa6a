//! The server's metrics, served at `GET /metrics` in the Prometheus (OpenMetrics)
//! text format. Every name starts with `autoclose_`.

use std::collections::HashMap;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use autoclose_core::TenantStats;

/// A label set with one `outcome` (or `type`) label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    /// The outcome.
    pub outcome: String,
}

/// A label set naming a platform adapter and an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformOutcome {
    /// `chatwoot` or `rocketchat`.
    pub platform: String,
    /// The outcome.
    pub outcome: String,
}

/// A label set naming the event type.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventType {
    /// `session_opened`, `message`, `presence` or `session_closed`.
    pub r#type: String,
}

/// A label set naming the engine shard.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabel {
    /// The shard's index.
    pub shard: String,
}

impl ShardLabel {
    /// The label of shard `index`.
    pub fn of(index: usize) -> Self {
        ShardLabel {
            shard: index.to_string(),
        }
    }
}

/// A label set naming the tenant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabel {
    /// The tenant's name.
    pub tenant: String,
}

/// Every metric, cheap to clone (they share their values).
#[derive(Clone)]
pub struct Metrics {
    /// Events recorded, by type.
    pub events: Family<EventType, Counter>,
    /// Ingest requests by outcome (`accepted`, `bad_request`, `unauthorized`,
    /// `too_large`, `unavailable`).
    pub ingest_requests: Family<Outcome, Counter>,
    /// Chat-action callbacks by outcome (`delivered`, `given_up`).
    pub actions: Family<Outcome, Counter>,
    /// Webhook deliveries by outcome (`delivered`, `failed`).
    pub webhook_deliveries: Family<Outcome, Counter>,
    /// Retries scheduled, by target (`webhook`, `callback`).
    pub retries: Family<Outcome, Counter>,
    /// Sessions remembered (open, and closed ones not yet forgotten), by shard.
    pub sessions: Family<ShardLabel, Gauge>,
    /// Closed sessions forgotten after the retention.
    pub sessions_forgotten: Counter,
    /// Pending timers, by shard.
    pub pending_timers: Family<ShardLabel, Gauge>,
    /// Webhook deliveries under way, by shard.
    pub pending_deliveries: Family<ShardLabel, Gauge>,
    /// Callbacks under way, by shard.
    pub pending_callbacks: Family<ShardLabel, Gauge>,
    /// Plugin hook call latency.
    pub hook_seconds: Histogram,
    /// Store commit latency (one commit per batch).
    pub commit_seconds: Histogram,
    /// Events per commit.
    pub batch_events: Histogram,
    /// Instances replaced after a failure, by tenant.
    pub instance_restarts: Family<TenantLabel, Counter>,
    /// Hook calls that trapped or ran out of time, by tenant.
    pub hook_failures: Family<TenantLabel, Counter>,
    /// Events and timers lost to a failing component, by tenant.
    pub events_dropped: Family<TenantLabel, Counter>,
    /// Reloads by outcome (`ok`; `partial`: some tenants refused and kept what they
    /// ran; `refused`: nothing changed).
    pub reloads: Family<Outcome, Counter>,
    /// Tenants whose component is not running because it failed, by shard.
    pub failing_tenants: Family<ShardLabel, Gauge>,
    /// Shard lease renewals of the PostgreSQL store by outcome (`renewed`; `lost`:
    /// taken over, the node stops serving the shard; `failed`: the database did not
    /// answer).
    pub lease_renewals: Family<Outcome, Counter>,
    /// Shards this node owns (the PostgreSQL store; all of them on redb).
    pub shards_owned: Gauge,
    /// Shards that changed hands on this node, by move (`taken`; `given`: to the node
    /// the placement puts it on; `lost`: taken over, or its store failed).
    pub shard_moves: Family<Outcome, Counter>,
    /// Time from taking a shard's lease to serving it (reading its state and inbox).
    pub takeover_seconds: Histogram,
    /// Commits refused because another node took the shard over.
    pub fenced_commits: Counter,
    /// Events through the shard inboxes, by outcome (`written`: accepted here for a
    /// shard another node owns; `applied` by this node as owner; `refused` by the
    /// owner's check, and dropped).
    pub inbox_events: Family<Outcome, Counter>,
    /// Tenant settings requests of the admin API by outcome (`put`, `delete`,
    /// `rollback`; `refused`: checked and not stored; `stale`: a lost update refused).
    pub tenant_changes: Family<Outcome, Counter>,
    /// Platform webhook deliveries by platform and outcome (`accepted`; `ignored`:
    /// nothing of ours, such as a private note; `unauthorized`: a bad signature or
    /// token, refused with `401`; `bad_request`; `unavailable`).
    pub platform_webhooks: Family<PlatformOutcome, Counter>,
    /// Chat actions made through a platform's API by platform and outcome (`made`;
    /// `skipped`: the conversation was not open, or an earlier attempt had posted;
    /// `retried`; `final`: the platform refused it (401, 403, 404: a revoked token, a
    /// deleted conversation), or it gave up).
    pub platform_actions: Family<PlatformOutcome, Counter>,
    /// Events submitted by a platform's reconciliation (the engine drops those
    /// already applied), and failed rounds under `failed`.
    pub platform_reconciled: Family<PlatformOutcome, Counter>,
    /// The tenant stats already counted, so that counters grow by the difference
    /// (a reload starts the gateway's own counts again).
    seen: std::sync::Arc<std::sync::Mutex<HashMap<(usize, String), TenantStats>>>,
}

impl Metrics {
    /// Creates the metrics and registers them in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let latency = || Histogram::new(exponential_buckets(0.000_001, 4.0, 12));
        let metrics = Metrics {
            events: Family::default(),
            ingest_requests: Family::default(),
            actions: Family::default(),
            webhook_deliveries: Family::default(),
            retries: Family::default(),
            sessions: Family::default(),
            sessions_forgotten: Counter::default(),
            pending_timers: Family::default(),
            pending_deliveries: Family::default(),
            pending_callbacks: Family::default(),
            hook_seconds: latency(),
            commit_seconds: latency(),
            batch_events: Histogram::new(exponential_buckets(1.0, 4.0, 8)),
            instance_restarts: Family::default(),
            hook_failures: Family::default(),
            events_dropped: Family::default(),
            reloads: Family::default(),
            failing_tenants: Family::default(),
            tenant_changes: Family::default(),
            lease_renewals: Family::default(),
            shards_owned: Gauge::default(),
            shard_moves: Family::default(),
            takeover_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            fenced_commits: Counter::default(),
            inbox_events: Family::default(),
            platform_webhooks: Family::default(),
            platform_actions: Family::default(),
            platform_reconciled: Family::default(),
            seen: Default::default(),
        };
        let r = registry;
        r.register(
            "autoclose_events",
            "Events durably recorded",
            metrics.events.clone(),
        );
        r.register(
            "autoclose_ingest_requests",
            "Ingest requests by outcome",
            metrics.ingest_requests.clone(),
        );
        r.register(
            "autoclose_actions",
            "Chat actions sent to the gateway callback, by final outcome",
            metrics.actions.clone(),
        );
        r.register(
            "autoclose_webhook_deliveries",
            "Webhook deliveries by final outcome",
            metrics.webhook_deliveries.clone(),
        );
        r.register(
            "autoclose_retries",
            "Retries scheduled, by target",
            metrics.retries.clone(),
        );
        r.register(
            "autoclose_sessions",
            "Sessions remembered: open ones, and closed ones not yet forgotten",
            metrics.sessions.clone(),
        );
        r.register(
            "autoclose_sessions_forgotten",
            "Closed sessions forgotten after --forget-closed-after",
            metrics.sessions_forgotten.clone(),
        );
        r.register(
            "autoclose_pending_timers",
            "Timers waiting to fire",
            metrics.pending_timers.clone(),
        );
        r.register(
            "autoclose_pending_deliveries",
            "Webhook deliveries under way",
            metrics.pending_deliveries.clone(),
        );
        r.register(
            "autoclose_pending_callbacks",
            "Chat actions on their way to the gateway",
            metrics.pending_callbacks.clone(),
        );
        r.register(
            "autoclose_hook_duration_seconds",
            "Plugin hook call latency",
            metrics.hook_seconds.clone(),
        );
        r.register(
            "autoclose_commit_duration_seconds",
            "Store commit latency",
            metrics.commit_seconds.clone(),
        );
        r.register(
            "autoclose_batch_events",
            "Events per group commit",
            metrics.batch_events.clone(),
        );
        r.register(
            "autoclose_instance_restarts",
            "Plugin instances replaced after a failure",
            metrics.instance_restarts.clone(),
        );
        r.register(
            "autoclose_hook_failures",
            "Plugin hook calls that trapped or ran out of time",
            metrics.hook_failures.clone(),
        );
        r.register(
            "autoclose_events_dropped",
            "Events and timers lost to a failing component",
            metrics.events_dropped.clone(),
        );
        r.register(
            "autoclose_reloads",
            "Configuration reloads by outcome",
            metrics.reloads.clone(),
        );
        r.register(
            "autoclose_failing_tenants",
            "Tenants whose component is not running because it failed (their events are held)",
            metrics.failing_tenants.clone(),
        );
        r.register(
            "autoclose_lease_renewals",
            "Shard lease renewals of the PostgreSQL store by outcome",
            metrics.lease_renewals.clone(),
        );
        r.register(
            "autoclose_shards_owned",
            "Shards this node owns",
            metrics.shards_owned.clone(),
        );
        r.register(
            "autoclose_shard_moves",
            "Shards taken, given away or lost by this node",
            metrics.shard_moves.clone(),
        );
        r.register(
            "autoclose_takeover_duration_seconds",
            "Time from taking a shard's lease to serving it",
            metrics.takeover_seconds.clone(),
        );
        r.register(
            "autoclose_fenced_commits",
            "Commits refused because another node took the shard over",
            metrics.fenced_commits.clone(),
        );
        r.register(
            "autoclose_inbox_events",
            "Events through the shard inboxes by outcome",
            metrics.inbox_events.clone(),
        );
        r.register(
            "autoclose_tenant_changes",
            "Tenant settings changes through the admin API by outcome",
            metrics.tenant_changes.clone(),
        );
        r.register(
            "autoclose_platform_webhooks",
            "Platform webhook deliveries by platform and outcome",
            metrics.platform_webhooks.clone(),
        );
        r.register(
            "autoclose_platform_actions",
            "Chat actions made through a platform's API by platform and outcome",
            metrics.platform_actions.clone(),
        );
        r.register(
            "autoclose_platform_reconciled",
            "Events submitted by a platform's reconciliation (and failed rounds)",
            metrics.platform_reconciled.clone(),
        );
        metrics
    }

    /// Counts `n` of `family` under `label`.
    pub fn count(family: &Family<Outcome, Counter>, label: &str, n: u64) {
        family
            .get_or_create(&Outcome {
                outcome: label.to_owned(),
            })
            .inc_by(n);
    }

    /// Counts `n` of `family` for `platform` under `outcome`.
    pub fn count_platform(
        family: &Family<PlatformOutcome, Counter>,
        platform: &str,
        outcome: &str,
        n: u64,
    ) {
        family
            .get_or_create(&PlatformOutcome {
                platform: platform.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc_by(n);
    }

    /// Records one hook call's duration.
    pub fn observe_hook(&self, took: Duration) {
        self.hook_seconds.observe(took.as_secs_f64());
    }

    /// Sets `shard`'s gauge in `family` to `value`.
    pub fn set(family: &Family<ShardLabel, Gauge>, shard: usize, value: usize) {
        family
            .get_or_create(&ShardLabel::of(shard))
            .set(i64::try_from(value).unwrap_or(i64::MAX));
    }

    /// Adds what `tenant`'s counters on `shard` grew by since the last call.
    pub fn tenant_stats(&self, shard: usize, tenant: &str, stats: TenantStats) {
        let Ok(mut seen) = self.seen.lock() else {
            return;
        };
        let before = seen.entry((shard, tenant.to_owned())).or_default();
        let label = TenantLabel {
            tenant: tenant.to_owned(),
        };
        let grow = |family: &Family<TenantLabel, Counter>, now: u64, then: u64| {
            if now > then {
                family.get_or_create(&label).inc_by(now - then);
            }
        };
        grow(&self.instance_restarts, stats.restarts, before.restarts);
        grow(&self.hook_failures, stats.hooks_failed, before.hooks_failed);
        grow(
            &self.events_dropped,
            stats.events_dropped,
            before.events_dropped,
        );
        let delivered = stats.deliveries_ok.saturating_sub(before.deliveries_ok);
        let failed = stats
            .deliveries_failed
            .saturating_sub(before.deliveries_failed);
        let retries = stats.retries.saturating_sub(before.retries);
        Self::count(&self.webhook_deliveries, "delivered", delivered);
        Self::count(&self.webhook_deliveries, "failed", failed);
        Self::count(&self.retries, "webhook", retries);
        *before = stats;
    }

    /// Forgets the tenant stats counted for `shard`: after a reload its gateway counts
    /// from zero.
    pub fn reset_tenant_baseline(&self, shard: usize) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.retain(|(s, _), _| *s != shard);
        }
    }
}
