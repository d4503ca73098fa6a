//! The auto-close rules (see docs/behaviour.md), each checked through the built
//! component running in the real host on virtual time.

use autoclose_tests::{CONFIG, message, opened, scenario, summary, transcript};
use serde_json::json;

fn run(lines: &[(u64, String)]) -> Vec<String> {
    summary(&transcript(CONFIG, &scenario(lines)))
}

fn with_origin(tenant: &str, session: &str, sender: &str, origin: &str) -> String {
    format!(
        r#"{{"type":"message","tenant":"{tenant}","session":"{session}","sender":"{sender}","origin":"{origin}"}}"#
    )
}

#[test]
fn rule1_an_agent_or_bot_message_starts_the_cycle_and_a_later_one_restarts_it() {
    let out = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (2_000, opened("acme", "s2", "web_chat")),
        (2_000, message("acme", "s2", "bot")),
        (60_000, message("acme", "s1", "agent")),
    ]);
    assert_eq!(
        out,
        vec![
            "182000 post_message acme/s2 warning",
            "182000 webhook acme/s2 chat.auto_close.warning",
            "240000 post_message acme/s1 warning",
            "240000 webhook acme/s1 chat.auto_close.warning",
            "302000 post_message acme/s2 close",
            "302000 close_session acme/s2 inactivity",
            "360000 post_message acme/s1 close",
            "360000 close_session acme/s1 inactivity",
        ]
    );
}

#[test]
fn rule2_the_warning_is_posted_and_pushed_with_the_envelope() {
    let t = transcript(
        CONFIG,
        &scenario(&[
            (0, opened("acme", "s1", "web_chat")),
            (1_000, message("acme", "s1", "agent")),
        ]),
    );
    assert_eq!(
        t[0],
        json!({"at_ms":181000,"action":"post_message","tenant":"acme","session":"s1","kind":"warning",
               "text":"Are you still there? This chat closes in 2 minutes."})
    );
    assert_eq!(t[1]["action"], "webhook");
    assert_eq!(t[1]["webhook"], "mobile-push");
    assert_eq!(t[1]["method"], "POST");
    assert_eq!(t[1]["url"], "https://push.example.com/hook");
    assert_eq!(
        t[1]["body"],
        json!({"type":"chat.auto_close.warning","timestamp":"1970-01-01T00:03:01Z",
               "data":{"tenant":"acme","session":"s1","channel":"web_chat",
                       "message":"Are you still there? This chat closes in 2 minutes.",
                       "closes_at":"1970-01-01T00:05:01Z","end_user":{"locale":"en"}}})
    );
}

#[test]
fn rule3_the_close_follows_the_warning_in_the_documented_order() {
    let out = run(&[
        (0, opened("globex", "g1", "web_chat")),
        (0, message("globex", "g1", "agent")),
    ]);
    assert_eq!(
        out,
        vec![
            "60000 post_message globex/g1 warning",
            "60000 webhook globex/g1 chat.auto_close.warning",
            "90000 post_message globex/g1 close",
            "90000 webhook globex/g1 chat.auto_close.closed",
            "90000 close_session globex/g1 inactivity",
        ]
    );
}

#[test]
fn rule3_without_a_warning_the_close_comes_after_the_configured_idle_time() {
    let out = run(&[
        (0, opened("acme", "h1", "http_api")),
        (5_000, message("acme", "h1", "agent")),
    ]);
    assert_eq!(
        out,
        vec![
            "605000 post_message acme/h1 close",
            "605000 close_session acme/h1 inactivity"
        ]
    );
}

#[test]
fn rule4_an_end_user_message_cancels_what_is_pending() {
    let out = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (100_000, message("acme", "s1", "end_user")),
        // A new cycle; the reply after its warning cancels the close too.
        (200_000, message("acme", "s1", "agent")),
        (390_000, message("acme", "s1", "end_user")),
    ]);
    assert_eq!(
        out,
        vec![
            "380000 post_message acme/s1 warning",
            "380000 webhook acme/s1 chat.auto_close.warning"
        ],
        "the first cycle was cancelled before its warning, the second after it"
    );
}

#[test]
fn rule5_system_messages_and_own_echoes_never_touch_the_cycle() {
    let out = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (0, message("acme", "s1", "system")),
        (0, opened("acme", "s2", "web_chat")),
        (1_000, message("acme", "s2", "agent")),
        (100_000, message("acme", "s2", "system")),
        // The gateway echoes the warning back, once as an agent post, once as end user.
        (181_000, with_origin("acme", "s2", "agent", "autoclose")),
        (182_000, with_origin("acme", "s2", "end_user", "autoclose")),
    ]);
    assert_eq!(
        out,
        vec![
            "181000 post_message acme/s2 warning",
            "181000 webhook acme/s2 chat.auto_close.warning",
            "301000 post_message acme/s2 close",
            "301000 close_session acme/s2 inactivity",
        ],
        "s1 (system only) stays quiet; s2 is neither restarted nor cancelled by echoes"
    );
    // A message with another plugin's origin is an ordinary message.
    let out = run(&[
        (0, opened("acme", "s3", "web_chat")),
        (1_000, with_origin("acme", "s3", "bot", "csat-survey")),
    ]);
    assert_eq!(
        out.first().map(String::as_str),
        Some("181000 post_message acme/s3 warning")
    );
}

