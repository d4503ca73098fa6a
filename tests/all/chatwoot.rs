//! The Chatwoot adapter end to end: the real `serve` process, a fake Chatwoot on
//! 127.0.0.1 (REST endpoints checking the access token, signed account webhooks), a
//! push receiver.

use std::time::Duration;

use autoclose_tests::chatwoot::{self, FakeChatwoot};
use autoclose_tests::receiver::Receiver;
use autoclose_tests::server::{Server, scratch};
use serde_json::json;

use crate::serve::{BINARY, WAIT, write};

/// web_chat warns after 2s and closes 2s later, with a push on the warning.
fn config(fake: &FakeChatwoot, push: &Receiver, reconcile_every: &str) -> String {
    json!({
        "webhooks": {"push": {"url": push.url("/push")}},
        "egress": {"allow_private_networks": true},
        "gateway": {"chatwoot": {
            "url": fake.url(),
            "timeout": "2s",
            "reconcile_every": reconcile_every,
            "accounts": {"acme": {
                "account_id": chatwoot::ACCOUNT,
                "api_access_token": "env:CW_TOKEN",
                "webhook_secret": "env:CW_SECRET"}}}},
        "tenants": {"acme": {"webhooks": ["push"], "channels": {
            "web_chat": {"auto_close": {
                "warnings": [{"after": "2s", "message": "Still there?", "push": true}],
                "close": {"after": "4s", "message": "Closed for inactivity."},
                "push": {"webhook": "push"}}}}}}
    })
    .to_string()
}

fn start(name: &str, fake: &FakeChatwoot, push: &Receiver, reconcile_every: &str) -> Server {
    let dir = scratch(name);
    let path = dir.join("config.json");
    write(&path, &config(fake, push, reconcile_every));
    Server::start(
        BINARY,
        &path,
        &dir.join("data"),
        &[
            ("CW_TOKEN", chatwoot::TOKEN),
            ("CW_SECRET", chatwoot::WEBHOOK_SECRET),
        ],
    )
}

#[test]
fn an_agent_message_gets_a_warning_a_push_and_a_resolve_and_our_echo_changes_nothing() {
    let fake = FakeChatwoot::start();
    let push = Receiver::start(Vec::new());
    let server = start("chatwoot-cycle", &fake, &push, "10m");
    let hook = server.url("/v1/chatwoot/acme");
    // Echoes of our posts come back before the REST call has answered.
    fake.echo_to(hook.clone());

    fake.open(42);
    let created = chatwoot::conversation_event("conversation_created", 42, "open");
    assert_eq!(
        chatwoot::deliver(&hook, &created, chatwoot::WEBHOOK_SECRET),
        200
    );
    // A bad signature is refused and changes nothing.
    let agent = fake.write(42, "outgoing", "user", "How can I help?");
    let payload = chatwoot::message_created(&agent);
    assert_eq!(chatwoot::deliver(&hook, &payload, "not-the-secret"), 401);
    assert_eq!(
        chatwoot::deliver(&hook, &payload, chatwoot::WEBHOOK_SECRET),
        200
    );
    // Delivered again once the warning is out: applied once, or it would restart the
    // cycle and warn a second time.
    fake.wait_until(WAIT, "the warning", |messages, _| {
        messages
            .iter()
            .any(|m| m.conversation == 42 && m.content == "Still there?")
    });
    assert_eq!(
        chatwoot::deliver(&hook, &payload, chatwoot::WEBHOOK_SECRET),
        200
    );

    fake.wait_until(WAIT, "the conversation resolved", |_, statuses| {
        statuses.get(&42).map(String::as_str) == Some("resolved")
    });
    let posted = fake.posted(42);
    let texts: Vec<&str> = posted.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(
        texts,
        ["Still there?", "Closed for inactivity."],
        "{posted:?}"
    );
    assert!(posted.iter().all(|m| !m.private));
    push.wait_for(WAIT, |r| !r.is_empty())
        .unwrap_or_else(|r| panic!("no push: {r:?}"));
    let metrics = server.get("/metrics").1;
    assert!(
        metrics.contains(
            "autoclose_platform_webhooks_total{platform=\"chatwoot\",outcome=\"unauthorized\"} 1"
        ),
        "{metrics}"
    );
    // The warning's echo did not restart the cycle: exactly one warning, then the close.
    assert_eq!(fake.posted(42).len(), 2);
    let (status, log) = server.terminate(WAIT);
    assert!(status.success(), "{log}");
    assert!(
        !log.contains(chatwoot::TOKEN) && !log.contains(chatwoot::WEBHOOK_SECRET),
        "{log}"
    );
}

