//! Crash test: hundreds of sessions mid-cycle, the server killed with SIGKILL at
//! several points and restarted on the same data directory. Every expected warning,
//! push and close must arrive; none may be lost; a duplicate may only repeat an id.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use autoclose_tests::receiver::{Received, Receiver, Reply};
use autoclose_tests::server::{Server, scratch};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_autoclose-cli-under-test");
const WAIT: Duration = Duration::from_secs(120);
const SESSIONS: usize = 300;
/// Sessions per ingest request.
const PER_REQUEST: usize = 10;

fn body(r: &Received) -> Value {
    serde_json::from_slice(&r.body).unwrap_or(Value::Null)
}

fn channel(index: usize) -> &'static str {
    if index.is_multiple_of(2) {
        "web_chat"
    } else {
        "http_api"
    }
}

/// The logical action a callback or push stands for: (session, what).
fn callback_key(b: &Value) -> (String, String) {
    let what = match b["type"].as_str() {
        Some("post_message") => format!("post/{}", b["kind"].as_str().unwrap_or("?")),
        Some(other) => other.to_owned(),
        None => "?".to_owned(),
    };
    (b["session"].as_str().unwrap_or("?").to_owned(), what)
}

fn push_key(b: &Value) -> (String, String) {
    (
        b["data"]["session"].as_str().unwrap_or("?").to_owned(),
        b["type"].as_str().unwrap_or("?").to_owned(),
    )
}

/// Distinct logical actions received.
fn distinct(received: &[Received], key: fn(&Value) -> (String, String)) -> usize {
    received
        .iter()
        .map(|r| key(&body(r)))
        .collect::<BTreeSet<_>>()
        .len()
}

fn ingest(server: &Server, range: std::ops::Range<usize>) {
    let indexes: Vec<usize> = range.collect();
    for chunk in indexes.chunks(PER_REQUEST) {
        let mut events = Vec::new();
        for &i in chunk {
            let session = format!("s{i}");
            events.push(json!({"type": "session_opened", "tenant": "acme", "session": session, "channel": channel(i)}));
            events.push(
                json!({"type": "message", "tenant": "acme", "session": session, "sender": "agent"}),
            );
        }
        server.ingest(None, &Value::Array(events));
    }
}

#[test]
fn killed_at_any_point_nothing_is_lost_and_duplicates_repeat_their_id() {
    let dir = scratch("serve-crash");
    // Answers take a little while, so that kills land with attempts on the wire.
    let slow = Reply::status(204).after(Duration::from_millis(20));
    let actions = Receiver::start_with(vec![], slow.clone());
    let push = Receiver::start_with(vec![], slow);
    let config = json!({
        "webhooks": {"push": {"url": push.url("/push")}},
        "egress": {"allow_private_networks": true},
        "gateway": {"actions_url": actions.url("/actions")},
        "tenants": {"acme": {"webhooks": ["push"], "channels": {
            "web_chat": {"auto_close": {
                "warnings": [{"after": "1s", "message": "Still there?", "push": true}],
                "close": {"after": "4s", "message": "Closed.", "push": true},
                "push": {"webhook": "push"}}},
            "http_api": {"auto_close": {"close": {"after": "2s", "message": "Closed."}}}}}}
    });
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let data = dir.join("data");
    let web = SESSIONS.div_ceil(2);
    let expected_callbacks = web * 3 + (SESSIONS - web) * 2;
    let expected_pushes = web * 2;

    // Two engines, so that restores and resends are checked across shards too.
    let start = || Server::start_with(BINARY, &config_path, &data, &[], &["--shards", "2"]);

    // 1. Half the sessions acknowledged, then killed before any timer fired.
    let server = start();
    ingest(&server, 0..SESSIONS / 2);
    server.crash();

    // 2. The other half, then killed once a third of the actions went out.
    let server = start();
    ingest(&server, SESSIONS / 2..SESSIONS);
    actions.wait_until("a third of the actions", WAIT, |r| {
        distinct(r, callback_key) >= expected_callbacks / 3
    });
    server.crash();

    // 3. Killed again at two thirds.
    let server = start();
    actions.wait_until("two thirds of the actions", WAIT, |r| {
        distinct(r, callback_key) >= expected_callbacks * 2 / 3
    });
    server.crash();

    // 4. The last start sees everything through.
    let server = start();
    let callbacks = actions.wait_until("every action", WAIT, |r| {
        distinct(r, callback_key) >= expected_callbacks
    });
    let pushes = push.wait_until("every push", WAIT, |r| {
        distinct(r, push_key) >= expected_pushes
    });
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");

    // Exactly the expected actions, each under one id however often it came.
    let mut ids: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut first_seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &callbacks {
        let b = body(r);
        let key = callback_key(&b);
        let id = b["id"].as_str().unwrap_or("?").to_owned();
        let header = r.headers.get("webhook-id").and_then(|v| v.to_str().ok());
        assert_eq!(header, Some(id.as_str()));
        let fresh = ids.entry(key.clone()).or_default().insert(id);
        if fresh {
            first_seen.entry(key.0).or_default().push(key.1);
        }
    }
    for i in 0..SESSIONS {
        let session = format!("s{i}");
        let expected: Vec<&str> = if channel(i) == "web_chat" {
            vec!["post/warning", "post/close", "close_session"]
        } else {
            vec!["post/close", "close_session"]
        };
        let seen: Vec<&str> = first_seen
            .get(&session)
            .map(|v| v.iter().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            seen, expected,
            "{session}: actions missing, extra or out of order"
        );
    }
    for (key, set) in &ids {
        assert_eq!(set.len(), 1, "{key:?} arrived under several ids: {set:?}");
    }
    let mut push_ids: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for r in &pushes {
        let id = r
            .headers
            .get("webhook-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_owned();
        push_ids.entry(push_key(&body(r))).or_default().insert(id);
    }
    assert_eq!(push_ids.len(), expected_pushes);
    for (key, set) in &push_ids {
        assert_eq!(
            set.len(),
            1,
            "push {key:?} arrived under several ids: {set:?}"
        );
    }
    let duplicates = callbacks.len() - expected_callbacks + pushes.len() - expected_pushes;
    eprintln!(
        "crash test: {} callbacks and {} pushes received for {expected_callbacks} + {expected_pushes} expected ({duplicates} resent with the same id)",
        callbacks.len(),
        pushes.len()
    );
}
