//! Plugins written on the guest SDK describe themselves through the contract
//! (`about`): the host's `schema` and `check-config` serve any component, and the
//! SDK's documented example runs in the real host as written.

use std::path::{Path, PathBuf};

use autoclose_core::Runtime;
use autoclose_tests::{
    CSAT_COMPONENT, GREETER_COMPONENT, MISBEHAVING_PLUGIN, message, opened, replay_on, scenario,
    start_core, summary,
};
use serde_json::{Value, json};

use crate::run_cli as cli;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("autoclose-sdk-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir.join(name)
}

#[test]
fn the_sdk_example_greets_once_per_chat_in_the_real_host() {
    let config = r#"{"tenants": {"acme": {"component": "{GREETER}", "greeting": "Hello, how can we help?"}}}"#;
    let mut gw = start_core(config).unwrap_or_else(|e| panic!("{e}"));
    let lines = scenario(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (2_000, message("acme", "s1", "end_user")),
        (3_000, message("acme", "s1", "agent")),
        (
            4_000,
            message("acme", "s2", "agent")
                .replace(r#""sender""#, r#""channel":"web_chat","sender""#),
        ),
    ]);
    let transcript = replay_on(&mut gw, &lines).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        summary(&transcript),
        vec![
            "1000 post_message acme/s1 greeting",
            "4000 post_message acme/s2 greeting"
        ],
        "{transcript:#?}"
    );
    assert_eq!(transcript[0]["text"], "Hello, how can we help?");

    let err = start_core(r#"{"tenants": {"acme": {"component": "{GREETER}", "greting": "Hi"}}}"#)
        .err()
        .unwrap_or_default();
    assert!(
        err.starts_with("tenants.acme: unknown field `greting`"),
        "{err}"
    );
}

#[test]
fn every_guest_says_who_it_is_through_the_contract() {
    let runtime = Runtime::new(Default::default()).unwrap_or_else(|e| panic!("{e}"));
    let info = |path: &str| {
        let component = runtime
            .load_file(Path::new(path))
            .unwrap_or_else(|e| panic!("{e}"));
        runtime.info(&component).unwrap_or_else(|e| panic!("{e}"))
    };
    let csat = info(CSAT_COMPONENT);
    assert_eq!(
        (csat.name.as_str(), csat.version.as_str()),
        ("csat", "0.1.0")
    );
    let schema: Value = serde_json::from_str(csat.settings_schema.as_deref().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(schema["title"], "CSAT survey settings");
    assert_eq!(info(GREETER_COMPONENT).name, "greeter");
    assert!(info(GREETER_COMPONENT).settings_schema.is_none());
    assert_eq!(info(MISBEHAVING_PLUGIN).name, "misbehaving");
    let builtin = runtime
        .load_bytes("built-in", autoclose::DEFAULT_PLUGIN)
        .unwrap_or_else(|e| panic!("{e}"));
    let auto_close = runtime.info(&builtin).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(auto_close.name, "auto-close");
    assert!(
        auto_close
            .settings_schema
            .is_some_and(|s| s.contains("RawAutoClose"))
    );
}

#[test]
fn schema_serves_a_vendor_component_s_settings() {
    let out = cli(&["schema", "--plugin", CSAT_COMPONENT]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}"));
    let good = json!({
        "webhooks": {"surveys": {"url": "https://surveys.example.com/"}},
        "defaults": {"survey": {"webhook": "surveys"}},
        "tenants": {
            "initech": {"webhooks": ["surveys"], "survey": {"webhook": "surveys", "min_user_messages": 2}},
            "acme": {"component": "other.wasm", "anything": {"goes": true}}
        }
    });
    let errors: Vec<String> = validator
        .iter_errors(&good)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "{errors:?}");
    for bad in [
        json!({"tenants": {"initech": {"survey": {"webhook": "surveys", "min_messages": 2}}}}),
        json!({"tenants": {"initech": {"surveys": {}}}}),
        json!({"defaults": {"survey": {"webhook": 7}}}),
    ] {
        assert!(!validator.is_valid(&bad), "accepted {bad}");
    }

    let out = cli(&["schema", "--plugin", "no/such.wasm"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("no/such.wasm: cannot read component"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn check_config_has_every_component_explain_its_tenant() {
    let config = scratch("vendors.json");
    let body = json!({
        "webhooks": {"surveys": {"url": "https://surveys.example.com/"}},
        "components": {"csat": {"path": CSAT_COMPONENT}},
        "tenants": {
            "initech": {"component": "csat", "webhooks": ["surveys"],
                        "survey": {"webhook": "surveys", "channels": ["web_chat"]}},
            "hello": {"component": GREETER_COMPONENT, "greeting": "Hi"}
        }
    });
    std::fs::write(&config, body.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let path = config.display().to_string();
    let out = cli(&["check-config", &path]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.starts_with("ok: 2 tenant(s), 1 webhook(s)\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "  initech: configured (csat 0.1.0, {CSAT_COMPONENT})\n"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("    when a chat on channel web_chat ends, in which the end user wrote at least once: a survey request through webhook \"surveys\"\n"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  hello: configured (greeter 0.1.0, "),
        "{stdout}"
    );
    assert!(
        stdout.contains("    (the component gives no explanation)\n"),
        "{stdout}"
    );
    let out = cli(&["check-config", "--quiet", &path]);
    assert_eq!(
        text(&out.stdout).lines().count(),
        3,
        "{}",
        text(&out.stdout)
    );
}
