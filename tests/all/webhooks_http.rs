//! Webhooks over real HTTP to receivers on 127.0.0.1 started by the tests: signatures
//! checked with an independent implementation, retries, time-outs, 410, redirects, a
//! receiver that is down, Retry-After, the egress policy, and the `test-webhook` CLI.

use std::net::TcpListener;
use std::process::Command;
use std::time::Duration;

use autoclose_tests::receiver::{Receiver, Reply};
use autoclose_tests::{CONFIG, attempts, http_core, message, opened, replay_on, scenario};
use autoclose_webhook::secret::Secret;
use serde_json::Value;

/// CONFIG with `mobile-push` pointing at `url` with `extra` fields, and private
/// networks allowed or not.
fn config(url: &str, extra: &str, allow_private: bool) -> String {
    let hook = format!(
        r#""webhooks": {{"mobile-push": {{"url": "{url}"{extra}}}}}, "egress": {{"allow_private_networks": {allow_private}}},"#
    );
    CONFIG.replacen(
        r#""webhooks": {"mobile-push": {"url": "https://push.example.com/hook"}},"#,
        &hook,
        1,
    )
}

/// Replays acme's warning scenario (warning at 181000) with real HTTP.
fn run(config: &str) -> Vec<Value> {
    let mut gw = http_core(config);
    let lines = scenario(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
    ]);
    replay_on(&mut gw, &lines).unwrap_or_else(|e| panic!("{e}"))
}

fn secret(byte: u8) -> String {
    Secret::encode(&[byte; 32])
}

