//! Carrying state across a restart: a gateway that is stopped at any point and
//! restored from what its change journal wrote must go on exactly as one that never
//! stopped. This is what `autoclose serve` relies on after a crash; here it is checked
//! on virtual time, with webhook retries pending at the cut points.

use std::collections::BTreeMap;

use autoclose::generate::{self, Spec};
use autoclose::scenario::{self, Item, ScenarioLine};
use autoclose_core::Core;
use autoclose_core::records::{Changes, DeliveryRecord, HeldRecord, SessionRecord, Snapshot};
use autoclose_runtime::RequestId;
use autoclose_tests::{CONFIG, start_core_with};
use autoclose_webhook::outbound::ScriptedReceiver;
use serde_json::Value;

/// A store kept in maps: what a real backend would hold after each commit.
#[derive(Default)]
struct MapStore {
    sessions: BTreeMap<(String, String), SessionRecord>,
    deliveries: BTreeMap<RequestId, DeliveryRecord>,
    held: BTreeMap<String, HeldRecord>,
    next_request: RequestId,
    now: u64,
}

impl MapStore {
    fn commit(&mut self, changes: Changes) {
        for record in changes.sessions {
            self.sessions
                .insert((record.tenant.clone(), record.session.clone()), record);
        }
        for key in changes.forgotten {
            self.sessions.remove(&key);
        }
        for record in changes.deliveries {
            self.deliveries.insert(record.request, record);
        }
        for request in changes.ended {
            self.deliveries.remove(&request);
        }
        for record in changes.held {
            if record.events.is_empty() {
                self.held.remove(&record.tenant);
            } else {
                self.held.insert(record.tenant.clone(), record);
            }
        }
        self.next_request = changes.next_request;
        self.now = changes.now;
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            sessions: self.sessions.values().cloned().collect(),
            deliveries: self.deliveries.values().cloned().collect(),
            held: self.held.values().cloned().collect(),
            next_request: self.next_request,
            now: self.now,
        }
    }
}

/// The generated scenario with a failing push service now and then, so that retries
/// are pending at many cut points.
fn scenario_lines() -> Vec<ScenarioLine> {
    let mut text = Vec::new();
    generate::generate(
        &Spec {
            sessions: 400,
            tenants: vec!["acme".into(), "globex".into()],
            channels: vec!["web_chat".into(), "http_api".into()],
            seed: 7,
            ..Spec::new(400, Vec::new(), Vec::new())
        },
        &mut text,
    )
    .expect("generate");
    let text = String::from_utf8(text).expect("utf-8");
    let mut with_failures = String::new();
    for (index, line) in text.lines().enumerate() {
        if index % 50 == 10 {
            let at: Value = serde_json::from_str(line).expect("json");
            with_failures.push_str(&format!(
                "{{\"at_ms\":{},\"type\":\"webhook_response\",\"webhook\":\"mobile-push\",\"status\":503,\"repeat\":2}}\n",
                at["at_ms"]
            ));
        }
        with_failures.push_str(line);
        with_failures.push('\n');
    }
    scenario::parse(&with_failures).expect("valid scenario")
}

fn new_gateway(receiver: &ScriptedReceiver) -> Core {
    start_core_with(CONFIG, Box::new(receiver.clone())).expect("gateway")
}

/// Runs the scenario; before the lines whose index is in `cuts`, the gateway is
/// dropped and a new one is restored from the map store. Returns the transcript.
fn run(lines: &[ScenarioLine], cuts: &[usize]) -> (Vec<String>, usize) {
    let receiver = ScriptedReceiver::default();
    let mut gateway = new_gateway(&receiver);
    gateway.track_changes();
    let mut store = MapStore::default();
    let mut out = Vec::new();
    let mut restored_timers = 0;
    let mut collect = |gateway: &mut Core, store: &mut MapStore| {
        for action in gateway.take_actions() {
            out.push(serde_json::to_string(&action).expect("json"));
        }
        store.commit(gateway.take_changes());
    };
    for (index, line) in lines.iter().enumerate() {
        if cuts.contains(&index) {
            let snapshot = store.snapshot();
            gateway = new_gateway(&receiver);
            gateway.track_changes();
            let restored = gateway.restore(snapshot, 0);
            assert!(restored.dropped.is_empty(), "{:?}", restored.dropped);
            restored_timers += restored.timers;
            store.commit(gateway.take_changes());
        }
        match &line.item {
            Item::Event(event) => gateway.handle(line.at_ms, event).expect("event"),
            Item::WebhookResponse {
                webhook,
                answer,
                repeat,
            } => {
                gateway.advance_to(line.at_ms.saturating_sub(1));
                receiver.push(webhook, answer.clone(), *repeat);
            }
        }
        collect(&mut gateway, &mut store);
    }
    while let Some(due) = gateway.next_due() {
        gateway.advance_to(due);
        collect(&mut gateway, &mut store);
    }
    (out, restored_timers)
}

