//! The wasmtime side: one engine per process, compiled components, and the sandbox
//! every instance runs in.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};

use crate::bindings::chat_gateway::plugin::types::{ConfigError, TenantSetup};
use crate::bindings::exports::chat_gateway::plugin::about::PluginInfo;
use crate::bindings::{Plugin, PluginPre};
use crate::config::Limits;
use crate::instance::InstanceState;

/// How often the epoch advances. A hook's time budget is counted in these ticks.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The engine could not be set up.
    #[error("cannot set up the wasm engine: {0:#}")]
    Engine(wasmtime::Error),
    /// The file could not be read.
    #[error("{path}: cannot read component: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a component of the `chat-gateway:plugin` world.
    #[error("{name}: not a usable chat-gateway:plugin component: {source:#}")]
    Invalid {
        /// File name or label.
        name: String,
        /// What wasmtime found wrong.
        source: wasmtime::Error,
    },
}

/// Why a component could not say who it is or explain a setup (`about`): it trapped
/// or ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("{component}: about.{call} failed: {reason}")]
pub struct AboutError {
    /// The component's file name or label.
    pub component: String,
    /// `info` or `explain`.
    pub call: &'static str,
    /// The trap.
    pub reason: String,
}

/// How a runaway hook is stopped. Production uses [`Interrupt::Epoch`]; the others
/// exist so that the sandbox's own cost can be measured against them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Interrupt {
    /// A thread advances the engine's epoch every [`EPOCH_TICK`]; a hook past its
    /// wall-clock budget traps. Cheap: one load and compare at loop heads and calls.
    #[default]
    Epoch,
    /// Every hook gets [`FUEL_PER_MS`] units of fuel per ms of budget; running out
    /// traps. Deterministic but dearer: a counter update in every basic block.
    Fuel,
    /// Nothing stops a runaway hook. For measurements only.
    Unbounded,
}

/// Fuel per millisecond of hook budget under [`Interrupt::Fuel`] (roughly what a
/// core executes in a millisecond of simple wasm).
pub const FUEL_PER_MS: u64 = 1_000_000;

/// How the runtime is set up beyond the operator's limits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RuntimeOptions {
    /// How runaway hooks are stopped.
    pub interrupt: Interrupt,
    /// Instances in a pooling allocator sized for this many instances (memory and
    /// tables reserved up front, reused with copy-on-write), instead of allocating
    /// each on demand. `None`: on demand.
    pub pool: Option<u32>,
}

/// A compiled component, ready to instantiate many times.
pub struct PluginComponent {
    name: String,
    pre: PluginPre<InstanceState>,
}

impl PluginComponent {
    /// The file name or label it was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Debug for PluginComponent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginComponent")
            .field("name", &self.name)
            .finish()
    }
}

/// The engine, the linker with the host's capabilities, and the epoch ticker that
/// bounds every hook's run time.
pub struct Runtime {
    engine: Engine,
    linker: Linker<InstanceState>,
    limits: Limits,
    options: RuntimeOptions,
    _ticker: Option<EpochTicker>,
}

impl Runtime {
    /// Sets up the engine for `limits`, with epoch interruption and instances
    /// allocated on demand.
    pub fn new(limits: Limits) -> Result<Self, LoadError> {
        Self::with_options(limits, RuntimeOptions::default())
    }

    /// Sets up the engine for `limits` as `options` say.
    pub fn with_options(limits: Limits, options: RuntimeOptions) -> Result<Self, LoadError> {
        let mut config = Config::new();
        match options.interrupt {
            Interrupt::Epoch => {
                config.epoch_interruption(true);
            }
            Interrupt::Fuel => {
                config.consume_fuel(true);
            }
            Interrupt::Unbounded => {}
        }
        if let Some(instances) = options.pool {
            let mut pool = wasmtime::PoolingAllocationConfig::default();
            let memory = usize::try_from(limits.memory_mib * 1024 * 1024).unwrap_or(usize::MAX);
            pool.total_component_instances(instances)
                .total_core_instances(instances.saturating_mul(4))
                .total_memories(instances.saturating_mul(2))
                .total_tables(instances.saturating_mul(4))
                .max_memory_size(memory);
            config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        }
        // Native stack a hook may use; deep recursion traps instead of crashing the host.
        config.max_wasm_stack(512 * 1024);
        let engine = Engine::new(&config).map_err(LoadError::Engine)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(LoadError::Engine)?;
        forbid_blocking(&mut linker).map_err(LoadError::Engine)?;
        Plugin::add_to_linker::<_, HasSelf<InstanceState>>(&mut linker, |state| state)
            .map_err(LoadError::Engine)?;
        let ticker = match options.interrupt {
            Interrupt::Epoch => Some(EpochTicker::start(engine.clone()).map_err(|e| {
                LoadError::Engine(wasmtime::format_err!("cannot start the epoch thread: {e}"))
            })?),
            Interrupt::Fuel | Interrupt::Unbounded => None,
        };
        Ok(Runtime {
            engine,
            linker,
            limits,
            options,
            _ticker: ticker,
        })
    }