#[test]
fn signed_deliveries_verify_with_the_reference_library() {
    let receiver = Receiver::start(vec![]);
    let (a, b) = (secret(11), secret(12));
    let t = run(&config(
        &receiver.url("/push"),
        &format!(r#", "secret": ["{a}", "{b}"]"#),
        true,
    ));
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    let request = &got[0];
    for key in [&a, &b] {
        let verifier = standardwebhooks::Webhook::new(key).unwrap_or_else(|e| panic!("{e:?}"));
        verifier
            .verify(&request.body, &request.headers)
            .unwrap_or_else(|e| {
                panic!("signature must verify with either secret during rotation: {e:?}")
            });
    }
    let wrong = standardwebhooks::Webhook::new(&secret(13)).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(
        wrong.verify(&request.body, &request.headers).is_err(),
        "another secret must not verify"
    );
    let queued = t
        .iter()
        .find(|a| a["action"] == "webhook")
        .unwrap_or_else(|| panic!("no webhook line"));
    assert_eq!(
        request.headers["webhook-id"].to_str().ok(),
        queued["id"].as_str()
    );
    let sent: Value = serde_json::from_slice(&request.body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        sent, queued["body"],
        "the transcript shows the body that was sent and signed"
    );
    assert_eq!(request.headers["content-type"], "application/json");
}

#[test]
fn a_receiver_failing_twice_gets_three_attempts_with_one_id() {
    let receiver = Receiver::start(vec![Reply::status(503), Reply::status(502)]);
    let t = run(&config(&receiver.url("/"), "", true));
    let got = receiver.received();
    assert_eq!(got.len(), 3);
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert!(
        got.iter().all(|r| r.body == got[0].body),
        "every attempt sends the same bytes"
    );
    let tries = attempts(&t);
    assert!(tries[0].contains("#1 status 503 -> retry at"), "{tries:?}");
    assert!(tries[1].contains("#2 status 502 -> retry at"), "{tries:?}");
    assert!(
        tries[2].ends_with("#3 status 200 -> delivered after 3 attempts"),
        "{tries:?}"
    );
}

#[test]
fn a_receiver_hanging_past_the_timeout_is_retried() {
    let receiver = Receiver::start(vec![Reply::status(200).after(Duration::from_secs(5))]);
    let t = run(&config(&receiver.url("/"), r#", "timeout": "1s""#, true));
    let tries = attempts(&t);
    assert!(
        tries[0].contains("#1 timed out after 1000 ms -> retry at"),
        "{tries:?}"
    );
    assert!(
        tries[1].ends_with("delivered after 2 attempts"),
        "{tries:?}"
    );
}

#[test]
fn gone_and_redirects_are_final() {
    let receiver = Receiver::start(vec![Reply::status(410)]);
    let t = run(&config(&receiver.url("/"), "", true));
    assert_eq!(receiver.received().len(), 1);
    assert!(
        attempts(&t)[0].contains("gave up: 410 Gone"),
        "{:?}",
        attempts(&t)
    );

    let elsewhere = Receiver::start(vec![]);
    let receiver = Receiver::start(vec![
        Reply::status(301).header("location", elsewhere.url("/")),
    ]);
    let t = run(&config(&receiver.url("/"), "", true));
    assert_eq!(receiver.received().len(), 1);
    assert_eq!(elsewhere.received().len(), 0, "redirects are not followed");
    assert!(
        attempts(&t)[0].contains("redirects are not followed"),
        "{:?}",
        attempts(&t)
    );
}

#[test]
fn a_receiver_that_is_down_is_retried_then_given_up() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    // The listener is dropped: connections to the port are refused.
    let t = run(&config(
        &format!("http://127.0.0.1:{port}/"),
        r#", "retry": {"max_attempts": 2}"#,
        true,
    ));
    let tries = attempts(&t);
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert!(
        tries[0].contains("#1 ") && tries[0].contains("-> retry at"),
        "{tries:?}"
    );
    assert!(
        tries[1].contains("gave up:") && tries[1].contains("on attempt 2 of 2"),
        "{tries:?}"
    );
}

#[test]
fn retry_after_from_the_receiver_is_honoured() {
    let receiver = Receiver::start(vec![Reply::status(503).header("retry-after", "100")]);
    let t = run(&config(&receiver.url("/"), "", true));
    let times: Vec<u64> = t
        .iter()
        .filter(|a| a["action"] == "webhook_attempt")
        .filter_map(|a| a["at_ms"].as_u64())
        .collect();
    assert_eq!(times, vec![181_000, 281_000]);
    assert_eq!(receiver.received().len(), 2);
}

#[test]
fn private_addresses_are_refused_unless_allowed() {
    let receiver = Receiver::start(vec![]);
    let by_address = run(&config(&receiver.url("/"), "", false));
    let by_name = run(&config(
        &format!("http://localhost:{}/", receiver.addr.port()),
        "",
        false,
    ));
    assert_eq!(
        receiver.received().len(),
        0,
        "nothing may reach a loopback receiver"
    );
    for t in [&by_address, &by_name] {
        let tries = attempts(t);
        assert_eq!(tries.len(), 1, "a refusal is final: {tries:?}");
        assert!(
            tries[0].contains("refused by the egress policy") && tries[0].contains("loopback"),
            "{tries:?}"
        );
    }
    run(&config(&receiver.url("/"), "", true));
    assert_eq!(
        receiver.received().len(),
        1,
        "allowed with egress.allow_private_networks"
    );
}

#[test]
fn presets_shape_the_body_for_the_push_service() {
    let receiver = Receiver::start(vec![]);
    run(&config(
        &receiver.url("/"),
        r#", "format": {"preset": "ntfy", "topic": "acme-chats", "priority": 4, "tags": ["hourglass"]}"#,
        true,
    ));
    let got = receiver.received();
    let body: Value = serde_json::from_slice(&got[0].body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        body,
        serde_json::json!({"topic": "acme-chats", "message": "Are you still there? This chat closes in 2 minutes.",
                           "priority": 4, "tags": ["hourglass"]})
    );
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_autoclose-cli-under-test"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn write_config(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("autoclose-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path.display().to_string()
}

#[test]
fn test_webhook_delivers_for_real_and_keeps_secrets_out_of_output() {
    let receiver = Receiver::start(vec![]);
    let key = secret(21);
    let token = "Bearer tok_very_secret_42";
    let path = write_config(
        "test-webhook.json",
        &config(
            &receiver.url("/hook?token=query_secret_7"),
            &format!(
                r#", "secret": "env:AUTOCLOSE_TEST_SECRET", "headers": {{"Authorization": "{token}"}}"#
            ),
            true,
        ),
    );
    let env = [("AUTOCLOSE_TEST_SECRET", key.as_str())];
    let (ok, stdout, stderr) = cli(
        &[
            "test-webhook",
            "--config",
            &path,
            "--tenant",
            "acme",
            "--channel",
            "web_chat",
        ],
        &env,
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("delivered after 1 attempt"), "{stdout}");
    let got = receiver.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].headers["authorization"], token);
    standardwebhooks::Webhook::new(&key)
        .and_then(|w| w.verify(&got[0].body, &got[0].headers))
        .unwrap_or_else(|e| panic!("{e:?}"));
    for secret in [&key[6..], "tok_very_secret_42", "query_secret_7"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked:\n{stdout}\n{stderr}"
        );
    }
    // The same for replay, which prints the transcript.
    let scenario_path = write_config(
        "warn.jsonl",
        &scenario(&[
            (0, opened("acme", "s1", "web_chat")),
            (1_000, message("acme", "s1", "agent")),
        ]),
    );
    let (ok, stdout, stderr) = cli(&["replay", "--config", &path, &scenario_path], &env);
    assert!(ok, "{stderr}");
    for secret in [&key[6..], "tok_very_secret_42"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

#[test]
fn test_webhook_fails_when_the_push_is_not_delivered() {
    let receiver = Receiver::start(vec![Reply::status(410)]);
    let path = write_config("gone.json", &config(&receiver.url("/"), "", true));
    let (ok, stdout, stderr) = cli(
        &[
            "test-webhook",
            "--config",
            &path,
            "--tenant",
            "globex",
            "--channel",
            "web_chat",
            "--event",
            "close",
        ],
        &[],
    );
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("chat.auto_close.closed via webhook \"mobile-push\""),
        "{stdout}"
    );
    assert!(stderr.contains("410 Gone"), "{stderr}");
    let (ok, _, stderr) = cli(
        &[
            "test-webhook",
            "--config",
            &path,
            "--tenant",
            "acme",
            "--channel",
            "web_chat",
            "--event",
            "close",
        ],
        &[],
    );
    assert!(!ok);
    assert!(
        stderr.contains("sends no close push") && stderr.contains("push.webhook"),
        "{stderr}"
    );
}