#[test]
fn a_gateway_restored_from_its_journal_goes_on_as_if_it_never_stopped() {
    let lines = scenario_lines();
    let (expected, _) = run(&lines, &[]);
    assert!(
        expected.iter().any(|l| l.contains("\"retry at")),
        "the scenario must leave retries pending"
    );
    assert!(expected.iter().any(|l| l.contains("close_session")));
    let cuts: Vec<usize> = (1..lines.len()).step_by(97).collect();
    let (restored, timers) = run(&lines, &cuts);
    assert!(
        timers > 100,
        "cuts must land with timers pending ({timers})"
    );
    assert_eq!(restored.len(), expected.len());
    for (index, (a, b)) in expected.iter().zip(&restored).enumerate() {
        assert_eq!(a, b, "transcript line {index} differs");
    }
}

#[test]
fn a_full_snapshot_restores_the_same_state_as_the_journal() {
    let lines = scenario_lines();
    let receiver = ScriptedReceiver::default();
    let mut gateway = new_gateway(&receiver);
    gateway.track_changes();
    let mut store = MapStore::default();
    for line in &lines[..lines.len() / 2] {
        if let Item::Event(event) = &line.item {
            gateway.handle(line.at_ms, event).expect("event");
        }
        store.commit(gateway.take_changes());
    }
    let mut from_journal = store.snapshot();
    let mut whole = gateway.snapshot();
    from_journal
        .sessions
        .sort_by(|a, b| (&a.tenant, &a.session).cmp(&(&b.tenant, &b.session)));
    whole
        .sessions
        .sort_by(|a, b| (&a.tenant, &a.session).cmp(&(&b.tenant, &b.session)));
    for s in from_journal
        .sessions
        .iter_mut()
        .chain(whole.sessions.iter_mut())
    {
        s.timers.sort_by_key(|t| t.key);
    }
    assert!(!whole.sessions.is_empty());
    assert_eq!(from_journal, whole);
}

#[test]
fn closed_sessions_are_forgotten_after_the_retention_but_not_while_a_push_is_under_way() {
    use autoclose_tests::{handle_events, message, opened, scenario};
    use autoclose_webhook::outbound::Capture;
    use autoclose_webhook::retry::AttemptResult;

    let capture = Capture::default();
    let mut gateway = start_core_with(CONFIG, Box::new(capture.clone())).expect("gateway");
    gateway.track_changes();
    handle_events(
        &mut gateway,
        &scenario(&[
            (0, opened("acme", "s1", "http_api")),
            (0, opened("acme", "open", "http_api")),
            // globex pushes on close: its delivery stays under way (nothing answers).
            (0, opened("globex", "g1", "web_chat")),
            (1_000, message("globex", "g1", "agent")),
            (
                1_000,
                r#"{"type":"session_closed","tenant":"acme","session":"s1"}"#.to_owned(),
            ),
        ]),
    );
    gateway.advance_to(200_000);
    assert!(gateway.take_actions().iter().any(|a| matches!(
        &a.kind,
        autoclose_core::action::ActionKind::CloseSession { session, .. } if session == "g1"
    )));
    gateway.take_changes();
    assert_eq!(gateway.sessions_seen(), 3);

    assert_eq!(gateway.forget_closed(999), 0, "s1 closed at 1000");
    assert_eq!(
        gateway.forget_closed(200_000),
        1,
        "g1's close push is under way"
    );
    let changes = gateway.take_changes();
    assert_eq!(
        changes.forgotten,
        vec![("acme".to_owned(), "s1".to_owned())]
    );
    assert_eq!(gateway.sessions_seen(), 2);

    // Once its deliveries (the warning's and the close's pushes) end, g1 goes too.
    let pending = capture.attempts();
    assert_eq!(pending.len(), 2);
    for attempt in pending {
        assert_eq!(gateway.forget_closed(200_000), 0);
        gateway.complete_attempt(
            RequestId(attempt.request),
            AttemptResult::Answered {
                status: 200,
                retry_after_ms: None,
                body: Vec::new(),
            },
        );
    }
    assert_eq!(gateway.forget_closed(200_000), 1);
    assert_eq!(gateway.sessions_seen(), 1);

    // A late event for a forgotten session starts a new one.
    handle_events(
        &mut gateway,
        &scenario(&[
            (300_000, opened("acme", "s1", "http_api")),
            (300_000, message("acme", "s1", "agent")),
        ]),
    );
    gateway.advance_to(300_000 + 600_000);
    let closes: Vec<u64> = gateway
        .take_actions()
        .iter()
        .filter(|a| matches!(&a.kind, autoclose_core::action::ActionKind::CloseSession { session, .. } if session == "s1"))
        .map(|a| a.at_ms)
        .collect();
    assert_eq!(closes, vec![900_000]);
}

