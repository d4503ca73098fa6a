//! A misbehaving component is contained: it runs out of time or memory or traps, its
//! instance is replaced, it is backed off, and other tenants never notice.

use std::time::Instant;

use autoclose_core::action::ActionKind;

use autoclose_tests::{
    CONFIG, message, opened, replay_on, scenario, start_core, summary, transcript,
};

/// CONFIG plus a tenant `bad` running the misbehaving component in `mode`.
fn config_with_bad(mode: &str, limits: &str) -> String {
    let bad = format!(r#""bad": {{"component": "{{MISBEHAVING}}", "on_message": "{mode}"}},"#);
    let config = CONFIG.replacen(r#""tenants": {"#, &format!(r#""tenants": {{{bad}"#), 1);
    if limits.is_empty() {
        config
    } else {
        config.replacen('{', &format!("{{\"limits\": {limits},"), 1)
    }
}

/// acme's conversation interleaved with 100 messages to `bad` within one second.
fn interleaved() -> (String, String) {
    let acme = [
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
    ];
    let mut both = vec![(0, opened("bad", "b1", "web_chat"))];
    both.push(acme[0].clone());
    for i in 0..100u64 {
        both.push((500 + i * 10, message("bad", "b1", "agent")));
        if i == 50 {
            both.push(acme[1].clone());
        }
    }
    let acme_alone = scenario(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
    ]);
    (scenario(&both), acme_alone)
}

fn acme_only(lines: Vec<String>) -> Vec<String> {
    lines.into_iter().filter(|l| l.contains(" acme/")).collect()
}

#[test]
fn a_looping_component_is_interrupted_and_others_carry_on() {
    let config = config_with_bad("loop", r#"{"hook_time_ms": 20}"#);
    let (both, acme_alone) = interleaved();
    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let out = summary(&replay_on(&mut gw, &both).unwrap_or_else(|e| panic!("{e}")));
    let elapsed = started.elapsed();
    let expected = summary(&transcript(CONFIG, &acme_alone));
    assert_eq!(
        acme_only(out),
        expected,
        "acme's transcript is the same as when running alone"
    );
    let stats = gw
        .tenant_stats("bad")
        .unwrap_or_else(|| panic!("bad is configured"));
    // First failure retried at once, the second backs off: the other 98 messages wait
    // in the tenant's queue and are each tried once when it is back (and fail too).
    assert_eq!(
        (
            stats.hooks_failed,
            stats.events_dropped,
            stats.events_deferred
        ),
        (100, 100, 98),
        "{stats:?}"
    );
    assert_eq!(
        stats.hooks_ok, 1,
        "only session_opened ran to completion: {stats:?}"
    );
    assert_eq!(gw.tenant_stats("acme").map(|s| s.hooks_failed), Some(0));
    // Not a timing assertion: a sanity bound so a missing interrupt fails instead of hanging CI.
    assert!(elapsed.as_secs() < 60, "took {elapsed:?}");
}

#[test]
fn a_trapping_component_is_replaced_and_backed_off() {
    let config = config_with_bad("trap", "");
    let (both, acme_alone) = interleaved();
    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    let out = summary(&replay_on(&mut gw, &both).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(acme_only(out), summary(&transcript(CONFIG, &acme_alone)));
    let stats = gw
        .tenant_stats("bad")
        .unwrap_or_else(|| panic!("bad is configured"));
    assert_eq!(
        (
            stats.hooks_failed,
            stats.events_dropped,
            stats.events_deferred,
            stats.restarts
        ),
        (100, 100, 98, 99),
        "every message is tried once, on a fresh instance each time: {stats:?}"
    );
}

#[test]
fn a_backed_off_tenant_comes_back_after_its_wait() {
    // Trapping messages at t=0 and t=1 (two failures: 1s back-off), then silence;
    // the session_opened hooks after the wait run on a fresh instance.
    let config = config_with_bad("trap", "");
    let lines = scenario(&[
        (0, opened("bad", "b1", "web_chat")),
        (0, message("bad", "b1", "agent")),
        (1, message("bad", "b1", "agent")),
        (500, opened("bad", "b2", "web_chat")),
        (1_001, opened("bad", "b3", "web_chat")),
    ]);
    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    replay_on(&mut gw, &lines).unwrap_or_else(|e| panic!("{e}"));
    let stats = gw
        .tenant_stats("bad")
        .unwrap_or_else(|| panic!("bad is configured"));
    assert_eq!(stats.hooks_failed, 2, "{stats:?}");
    assert_eq!(
        stats.events_dropped, 2,
        "the two trapping messages: {stats:?}"
    );
    assert_eq!(
        stats.events_deferred, 1,
        "b2 opened during the back-off: {stats:?}"
    );
    assert_eq!(stats.restarts, 2, "{stats:?}");
    assert_eq!(
        stats.hooks_ok, 3,
        "b1, then b2 (held) and b3 after the wait: {stats:?}"
    );
}

#[test]
fn a_component_growing_past_the_memory_cap_is_stopped() {
    let config = config_with_bad("grow", r#"{"memory_mib": 8}"#);
    let (both, acme_alone) = interleaved();
    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    let out = summary(&replay_on(&mut gw, &both).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(acme_only(out), summary(&transcript(CONFIG, &acme_alone)));
    let stats = gw
        .tenant_stats("bad")
        .unwrap_or_else(|| panic!("bad is configured"));
    assert_eq!(
        (stats.hooks_failed, stats.events_dropped),
        (100, 100),
        "{stats:?}"
    );
}

#[test]
fn a_well_behaved_test_component_posts_and_shows_the_harness_works() {
    let config = config_with_bad("post", "");
    let lines = scenario(&[
        (0, opened("bad", "b1", "web_chat")),
        (5, message("bad", "b1", "agent")),
    ]);
    let out = summary(&transcript(&config, &lines));
    assert_eq!(out, vec!["5 post_message bad/b1 test"]);
}

#[test]
fn a_component_that_traps_in_configure_is_refused_at_start() {
    let config = CONFIG.replacen(
        r#""tenants": {"#,
        r#""tenants": {"bad": {"component": "{MISBEHAVING}", "on_configure": "trap"},"#,
        1,
    );
    let err = start_core(&config)
        .err()
        .unwrap_or_else(|| panic!("start must fail"));
    assert!(err.starts_with("tenants.bad: component "), "{err}");
    assert!(
        err.contains("configured to trap in configure"),
        "the guest's panic message is reported: {err}"
    );
}

#[test]
fn a_file_that_is_not_a_component_is_refused_with_its_name() {
    let dir = std::env::temp_dir().join(format!("autoclose-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join("not-a-component.wasm");
    std::fs::write(&path, b"\0asm garbage").unwrap_or_else(|e| panic!("{e}"));
    let config = format!(
        r#"{{"tenants": {{"x": {{"component": "{}"}}}}}}"#,
        path.display()
    );
    let err = start_core(&config)
        .err()
        .unwrap_or_else(|| panic!("start must fail"));
    assert!(
        err.contains("not-a-component.wasm: not a usable chat-gateway:plugin component"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_component_re_arming_a_timer_due_now_cannot_spin_the_host() {
    let config = config_with_bad("rearm", "");
    let lines = scenario(&[
        (0, opened("bad", "b1", "web_chat")),
        (0, message("bad", "b1", "agent")),
    ]);
    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    autoclose_tests::handle_events(&mut gw, &lines);
    gw.advance_to(60_000);
    let ticks: Vec<u64> = gw.take_actions().iter().map(|a| a.at_ms).collect();
    // One fire per second of host time: 1s, 2s, ... 60s.
    assert_eq!(ticks, (1..=60).map(|s| s * 1_000).collect::<Vec<_>>());
}

#[test]
fn a_component_that_sleeps_is_stopped_at_once() {
    let config = config_with_bad("sleep", "");
    let (both, acme_alone) = interleaved();
    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let out = summary(&replay_on(&mut gw, &both).unwrap_or_else(|e| panic!("{e}")));
    assert_eq!(acme_only(out), summary(&transcript(CONFIG, &acme_alone)));
    let stats = gw
        .tenant_stats("bad")
        .unwrap_or_else(|| panic!("bad is configured"));
    assert_eq!(
        (stats.hooks_failed, stats.events_dropped),
        (100, 100),
        "{stats:?}"
    );
    // Each sleep asks for an hour; the replay must not wait for any of them.
    assert!(
        started.elapsed().as_secs() < 60,
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_flood_of_webhook_requests_is_capped_per_tenant() {
    let config = CONFIG.replacen(
        r#""tenants": {"#,
        r#""tenants": {"bad": {"component": "{MISBEHAVING}", "on_message": "flood", "webhooks": ["mobile-push"]},"#,
        1,
    )
    // Room for 100 sends in one hook, so the in-flight cap is what binds.
    .replacen(
        '{',
        r#"{"limits": {"actions_per_hook": 200, "http_in_flight_per_tenant": 64},"#,
        1,
    );
    // Attempts stay pending (nothing answers), so requests pile up in flight.
    let mut gw = autoclose_tests::start_core_with(
        &config,
        Box::new(autoclose_webhook::outbound::Capture::default()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let lines = scenario(&[
        (0, opened("bad", "b1", "web_chat")),
        (0, opened("acme", "s1", "web_chat")),
        (5, message("bad", "b1", "agent")),
        (6, message("acme", "s1", "agent")),
    ]);
    autoclose_tests::handle_events(&mut gw, &lines);
    // acme's warning (3 minutes after its agent's message) and its push still go out.
    gw.advance_to(6 + 180_000);
    let mut posts = Vec::new();
    let mut acme_pushes = 0;
    for action in gw.take_actions() {
        match action.kind {
            ActionKind::PostMessage { tenant, text, .. } => posts.push(format!("{tenant}: {text}")),
            ActionKind::Webhook { tenant, .. } if tenant == "acme" => acme_pushes += 1,
            _ => {}
        }
    }
    assert_eq!(
        posts,
        vec![
            "bad: sent 64".to_owned(),
            "acme: Are you still there? This chat closes in 2 minutes.".to_owned()
        ],
        "limits.http_in_flight_per_tenant (64) caps the flood, and only bad's"
    );
    assert_eq!(acme_pushes, 1, "acme's push is not refused");
    assert_eq!(gw.deliveries_pending(), 65);
}

#[test]
fn under_fuel_a_looping_component_runs_out_and_is_replaced() {
    use std::sync::Arc;

    use autoclose_config::HostConfig;
    use autoclose_core::Core;
    use autoclose_core::Runtime;
    use autoclose_runtime::{Interrupt, RuntimeOptions};
    use autoclose_webhook::outbound::AnswerOk;

    let text = config_with_bad("loop", r#"{"hook_time_ms": 20}"#)
        .replace("{MISBEHAVING}", autoclose_tests::MISBEHAVING_PLUGIN);
    let config = HostConfig::parse(&text, std::path::Path::new("fuel.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let runtime = Arc::new(
        Runtime::with_options(
            config.limits,
            RuntimeOptions {
                interrupt: Interrupt::Fuel,
                pool: None,
            },
        )
        .unwrap_or_else(|e| panic!("{e}")),
    );
    let plugin = runtime
        .load_bytes("auto-close", autoclose::DEFAULT_PLUGIN)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut gw =
        Core::new(runtime, &config, plugin, Box::new(AnswerOk)).unwrap_or_else(|e| panic!("{e}"));
    autoclose_tests::handle_events(
        &mut gw,
        &scenario(&[
            (0, opened("bad", "b1", "web_chat")),
            (10, message("bad", "b1", "agent")),
        ]),
    );
    let before = gw.tenant_stats("bad").unwrap_or_else(|| panic!("bad"));
    assert_eq!((before.hooks_failed, before.restarts), (1, 0), "{before:?}");
    // The tenant still works afterwards: a fresh instance takes the next event.
    autoclose_tests::handle_events(
        &mut gw,
        &scenario(&[(
            20,
            r#"{"type":"presence","tenant":"bad","session":"b1","state":"hidden"}"#.to_owned(),
        )]),
    );
    let after = gw.tenant_stats("bad").unwrap_or_else(|| panic!("bad"));
    assert_eq!(
        (after.hooks_ok, after.restarts),
        (before.hooks_ok + 1, 1),
        "{after:?}"
    );
}

#[test]
fn huge_posts_and_a_million_timers_are_bounded_by_the_limits() {
    for (mode, expected) in [
        ("huge", "huge: Err(ActionError::TooLong(16384))"),
        ("timers", "timers set: 16"),
    ] {
        let config = config_with_bad(mode, "");
        let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
        // acme's chat goes on around the hostile hook, and must not notice it.
        let acme = [
            (0, opened("acme", "s1", "web_chat")),
            (5, message("acme", "s1", "agent")),
            (15, message("acme", "s1", "agent")),
        ];
        let mut both = vec![(0, opened("bad", "b1", "web_chat"))];
        both.extend(acme[..2].iter().cloned());
        both.push((10, message("bad", "b1", "agent")));
        both.push(acme[2].clone());
        let out = replay_on(&mut gw, &scenario(&both)).unwrap_or_else(|e| panic!("{e}"));
        let acme_alone = summary(&transcript(CONFIG, &scenario(&acme)));
        assert!(!acme_alone.is_empty(), "acme is warned and closed");
        assert_eq!(
            acme_only(summary(&out)),
            acme_alone,
            "{mode}: acme unaffected"
        );
        let texts: Vec<&str> = out
            .iter()
            .filter(|a| a["action"] == "post_message" && a["tenant"] == "bad")
            .filter_map(|a| a["text"].as_str())
            .collect();
        let stats = gw.tenant_stats("bad").unwrap_or_else(|| panic!("bad"));
        if mode == "timers" {
            // Beyond `limits.timers_per_session` every set is refused; a build too slow
            // to make a million refused calls within `limits.hook_time_ms` is
            // interrupted instead, and then none of the hook's timers count.
            assert!(gw.pending_timers() <= 16, "{}", gw.pending_timers());
            let finished = texts == vec![expected] && stats.hooks_failed == 0;
            let interrupted =
                texts.is_empty() && stats.hooks_failed == 1 && gw.pending_timers() == 0;
            assert!(finished || interrupted, "{texts:?} {stats:?}");
        } else {
            assert_eq!(texts, vec![expected], "{mode}");
            assert_eq!(stats.hooks_failed, 0, "{mode}: refused, not trapped");
        }
    }
}

#[test]
fn a_backed_off_tenant_holds_at_most_1024_events_and_drops_the_oldest() {
    // Two trapping messages start a 1s back-off; 1,100 presence events arrive within
    // it and are held, the oldest beyond 1,024 dropped; after the wait the rest run.
    let config = config_with_bad("trap", "");
    let mut lines = vec![
        (0, opened("bad", "b1", "web_chat")),
        (0, message("bad", "b1", "agent")),
        (1, message("bad", "b1", "agent")),
    ];
    for i in 0..1_100u64 {
        lines.push((
            2 + i / 2,
            r#"{"type":"presence","tenant":"bad","session":"b1","state":"hidden"}"#.to_owned(),
        ));
    }
    lines.push((5_000, opened("bad", "b2", "web_chat")));
    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    replay_on(&mut gw, &scenario(&lines)).unwrap_or_else(|e| panic!("{e}"));
    let stats = gw.tenant_stats("bad").unwrap_or_else(|| panic!("bad"));
    assert_eq!(stats.events_deferred, 1_100, "{stats:?}");
    assert_eq!(
        stats.events_dropped,
        2 + (1_100 - 1_024),
        "the two trapping messages and the oldest held beyond 1,024: {stats:?}"
    );
    assert_eq!(stats.hooks_ok, 1 + 1_024 + 1, "{stats:?}");
}

#[test]
fn a_component_answering_every_outcome_with_a_request_is_cut_after_256_follow_ups() {
    let config = config_with_bad("resend", "").replacen(
        r#""on_message": "resend"}"#,
        r#""on_message": "resend", "webhooks": ["mobile-push"]}"#,
        1,
    );
    let mut gw = start_core(&config).unwrap_or_else(|e| panic!("{e}"));
    let out = replay_on(
        &mut gw,
        &scenario(&[
            (0, opened("bad", "b1", "web_chat")),
            (10, message("bad", "b1", "agent")),
        ]),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let stats = gw.tenant_stats("bad").unwrap_or_else(|| panic!("bad"));
    // Replay answers every attempt at once, so the loop runs inside one event's
    // follow-ups: 256 are delivered, the next one counts as a failure.
    assert_eq!(stats.hooks_failed, 1, "{stats:?}");
    assert_eq!(stats.deliveries_ok, 257, "{stats:?}");
    let sends = out.iter().filter(|a| a["action"] == "webhook").count();
    assert_eq!(sends, 257);
}

#[test]
fn a_tenant_that_cannot_start_is_held_failed_while_the_others_run() {
    use autoclose_config::HostConfig;
    use autoclose_core::{Core, start};
    use autoclose_serve::engine::event_type;
    use autoclose_webhook::outbound::ScriptedReceiver;

    let text = CONFIG
        .replacen(
            r#""tenants": {"#,
            r#""tenants": {"bad": {"component": "{MISBEHAVING}", "on_configure": "trap"}, "gone": {"component": "no/such/component.wasm"},"#,
            1,
        )
        .replace("{MISBEHAVING}", autoclose_tests::MISBEHAVING_PLUGIN);
    let config = HostConfig::parse(&text, std::path::Path::new("held.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let runtime = start::runtime_for(&config).unwrap_or_else(|e| panic!("{e}"));
    let default = start::default_component(&runtime, None, autoclose::DEFAULT_PLUGIN)
        .unwrap_or_else(|e| panic!("{e}"));
    let receiver = ScriptedReceiver::default();
    let (core, failures) =
        Core::holding_failures(runtime, &config, default, Box::new(receiver.clone()));
    let failed: Vec<String> = failures.iter().map(|f| f.to_string()).collect();
    assert_eq!(failed.len(), 2, "{failed:?}");
    assert!(
        failed[0].starts_with("tenants.bad: component "),
        "{failed:?}"
    );
    assert!(
        failed[1].starts_with("tenants.gone.component: "),
        "{failed:?}"
    );
    let failing: Vec<String> = core
        .failing_tenants()
        .into_iter()
        .map(|f| f.tenant)
        .collect();
    assert_eq!(failing, vec!["bad", "gone"]);

    let lines = scenario(&[
        (0, opened("bad", "b1", "web_chat")),
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("bad", "b1", "agent")),
        (1_000, message("acme", "s1", "agent")),
    ]);
    let mut tested = autoclose_tests::TestCore { core, receiver };
    let transcript = replay_on(&mut tested, &lines).unwrap_or_else(|e| panic!("{e}"));
    let acme: Vec<String> = summary(&transcript)
        .into_iter()
        .filter(|l| l.contains("acme/"))
        .collect();
    assert_eq!(
        acme,
        vec![
            "181000 post_message acme/s1 warning",
            "181000 webhook acme/s1 chat.auto_close.warning",
            "301000 post_message acme/s1 close",
            "301000 close_session acme/s1 inactivity",
        ]
    );
    assert!(
        transcript.iter().all(|a| a["tenant"] != "bad"),
        "nothing of the failed tenant runs"
    );
    // Its events are held, in order, for when it starts (durably, where the core's
    // changes are stored); it is tried again on the back-off, and fails again.
    let stats = tested.core.tenant_stats("bad").unwrap_or_default();
    assert_eq!(stats.events_dropped, 0, "{stats:?}");
    assert!(
        stats.hooks_failed > 2,
        "tried again on the back-off: {stats:?}"
    );
    let snapshot = tested.core.snapshot();
    let held: Vec<&str> = snapshot
        .held
        .iter()
        .filter(|h| h.tenant == "bad")
        .flat_map(|h| h.events.iter().map(|e| event_type(&e.event)))
        .collect();
    assert_eq!(held, vec!["session_opened", "message"]);
}

/// `Core::replace_tenant`, what an admin API change does on every shard: the tenant
/// runs its new settings with its sessions kept; a held-failed tenant fixed this way
/// runs its held events at once, in order; a refusal changes nothing; and no other
/// tenant's instance is touched.
#[test]
fn a_tenant_given_new_settings_alone_keeps_its_sessions_and_touches_no_other() {
    use autoclose::scenario::{Item, parse};
    use autoclose_config::HostConfig;
    use autoclose_core::{Core, CoreError, start};
    use autoclose_webhook::outbound::ScriptedReceiver;

    let text = CONFIG
        .replacen(
            r#""tenants": {"#,
            r#""tenants": {"bad": {"component": "{MISBEHAVING}", "on_configure": "trap"},"#,
            1,
        )
        .replace("{MISBEHAVING}", autoclose_tests::MISBEHAVING_PLUGIN);
    let config = HostConfig::parse(&text, std::path::Path::new("replace.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let runtime = start::runtime_for(&config).unwrap_or_else(|e| panic!("{e}"));
    let default = start::default_component(&runtime, None, autoclose::DEFAULT_PLUGIN)
        .unwrap_or_else(|e| panic!("{e}"));
    let (mut core, failures) = Core::holding_failures(
        runtime,
        &config,
        default.clone(),
        Box::new(ScriptedReceiver::default()),
    );
    assert_eq!(failures.len(), 1, "bad is held failed");
    let events = |lines: &[(u64, String)]| -> Vec<(u64, autoclose_core::event::GatewayEvent)> {
        parse(&scenario(lines))
            .unwrap_or_else(|e| panic!("{e}"))
            .into_iter()
            .filter_map(|l| match l.item {
                Item::Event(event) => Some((l.at_ms, event)),
                _ => None,
            })
            .collect()
    };
    for (at, event) in events(&[
        (0, opened("acme", "s1", "web_chat")),
        (0, opened("globex", "g1", "web_chat")),
        (0, opened("bad", "b1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (1_000, message("globex", "g1", "agent")),
        (1_000, message("bad", "b1", "agent")),
    ]) {
        core.handle(at, &event).unwrap_or_else(|e| panic!("{e}"));
    }
    let globex_before = core.tenant_stats("globex").unwrap_or_default();
    let document = |text: &str| -> serde_json::Map<String, serde_json::Value> {
        serde_json::from_str(text).unwrap_or_default()
    };

    // A refusal names the path and leaves acme as it was.
    let refused = config
        .tenant(
            "acme",
            document(r#"{"auto_close": {"close": {"after": "soon", "message": "x"}}}"#),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    match core.replace_tenant(&refused, default.clone()) {
        Err(CoreError::Config { path, .. }) => assert!(path.ends_with("close.after"), "{path}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    let acme = config
        .tenant(
            "acme",
            document(r#"{"auto_close": {"close": {"after": "2m", "message": "Replaced."}}}"#),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    core.replace_tenant(&acme, default.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    // bad, fixed with the built-in component: its held events run now (at 1,000).
    let bad = config
        .tenant(
            "bad",
            document(r#"{"auto_close": {"close": {"after": "1m", "message": "Bad fixed."}}}"#),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    core.replace_tenant(&bad, default.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        core.failing_tenants().is_empty(),
        "{:?}",
        core.failing_tenants()
    );
    for (at, event) in events(&[(
        2_000,
        // The scenario checker does not know s1 here: the message names its channel.
        message("acme", "s1", "agent").replacen('{', r#"{"channel": "web_chat", "#, 1),
    )]) {
        core.handle(at, &event).unwrap_or_else(|e| panic!("{e}"));
    }
    core.advance_to(400_000);
    let mut seen: Vec<String> = core
        .take_actions()
        .into_iter()
        .filter_map(|a| match a.kind {
            ActionKind::PostMessage {
                tenant,
                session,
                kind,
                text,
            } => Some(format!("{} {tenant}/{session} {kind} {text}", a.at_ms)),
            _ => None,
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            "122000 acme/s1 close Replaced.".to_owned(),
            "61000 bad/b1 close Bad fixed.".to_owned(),
            "61000 globex/g1 warning Closing in 30 seconds (1 min).".to_owned(),
            "91000 globex/g1 close Closed for inactivity.".to_owned(),
        ]
    );
    // globex's instance was never replaced.
    let globex_after = core.tenant_stats("globex").unwrap_or_default();
    assert_eq!(globex_after.restarts, globex_before.restarts);
    assert_eq!(globex_after.restarts, 0);
}
