//! Sessions' histories, as the console shows them: what each stage records, with the
//! hook behind every action; bounded; forgotten with the session; carried across a
//! restart with it; and not kept at all unless asked for.

use autoclose_core::Core;
use autoclose_core::history::{Cause, History, Origin, Role, Trigger, What};
use autoclose_core::view::{SessionQuery, SessionState};
use autoclose_tests::{CONFIG, handle_events, message, opened, scenario, start_core};

/// acme's web chat: a warning with a push at 3m, the close at 5m.
fn warned_and_closed(core: &mut Core) {
    handle_events(
        core,
        &scenario(&[
            (1_000, opened("acme", "s1", "web_chat")),
            (2_000, message("acme", "s1", "agent")),
        ]),
    );
}

/// Each step as one short line: what the assertions compare.
fn lines(history: &History) -> Vec<String> {
    history
        .steps
        .iter()
        .map(|step| {
            let by = |by: &Trigger| match (&by.timer, &by.origin) {
                (Some(timer), Some(origin)) => format!(
                    "timer {} set at {:?}, chain from {:?} at {}",
                    timer.key, timer.set_at, origin.event, origin.at
                ),
                (Some(timer), None) => format!("timer {}", timer.key),
                (None, Some(origin)) => format!("{:?} at {}", origin.event, origin.at),
                (None, None) => "?".into(),
            };
            let what = match &step.what {
                What::Received { event } => format!("received {event:?}"),
                What::TimerSet {
                    key,
                    due,
                    started,
                    by: cause,
                } => format!(
                    "timer {key} set due {due} started={started} by {}",
                    by(cause)
                ),
                What::TimerCancelled { key, by: cause } => {
                    format!("timer {key} cancelled by {}", by(cause))
                }
                What::TimerFired { key, set_at } => format!("timer {key} fired (set {set_at:?})"),
                What::Posted { kind, by: cause } => format!("posted {kind} by {}", by(cause)),
                What::Closed { reason, by: cause } => format!(
                    "closed {reason} by {} (user wrote {:?})",
                    by(cause),
                    cause.user_wrote_at
                ),
                What::Webhook {
                    webhook,
                    event_type,
                    by: cause,
                    ..
                } => format!("webhook {webhook} {event_type} by {}", by(cause)),
                What::WebhookAttempt {
                    attempt, outcome, ..
                } => format!("attempt {attempt}: {outcome}"),
                What::ActionAttempt {
                    action, outcome, ..
                } => format!("{action}: {outcome}"),
            };
            format!("{} {what}", step.at)
        })
        .collect()
}

#[test]
fn each_step_records_what_happened_and_the_hook_behind_each_action() {
    let mut tested = start_core(CONFIG).expect("core");
    tested.keep_history(64);
    warned_and_closed(&mut tested);
    tested.advance_to(400_000);
    let history = tested.history("acme", "s1").expect("a history").clone();
    let agent = "Message { from: Agent, echo: false } at 2000";
    let chain = "chain from Message { from: Agent, echo: false } at 2000";
    assert_eq!(
        lines(&history),
        [
            "1000 received Opened".to_owned(),
            "2000 received Message { from: Agent, echo: false }".to_owned(),
            format!("2000 timer 0 set due 182000 started=true by {agent}"),
            "182000 timer 0 fired (set Some(2000))".to_owned(),
            format!("182000 posted warning by timer 0 set at Some(2000), {chain}"),
            format!(
                "182000 webhook mobile-push chat.auto_close.warning by timer 0 set at Some(2000), {chain}"
            ),
            "182000 attempt 1: delivered after 1 attempt".to_owned(),
            format!(
                "182000 timer 0 set due 302000 started=false by timer 0 set at Some(2000), {chain}"
            ),
            "302000 timer 0 fired (set Some(182000))".to_owned(),
            format!("302000 posted close by timer 0 set at Some(182000), {chain}"),
            format!(
                "302000 closed inactivity by timer 0 set at Some(182000), {chain} (user wrote None)"
            ),
        ]
    );
    let found = tested.find_sessions(&SessionQuery {
        state: Some(SessionState::Closed),
        limit: 10,
        ..SessionQuery::default()
    });
    assert_eq!(found.matched, 1);
    assert_eq!(found.sessions[0].last_at, Some(302_000));
}

