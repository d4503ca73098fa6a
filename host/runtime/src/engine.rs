//! The wasmtime engine: one per process, set up with the sandbox every instance runs
//! in, and the linker holding the host's capabilities.

use std::marker::PhantomData;

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, Store, StoreLimitsBuilder};

use crate::LoadError;
use crate::bindings::Plugin;
use crate::epoch::{EPOCH_TICK, EpochTicker};
use crate::limits::Limits;
use crate::state::InstanceState;
use crate::world::World;

/// Fuel per millisecond of hook budget under [`Interrupt::Fuel`] (roughly what a
/// core executes in a millisecond of simple wasm).
pub const FUEL_PER_MS: u64 = 1_000_000;

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

/// The engine, the linker with the host's capabilities, and the epoch ticker that
/// bounds every hook's run time; for instances that read the world `W`.
pub struct Runtime<W: 'static> {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<InstanceState<W>>,
    limits: Limits,
    options: RuntimeOptions,
    _ticker: Option<EpochTicker>,
    _world: PhantomData<fn() -> W>,
}

impl<W: World> Runtime<W> {
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
        crate::sandbox::forbid_blocking(&mut linker).map_err(LoadError::Engine)?;
        Plugin::add_to_linker::<_, HasSelf<InstanceState<W>>>(&mut linker, |state| state)
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
            _world: PhantomData,
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

    /// A fresh store with the sandbox's limits for `state`.
    pub(crate) fn store(&self, state: InstanceState<W>) -> Store<InstanceState<W>> {
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
        store
    }

    /// Gives the next call into `store`, which carries `events` events, its instance's
    /// time budget: the per-hook budget for each event.
    pub(crate) fn arm_deadline(&self, store: &mut Store<InstanceState<W>>, events: u64) {
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
