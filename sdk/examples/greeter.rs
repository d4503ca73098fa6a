use chat_gateway_sdk::{
    ConfigError, MessageEvent, Plugin, PluginInfo, SenderRole, TenantSetup, export_plugin,
};

/// A tenant's settings: `{"greeting": "Hello! How can we help?"}`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Greeter {
    greeting: String,
}

impl Plugin for Greeter {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "greeter",
            "0.1.0",
            "Greets the end user when an agent first speaks.",
        )
    }

    fn configure(setup: &TenantSetup) -> Result<Self, ConfigError> {
        serde_json::from_str(&setup.config).map_err(|e| ConfigError::new("", e.to_string()))
    }

    fn on_message(&mut self, event: MessageEvent) {
        // What the host keeps for the session (`set_state`) says whether it was greeted.
        if event.sender == SenderRole::Agent && event.state().is_empty() {
            let session = event.session();
            if session.post("greeting", &self.greeting).is_ok() {
                let _ = session.set_state(b"greeted");
            }
        }
    }
}

export_plugin!(Greeter);
