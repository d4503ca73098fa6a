//! `autoclose serve` end to end: the built binary as a child process, events in over
//! HTTP, a local receiver standing in for the gateway's callback and one for the push
//! service, on real time with short timings.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use autoclose_tests::receiver::{Received, Receiver};
use autoclose_tests::server::{Server, scratch, spawn, spawn_with};
use serde_json::{Value, json};

pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_autoclose-cli-under-test");
pub(crate) const TOKEN: &str = "test-ingest-token-0123456789";
/// The gateway callback's signing secret (24 bytes, base64).
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
/// Long enough for a debug build on a busy machine; every wait ends as soon as its
/// condition holds.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// A config for the two receivers: web_chat warns after `warn_after_s` seconds and
/// closes 2s later (push on both), http_api closes after 1s without a warning, sms is
/// disabled.
pub(crate) fn config(
    actions: &Receiver,
    push: &Receiver,
    warning_text: &str,
    warn_after_s: u64,
) -> String {
    json!({
        "webhooks": {"push": {"url": push.url("/push")}},
        "egress": {"allow_private_networks": true},
        "gateway": {"actions_url": actions.url("/actions"), "secret": SECRET},
        "ingest": {"token": TOKEN, "max_body_bytes": 4096},
        "tenants": {"acme": {"webhooks": ["push"], "channels": {
            "web_chat": {"auto_close": {
                "warnings": [{"after": format!("{warn_after_s}s"), "message": warning_text, "push": true}],
                "close": {"after": format!("{}s", warn_after_s + 2), "message": "Closed.", "push": true},
                "push": {"webhook": "push"}}},
            "http_api": {"auto_close": {"close": {"after": "1s", "message": "Closed (API)."}}},
            "sms": {"auto_close": {"enabled": false}}}}}
    })
    .to_string()
}

pub(crate) fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

pub(crate) fn body(r: &Received) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

pub(crate) fn opened(session: &str, channel: &str) -> Value {
    json!({"type": "session_opened", "tenant": "acme", "session": session, "channel": channel})
}

pub(crate) fn said(session: &str, sender: &str) -> Value {
    json!({"type": "message", "tenant": "acme", "session": session, "sender": sender})
}

/// The callbacks per session as `type/kind` in arrival order.
fn by_session(callbacks: &[Received]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in callbacks {
        let b = body(r);
        let what = match b["type"].as_str() {
            Some("post_message") => format!("post/{}", b["kind"].as_str().unwrap_or("?")),
            Some(other) => other.to_owned(),
            None => "?".into(),
        };
        out.entry(b["session"].as_str().unwrap_or("?").to_owned())
            .or_default()
            .push(what);
    }
    out
}

pub(crate) fn has_close(received: &[Received], session: &str) -> bool {
    received
        .iter()
        .any(|r| body(r)["type"] == "close_session" && body(r)["session"] == session)
}

