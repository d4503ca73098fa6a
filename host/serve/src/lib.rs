//! `autoclose serve`: the sidecar. Hosts the component with real time and real HTTP
//! beside a gateway that cannot embed wasmtime.
//!
//! ```text
//!  gateway ──POST /v1/events──▶ api ──▶ engine thread ──▶ store (redb, group commit)
//!     ▲                                  │  core + plugin instances
//!     │                                  ▼
//!     └──── POST actions_url ◀── dispatcher (tokio) ──▶ push webhooks
//! ```
//!
//! - [`api`]: the HTTP routes (ingest, health, metrics).
//! - [`admin`]: the admin routes (reload, tenant settings, audit), behind [`access`].
//! - [`settings`]: tenant settings changed one tenant at a time.
//! - [`engine`]: applies events and timers in order, commits, then answers and sends.
//! - [`membership`], [`placement`]: on the PostgreSQL store, which shards this node
//!   serves among the live nodes.
//! - [`callbacks`]: chat actions on their way to the gateway, in order per session.
//! - [`gateway`]: where each tenant's actions go (the callback or a platform).
//! - [`chatwoot`], [`rocketchat`]: the platforms' webhooks in and their
//!   reconciliation (the mappings are in `autoclose-platforms`); [`reconcile`]: when
//!   reconciliation runs.
//! - [`ingest`]: events into the engines, from every way in.
//! - [`dispatch`]: attempts on the wire.
//! - [`reload`]: building the cores from the files, at start and on reload.
//! - [`request`]: what an engine is asked to do.
//! - [`state`]: what every HTTP handler shares.
//! - [`metrics`]: what `/metrics` shows.

#![warn(missing_docs)]

pub mod access;
pub mod admin;
pub mod api;
pub mod callbacks;
pub mod chatwoot;
pub mod clock;
pub mod console;
pub mod dispatch;
pub mod engine;
pub mod gateway;
pub mod ingest;
pub mod inspect;
pub mod membership;
pub mod metrics;
pub mod placement;
pub mod reconcile;
pub mod reload;
pub mod request;
pub mod rocketchat;
pub mod settings;
pub mod shards;
pub mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use autoclose_config::{ConfigError, HostConfig, StoreSettings};
use autoclose_core::CoreError;
use autoclose_runtime::LoadError;
use autoclose_store::postgres::cluster::Cluster;
use autoclose_store::postgres::settings::PostgresSettingsStore;
use autoclose_store::redb::RedbStore;
use autoclose_store::settings::{RedbSettings, SettingsStore};
use autoclose_store::{Store, StoreError};
use autoclose_webhook::http::{Clients, HttpError};

use callbacks::Callbacks;
use clock::wall_ms;
use dispatch::Dispatcher;
use engine::{Collector, Engine, Health};
use metrics::Metrics;
pub use reload::Built;
use reload::{Beside, Managed, Reloader, Sources};
use request::Request;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration was refused.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Some tenant's chat actions could go nowhere: no generic callback, and no
    /// platform adapter serves it.
    #[error(
        "{file}: gateway: serve needs somewhere to send chat actions: add \"gateway\": {{\"actions_url\": \"http://...\"}}, or serve every tenant through a platform (gateway.chatwoot.accounts, gateway.rocketchat.servers){}",
        if tenants.is_empty() { String::new() } else { format!("; no gateway for tenant {tenants}") }
    )]
    NoCallback {
        /// The configuration file.
        file: PathBuf,
        /// The tenants without one (empty: no gateway at all).
        tenants: String,
    },
    /// A component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A tenant could not be started.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// The store could not be opened, read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The data directory holds stores of another shard count.
    #[error(
        "{data}: holds stores written with another --shards ({}); start with the shard count they were written with, or move them away",
        found.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    Layout {
        /// The data directory.
        data: PathBuf,
        /// The shard count asked for.
        shards: usize,
        /// The store files that do not belong.
        found: Vec<PathBuf>,
    },
    /// `--strict`: a tenant failed to start.
    #[error("{error} (--strict refuses to start when a tenant fails{})", if *others > 0 { format!("; {others} more failed too") } else { String::new() })]
    Strict {
        /// The first tenant's failure.
        error: String,
        /// How many more tenants failed.
        others: usize,
    },
    /// The async runtime or a thread could not be started.
    #[error("cannot start: {0}")]
    Runtime(String),
}

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// The configuration and the default component.
    pub sources: Sources,
    /// Where to listen.
    pub listen: SocketAddr,
    /// The data directory (the store lives in it).
    pub data: PathBuf,
    /// How long a shutdown waits for attempts under way.
    pub shutdown_grace: Duration,
    /// How long a closed session is remembered (late events for it ignored).
    pub forget_closed_after: Duration,
    /// Engines (and store files) sessions are split across; fixed per data directory.
    pub shards: usize,
    /// Refuse to start when a tenant fails (for deploy pipelines) instead of holding
    /// it failed while the others run.
    pub strict: bool,
    /// Steps of history each session keeps for the console (0: none).
    pub history_steps: usize,
}

