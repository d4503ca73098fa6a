//! Webhook deliveries on virtual time: retries, back-off, Retry-After, staleness,
//! 410 Gone and redirects, with the receiver's answers scripted in the scenario.

use autoclose_tests::{
    CONFIG, attempts, message, opened, replay_on, scenario, start_core, summary,
};
use serde_json::Value;

fn respond(webhook: &str, rest: &str) -> String {
    format!(r#"{{"type":"webhook_response","webhook":"{webhook}",{rest}}}"#)
}

/// acme/s1 warns at 181000 and closes at 301000; globex/g1 warns at 60000 and closes
/// (with a push) at 90000.
fn run(lines: &[(u64, String)]) -> Vec<Value> {
    let mut gw = start_core(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    replay_on(&mut gw, &scenario(lines)).unwrap_or_else(|e| panic!("{e}"))
}

fn attempt_times(transcript: &[Value]) -> Vec<u64> {
    transcript
        .iter()
        .filter(|a| a["action"] == "webhook_attempt")
        .filter_map(|a| a["at_ms"].as_u64())
        .collect()
}

#[test]
fn failed_attempts_are_retried_on_the_schedule_with_one_id() {
    let t = run(&[
        (0, respond("mobile-push", r#""status":503,"repeat":2"#)),
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
    ]);
    let tries = attempts(&t);
    assert_eq!(tries.len(), 3, "{tries:?}");
    assert!(tries[0].contains("#1 status 503 -> retry at"), "{tries:?}");
    assert!(
        tries[2].ends_with("#3 status 200 -> delivered after 3 attempts"),
        "{tries:?}"
    );
    let times = attempt_times(&t);
    let (first, second) = (times[1] - times[0], times[2] - times[1]);
    assert!((4_500..=5_500).contains(&first), "about 5s, got {first}");
    assert!(
        (27_000..=33_000).contains(&second),
        "about 30s, got {second}"
    );
    let ids: Vec<&Value> = t
        .iter()
        .filter(|a| a["action"] == "webhook_attempt")
        .map(|a| &a["id"])
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one webhook-id across attempts: {ids:?}"
    );
    let queued = t
        .iter()
        .find(|a| a["action"] == "webhook")
        .map(|a| &a["id"]);
    assert_eq!(queued, Some(ids[0]));
}

#[test]
fn connection_failures_are_retried_too() {
    let t = run(&[
        (
            0,
            respond("mobile-push", r#""failure":"connection refused""#),
        ),
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
    ]);
    let tries = attempts(&t);
    assert!(
        tries[0].contains("#1 connection refused -> retry at"),
        "{tries:?}"
    );
    assert!(
        tries[1].ends_with("delivered after 2 attempts"),
        "{tries:?}"
    );
}

#[test]
fn a_warning_is_never_attempted_after_the_chat_closed() {
    let t = run(&[
        (0, respond("mobile-push", r#""status":500,"repeat":50"#)),
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
    ]);
    let times = attempt_times(&t);
    assert!(times.len() >= 3, "{times:?}");
    assert!(
        times.iter().all(|t| *t <= 301_000),
        "no attempt after the close at 301000: {times:?}"
    );
    let tries = attempts(&t);
    let last = tries.last().map(String::as_str).unwrap_or("");
    assert!(
        last.contains(
            "gave up: status 500; the next attempt would come after the deadline (stale)"
        ),
        "{last}"
    );
}

#[test]
fn retry_after_is_honoured() {
    let t = run(&[
        (
            0,
            respond("mobile-push", r#""status":429,"retry_after":90"#),
        ),
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
    ]);
    let times = attempt_times(&t);
    assert_eq!(times, vec![181_000, 271_000], "{:?}", attempts(&t));
}

#[test]
fn a_close_push_gives_up_after_the_webhook_deadline() {
    // globex pushes on close (at 90000); the webhook's default deadline is 1h.
    let t = run(&[
        (0, respond("mobile-push", r#""status":200"#)),
        (0, respond("mobile-push", r#""status":503,"repeat":100"#)),
        (0, opened("globex", "g1", "web_chat")),
        (0, message("globex", "g1", "agent")),
    ]);
    let closing: Vec<u64> = t
        .iter()
        .filter(|a| a["action"] == "webhook_attempt" && a["at_ms"].as_u64() >= Some(90_000))
        .filter_map(|a| a["at_ms"].as_u64())
        .collect();
    assert!(closing.len() >= 5, "{closing:?}");
    assert!(
        closing.iter().all(|t| *t <= 90_000 + 3_600_000),
        "{closing:?}"
    );
    let last = attempts(&t).pop().unwrap_or_default();
    assert!(last.contains("gave up:"), "{last}");
}

#[test]
fn gone_disables_the_webhook_for_the_tenant() {
    let t = run(&[
        (0, respond("mobile-push", r#""status":410"#)),
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (200_000, opened("acme", "s2", "web_chat")),
        (200_000, message("acme", "s2", "agent")),
        (200_000, opened("globex", "g1", "web_chat")),
        (200_000, message("globex", "g1", "agent")),
    ]);
    let tries = attempts(&t);
    assert!(
        tries[0].contains("#1 status 410 -> gave up: 410 Gone"),
        "{tries:?}"
    );
    let pushes: Vec<String> = summary(&t)
        .into_iter()
        .filter(|l| l.contains(" webhook "))
        .collect();
    assert_eq!(
        pushes,
        vec![
            "181000 webhook acme/s1 chat.auto_close.warning",
            "260000 webhook globex/g1 chat.auto_close.warning",
            "290000 webhook globex/g1 chat.auto_close.closed",
        ],
        "acme/s2 is still warned in the chat but not pushed; globex is unaffected"
    );
    assert!(summary(&t).contains(&"380000 post_message acme/s2 warning".to_owned()));
}

#[test]
fn redirects_and_client_errors_are_final() {
    let t = run(&[
        (0, respond("mobile-push", r#""status":301"#)),
        (0, respond("mobile-push", r#""status":400"#)),
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (1_000, opened("acme", "s2", "web_chat")),
        (2_000, message("acme", "s2", "agent")),
    ]);
    assert_eq!(
        attempts(&t),
        vec![
            "181000 mobile-push #1 status 301 -> gave up: status 301: redirects are not followed",
            "182000 mobile-push #1 status 400 -> gave up: status 400 is final",
        ]
    );
}

#[test]
fn duplicate_notices_share_an_id_and_distinct_ones_do_not() {
    let t = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
    ]);
    let again = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
    ]);
    let id = |t: &[Value]| {
        t.iter()
            .find(|a| a["action"] == "webhook")
            .map(|a| a["id"].clone())
    };
    assert_eq!(
        id(&t),
        id(&again),
        "the same notice of the same cycle has the same id"
    );
    let other = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (2_000, message("acme", "s1", "agent")),
    ]);
    assert_ne!(id(&t), id(&other), "another cycle is another delivery");
}
