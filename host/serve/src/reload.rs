//! Building the cores from the configuration file, at start and on reload.
//!
//! A reload (`SIGHUP` or `POST /v1/admin/reload`) builds complete new cores off
//! the engine thread: config parsed and checked, components loaded, every tenant
//! instantiated and configured. Only if all of that succeeds does the engine swap it
//! in, carrying sessions, pending timers and deliveries over; otherwise the running
//! cores are untouched and the error is returned and logged.

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
/// component, which cannot change).
pub fn build(
    sources: &Sources,
    previous: Option<(&Arc<Runtime>, &Arc<PluginComponent>)>,
    collectors: &[Collector],
) -> Result<Built, ServeError> {
    let config = HostConfig::load(&sources.config)?;
    let Some(callback) = config.gateway.clone() else {
        return Err(ServeError::NoCallback {
            file: sources.config.clone(),
        });
    };
    let reuse = previous.filter(|(runtime, _)| start::runtime_fits(runtime, &config));
    let runtime = match reuse {
        Some((runtime, _)) => runtime.clone(),
        None => start::runtime_for(&config)?,
    };
    // The built-in component cannot change while the process runs: a kept runtime
    // keeps it compiled.
    let default = match (&sources.plugin, reuse) {
        (None, Some((_, default))) => default.clone(),
        (plugin, _) => start::default_component(&runtime, plugin.as_deref(), sources.built_in)?,
    };
    let cores = collectors
        .iter()
        .map(|collector| {
            Core::new(
                runtime.clone(),
                &config,
                default.clone(),
                Box::new(collector.clone()),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Built {
        cores,
        callback,
        ingest: config.ingest,
        runtime,
        default,
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
}

struct Current {
    runtime: Arc<Runtime>,
    default: Arc<PluginComponent>,
    ingest: Ingest,
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
    /// A reloader for cores running on `runtime` with `default` as the default
    /// component, started with `ingest` settings.
    pub fn new(
        sources: Sources,
        runtime: Arc<Runtime>,
        default: Arc<PluginComponent>,
        ingest: Ingest,
        shards: Vec<(Collector, EngineSender)>,
        metrics: Metrics,
    ) -> Self {
        Reloader {
            sources,
            current: Arc::new(Mutex::new(Current {
                runtime,
                default,
                ingest,
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
                Metrics::count(&self.metrics.reloads, "ok", 1);
                tracing::info!(
                    sessions = report.sessions,
                    timers = report.timers,
                    deliveries = report.deliveries,
                    dropped = report.dropped.len(),
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
        let previous = (current.runtime.clone(), current.default.clone());
        let collectors: Vec<Collector> = self.shards.iter().map(|(c, _)| c.clone()).collect();
        let built = tokio::task::spawn_blocking(move || {
            build(&sources, Some((&previous.0, &previous.1)), &collectors)
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
        let mut report = ReloadReport {
            tenants,
            sessions: 0,
            timers: 0,
            deliveries: 0,
            dropped: Vec::new(),
            not_applied,
        };
        for answer in answers {
            let restored = answer.await.map_err(|_| ReloadError::Stopped)?;
            report.sessions += restored.sessions;
            report.timers += restored.timers;
            report.deliveries += restored.deliveries;
            report.dropped.extend(restored.dropped);
        }
        current.runtime = built.runtime;
        current.default = built.default;
        Ok(report)
    }
}