/// Default time a closed session is remembered: a day.
pub const DEFAULT_FORGET_CLOSED_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Default wait for attempts under way at shutdown.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The data directory when `--data` is not given: systemd's `$STATE_DIRECTORY`, else
/// `$XDG_STATE_HOME/autoclose`, else `~/.local/state/autoclose`, else
/// `./autoclose-data`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("autoclose");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/autoclose");
    }
    PathBuf::from("autoclose-data")
}

/// Runs the server until SIGTERM or SIGINT (graceful: ingest stops, attempts under
/// way finish within the grace period, the store is flushed). SIGHUP reloads.
pub fn run(options: ServeOptions) -> Result<(), ServeError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("autoclose-io")
        .build()
        .map_err(|e| ServeError::Runtime(e.to_string()))?;
    runtime.block_on(serve(options))
}

async fn serve(options: ServeOptions) -> Result<(), ServeError> {
    let ServeOptions {
        sources,
        listen,
        data,
        shutdown_grace,
        forget_closed_after,
        shards,
        strict,
        history_steps,
    } = options;
    let shards = shards.clamp(1, shards::MAX_SHARDS);

    // Open and read the stores first: a damaged or unreachable store stops the
    // start, before anything is listening.
    let file = HostConfig::load(&sources.config)?;
    let store_settings = file.store.clone();
    let handle = tokio::runtime::Handle::current();
    let opened_data = data.clone();
    let (stores, settings, managed, cluster) = tokio::task::spawn_blocking(move || {
        open_stores(&store_settings, &opened_data, shards, &handle)
    })
    .await
    .map_err(|e| ServeError::Runtime(format!("opening the stores failed: {e}")))??;
    // Tenant settings managed through the admin API go over the file's.
    let collectors: Vec<Collector> = (0..shards).map(|_| Collector::default()).collect();
    let loaded = reload::merge(file, &managed, None);
    let mut built = reload::build(loaded, &sources, None, &collectors)?;
    if strict && let Some(refusal) = built.refused.first() {
        return Err(ServeError::Strict {
            error: refusal.error.clone(),
            others: built.refused.len() - 1,
        });
    }
    for refusal in &built.refused {
        tracing::error!(
            tenant = refusal.tenant,
            "tenant failed to start; its events are held and its component is tried again on the failure back-off (/healthz reports it): {}",
            refusal.error
        );
    }
    let now = wall_ms();

    let mut registry = prometheus_client::registry::Registry::default();
    let metrics = Metrics::new(&mut registry);
    let clients = Clients::new()?;
    let (engine_done, engine_stopped) = tokio::sync::mpsc::channel::<()>(shards);
    let mut senders = Vec::with_capacity(shards);
    let mut healths = Vec::with_capacity(shards);
    let mut threads = Vec::with_capacity(shards);
    let cores = std::mem::take(&mut built.cores)
        .into_iter()
        .zip(stores)
        .zip(collectors.iter());
    let (lost_tx, lost_rx) = tokio::sync::mpsc::unbounded_channel();
    for (index, ((mut core, opened), collector)) in cores.enumerate() {
        // On redb the shard's state is here; on PostgreSQL the engine starts without
        // it and is handed it when this node takes the shard's lease.
        let (store, callbacks) = match opened {
            Some(OpenedStore {
                name,
                store,
                stored,
            }) => {
                let (restored, callbacks) = engine::restore(&mut core, stored, now);
                for line in &restored.dropped {
                    tracing::warn!("left out of the store: {line}");
                }
                tracing::info!(
                    store = %name,
                    sessions = restored.sessions,
                    timers = restored.timers,
                    deliveries = restored.deliveries,
                    callbacks = callbacks.len(),
                    "state restored"
                );
                (Some(store), callbacks)
            }
            None => (None, Callbacks::restore(Vec::new(), 0, now)),
        };
        let health = Arc::new(Health::default());
        let (engine_tx, engine_rx) = std::sync::mpsc::channel::<Request>();
        let dispatcher = Dispatcher::new(
            tokio::runtime::Handle::current(),
            clients.clone(),
            engine_tx.clone(),
        );
        let mut engine = Engine::new(
            core,
            store,
            callbacks,
            built.gateway.clone(),
            collector.clone(),
            dispatcher,
            metrics.clone(),
            health.clone(),
        )
        .forget_closed_after(forget_closed_after)
        .keep_history(history_steps)
        .shard(index);
        if cluster.is_some() {
            engine = engine.shared(lost_tx.clone());
        }
        let done = engine_done.clone();
        let thread = std::thread::Builder::new()
            .name(format!("autoclose-engine-{index}"))
            .spawn(move || {
                let result = engine.run(engine_rx);
                let _ = done.try_send(());
                result
            })
            .map_err(|e| ServeError::Runtime(format!("cannot start an engine thread: {e}")))?;
        senders.push(engine_tx);
        healths.push(health);
        threads.push(thread);
    }
    drop(lost_tx);
    drop(engine_done);
    let held: membership::Held = Default::default();
    let membership = cluster.as_ref().map(|cluster| {
        metrics.shards_owned.set(0);
        tokio::spawn(
            membership::Membership {
                cluster: cluster.clone(),
                engines: senders.clone(),
                healths: healths.clone(),
                held: held.clone(),
                metrics: metrics.clone(),
                lost: lost_rx,
            }
            .run(),
        )
    });
    if cluster.is_none() {
        metrics
            .shards_owned
            .set(i64::try_from(shards).unwrap_or(i64::MAX));
    }

    let access = api_access(&built);
    let reloader = Reloader::new(
        sources,
        &built,
        Beside {
            shards: collectors
                .into_iter()
                .zip(senders.iter().cloned())
                .collect(),
            metrics: metrics.clone(),
            settings,
            managed,
            access: access.clone(),
        },
    );
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: listen,
            source,
        })?;
    let bound = listener.local_addr().unwrap_or(listen);
    let state = api::AppState {
        shards: senders.clone().into(),
        ingest: Arc::new(built.ingest),
        health: healths.into(),
        metrics,
        registry: Arc::new(registry),
        reloader: reloader.clone(),
        access,
        cluster: cluster.clone(),
    };
    // The handlers are installed before anyone is told the server listens: a SIGTERM
    // sent at once then stops it gracefully, instead of killing it (the default action
    // while no handler is installed).
    let signals = Signals::install();
    // Tests and supervisors wait for this line (it carries the bound port).
    tracing::info!(listen = %bound, data = %data.display(), shards, "listening");
    eprintln!("autoclose serve: listening on http://{bound}");

    let Signals { term, int, hup } = signals;
    tokio::spawn(reload_on_sighup(reloader, hup));
    let reconciling = tokio::spawn(reconcile::forever(state.clone()));
    let server = axum::serve(listener, api::router(state)).with_graceful_shutdown(stop_signal(
        term,
        int,
        engine_stopped,
    ));
    let served = server.await;
    reconciling.abort();
    if let Err(e) = &served {
        tracing::error!("server error: {e}");
    }
    tracing::info!("stopping: ingest closed; finishing attempts under way");
    // No shard is taken or given from now on.
    if let Some(membership) = membership {
        membership.abort();
        let _ = membership.await;
    }
    for sender in &senders {
        let _ = sender.send(Request::Stop {
            grace: shutdown_grace,
        });
    }
    drop(senders);
    let joined = tokio::task::spawn_blocking(move || {
        threads.into_iter().map(|t| t.join()).collect::<Vec<_>>()
    })
    .await
    .map_err(|e| ServeError::Runtime(format!("the engine threads failed: {e}")))?;
    for result in joined {
        match result {
            Ok(result) => result?,
            Err(_) => return Err(ServeError::Runtime("an engine thread panicked".into())),
        }
    }
    // The engines committed their last changes: the shards can go to another node
    // (or this one, restarted) at once.
    if let Some(cluster) = &cluster {
        membership::leave(cluster, &held).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// A shard's store, opened: the name logs give it, the store, and what it held.
struct OpenedStore {
    name: String,
    store: Box<dyn Store>,
    stored: autoclose_store::Stored,
}

/// The stores `serve` runs on: each shard's with what it held (on redb; `None` on
/// PostgreSQL, where shards are taken as the cluster places them), the tenant
/// settings store with the managed tenants' current versions, and on PostgreSQL the
/// node's handle on the cluster.
type Opened = (
    Vec<Option<OpenedStore>>,
    Arc<dyn SettingsStore>,
    Managed,
    Option<Arc<Cluster>>,
);

/// Opens the store of every shard and reads what it holds, and the tenant settings
/// store: redb files in `data`, or the PostgreSQL database (run from a blocking thread:
/// the PostgreSQL store waits on the async runtime). Each store comes with the name
/// logs give it.
fn open_stores(
    settings: &StoreSettings,
    data: &std::path::Path,
    shards: usize,
    handle: &tokio::runtime::Handle,
) -> Result<Opened, ServeError> {
    let mut stores = Vec::with_capacity(shards);
    let mut cluster = None;
    let tenant_settings: Arc<dyn SettingsStore> = match settings {
        StoreSettings::Redb => {
            let foreign = shards::foreign_store_files(data, shards);
            if !foreign.is_empty() {
                return Err(ServeError::Layout {
                    data: data.to_owned(),
                    shards,
                    found: foreign,
                });
            }
            for index in 0..shards {
                let store = RedbStore::open_file(data, &shards::store_file(index, shards))?;
                let stored = store.load()?;
                let name = store.path().display().to_string();
                stores.push(Some(OpenedStore {
                    name,
                    store: Box::new(store),
                    stored,
                }));
            }
            Arc::new(RedbSettings::open(data)?)
        }
        StoreSettings::Postgres(postgres) => {
            let pool = autoclose_store::postgres::connect(postgres, handle)?;
            let node = node_id();
            tracing::info!(node, database = %postgres.place(), shards, "joining the cluster");
            cluster = Some(Arc::new(Cluster::new(
                pool.clone(),
                postgres,
                handle,
                &node,
                shards,
            )?));
            stores.resize_with(shards, || None);
            Arc::new(PostgresSettingsStore::new(pool, postgres, handle))
        }
    };
    // Tenant settings managed through the admin API go over the file's.
    let managed: Managed = tenant_settings
        .current()?
        .into_iter()
        .map(|v| (v.tenant.clone(), v))
        .collect();
    Ok((stores, tenant_settings, managed, cluster))
}

/// This process's name as a shard owner: host, process id and start time, so that a
/// restarted process is another owner than the one that crashed.
fn node_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("{host}:{}:{}", std::process::id(), wall_ms())
}

