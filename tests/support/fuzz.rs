//! Fuzz target bodies: each takes arbitrary bytes, must never panic, hang or grow
//! without bound, and must reject bad input with an error that says where.
//!
//! Shared by the cargo-fuzz targets in `fuzz/` (libFuzzer, long campaigns) and by
//! `tests/fuzz_smoke.rs` (the checked-in corpus and a bounded run of mutations on every
//! `cargo test`).

use std::cell::RefCell;
use std::path::Path;

use autoclose::scenario;
use autoclose_config::HostConfig;
use autoclose_core::event::{
    ClosedEvent, GatewayEvent, HoldEvent, MessageEvent, OpenedEvent, PresenceEvent, Sender,
    SessionRef, Visibility,
};
use autoclose_core::{Core, EventError};
use autoclose_serve::api::parse_events;
use autoclose_webhook::outbound::AnswerOk;

use crate::{CONFIG, start_core_with};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The targets by name, as in `fuzz/fuzz_targets/` and `fuzz/corpus/`.
pub const TARGETS: [(&str, Target); 5] = [
    ("scenario", scenario_text),
    ("host_config", host_config),
    ("plugin_config", plugin_config),
    ("ingest", ingest),
    ("hooks", hooks),
];

/// The scenario parser: every refusal names its line, and the fast path for
/// well-formed lines answers every line as the careful path does.
pub fn scenario_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The fast path for well-formed lines must answer each line as the careful path
    // does: the same event, or the careful path's error.
    for raw in text.lines().filter(|l| !l.trim().is_empty()) {
        assert_eq!(
            scenario::parse_line(raw),
            scenario::careful_line(raw),
            "{raw:?}"
        );
    }
    if let Err(e) = scenario::parse(text) {
        let lines = text.lines().count().max(1);
        assert!(
            (1..=lines).contains(&e.line),
            "line {} outside 1..={lines}",
            e.line
        );
        assert!(!e.message.is_empty());
    }
}

/// The operator configuration: every refusal names the file.
pub fn host_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = HostConfig::parse_with_env(text, Path::new("fuzz.json"), |_| None) {
        let message = e.to_string();
        assert!(message.starts_with("fuzz.json"), "{message}");
    }
}

/// A tenant's auto-close configuration (layers, templates, locales, durations,
/// business hours included), as the component parses it, both as a tenant's document
/// and as the operator's defaults: every refusal says what is wrong, and a refusal in
/// the defaults is located in the defaults.
pub fn plugin_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let hooks = ["push".to_owned()];
    if let Err(e) = autoclose_plugin::config::parse(text, "{}", &hooks) {
        assert!(!e.reason.is_empty(), "empty reason at {:?}", e.path);
    }
    if let Err(e) = autoclose_plugin::config::parse("{}", text, &hooks) {
        assert!(!e.reason.is_empty(), "empty reason at {:?}", e.path);
        assert!(
            e.path.starts_with("defaults"),
            "an error in the defaults located elsewhere: {e}"
        );
    }
}

/// The ingest API's body: refused with 400 or 413 and a message, never a panic.
pub fn ingest(data: &[u8]) {
    if let Err((status, message, _)) = parse_events(data, 1000) {
        assert!(matches!(status.as_u16(), 400 | 413), "{status}");
        assert!(!message.is_empty());
    }
}

/// Two gateways fed the same inputs, one event per call and batched, the host time
/// and the inputs run so far.
type HookGateways = (Core, Core, u64, usize);

thread_local! {
    static GATEWAY: RefCell<Option<HookGateways>> = const { RefCell::new(None) };
}