#[test]
fn an_answer_cancels_the_timer_and_is_remembered_as_the_user_s_last_word() {
    let mut tested = start_core(CONFIG).expect("core");
    tested.keep_history(64);
    warned_and_closed(&mut tested);
    tested.advance_to(190_000);
    let warned = tested.session_detail("acme", "s1").expect("session");
    assert_eq!(warned.summary.state, SessionState::Warned);
    assert_eq!(warned.timers.len(), 1);
    handle_events(
        &mut tested,
        &scenario(&[(
            200_000,
            r#"{"type":"message","tenant":"acme","session":"s1","sender":"end_user","channel":"web_chat"}"#
                .to_owned(),
        )]),
    );
    let history = tested.history("acme", "s1").expect("a history");
    assert_eq!(history.user_wrote_at, Some(200_000));
    let last = lines(history).pop().unwrap_or_default();
    assert_eq!(
        last,
        "200000 timer 0 cancelled by Message { from: EndUser, echo: false } at 200000"
    );
    let after = tested.session_detail("acme", "s1").expect("session");
    assert_eq!(after.summary.state, SessionState::Idle);
    assert!(after.timers.is_empty());
}

#[test]
fn a_history_keeps_its_newest_steps_and_counts_the_rest() {
    let mut tested = start_core(CONFIG).expect("core");
    tested.keep_history(4);
    warned_and_closed(&mut tested);
    tested.advance_to(400_000);
    let history = tested.history("acme", "s1").expect("a history");
    assert_eq!(history.steps.len(), 4);
    assert_eq!(history.dropped, 7);
    assert!(matches!(
        history.steps.back().map(|s| &s.what),
        Some(What::Closed { .. })
    ));
}

#[test]
fn a_history_goes_with_its_session_and_comes_back_with_it_after_a_restart() {
    let mut tested = start_core(CONFIG).expect("core");
    tested.keep_history(64);
    tested.track_changes();
    warned_and_closed(&mut tested);
    tested.advance_to(190_000);
    let changes = tested.take_changes();
    let written = changes
        .sessions
        .iter()
        .find(|s| s.session == "s1")
        .and_then(|s| s.history.as_deref().cloned())
        .expect("the session's record carries its history");
    assert_eq!(Some(&written), tested.history("acme", "s1"));

    // A restart: a new core restored from the snapshot has the same history, and
    // the close it makes names the agent's message from before the restart.
    let snapshot = tested.snapshot();
    let mut restarted = start_core(CONFIG).expect("core");
    restarted.keep_history(64);
    restarted.track_changes();
    restarted.restore(snapshot, 190_000);
    assert_eq!(restarted.history("acme", "s1"), Some(&written));
    restarted.advance_to(400_000);
    let history = restarted.history("acme", "s1").expect("a history");
    match history.steps.back().map(|s| &s.what) {
        Some(What::Closed { by, .. }) => assert_eq!(
            by.origin,
            Some(Origin {
                at: 2_000,
                event: Cause::Message {
                    from: Role::Agent,
                    echo: false
                }
            })
        ),
        other => panic!("the last step is the close, not {other:?}"),
    }

    // Forgotten with the session: nothing of it is left, in memory or in the store.
    restarted.take_changes();
    assert_eq!(restarted.forget_closed(400_000), 1);
    assert_eq!(restarted.history("acme", "s1"), None);
    let changes = restarted.take_changes();
    assert_eq!(
        changes.forgotten,
        vec![("acme".to_owned(), "s1".to_owned())]
    );
}

#[test]
fn no_history_is_kept_unless_asked_for() {
    let mut tested = start_core(CONFIG).expect("core");
    tested.track_changes();
    warned_and_closed(&mut tested);
    tested.advance_to(400_000);
    assert_eq!(tested.history("acme", "s1"), None);
    assert!(
        tested
            .snapshot()
            .sessions
            .iter()
            .all(|s| s.history.is_none())
    );
    let detail = tested.session_detail("acme", "s1").expect("session");
    assert_eq!(detail.summary.state, SessionState::Closed);
}
