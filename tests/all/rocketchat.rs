//! The Rocket.Chat adapter end to end: the real `serve` process, a fake Rocket.Chat
//! on 127.0.0.1 (REST endpoints checking the bot user's token, Omnichannel webhooks
//! with the secret token header, built from Rocket.Chat's own payload shapes), a push
//! receiver.

use std::time::Duration;

use autoclose_tests::receiver::Receiver;
use autoclose_tests::rocketchat::{
    self, AGENT_ID, FakeRocketChat, VISITOR_ID, WEBHOOK_TOKEN, deliver, message_webhook,
    session_webhook,
};
use autoclose_tests::server::{Server, scratch};
use serde_json::json;

use crate::serve::{BINARY, WAIT, write};

/// web_chat warns after 2s (posted, pushed, and a note to the agent) and closes 2s
/// later; http_api warns with its own text.
fn config(fake: &FakeRocketChat, push: &Receiver, reconcile_every: &str) -> String {
    json!({
        "webhooks": {"push": {"url": push.url("/push")}},
        "egress": {"allow_private_networks": true},
        "gateway": {"rocketchat": {
            "timeout": "2s",
            "reconcile_every": reconcile_every,
            "servers": {"globex": {
                "url": fake.url(),
                "user_id": rocketchat::BOT_ID,
                "auth_token": "env:RC_TOKEN",
                "webhook_token": "env:RC_HOOK"}}}},
        "tenants": {"globex": {"webhooks": ["push"], "channels": {
            "web_chat": {"auto_close": {
                "warnings": [{"after": "2s", "message": "Still there?", "push": true,
                              "agent_notice": "The chat closes in 2s unless the visitor answers."}],
                "close": {"after": "4s", "message": "Closed for inactivity."},
                "push": {"webhook": "push"}}},
            "http_api": {"auto_close": {
                "warnings": [{"after": "2s", "message": "API: still there?"}],
                "close": {"after": "4s"}}}}}}
    })
    .to_string()
}

fn start(name: &str, fake: &FakeRocketChat, push: &Receiver, reconcile_every: &str) -> Server {
    let dir = scratch(name);
    let path = dir.join("config.json");
    write(&path, &config(fake, push, reconcile_every));
    Server::start(
        BINARY,
        &path,
        &dir.join("data"),
        &[
            ("RC_TOKEN", rocketchat::AUTH_TOKEN),
            ("RC_HOOK", WEBHOOK_TOKEN),
        ],
    )
}

fn texts(fake: &FakeRocketChat, rid: &str) -> Vec<String> {
    fake.posted(rid).into_iter().map(|m| m.msg).collect()
}

#[test]
fn an_agent_message_gets_a_warning_a_push_a_note_and_a_close_and_our_echo_changes_nothing() {
    let fake = FakeRocketChat::start();
    let push = Receiver::start(Vec::new());
    let server = start("rocketchat-cycle", &fake, &push, "10m");
    let hook = server.url("/v1/rocketchat/globex");
    // Webhooks of our own posts and closes come back before the REST call answers.
    fake.echo_to(hook.clone());

    fake.open("R1", "widget");
    fake.open("R2", "api");
    assert_eq!(
        deliver(
            &hook,
            &session_webhook("session_start.json", "R1"),
            WEBHOOK_TOKEN
        ),
        (200, String::new()),
        "exactly 200 with an empty body: Rocket.Chat keeps a 200's body on the room"
    );
    let agent = fake.write("R1", AGENT_ID, "How can I help?");
    let payload = message_webhook(&agent);
    assert_eq!(deliver(&hook, &payload, "not-the-token-at-all-000").0, 401);
    assert_eq!(
        deliver(&hook, &payload, WEBHOOK_TOKEN),
        (200, String::new())
    );
    // R2 came through the livechat API: its channel is http_api, read from rooms.info.
    let api_agent = fake.write("R2", AGENT_ID, "Your order shipped.");
    assert_eq!(
        deliver(&hook, &message_webhook(&api_agent), WEBHOOK_TOKEN).0,
        200
    );

    // Delivered again once the warning is out (Rocket.Chat retries after a time-out):
    // applied once, or it would restart the cycle and warn a second time.
    fake.wait_until(WAIT, "the warning", |messages, _| {
        messages
            .iter()
            .any(|m| m.rid == "R1" && m.msg == "Still there?")
    });
    assert_eq!(
        deliver(&hook, &payload, WEBHOOK_TOKEN),
        (200, String::new())
    );
    fake.wait_until(WAIT, "both rooms closed", |_, open| {
        open.get("R1") == Some(&false) && open.get("R2") == Some(&false)
    });
    assert_eq!(
        texts(&fake, "R1"),
        ["Still there?", "Closed for inactivity."]
    );
    assert_eq!(texts(&fake, "R2"), ["API: still there?"]);
    assert_eq!(
        texts(&fake, "dm-alice.agent"),
        ["The chat closes in 2s unless the visitor answers."],
        "the note goes to the serving agent, not into the room"
    );
    let (_, comment) = fake.room("R1").unwrap_or_else(|| panic!("R1"));
    assert_eq!(comment.as_deref(), Some("Closed by autoclose (inactivity)"));
    assert!(
        fake.posted("R1")
            .iter()
            .all(|m| m.id.starts_with("autoclose-act_")),
        "our posts carry our ids"
    );
    push.wait_for(WAIT, |r| !r.is_empty())
        .unwrap_or_else(|r| panic!("no push: {r:?}"));
    // Every echo (three posts, two closes) was taken with exactly 200 and no body.
    let answers = fake.echo_answers(5, WAIT);
    assert_eq!(answers.len(), 5, "{answers:?}");
    assert!(
        answers.iter().all(|a| *a == (200, String::new())),
        "{answers:?}"
    );
    let metrics = server.get("/metrics").1;
    assert!(
        metrics.contains(
            "autoclose_platform_webhooks_total{platform=\"rocketchat\",outcome=\"unauthorized\"} 1"
        ),
        "{metrics}"
    );
    // The warning's echo did not restart a cycle: nothing more was posted.
    assert_eq!(fake.posted("R1").len(), 2);
    let (status, log) = server.terminate(WAIT);
    assert!(status.success(), "{log}");
    assert!(
        !log.contains(rocketchat::AUTH_TOKEN) && !log.contains(WEBHOOK_TOKEN),
        "{log}"
    );
}

