//! Deliveries per second out of `autoclose serve`: a burst of warnings (a signed chat
//! action to the gateway's callback and a push, per session) to a local receiver,
//! against a baseline measured in the same run: the same number of bare POSTs from one
//! reqwest client with the same concurrency (512) to the same receiver.
//!
//! `cargo bench -p autoclose-tests --bench serve_deliveries` prints the table.

use std::sync::Arc;
use std::time::{Duration, Instant};

use autoclose_tests::receiver::{Received, Receiver};
use autoclose_tests::server::{Server, scratch};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

const BINARY: &str = env!("CARGO_BIN_EXE_autoclose-cli-under-test");
const SESSIONS: usize = 5_000;
const CONCURRENCY: usize = 512;

/// Deliveries per second between the first and the last arrival.
fn rate(received: &[Received]) -> f64 {
    let first = received.iter().map(|r| r.at).min();
    let last = received.iter().map(|r| r.at).max();
    match (first, last) {
        (Some(first), Some(last)) => received.len() as f64 / (last - first).as_secs_f64().max(1e-9),
        _ => 0.0,
    }
}

fn main() {
    let deliveries = SESSIONS * 2;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));

    // Baseline: bare POSTs, 512 at a time.
    let baseline_receiver = Receiver::start(vec![]);
    let url = baseline_receiver.url("/push");
    let body = json!({"type": "chat.auto_close.warning", "data": {"session": "s1", "message": "Still there?"}}).to_string();
    let started = Instant::now();
    runtime.block_on(async {
        let client = reqwest::Client::new();
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        let mut tasks = Vec::new();
        for _ in 0..deliveries {
            let permit = permits
                .clone()
                .acquire_owned()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let (client, url, body) = (client.clone(), url.clone(), body.clone());
            tasks.push(tokio::spawn(async move {
                let response = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
                let _ = response.bytes().await;
                drop(permit);
            }));
        }
        for task in tasks {
            task.await.unwrap_or_else(|e| panic!("{e}"));
        }
    });
    let baseline_elapsed = started.elapsed();
    let baseline = rate(&baseline_receiver.received());

    // The sidecar: every session warned at the same instant.
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let dir = scratch("serve-deliveries");
    let config = json!({
        "webhooks": {"push": {"url": push.url("/push"), "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}},
        "egress": {"allow_private_networks": true},
        "gateway": {"actions_url": actions.url("/actions"), "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
        "tenants": {"acme": {"webhooks": ["push"], "channels": {"web_chat": {"auto_close": {
            "warnings": [{"after": "2s", "message": "Still there?", "push": true}],
            "close": {"after": "1h2s", "message": "Closed."},
            "push": {"webhook": "push"}}}}}}
    });
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let server = Server::start(BINARY, &config_path, &dir.join("data"), &[]);
    let events: Vec<Value> = (0..SESSIONS)
        .flat_map(|i| {
            let session = format!("s{i}");
            [
                json!({"type": "session_opened", "tenant": "acme", "session": session, "channel": "web_chat"}),
                json!({"type": "message", "tenant": "acme", "session": session, "sender": "agent"}),
            ]
        })
        .collect();
    for chunk in events.chunks(1000) {
        server.ingest(None, &Value::Array(chunk.to_vec()));
    }
    let wait = Duration::from_secs(120);
    let callbacks = actions.wait_until("every warning post", wait, |r| r.len() >= SESSIONS);
    let pushes = push.wait_until("every warning push", wait, |r| r.len() >= SESSIONS);
    drop(server);
    let mut all = callbacks;
    all.extend(pushes);
    let served = rate(&all);

    println!(
        "{deliveries} deliveries to receivers on 127.0.0.1 ({SESSIONS} sessions warned at once: a signed chat action and a signed push each)"
    );
    println!("| path | deliveries/s | vs baseline |");
    println!("| --- | ---: | ---: |");
    println!(
        "| baseline: bare reqwest POSTs, {CONCURRENCY} at a time ({:.2} s) | {baseline:.0} | 1.00x |",
        baseline_elapsed.as_secs_f64()
    );
    println!(
        "| autoclose serve: timers fire, commit, sign, send, record | {served:.0} | {:.2}x |",
        served / baseline
    );
}
