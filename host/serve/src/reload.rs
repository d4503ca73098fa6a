//! Building the cores from the configuration file, at start and on reload.
//!
//! One tenant never stops another. A tenant whose component does not load, traps or
//! runs out of time in `configure`, or refuses its settings, is kept failed (its events
//! held, its instance tried again on the failure back-off) while the others run; at
//! start, `--strict` refuses instead.
//!
//! A reload (`SIGHUP` or `POST /v1/admin/reload`) builds complete new cores off the
//! engine thread, tenant by tenant: a tenant whose new settings or component fail keeps
//! the settings it ran before, the others take theirs. Only a host-level error (the
//! file unreadable, a bad `gateway` or `ingest` section, the default component) refuses
//! the whole reload, leaving the running cores untouched. The engines then swap the new
//! cores in, carrying sessions, pending timers, deliveries and held events over.

use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{Mutex, oneshot};

use autoclose_config::{GatewayCallback, HostConfig, Ingest};
use autoclose_core::{Core, PluginComponent, Runtime, start};

use crate::ServeError;
use crate::engine::Collector;
use crate::metrics::Metrics;
use crate::request::{EngineSender, Request};

/// Cores built from the files, ready to run.
pub struct Built {
    /// One configured core per shard (nothing restored yet).
    pub cores: Vec<Core>,
    /// The gateway callback settings.
    pub callback: GatewayCallback,
    /// The ingest settings.
    pub ingest: Ingest,
    /// The wasmtime runtime it runs on.
    pub runtime: Arc<Runtime>,
    /// The default component.
    pub default: Arc<PluginComponent>,
    /// The configuration the cores run: the file's, with the previous settings of the
    /// tenants whose new ones were refused.
    pub config: HostConfig,
    /// The tenants whose settings from the file were refused, with why.
    pub refused: Vec<TenantRefusal>,
}

/// A tenant whose settings were refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantRefusal {
    /// The tenant.
    pub tenant: String,
    /// Why, naming the path in the file.
    pub error: String,
    /// Whether it runs the settings it ran before (on a reload); otherwise it is held
    /// failed until its settings are fixed.
    pub kept_previous: bool,
}

/// What a reload starts from: what is running.
pub struct Previous<'a> {
    /// The runtime, kept when the limits did not change.
    pub runtime: &'a Arc<Runtime>,
    /// The default component, kept with the runtime.
    pub default: &'a Arc<PluginComponent>,
    /// The configuration running.
    pub config: &'a HostConfig,
}

/// The files the cores are built from.
#[derive(Clone, Debug)]
pub struct Sources {
    /// The operator configuration.
    pub config: PathBuf,
    /// A component to run instead of the built-in plugin.
    pub plugin: Option<PathBuf>,
    /// The built-in component (the binary's auto-close), for tenants that name none
    /// when `plugin` is not given.
    pub built_in: &'static [u8],
}

