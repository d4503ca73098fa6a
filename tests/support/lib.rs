//! Helpers for the integration tests: start a core from config text, replay
//! scenario text, read the transcript back as JSON.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use autoclose::{DEFAULT_PLUGIN, replay, scenario};
use autoclose_config::HostConfig;
use autoclose_core::{Core, CoreError};
use autoclose_core::{PluginComponent, Runtime};
use autoclose_webhook::outbound::ScriptedReceiver;
use serde_json::Value;

pub mod bench;
pub mod chatwoot;
pub mod fuzz;
pub mod postgres;
pub mod receiver;
pub mod rocketchat;
pub mod server;

/// The misbehaving test component built by this package's build script.
pub const MISBEHAVING_PLUGIN: &str = env!("MISBEHAVING_PLUGIN_WASM");

/// The example vendor component (`examples/components/csat`), built by this package's
/// build script.
pub const CSAT_COMPONENT: &str = env!("CSAT_COMPONENT_WASM");

/// The guest SDK's documented example (`sdk/examples/greeter.rs`), built by this
/// package's build script.
pub const GREETER_COMPONENT: &str = env!("GREETER_COMPONENT_WASM");

/// The config used by most rule tests: acme with a warning on `web_chat` and a plain
/// close on `http_api`; globex with a push on warning and on close.
pub const CONFIG: &str = r#"{
  "webhooks": {"mobile-push": {"url": "https://push.example.com/hook"}},
  "tenants": {
    "acme": {"webhooks": ["mobile-push"], "channels": {
      "web_chat": {"auto_close": {
        "warnings": [{"after": "3m", "push": true,
                      "message": "Are you still there? This chat closes in {{minutes_left}} minutes."}],
        "close": {"after": "5m", "message": "This chat was closed because we did not hear from you."},
        "push": {"webhook": "mobile-push"}}},
      "http_api": {"auto_close": {"close": {"after": "10m", "message": "Closed."}}},
      "sms": {"auto_close": {"enabled": false}}}},
    "globex": {"webhooks": ["mobile-push"], "channels": {
      "web_chat": {"auto_close": {
        "warnings": [{"after": "1m", "push": true,
                      "message": "Closing in {{seconds_left}} seconds ({{minutes_left}} min)."}],
        "close": {"after": "1m30s", "message": "Closed for inactivity.", "push": true},
        "push": {"webhook": "mobile-push"}}}}}
  }
}"#;

/// A runtime with default limits and the built-in plugin, compiled once per test binary.
fn shared() -> &'static (Arc<Runtime>, Arc<PluginComponent>) {
    static SHARED: OnceLock<(Arc<Runtime>, Arc<PluginComponent>)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = Arc::new(Runtime::new(Default::default()).unwrap_or_else(|e| panic!("{e}")));
        let plugin = runtime
            .load_bytes("auto-close", DEFAULT_PLUGIN)
            .unwrap_or_else(|e| panic!("{e}"));
        (runtime, plugin)
    })
}

/// A core under test with the scripted receiver its webhook attempts go to.
pub struct TestCore {
    /// The gateway.
    pub core: Core,
    /// Where its webhook attempts go; `webhook_response` lines script it.
    pub receiver: ScriptedReceiver,
}

impl std::ops::Deref for TestCore {
    type Target = Core;
    fn deref(&self) -> &Core {
        &self.core
    }
}

impl std::ops::DerefMut for TestCore {
    fn deref_mut(&mut self) -> &mut Core {
        &mut self.core
    }
}

/// Starts a core for `config` (JSON text); `{MISBEHAVING}`, `{CSAT}` and `{GREETER}`
/// in it stand for the paths of the misbehaving test component, the example CSAT
/// component and the SDK's example.
pub fn start_core(config: &str) -> Result<TestCore, String> {
    let receiver = ScriptedReceiver::default();
    let core = start_core_with(config, Box::new(receiver.clone()))?;
    Ok(TestCore { core, receiver })
}

/// Starts a gateway for `config` whose webhook attempts go to `outbound`.
pub fn start_core_with(
    config: &str,
    outbound: Box<dyn autoclose_webhook::outbound::Outbound + Send>,
) -> Result<Core, String> {
    let text = config
        .replace("{MISBEHAVING}", MISBEHAVING_PLUGIN)
        .replace("{CSAT}", CSAT_COMPONENT)
        .replace("{GREETER}", GREETER_COMPONENT);
    let config =
        HostConfig::parse(&text, Path::new("test-config.json")).map_err(|e| e.to_string())?;
    let (runtime, plugin) =
        if config.limits == Default::default() && config.runtime == Default::default() {
            shared().clone()
        } else {
            let runtime = Arc::new(
                Runtime::with_options(config.limits, config.runtime_options())
                    .map_err(|e| e.to_string())?,
            );
            let plugin = runtime
                .load_bytes("auto-close", DEFAULT_PLUGIN)
                .map_err(|e| e.to_string())?;
            (runtime, plugin)
        };
    Core::new(runtime, &config, plugin, outbound).map_err(|e: CoreError| e.to_string())
}

