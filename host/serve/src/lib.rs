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
//! - [`callbacks`]: chat actions on their way to the gateway, in order per session.
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
pub mod dispatch;
pub mod engine;
pub mod metrics;
pub mod reload;
pub mod request;
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
use autoclose_store::postgres::settings::PostgresSettingsStore;
use autoclose_store::postgres::{LeaseKeeper, PostgresStore};
use autoclose_store::redb::RedbStore;
use autoclose_store::settings::{RedbSettings, SettingsStore};
use autoclose_store::{Store, StoreError};
use autoclose_webhook::http::{Clients, HttpError};

use callbacks::Callbacks;
use dispatch::Dispatcher;
use engine::{Collector, Engine, Health, wall_ms};
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
    /// The configuration has no `gateway` section.
    #[error(
        "{file}: gateway: serve needs the gateway's callback for chat actions: add \"gateway\": {{\"actions_url\": \"http://...\"}}"
    )]
    NoCallback {
        /// The configuration file.
        file: PathBuf,
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
    } = options;
    let shards = shards.clamp(1, shards::MAX_SHARDS);

    // Open and read the stores first: a damaged or unreachable store stops the
    // start, before anything is listening.
    let file = HostConfig::load(&sources.config)?;
    let store_settings = file.store.clone();
    let handle = tokio::runtime::Handle::current();
    let opened_data = data.clone();
    let (stores, settings, managed, keepers) = tokio::task::spawn_blocking(move || {
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
    for (index, ((mut core, opened), collector)) in cores.enumerate() {
        let OpenedStore {
            name,
            store,
            mut stored,
        } = opened;
        // Attempts that were on the wire at the crash are made again, with their ids.
        for delivery in &mut stored.core.deliveries {
            delivery.next_at.get_or_insert(now);
        }
        core.track_changes();
        let restored = core.restore(stored.core, now);
        for line in &restored.dropped {
            tracing::warn!("left out of the store: {line}");
        }
        let callbacks = Callbacks::restore(stored.callbacks, stored.next_callback, now);
        tracing::info!(
            store = %name,
            sessions = restored.sessions,
            timers = restored.timers,
            deliveries = restored.deliveries,
            callbacks = callbacks.len(),
            "state restored"
        );
        let health = Arc::new(Health::default());
        let (engine_tx, engine_rx) = std::sync::mpsc::channel::<Request>();
        let dispatcher = Dispatcher::new(
            tokio::runtime::Handle::current(),
            clients.clone(),
            engine_tx.clone(),
        );
        let engine = Engine::new(
            core,
            store,
            callbacks,
            built.callback.clone(),
            collector.clone(),
            dispatcher,
            metrics.clone(),
            health.clone(),
        )
        .forget_closed_after(forget_closed_after)
        .shard(index);
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
    let leases = tokio::spawn(keep_leases(
        keepers.clone(),
        engine_done.clone(),
        metrics.clone(),
    ));
    drop(engine_done);

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
        leases: keepers.first().map(|first| {
            let mut all = first.clone();
            all.leases = keepers.iter().flat_map(|k| k.leases.clone()).collect();
            all
        }),
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
    let server = axum::serve(listener, api::router(state)).with_graceful_shutdown(stop_signal(
        term,
        int,
        engine_stopped,
    ));
    let served = server.await;
    if let Err(e) = &served {
        tracing::error!("server error: {e}");
    }
    tracing::info!("stopping: ingest closed; finishing attempts under way");
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
    leases.abort();
    for keeper in &keepers {
        keeper.release().await;
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

/// The stores `serve` runs on: each shard's, with what it held, the tenant settings
/// store with the managed tenants' current versions, and what keeps the PostgreSQL
/// store's shard leases.
type Opened = (
    Vec<OpenedStore>,
    Arc<dyn SettingsStore>,
    Managed,
    Vec<LeaseKeeper>,
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
    let mut keepers = Vec::new();
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
                stores.push(OpenedStore {
                    name,
                    store: Box::new(store),
                    stored,
                });
            }
            Arc::new(RedbSettings::open(data)?)
        }
        StoreSettings::Postgres(postgres) => {
            let pool = autoclose_store::postgres::connect(postgres, handle)?;
            let node = node_id();
            for index in 0..shards {
                let store =
                    PostgresStore::open(pool.clone(), postgres, handle, (index, shards), &node)?;
                let stored = store.load()?;
                let name = format!("{} shard {index}", postgres.place());
                keepers.push(store.keeper(postgres.lease_ttl));
                stores.push(OpenedStore {
                    name,
                    store: Box::new(store),
                    stored,
                });
            }
            Arc::new(PostgresSettingsStore::new(pool, postgres, handle))
        }
    };
    // Tenant settings managed through the admin API go over the file's.
    let managed: Managed = tenant_settings
        .current()?
        .into_iter()
        .map(|v| (v.tenant.clone(), v))
        .collect();
    Ok((stores, tenant_settings, managed, keepers))
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

/// Renews the leases every third of their lifetime. When one is taken over, or none
/// could be renewed for two thirds of it (before it can expire and another node take
/// it), the node stops: it must not fire or send for a shard it may no longer own.
async fn keep_leases(
    keepers: Vec<LeaseKeeper>,
    stop: tokio::sync::mpsc::Sender<()>,
    metrics: Metrics,
) {
    let Some(ttl) = keepers.iter().map(|k| k.ttl).min() else {
        return;
    };
    let mut last_renewed = std::time::Instant::now();
    let mut every = tokio::time::interval(ttl / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let mut all = true;
        for keeper in &keepers {
            let renewed = keeper.renew().await;
            let outcome = match &renewed {
                Ok(true) => "renewed",
                Ok(false) => "lost",
                Err(_) => "failed",
            };
            Metrics::count(&metrics.lease_renewals, outcome, 1);
            match renewed {
                Ok(true) => {}
                Ok(false) => {
                    tracing::error!(
                        "a shard's lease was taken over by another node; stopping (this node may no longer fire or send for it)"
                    );
                    let _ = stop.try_send(());
                    return;
                }
                Err(e) => {
                    all = false;
                    tracing::warn!("cannot renew the shard leases: {e}");
                }
            }
        }
        if all {
            last_renewed = std::time::Instant::now();
        } else if last_renewed.elapsed() >= ttl * 2 / 3 {
            tracing::error!(
                "the shard leases could not be renewed for {:?}; stopping before they can expire",
                last_renewed.elapsed()
            );
            let _ = stop.try_send(());
            return;
        }
    }
}

/// The tokens of a started configuration.
fn api_access(built: &Built) -> access::Access {
    access::Access::new(&built.ingest, built.file.admin.clone())
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
