//! Durable ingest through `autoclose serve` on loopback: events/s and per-request
//! latency (p50, p99), against a floor measured in the same run with the same load
//! generator: an in-process HTTP server that parses the same JSON and answers `202`
//! without recording anything.
//!
//! Beside the redb store (one and two shards; one shard also with
//! `--history-steps 0`, to show what the console's history costs), the same load runs against one node and
//! against three nodes on the PostgreSQL store (the machine's server,
//! `AUTOCLOSE_TEST_POSTGRES`, in a database of its own). The three nodes take the
//! connections in turn, so two thirds of the events reach a node that does not serve
//! their shard and go through the shard's inbox; they are counted once their owner
//! applied them. For PostgreSQL the table also gives the transactions and the rows
//! written (inserted, updated, deleted) per event, from the server's statistics.
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

/// Sends `plan`, connection `c` to `urls[c % urls.len()]`.
fn load(
    runtime: &tokio::runtime::Runtime,
    urls: &[String],
    plan: &[Vec<Vec<u8>>],
    events: usize,
) -> Run {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(plan.len())
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let mut latencies: Vec<Duration> = runtime.block_on(async {
        let mut tasks = Vec::new();
        for (c, bodies) in plan.iter().cloned().enumerate() {
            let client = client.clone();
            let url = urls[c % urls.len()].clone();
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
            &[format!("http://{floor}/v1/events")],
            &plan,
            events,
        );
        let mut rows = vec![("floor (parse, 202)".to_owned(), figures(&base))];
        // (shards, nodes, on PostgreSQL, steps of history per session)
        for (shards, nodes, postgres, history) in [
            (1usize, 1usize, false, "32"),
            (1, 1, false, "0"),
            (2, 1, false, "32"),
            (1, 1, true, "32"),
            (6, 3, true, "32"),
        ] {
            let count = shards.to_string();
            let database =
                postgres.then(|| TestDatabase::create(&format!("bench_load_{batch}_{nodes}")));
            let env: Vec<(&str, &str)> = database
                .iter()
                .map(|db| ("AUTOCLOSE_DATABASE_URL", db.url.as_str()))
                .collect();
            let path = if postgres {
                &postgres_config
            } else {
                &config_path
            };
            let servers: Vec<Server> = (0..nodes)
                .map(|n| {
                    let data = dir.join(format!("data-{batch}-{shards}-{postgres}-{history}-{n}"));
                    Server::start_with(
                        BINARY,
                        path,
                        &data,
                        &env,
                        &["--shards", &count, "--history-steps", history],
                    )
                })
                .collect();
            // Every shard served before the load starts (on PostgreSQL the nodes take
            // their shards after they listen).
            let owned = |s: &Server| {
                let (_, body) = s.get("/healthz");
                serde_json::from_str::<Value>(&body)
                    .map_or(0, |h| h["shards_owned"].as_u64().unwrap_or(0))
            };
            // The placement settled: every node its fair share.
            wait(&format!("{shards} shards served"), || {
                servers.iter().map(owned).sum::<u64>() == shards as u64
                    && servers.iter().all(|s| owned(s) == (shards / nodes) as u64)
            });
            let statistics = |db: &TestDatabase| {
                (
                    db.count("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"),
                    db.count("SELECT COALESCE(sum(n_tup_ins + n_tup_upd + n_tup_del), 0)::bigint FROM pg_stat_user_tables WHERE schemaname = 'autoclose'"),
                )
            };
            let before = database.as_ref().map(statistics);
            let urls: Vec<String> = servers.iter().map(|s| s.url("/v1/events")).collect();
            let written = |servers: &[Server]| -> Option<u64> {
                servers.iter().map(Server::written_bytes).sum()
            };
            let written_before = written(&servers);
            let run = load(&runtime, &urls, &plan, events);
            let sum = |prefix: &str| -> f64 {
                servers
                    .iter()
                    .map(|server| {
                        let (_, metrics) = server.get("/metrics");
                        metrics
                            .lines()
                            .filter(|l| l.starts_with(prefix))
                            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                            .sum::<f64>()
                    })
                    .sum()
            };
            // Events left in an inbox are applied within a poll of their owner.
            wait("every event recorded", || {
                sum("autoclose_events_total{") as usize == events
            });
            let commits = sum("autoclose_commit_duration_seconds_count");
            let commit_seconds = sum("autoclose_commit_duration_seconds_sum");
            // What the store wrote to disk per event (redb: pages rewritten whole).
            let disk = match (written_before, written(&servers)) {
                (Some(before), Some(after)) if !postgres && after > before => format!(
                    ", {:.1} KB written per event",
                    (after - before) as f64 / events as f64 / 1000.0
                ),
                _ => String::new(),
            };
            drop(servers);
            let per_event = match (&database, before) {
                (Some(db), Some((xacts, rows))) => {
                    // A backend publishes what it counted when it ends: wait until the
                    // nodes' connections are gone.
                    wait("the nodes' connections closed", || {
                        db.count("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()") == 0
                    });
                    let (xacts_after, rows_after) = statistics(db);
                    format!(
                        "; {:.3} transactions and {:.2} rows written per event",
                        (xacts_after - xacts) as f64 / events as f64,
                        (rows_after - rows) as f64 / events as f64
                    )
                }
                _ => String::new(),
            };
            let store = if postgres { "PostgreSQL, " } else { "" };
            let node_text = if nodes == 1 {
                String::new()
            } else {
                format!("{nodes} nodes, ")
            };
            let history_text = if history == "32" {
                String::new()
            } else {
                format!(", --history-steps {history}")
            };
            rows.push((
                format!(
                    "autoclose serve, {store}{node_text}{shards} shard{}{history_text} ({:.0} events per commit, {:.2} ms a commit{disk}{per_event})",
                    if shards == 1 { "" } else { "s" },
                    events as f64 / commits.max(1.0),
                    commit_seconds * 1e3 / commits.max(1.0)
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

/// Polls `done` every 20 ms, at most a minute: for state the servers report but
/// announce nowhere.
fn wait(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
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
