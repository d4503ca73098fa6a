//! What the sandbox costs, and what instances cost, each against a baseline measured
//! in the same run.
//!
//! 1. Hook cost (one agent message through `Core::handle`) with epoch interruption
//!    (production) and with fuel, against no interruption at all.
//! 2. Creating one instance per tenant for 10,000 tenants (configure included) with
//!    the pooling allocator against on-demand allocation, and the memory each idle
//!    tenant holds (resident set growth per tenant).
//!
//! `cargo bench -p autoclose-tests --bench sandbox_cost` prints both tables.

use std::sync::Arc;
use std::time::Instant;

use autoclose::DEFAULT_PLUGIN;
use autoclose_config::HostConfig;
use autoclose_core::Core;
use autoclose_core::Runtime;
use autoclose_runtime::{Interrupt, RuntimeOptions};
use autoclose_tests::CONFIG;
use autoclose_tests::bench::{ns_per_message, open_sessions};
use autoclose_webhook::outbound::AnswerOk;

const SESSIONS: u64 = 1_000;
const MESSAGES: u64 = 100_000;
const RUNS: usize = 7;
const TENANTS: usize = 10_000;

fn start_core(config: &HostConfig, options: RuntimeOptions) -> Core {
    let runtime =
        Arc::new(Runtime::with_options(config.limits, options).unwrap_or_else(|e| panic!("{e}")));
    let plugin = runtime
        .load_bytes("auto-close", DEFAULT_PLUGIN)
        .unwrap_or_else(|e| panic!("{e}"));
    Core::new(runtime, config, plugin, Box::new(AnswerOk)).unwrap_or_else(|e| panic!("{e}"))
}

/// ns per agent message, median of [`RUNS`].
fn hook_cost(config: &HostConfig, interrupt: Interrupt) -> f64 {
    let mut gw = start_core(
        config,
        RuntimeOptions {
            interrupt,
            pool: None,
        },
    );
    let events = open_sessions(&mut gw, SESSIONS);
    ns_per_message(&mut gw, &events, RUNS, MESSAGES)
}

/// This process's memory in bytes, from `/proc/self/smaps_rollup`: resident (`Rss`,
/// which counts a page shared by many instances once per instance mapping it) and
/// private dirty (`Private_Dirty`: pages only this process has written, what each
/// further tenant really costs).
#[derive(Clone, Copy, Default)]
struct Memory {
    resident: u64,
    private_dirty: u64,
}

fn memory() -> Memory {
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap_or_default();
    let field = |name: &str| -> u64 {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    Memory {
        resident: field("Rss:"),
        private_dirty: field("Private_Dirty:"),
    }
}

/// (µs per tenant to start, resident and private dirty bytes per idle tenant) for
/// [`TENANTS`] tenants.
fn tenants(pool: Option<u32>) -> (f64, f64, f64) {
    let tenant = r#"{"channels": {"web_chat": {"auto_close": {"warnings": [{"after": "3m", "message": "Still there?"}], "close": {"after": "5m", "message": "Closed."}}}}}"#;
    let tenants: Vec<String> = (0..TENANTS)
        .map(|i| format!("\"t{i}\": {tenant}"))
        .collect();
    let text = format!("{{\"tenants\": {{{}}}}}", tenants.join(","));
    let config = HostConfig::parse(&text, std::path::Path::new("bench.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let runtime = Arc::new(
        Runtime::with_options(
            config.limits,
            RuntimeOptions {
                interrupt: Interrupt::Epoch,
                pool,
            },
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let plugin = runtime
        .load_bytes("auto-close", DEFAULT_PLUGIN)
        .unwrap_or_else(|e| panic!("{e}"));
    let before = memory();
    let started = Instant::now();
    let gw =
        Core::new(runtime, &config, plugin, Box::new(AnswerOk)).unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    let after = memory();
    drop(gw);
    let per_tenant = |a: u64, b: u64| a.saturating_sub(b) as f64 / TENANTS as f64;
    (
        took.as_secs_f64() * 1e6 / TENANTS as f64,
        per_tenant(after.resident, before.resident),
        per_tenant(after.private_dirty, before.private_dirty),
    )
}

fn main() {
    let config = HostConfig::parse(CONFIG, std::path::Path::new("bench.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let none = hook_cost(&config, Interrupt::Unbounded);
    let epoch = hook_cost(&config, Interrupt::Epoch);
    let fuel = hook_cost(&config, Interrupt::Fuel);
    println!(
        "hook cost: one agent message through Core::handle, median of {RUNS} runs of {MESSAGES}"
    );
    println!("| interruption | ns/event | vs none |");
    println!("| --- | ---: | ---: |");
    for (name, cost) in [
        ("none (baseline)", none),
        ("epoch (production)", epoch),
        ("fuel", fuel),
    ] {
        println!("| {name} | {cost:.0} | {:.2}x |", cost / none);
    }

    let (on_demand_us, on_demand_rss, on_demand_dirty) = tenants(None);
    let (pool_us, pool_rss, pool_dirty) = tenants(Some(TENANTS as u32 + 16));
    println!();
    println!("{TENANTS} tenants: an instance each, configured");
    println!(
        "| allocator | µs per tenant | resident KiB per idle tenant | private dirty KiB per idle tenant | time vs on demand |"
    );
    println!("| --- | ---: | ---: | ---: | ---: |");
    println!(
        "| on demand (baseline) | {on_demand_us:.1} | {:.1} | {:.1} | 1.00x |",
        on_demand_rss / 1024.0,
        on_demand_dirty / 1024.0
    );
    println!(
        "| pooling | {pool_us:.1} | {:.1} | {:.1} | {:.2}x |",
        pool_rss / 1024.0,
        pool_dirty / 1024.0,
        pool_us / on_demand_us
    );
}
