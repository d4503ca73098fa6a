//! Deliveries per second to a local receiver, against a baseline measured in the same
//! run: a bare keep-alive POST of the same body with the same HTTP client library.
//!
//! `cargo bench -p autoclose-tests --bench deliveries` prints the table.

use std::sync::Arc;
use std::time::Instant;

use autoclose_tests::receiver::Receiver;
use autoclose_tests::{CONFIG, message, opened, replay_on, scenario};
use autoclose_webhook::http::HttpSender;
use autoclose_webhook::outbound::Attempt;
use autoclose_webhook::secret::Secret;

const N: usize = 2_000;

fn main() {
    let receiver = Receiver::start(vec![]);
    let url = receiver.url("/push");
    let body: Arc<[u8]> = Arc::from(
        br#"{"type":"chat.auto_close.warning","timestamp":"2026-01-01T00:00:00Z","data":{"tenant":"acme","session":"s1","channel":"web_chat","message":"Are you still there? This chat closes in 2 minutes.","closes_at":"2026-01-01T00:02:00Z","end_user":{"locale":"en"}}}"#.as_slice(),
    );

    // Baseline: the same POST with a bare reqwest client.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let client = reqwest::Client::new();
    let started = Instant::now();
    runtime.block_on(async {
        for _ in 0..N {
            let response = client
                .post(&url)
                .header("content-type", "application/json")
                .body(body.to_vec())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let _ = response.bytes().await;
        }
    });
    let baseline = N as f64 / started.elapsed().as_secs_f64();

    // Our transport: egress policy, time-outs, signing with one secret.
    let sender = HttpSender::new().unwrap_or_else(|e| panic!("{e}"));
    let secret = Secret::parse(&Secret::encode(&[5u8; 32])).unwrap_or_else(|e| panic!("{e}"));
    let attempt = Attempt {
        request: 0,
        number: 1,
        webhook: "mobile-push".into(),
        event_type: "chat.auto_close.warning".into(),
        id: "msg_bench".into(),
        method: "POST".into(),
        url: url.parse().unwrap_or_else(|e| panic!("{e}")),
        headers: vec![("authorization".into(), "Bearer x".into())],
        secrets: Arc::from(vec![secret]),
        body: body.clone(),
        timeout_ms: 10_000,
        allow_private_networks: true,
    };
    let started = Instant::now();
    for _ in 0..N {
        let _ = sender.send(&attempt);
    }
    let transport = N as f64 / started.elapsed().as_secs_f64();

    // The whole path: N sessions, each warned by the component, each push delivered.
    let hook = format!(
        r#""webhooks": {{"mobile-push": {{"url": "{url}", "secret": "{}"}}}}, "egress": {{"allow_private_networks": true}},"#,
        Secret::encode(&[6u8; 32])
    );
    let config = CONFIG.replacen(
        r#""webhooks": {"mobile-push": {"url": "https://push.example.com/hook"}},"#,
        &hook,
        1,
    );
    let mut gw = autoclose_tests::http_core(&config);
    let mut lines = Vec::new();
    for i in 0..N as u64 {
        lines.push((i, opened("acme", &format!("s{i}"), "web_chat")));
        lines.push((i, message("acme", &format!("s{i}"), "agent")));
    }
    let text = scenario(&lines);
    let before = receiver.received().len();
    let started = Instant::now();
    replay_on(&mut gw, &text).unwrap_or_else(|e| panic!("{e}"));
    let whole = N as f64 / started.elapsed().as_secs_f64();
    assert_eq!(
        receiver.received().len() - before,
        N,
        "every session's warning was delivered"
    );

    println!("deliveries to a receiver on 127.0.0.1, {N} each, sequential, one connection");
    println!("{:<58} {:>10} {:>8}", "path", "per second", "ratio");
    println!(
        "{:<58} {:>10.0} {:>8.2}",
        "baseline: bare reqwest POST", baseline, 1.0
    );
    println!(
        "{:<58} {:>10.0} {:>8.2}",
        "HttpSender (egress check, signing, time-outs)",
        transport,
        transport / baseline
    );
    println!(
        "{:<58} {:>10.0} {:>8.2}",
        "whole path (component warns, gateway queues, delivers)",
        whole,
        whole / baseline
    );
}