/// Starts a core for `config` whose webhook attempts go out over real HTTP.
pub fn http_core(config: &str) -> TestCore {
    let sender = autoclose_webhook::http::HttpSender::new().unwrap_or_else(|e| panic!("{e}"));
    let core = start_core_with(config, Box::new(sender)).unwrap_or_else(|e| panic!("{e}"));
    TestCore {
        core,
        receiver: ScriptedReceiver::default(),
    }
}

/// Hands the events of `scenario` to `core` without replay's tail: nothing fires
/// after the last event unless the caller advances time.
pub fn handle_events(core: &mut Core, scenario: &str) {
    let lines = scenario::parse(scenario).unwrap_or_else(|e| panic!("{e}"));
    for line in &lines {
        if let scenario::Item::Event(event) = &line.item {
            core.handle(line.at_ms, event)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
}

/// Replays `scenario` (JSON Lines) on `tested` and returns the transcript lines.
pub fn replay_on(tested: &mut TestCore, scenario: &str) -> Result<Vec<Value>, String> {
    let lines = scenario::parse(scenario).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    let TestCore { core, receiver } = tested;
    replay::replay(
        core,
        receiver,
        &lines,
        replay::ReplayOptions::default(),
        &mut out,
    )
    .map_err(|e| e.to_string())?;
    let text = String::from_utf8(out).map_err(|e| e.to_string())?;
    text.lines()
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{e}: {l}")))
        .collect()
}

/// Replays `scenario` with [`CONFIG`]-like `config`, with events batched or each in
/// a call of its own, and returns the transcript as written (JSON Lines) with the
/// tenants' counters.
pub fn transcript_text(
    config: &str,
    scenario: &str,
    batch: bool,
) -> (String, Vec<autoclose_core::TenantStats>) {
    let mut gw = start_core(config).unwrap_or_else(|e| panic!("{e}"));
    let lines = scenario::parse(scenario).unwrap_or_else(|e| panic!("{e}"));
    let mut out = Vec::new();
    let options = replay::ReplayOptions {
        batch,
        ..replay::ReplayOptions::default()
    };
    replay::replay(&mut gw.core, &gw.receiver, &lines, options, &mut out)
        .unwrap_or_else(|e| panic!("{e}\n{scenario}"));
    let names: Vec<String> = gw.core.tenant_names().map(str::to_owned).collect();
    let stats = names
        .iter()
        .filter_map(|name| gw.core.tenant_stats(name))
        .collect();
    (String::from_utf8_lossy(&out).into_owned(), stats)
}

/// Replays `scenario` with [`CONFIG`]-like `config` and returns the transcript.
pub fn transcript(config: &str, scenario: &str) -> Vec<Value> {
    let mut gateway = start_core(config).unwrap_or_else(|e| panic!("{e}"));
    replay_on(&mut gateway, scenario).unwrap_or_else(|e| panic!("{e}"))
}

/// A compact view of transcript lines: `at_ms action session detail`, where detail is
/// the post kind, the webhook event or the close reason. Makes assertions readable.
/// Webhook attempts are left out (see [`attempts`]).
pub fn summary(transcript: &[Value]) -> Vec<String> {
    transcript
        .iter()
        .filter(|a| a["action"] != "webhook_attempt")
        .map(|a| {
            let detail = match a["action"].as_str() {
                Some("post_message") => a["kind"].as_str(),
                Some("webhook") => a["event"].as_str(),
                Some("close_session") => a["reason"].as_str(),
                _ => None,
            };
            format!(
                "{} {} {}/{} {}",
                a["at_ms"],
                a["action"].as_str().unwrap_or("?"),
                a["tenant"].as_str().unwrap_or("?"),
                a["session"].as_str().unwrap_or("?"),
                detail.unwrap_or("")
            )
        })
        .collect()
}

/// Builds scenario text from `(at_ms, json-without-at_ms)` pairs.
pub fn scenario(lines: &[(u64, String)]) -> String {
    lines
        .iter()
        .map(|(at, rest)| {
            let rest = rest.trim().trim_start_matches('{');
            format!("{{\"at_ms\":{at},{rest}\n")
        })
        .collect()
}

/// `session_opened` for `tenant`/`session` on `channel` (JSON without `at_ms`).
pub fn opened(tenant: &str, session: &str, channel: &str) -> String {
    format!(
        r#"{{"type":"session_opened","tenant":"{tenant}","session":"{session}","channel":"{channel}","attributes":{{"locale":"en"}}}}"#
    )
}

/// A message from `sender` (JSON without `at_ms`).
pub fn message(tenant: &str, session: &str, sender: &str) -> String {
    format!(r#"{{"type":"message","tenant":"{tenant}","session":"{session}","sender":"{sender}"}}"#)
}

/// The webhook attempts of a transcript: `at_ms webhook #attempt result -> outcome`.
pub fn attempts(transcript: &[Value]) -> Vec<String> {
    transcript
        .iter()
        .filter(|a| a["action"] == "webhook_attempt")
        .map(|a| {
            format!(
                "{} {} #{} {} -> {}",
                a["at_ms"],
                a["webhook"].as_str().unwrap_or("?"),
                a["attempt"],
                a["result"].as_str().unwrap_or("?"),
                a["outcome"].as_str().unwrap_or("?")
            )
        })
        .collect()
}