#[test]
fn every_rule_holds_on_real_time_through_the_sidecar() {
    let dir = scratch("serve-rules");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    write(
        &config_path,
        &config(&actions, &push, "Still there? {{seconds_left}}s", 1),
    );
    let server = Server::start(BINARY, &config_path, &dir.join("data"), &[]);

    let events = json!([
        // w1: warned, pushed, closed, pushed.
        opened("w1", "web_chat"), said("w1", "agent"),
        // u1: the end user answers: nothing.
        opened("u1", "web_chat"), said("u1", "agent"), said("u1", "end_user"),
        // a1: http_api closes without a warning.
        opened("a1", "http_api"), said("a1", "bot"),
        // x1: disabled channel.
        opened("x1", "sms"), said("x1", "agent"),
        // c1: closed by the gateway before anything is due.
        opened("c1", "web_chat"), said("c1", "agent"),
        {"type": "session_closed", "tenant": "acme", "session": "c1"},
        // b1: a burst gives one cycle; an echo of our own post and a system message
        // change nothing.
        opened("b1", "web_chat"), said("b1", "agent"), said("b1", "bot"), said("b1", "agent"),
        {"type": "message", "tenant": "acme", "session": "b1", "sender": "end_user", "origin": "autoclose"},
        said("b1", "system"),
        // Unknown tenant: accepted and ignored.
        {"type": "message", "tenant": "nobody", "session": "n1", "sender": "agent", "channel": "web_chat"},
    ]);
    server.ingest(Some(TOKEN), &events);

    let callbacks = actions.wait_until("closes of w1, a1 and b1", WAIT, |r| {
        has_close(r, "w1") && has_close(r, "a1") && has_close(r, "b1")
    });
    let pushes = push.wait_until("w1's and b1's pushes", WAIT, |r| r.len() >= 4);
    let seen = by_session(&callbacks);
    let cycle: Vec<String> = ["post/warning", "post/close", "close_session"]
        .map(String::from)
        .to_vec();
    assert_eq!(seen.get("w1"), Some(&cycle), "{seen:?}");
    assert_eq!(seen.get("b1"), Some(&cycle), "{seen:?}");
    assert_eq!(
        seen.get("a1"),
        Some(&vec!["post/close".to_owned(), "close_session".to_owned()]),
        "{seen:?}"
    );
    for quiet in ["u1", "x1", "c1", "n1"] {
        assert!(
            !seen.contains_key(quiet),
            "{quiet} must stay quiet: {seen:?}"
        );
    }

    // Times: the warning no earlier than warnings[0].after past the message, the close
    // exactly 2s after the warning (close.after is the warning's after + 2s; timers
    // fire at their due time).
    let w1: Vec<Value> = callbacks
        .iter()
        .map(body)
        .filter(|b| b["session"] == "w1")
        .collect();
    let (warning, close) = (&w1[0], &w1[2]);
    assert_eq!(
        close["at_ms"].as_u64().unwrap_or(0) - warning["at_ms"].as_u64().unwrap_or(0),
        2_000
    );
    assert_eq!(warning["text"], "Still there? 2s");
    let seqs: Vec<u64> = w1.iter().filter_map(|b| b["seq"].as_u64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");

    // Every callback is signed with the gateway secret over the exact body, and its
    // webhook-id is the action id in the body.
    let verifier = standardwebhooks::Webhook::new(SECRET).unwrap_or_else(|e| panic!("{e:?}"));
    for r in &callbacks {
        verifier
            .verify(&r.body, &r.headers)
            .unwrap_or_else(|e| panic!("bad signature: {e:?}"));
        let id = r.headers.get("webhook-id").and_then(|v| v.to_str().ok());
        assert_eq!(id, body(r)["id"].as_str());
    }

    // Pushes: a warning and a close for w1 and b1, each id once.
    let mut push_events: Vec<(String, String)> = pushes
        .iter()
        .map(body)
        .map(|b| {
            (
                b["data"]["session"].as_str().unwrap_or("?").to_owned(),
                b["type"].as_str().unwrap_or("?").to_owned(),
            )
        })
        .collect();
    push_events.sort();
    assert_eq!(
        push_events,
        vec![
            ("b1".into(), "chat.auto_close.closed".into()),
            ("b1".into(), "chat.auto_close.warning".into()),
            ("w1".into(), "chat.auto_close.closed".into()),
            ("w1".into(), "chat.auto_close.warning".into()),
        ]
    );

    // Health and metrics tell the same story.
    let (status, health) = server.get("/healthz");
    assert_eq!(status, 200, "{health}");
    let (status, metrics) = server.get("/metrics");
    assert_eq!(status, 200);
    let events_sent = events.as_array().map_or(0, Vec::len);
    let recorded: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("autoclose_events_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(recorded as usize, events_sent, "{metrics}");
    for name in [
        "autoclose_actions_total{outcome=\"delivered\"}",
        "autoclose_webhook_deliveries_total{outcome=\"delivered\"}",
        "autoclose_hook_duration_seconds_count",
        "autoclose_pending_timers",
    ] {
        assert!(metrics.contains(name), "{name} missing:\n{metrics}");
    }

    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{status:?}\n{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");
    assert!(!stderr.contains(TOKEN), "the token must never be logged");
}

#[test]
fn bad_input_is_refused_with_the_field_and_applies_nothing() {
    let dir = scratch("serve-bad-input");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    write(&config_path, &config(&actions, &push, "Hi", 1));
    let server = Server::start(BINARY, &config_path, &dir.join("data"), &[]);
    let post = |token: Option<&str>, body: &str| server.post("/v1/events", token, body.to_owned());

    let (status, answer) = post(None, &json!(said("z1", "agent")).to_string());
    assert_eq!(status, 401, "{answer}");

    let (status, answer) = post(Some("wrong-token-0123456789"), "{}");
    assert_eq!(status, 401, "{answer}");

    let (status, answer) = post(Some(TOKEN), "{\n\"type\": \"message\",");
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or("")
            .starts_with("not valid JSON"),
        "{answer}"
    );
    assert_eq!(answer["line"], 2);

    // Two good events, then one with a wrong type: nothing of it is applied.
    let (status, answer) = post(
        Some(TOKEN),
        &json!([
            opened("z1", "http_api"),
            said("z1", "agent"),
            {"type": "message", "tenant": "acme", "session": "z1", "sender": 7}
        ])
        .to_string(),
    );
    assert_eq!(status, 400);
    assert_eq!(answer["index"], 2, "{answer}");
    assert_eq!(answer["field"], "sender", "{answer}");

    let (status, answer) = post(
        Some(TOKEN),
        r#"{"type":"typing","tenant":"acme","session":"z1"}"#,
    );
    assert_eq!(status, 400);
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or("")
            .contains("unknown event type"),
        "{answer}"
    );

    let (status, answer) = post(
        Some(TOKEN),
        r#"{"at_ms":5,"type":"message","tenant":"acme","session":"z1","sender":"agent"}"#,
    );
    assert_eq!(
        (status, answer["field"].as_str()),
        (400, Some("at_ms")),
        "{answer}"
    );

    // A message for a session never opened (no channel) refuses the whole request.
    let (status, answer) = post(
        Some(TOKEN),
        &json!([
            opened("z2", "http_api"),
            said("z2", "agent"),
            said("z3", "agent")
        ])
        .to_string(),
    );
    assert_eq!(status, 400);
    assert_eq!(answer["index"], 2, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or("")
            .contains("no channel"),
        "{answer}"
    );

    let big = format!(
        r#"{{"type":"message","tenant":"acme","session":"z1","sender":"agent","text":"{}"}}"#,
        "x".repeat(5000)
    );
    let (status, answer) = post(Some(TOKEN), &big);
    assert_eq!(status, 413, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap_or("")
            .contains("max_body_bytes"),
        "{answer}"
    );

    // What was refused never happened: only the session sent afterwards closes.
    server.ingest(
        Some(TOKEN),
        &json!([opened("ok1", "http_api"), said("ok1", "agent")]),
    );
    let received = actions.wait_until("ok1's close", WAIT, |r| has_close(r, "ok1"));
    let seen = by_session(&received);
    assert_eq!(seen.keys().collect::<Vec<_>>(), vec!["ok1"], "{seen:?}");
}

#[test]
fn a_damaged_store_stops_the_start_with_a_clear_error_and_is_left_alone() {
    let dir = scratch("serve-corrupt");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    write(&config_path, &config(&actions, &push, "Hi", 1));
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap_or_else(|e| panic!("{e}"));
    let file = data.join("autoclose.redb");
    let garbage =
        b"this is not a database, it is a text file that happens to be here\n".repeat(100);
    write(&file, std::str::from_utf8(&garbage).unwrap_or_default());
    let child = spawn(BINARY, &config_path, &data, &[]);
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("cannot open the store"), "{stderr}");
    assert!(stderr.contains("autoclose.redb"), "{stderr}");
    assert_eq!(
        std::fs::read(&file).unwrap_or_default(),
        garbage,
        "never reset"
    );
}

