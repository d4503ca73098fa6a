//! Vendor components: a tenant names its own component (any component of the world in
//! `wit/`), which runs in its own instance with its own limits, beside tenants of the
//! built-in auto-close component. The example CSAT component is the model.

use autoclose_tests::{CONFIG, message, opened, scenario, start_core, start_core_with, summary};
use serde_json::json;

/// CONFIG plus a tenant `initech` running the CSAT example component.
fn config_with_csat(survey: &str) -> String {
    let csat = format!(
        r#""initech": {{"component": "{{CSAT}}", "webhooks": ["mobile-push"], "survey": {survey}}},"#
    );
    CONFIG.replacen(r#""tenants": {"#, &format!(r#""tenants": {{{csat}"#), 1)
}

fn closed(tenant: &str, session: &str) -> String {
    json!({"type": "session_closed", "tenant": tenant, "session": session}).to_string()
}

#[test]
fn the_csat_component_asks_for_a_survey_when_a_chat_the_user_took_part_in_ends() {
    let config = config_with_csat(r#"{"webhook": "mobile-push", "min_user_messages": 1}"#);
    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    let lines = scenario(&[
        (0, opened("initech", "talked", "web_chat")),
        (0, opened("initech", "silent", "web_chat")),
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("initech", "talked", "agent")),
        (2_000, message("initech", "talked", "end_user")),
        (2_000, message("initech", "silent", "agent")),
        (3_000, message("acme", "s1", "agent")),
        (60_000, closed("initech", "talked")),
        (60_000, closed("initech", "silent")),
    ]);
    let transcript = autoclose_tests::replay_on(&mut gw, &lines).unwrap_or_else(|e| panic!("{e}"));
    let surveys: Vec<&serde_json::Value> = transcript
        .iter()
        .filter(|a| a["action"] == "webhook" && a["tenant"] == "initech")
        .collect();
    assert_eq!(surveys.len(), 1, "{transcript:#?}");
    assert_eq!(surveys[0]["event"], "chat.csat.requested");
    assert_eq!(
        surveys[0]["body"]["data"],
        json!({"session": "talked", "channel": "web_chat", "ended_by": "participant", "locale": "en"})
    );
    // The auto-close tenant beside it is untouched: its cycle runs as usual.
    let acme: Vec<String> = summary(&transcript)
        .into_iter()
        .filter(|l| l.contains("acme/"))
        .collect();
    assert_eq!(
        acme,
        vec![
            "183000 post_message acme/s1 warning",
            "183000 webhook acme/s1 chat.auto_close.warning",
            "303000 post_message acme/s1 close",
            "303000 close_session acme/s1 inactivity",
        ]
    );
}

#[test]
fn a_vendor_components_settings_are_checked_with_the_tenants_path() {
    let config = config_with_csat(r#"{"webhook": "pager"}"#);
    let err = start_core(&config).err().unwrap_or_default();
    assert!(
        err.starts_with("tenants.initech.survey.webhook: unknown webhook \"pager\""),
        "{err}"
    );
}

#[test]
fn an_unknown_component_file_or_a_foreign_one_is_refused_with_the_tenants_path() {
    let missing = CONFIG.replacen(
        r#""tenants": {"#,
        r#""tenants": {"initech": {"component": "no/such/component.wasm"},"#,
        1,
    );
    let err = start_core(&missing).err().unwrap_or_default();
    assert!(
        err.starts_with("tenants.initech.component: no/such/component.wasm: cannot read component"),
        "{err}"
    );
    // A core module (the 8-byte empty one), not a component of the world.
    let dir = std::env::temp_dir().join(format!("autoclose-vendor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let module = dir.join("core-module.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").unwrap_or_else(|e| panic!("{e}"));
    let foreign = CONFIG.replacen(
        r#""tenants": {"#,
        &format!(
            r#""tenants": {{"initech": {{"component": "{}"}},"#,
            module.display()
        ),
        1,
    );
    let err = start_core(&foreign).err().unwrap_or_default();
    assert!(
        err.starts_with("tenants.initech.component: ")
            && err.contains("not a usable chat-gateway:plugin component"),
        "{err}"
    );
}

#[test]
fn a_tenant_gets_its_own_limits_over_the_host_wide_ones() {
    let flood = |tenant: &str, limits: &str| {
        format!(
            r#""{tenant}": {{"component": "{{MISBEHAVING}}", "on_message": "flood", "webhooks": ["mobile-push"]{limits}}},"#
        )
    };
    let tenants = format!(
        "{}{}",
        flood("loose", ""),
        flood("tight", r#", "limits": {"http_in_flight_per_tenant": 10}"#)
    );
    let config = CONFIG
        .replacen(r#""tenants": {"#, &format!(r#""tenants": {{{tenants}"#), 1)
        .replacen(
            '{',
            r#"{"limits": {"actions_per_hook": 200, "http_in_flight_per_tenant": 64},"#,
            1,
        );
    let mut gw = start_core_with(
        &config,
        Box::new(autoclose_webhook::outbound::Capture::default()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let lines = scenario(&[
        (0, opened("loose", "l1", "web_chat")),
        (0, opened("tight", "t1", "web_chat")),
        (5, message("loose", "l1", "agent")),
        (5, message("tight", "t1", "agent")),
    ]);
    autoclose_tests::handle_events(&mut gw, &lines);
    let posts: Vec<(String, String)> = gw
        .take_actions()
        .into_iter()
        .filter_map(|a| match a.kind {
            autoclose_core::action::ActionKind::PostMessage { tenant, text, .. } => {
                Some((tenant, text))
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        posts,
        vec![
            ("loose".to_owned(), "sent 64".to_owned()),
            ("tight".to_owned(), "sent 10".to_owned())
        ]
    );
    // A tenant may not reserve more memory than the host sizes instances for.
    let greedy = CONFIG.replacen(
        r#""tenants": {"#,
        r#""tenants": {"greedy": {"component": "{MISBEHAVING}", "limits": {"memory_mib": 4096}},"#,
        1,
    );
    let err = start_core(&greedy).err().unwrap_or_default();
    assert!(
        err.contains("tenants.greedy.limits.memory_mib: 4096 is more than the host-wide limits.memory_mib (32)"),
        "{err}"
    );
    let typo = CONFIG.replacen(
        r#""tenants": {"#,
        r#""tenants": {"typo": {"component": "{MISBEHAVING}", "limits": {"hook_time": 5}},"#,
        1,
    );
    let err = start_core(&typo).err().unwrap_or_default();
    assert!(
        err.contains("tenants.typo.limits.hook_time: unknown field `hook_time`"),
        "{err}"
    );
}

/// A vendor component installed once under `components`, named by several tenants:
/// its `defaults` reach each tenant's `configure` under the tenant's own settings, and
/// its `limits` sit between the host-wide ones and a tenant's own.
#[test]
fn a_named_component_gives_its_tenants_defaults_and_limits() {
    let config = CONFIG
        .replacen(
            '{',
            r#"{"components": {"csat": {"path": "{CSAT}",
                "defaults": {"survey": {"webhook": "mobile-push", "min_user_messages": 1}},
                "limits": {"http_in_flight_per_tenant": 7}}},"#,
            1,
        )
        .replacen(
            r#""tenants": {"#,
            r#""tenants": {
                "initech": {"component": "csat", "webhooks": ["mobile-push"]},
                "umbrella": {"component": "csat", "webhooks": ["mobile-push"],
                             "survey": {"min_user_messages": 3}, "limits": {"hook_time_ms": 20}},"#,
            1,
        );
    let parsed = autoclose_config::HostConfig::parse(
        &config.replace("{CSAT}", autoclose_tests::CSAT_COMPONENT),
        std::path::Path::new("vendor.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let limits = |name: &str| {
        parsed
            .tenants
            .iter()
            .find(|t| t.name == name)
            .map(|t| (t.limits.http_in_flight_per_tenant, t.limits.hook_time_ms))
    };
    assert_eq!(limits("initech"), Some((7, 100)), "the component's limits");
    assert_eq!(limits("umbrella"), Some((7, 20)), "the tenant's over them");
    assert_eq!(limits("acme"), Some((10_000, 100)), "host-wide");

    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    let mut lines = Vec::new();
    for tenant in ["initech", "umbrella"] {
        lines.push((0, opened(tenant, "s1", "web_chat")));
        lines.push((1_000, message(tenant, "s1", "end_user")));
        lines.push((2_000, closed(tenant, "s1")));
    }
    lines.sort_by_key(|(at, _)| *at);
    let transcript =
        autoclose_tests::replay_on(&mut gw, &scenario(&lines)).unwrap_or_else(|e| panic!("{e}"));
    let surveyed: Vec<&str> = transcript
        .iter()
        .filter(|a| a["action"] == "webhook")
        .filter_map(|a| a["tenant"].as_str())
        .collect();
    assert_eq!(
        surveyed,
        vec!["initech"],
        "umbrella asks for 3 user messages over the component's default of 1"
    );

    let unknown = CONFIG.replacen(
        r#""tenants": {"#,
        r#""tenants": {"initech": {"component": "nps"},"#,
        1,
    );
    let err = start_core(&unknown).err().unwrap_or_default();
    assert!(
        err.contains(r#"tenants.initech.component: "nps" is neither a name in `components` (there are none) nor a .wasm or .cwasm file"#),
        "{err}"
    );
}
