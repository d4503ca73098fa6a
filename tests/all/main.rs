//! The integration tests, as one binary (wasmtime's `tests/all` pattern): the built
//! components in the real host, through the library and through the CLI as a process,
//! with real HTTP servers on 127.0.0.1 and real processes killed for crash tests.
//!
//! One module per concern; `cargo test --test all rules::` runs one of them.

mod bad_input;
mod batching;
mod browser;
mod chatwoot;
mod cli;
mod cluster;
mod console;
mod delivery;
mod differential;
mod engine;
mod features;
mod fuzz_smoke;
mod history;
mod invariants;
mod postgres;
mod restore;
mod rocketchat;
mod rules;
mod sandbox;
mod sdk;
mod serve;
mod serve_crash;
mod tenants_api;
mod threads;
mod vendor;
mod webhooks_http;

/// The example configurations with their scenarios, as the README replays them: what
/// every way of replaying (`--batch`, `--threads`) must leave byte for byte the same.
const EXAMPLE_REPLAYS: [(&str, &str); 3] = [
    ("examples/config.json", "examples/conversation.jsonl"),
    (
        "examples/multi-tenant/config.json",
        "examples/multi-tenant/groups-and-channels.jsonl",
    ),
    (
        "examples/multi-tenant/config.json",
        "examples/multi-tenant/hold-and-queue.jsonl",
    ),
];

/// Runs the CLI under test (the `autoclose` CLI built as a binary of this package) as a
/// process in the repository's root with `args`.
fn run_cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_autoclose-cli-under-test"))
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the CLI: {e}"))
}
