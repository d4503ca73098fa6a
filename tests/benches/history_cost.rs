//! What the console's history costs: heap bytes and store bytes per session, and the
//! time the core takes per event, with histories of 32 steps (the default) and of
//! 256 (the most) against none, measured in one run on the same sessions.
//!
//! Two kinds of session, 20,000 each, of acme (CONFIG: a warning with a push at 3m,
//! the close at 5m):
//! - short: opens, hears from an agent, is warned, pushed and closed (11 steps);
//! - long: 20 exchanges (the agent writes, the end user answers 5s later: 4 steps
//!   each) before the warning and the close, 90 steps, so the bound decides.
//!
//! The store's bytes are the session records as redb writes them (JSON).
//!
//! `cargo bench -p autoclose-tests --bench history_cost` prints the table.

use std::time::Instant;

use autoclose_core::Core;
use autoclose_core::event::{GatewayEvent, MessageEvent, Sender};
use autoclose_tests::bench::{Counting, live_bytes, median, open_sessions};
use autoclose_tests::{CONFIG, start_core};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SESSIONS: u64 = 20_000;
const ROUNDS: usize = 5;

/// One run: the sessions, after `exchanges` agent/end-user exchanges, warned and
/// closed with `steps` of history; returns the heap bytes the core grew by, the
/// store bytes of its session records, the seconds the events and timers took, and
/// the history steps kept.
fn run(steps: usize, exchanges: u64) -> (isize, usize, f64, usize) {
    let mut tested = start_core(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let core: &mut Core = &mut tested;
    core.keep_history(steps);
    core.track_changes();
    let before = live_bytes();
    let started = Instant::now();
    let messages = open_sessions(core, SESSIONS);
    let answers: Vec<GatewayEvent> = messages
        .iter()
        .map(|m| match m {
            GatewayEvent::Message(m) => GatewayEvent::Message(MessageEvent {
                sender: Sender::EndUser,
                ..m.clone()
            }),
            other => other.clone(),
        })
        .collect();
    for exchange in 0..exchanges {
        let at = 1_000 + exchange * 10_000;
        for (message, answer) in messages.iter().zip(&answers) {
            core.handle(at, message).unwrap_or_else(|e| panic!("{e}"));
            core.handle(at + 5_000, answer)
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    let last = 1_000 + exchanges * 10_000;
    for message in &messages {
        core.handle(last, message).unwrap_or_else(|e| panic!("{e}"));
    }
    core.advance_to(last + 400_000);
    let took = started.elapsed().as_secs_f64();
    drop(core.take_actions());
    let grew = live_bytes() - before;
    let changes = core.take_changes();
    let store: usize = changes
        .sessions
        .iter()
        .map(|record| serde_json::to_vec(record).map(|v| v.len()).unwrap_or(0))
        .sum();
    let kept = core
        .history("acme", "s0")
        .map(|h| h.steps.len())
        .unwrap_or(0);
    drop(changes);
    (grew, store, took, kept)
}

fn main() {
    for (name, exchanges) in [("short", 0), ("long", 20)] {
        table(name, exchanges);
    }
}

fn table(name: &str, exchanges: u64) {
    let variants = [0usize, 32, 256];
    let mut heap = vec![Vec::new(); variants.len()];
    let mut store = vec![0usize; variants.len()];
    let mut time = vec![Vec::new(); variants.len()];
    let mut kept = vec![0usize; variants.len()];
    // Alternate the variants so that drift in the machine's speed hits all alike.
    for _ in 0..ROUNDS {
        for (i, &steps) in variants.iter().enumerate() {
            let (grew, bytes, took, steps_kept) = run(steps, exchanges);
            heap[i].push(grew as f64);
            store[i] = bytes;
            time[i].push(took);
            kept[i] = steps_kept;
        }
    }
    let n = SESSIONS as f64;
    let base_heap = median(heap[0].clone()) / n;
    let base_store = store[0] as f64 / n;
    let base_time = median(time[0].clone());
    println!(
        "{name} sessions: {SESSIONS}, {exchanges} exchanges each, then warned, pushed and closed (median of {ROUNDS} alternating runs)"
    );
    println!(
        "| history | steps kept | heap per session | store per session | events and timers (ratio to none) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (i, &steps) in variants.iter().enumerate() {
        let h = median(heap[i].clone()) / n;
        let s = store[i] as f64 / n;
        let t = median(time[i].clone());
        println!(
            "| {steps} steps | {} | {:.0} B (+{:.0} B) | {:.0} B (+{:.0} B) | {:.3} s ({:.2}x) |",
            kept[i],
            h,
            h - base_heap,
            s,
            s - base_store,
            t,
            t / base_time
        );
    }
    println!();
}
