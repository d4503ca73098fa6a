//! A deliberately bad plugin. Its tenant configuration picks the misbehaviour:
//! `{"on_message": "loop" | "trap" | "trap-on-attachment" | "ignore" | "poke-first" | "grow" | "rearm" | "sleep" | "flood" | "huge" | "timers" | "resend" | "chatty" | "post", "on_configure": "ok" | "trap"}`.
//! `chatty` writes 100 warn-level log records of 4 KiB per message, each trying to
//! forge a log line with a newline, then posts `logged 100`.
//! `trap-on-attachment` posts `ok`, but traps on a message with an attachment.
//! `poke-first` posts `ok`, then `poked by <handle>` into the first session the host
//! saw (handle 0): an action on a session other than the event's.
//! `ignore` does nothing at all with a message.
//! `post` behaves: it posts `ok` for every message, so tests can see it recover.
//! `rearm` sets a timer due now and re-sets it every time it fires, posting `tick`.
//! `sleep` asks WASI to block the host thread for an hour.
//! `flood` sends 100 webhook requests per message and posts how many were accepted.
//! Every webhook outcome is posted back as `answered <status> <body>` or `failed <why>`.

#![cfg(target_arch = "wasm32")]

use std::cell::RefCell;
use std::collections::HashMap;

wit_bindgen::generate!({
    path: "../../../wit",
    world: "chat-gateway:plugin/plugin",
});

use chat_gateway::plugin::events::{
    Event, HttpOutcome, HttpResponseEvent, MessageEvent, SessionEvent, TimerEvent,
};
use chat_gateway::plugin::types::{ConfigError, Interests, MessageFields, TenantId, TenantSetup};
use chat_gateway::plugin::{chat, clock, http, logging, timers};
use exports::chat_gateway::plugin::hooks::Guest;

thread_local! {
    static MODES: RefCell<HashMap<TenantId, String>> = RefCell::new(HashMap::new());
    static WEBHOOKS: RefCell<HashMap<TenantId, String>> = RefCell::new(HashMap::new());
}

fn field<'a>(config: &'a str, name: &str) -> Option<&'a str> {
    let start = config.find(&format!("\"{name}\""))? + name.len() + 2;
    let rest = &config[start..];
    let open = rest.find('"')? + 1;
    let close = rest[open..].find('"')? + open;
    Some(&rest[open..close])
}

struct Misbehaving;

impl Guest for Misbehaving {
    fn configure(setup: TenantSetup) -> Result<Interests, ConfigError> {
        if field(&setup.config, "on_configure") == Some("trap") {
            panic!("configured to trap in configure");
        }
        let mode = field(&setup.config, "on_message")
            .unwrap_or("post")
            .to_owned();
        MODES.with_borrow_mut(|m| m.insert(setup.tenant, mode));
        if let Some(first) = setup.webhooks.first() {
            WEBHOOKS.with_borrow_mut(|w| w.insert(setup.tenant, first.clone()));
        }
        Ok(Interests {
            message_fields: MessageFields::empty(),
        })
    }

    fn on_events(events: Vec<Event>) {
        for event in events {
            match event {
                Event::Message(e) => Self::on_message(e),
                Event::Session(e) => Self::on_session_event(e),
                Event::Timer(e) => Self::on_timer(e),
                Event::HttpResponse(e) => Self::on_http_response(e),
            }
        }
    }

    fn on_message(event: MessageEvent) {
        // Does nothing, without even copying the mode: what the boundary alone costs
        // (the hook-cost bench).
        if MODES.with_borrow(|m| m.get(&event.tenant).is_some_and(|mode| mode == "ignore")) {
            return;
        }
        let mode = MODES
            .with_borrow(|m| m.get(&event.tenant).cloned())
            .unwrap_or_default();
        match mode.as_str() {
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "trap" => panic!("configured to trap on every message"),
            "trap-on-attachment" => {
                assert!(!event.has_attachment, "configured to trap on attachments");
                let _ = chat::post_message(event.session, "test", "ok");
            }
            "poke-first" => {
                // Acts on a session other than the event's: the first the host saw.
                let _ = chat::post_message(event.session, "test", "ok");
                let _ = chat::post_message(0, "test", &format!("poked by {}", event.session));
            }
            "rearm" => {
                let _ = timers::set(event.session, 1, event.at, &[]);
            }
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "flood" => {
                let webhook = WEBHOOKS
                    .with_borrow(|w| w.get(&event.tenant).cloned())
                    .unwrap_or_default();
                let sent = (0..100)
                    .filter(|_| {
                        let request = http::WebhookRequest {
                            webhook: webhook.clone(),
                            event_type: "test.flood".into(),
                            data: "{}".into(),
                            idempotency_key: None,
                            deliver_by: None,
                        };
                        http::send(event.session, &request).is_ok()
                    })
                    .count();
                let _ = chat::post_message(event.session, "test", &format!("sent {sent}"));
            }
            "resend" => resend(event.tenant, event.session),
            "chatty" => {
                for i in 0..100 {
                    let forged = format!(
                        "record {i}\nWARN forged: plugin escaped its log line {}",
                        "x".repeat(4096)
                    );
                    logging::log(logging::Level::Warn, Some(event.session), &forged);
                }
                let _ = chat::post_message(event.session, "test", "logged 100");
            }
            "huge" => {
                // A 1 MiB post, then a report of how the host answered.
                let answer = chat::post_message(event.session, "huge", &"x".repeat(1 << 20));
                let _ = chat::post_message(event.session, "test", &format!("huge: {answer:?}"));
            }
            "timers" => {
                // A million distinct timers in one hook.
                let set = (0..1_000_000u32)
                    .filter(|key| {
                        timers::set(event.session, *key, clock::now() + 3_600_000, &[]).is_ok()
                    })
                    .count();
                let _ = chat::post_message(event.session, "test", &format!("timers set: {set}"));
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => {
                let _ = chat::post_message(event.session, "test", "ok");
            }
        }
    }

    fn on_session_event(_event: SessionEvent) {}

    fn on_timer(event: TimerEvent) {
        let _ = chat::post_message(event.session, "tick", "tick");
        let _ = timers::set(event.session, event.key, event.at, &[]);
    }

    fn on_http_response(event: HttpResponseEvent) {
        let mode = MODES
            .with_borrow(|m| m.get(&event.tenant).cloned())
            .unwrap_or_default();
        if mode == "resend" {
            // Answers every outcome with another request: a loop the host must cut.
            resend(event.tenant, event.session);
            return;
        }
        let text = match event.outcome {
            HttpOutcome::Answered(answer) => {
                format!(
                    "answered {} {}",
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                )
            }
            HttpOutcome::Failed(reason) => format!("failed {reason}"),
        };
        let _ = chat::post_message(event.session, "test", &text);
    }
}

/// Sends one request to the tenant's first webhook.
fn resend(tenant: u32, session: u64) {
    let webhook = WEBHOOKS
        .with_borrow(|w| w.get(&tenant).cloned())
        .unwrap_or_default();
    let request = http::WebhookRequest {
        webhook,
        event_type: "test.resend".into(),
        data: "{}".into(),
        idempotency_key: None,
        deliver_by: None,
    };
    let _ = http::send(session, &request);
}

export!(Misbehaving);