#[test]
fn an_end_user_reply_cancels_and_a_resolve_missed_by_webhook_stops_the_warning() {
    let fake = FakeChatwoot::start();
    let push = Receiver::start(Vec::new());
    let server = start("chatwoot-cancel", &fake, &push, "10m");
    let hook = server.url("/v1/chatwoot/acme");
    for id in [7, 8] {
        fake.open(id);
        let agent = fake.write(id, "outgoing", "user", "Anything else?");
        assert_eq!(
            chatwoot::deliver(
                &hook,
                &chatwoot::message_created(&agent),
                chatwoot::WEBHOOK_SECRET
            ),
            200
        );
    }
    // 7: the contact answers. 8: resolved in Chatwoot, and the webhook never came.
    let reply = fake.write(7, "incoming", "contact", "No, thanks");
    assert_eq!(
        chatwoot::deliver(
            &hook,
            &chatwoot::message_created(&reply),
            chatwoot::WEBHOOK_SECRET
        ),
        200
    );
    fake.set_status(8, "resolved");
    server.wait_for_log(
        "nothing posted: the conversation is resolved in Chatwoot",
        1,
        WAIT,
    );
    // Past the close time of 7 as well: nothing was posted into either.
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while std::time::Instant::now() < deadline {
        assert!(fake.posted(7).is_empty() && fake.posted(8).is_empty());
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(fake.status(7).as_deref(), Some("open"));
    let (status, log) = server.terminate(WAIT);
    assert!(status.success(), "{log}");
}

#[test]
fn a_snooze_holds_the_clock_until_it_ends() {
    let fake = FakeChatwoot::start();
    let push = Receiver::start(Vec::new());
    let server = start("chatwoot-snooze", &fake, &push, "10m");
    let hook = server.url("/v1/chatwoot/acme");
    fake.open(11);
    let agent = fake.write(11, "outgoing", "user", "Let me check with the warehouse.");
    let start_s = agent.created_at;
    assert_eq!(
        chatwoot::deliver(
            &hook,
            &chatwoot::message_created(&agent),
            chatwoot::WEBHOOK_SECRET
        ),
        200
    );
    // The agent snoozes the conversation for 4 seconds: the warning due 2s after the
    // agent spoke waits for the snooze, then a new cycle gives the contact 2s again.
    let until = start_s + 4;
    fake.snooze(11, until);
    assert_eq!(
        chatwoot::deliver(
            &hook,
            &chatwoot::snoozed_until(11, until),
            chatwoot::WEBHOOK_SECRET
        ),
        200
    );
    fake.wait_until(WAIT, "the warning after the snooze", |messages, _| {
        messages
            .iter()
            .any(|m| m.conversation == 11 && m.content == "Still there?")
    });
    let warning = fake
        .posted(11)
        .into_iter()
        .find(|m| m.content == "Still there?")
        .unwrap_or_else(|| panic!("no warning"));
    assert!(
        warning.created_at >= until + 2,
        "warned at {} though snoozed until {until} (the agent spoke at {start_s})",
        warning.created_at
    );
    fake.wait_until(WAIT, "the resolve", |_, statuses| {
        statuses.get(&11).map(String::as_str) == Some("resolved")
    });
    let (status, log) = server.terminate(WAIT);
    assert!(status.success(), "{log}");
}

#[test]
fn a_failing_post_is_posted_once_and_a_revoked_token_is_final() {
    let fake = FakeChatwoot::start();
    let push = Receiver::start(Vec::new());
    let server = start("chatwoot-retry", &fake, &push, "10m");
    let hook = server.url("/v1/chatwoot/acme");
    fake.open(5);
    // As Chatwoot before 4.11.2 (our mark survives in the source id only), and the
    // first post is made but its answer is lost: the retry must find it, not repost.
    fake.drop_content_attributes();
    fake.fail_posts(&[503]);
    // Its echo, marked by the source id alone, must not restart the cycle either.
    fake.echo_to(hook.clone());
    let agent = fake.write(5, "outgoing", "user", "Hello");
    assert_eq!(
        chatwoot::deliver(
            &hook,
            &chatwoot::message_created(&agent),
            chatwoot::WEBHOOK_SECRET
        ),
        200
    );
    fake.wait_until(WAIT, "the warning", |messages, _| {
        messages
            .iter()
            .any(|m| m.conversation == 5 && m.content == "Still there?")
    });
    server.wait_for_log("nothing posted: posted by an earlier attempt", 1, WAIT);
    assert_eq!(
        fake.posted(5)
            .iter()
            .filter(|m| m.content == "Still there?")
            .count(),
        1
    );
    // The token is revoked: the closing message and the close are refused with 401,
    // reported, not retried.
    fake.revoke();
    server.wait_for_log("the platform refused the call; not retried", 2, WAIT);
    let before = fake.calls().len();
    std::thread::sleep(Duration::from_secs(2));
    let metrics = server.get("/metrics").1;
    assert!(
        metrics.contains(
            "autoclose_platform_actions_total{platform=\"chatwoot\",outcome=\"final\"} 2"
        ),
        "{metrics}"
    );
    assert_eq!(
        fake.calls().len(),
        before,
        "no call after the final refusal"
    );
    let (status, log) = server.terminate(WAIT);
    assert!(status.success(), "{log}");
}

#[test]
fn an_agent_message_whose_webhook_never_came_is_found_by_reconciliation() {
    let fake = FakeChatwoot::start();
    let push = Receiver::start(Vec::new());
    fake.open(9);
    // Written while no node was there: no webhook at all.
    fake.write(9, "outgoing", "user", "Are you there?");
    let server = start("chatwoot-reconcile", &fake, &push, "1s");
    fake.wait_until(WAIT, "the reconciled warning", |messages, _| {
        messages
            .iter()
            .any(|m| m.conversation == 9 && m.content == "Still there?")
    });
    fake.wait_until(WAIT, "the resolve", |_, statuses| {
        statuses.get(&9).map(String::as_str) == Some("resolved")
    });
    // Reconciled every second, and still one warning: the message applied once.
    assert_eq!(
        fake.posted(9)
            .iter()
            .filter(|m| m.content == "Still there?")
            .count(),
        1
    );
    let (status, log) = server.terminate(WAIT);
    assert!(status.success(), "{log}");
}