    /// The limits every instance runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// How this runtime stops runaway hooks and allocates instances.
    pub fn options(&self) -> RuntimeOptions {
        self.options
    }

    /// Loads a component: compiles a `.wasm` file, or maps a `.cwasm` file made by
    /// [`Runtime::precompile`] (`autoclose compile`), which skips compilation and
    /// starts in a fraction of the time.
    ///
    /// A `.cwasm` file is machine code that is mapped and run as it is: load only files
    /// you compiled yourself with the same autoclose build. Wasmtime refuses files from
    /// another version or configuration.
    pub fn load_file(&self, path: &Path) -> Result<Arc<PluginComponent>, LoadError> {
        let name = path.display().to_string();
        if path.extension().is_some_and(|e| e == "cwasm") {
            // SAFETY: the operator names the file in their own configuration or command
            // line; the documented contract is that only artifacts they compiled with
            // `autoclose compile` are given here. Wasmtime checks the header (version,
            // target, engine configuration) before mapping.
            let component = unsafe { Component::deserialize_file(&self.engine, path) }.map_err(|source| {
                LoadError::Invalid {
                    name: name.clone(),
                    source: source.context(
                        "not a component precompiled by this autoclose build; run `autoclose compile` again",
                    ),
                }
            })?;
            return self.prepare(&name, component);
        }
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: name.clone(),
            source,
        })?;
        self.load_bytes(&name, &bytes)
    }

    /// Compiles `bytes` (a `.wasm` component) into an artifact for
    /// [`Runtime::load_file`] with a `.cwasm` name. Checks first that it is a usable
    /// component of the world.
    pub fn precompile(&self, name: &str, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
        self.load_bytes(name, bytes)?;
        self.engine
            .precompile_component(bytes)
            .map_err(|source| LoadError::Invalid {
                name: name.to_owned(),
                source,
            })
    }

    /// Compiles a component from its bytes; `name` labels it in errors and logs.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Arc<PluginComponent>, LoadError> {
        let invalid = |source| LoadError::Invalid {
            name: name.to_owned(),
            source,
        };
        let component = Component::new(&self.engine, bytes).map_err(invalid)?;
        self.prepare(name, component)
    }

    /// Links a compiled component against the host's capabilities.
    fn prepare(&self, name: &str, component: Component) -> Result<Arc<PluginComponent>, LoadError> {
        let invalid = |source| LoadError::Invalid {
            name: name.to_owned(),
            source,
        };
        let pre = self.linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = PluginPre::new(pre).map_err(invalid)?;
        Ok(Arc::new(PluginComponent {
            name: name.to_owned(),
            pre,
        }))
    }

    /// Asks `component` who it is and what settings it takes (`about.info`), in an
    /// instance of its own that is dropped afterwards.
    pub fn info(&self, component: &PluginComponent) -> Result<PluginInfo, AboutError> {
        self.ask(component, "info", |store, plugin| {
            plugin.chat_gateway_plugin_about().call_info(store)
        })
    }

    /// Asks `component` what `setup` makes it do, in words (`about.explain`), in an
    /// instance of its own; the inner error is the component's refusal of the setup.
    pub fn explain(
        &self,
        component: &PluginComponent,
        setup: &TenantSetup,
    ) -> Result<Result<String, ConfigError>, AboutError> {
        self.ask(component, "explain", |store, plugin| {
            plugin
                .chat_gateway_plugin_about()
                .call_explain(store, setup)
        })
    }

    /// Runs one `about` call in a fresh instance that sees no sessions and whose
    /// actions are dropped.
    fn ask<R>(
        &self,
        component: &PluginComponent,
        call: &'static str,
        ask: impl FnOnce(&mut Store<InstanceState>, &Plugin) -> wasmtime::Result<R>,
    ) -> Result<R, AboutError> {
        let failed = |e: wasmtime::Error| AboutError {
            component: component.name().to_owned(),
            call,
            reason: format!("{e:#}"),
        };
        let fresh = InstanceState::new(0, Arc::from(""), Arc::from(Vec::new()), self.limits);
        let (mut store, plugin) = self.instantiate(component, fresh).map_err(failed)?;
        ask(&mut store, &plugin).map_err(failed)
    }

    /// A fresh store with the sandbox's limits, and an instance of `component` in it.
    pub(crate) fn instantiate(
        &self,
        component: &PluginComponent,
        state: InstanceState,
    ) -> wasmtime::Result<(Store<InstanceState>, Plugin)> {
        // The instance's own bounds (a tenant may have its own), never above the
        // host-wide memory bound that sizes the engine's reservations.
        let memory_mib = state.limits.memory_mib.min(self.limits.memory_mib);
        let mut store = Store::new(&self.engine, state);
        store.data_mut().limiter = StoreLimitsBuilder::new()
            .memory_size(usize::try_from(memory_mib * 1024 * 1024).unwrap_or(usize::MAX))
            .instances(16)
            .memories(4)
            .tables(64)
            .table_elements(100_000)
            .build();
        store.limiter(|state| &mut state.limiter);
        if self.options.interrupt == Interrupt::Epoch {
            store.epoch_deadline_trap();
        }
        self.arm_deadline(&mut store, 1);
        let plugin = component.pre.instantiate(&mut store)?;
        Ok((store, plugin))
    }

    /// Gives the next call into `store`, which carries `events` events, its instance's
    /// time budget: the per-hook budget for each event.
    pub(crate) fn arm_deadline(&self, store: &mut Store<InstanceState>, events: u64) {
        let hook_time_ms = store
            .data()
            .limits
            .hook_time_ms
            .saturating_mul(events.max(1));
        match self.options.interrupt {
            Interrupt::Epoch => {
                let ticks = hook_time_ms.div_ceil(EPOCH_TICK.as_millis() as u64) + 1;
                store.set_epoch_deadline(ticks);
            }
            Interrupt::Fuel => {
                // Cannot fail: fuel is enabled in this configuration.
                let _ = store.set_fuel(hook_time_ms.saturating_mul(FUEL_PER_MS));
            }
            Interrupt::Unbounded => {}
        }
    }
}

