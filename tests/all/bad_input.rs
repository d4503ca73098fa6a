//! Bad configuration and bad scenarios: the CLI exits non-zero, names what is wrong and
//! where on stderr, and prints no transcript.

use std::path::PathBuf;
use std::process::Command;

use autoclose_tests::CONFIG;

/// A scratch directory for this test binary.
fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("autoclose-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

const GOOD_SCENARIO: &str = concat!(
    r#"{"at_ms":0,"type":"session_opened","tenant":"acme","session":"s1","channel":"web_chat"}"#,
    "\n",
    r#"{"at_ms":1000,"type":"message","tenant":"acme","session":"s1","sender":"agent"}"#,
    "\n"
);

/// Runs `replay` with `config` and `scenario` texts; returns (success, stdout, stderr).
fn replay(name: &str, config: &str, scenario: &str) -> (bool, String, String) {
    let dir = scratch();
    let config_path = dir.join(format!("{name}.json"));
    let scenario_path = dir.join(format!("{name}.jsonl"));
    std::fs::write(&config_path, config).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&scenario_path, scenario).unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(env!("CARGO_BIN_EXE_autoclose-cli-under-test"))
        .arg("replay")
        .arg("--config")
        .arg(&config_path)
        .arg(&scenario_path)
        .env("AUTOCLOSE_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the CLI: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Asserts that replay fails with a message containing `expected` and prints nothing.
fn refused(name: &str, config: &str, scenario: &str, expected: &str) {
    let (ok, stdout, stderr) = replay(name, config, scenario);
    assert!(!ok, "{name}: must fail; stderr: {stderr}");
    assert!(
        stdout.is_empty(),
        "{name}: no transcript may be printed, got {stdout}"
    );
    assert!(
        stderr.contains(expected),
        "{name}: expected {expected:?} in stderr:\n{stderr}"
    );
}

fn config_with(from: &str, to: &str) -> String {
    assert!(CONFIG.contains(from), "test setup: {from:?} not in CONFIG");
    CONFIG.replacen(from, to, 1)
}

#[test]
fn the_good_inputs_pass() {
    let (ok, stdout, stderr) = replay("good", CONFIG, GOOD_SCENARIO);
    assert!(ok, "{stderr}");
    assert_eq!(
        stdout.lines().count(),
        5,
        "warning post, push, its attempt, close post, close: {stdout}"
    );
}

#[test]
fn a_bad_duration_names_its_path_and_suggests_a_fix() {
    refused(
        "duration",
        &config_with(r#""after": "3m""#, r#""after": "3 minutes""#),
        GOOD_SCENARIO,
        r#"tenants.acme.channels.web_chat.auto_close.warnings[0].after: "3 minutes" is not a duration (try "3m")"#,
    );
}

#[test]
fn an_out_of_range_duration_is_refused() {
    refused(
        "range",
        &config_with(r#""after": "5m""#, r#""after": "8d""#),
        GOOD_SCENARIO,
        "tenants.acme.channels.web_chat.auto_close.close.after: 8d is outside the allowed range 1s to 7d",
    );
}

#[test]
fn an_unknown_key_is_refused_with_its_path() {
    refused(
        "unknown-key",
        &config_with(
            r#""close": {"after": "5m","#,
            r#""close": {"after": "5m", "afer": "5m","#,
        ),
        GOOD_SCENARIO,
        "tenants.acme.channels.web_chat.auto_close.close.afer: unknown field `afer`",
    );
    refused(
        "unknown-top-key",
        &config_with(r#""webhooks""#, r#""egres": {}, "webhooks""#),
        GOOD_SCENARIO,
        "egres: unknown field `egres`",
    );
}

#[test]
fn a_wrong_type_is_refused_with_its_path_and_line() {
    refused(
        "wrong-type",
        &config_with(r#""push": true,"#, r#""push": "no","#),
        GOOD_SCENARIO,
        "tenants.acme.channels.web_chat.auto_close.warnings[0].push: invalid type: string \"no\", expected a boolean",
    );
    refused(
        "wrong-type-host",
        &config_with(r#""url": "https://push.example.com/hook""#, r#""url": 42"#),
        GOOD_SCENARIO,
        "wrong-type-host.json:2:",
    );
}

#[test]
fn an_unknown_webhook_name_is_refused() {
    refused(
        "webhook",
        &config_with(r#""webhook": "mobile-push""#, r#""webhook": "pager""#),
        GOOD_SCENARIO,
        r#"tenants.acme.channels.web_chat.auto_close.push.webhook: unknown webhook "pager" (this tenant may call: mobile-push)"#,
    );
}

#[test]
fn an_unknown_placeholder_is_refused() {
    refused(
        "placeholder",
        &config_with("{{minutes_left}} minutes.", "{{minutes_lft}} minutes."),
        GOOD_SCENARIO,
        "tenants.acme.channels.web_chat.auto_close.warnings[0].message: unknown placeholder {{minutes_lft}}",
    );
}

#[test]
fn a_warning_at_or_after_the_close_is_refused() {
    refused(
        "warning-after-close",
        &config_with(r#""after": "3m""#, r#""after": "6m""#),
        GOOD_SCENARIO,
        "tenants.acme.channels.web_chat.auto_close.warnings[0].after: a warning at 6m comes at or after the close at 5m",
    );
}

#[test]
fn invalid_json_names_the_line() {
    refused(
        "syntax",
        "{\n  \"tenants\": {\n    \"acme\": {,}\n  }\n}\n",
        GOOD_SCENARIO,
        ".json:3:",
    );
}

#[test]
fn a_malformed_scenario_line_is_named() {
    let scenario = format!("{GOOD_SCENARIO}{{\"at_ms\": 2000, \"type\": \n");
    refused("malformed", CONFIG, &scenario, "line 3: not valid JSON");
}

#[test]
fn an_unknown_sender_is_named() {
    let scenario = format!(
        "{GOOD_SCENARIO}{}\n",
        r#"{"at_ms":2000,"type":"message","tenant":"acme","session":"s1","sender":"customer"}"#
    );
    refused(
        "sender",
        CONFIG,
        &scenario,
        "line 3: sender: unknown variant `customer`",
    );
}

#[test]
fn an_unknown_event_type_is_named() {
    let scenario = format!(
        "{}\n{GOOD_SCENARIO}",
        r#"{"at_ms":0,"type":"typing","tenant":"acme","session":"s1"}"#
    );
    refused(
        "type",
        CONFIG,
        &scenario,
        "line 1: type: unknown event type \"typing\"",
    );
}

#[test]
fn time_going_backwards_is_named() {
    let scenario = format!(
        "{GOOD_SCENARIO}{}\n",
        r#"{"at_ms":999,"type":"message","tenant":"acme","session":"s1","sender":"agent"}"#
    );
    refused(
        "order",
        CONFIG,
        &scenario,
        "line 3: at_ms 999 is earlier than 1000 on line 2",
    );
}

/// Every kind of bad per-tenant setting, through the CLI on the realistic example
/// configuration: refused at load, naming the file and the path where it was written.
#[test]
fn every_kind_of_bad_tenant_setting_is_named_with_its_path() {
    let example = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/multi-tenant/config.json"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let cases: [(&str, &str, &str, &str); 10] = [
        (
            "locale-key",
            r#""pt-BR": "Ainda está aí?"#,
            r#""Brazilian": "Ainda está aí?"#,
            r#"tenants.globex.channels.web_chat.auto_close.warnings[0].message.Brazilian: "Brazilian" is not a locale key"#,
        ),
        (
            "default-text",
            r#""default": "Still with us? This chat closes in {{seconds_left}} seconds.","#,
            "",
            r#"tenants.globex.channels.web_chat.auto_close.warnings[0].message: no "default" text"#,
        ),
        (
            "placeholder",
            r#""Ainda está aí? Esta conversa fecha em {{seconds_left}} segundos.""#,
            r#""Ainda está aí? Esta conversa fecha em {{segundos}} segundos.""#,
            "tenants.globex.channels.web_chat.auto_close.warnings[0].message.pt-BR: unknown placeholder {{segundos}}",
        ),
        (
            "unordered-steps",
            r#""after": "4m","#,
            r#""after": "1m","#,
            "tenants.acme.auto_close.warnings[1].after: 1m is not after the previous warning (2m)",
        ),
        (
            "overlapping-steps",
            r#""after": "4m","#,
            r#""after": "2m","#,
            "tenants.acme.auto_close.warnings[1].after: 2m is not after the previous warning (2m)",
        ),
        (
            "step-after-close",
            r#""close": { "after": "5m", "push": true }"#,
            r#""close": { "after": "3m", "push": true }"#,
            "tenants.acme.auto_close.warnings[1].after: a warning at 4m comes at or after the close at 3m",
        ),
        (
            "time-zone",
            r#""time_zone": "Europe/Lisbon""#,
            r#""time_zone": "Lisbon""#,
            r#"tenants.acme.auto_close.time_zone: "Lisbon" is not a time zone"#,
        ),
        (
            "holiday",
            r#""2026-12-25""#,
            r#""25/12/2026""#,
            r#"tenants.acme.auto_close.business_hours.holidays[0]: "25/12/2026" is not a date"#,
        ),
        (
            "hours",
            r#""mon": ["09:00-18:00"], "tue""#,
            r#""mon": ["18:00-09:00"], "tue""#,
            r#"tenants.acme.auto_close.business_hours.weekly.mon[0]: "18:00-09:00" ends before it starts"#,
        ),
        (
            "defaults",
            r#""started_by": ["agent"]"#,
            r#""started_by": ["agents"]"#,
            "defaults.channels.http_api.auto_close.started_by[0] (applied to tenant acme): unknown variant `agents`",
        ),
    ];
    for (name, from, to, expected) in cases {
        assert!(
            example.contains(from),
            "{name}: {from:?} not in the example"
        );
        let config = example.replacen(from, to, 1);
        let dir = scratch();
        let path = dir.join(format!("tenant-{name}.json"));
        std::fs::write(&path, &config).unwrap_or_else(|e| panic!("{e}"));
        let output = Command::new(env!("CARGO_BIN_EXE_autoclose-cli-under-test"))
            .arg("check-config")
            .arg(&path)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the CLI: {e}"));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{name}: must be refused");
        assert!(
            stderr.contains(&format!("{}: {expected}", path.display())),
            "{name}: expected {expected:?} after the file name in:\n{stderr}"
        );
    }
}
