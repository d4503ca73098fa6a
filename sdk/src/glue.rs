//! What [`crate::export_plugin!`] expands to calls: the per-tenant values and the
//! dispatch of every export to them. Not for plugins to use directly.

use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::{
    ConfigError, Event, HttpResponseEvent, Interests, MessageEvent, Plugin, SessionEvent, TenantId,
    TenantSetup, TimerEvent,
};

pub use crate::bindings::exports::chat_gateway::plugin::about::Guest as About;
pub use crate::bindings::exports::chat_gateway::plugin::hooks::Guest as Hooks;

/// The configured tenants' values. The reference host gives each tenant an instance,
/// so this usually holds one: a B-tree finds it without hashing.
pub struct Tenants<P> {
    tenants: RefCell<BTreeMap<TenantId, P>>,
}

impl<P: Plugin> Tenants<P> {
    /// None configured.
    pub const fn new() -> Self {
        Tenants {
            tenants: RefCell::new(BTreeMap::new()),
        }
    }

    /// `hooks.configure`: builds the tenant's value, replacing any earlier one.
    pub fn configure(&self, setup: TenantSetup) -> Result<Interests, ConfigError> {
        let plugin = P::configure(&setup)?;
        let interests = plugin.interests();
        self.tenants.borrow_mut().insert(setup.tenant, plugin);
        Ok(interests)
    }

    fn with(&self, tenant: TenantId, f: impl FnOnce(&mut P)) {
        if let Some(plugin) = self.tenants.borrow_mut().get_mut(&tenant) {
            f(plugin);
        }
    }

    /// `hooks.on-message`.
    pub fn on_message(&self, event: MessageEvent) {
        self.with(event.tenant, |p| p.on_message(event));
    }

    /// `hooks.on-session-event`.
    pub fn on_session_event(&self, event: SessionEvent) {
        self.with(event.tenant, |p| p.on_session_event(event));
    }

    /// `hooks.on-timer`.
    pub fn on_timer(&self, event: TimerEvent) {
        self.with(event.tenant, |p| p.on_timer(event));
    }

    /// `hooks.on-http-response`.
    pub fn on_http_response(&self, event: HttpResponseEvent) {
        self.with(event.tenant, |p| p.on_http_response(event));
    }

    /// `hooks.on-events`: each event in order, exactly as if it came alone, which is
    /// what the contract asks of a plugin.
    pub fn on_events(&self, events: Vec<Event>) {
        for event in events {
            match event {
                Event::Message(e) => self.on_message(e),
                Event::Session(e) => self.on_session_event(e),
                Event::Timer(e) => self.on_timer(e),
                Event::HttpResponse(e) => self.on_http_response(e),
            }
        }
    }
}

impl<P: Plugin> Default for Tenants<P> {
    fn default() -> Self {
        Self::new()
    }
}

/// `about.explain`: configures a value that is dropped afterwards, so explaining never
/// changes what the instance does.
pub fn explain<P: Plugin>(setup: TenantSetup) -> Result<String, ConfigError> {
    let plugin = P::configure(&setup)?;
    Ok(plugin.explain(&setup))
}
