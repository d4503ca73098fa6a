//! Micro figures with divan: each group puts our code beside its floor (the least that
//! work can cost), so the two lines of a group read as a ratio from the same run.
//!
//! `cargo bench -p autoclose-tests --bench micro` prints the tree (median, mean,
//! fastest and slowest per operation). The whole-system figures, with their ratios
//! computed, are the other benches (`hook_cost`, `replay`, `timer_store`, ...).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use autoclose::scenario;
use autoclose_core::event::GatewayEvent;
use autoclose_core::timers::TimerStore;
use autoclose_plugin::policy::{self, Message, SessionState};
use autoclose_runtime::{SessionId, TenantId, TimerKey};
use autoclose_webhook::secret::Secret;
use autoclose_webhook::signing;
use divan::{Bencher, black_box};

fn main() {
    divan::main();
}

/// A scenario line as the generator writes it (an agent's message).
const LINE: &str = r#"{"at_ms":1000,"type":"message","tenant":"acme","session":"s4711","sender":"agent","id":"s4711-m3","text":"message 3"}"#;

/// Reading one scenario line.
mod parse_line {
    use super::*;

    /// Floor: only parsing the JSON into a value.
    #[divan::bench]
    fn floor_json_value() -> serde_json::Value {
        serde_json::from_str(black_box(LINE)).unwrap_or_default()
    }

    /// Ours: parsed, typed and checked (the fast path).
    #[divan::bench]
    fn scenario_parse_line() -> Option<u64> {
        scenario::parse_line(black_box(LINE)).ok().map(|(at, _)| at)
    }

    /// Ours on a line the fast path leaves to the careful one (a duplicate key).
    #[divan::bench]
    fn scenario_parse_line_careful() -> Option<u64> {
        const DUPLICATE: &str = r#"{"at_ms":1000,"type":"message","tenant":"x","tenant":"acme","session":"s4711","sender":"agent"}"#;
        scenario::parse_line(black_box(DUPLICATE))
            .ok()
            .map(|(at, _)| at)
    }

    /// The ingest API's typed event, from a value already parsed.
    #[divan::bench]
    fn gateway_event_from_value(bencher: Bencher) {
        let value: serde_json::Value = serde_json::from_str(LINE).unwrap_or_default();
        bencher
            .with_inputs(|| {
                let mut object = value.as_object().cloned().unwrap_or_default();
                object.remove("at_ms");
                object
            })
            .bench_values(|object| GatewayEvent::from_json(object).is_ok());
    }
}

/// The policy's answer to an agent message, natively: the floor of every hook.
#[divan::bench]
fn policy_on_agent_message(bencher: Bencher) {
    let settings = autoclose_plugin::config::parse(
        r#"{"auto_close": {"warnings": [{"after": "3m", "message": "Still there?"}], "close": {"after": "5m"}}}"#,
        "{}",
        &[],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let channel = settings
        .channel("web_chat")
        .cloned()
        .unwrap_or_else(|| panic!("web_chat"));
    let mut at = 0;
    bencher.bench_local(|| {
        at += 1;
        policy::on_message(
            Some(black_box(&channel)),
            Message {
                sender: policy::Sender::Agent,
                own_echo: false,
                at,
                sender_name: None,
            },
            SessionState::default(),
        )
    });
}

/// One agent message through the component in the host (`Core::handle`: session
/// lookup, hook call, timer capability, actions applied), 1,000 sessions; beside the
/// native policy above, its floor.
#[divan::bench]
fn hosted_agent_message(bencher: Bencher) {
    let mut gw =
        autoclose_tests::start_core(autoclose_tests::CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let events = autoclose_tests::bench::open_sessions(&mut gw, 1_000);
    let mut at = 1;
    bencher.bench_local(|| {
        at += 1;
        gw.handle(at, &events[(at % 1_000) as usize])
    });
    assert!(
        gw.take_actions().is_empty(),
        "nothing may fire during the run"
    );
}

/// Timer operations with 100,000 pending, beside a binary heap's push and pop.
mod timers {
    use super::*;

    const PENDING: u64 = 100_000;
    const PAYLOAD: [u8; 10] = [1; 10];

    fn due(i: u64) -> u64 {
        (i.wrapping_mul(2_654_435_761) % 3_600_000) + 1
    }

    fn store() -> TimerStore {
        let mut timers = TimerStore::default();
        for i in 0..PENDING {
            timers.set(
                TimerKey {
                    session: SessionId(i),
                    key: 0,
                },
                TenantId(0),
                due(i),
                &PAYLOAD,
            );
        }
        timers
    }

    /// Floor: a push onto a heap of as many entries.
    #[divan::bench]
    fn floor_heap_push(bencher: Bencher) {
        let mut heap: BinaryHeap<Reverse<(u64, u64, u64)>> =
            (0..PENDING).map(|i| Reverse((due(i), i, i))).collect();
        let mut i = PENDING;
        bencher.bench_local(|| {
            i += 1;
            heap.push(Reverse((due(i), i, i)));
        });
    }

    /// Ours: replacing a session's timer (what every agent message does).
    #[divan::bench]
    fn replace(bencher: Bencher) {
        let mut timers = store();
        let mut i = 0u64;
        bencher.bench_local(|| {
            i += 1;
            let session = i % PENDING;
            timers.set(
                TimerKey {
                    session: SessionId(session),
                    key: 0,
                },
                TenantId(0),
                due(i) + 60_000,
                &PAYLOAD,
            );
        });
    }

    /// Floor: popping the earliest from a heap of as many entries.
    #[divan::bench]
    fn floor_heap_pop(bencher: Bencher) {
        let mut heap: BinaryHeap<Reverse<(u64, u64, u64)>> =
            (0..PENDING).map(|i| Reverse((due(i), i, i))).collect();
        let mut i = PENDING;
        bencher.bench_local(|| {
            i += 1;
            let top = heap.pop();
            heap.push(Reverse((due(i) + 3_600_000, i, i)));
            top
        });
    }

    /// Ours: firing the earliest timer (and setting another, to keep the count).
    #[divan::bench]
    fn fire(bencher: Bencher) {
        let mut timers = store();
        let mut i = PENDING;
        bencher.bench_local(|| {
            i += 1;
            let fired = timers.pop_due(u64::MAX);
            timers.set(
                TimerKey {
                    session: SessionId(i),
                    key: 0,
                },
                TenantId(0),
                due(i) + 3_600_000,
                &PAYLOAD,
            );
            fired
        });
    }
}

/// What each push costs to identify and sign.
mod webhook {
    use super::*;

    /// The delivery id: SHA-256 over the request's identity.
    #[divan::bench]
    fn delivery_id() -> String {
        signing::delivery_id(
            black_box("acme"),
            black_box("s4711"),
            "chat.auto_close.warning",
            "s4711-1-warning-0",
        )
    }

    /// The Standard Webhooks signature of a 300-byte body.
    #[divan::bench]
    fn signature(bencher: Bencher) {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
            .unwrap_or_else(|e| panic!("{e}"));
        let body = vec![b'x'; 300];
        bencher.bench_local(|| {
            signing::signature(std::slice::from_ref(&secret), "msg_1", 1_614_265_330, &body)
        });
    }
}
