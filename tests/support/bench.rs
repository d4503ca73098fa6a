//! Shared pieces of the benchmarks that drive a gateway with agent messages.

use std::time::Instant;

use autoclose_host::event::{GatewayEvent, MessageEvent, OpenedEvent, Sender};
use autoclose_host::gateway::Gateway;

/// The median of `samples`.
pub fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Opens `sessions` sessions of acme on web_chat at time 0, and returns an agent
/// message for each.
pub fn open_sessions(gw: &mut Gateway, sessions: u64) -> Vec<GatewayEvent> {
    for s in 0..sessions {
        let opened = GatewayEvent::SessionOpened(OpenedEvent {
            tenant: "acme".into(),
            session: format!("s{s}"),
            channel: "web_chat".into(),
            attributes: Default::default(),
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
                sender_name: None,
            })
        })
        .collect()
}

/// ns per message, median of `runs` runs of `messages` messages cycling through
/// `events`, 1 ms apart (every cycle restarts; nothing fires). Asserts that nothing
/// fired.
pub fn ns_per_message(
    gw: &mut Gateway,
    events: &[GatewayEvent],
    runs: usize,
    messages: u64,
) -> f64 {
    let mut at = 1;
    let cost = median(
        (0..runs)
            .map(|_| {
                let started = Instant::now();
                for i in 0..messages {
                    gw.handle(at, &events[(i % events.len() as u64) as usize])
                        .unwrap_or_else(|e| panic!("{e}"));
                    at += 1;
                }
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
