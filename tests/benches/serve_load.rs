//! Durable ingest through `autoclose serve` on loopback: events/s and per-request
//! latency (p50, p99), against a floor measured in the same run with the same load
//! generator: an in-process HTTP server that parses the same JSON and answers `202`
//! without recording anything.
//!
//! Beside the redb store (one and two shards), the same load runs against one node on
//! the PostgreSQL store (the machine's server, `AUTOCLOSE_TEST_POSTGRES`, in a
//! database of its own).
//!
//! `cargo bench -p autoclose-tests --bench serve_load` prints the table. Bounded: by
//! default 10,000 sessions x 10 events = 100,000 events per run, 64 connections
//! (`AUTOCLOSE_LOAD_SESSIONS` and `AUTOCLOSE_LOAD_CONNECTIONS` change that). Events of
//! one session are sent in order by one connection, as a gateway would.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use autoclose_tests::postgres::TestDatabase;
use autoclose_tests::receiver::Receiver;
use autoclose_tests::server::{Server, scratch};
use axum::http::StatusCode;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_autoclose-cli-under-test");
const EVENTS_PER_SESSION: usize = 10;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The events of session `i`: opened, then agent and end user taking turns.
fn session_events(i: usize) -> Vec<Value> {
    let session = format!("load-{i}");
    let channel = if i.is_multiple_of(2) {
        "web_chat"
    } else {
        "http_api"
    };
    let tenant = if i.is_multiple_of(3) {
        "globex"
    } else {
        "acme"
    };
    let mut events = vec![json!({
        "type": "session_opened", "tenant": tenant, "session": session,
        "channel": channel, "attributes": {"locale": "en", "end_user_name": "Alex"}
    })];
    for turn in 1..EVENTS_PER_SESSION {
        let sender = if turn % 2 == 1 { "agent" } else { "end_user" };
        events.push(json!({
            "type": "message", "tenant": tenant, "session": session, "sender": sender,
            "id": format!("m{turn}"), "text": "Thanks, let me check that order for you."
        }));
    }
    events
}

/// Request bodies per connection, in send order: each connection owns every
/// `connections`-th session and sends its events `batch` at a time.
fn plan(sessions: usize, connections: usize, batch: usize) -> Vec<Vec<Vec<u8>>> {
    (0..connections)
        .map(|c| {
            let mut bodies = Vec::new();
            for i in (c..sessions).step_by(connections) {
                for chunk in session_events(i).chunks(batch) {
                    let body = if batch == 1 {
                        chunk[0].to_string()
                    } else {
                        Value::Array(chunk.to_vec()).to_string()
                    };
                    bodies.push(body.into_bytes());
                }
            }
            bodies
        })
        .collect()
}

struct Run {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Run {
    fn events_per_s(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&self, p: f64) -> Duration {
        let index = ((self.latencies.len() as f64 - 1.0) * p).round() as usize;
        self.latencies[index.min(self.latencies.len() - 1)]
    }
}

fn load(runtime: &tokio::runtime::Runtime, url: &str, plan: &[Vec<Vec<u8>>], events: usize) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.len())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let mut tasks = Vec::new();
        for bodies in plan.iter().cloned() {
            let client = client.clone();
            let url = url.to_owned();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(bodies.len());
                for body in bodies {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await
                        .unwrap_or_else(|e| panic!("POST: {e}"));
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    assert_eq!(status.as_u16(), 202, "{text}");
                    latencies.push(sent.elapsed());
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap_or_else(|e| panic!("{e}")));
        }
        all
    });
    let elapsed = started.elapsed();
    latencies.sort();
    Run {
        events,
        elapsed,
        latencies,
    }
}

