//! What a message costs through the component in the host, against the native floor
//! measured in the same run: the same policy compiled natively and called directly.
//!
//! `cargo bench -p autoclose-tests --bench hook_cost` prints the table (median of 7
//! runs of 200,000 messages each).

use std::hint::black_box;
use std::time::Instant;

use autoclose_core::MAX_BATCH_EVENTS;
use autoclose_core::timers::TimerStore;
use autoclose_plugin::policy::{self, Message, SessionState, TimerOp};
use autoclose_runtime::{SessionId, TenantId, TimerKey};
use autoclose_tests::bench::{median, ns_per_message, ns_per_message_batched, open_sessions};
use autoclose_tests::{CONFIG, start_core};

const SESSIONS: u64 = 1_000;
const MESSAGES: u64 = 200_000;
const RUNS: usize = 7;

fn main() {
    // The tenant document the component gets, parsed natively the same way.
    let tenant_doc = serde_json::from_str::<serde_json::Value>(CONFIG)
        .ok()
        .and_then(|c| c["tenants"]["acme"].as_object().cloned())
        .unwrap_or_else(|| panic!("CONFIG has acme"));
    let mut tenant_doc = tenant_doc;
    tenant_doc.remove("webhooks");
    let settings = autoclose_plugin::config::parse(
        &serde_json::Value::Object(tenant_doc).to_string(),
        "{}",
        &["mobile-push".to_owned()],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let web_chat = settings
        .channel("web_chat")
        .cloned()
        .unwrap_or_else(|| panic!("web_chat"));

    // Floor 1: the policy alone.
    let floor = median(
        (0..RUNS)
            .map(|_| {
                let started = Instant::now();
                for i in 0..MESSAGES {
                    let plan = policy::on_message(
                        Some(black_box(&web_chat)),
                        Message {
                            sender: policy::Sender::Agent,
                            own_echo: false,
                            at: black_box(i),
                            sender_name: None,
                        },
                        SessionState::default(),
                    );
                    black_box(plan);
                }
                started.elapsed().as_nanos() as f64 / MESSAGES as f64
            })
            .collect(),
    );

    // Floor 2: the policy plus the host's timer store, as a native integration would need.
    let native = median(
        (0..RUNS)
            .map(|_| {
                let mut timers = TimerStore::default();
                let started = Instant::now();
                for i in 0..MESSAGES {
                    let plan = policy::on_message(
                        Some(&web_chat),
                        Message {
                            sender: policy::Sender::Agent,
                            own_echo: false,
                            at: i,
                            sender_name: None,
                        },
                        SessionState::default(),
                    );
                    if let Some(TimerOp::Set { due, pending }) = plan.timer {
                        let key = TimerKey {
                            session: SessionId(i % SESSIONS),
                            key: policy::TIMER_KEY,
                        };
                        timers.set(key, TenantId(0), due, &pending.encode());
                    }
                }
                black_box(&timers);
                started.elapsed().as_nanos() as f64 / MESSAGES as f64
            })
            .collect(),
    );

    // The component in the host: event in, session lookup, hook call, timer capability,
    // actions applied.
    let mut gw = start_core(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let events = open_sessions(&mut gw, SESSIONS);
    let hosted = ns_per_message(&mut gw, &events, RUNS, MESSAGES);
    let batched = ns_per_message_batched(&mut gw, &events, RUNS, MESSAGES, MAX_BATCH_EVENTS);

    // The boundary alone: the same path to a component that ignores the message (no
    // policy, no capability call, no action), which no plugin can go below.
    let mut idle = start_core(
        r#"{"tenants": {"acme": {"component": "{MISBEHAVING}", "on_message": "ignore"}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let idle_events = open_sessions(&mut idle, SESSIONS);
    let boundary = ns_per_message(&mut idle, &idle_events, RUNS, MESSAGES);

    println!(
        "one agent message (restarts the session's cycle), median of {RUNS} runs of {MESSAGES}"
    );
    println!("{:<62} {:>9} {:>8}", "path", "ns/event", "ratio");
    println!(
        "{:<62} {:>9.0} {:>8.2}",
        "floor: policy::on_message, native", floor, 1.0
    );
    println!(
        "{:<62} {:>9.0} {:>8.2}",
        "native integration: policy + host timer store",
        native,
        native / floor
    );
    println!(
        "{:<62} {:>9.0} {:>8.2}",
        "component in the host: Core::handle (whole path)",
        hosted,
        hosted / floor
    );
    println!(
        "{:<62} {:>9.0} {:>8.2}",
        format!("component in the host: Core::handle_all, {MAX_BATCH_EVENTS} per call"),
        batched,
        batched / floor
    );
    println!(
        "{:<62} {:>9.0} {:>8.2}",
        "boundary alone: Core::handle to a component that ignores it",
        boundary,
        boundary / floor
    );
    println!(
        "{:<62} {:>9} {:>8.2}",
        "component in the host vs native integration, one per call",
        "",
        hosted / native
    );
    println!(
        "{:<62} {:>9} {:>8.2}",
        format!("component in the host vs native integration, {MAX_BATCH_EVENTS} per call"),
        "",
        batched / native
    );
    println!(
        "{:<62} {:>9} {:>8.2}",
        "boundary alone vs native integration",
        "",
        boundary / native
    );
}
