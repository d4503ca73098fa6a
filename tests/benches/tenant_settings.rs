//! What a tenant settings change through the admin API costs in `autoclose serve`,
//! against two baselines from the same run: a `GET` of the same tenant (the HTTP and
//! auth floor) and a full reload of the file (what a `PUT` does today besides storing:
//! it rebuilds every tenant's instance).
//!
//! `cargo bench -p autoclose-tests --bench tenant_settings` prints the table. Bounded:
//! 100 and 1,000 tenants (`AUTOCLOSE_BENCH_TENANTS` sets the largest), seven rounds
//! each, one shard.

use std::time::{Duration, Instant};

use autoclose_tests::receiver::Receiver;
use autoclose_tests::server::{Server, scratch};
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_autoclose-cli-under-test");
const ROUNDS: usize = 7;

fn tenant(close: &str) -> Value {
    json!({"channels": {"web_chat": {"auto_close": {
        "warnings": [{"after": "3m", "message": "Still there?"}],
        "close": {"after": close, "message": "Closed."}}}}})
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn timed(mut f: impl FnMut(usize)) -> Duration {
    median(
        (0..ROUNDS)
            .map(|round| {
                let started = Instant::now();
                f(round);
                started.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let largest: usize = std::env::var("AUTOCLOSE_BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let actions = Receiver::start(vec![]);
    println!(
        "| tenants | GET one tenant | PUT one tenant | full reload | PUT / GET | PUT / reload |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for count in [100, largest] {
        let dir = scratch(&format!("bench-tenant-settings-{count}"));
        let tenants: serde_json::Map<String, Value> = (0..count)
            .map(|i| (format!("t{i:05}"), tenant("5m")))
            .collect();
        let config = json!({
            "gateway": {"actions_url": actions.url("/actions")},
            "egress": {"allow_private_networks": true},
            "tenants": tenants,
        });
        let path = dir.join("config.json");
        std::fs::write(&path, config.to_string()).unwrap_or_else(|e| panic!("{e}"));
        let server = Server::start(BINARY, &path, &dir.join("data"), &[]);
        let get = timed(|_| {
            let reply = server.request("GET", "/v1/admin/tenants/t00001", None, &[], None);
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        });
        let put = timed(|round| {
            let document = tenant(&format!("{}m", round + 6));
            let reply = server.request(
                "PUT",
                "/v1/admin/tenants/t00001",
                None,
                &[],
                Some(&document),
            );
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        });
        let reload = timed(|_| {
            let reply = server.request("POST", "/v1/admin/reload", None, &[], None);
            assert_eq!(reply.status, 200, "{:?}", reply.body);
        });
        let (status, stderr) = server.terminate(Duration::from_secs(60));
        assert!(status.success(), "{stderr}");
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        println!(
            "| {count} | {:.2} ms | {:.1} ms | {:.1} ms | {:.0}x | {:.2}x |",
            ms(get),
            ms(put),
            ms(reload),
            ms(put) / ms(get),
            ms(put) / ms(reload),
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