#[test]
fn a_pending_timer_survives_a_reload_and_a_bad_config_is_refused() {
    let dir = scratch("serve-reload");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    // Long enough that the reloads happen before the warning is due.
    write(&config_path, &config(&actions, &push, "Before reload", 5));
    let server = Server::start(BINARY, &config_path, &dir.join("data"), &[]);
    server.ingest(
        Some(TOKEN),
        &json!([opened("r1", "web_chat"), said("r1", "agent")]),
    );

    // A good new config, by the admin endpoint.
    write(&config_path, &config(&actions, &push, "After reload", 5));
    let (status, report) = server.post("/v1/admin/reload", Some(TOKEN), "");
    assert_eq!(status, 200, "{report}\n{}", server.stderr());
    assert_eq!(report["timers"], 1, "{report}");
    assert_eq!(report["sessions"], 1, "{report}");

    // A tenant's bad settings are refused, naming the field; the tenant keeps the
    // settings it ran (the others would take theirs).
    write(
        &config_path,
        &config(&actions, &push, "Broken", 5).replace("\"7s\"", "\"7 minutes\""),
    );
    let (status, answer) = server.post("/v1/admin/reload", Some(TOKEN), "");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["refused"][0]["tenant"], "acme", "{answer}");
    assert_eq!(answer["refused"][0]["kept_previous"], true, "{answer}");
    let error = answer["refused"][0]["error"].as_str().unwrap_or("");
    assert!(error.contains("close.after"), "{error}");
    assert_eq!(answer["applied"], json!([]), "{answer}");

    // SIGHUP with the same file: the same, and logged.
    server.signal("HUP");
    server.wait_for_log("the tenant's new settings were refused", 2, WAIT);
    // A host-level error refuses the whole reload: nothing changes.
    write(
        &config_path,
        &config(&actions, &push, "Broken", 5).replace("4096", "10"),
    );
    let (status, answer) = server.post("/v1/admin/reload", Some(TOKEN), "");
    assert_eq!(status, 422, "{answer}");
    let error = answer["error"].as_str().unwrap_or("");
    assert!(error.contains("ingest.max_body_bytes"), "{error}");
    assert!(error.contains("unchanged"), "{error}");
    let received = actions.wait_until("r1's close", WAIT, |r| has_close(r, "r1"));
    let texts: Vec<Value> = received.iter().map(|r| body(r)["text"].clone()).collect();
    assert_eq!(
        texts[0], "After reload",
        "the timer set before the reload fired after it, with the settings acme kept"
    );
    let (_, metrics) = server.get("/metrics");
    for (outcome, count) in [("ok", 1), ("partial", 2), ("refused", 1)] {
        assert!(
            metrics.contains(&format!(
                "autoclose_reloads_total{{outcome=\"{outcome}\"}} {count}"
            )),
            "{outcome}: {metrics}"
        );
    }
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("reload refused"), "{stderr}");
}

