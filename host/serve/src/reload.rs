//! Building the cores from the configuration file, at start and on reload.
//!
//! One tenant never stops another. A tenant whose component does not load, traps or
//! runs out of time in `configure`, or refuses its settings, is kept failed (its events
//! held, its instance tried again on the failure back-off) while the others run; at
//! start, `--strict` refuses instead.
//!
//! Tenants managed through the admin API (`/v1/admin/tenants`, kept in the settings
//! store) go over the file's: the file is the bootstrap, the API the day-to-day.
//!
//! A reload (`SIGHUP` or `POST /v1/admin/reload`) builds complete new cores off the
//! engine thread, tenant by tenant: a tenant whose new settings or component fail keeps
//! the settings it ran before, the others take theirs. Only a host-level error (the
//! file unreadable, a bad `gateway` or `ingest` section, the default component) refuses
//! the whole reload, leaving the running cores untouched. The engines then swap the new
//! cores in, carrying sessions, pending timers, deliveries and held events over.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::{Mutex, oneshot};

use autoclose_config::{HostConfig, Ingest};
use autoclose_core::{Core, PluginComponent, Runtime, start};
use autoclose_store::settings::{SettingsStore, TenantVersion};

use crate::ServeError;
use crate::access::Access;
use crate::engine::Collector;
use crate::metrics::Metrics;
use crate::request::{EngineSender, Request};

