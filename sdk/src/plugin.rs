//! The trait a plugin implements.

use crate::{
    ConfigError, HttpResponseEvent, Interests, MessageEvent, MessageFields, PluginInfo,
    SessionEvent, TenantSetup, TimerEvent,
};

/// A chat-gateway plugin, implemented by what it keeps for one tenant.
///
/// The host configures each tenant before its first event (and again in every fresh
/// instance); [`Plugin::configure`] checks the tenant's settings and builds the value
/// that its events then go to. Every hook has a default that does nothing, so a
/// plugin writes only the ones it cares about.
///
/// Hooks act through [`crate::Session`]'s methods. The host applies what a hook asked
/// for after it returns, all of it or, if the hook panics or runs out of time, none.
pub trait Plugin: Sized + 'static {
    /// Who the plugin is and what settings it takes (`about.info`): name, version, one
    /// sentence, and the JSON Schema of a tenant's settings if it has one. Hosts show
    /// it and merge the schema into their configuration file's.
    fn info() -> PluginInfo;

    /// Checks a tenant's settings (`setup.config` over the operator's
    /// `setup.defaults`) and builds what the plugin keeps for the tenant. An error
    /// names the dotted path of what is wrong inside the tenant's document; the host
    /// refuses the tenant and shows it.
    fn configure(setup: &TenantSetup) -> Result<Self, ConfigError>;

    /// The optional message fields this tenant's events must carry (none by default:
    /// every field asked for is copied into the guest on every message).
    fn interests(&self) -> Interests {
        Interests {
            message_fields: MessageFields::empty(),
        }
    }

    /// `setup` in words for people checking a configuration (`about.explain`), called
    /// on the value [`Plugin::configure`] built from the same setup. Empty by default.
    fn explain(&self, setup: &TenantSetup) -> String {
        let _ = setup;
        String::new()
    }

    /// A message was written in one of the tenant's sessions.
    fn on_message(&mut self, event: MessageEvent) {
        let _ = event;
    }

    /// A session opened, closed or changed.
    fn on_session_event(&mut self, event: SessionEvent) {
        let _ = event;
    }

    /// A timer set with [`crate::Session::set_timer`] came due.
    fn on_timer(&mut self, event: TimerEvent) {
        let _ = event;
    }

    /// A webhook request sent with [`crate::Session::send`] ended.
    fn on_http_response(&mut self, event: HttpResponseEvent) {
        let _ = event;
    }
}

impl PluginInfo {
    /// A plugin's name (`a-z 0-9 -`), version and one-sentence summary, without a
    /// settings schema.
    pub fn new(name: &str, version: &str, summary: &str) -> Self {
        PluginInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            summary: summary.to_owned(),
            settings_schema: None,
        }
    }

    /// The same with the JSON Schema (as text) of a tenant's settings.
    pub fn with_settings_schema(mut self, schema: String) -> Self {
        self.settings_schema = Some(schema);
        self
    }
}

impl ConfigError {
    /// A refusal of the value at `path` (dotted, inside the tenant's document; empty
    /// for the whole document) for `reason`.
    pub fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