#[test]
fn bad_webhook_configuration_is_refused_at_load() {
    let cases = [
        (
            config("https://x.example/", r#", "secret": "sk_live_abc""#, false),
            "webhooks.mobile-push.secret: must start with \"whsec_\"",
        ),
        (
            config("not a url", "", false),
            "webhooks.mobile-push.url: \"not a url\" is not a URL",
        ),
        (
            config(
                "https://x.example/",
                r#", "format": {"template": {"m": "{{body}}"}}"#,
                false,
            ),
            "webhooks.mobile-push.format: unknown placeholder {{body}}",
        ),
        (
            CONFIG.replacen(r#""webhook": "mobile-push""#, r#""webhook": "pager""#, 1),
            "push.webhook: unknown webhook \"pager\"",
        ),
        (
            CONFIG.replacen(
                r#""webhooks": ["mobile-push"]"#,
                r#""webhooks": ["pager"]"#,
                1,
            ),
            "tenants.acme.webhooks[0]: unknown webhook \"pager\"",
        ),
    ];
    for (index, (text, expected)) in cases.iter().enumerate() {
        let path = write_config(&format!("bad-{index}.json"), text);
        let (ok, _, stderr) = cli(&["check-config", &path], &[]);
        assert!(!ok, "case {index} must be refused");
        assert!(
            stderr.contains(expected),
            "case {index}: expected {expected:?} in {stderr}"
        );
        assert!(
            !stderr.contains("sk_live_abc"),
            "the bad secret itself is not echoed"
        );
    }
}

#[test]
fn the_plugin_gets_the_final_status_and_the_start_of_the_body() {
    let receiver = Receiver::start(vec![Reply::status(202)]);
    let text = config(&receiver.url("/"), "", true).replacen(
        r#""tenants": {"#,
        r#""tenants": {"bad": {"component": "{MISBEHAVING}", "on_message": "flood", "webhooks": ["mobile-push"]},"#,
        1,
    )
    .replacen(
        '{',
        r#"{"limits": {"actions_per_hook": 200, "http_in_flight_per_tenant": 64},"#,
        1,
    );
    let mut gw = http_core(&text);
    let lines = scenario(&[
        (0, opened("bad", "b1", "web_chat")),
        (5, message("bad", "b1", "agent")),
    ]);
    let t = replay_on(&mut gw, &lines).unwrap_or_else(|e| panic!("{e}"));
    let posts: Vec<&str> = t
        .iter()
        .filter(|a| a["action"] == "post_message")
        .filter_map(|a| a["text"].as_str())
        .collect();
    // The hook's own post comes first (its actions apply in order, the outcomes follow).
    assert_eq!(posts.first(), Some(&"sent 64"), "{posts:?}");
    assert_eq!(posts.get(1), Some(&"answered 202 ok"), "{posts:?}");
    assert_eq!(
        posts.iter().filter(|p| **p == "answered 200 ok").count(),
        63,
        "{posts:?}"
    );
}

#[test]
fn an_answer_is_read_up_to_64_kib_and_no_further() {
    use std::sync::Arc;

    use autoclose_webhook::http::{HttpSender, MAX_ANSWER_BYTES};
    use autoclose_webhook::outbound::Attempt;
    use autoclose_webhook::retry::AttemptResult;

    let receiver = Receiver::start(vec![Reply::status(200).body(vec![b'a'; 1 << 20])]);
    let sender = HttpSender::new().unwrap_or_else(|e| panic!("{e}"));
    let attempt = Attempt {
        request: 1,
        number: 1,
        webhook: "w".into(),
        event_type: "test.big_answer".into(),
        id: "msg_big".into(),
        method: "POST".into(),
        url: receiver.url("/").parse().unwrap_or_else(|e| panic!("{e}")),
        headers: Vec::new(),
        secrets: Arc::from(Vec::new()),
        body: Arc::from(&b"{}"[..]),
        timeout_ms: 10_000,
        allow_private_networks: true,
    };
    match sender.send(&attempt) {
        AttemptResult::Answered { status, body, .. } => {
            assert_eq!(status, 200);
            assert_eq!(
                body.len(),
                MAX_ANSWER_BYTES,
                "a 1 MiB answer is cut at 64 KiB"
            );
        }
        other => panic!("{other}"),
    }
}