/// `config` with two more tenants that cannot start: `loopy` runs the misbehaving
/// component, which loops in `configure` when `on_configure` is `loop`, and `picky`'s
/// auto-close settings are refused when `picky_close` is not a duration.
fn with_failing_tenants(config: &str, on_configure: &str, picky_close: &str) -> String {
    let mut value: Value = serde_json::from_str(config).unwrap_or(Value::Null);
    value["tenants"]["loopy"] = json!({
        "component": autoclose_tests::MISBEHAVING_PLUGIN,
        "on_configure": on_configure,
    });
    value["tenants"]["picky"] = json!({
        "auto_close": {"close": {"after": picky_close, "message": "Picky closed."}}
    });
    value.to_string()
}

#[test]
fn a_tenant_that_cannot_start_stops_no_other_and_its_events_wait_for_the_fix() {
    let dir = scratch("serve-isolation");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    let good = config(&actions, &push, "Still there?", 1);
    write(&config_path, &with_failing_tenants(&good, "loop", "soon"));

    // --strict refuses to start, naming the first failure.
    let child = spawn_with(
        BINARY,
        &config_path,
        &dir.join("strict"),
        &[],
        &["--strict"],
    );
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("--strict refuses to start"), "{stderr}");
    assert!(stderr.contains("1 more failed too"), "{stderr}");

    let server = Server::start(BINARY, &config_path, &dir.join("data"), &[]);
    let (status, health) = server.get("/healthz");
    assert_eq!(
        status, 200,
        "a degraded node stays in the load balancer: {health}"
    );
    let health: Value = serde_json::from_str(&health).unwrap_or(Value::Null);
    assert_eq!(health["status"], "degraded", "{health}");
    let failing: Vec<&str> = health["failing"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["tenant"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(failing, vec!["loopy", "picky"], "{health}");
    let reasons = health["failing"].to_string();
    assert!(
        reasons.contains("interrupt"),
        "loopy ran out of time: {reasons}"
    );
    assert!(
        reasons.contains("close.after"),
        "picky's settings: {reasons}"
    );

    // acme carries on: warned and closed on time.
    server.ingest(
        Some(TOKEN),
        &json!([opened("w1", "web_chat"), said("w1", "agent")]),
    );
    // picky's chat is held while its settings are refused.
    let picky = |kind: &str, session: &str| {
        let mut event = if kind == "opened" {
            opened(session, "web_chat")
        } else {
            said(session, kind)
        };
        event["tenant"] = json!("picky");
        event
    };
    server.ingest(
        Some(TOKEN),
        &json!([picky("opened", "p1"), picky("agent", "p1")]),
    );
    actions.wait_until("acme's close", WAIT, |r| has_close(r, "w1"));
    assert!(
        !actions
            .received()
            .iter()
            .any(|r| body(r)["tenant"] == "picky"),
        "nothing of picky's runs while it fails"
    );
    let (_, metrics) = server.get("/metrics");
    assert!(
        metrics.contains("autoclose_failing_tenants{shard=\"0\"} 2"),
        "{metrics}"
    );

    // Both are fixed in the file; the reload applies them, and picky's held events
    // run in order: its chat closes after the fixed timings.
    write(&config_path, &with_failing_tenants(&good, "ok", "1s"));
    let (status, report) = server.post("/v1/admin/reload", Some(TOKEN), "");
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["refused"], json!([]), "{report}");
    let applied = report["applied"].to_string();
    assert!(
        applied.contains("loopy") && applied.contains("picky"),
        "{report}"
    );
    let received = actions.wait_until("picky's close", WAIT, |r| {
        r.iter()
            .any(|r| body(r)["tenant"] == "picky" && body(r)["type"] == "close_session")
    });
    let picky_texts: Vec<Value> = received
        .iter()
        .filter(|r| body(r)["tenant"] == "picky")
        .map(|r| body(r)["text"].clone())
        .collect();
    assert_eq!(picky_texts[0], "Picky closed.", "{picky_texts:?}");
    let (_, health) = server.get("/healthz");
    assert!(health.contains("\"status\":\"ok\""), "{health}");
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("tenant failed to start; its events are held"),
        "{stderr}"
    );
}