/// Events built from the bytes, handed to the component through the host: any
/// tenant, session, sender, text, attribute and timing. Nothing may panic; the only
/// refusals are the documented ones; and a second gateway that gets the same events
/// through [`Core::handle_all`], batched, must act exactly the same. The gateways
/// are reused across inputs (as a server's is) and replaced every 1,000 inputs to
/// bound their memory.
pub fn hooks(data: &[u8]) {
    GATEWAY.with_borrow_mut(|slot| {
        if slot.as_ref().is_none_or(|(_, _, _, runs)| *runs >= 1000) {
            let start =
                || start_core_with(CONFIG, Box::new(AnswerOk)).unwrap_or_else(|e| panic!("{e}"));
            *slot = Some((start(), start(), 0, 0));
        }
        let Some((gateway, batched, now, runs)) = slot.as_mut() else {
            return;
        };
        *runs += 1;
        // Events since the last advance of time, for the batched gateway.
        let mut segment: Vec<(u64, GatewayEvent)> = Vec::new();
        let mut bytes = data.iter().copied();
        let mut next = || bytes.next().unwrap_or(0);
        let mut steps = 0;
        while steps < 64 {
            let op = next();
            if op == 0 && steps > 0 {
                break;
            }
            steps += 1;
            let tenant = ["acme", "globex", "nobody", ""][usize::from(next() % 4)].to_owned();
            let session = format!("s{}", next() % 8);
            let text_len = usize::from(next() % 32);
            let text: String = (0..text_len).map(|_| char::from(next())).collect();
            *now = now.saturating_add(u64::from(next()) * 997);
            let event = match op % 8 {
                0 => GatewayEvent::SessionOpened(OpenedEvent {
                    tenant,
                    session,
                    channel: ["web_chat", "http_api", "sms", &text][usize::from(next() % 4)]
                        .to_owned(),
                    attributes: [("locale".to_owned(), text.clone())].into_iter().collect(),
                    reopen: next() % 8 == 0,
                }),
                1..=3 => GatewayEvent::Message(MessageEvent {
                    tenant,
                    session,
                    sender: [Sender::Agent, Sender::EndUser, Sender::Bot, Sender::System]
                        [usize::from(next() % 4)],
                    id: Some(text.clone()),
                    text: Some(text.clone()),
                    channel: (next() % 2 == 0).then(|| "web_chat".to_owned()),
                    origin: (next() % 4 == 0).then(|| "autoclose".to_owned()),
                    attachment: next() % 2 == 0,
                    seq: None,
                    sender_name: (next() % 2 == 0).then(|| text.clone()),
                }),
                6 => GatewayEvent::Hold(HoldEvent {
                    tenant,
                    session,
                    duration: autoclose_duration::Duration::from_ms(u64::from(next()) * 5_000).ok(),
                }),
                7 if next() % 2 == 0 => GatewayEvent::Queued(SessionRef { tenant, session }),
                7 => GatewayEvent::Transferred(SessionRef { tenant, session }),
                4 => GatewayEvent::Presence(PresenceEvent {
                    tenant,
                    session,
                    state: if next() % 2 == 0 {
                        Visibility::Visible
                    } else {
                        Visibility::Hidden
                    },
                }),
                _ => GatewayEvent::SessionClosed(ClosedEvent { tenant, session }),
            };
            match gateway.handle(*now, &event) {
                Ok(()) | Err(EventError::NoChannel { .. }) => {}
                Err(other) => panic!("unexpected refusal: {other}"),
            }
            segment.push((*now, event));
            if next() % 4 == 0 {
                handle_batched(batched, &mut segment);
                *now = now.saturating_add(200_000);
                gateway.advance_to(*now);
                batched.advance_to(*now);
            }
        }
        handle_batched(batched, &mut segment);
        assert_eq!(
            batched.take_actions(),
            gateway.take_actions(),
            "batched and one by one act alike"
        );
    });
}

/// Hands `segment` to `gateway` batched, carrying on past the refusals that
/// [`Core::handle`] reports for single events, and empties it.
fn handle_batched(gateway: &mut Core, segment: &mut Vec<(u64, GatewayEvent)>) {
    let mut rest = &segment[..];
    while !rest.is_empty() {
        match gateway.handle_all(rest.iter().map(|(at, event)| (*at, event))) {
            Ok(()) => break,
            Err((index, EventError::NoChannel { .. })) => rest = &rest[index + 1..],
            Err((_, other)) => panic!("unexpected refusal: {other}"),
        }
    }
    segment.clear();
}