/// Cores built from the files, ready to run.
pub struct Built {
    /// One configured core per shard (nothing restored yet).
    pub cores: Vec<Core>,
    /// Where the tenants' chat actions go.
    pub gateway: crate::gateway::Gateway,
    /// The ingest settings.
    pub ingest: Ingest,
    /// The wasmtime runtime it runs on.
    pub runtime: Arc<Runtime>,
    /// The default component.
    pub default: Arc<PluginComponent>,
    /// The file as read, without the managed tenants.
    pub file: HostConfig,
    /// The configuration the cores run: the file's with the managed tenants over it,
    /// and the previous settings of the tenants whose new ones were refused.
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

/// The settings managed through the admin API: each tenant's current version (a
/// deleted one has no document).
pub type Managed = BTreeMap<String, TenantVersion>;

/// The configuration to run: the file, with the managed tenants over it.
pub struct Loaded {
    /// The file as read.
    pub file: HostConfig,
    /// The file with the managed tenants over it.
    pub config: HostConfig,
    /// Managed tenants whose documents no longer read against the file (a webhook
    /// or component they name was removed from it).
    pub refused: Vec<TenantRefusal>,
}

/// Reads the configuration file and puts the `managed` tenants over its tenants. A
/// managed document that no longer reads against the file is refused; its tenant
/// keeps what it ran (`running`), else what the file gives it.
pub fn load(
    sources: &Sources,
    managed: &Managed,
    running: Option<&HostConfig>,
) -> Result<Loaded, ServeError> {
    Ok(merge(HostConfig::load(&sources.config)?, managed, running))
}

/// Puts the `managed` tenants over the tenants of `file`, as [`load`] does.
pub fn merge(file: HostConfig, managed: &Managed, running: Option<&HostConfig>) -> Loaded {
    let mut config = file.clone();
    let mut refused = Vec::new();
    for (name, version) in managed {
        let Some(document) = &version.document else {
            continue;
        };
        match file.tenant(name, document.clone()) {
            Ok(tenant) => config.set_tenant(tenant),
            Err(e) => {
                let before = running.and_then(|r| r.tenants.iter().find(|t| &t.name == name));
                if let Some(before) = before {
                    config.set_tenant(before.clone());
                }
                refused.push(TenantRefusal {
                    tenant: name.clone(),
                    error: format!(
                        "tenants.{name} (version {} from the admin API): {e}",
                        version.version
                    ),
                    kept_previous: before.is_some(),
                });
            }
        }
    }
    Loaded {
        file,
        config,
        refused,
    }
}

/// Builds one core per collector (per shard) running `loaded`, whose attempts go to
/// that collector. A runtime with the same limits is reused (with its built-in
/// component, which cannot change). A tenant that fails is held failed; on a reload
/// (`previous`), a tenant that ran before and whose new settings fail is built with its
/// previous settings instead.
pub fn build(
    loaded: Loaded,
    sources: &Sources,
    previous: Option<Previous<'_>>,
    collectors: &[Collector],
) -> Result<Built, ServeError> {
    let Loaded {
        file,
        config,
        refused: refused_before,
    } = loaded;
    let gateway = crate::gateway::Gateway::new(&config, &sources.config)?;
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
    for before in refused_before {
        if !refused.iter().any(|r| r.tenant == before.tenant) {
            refused.push(before);
        }
    }
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
        gateway,
        ingest: applied.ingest.clone(),
        runtime,
        default,
        file,
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
    /// A tenant's new instance did not start on a shard, though it started in the
    /// check (a component that fails now and then); that shard keeps running what the
    /// tenant ran before (a new tenant is held failed there) until a restart or reload.
    #[error("the tenant's new instance failed to start: {0}")]
    Tenant(String),
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

/// What runs now, as the reloader and the settings changes start from.
pub(crate) struct Current {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) default: Arc<PluginComponent>,
    pub(crate) ingest: Ingest,
    /// The file as last read.
    pub(crate) file: HostConfig,
    /// What the cores run.
    pub(crate) config: HostConfig,
    /// The managed tenants' current versions.
    pub(crate) managed: Managed,
}

/// Reloads on request, and applies tenant settings changes; one at a time.
#[derive(Clone)]
pub struct Reloader {
    pub(crate) sources: Sources,
    pub(crate) current: Arc<Mutex<Current>>,
    /// Per shard: where its core's attempts go, and its engine.
    shards: Vec<(Collector, EngineSender)>,
    pub(crate) metrics: Metrics,
    /// Where managed tenant settings are kept.
    pub(crate) settings: Arc<dyn SettingsStore>,
    /// The tokens, whose admin part a reload replaces.
    pub(crate) access: Access,
}

/// What a [`Reloader`] runs on: the stores and tokens beside the cores.
pub struct Beside {
    /// Per shard: where its core's attempts go, and its engine.
    pub shards: Vec<(Collector, EngineSender)>,
    /// Metrics.
    pub metrics: Metrics,
    /// Where managed tenant settings are kept.
    pub settings: Arc<dyn SettingsStore>,
    /// The managed tenants' current versions, as read at start.
    pub managed: Managed,
    /// The tokens.
    pub access: Access,
}

impl Reloader {
    /// A reloader for the cores `built` started, beside `beside`.
    pub fn new(sources: Sources, built: &Built, beside: Beside) -> Self {
        Reloader {
            sources,
            current: Arc::new(Mutex::new(Current {
                runtime: built.runtime.clone(),
                default: built.default.clone(),
                ingest: built.ingest.clone(),
                file: built.file.clone(),
                config: built.config.clone(),
                managed: beside.managed,
            })),
            shards: beside.shards,
            metrics: beside.metrics,
            settings: beside.settings,
            access: beside.access,
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
        let managed = current.managed.clone();
        let running = current.config.clone();
        let loaded = tokio::task::spawn_blocking(move || load(&sources, &managed, Some(&running)))
            .await
            .map_err(|e| ReloadError::Task(e.to_string()))??;
        let report = self.swap(&mut current, loaded).await?;
        self.access.replace_admin(current.file.admin.clone());
        Ok(report)
    }

    /// Gives one tenant new settings on every shard, leaving the other tenants as
    /// they are (their instances, their counters, their back-off).
    pub(crate) async fn replace(
        &self,
        tenant: &autoclose_config::TenantConfig,
        component: Arc<PluginComponent>,
    ) -> Result<(), ReloadError> {
        let mut answers = Vec::new();
        for (_, engine) in &self.shards {
            let (reply, answer) = oneshot::channel();
            engine
                .send(Request::ReplaceTenant {
                    tenant: Box::new(tenant.clone()),
                    component: component.clone(),
                    reply,
                })
                .map_err(|_| ReloadError::Stopped)?;
            answers.push(answer);
        }
        for answer in answers {
            answer
                .await
                .map_err(|_| ReloadError::Stopped)?
                .map_err(|e| ReloadError::Tenant(e.to_string()))?;
        }
        Ok(())
    }

    /// Builds cores running `loaded` off the engine threads and swaps them in on every
    /// shard, carrying the state over; `current` then describes them.
    pub(crate) async fn swap(
        &self,
        current: &mut Current,
        loaded: Loaded,
    ) -> Result<ReloadReport, ReloadError> {
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
            build(loaded, &sources, Some(previous), &collectors)
        })
        .await
        .map_err(|e| ReloadError::Task(e.to_string()))??;
        let mut not_applied = Vec::new();
        if built.ingest != current.ingest {
            not_applied.push("ingest (needs a restart)".to_owned());
        }
        if built.file.store != current.file.store {
            not_applied.push("store (needs a restart)".to_owned());
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
                    gateway: Box::new(built.gateway.clone()),
                    reply,
                })
                .map_err(|_| ReloadError::Stopped)?;
            answers.push(answer);
        }
        self.access.replace_platforms(&built.gateway);
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
        current.file = built.file;
        current.config = applied_config;
        Ok(report)
    }
}