#[test]
fn a_failing_component_is_backed_off_and_shows_in_metrics_while_others_carry_on() {
    let dir = scratch("serve-failing");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let mut config: Value =
        serde_json::from_str(&config(&actions, &push, "Hi", 1)).unwrap_or(Value::Null);
    config["tenants"]["bad"] = json!({
        "component": autoclose_tests::MISBEHAVING_PLUGIN,
        "on_message": "trap"
    });
    let config_path = dir.join("config.json");
    write(&config_path, &config.to_string());
    let server = Server::start(BINARY, &config_path, &dir.join("data"), &[]);
    let bad: Vec<Value> = (0..5)
        .flat_map(|i| {
            let session = format!("bad{i}");
            [
                json!({"type": "session_opened", "tenant": "bad", "session": session, "channel": "web_chat"}),
                json!({"type": "message", "tenant": "bad", "session": session, "sender": "agent"}),
            ]
        })
        .collect();
    server.ingest(Some(TOKEN), &Value::Array(bad));
    server.ingest(
        Some(TOKEN),
        &json!([opened("good", "http_api"), said("good", "agent")]),
    );
    let received = actions.wait_until("the good tenant's close", WAIT, |r| has_close(r, "good"));
    assert!(by_session(&received).keys().all(|s| s == "good"));
    let (_, metrics) = server.get("/metrics");
    let failures = metrics
        .lines()
        .find(|l| l.starts_with("autoclose_hook_failures_total{tenant=\"bad\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .unwrap_or(0);
    // The first failure is retried at once, the second backs off: the other
    // messages wait in the queue instead of failing in a hot loop.
    assert!(
        (1..=3).contains(&failures),
        "{failures} failures:\n{metrics}"
    );
    assert!(
        metrics.contains("autoclose_instance_restarts_total{tenant=\"bad\"}"),
        "{metrics}"
    );
    assert!(server.stderr().contains("plugin hook failed"));
}

#[test]
fn a_data_directory_keeps_its_shard_count() {
    let dir = scratch("serve-shards");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    write(&config_path, &config(&actions, &push, "Hi", 1));
    let data = dir.join("data");
    let server = Server::start_with(BINARY, &config_path, &data, &[], &["--shards", "3"]);
    // Sessions spread over the shards; a request spanning shards is all or nothing.
    let cycle = |prefix: &str| -> Vec<Value> {
        (0..12)
            .flat_map(|i| {
                let session = format!("{prefix}{i}");
                [opened(&session, "http_api"), said(&session, "agent")]
            })
            .collect()
    };
    let events = cycle("h");
    let mut refused = cycle("r");
    refused.push(said("never-opened", "agent"));
    let (status, answer) =
        server.post("/v1/events", Some(TOKEN), Value::Array(refused).to_string());
    assert_eq!(
        (status, answer["index"].as_u64()),
        (400, Some(24)),
        "{answer}"
    );
    server.ingest(Some(TOKEN), &Value::Array(events));
    let received = actions.wait_until("12 closes", WAIT, |r| {
        (0..12).all(|i| has_close(r, &format!("h{i}")))
    });
    assert_eq!(received.len(), 24, "{:?}", by_session(&received));
    assert!(
        by_session(&received).keys().all(|s| s.starts_with('h')),
        "nothing of the refused request ran on any shard"
    );
    let (_, health) = server.get("/healthz");
    assert!(health.contains("\"shards\":3"), "{health}");
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");

    let child =
        autoclose_tests::server::spawn_with(BINARY, &config_path, &data, &[], &["--shards", "2"]);
    let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("another --shards"), "{stderr}");
    assert!(stderr.contains("autoclose-0-of-3.redb"), "{stderr}");
}

/// Holds, queues and the plugin's per-session state through the ingest API, across a
/// restart of the sidecar: a hold restarts the cycle when it ends; a queued session
/// stays waiting for an agent after the restart, so a queue bot's message starts
/// nothing there, and the agent's message starts the cycle.
#[test]
fn holds_and_queues_work_through_the_sidecar_and_survive_a_restart() {
    let dir = scratch("serve-holds");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    write(&config_path, &config(&actions, &push, "Still there?", 1));
    let data = dir.join("data");
    let server = Server::start(BINARY, &config_path, &data, &[]);
    server.ingest(
        Some(TOKEN),
        &json!([
            opened("r1", "web_chat"), said("r1", "agent"),
            opened("h1", "web_chat"), said("h1", "agent"),
            {"type": "hold", "tenant": "acme", "session": "h1", "for": "2s"},
            opened("q1", "web_chat"), said("q1", "agent"),
            {"type": "queued", "tenant": "acme", "session": "q1"},
        ]),
    );
    let callbacks = actions.wait_until("r1's and h1's closes", WAIT, |r| {
        has_close(r, "r1") && has_close(r, "h1")
    });
    let warned_at = |session: &str| {
        callbacks
            .iter()
            .map(body)
            .find(|b| b["session"] == session && b["kind"] == "warning")
            .and_then(|b| b["at_ms"].as_u64())
            .unwrap_or_else(|| panic!("no warning for {session}"))
    };
    // All three events arrived in one request, so one engine round: the hold's 2s
    // put h1's warning exactly 2s after r1's.
    assert_eq!(warned_at("h1") - warned_at("r1"), 2_000);
    assert!(
        !by_session(&callbacks).contains_key("q1"),
        "queued: nothing"
    );
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{status:?}\n{stderr}");

    let server = Server::start(BINARY, &config_path, &data, &[]);
    server.ingest(
        Some(TOKEN),
        &json!([
            said("q1", "bot"),
            opened("m1", "web_chat"),
            said("m1", "agent")
        ]),
    );
    // m1's cycle was set after q1's bot message: had the bot started a cycle for q1,
    // its steps would have come no later than m1's.
    let callbacks = actions.wait_until("m1's close", WAIT, |r| has_close(r, "m1"));
    assert!(
        !by_session(&callbacks).contains_key("q1"),
        "a bot message after a restart must not end the wait for an agent"
    );
    server.ingest(Some(TOKEN), &json!([said("q1", "agent")]));
    let callbacks = actions.wait_until("q1's close", WAIT, |r| has_close(r, "q1"));
    assert_eq!(
        by_session(&callbacks).get("q1"),
        Some(&vec![
            "post/warning".to_owned(),
            "post/close".to_owned(),
            "close_session".to_owned()
        ])
    );
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{status:?}\n{stderr}");
}
