//! Shared pieces of the benchmarks that drive a gateway with agent messages.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use autoclose_core::Core;
use autoclose_core::event::{GatewayEvent, MessageEvent, OpenedEvent, Sender};

/// Counts the bytes currently allocated, for benches that report memory: such a
/// bench declares `#[global_allocator] static ALLOCATOR: Counting = Counting;` and
/// reads [`live_bytes`] before and after.
pub struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Bytes allocated through [`Counting`] and not yet freed.
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

// SAFETY: forwards to the system allocator unchanged and only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` was allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// The median of `samples`.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Opens `sessions` sessions of acme on web_chat at time 0, and returns an agent
/// message for each.
pub fn open_sessions(gw: &mut Core, sessions: u64) -> Vec<GatewayEvent> {
    for s in 0..sessions {
        let opened = GatewayEvent::SessionOpened(OpenedEvent {
            tenant: "acme".into(),
            session: format!("s{s}"),
            channel: "web_chat".into(),
            attributes: Default::default(),
            reopen: false,
        });
        gw.handle(0, &opened).unwrap_or_else(|e| panic!("{e}"));
    }
    (0..sessions)
        .map(|s| {
            GatewayEvent::Message(MessageEvent {
                tenant: "acme".into(),
                session: format!("s{s}"),
                sender: Sender::Agent,
                id: None,
                text: None,
                channel: None,
                origin: None,
                attachment: false,
                seq: None,
                sender_name: None,
            })
        })
        .collect()
}

/// ns per message, median of `runs` runs of `messages` messages cycling through
/// `events`, 1 ms apart (every cycle restarts; nothing fires). Asserts that nothing
/// fired.
pub fn ns_per_message(gw: &mut Core, events: &[GatewayEvent], runs: usize, messages: u64) -> f64 {
    let mut at = 1;
    median_run(gw, runs, messages, |gw| {
        for i in 0..messages {
            gw.handle(at, &events[(i % events.len() as u64) as usize])
                .unwrap_or_else(|e| panic!("{e}"));
            at += 1;
        }
    })
}

/// As [`ns_per_message`], but handing the gateway `per_call` consecutive messages at a
/// time through [`Core::handle_all`], which delivers them in one call (each is for
/// another session, 1 ms apart, so they may share one).
pub fn ns_per_message_batched(
    gw: &mut Core,
    events: &[GatewayEvent],
    runs: usize,
    messages: u64,
    per_call: usize,
) -> f64 {
    let mut at = 1;
    let mut next = 0usize;
    median_run(gw, runs, messages, |gw| {
        let mut handled = 0u64;
        while handled < messages {
            let count = per_call.min((messages - handled) as usize);
            let chunk = (0..count).map(|i| {
                let event = &events[(next + i) % events.len()];
                (at + i as u64, event)
            });
            gw.handle_all(chunk)
                .unwrap_or_else(|(i, e)| panic!("event {i}: {e}"));
            next = (next + count) % events.len();
            at += count as u64;
            handled += count as u64;
        }
    })
}

/// ns per message of `run` (which handles `messages` messages), median of `runs`
/// runs; asserts that no action was taken (no warning fired).
fn median_run(gw: &mut Core, runs: usize, messages: u64, mut run: impl FnMut(&mut Core)) -> f64 {
    let cost = median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                run(gw);
                started.elapsed().as_nanos() as f64 / messages as f64
            })
            .collect(),
    );
    assert!(
        gw.take_actions().is_empty(),
        "no warning may fire during the run"
    );
    cost
}