/// The tokens of a started configuration.
fn api_access(built: &Built) -> access::Access {
    let access = access::Access::new(&built.ingest, built.file.admin.clone());
    access.replace_platforms(&built.gateway);
    access
}

/// The signals `serve` handles, installed together.
struct Signals {
    term: Option<tokio::signal::unix::Signal>,
    int: Option<tokio::signal::unix::Signal>,
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Installs the handlers of SIGTERM, SIGINT and SIGHUP; one that cannot be
    /// installed is `None` (and logged).
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| {
            signal(kind)
                .inspect_err(|e| tracing::error!("cannot handle {name}: {e}"))
                .ok()
        };
        Signals {
            term: install(SignalKind::terminate(), "SIGTERM"),
            int: install(SignalKind::interrupt(), "SIGINT"),
            hup: install(SignalKind::hangup(), "SIGHUP"),
        }
    }
}

/// Waits for a signal whose handler could be installed; forever for one that could not.
async fn received(signal: &mut Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves on SIGTERM or SIGINT, or when an engine stopped on its own (a store
/// failure): the server then stops taking requests.
async fn stop_signal(
    mut term: Option<tokio::signal::unix::Signal>,
    mut int: Option<tokio::signal::unix::Signal>,
    mut engine_stopped: tokio::sync::mpsc::Receiver<()>,
) {
    tokio::select! {
        _ = received(&mut term) => tracing::info!("SIGTERM received"),
        _ = received(&mut int) => tracing::info!("SIGINT received"),
        _ = engine_stopped.recv() => tracing::error!("an engine stopped"),
    }
}

/// Reloads on every SIGHUP.
async fn reload_on_sighup(reloader: Reloader, hup: Option<tokio::signal::unix::Signal>) {
    let Some(mut hup) = hup else {
        tracing::warn!("no SIGHUP handler; reload with POST /v1/admin/reload");
        return;
    };
    while hup.recv().await.is_some() {
        tracing::info!("SIGHUP received: reloading");
        let _ = reloader.reload().await;
    }
}