#[test]
fn a_visitor_reply_cancels_and_a_room_put_on_hold_is_left_alone() {
    let fake = FakeRocketChat::start();
    let push = Receiver::start(Vec::new());
    let server = start("rocketchat-cancel", &fake, &push, "10m");
    let hook = server.url("/v1/rocketchat/globex");
    for rid in ["R3", "R4"] {
        fake.open(rid, "widget");
        let agent = fake.write(rid, AGENT_ID, "Anything else?");
        assert_eq!(
            deliver(&hook, &message_webhook(&agent), WEBHOOK_TOKEN).0,
            200
        );
    }
    // R3: the visitor answers. R4: an agent puts it on hold, and no webhook says so.
    let reply = fake.write("R3", VISITOR_ID, "No, thanks");
    assert_eq!(
        deliver(&hook, &message_webhook(&reply), WEBHOOK_TOKEN).0,
        200
    );
    fake.hold("R4");
    server.wait_for_log(
        "nothing posted: the room is on hold in Rocket.Chat",
        1,
        WAIT,
    );
    // Past the close time of both: nothing was posted, nothing closed.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        assert!(texts(&fake, "R3").is_empty() && texts(&fake, "R4").is_empty());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(fake.room("R3").map(|r| r.0), Some(true));
    assert_eq!(fake.room("R4").map(|r| r.0), Some(true));
    let (status, log) = server.terminate(WAIT);
    assert!(status.success(), "{log}");
}

#[test]
fn a_post_whose_answer_was_lost_is_made_once_and_a_revoked_token_is_final() {
    let fake = FakeRocketChat::start();
    let push = Receiver::start(Vec::new());
    let server = start("rocketchat-retry", &fake, &push, "10m");
    let hook = server.url("/v1/rocketchat/globex");
    fake.open("R5", "api");
    // The post is made, but the answer is a 503: the retry must not post again.
    fake.fail_sends(&[503]);
    let agent = fake.write("R5", AGENT_ID, "Hello");
    assert_eq!(
        deliver(&hook, &message_webhook(&agent), WEBHOOK_TOKEN).0,
        200
    );
    server.wait_for_log("nothing posted: posted by an earlier attempt", 1, WAIT);
    assert_eq!(texts(&fake, "R5"), ["API: still there?"]);
    assert!(
        fake.calls()
            .iter()
            .filter(|(m, p)| m == "POST" && p == "chat.sendMessage")
            .count()
            == 2,
        "tried twice: {:?}",
        fake.calls()
    );
    // The token is revoked: the close is refused with 401, reported, not retried.
    fake.revoke();
    server.wait_for_log("the platform refused the call; not retried", 1, WAIT);
    let before = fake.calls().len();
    std::thread::sleep(Duration::from_secs(2));
    let metrics = server.get("/metrics").1;
    assert!(
        metrics.contains(
            "autoclose_platform_actions_total{platform=\"rocketchat\",outcome=\"final\"} 1"
        ),
        "{metrics}"
    );
    assert_eq!(
        fake.calls().len(),
        before,
        "no call after the final refusal"
    );
    assert_eq!(fake.room("R5").map(|r| r.0), Some(true));
    let (status, log) = server.terminate(WAIT);
    assert!(status.success(), "{log}");
}

#[test]
fn an_agent_message_whose_webhook_never_came_is_found_by_reconciliation() {
    let fake = FakeRocketChat::start();
    let push = Receiver::start(Vec::new());
    fake.open("R6", "widget");
    // Written while no node was there: no webhook at all.
    fake.write("R6", AGENT_ID, "Are you there?");
    let server = start("rocketchat-reconcile", &fake, &push, "1s");
    fake.wait_until(WAIT, "the reconciled close", |_, open| {
        open.get("R6") == Some(&false)
    });
    // Reconciled every second, and still one warning: the message applied once.
    assert_eq!(
        texts(&fake, "R6"),
        ["Still there?", "Closed for inactivity."]
    );
    let metrics = server.get("/metrics").1;
    assert!(
        metrics.contains(
            "autoclose_platform_reconciled_total{platform=\"rocketchat\",outcome=\"submitted\"}"
        ),
        "{metrics}"
    );
    let (status, log) = server.terminate(WAIT);
    assert!(status.success(), "{log}");
}