#[test]
fn events_held_for_a_failing_tenant_are_kept_and_delivered_after_a_restore() {
    use autoclose_tests::{handle_events, message, opened, scenario};

    let failing = CONFIG.replacen(
        r#""tenants": {"#,
        r#""tenants": {"bad": {"component": "{MISBEHAVING}", "on_message": "trap"},"#,
        1,
    );
    let fixed = CONFIG.replacen(
        r#""tenants": {"#,
        r#""tenants": {"bad": {"channels": {"web_chat": {"auto_close": {"close": {"after": "10s", "message": "closed"}}}}},"#,
        1,
    );
    let receiver = ScriptedReceiver::default();
    let mut gateway = start_core_with(&failing, Box::new(receiver.clone())).expect("gateway");
    gateway.track_changes();
    handle_events(
        &mut gateway,
        &scenario(&[
            (0, opened("bad", "b1", "web_chat")),
            // Two traps: the second starts a 1 s back-off.
            (0, message("bad", "b1", "agent")),
            (1, message("bad", "b1", "agent")),
            // Held during the back-off.
            (2, message("bad", "b1", "agent")),
            (
                3,
                r#"{"type":"presence","tenant":"bad","session":"b1","state":"hidden"}"#.to_owned(),
            ),
        ]),
    );
    let changes = gateway.take_changes();
    let held: Vec<_> = changes.held.iter().filter(|h| h.tenant == "bad").collect();
    assert_eq!(held.len(), 1, "{:?}", changes.held);
    assert_eq!(held[0].events.len(), 2, "{:?}", held[0]);
    assert_eq!(held[0].events[0].at_ms, 2);

    // The component is fixed (a reload, or a restart with a new config): the held
    // agent message starts a cycle on the new instance.
    let snapshot = gateway.snapshot();
    assert_eq!(snapshot.held.len(), 1);
    let mut restored = start_core_with(&fixed, Box::new(receiver.clone())).expect("gateway");
    restored.track_changes();
    let report = restored.restore(snapshot, 3);
    assert_eq!(report.held, 2, "{report:?}");
    let changes = restored.take_changes();
    assert!(
        changes.held.iter().all(|h| h.events.is_empty()),
        "nothing is held any more: {:?}",
        changes.held
    );
    restored.advance_to(20_000);
    let closes: Vec<u64> = restored
        .take_actions()
        .iter()
        .filter(|a| matches!(&a.kind, autoclose_core::action::ActionKind::CloseSession { tenant, .. } if tenant == "bad"))
        .map(|a| a.at_ms)
        .collect();
    assert_eq!(closes, vec![10_003]);
}

/// What a plugin keeps per session (`sessions.set-state`) is in the journal: a session
/// that went back to a queue stays waiting for an agent across a restart, so the queue
/// bot's message after the restart starts no cycle; the agent's does.
#[test]
fn the_plugins_session_state_survives_a_restart() {
    use autoclose_tests::{message, opened, scenario};
    let receiver = ScriptedReceiver::default();
    let mut store = MapStore::default();
    let mut before = new_gateway(&receiver);
    before.track_changes();
    let queued = serde_json::json!({"type": "queued", "tenant": "acme", "session": "s1"});
    // After the restart the scenario text alone does not open the session.
    let said = |sender: &str| {
        serde_json::json!({"type": "message", "tenant": "acme", "session": "s1",
                           "sender": sender, "channel": "web_chat"})
        .to_string()
    };
    autoclose_tests::handle_events(
        &mut before,
        &scenario(&[
            (0, opened("acme", "s1", "web_chat")),
            (1_000, message("acme", "s1", "agent")),
            (2_000, queued.to_string()),
        ]),
    );
    store.commit(before.take_changes());
    let kept = store
        .sessions
        .get(&("acme".to_owned(), "s1".to_owned()))
        .map(|s| s.state.clone())
        .unwrap_or_default();
    assert!(!kept.is_empty(), "the waiting flag is in the store");
    drop(before);

    let mut after = new_gateway(&receiver);
    after.track_changes();
    after.restore(store.snapshot(), 2_000);
    autoclose_tests::handle_events(&mut after, &scenario(&[(3_000, said("bot"))]));
    after.advance_to(600_000);
    assert!(
        after.take_actions().is_empty(),
        "a bot message does not end the wait for an agent"
    );
    autoclose_tests::handle_events(&mut after, &scenario(&[(600_000, said("agent"))]));
    after.advance_to(800_000);
    let kinds: Vec<String> = after
        .take_actions()
        .iter()
        .map(|a| serde_json::to_value(a).expect("json")["action"].to_string())
        .collect();
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("\"post_message\""),
        "{kinds:?}"
    );
}

