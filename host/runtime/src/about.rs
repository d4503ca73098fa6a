//! What a component says about itself (`about`): asked by tools, never on the hot
//! path, in an instance of its own that sees no sessions and is dropped afterwards.

use std::sync::Arc;

use crate::bindings::chat_gateway::plugin::types::{ConfigError, TenantSetup};
use crate::bindings::exports::chat_gateway::plugin::about::PluginInfo;
use crate::component::PluginComponent;
use crate::engine::Runtime;
use crate::ids::TenantId;
use crate::instance::{Instance, Trap};
use crate::state::InstanceState;
use crate::world::World;

/// Why a component could not say who it is or explain a setup (`about`): it trapped
/// or ran out of time.
#[derive(Debug, thiserror::Error)]
#[error("{component}: about.{call} failed: {trap}")]
pub struct AboutError {
    /// The component's file name or label.
    pub component: String,
    /// `info` or `explain`.
    pub call: &'static str,
    /// The trap.
    pub trap: Trap,
}

impl<W: World> Runtime<W> {
    /// Asks `component` who it is and what settings it takes (`about.info`).
    pub fn info(&self, component: &PluginComponent<W>) -> Result<PluginInfo, AboutError> {
        self.ask(component, "info", |instance| {
            let (plugin, store) = instance.plugin_and_store();
            plugin.chat_gateway_plugin_about().call_info(store)
        })
    }

    /// Asks `component` what `setup` makes it do, in words (`about.explain`); the
    /// inner error is the component's refusal of the setup.
    pub fn explain(
        &self,
        component: &PluginComponent<W>,
        setup: &TenantSetup,
    ) -> Result<Result<String, ConfigError>, AboutError> {
        self.ask(component, "explain", |instance| {
            let (plugin, store) = instance.plugin_and_store();
            plugin
                .chat_gateway_plugin_about()
                .call_explain(store, setup)
        })
    }

    fn ask<R>(
        &self,
        component: &PluginComponent<W>,
        call: &'static str,
        ask: impl FnOnce(&mut Instance<W>) -> wasmtime::Result<R>,
    ) -> Result<R, AboutError> {
        let failed = |trap: Trap| AboutError {
            component: component.name().to_owned(),
            call,
            trap,
        };
        let fresh = InstanceState::new(
            TenantId::default(),
            Arc::from(""),
            Arc::from(Vec::new()),
            *self.limits(),
        );
        let mut instance = Instance::new(self, component, fresh).map_err(failed)?;
        ask(&mut instance).map_err(|e| failed(Trap::from(e)))
    }
}
