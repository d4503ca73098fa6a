//! The `autoclose` CLI as a real process: the README's main command, logs, other
//! components, configuration checks and the scenario generator.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use autoclose_tests::MISBEHAVING_PLUGIN;

use crate::run_cli as cli;
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn lines(stdout: &[u8]) -> Vec<Value> {
    text(stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("autoclose-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir.join(name)
}

#[test]
fn the_readme_example_replays() {
    let out = cli(&[
        "replay",
        "--config",
        "examples/config.json",
        "examples/conversation.jsonl",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let actions = lines(&out.stdout);
    let kinds: Vec<String> = actions
        .iter()
        .map(|a| {
            format!(
                "{} {} {}",
                a["at_ms"],
                a["session"].as_str().unwrap_or(""),
                a["action"].as_str().unwrap_or("")
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            "105000 g1 post_message",
            "105000 g1 webhook",
            "105000 g1 webhook_attempt",
            "135000 g1 post_message",
            "135000 g1 webhook",
            "135000 g1 webhook_attempt",
            "135000 g1 close_session",
            "181000 s1 post_message",
            "181000 s1 webhook",
            "181000 s1 webhook_attempt",
            "301000 s1 post_message",
            "301000 s1 close_session",
        ]
    );
    // The operator's header (a token) never appears in the output.
    assert!(
        !text(&out.stdout).contains("Bearer"),
        "secrets must not reach the transcript"
    );
}

#[test]
fn events_for_unknown_tenants_are_logged() {
    let scenario = scratch("unknown-tenant.jsonl");
    std::fs::write(
        &scenario,
        concat!(
            r#"{"at_ms":0,"type":"message","tenant":"initech","session":"i1","sender":"agent","channel":"web_chat"}"#,
            "\n",
            r#"{"at_ms":1,"type":"message","tenant":"initech","session":"i2","sender":"agent","channel":"web_chat"}"#,
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // Once per tenant on one thread, and on two (whose cores share what they reported).
    for threads in ["1", "2"] {
        let out = cli(&[
            "replay",
            "--threads",
            threads,
            "--config",
            "examples/config.json",
            &scenario.display().to_string(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(out.stdout.is_empty());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("no such tenant configured: event ignored")
                && stderr.contains("initech"),
            "{stderr}"
        );
        assert_eq!(
            stderr.matches("no such tenant configured").count(),
            1,
            "once per tenant at info, on {threads} threads: {stderr}"
        );
    }
}

/// A plugin's log records are bounded per hook (32, each cut at 1 KiB) and cannot
/// forge log lines: control characters are escaped, so every line of the JSON log is
/// one record.
#[test]
fn plugin_log_records_are_capped_cut_and_escaped() {
    let config = scratch("chatty.json");
    std::fs::write(
        &config,
        r#"{"tenants": {"acme": {"on_message": "chatty"}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new(env!("CARGO_BIN_EXE_autoclose-cli-under-test"))
        .current_dir(repo())
        .args(["--log-format", "json", "replay", "--config"])
        .arg(&config)
        .args([
            "--plugin",
            MISBEHAVING_PLUGIN,
            "examples/conversation.jsonl",
        ])
        .env("AUTOCLOSE_LOG", "warn")
        .output()
        .unwrap_or_else(|e| panic!("cannot run the CLI: {e}"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.matches("logged 100").count(),
        2,
        "both acme messages ran the hook to the end: {stdout}"
    );
    let mut records = 0;
    let mut overflows = 0;
    for line in text(&out.stderr).lines() {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not one record ({e}): {line}"));
        if entry["target"] != "plugin" {
            continue;
        }
        let message = entry["fields"]["message"].as_str().unwrap_or_default();
        if message.starts_with("record ") {
            records += 1;
            assert!(!message.contains('\n'), "a raw newline: {message}");
            assert!(message.contains("\\n"), "the newline is escaped: {message}");
            assert!(
                message.len() <= 1024 + '…'.len_utf8(),
                "{} bytes",
                message.len()
            );
            assert!(message.ends_with('…'), "cut with a mark");
            assert_eq!(entry["fields"]["tenant"], "acme");
        } else if message.contains("log records per event") {
            overflows += 1;
        }
    }
    assert_eq!(records, 2 * 32, "32 records per hook, two hooks");
    assert_eq!(overflows, 2, "one notice per hook that overflowed");
}

#[test]
fn another_component_can_be_given_with_plugin() {
    let config = scratch("other-component.json");
    std::fs::write(&config, r#"{"tenants": {"acme": {"on_message": "post"}}}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = cli(&[
        "replay",
        "--config",
        &config.display().to_string(),
        "--plugin",
        MISBEHAVING_PLUGIN,
        "examples/conversation.jsonl",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let actions = lines(&out.stdout);
    assert_eq!(
        actions.len(),
        2,
        "one post per acme message (agent and echo)"
    );
    assert!(
        actions
            .iter()
            .all(|a| a["kind"] == "test" && a["tenant"] == "acme")
    );
}

#[test]
fn check_config_accepts_the_example_explains_it_and_names_errors() {
    let out = cli(&["check-config", "examples/config.json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("ok: 2 tenant(s), 1 webhook(s)"),
        "{stdout}"
    );
    // Each channel's timeline, in words and to scale, with where settings came from.
    assert!(
        stdout.contains(
            "after 3m       warning 1: posted in the chat and pushed through mobile-push"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("|----------------------------W------------------X"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            r#"close.after = "5m"  [channel web_chat: channels.web_chat.auto_close.close.after]"#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("channel http_api: auto-close is off"),
        "{stdout}"
    );
    let quiet = cli(&["check-config", "--quiet", "examples/config.json"]);
    assert_eq!(
        text(&quiet.stdout).lines().count(),
        3,
        "{}",
        text(&quiet.stdout)
    );

    let bad = scratch("bad.json");
    std::fs::write(&bad, r#"{"tenants": {"acme": {"channels": {"web_chat": {"auto_close": {"close": {"after": "soon"}}}}}}}"#)
        .unwrap_or_else(|e| panic!("{e}"));
    let out = cli(&["check-config", &bad.display().to_string()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            r#"tenants.acme.channels.web_chat.auto_close.close.after: "soon" is not a duration"#
        ),
        "{}",
        text(&out.stderr)
    );
    // A mistake in the operator's defaults is located there, for the tenant it broke.
    std::fs::write(
        &bad,
        r#"{"defaults": {"auto_close": {"close": {"after": "5m", "message": "Bye {{user}}"}}}, "tenants": {"acme": {}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = cli(&["check-config", &bad.display().to_string()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains(
            "defaults.auto_close.close.message (applied to tenant acme): unknown placeholder {{user}}"
        ),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn schema_describes_the_config_file() {
    let out = cli(&["schema"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let schema: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(schema["title"], "autoclose configuration");
    for key in [
        "webhooks",
        "tenants",
        "defaults",
        "components",
        "limits",
        "gateway",
        "ingest",
        "egress",
    ] {
        assert!(schema["properties"][key].is_object(), "no {key}: {schema}");
    }
    let layer = &schema["$defs"]["RawAutoClose"]["properties"];
    for key in [
        "warnings",
        "close",
        "push",
        "time_zone",
        "business_hours",
        "started_by",
        "max_cycles",
    ] {
        assert!(layer[key].is_object(), "auto_close has no {key}: {layer}");
    }
    assert_eq!(
        schema["$defs"]["RawAutoClose"]["additionalProperties"],
        false
    );

    // An editor validating with it accepts every example and flags typical mistakes.
    let validator = jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("{e}"));
    for example in [
        "examples/config.json",
        "examples/serve.json",
        "examples/multi-tenant/config.json",
        "examples/chatwoot/config.json",
        "examples/rocketchat/config.json",
    ] {
        let text = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(example),
        )
        .unwrap_or_else(|e| panic!("{example}: {e}"));
        let config: serde_json::Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{example}: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(&config)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{example}: {errors:?}");
    }
    for bad in [
        r#"{"tenants": {"acme": {"auto_close": {"warnigns": []}}}}"#,
        r#"{"tenants": {"acme": {"auto_close": {"close": {"after": "5 minutes"}}}}}"#,
        r#"{"tenants": {"acme": {"auto_close": {"close": {"after": "5m", "message": {"pt": "x"}}}}}}"#,
        r#"{"defaults": {"auto_close": {"started_by": ["customer"]}}}"#,
        r#"{"limits": {"hook_time": 5}}"#,
    ] {
        let config: serde_json::Value = serde_json::from_str(bad).unwrap_or_else(|e| panic!("{e}"));
        assert!(!validator.is_valid(&config), "the schema accepts {bad}");
    }
}

/// Generates 2,000 sessions, replays them and checks the transcript against the rules
/// for `acme`'s web_chat (warning 3m, close 2m after it).
#[test]
fn a_generated_scenario_replays_and_keeps_the_rules() {
    let scenario = scratch("generated.jsonl");
    let out = cli(&[
        "generate",
        "--sessions",
        "2000",
        "--seed",
        "42",
        "-o",
        &scenario.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = cli(&[
        "replay",
        "--config",
        "examples/config.json",
        &scenario.display().to_string(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let actions = lines(&out.stdout);
    assert!(
        actions.len() > 1000,
        "a busy contact centre closes many chats: {}",
        actions.len()
    );

    let mut previous = 0;
    let mut warned: HashMap<String, u64> = HashMap::new();
    let mut closed: HashSet<String> = HashSet::new();
    for action in &actions {
        let at = action["at_ms"]
            .as_u64()
            .unwrap_or_else(|| panic!("at_ms in {action}"));
        assert!(at >= previous, "transcript in time order");
        previous = at;
        let key = format!(
            "{}/{}",
            action["tenant"].as_str().unwrap_or(""),
            action["session"].as_str().unwrap_or("")
        );
        assert!(!closed.contains(&key), "nothing after a close: {action}");
        match (action["action"].as_str(), action["kind"].as_str()) {
            (Some("post_message"), Some("warning")) => {
                warned.insert(key, at);
            }
            (Some("close_session"), _) => {
                if key.starts_with("acme/") && action["reason"] == "inactivity" {
                    // acme's web_chat warns; its http_api closes without warning.
                    if let Some(warned_at) = warned.get(&key) {
                        assert_eq!(at - warned_at, 120_000, "close 2m after the warning: {key}");
                    }
                }
                closed.insert(key);
            }
            _ => {}
        }
    }
    assert!(!warned.is_empty() && !closed.is_empty());
}

#[test]
fn a_precompiled_component_replays_the_same_and_a_foreign_file_is_refused() {
    let artifact = scratch("plugin.cwasm");
    let out = cli(&["compile", "-o", &artifact.display().to_string()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let built_in = cli(&[
        "replay",
        "--config",
        "examples/config.json",
        "examples/conversation.jsonl",
    ]);
    let precompiled = cli(&[
        "replay",
        "--config",
        "examples/config.json",
        "--plugin",
        &artifact.display().to_string(),
        "examples/conversation.jsonl",
    ]);
    assert!(
        precompiled.status.success(),
        "{}",
        text(&precompiled.stderr)
    );
    assert!(!built_in.stdout.is_empty());
    assert_eq!(precompiled.stdout, built_in.stdout);

    let forged = scratch("forged.cwasm");
    std::fs::write(&forged, b"\x7fELF not really").unwrap_or_else(|e| panic!("{e}"));
    let out = cli(&[
        "replay",
        "--config",
        "examples/config.json",
        "--plugin",
        &forged.display().to_string(),
        "examples/conversation.jsonl",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("run `autoclose compile` again"),
        "{}",
        text(&out.stderr)
    );
    let out = cli(&[
        "compile",
        "-o",
        &scratch("wrong-name.wasm").display().to_string(),
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("must be named *.cwasm"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn the_serve_example_needs_its_secrets_from_the_environment_and_never_prints_them() {
    let without = cli(&["check-config", "examples/serve.json"]);
    assert!(!without.status.success());
    let stderr = text(&without.stderr);
    assert!(stderr.contains("examples/serve.json: "), "{stderr}");
    assert!(stderr.contains("environment variable"), "{stderr}");

    let token = "ingest-token-that-must-not-leak";
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let with = Command::new(env!("CARGO_BIN_EXE_autoclose-cli-under-test"))
        .current_dir(repo())
        .args(["check-config", "examples/serve.json"])
        .env("AUTOCLOSE_INGEST_TOKEN", token)
        .env("AUTOCLOSE_ACTIONS_SECRET", secret)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the CLI: {e}"));
    let all = format!("{}{}", text(&with.stdout), text(&with.stderr));
    assert!(with.status.success(), "{all}");
    assert!(!all.contains(token) && !all.contains("MfKQ9r8"), "{all}");
}

/// Platforms number their messages (`seq`): a repeat is dropped, but our own warning's
/// echo does not count, so a reply written just before the warning, whose webhook
/// comes after the echo, still cancels the close; and the agent note comes with the
/// warning.
#[test]
fn a_reply_overtaken_by_our_echo_still_cancels_and_a_repeat_is_dropped() {
    let config = scratch("seq-config.json");
    std::fs::write(
        &config,
        r#"{"tenants": {"globex": {"channels": {"web_chat": {"auto_close": {
             "warnings": [{"after": "2s", "message": "Still there?", "agent_notice": "closing soon"}],
             "close": {"after": "4s"}}}}}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let scenario = scratch("seq.jsonl");
    let write = |lines: &[&str]| {
        std::fs::write(&scenario, lines.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"))
    };
    let opened = r#"{"type":"session_opened","tenant":"globex","session":"s1","channel":"web_chat","at_ms":0}"#;
    let agent = r#"{"type":"message","tenant":"globex","session":"s1","sender":"agent","text":"hi","seq":10,"at_ms":100}"#;
    let echo = r#"{"type":"message","tenant":"globex","session":"s1","sender":"bot","text":"Still there?","origin":"autoclose","seq":12,"at_ms":2150}"#;
    let reply = r#"{"type":"message","tenant":"globex","session":"s1","sender":"end_user","text":"yes!","seq":11,"at_ms":2200}"#;
    let kinds = |out: &std::process::Output| -> Vec<String> {
        assert!(out.status.success(), "{}", text(&out.stderr));
        lines(&out.stdout)
            .iter()
            .map(|a| {
                format!(
                    "{} {}",
                    a["action"].as_str().unwrap_or(""),
                    a["kind"].as_str().unwrap_or("")
                )
            })
            .collect()
    };
    let config_arg = config.to_string_lossy().into_owned();
    let scenario_arg = scenario.to_string_lossy().into_owned();
    let replay = || cli(&["replay", "--config", &config_arg, &scenario_arg]);

    write(&[opened, agent, echo, reply]);
    assert_eq!(
        kinds(&replay()),
        ["post_message warning", "post_message agent_notice"],
        "the reply cancelled the close"
    );
    // Without the reply the cycle closes; the agent message delivered again after the
    // warning is dropped (applied, it would start a new cycle and warn again).
    let repeat = r#"{"type":"message","tenant":"globex","session":"s1","sender":"agent","text":"hi","seq":10,"at_ms":2300}"#;
    write(&[opened, agent, echo, repeat]);
    assert_eq!(
        kinds(&replay()),
        [
            "post_message warning",
            "post_message agent_notice",
            "close_session "
        ]
    );
}

/// The platform guides' configurations check with their secrets from the environment,
/// show the agent note in the timeline, and print no secret.
#[test]
fn the_platform_examples_check_and_never_print_their_secrets() {
    let secrets = [
        ("CHATWOOT_API_TOKEN", "cw-token-that-must-not-leak"),
        ("CHATWOOT_WEBHOOK_SECRET", "cw-secret-that-must-not-leak"),
        ("ROCKETCHAT_BOT_USER_ID", "rcbotuser01"),
        ("ROCKETCHAT_BOT_TOKEN", "rc-token-that-must-not-leak"),
        (
            "ROCKETCHAT_WEBHOOK_TOKEN",
            "rc-webhook-token-that-must-not-leak",
        ),
        ("AUTOCLOSE_INGEST_TOKEN", "ingest-token-that-must-not-leak"),
        (
            "PUSH_WEBHOOK_SECRET",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ),
    ];
    for example in [
        "examples/chatwoot/config.json",
        "examples/rocketchat/config.json",
    ] {
        let without = cli(&["check-config", example]);
        assert!(!without.status.success(), "{example} needs its secrets");
        assert!(
            text(&without.stderr).contains("environment variable"),
            "{}",
            text(&without.stderr)
        );
        let mut command = Command::new(env!("CARGO_BIN_EXE_autoclose-cli-under-test"));
        command.current_dir(repo()).args(["check-config", example]);
        for (name, value) in secrets {
            command.env(name, value);
        }
        let with = command
            .output()
            .unwrap_or_else(|e| panic!("cannot run the CLI: {e}"));
        let all = format!("{}{}", text(&with.stdout), text(&with.stderr));
        assert!(with.status.success(), "{example}: {all}");
        assert!(
            all.contains("with a note to the agents"),
            "{example}: {all}"
        );
        assert!(
            !all.contains("must-not-leak") && !all.contains("MfKQ9r8"),
            "{example}: {all}"
        );
    }
}

/// A scenario that can be read only once (a pipe on `/dev/stdin`) is held in memory
/// instead of read twice, and gives the transcript the file gives; a bad line in it
/// still stops the run before any output.
#[test]
fn a_scenario_from_a_pipe_replays_like_the_file() {
    use std::io::Write as _;
    use std::process::Stdio;

    let from_file = cli(&[
        "replay",
        "--config",
        "examples/config.json",
        "examples/conversation.jsonl",
    ]);
    assert!(from_file.status.success(), "{}", text(&from_file.stderr));
    assert!(!from_file.stdout.is_empty());
    let scenario =
        std::fs::read(repo().join("examples/conversation.jsonl")).unwrap_or_else(|e| panic!("{e}"));
    let through_pipe = |input: Vec<u8>| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_autoclose-cli-under-test"))
            .current_dir(repo())
            .args(["replay", "--config", "examples/config.json", "/dev/stdin"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run the CLI: {e}"));
        let mut stdin = child.stdin.take().unwrap_or_else(|| panic!("stdin"));
        stdin.write_all(&input).unwrap_or_else(|e| panic!("{e}"));
        drop(stdin);
        child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
    };
    let piped = through_pipe(scenario.clone());
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    assert_eq!(text(&piped.stdout), text(&from_file.stdout));

    let mut bad = scenario;
    bad.extend_from_slice(b"{\"at_ms\": 0, \"type\": \"queued\"}\n");
    let refused = through_pipe(bad);
    assert!(!refused.status.success());
    assert!(refused.stdout.is_empty(), "{}", text(&refused.stdout));
    assert!(
        text(&refused.stderr).contains("line "),
        "{}",
        text(&refused.stderr)
    );
}

#[test]
fn replay_reports_progress_in_steps_and_at_the_end() {
    let mut text = Vec::new();
    autoclose::generate::generate(
        &autoclose::generate::Spec {
            sessions: 4_000,
            tenants: vec!["acme".into()],
            channels: vec!["web_chat".into()],
            seed: 3,
            spread_ms: 60_000,
            ..autoclose::generate::Spec::new(4_000, Vec::new(), Vec::new())
        },
        &mut text,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let lines = autoclose::scenario::parse(&String::from_utf8_lossy(&text))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut gw =
        autoclose_tests::start_core(autoclose_tests::CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let mut seen = Vec::new();
    let autoclose_tests::TestCore { core, receiver } = &mut gw;
    autoclose::replay::replay_with_progress(
        core,
        receiver,
        autoclose::scenario::read(text.as_slice()),
        autoclose::replay::ReplayOptions::default(),
        &mut autoclose::replay::JsonLines(std::io::sink()),
        |done| seen.push(done),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let step = autoclose::replay::PROGRESS_EVERY;
    let mut expected: Vec<usize> = (0..lines.len()).step_by(step).collect();
    expected.push(lines.len());
    assert!(lines.len() > 2 * step, "{} lines", lines.len());
    assert_eq!(seen, expected);
}

/// `runtime.pool_instances` switches the engine to a pooling allocator: the same
/// transcript as on-demand allocation; a pool smaller than the tenants is refused.
#[test]
fn a_pooling_allocator_is_a_config_option() {
    let example = std::fs::read_to_string(repo().join("examples/multi-tenant/config.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let with_pool = |instances: u32| {
        let mut config: Value = serde_json::from_str(&example).unwrap_or_else(|e| panic!("{e}"));
        config["runtime"] = serde_json::json!({"pool_instances": instances});
        let path = scratch(&format!("pool-{instances}.json"));
        std::fs::write(&path, config.to_string()).unwrap_or_else(|e| panic!("{e}"));
        path
    };
    let scenario = "examples/multi-tenant/steps-and-locales.jsonl";
    let on_demand = cli(&[
        "replay",
        "--config",
        "examples/multi-tenant/config.json",
        scenario,
    ]);
    let pooled_config = with_pool(8);
    let pooled = cli(&[
        "replay",
        "--config",
        &pooled_config.display().to_string(),
        scenario,
    ]);
    assert!(pooled.status.success(), "{}", text(&pooled.stderr));
    assert!(!on_demand.stdout.is_empty());
    assert_eq!(pooled.stdout, on_demand.stdout);

    let small = with_pool(1);
    let out = cli(&["check-config", &small.display().to_string()]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("runtime.pool_instances: 1 is fewer than the 2 tenants"),
        "{}",
        text(&out.stderr)
    );
}

/// `--batch` lets consecutive events of a tenant share calls; the transcript of every
/// example scenario stays byte for byte the same.
#[test]
fn batch_changes_no_transcript() {
    for (config, scenario) in crate::EXAMPLE_REPLAYS {
        let plain = cli(&["replay", "--config", config, scenario]);
        let batched = cli(&["replay", "--batch", "--config", config, scenario]);
        assert!(plain.status.success(), "{}", text(&plain.stderr));
        assert!(batched.status.success(), "{}", text(&batched.stderr));
        assert!(!plain.stdout.is_empty(), "{scenario}: no actions at all");
        assert_eq!(text(&batched.stdout), text(&plain.stdout), "{scenario}");
    }
}

/// The realistic reply times are what make a what-if worth running: replayed with a
/// 5-minute and a 10-minute close, a realistic log closes clearly fewer chats at 10
/// minutes (the answers between 5 and 10 minutes are rescued), while the uniform
/// model's answers (all within 4 minutes) close the same chats under both.
#[test]
fn realistic_reply_times_tell_a_5_minute_close_from_a_10_minute_one() {
    let dir = scratch("whatif-generate");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let five = std::fs::read_to_string(repo().join("examples/config.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let ten = five.replacen(r#""after": "5m""#, r#""after": "10m""#, 1);
    assert_ne!(five, ten);
    let ten_path = dir.join("ten.json");
    std::fs::write(&ten_path, &ten).unwrap_or_else(|e| panic!("{e}"));
    let closes = |replies: &str, config: &str| -> usize {
        let scenario = dir.join(format!("{replies}.jsonl"));
        let out = cli(&[
            "generate",
            "--sessions",
            "2000",
            "--tenants",
            "acme",
            "--channels",
            "web_chat",
            "--reply-times",
            replies,
            "--business-hours",
            "--spread-ms",
            "86400000",
            "-o",
            &scenario.display().to_string(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = cli(&[
            "replay",
            "--config",
            config,
            &scenario.display().to_string(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        lines(&out.stdout)
            .iter()
            .filter(|a| a["action"] == "close_session")
            .count()
    };
    let ten = ten_path.display().to_string();
    let (realistic_5, realistic_10) = (
        closes("realistic", "examples/config.json"),
        closes("realistic", &ten),
    );
    assert!(
        realistic_5 >= realistic_10 + 40,
        "5m closes {realistic_5}, 10m closes {realistic_10}"
    );
    assert_eq!(
        closes("uniform", "examples/config.json"),
        closes("uniform", &ten),
        "uniform answers all come within 4 minutes"
    );
}

/// `whatif` on a log small enough to count by hand. A warns at 3m (pushed) and closes
/// at 5m; B warns at 8m and closes at 10m. s1's end user answers at 7m, s2's at 4m,
/// s3's never:
/// - A: s1 warned, closed at 5m, and its user came back at 7m; s2 warned and rescued;
///   s3 warned and closed 5m after the agent. 2 closed, 3 warnings, 3 pushes.
/// - B: s1 and s2 answered before any warning; s3 warned and closed after 10m.
///   1 closed, 1 warning, 1 push.
///
/// s1 and s2 end differently; s3 is closed under both.
#[test]
fn whatif_counts_a_hand_made_log_as_computed_by_hand() {
    let layer = |warn: &str, close: &str| {
        format!(
            r#"{{"webhooks": {{"push": {{"url": "https://push.example.com/hook"}}}},
                "tenants": {{"acme": {{"webhooks": ["push"], "channels": {{"web_chat": {{"auto_close": {{
                  "warnings": [{{"after": "{warn}", "message": "Still there?", "push": true}}],
                  "close": {{"after": "{close}"}}, "push": {{"webhook": "push"}}}}}}}}}}}}}}"#
        )
    };
    let a = scratch("whatif-a.json");
    let b = scratch("whatif-b.json");
    std::fs::write(&a, layer("3m", "5m")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(&b, layer("8m", "10m")).unwrap_or_else(|e| panic!("{e}"));
    let log = scratch("whatif.jsonl");
    let mut lines = Vec::new();
    for s in ["s1", "s2", "s3"] {
        lines.push(format!(r#"{{"at_ms":0,"type":"session_opened","tenant":"acme","session":"{s}","channel":"web_chat"}}"#));
    }
    for s in ["s1", "s2", "s3"] {
        lines.push(format!(r#"{{"at_ms":1000,"type":"message","tenant":"acme","session":"{s}","sender":"agent","text":"Anything else?"}}"#));
    }
    lines.push(r#"{"at_ms":241000,"type":"message","tenant":"acme","session":"s2","sender":"end_user","text":"no thanks"}"#.to_owned());
    lines.push(r#"{"at_ms":421000,"type":"message","tenant":"acme","session":"s1","sender":"end_user","text":"sorry, I was away"}"#.to_owned());
    std::fs::write(&log, lines.join("\n") + "\n").unwrap_or_else(|e| panic!("{e}"));
    let report = scratch("whatif.html");
    let summary = scratch("whatif-summary.json");
    let path = |p: &PathBuf| p.to_string_lossy().into_owned();
    let out = cli(&[
        "whatif",
        "--config",
        &path(&a),
        "--config",
        &path(&b),
        "--label",
        "5 minutes",
        "--label",
        "10 minutes",
        "--report",
        &path(&report),
        "--summary",
        &path(&summary),
        &path(&log),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("2 sessions end differently"), "{stdout}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    let totals = |i: usize| &summary["configurations"][i]["totals"];
    let expect =
        |i: usize, closed: u64, warnings: u64, pushes: u64, rescued: u64, came_back: u64| {
            let t = totals(i);
            assert_eq!(
                [
                    &t["sessions"],
                    &t["closed"],
                    &t["warnings"],
                    &t["pushes"],
                    &t["rescued"],
                    &t["came_back"]
                ],
                [3, closed, warnings, pushes, rescued, came_back]
                    .map(Value::from)
                    .each_ref(),
                "configuration {i}: {t}"
            );
        };
    expect(0, 2, 3, 3, 1, 1);
    expect(1, 1, 1, 1, 0, 0);
    assert_eq!(
        summary["configurations"][0]["close_delays_ms"],
        serde_json::json!([300000, 300000])
    );
    assert_eq!(
        summary["configurations"][1]["close_delays_ms"],
        serde_json::json!([600000])
    );
    assert_eq!(summary["configurations"][0]["closes_by_hour"][0], 2);
    assert_eq!(
        summary["configurations"][0]["by_channel"][0]["channel"],
        "web_chat"
    );
    assert_eq!(summary["differing_sessions"], 2);
    let sessions: Vec<&str> = summary["differences"]
        .as_array()
        .map(|d| d.iter().filter_map(|d| d["session"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(sessions, ["s1", "s2"]);
    let s1 = &summary["differences"][0];
    assert_eq!(
        s1["outcomes"],
        serde_json::json!([
            "closed at 00:05:01 (the end user came back later): 1 warning",
            "not closed: no warning"
        ])
    );
    let a_timeline: Vec<&str> = s1["timelines"][0]
        .as_array()
        .map(|t| t.iter().filter_map(|e| e["what"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        a_timeline,
        [
            "session opened (web_chat)",
            "agent: Anything else?",
            "warning posted: Still there?",
            "push chat.auto_close.warning through push",
            "closed (inactivity)",
            "end user: sorry, I was away"
        ]
    );
    let html = std::fs::read_to_string(&report).unwrap_or_else(|e| panic!("{e}"));
    for chart in ["totals", "close-delays", "closes-by-hour"] {
        let at = html
            .find(&format!("<figure data-chart=\"{chart}\"><svg"))
            .unwrap_or_else(|| panic!("no {chart} chart"));
        assert!(html[at..].contains("</svg></figure>"), "{chart}");
    }
    assert!(html.contains("data-session=\"s1\"") && html.contains("data-session=\"s2\""));
    assert!(
        !html.contains("http://") || !html.contains("<script"),
        "self-contained"
    );

    let one = cli(&["whatif", "--config", &path(&a), &path(&log)]);
    assert!(!one.status.success());
    assert!(
        text(&one.stderr).contains("give --config at least twice"),
        "{}",
        text(&one.stderr)
    );
}