/// The WASI monotonic-clock interface as wasmtime-wasi links it.
const MONOTONIC_CLOCK: &str = "wasi:clocks/monotonic-clock@0.2.12";

/// Replaces the WASI calls that would block the host thread (a guest's
/// `std::thread::sleep` becomes `subscribe-duration` + `block`) with traps.
/// Epoch interruption only stops wasm code, never a host call, so a sleeping plugin
/// would otherwise hold up every tenant for as long as it likes. Plugins wait with
/// `timers.set`, which returns at once.
fn forbid_blocking(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    use wasmtime::StoreContextMut;
    use wasmtime::component::Resource;
    use wasmtime_wasi::p2::DynPollable;

    linker.allow_shadowing(true);
    let mut clock = linker.instance(MONOTONIC_CLOCK)?;
    for name in ["subscribe-duration", "subscribe-instant"] {
        clock.func_wrap(
            name,
            move |_: StoreContextMut<'_, InstanceState>, _: (u64,)| -> wasmtime::Result<(Resource<DynPollable>,)> {
                wasmtime::bail!(
                    "plugin called {MONOTONIC_CLOCK}#{name}: blocking and sleeping are not allowed (use timers.set)"
                )
            },
        )?;
    }
    linker.allow_shadowing(false);
    Ok(())
}

/// A thread that advances the engine's epoch every [`EPOCH_TICK`], so that a hook
/// running past its budget is interrupted. Stopped and joined on drop.
struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("autoclose-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::park_timeout(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(EpochTicker {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}