/// Reads the files and builds one core per collector (per shard), whose attempts
/// go to that collector. A runtime with the same limits is reused (with its built-in
/// component, which cannot change). A tenant that fails is held failed; on a reload
/// (`previous`), a tenant that ran before and whose new settings fail is built with its
/// previous settings instead.
pub fn build(
    sources: &Sources,
    previous: Option<Previous<'_>>,
    collectors: &[Collector],
) -> Result<Built, ServeError> {
    let config = HostConfig::load(&sources.config)?;
    let Some(callback) = config.gateway.clone() else {
        return Err(ServeError::NoCallback {
            file: sources.config.clone(),
        });
    };
    let reuse = previous
        .as_ref()
        .filter(|p| start::runtime_fits(p.runtime, &config));
    let runtime = match reuse {
        Some(p) => p.runtime.clone(),
        None => start::runtime_for(&config)?,
    };
    // The built-in component cannot change while the process runs: a kept runtime
    // keeps it compiled.
    let default = match (&sources.plugin, reuse) {
        (None, Some(p)) => p.default.clone(),
        (plugin, _) => start::default_component(&runtime, plugin.as_deref(), sources.built_in)?,
    };
    let start_cores = |config: &HostConfig| {
        let mut failures = Vec::new();
        let cores: Vec<Core> = collectors
            .iter()
            .enumerate()
            .map(|(shard, collector)| {
                let (core, failed) = Core::holding_failures(
                    runtime.clone(),
                    config,
                    default.clone(),
                    Box::new(collector.clone()),
                );
                // Every shard runs the same tenants and fails the same way.
                if shard == 0 {
                    failures = failed;
                }
                core
            })
            .collect();
        (cores, failures)
    };
    let (mut cores, failures) = start_cores(&config);
    let mut refused: Vec<TenantRefusal> = failures
        .iter()
        .map(|failure| TenantRefusal {
            tenant: failure.tenant().to_owned(),
            error: failure.to_string(),
            kept_previous: false,
        })
        .collect();
    let mut applied = config;
    if let Some(previous) = &previous {
        let mut fell_back = false;
        for refusal in &mut refused {
            let before = previous
                .config
                .tenants
                .iter()
                .find(|t| t.name == refusal.tenant);
            let slot = applied
                .tenants
                .iter_mut()
                .find(|t| t.name == refusal.tenant);
            if let (Some(before), Some(slot)) = (before, slot)
                && before != slot
            {
                *slot = before.clone();
                refusal.kept_previous = true;
                fell_back = true;
            }
        }
        if fell_back {
            let (again, still) = start_cores(&applied);
            cores = again;
            // A tenant whose previous settings fail too (its component file is gone)
            // is held failed.
            for refusal in &mut refused {
                if still.iter().any(|f| f.tenant() == refusal.tenant) {
                    refusal.kept_previous = false;
                }
            }
        }
    }
    Ok(Built {
        cores,
        callback,
        ingest: applied.ingest.clone(),
        runtime,
        default,
        config: applied,
        refused,
    })
}

/// Why a reload was refused; the running configuration is unchanged.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The new files were refused (a bad file, a component that fails to load or to
    /// configure a tenant).
    #[error(transparent)]
    Refused(#[from] ServeError),
    /// The task building the new cores failed.
    #[error("the reload task failed: {0}")]
    Task(String),
    /// An engine stopped before or during the swap.
    #[error("the engine has stopped")]
    Stopped,
}

/// What a reload carried over.
#[derive(Clone, Debug, Serialize)]
pub struct ReloadReport {
    /// Tenants now configured.
    pub tenants: Vec<String>,
    /// Sessions carried over.
    pub sessions: usize,
    /// Pending timers carried over.
    pub timers: usize,
    /// Webhook deliveries carried over.
    pub deliveries: usize,
    /// What was left out (tenants or webhooks no longer configured).
    pub dropped: Vec<String>,
    /// Settings that need a restart to change, if the file changed them.
    pub not_applied: Vec<String>,
    /// Tenants whose settings changed and now run.
    pub applied: Vec<String>,
    /// Tenants whose settings did not change.
    pub unchanged: Vec<String>,
    /// Tenants whose new settings were refused, with why; they keep what they ran
    /// before (`kept_previous`) or, new or unrecoverable, are held failed.
    pub refused: Vec<TenantRefusal>,
}

struct Current {
    runtime: Arc<Runtime>,
    default: Arc<PluginComponent>,
    ingest: Ingest,
    config: HostConfig,
}

/// Reloads on request; one reload at a time.
#[derive(Clone)]
pub struct Reloader {
    sources: Sources,
    current: Arc<Mutex<Current>>,
    /// Per shard: where its core's attempts go, and its engine.
    shards: Vec<(Collector, EngineSender)>,
    metrics: Metrics,
}

impl Reloader {
    /// A reloader for cores running `config` on `runtime` with `default` as the
    /// default component, started with `ingest` settings.
    pub fn new(
        sources: Sources,
        (runtime, default): (Arc<Runtime>, Arc<PluginComponent>),
        ingest: Ingest,
        config: HostConfig,
        shards: Vec<(Collector, EngineSender)>,
        metrics: Metrics,
    ) -> Self {
        Reloader {
            sources,
            current: Arc::new(Mutex::new(Current {
                runtime,
                default,
                ingest,
                config,
            })),
            shards,
            metrics,
        }
    }

