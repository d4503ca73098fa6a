//! Several events in one call (`hooks.on-events`): the host batches consecutive events
//! of a tenant, and nothing a plugin or an operator can see changes because of it.
//! The transcripts of batched and one-by-one replays are compared byte for byte here on
//! hand-made edge cases, and on thousands of random conversations in
//! `tests/differential.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use autoclose_tests::{CONFIG, message, opened, scenario, start_core, transcript_text};

/// CONFIG plus a tenant `bad` running the misbehaving component in `mode`.
fn config_with_bad(mode: &str) -> String {
    let bad = format!(r#""bad": {{"component": "{{MISBEHAVING}}", "on_message": "{mode}"}},"#);
    CONFIG.replacen(r#""tenants": {"#, &format!(r#""tenants": {{{bad}"#), 1)
}

/// `tenant` opens `sessions` sessions at 0, then an agent writes in each, 1 ms apart
/// from 1 s on; the message in `attachment_in` (if any) carries an attachment.
fn burst(tenant: &str, sessions: usize, attachment_in: Option<usize>) -> String {
    let mut lines: Vec<(u64, String)> = (0..sessions)
        .map(|s| (0, opened(tenant, &format!("s{s}"), "web_chat")))
        .collect();
    for s in 0..sessions {
        let mut line = message(tenant, &format!("s{s}"), "agent");
        if attachment_in == Some(s) {
            line = line.replacen('{', r#"{"attachment":true,"#, 1);
        }
        lines.push((1_000 + s as u64, line));
    }
    scenario(&lines)
}

#[test]
fn consecutive_events_of_a_tenant_share_calls_and_act_as_one_by_one() {
    let text = burst("acme", 40, None);
    let lines = autoclose::scenario::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let events = lines.len();
    let calls = |batch: bool| {
        let mut gw = start_core(CONFIG).unwrap_or_else(|e| panic!("{e}"));
        let counted = Arc::new(AtomicUsize::new(0));
        let counter = counted.clone();
        gw.core.set_hook_observer(Box::new(move |_| {
            counter.fetch_add(1, Ordering::Relaxed);
        }));
        let mut out = Vec::new();
        let options = autoclose::replay::ReplayOptions { batch, tail_ms: 0 };
        autoclose::replay::replay(&mut gw.core, &gw.receiver, &lines, options, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        let stats = gw.core.tenant_stats("acme").unwrap_or_default();
        (counted.load(Ordering::Relaxed), stats.hooks_ok, out)
    };
    let (one_by_one_calls, one_by_one_ok, one_by_one_out) = calls(false);
    let (batched_calls, batched_ok, batched_out) = calls(true);
    assert_eq!(one_by_one_calls, events, "one call per event");
    assert_eq!(one_by_one_ok, events as u64);
    assert_eq!(batched_ok, events as u64, "every event is counted once");
    // 40 openings at one instant, then 40 messages within 40 ms: 32 per call at most.
    assert_eq!(
        batched_calls, 4,
        "two calls for the openings, two for the messages"
    );
    assert_eq!(batched_out, one_by_one_out);
}

#[test]
fn a_trap_in_a_batch_loses_only_the_event_that_fails_on_its_own() {
    let config = config_with_bad("trap-on-attachment");
    let text = burst("bad", 5, Some(2));
    let (batched, batched_stats) = transcript_text(&config, &text, true);
    let (one_by_one, one_by_one_stats) = transcript_text(&config, &text, false);
    assert_eq!(batched, one_by_one);
    let oks: Vec<&str> = batched
        .lines()
        .filter(|l| l.contains(r#""text":"ok""#))
        .collect();
    assert_eq!(
        oks.len(),
        4,
        "every message but the one with the attachment:\n{batched}"
    );
    assert!(
        !oks.iter().any(|l| l.contains(r#""session":"s2""#)),
        "{batched}"
    );
    // The failing event is counted as one failed hook, as when delivered alone; the
    // failed batch cost one instance more.
    let counts = |stats: &[autoclose_core::TenantStats]| {
        stats
            .iter()
            .map(|s| (s.hooks_ok, s.hooks_failed, s.events_dropped, s.restarts))
            .collect::<Vec<_>>()
    };
    let batched_counts = counts(&batched_stats);
    let one_by_one_counts = counts(&one_by_one_stats);
    for (b, o) in batched_counts.iter().zip(&one_by_one_counts) {
        assert_eq!((b.0, b.1, b.2), (o.0, o.1, o.2));
        assert!(b.3 <= o.3 + 1, "{batched_counts:?} {one_by_one_counts:?}");
    }
    assert!(
        batched_stats.iter().any(|s| s.hooks_failed == 1),
        "{batched_stats:?}"
    );
}

#[test]
fn a_plugin_acting_outside_its_batch_gets_one_event_per_call() {
    // `poke-first` posts into the session with handle 0 on every message: the first
    // session the host saw, which must therefore be bad's.
    let config = config_with_bad("poke-first");
    let text = burst("bad", 6, None);
    let (batched, _) = transcript_text(&config, &text, true);
    let (one_by_one, _) = transcript_text(&config, &text, false);
    assert_eq!(batched, one_by_one);
    assert_eq!(
        batched.lines().filter(|l| l.contains("poked by")).count(),
        6,
        "{batched}"
    );
}