/// A configuration change (a reload carries sessions and timers into gateways built
/// from the new file) applies to cycles that start after it: a running cycle keeps the
/// deadline it announced, while the texts in force when its steps fire are used.
#[test]
fn a_running_cycle_keeps_its_deadline_across_a_config_change() {
    use autoclose_tests::{message, opened, scenario};
    let receiver = ScriptedReceiver::default();
    let mut store = MapStore::default();
    let mut before = new_gateway(&receiver);
    before.track_changes();
    autoclose_tests::handle_events(
        &mut before,
        &scenario(&[
            (0, opened("acme", "s1", "web_chat")),
            (1_000, message("acme", "s1", "agent")),
        ]),
    );
    store.commit(before.take_changes());
    drop(before);

    // The new file moves acme's web_chat warning to 10m and the close to 20m, with new
    // texts.
    let changed = CONFIG
        .replacen(r#""after": "3m""#, r#""after": "10m""#, 1)
        .replacen(r#""after": "5m""#, r#""after": "20m""#, 1)
        .replacen("Are you still there?", "Hello again?", 1);
    assert_ne!(changed, CONFIG);
    let mut after = start_core_with(&changed, Box::new(receiver.clone())).expect("gateway");
    after.track_changes();
    after.restore(store.snapshot(), 1_000);
    after.advance_to(3_600_000);
    let lines: Vec<String> = after
        .take_actions()
        .iter()
        .map(|a| {
            let v = serde_json::to_value(a).expect("json");
            format!(
                "{} {} {}",
                v["at_ms"],
                v["action"].as_str().unwrap_or(""),
                v["text"].as_str().unwrap_or("")
            )
        })
        .filter(|l| !l.contains("webhook"))
        .collect();
    assert_eq!(
        lines,
        vec![
            "181000 post_message Hello again? This chat closes in 2 minutes.",
            "301000 post_message This chat was closed because we did not hear from you.",
            "301000 close_session ",
        ],
        "the old schedule (3m, 5m) with the new text"
    );
    // A cycle started after the change follows the new schedule.
    autoclose_tests::handle_events(
        &mut after,
        &scenario(&[
            (3_600_000, opened("acme", "s2", "web_chat")),
            (3_601_000, message("acme", "s2", "agent")),
        ]),
    );
    after.advance_to(7_200_000);
    let times: Vec<u64> = after
        .take_actions()
        .iter()
        .filter_map(|a| {
            let v = serde_json::to_value(a).expect("json");
            (v["action"] == "post_message").then(|| v["at_ms"].as_u64().unwrap_or(0))
        })
        .collect();
    assert_eq!(times, vec![3_601_000 + 600_000, 3_601_000 + 1_200_000]);
}

/// A shard given to another node: the core forgets everything it served without
/// journaling it (the store keeps it for the new owner), fires nothing more, and can
/// take the same sessions back later from the store as if it had never held them.
#[test]
fn a_core_that_forgets_everything_fires_nothing_and_can_take_it_back() {
    use autoclose_tests::{message, opened, scenario};
    let receiver = ScriptedReceiver::default();
    let mut store = MapStore::default();
    let mut core = new_gateway(&receiver);
    core.track_changes();
    autoclose_tests::handle_events(
        &mut core,
        &scenario(&[
            (0, opened("acme", "s1", "web_chat")),
            (1_000, message("acme", "s1", "agent")),
        ]),
    );
    store.commit(core.take_changes());
    core.take_actions();
    assert!(core.pending_timers() > 0);

    core.forget_everything();
    assert_eq!(core.pending_timers(), 0);
    assert_eq!(core.snapshot().sessions, Vec::new());
    core.advance_to(3_600_000);
    assert!(
        core.take_actions().is_empty(),
        "nothing fires once forgotten"
    );
    assert!(
        core.take_changes().sessions.is_empty(),
        "forgetting is not a change for the store"
    );

    // Taken back an hour later: the overdue warning fires at once (host time only
    // moves forward) and the close follows it by the warning's two minutes.
    core.restore(store.snapshot(), 3_600_000);
    core.advance_to(7_200_000);
    let closes: Vec<u64> = core
        .take_actions()
        .iter()
        .filter(|a| {
            matches!(
                &a.kind,
                autoclose_core::action::ActionKind::CloseSession { .. }
            )
        })
        .map(|a| a.at_ms)
        .collect();
    assert_eq!(closes, vec![3_720_000]);
}