    /// Re-reads the files and swaps in the new cores, or explains why not.
    pub async fn reload(&self) -> Result<ReloadReport, ReloadError> {
        let result = self.try_reload().await;
        match &result {
            Ok(report) => {
                let outcome = if report.refused.is_empty() {
                    "ok"
                } else {
                    "partial"
                };
                Metrics::count(&self.metrics.reloads, outcome, 1);
                for refusal in &report.refused {
                    tracing::error!(
                        tenant = refusal.tenant,
                        kept_previous = refusal.kept_previous,
                        "reload: the tenant's new settings were refused: {}",
                        refusal.error
                    );
                }
                tracing::info!(
                    sessions = report.sessions,
                    timers = report.timers,
                    deliveries = report.deliveries,
                    dropped = report.dropped.len(),
                    applied = report.applied.len(),
                    unchanged = report.unchanged.len(),
                    refused = report.refused.len(),
                    "configuration reloaded"
                )
            }
            Err(reason) => {
                Metrics::count(&self.metrics.reloads, "refused", 1);
                tracing::error!(
                    "reload refused; still running the previous configuration: {reason}"
                );
            }
        }
        result
    }

    async fn try_reload(&self) -> Result<ReloadReport, ReloadError> {
        let mut current = self.current.lock().await;
        let sources = self.sources.clone();
        let (runtime, default, config) = (
            current.runtime.clone(),
            current.default.clone(),
            current.config.clone(),
        );
        let collectors: Vec<Collector> = self.shards.iter().map(|(c, _)| c.clone()).collect();
        let built = tokio::task::spawn_blocking(move || {
            let previous = Previous {
                runtime: &runtime,
                default: &default,
                config: &config,
            };
            build(&sources, Some(previous), &collectors)
        })
        .await
        .map_err(|e| ReloadError::Task(e.to_string()))??;
        let mut not_applied = Vec::new();
        if built.ingest != current.ingest {
            not_applied.push("ingest (needs a restart)".to_owned());
        }
        let tenants: Vec<String> = built
            .cores
            .first()
            .map(|c| c.tenant_names().map(str::to_owned).collect())
            .unwrap_or_default();
        // Every shard's core is built and configured before any is swapped in.
        let mut answers = Vec::new();
        for (core, (_, engine)) in built.cores.into_iter().zip(&self.shards) {
            let (reply, answer) = oneshot::channel();
            engine
                .send(Request::Reload {
                    core: Box::new(core),
                    callback: Box::new(built.callback.clone()),
                    reply,
                })
                .map_err(|_| ReloadError::Stopped)?;
            answers.push(answer);
        }
        let (mut applied, mut unchanged) = (Vec::new(), Vec::new());
        for tenant in &built.config.tenants {
            if built.refused.iter().any(|r| r.tenant == tenant.name) {
                continue;
            }
            match current
                .config
                .tenants
                .iter()
                .find(|t| t.name == tenant.name)
            {
                Some(before) if before == tenant => unchanged.push(tenant.name.clone()),
                _ => applied.push(tenant.name.clone()),
            }
        }
        let mut report = ReloadReport {
            tenants,
            sessions: 0,
            timers: 0,
            deliveries: 0,
            dropped: Vec::new(),
            not_applied,
            applied,
            unchanged,
            refused: built.refused.clone(),
        };
        let applied_config = built.config.clone();
        for answer in answers {
            let restored = answer.await.map_err(|_| ReloadError::Stopped)?;
            report.sessions += restored.sessions;
            report.timers += restored.timers;
            report.deliveries += restored.deliveries;
            report.dropped.extend(restored.dropped);
        }
        current.runtime = built.runtime;
        current.default = built.default;
        current.config = applied_config;
        Ok(report)
    }
}
