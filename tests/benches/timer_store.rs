//! The host's timer store with 1,000,000 pending timers: set, replace, cancel and fire,
//! against a baseline measured in the same run (std's `BinaryHeap`, which can only push
//! and pop: the least any timer store does), and the heap bytes held per pending timer.
//!
//! `cargo bench -p autoclose-tests --bench timer_store` prints the table.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::hint::black_box;
use std::time::Instant;

use autoclose_core::timers::TimerStore;
use autoclose_runtime::{SessionId, TenantId, TimerKey};
use autoclose_tests::bench::{Counting, live_bytes};

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const N: u64 = 1_000_000;
/// The auto-close plugin's payload size.
const PAYLOAD: [u8; 10] = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0];

fn key(i: u64) -> TimerKey {
    TimerKey {
        session: SessionId(i),
        key: 0,
    }
}

/// A spread of due times, not in order (as sessions start at random times).
fn due(i: u64) -> u64 {
    (i.wrapping_mul(2_654_435_761) % 3_600_000) + 1
}

fn per_op(started: Instant, ops: u64) -> f64 {
    started.elapsed().as_nanos() as f64 / ops as f64
}

fn main() {
    // Baseline: push N, pop N on a binary heap of (due, seq, key).
    let before = live_bytes();
    let mut heap = BinaryHeap::with_capacity(N as usize);
    let started = Instant::now();
    for i in 0..N {
        heap.push(Reverse((due(i), i, i)));
    }
    let heap_push = per_op(started, N);
    let heap_bytes = (live_bytes() - before) as f64 / N as f64;
    let started = Instant::now();
    while let Some(item) = heap.pop() {
        black_box(item);
    }
    let heap_pop = per_op(started, N);

    let before = live_bytes();
    let mut timers = TimerStore::default();
    let started = Instant::now();
    for i in 0..N {
        timers.set(key(i), TenantId(0), due(i), &PAYLOAD);
    }
    let set = per_op(started, N);
    let bytes = (live_bytes() - before) as f64 / N as f64;

    let started = Instant::now();
    for i in 0..N {
        timers.set(key(i), TenantId(0), due(i) + 60_000, &PAYLOAD);
    }
    let replace = per_op(started, N);

    let started = Instant::now();
    for i in (0..N).step_by(2) {
        black_box(timers.cancel(key(i)));
    }
    let cancel = per_op(started, N / 2);

    let started = Instant::now();
    let mut fired = 0u64;
    while let Some(timer) = timers.pop_due(u64::MAX) {
        black_box(&timer);
        fired += 1;
    }
    let fire = per_op(started, fired);
    assert_eq!(fired, N / 2);

    println!("timer store with {N} pending timers (10-byte payloads)");
    println!("{:<52} {:>10} {:>8}", "operation", "ns/op", "ratio");
    println!(
        "{:<52} {:>10.0} {:>8.2}",
        "baseline: BinaryHeap push", heap_push, 1.0
    );
    println!(
        "{:<52} {:>10.0} {:>8.2}",
        "baseline: BinaryHeap pop", heap_pop, 1.0
    );
    println!(
        "{:<52} {:>10.0} {:>8.2}",
        "TimerStore::set (new key), vs push",
        set,
        set / heap_push
    );
    println!(
        "{:<52} {:>10.0} {:>8.2}",
        "TimerStore::set (replace), vs push",
        replace,
        replace / heap_push
    );
    println!(
        "{:<52} {:>10.0} {:>8.2}",
        "TimerStore::cancel, vs pop",
        cancel,
        cancel / heap_pop
    );
    println!(
        "{:<52} {:>10.0} {:>8.2}",
        "TimerStore::pop_due (fire), vs pop",
        fire,
        fire / heap_pop
    );
    println!(
        "{:<52} {:>10.0} {:>8.2}",
        "bytes per pending timer, vs the heap's",
        bytes,
        bytes / heap_bytes
    );
}
