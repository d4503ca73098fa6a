//! A live instance of a component: its store and its exports, and the calls the core
//! makes into it with the host's state lent for the duration of each.

use wasmtime::Store;

use crate::bindings::Plugin;
use crate::bindings::chat_gateway::plugin::events::{
    Event, HttpResponseEvent, MessageEvent, SessionEvent, TimerEvent,
};
use crate::bindings::chat_gateway::plugin::types::{ConfigError, Interests, TenantSetup};
use crate::component::PluginComponent;
use crate::engine::Runtime;
use crate::state::InstanceState;
use crate::world::World;

/// A call that trapped, ran out of time or broke a limit: the instance is poisoned and
/// must be dropped, and none of the call's actions may be applied.
#[derive(Debug)]
pub struct Trap(wasmtime::Error);

impl std::fmt::Display for Trap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.0)
    }
}

impl std::error::Error for Trap {}

impl From<wasmtime::Error> for Trap {
    fn from(error: wasmtime::Error) -> Self {
        Trap(error)
    }
}

/// One call into the component: an event to its own hook (which takes it in
/// registers), or several at once (`on-events`).
#[derive(Clone, Copy, Debug)]
pub enum Call<'a> {
    /// `hooks.on-message`.
    Message(&'a MessageEvent),
    /// `hooks.on-session-event`.
    Session(&'a SessionEvent),
    /// `hooks.on-timer`.
    Timer(&'a TimerEvent),
    /// `hooks.on-http-response`.
    Http(&'a HttpResponseEvent),
    /// `hooks.on-events`.
    Events(&'a [Event]),
}

impl Call<'_> {
    /// How many events the call carries: its time budget is the per-hook budget for
    /// each.
    fn events(&self) -> u64 {
        match self {
            Call::Events(events) => events.len() as u64,
            _ => 1,
        }
    }
}

/// An instance of a component for one tenant.
pub struct Instance<W: 'static> {
    store: Store<InstanceState<W>>,
    plugin: Plugin,
}

impl<W: World> Instance<W> {
    /// Instantiates `component` in a fresh store holding `state`.
    pub fn new(
        runtime: &Runtime<W>,
        component: &PluginComponent<W>,
        state: InstanceState<W>,
    ) -> Result<Self, Trap> {
        let mut store = runtime.store(state);
        let plugin = component.pre.instantiate(&mut store).map_err(Trap)?;
        Ok(Instance { store, plugin })
    }

    /// `hooks.configure`: the outer error is a trap, the inner one the component's
    /// refusal of the setup.
    pub fn configure(
        &mut self,
        runtime: &Runtime<W>,
        world: &mut Box<W>,
        setup: &TenantSetup,
    ) -> Result<Result<Interests, ConfigError>, Trap> {
        self.lend(runtime, world, 1, |store, plugin| {
            plugin
                .chat_gateway_plugin_hooks()
                .call_configure(store, setup)
        })
    }

    /// Makes `call` with `world` lent to the capabilities; what the plugin asked for
    /// is then in [`Instance::state_mut`]'s commands.
    pub fn call(
        &mut self,
        runtime: &Runtime<W>,
        world: &mut Box<W>,
        call: Call<'_>,
    ) -> Result<(), Trap> {
        self.lend(runtime, world, call.events(), |store, plugin| {
            let hooks = plugin.chat_gateway_plugin_hooks();
            match call {
                Call::Message(e) => hooks.call_on_message(store, e),
                Call::Session(e) => hooks.call_on_session_event(store, e),
                Call::Timer(e) => hooks.call_on_timer(store, e),
                Call::Http(e) => hooks.call_on_http_response(store, e),
                Call::Events(events) => hooks.call_on_events(store, events),
            }
        })
    }

    /// `about.info` and `about.explain`, for [`Runtime::info`] and
    /// [`Runtime::explain`].
    pub(crate) fn plugin_and_store(&mut self) -> (&Plugin, &mut Store<InstanceState<W>>) {
        (&self.plugin, &mut self.store)
    }

    /// The store's state: the call's bookkeeping and what it asked for.
    pub fn state(&self) -> &InstanceState<W> {
        self.store.data()
    }

    /// The store's state, mutable.
    pub fn state_mut(&mut self) -> &mut InstanceState<W> {
        self.store.data_mut()
    }

    /// Runs `call` with `world` moved into the store (a pointer swap) and a fresh
    /// time budget for `events` events, and moves it back out.
    fn lend<R>(
        &mut self,
        runtime: &Runtime<W>,
        world: &mut Box<W>,
        events: u64,
        call: impl FnOnce(&mut Store<InstanceState<W>>, &Plugin) -> wasmtime::Result<R>,
    ) -> Result<R, Trap> {
        std::mem::swap(&mut self.store.data_mut().lent, world);
        runtime.arm_deadline(&mut self.store, events);
        let result = call(&mut self.store, &self.plugin);
        std::mem::swap(&mut self.store.data_mut().lent, world);
        result.map_err(Trap)
    }
}