#[test]
fn rule6_nothing_happens_after_a_session_is_closed() {
    let closed = r#"{"type":"session_closed","tenant":"acme","session":"s1"}"#.to_owned();
    let out = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (100_000, closed.clone()),
        (200_000, message("acme", "s1", "agent")),
    ]);
    assert!(out.is_empty(), "{out:?}");
    // Closed by the plugin: a later agent message starts nothing.
    let out = run(&[
        (0, opened("globex", "g1", "web_chat")),
        (0, message("globex", "g1", "agent")),
        (100_000, message("globex", "g1", "agent")),
    ]);
    assert_eq!(out.len(), 5, "{out:?}");
    assert_eq!(out[4], "90000 close_session globex/g1 inactivity");
}

#[test]
fn rule6_a_close_during_the_warning_stops_the_close() {
    let closed = r#"{"type":"session_closed","tenant":"acme","session":"s1"}"#.to_owned();
    let out = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (200_000, closed),
    ]);
    assert_eq!(
        out,
        vec![
            "181000 post_message acme/s1 warning",
            "181000 webhook acme/s1 chat.auto_close.warning"
        ]
    );
}

#[test]
fn rule7_unknown_tenants_and_disabled_channels_cause_no_action() {
    let out = run(&[
        (0, opened("initech", "i1", "web_chat")),
        (1_000, message("initech", "i1", "agent")),
        (1_000, opened("acme", "x1", "sms")),
        (1_000, message("acme", "x1", "agent")),
        (2_000, opened("acme", "x2", "unconfigured_channel")),
        (2_000, message("acme", "x2", "agent")),
    ]);
    assert!(out.is_empty(), "{out:?}");
}

#[test]
fn rule8_a_reply_at_the_exact_warning_or_close_instant_wins() {
    let out = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (181_000, message("acme", "s1", "end_user")),
    ]);
    assert!(
        out.is_empty(),
        "reply at the warning instant: no warning, got {out:?}"
    );
    let out = run(&[
        (0, opened("acme", "s1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (301_000, message("acme", "s1", "end_user")),
    ]);
    assert_eq!(
        out,
        vec![
            "181000 post_message acme/s1 warning",
            "181000 webhook acme/s1 chat.auto_close.warning"
        ],
        "reply at the close instant: warned, but not closed"
    );
}

#[test]
fn rule9_templates_fill_minutes_rounded_up_and_seconds() {
    let t = transcript(
        CONFIG,
        &scenario(&[
            (0, opened("globex", "g1", "web_chat")),
            (0, message("globex", "g1", "agent")),
        ]),
    );
    assert_eq!(t[0]["text"], "Closing in 30 seconds (1 min).");
    assert_eq!(
        t[1]["body"]["data"]["message"],
        "Closing in 30 seconds (1 min)."
    );
}

#[test]
fn two_tenants_with_different_settings_run_side_by_side() {
    let out = run(&[
        (0, opened("acme", "a", "web_chat")),
        (0, opened("globex", "a", "web_chat")),
        (1_000, message("acme", "a", "agent")),
        (1_000, message("globex", "a", "agent")),
    ]);
    assert_eq!(
        out,
        vec![
            "61000 post_message globex/a warning",
            "61000 webhook globex/a chat.auto_close.warning",
            "91000 post_message globex/a close",
            "91000 webhook globex/a chat.auto_close.closed",
            "91000 close_session globex/a inactivity",
            "181000 post_message acme/a warning",
            "181000 webhook acme/a chat.auto_close.warning",
            "301000 post_message acme/a close",
            "301000 close_session acme/a inactivity",
        ],
        "the same session id in two tenants is two sessions"
    );
}

#[test]
fn a_burst_of_agent_messages_gives_one_cycle_from_the_last() {
    let mut lines = vec![(0, opened("acme", "s1", "web_chat"))];
    lines.extend((1..=100).map(|i| (i * 1_000, message("acme", "s1", "agent"))));
    let out = run(&lines);
    assert_eq!(
        out,
        vec![
            "280000 post_message acme/s1 warning",
            "280000 webhook acme/s1 chat.auto_close.warning",
            "400000 post_message acme/s1 close",
            "400000 close_session acme/s1 inactivity",
        ]
    );
}

#[test]
fn a_message_may_carry_the_channel_instead_of_session_opened() {
    let line = r#"{"type":"message","tenant":"acme","session":"h9","sender":"agent","channel":"http_api"}"#;
    let out = run(&[(0, line.to_owned())]);
    assert_eq!(
        out,
        vec![
            "600000 post_message acme/h9 close",
            "600000 close_session acme/h9 inactivity"
        ]
    );
}

#[test]
fn the_same_scenario_gives_the_same_bytes() {
    let lines = scenario(&[
        (0, opened("acme", "s1", "web_chat")),
        (0, opened("globex", "g1", "web_chat")),
        (1_000, message("acme", "s1", "agent")),
        (1_000, message("globex", "g1", "bot")),
    ]);
    assert_eq!(transcript(CONFIG, &lines), transcript(CONFIG, &lines));
}