/// The floor: parse the JSON (an object or an array), answer 202.
fn start_floor(runtime: &tokio::runtime::Runtime) -> SocketAddr {
    async fn take(body: axum::body::Bytes) -> (StatusCode, String) {
        match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Array(items)) => (
                StatusCode::ACCEPTED,
                format!("{{\"accepted\":{}}}", items.len()),
            ),
            Ok(_) => (StatusCode::ACCEPTED, "{\"accepted\":1}".to_owned()),
            Err(e) => (StatusCode::BAD_REQUEST, e.to_string()),
        }
    }
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("{e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    let app = axum::Router::new().route("/v1/events", axum::routing::post(take));
    runtime.spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

fn main() {
    let sessions = env_usize("AUTOCLOSE_LOAD_SESSIONS", 10_000);
    let connections = env_usize("AUTOCLOSE_LOAD_CONNECTIONS", 64);
    let events = sessions * EVENTS_PER_SESSION;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let floor = start_floor(&runtime);
    let callback = Receiver::start(vec![]);
    let dir = scratch("serve-load");
    // Timings long enough that nothing fires during the run: this measures ingest.
    let config = json!({
        "webhooks": {"push": {"url": "https://push.example.com/hook"}},
        "gateway": {"actions_url": callback.url("/actions")},
        "tenants": {
            "acme": {"webhooks": ["push"], "channels": {
                "web_chat": {"auto_close": {
                    "warnings": [{"after": "1h", "message": "Still there?", "push": true}],
                    "close": {"after": "1h10m", "message": "Closed."},
                    "push": {"webhook": "push"}}},
                "http_api": {"auto_close": {"close": {"after": "1h", "message": "Closed."}}}}},
            "globex": {"channels": {
                "web_chat": {"auto_close": {"close": {"after": "1h", "message": "Closed."}}},
                "http_api": {"auto_close": {"close": {"after": "1h", "message": "Closed."}}}}}}
    });
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let mut on_postgres = config.clone();
    on_postgres["store"] = json!({"kind": "postgres", "url": "env:AUTOCLOSE_DATABASE_URL"});
    let postgres_config = dir.join("postgres.json");
    std::fs::write(&postgres_config, on_postgres.to_string()).unwrap_or_else(|e| panic!("{e}"));

    println!(
        "serve load: {sessions} sessions x {EVENTS_PER_SESSION} events = {events} events, {connections} connections, loopback, data in {}",
        dir.display()
    );
    println!("| mode | target | events/s | p50 latency | p99 latency | events/s vs floor |");
    println!("| --- | --- | ---: | ---: | ---: | ---: |");
    for batch in [1, 10] {
        let plan = plan(sessions, connections, batch);
        let mode = if batch == 1 {
            "1 event per request".to_owned()
        } else {
            format!("{batch} events per request")
        };
        let base = load(
            &runtime,
            &format!("http://{floor}/v1/events"),
            &plan,
            events,
        );
        let mut rows = vec![("floor (parse, 202)".to_owned(), figures(&base))];
        for (shards, postgres) in [(1usize, false), (2, false), (1, true)] {
            let data = dir.join(format!("data-{batch}-{shards}-{postgres}"));
            let count = shards.to_string();
            let database = postgres.then(|| TestDatabase::create(&format!("bench_load_{batch}")));
            let env: Vec<(&str, &str)> = database
                .iter()
                .map(|db| ("AUTOCLOSE_DATABASE_URL", db.url.as_str()))
                .collect();
            let path = if postgres {
                &postgres_config
            } else {
                &config_path
            };
            let server = Server::start_with(BINARY, path, &data, &env, &["--shards", &count]);
            let run = load(&runtime, &server.url("/v1/events"), &plan, events);
            let (_, metrics) = server.get("/metrics");
            let sum = |prefix: &str| -> f64 {
                metrics
                    .lines()
                    .filter(|l| l.starts_with(prefix))
                    .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                    .sum()
            };
            assert_eq!(
                sum("autoclose_events_total{") as usize,
                events,
                "every event recorded"
            );
            let commits = sum("autoclose_commit_duration_seconds_count");
            drop(server);
            let store = if postgres { "PostgreSQL, " } else { "" };
            rows.push((
                format!(
                    "autoclose serve, {store}{shards} shard{} ({:.0} events per commit)",
                    if shards == 1 { "" } else { "s" },
                    events as f64 / commits.max(1.0)
                ),
                figures(&run),
            ));
        }
        for (target, (rate, p50, p99)) in &rows {
            println!(
                "| {mode} | {target} | {rate:.0} | {:.2} ms | {:.2} ms | {:.2}x |",
                p50 * 1e3,
                p99 * 1e3,
                rate / base.events_per_s(),
            );
        }
    }
}

/// Events/s, p50 and p99 (seconds) of a run.
fn figures(run: &Run) -> (f64, f64, f64) {
    (
        run.events_per_s(),
        run.percentile(0.5).as_secs_f64(),
        run.percentile(0.99).as_secs_f64(),
    )
}
