//! A deliberately bad plugin. Its tenant configuration picks the misbehaviour:
//! `{"on_message": "loop" | "trap" | "trap-on-attachment" | "ignore" | "poke-first" | "grow" | "rearm" | "sleep" | "flood" | "huge" | "timers" | "resend" | "chatty" | "post", "on_configure": "ok" | "trap" | "loop"}`.
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

use chat_gateway_sdk::{
    ConfigError, HttpOutcome, HttpResponseEvent, Level, MessageEvent, Plugin, PluginInfo, Session,
    TenantSetup, TimerEvent, WebhookRequest, export_plugin, now,
};

/// What a tenant asked this plugin to do wrong.
struct Misbehaving {
    /// The `on_message` mode.
    mode: String,
    /// The tenant's first allowed webhook, for the modes that send.
    webhook: String,
}

fn field<'a>(config: &'a str, name: &str) -> Option<&'a str> {
    let start = config.find(&format!("\"{name}\""))? + name.len() + 2;
    let rest = &config[start..];
    let open = rest.find('"')? + 1;
    let close = rest[open..].find('"')? + open;
    Some(&rest[open..close])
}

impl Plugin for Misbehaving {
    fn info() -> PluginInfo {
        PluginInfo::new(
            "misbehaving",
            "0.0.0",
            "Loops, traps, hoards memory or floods on demand, to prove the host contains it.",
        )
    }

    fn configure(setup: &TenantSetup) -> Result<Self, ConfigError> {
        if field(&setup.config, "on_configure") == Some("trap") {
            panic!("configured to trap in configure");
        }
        if field(&setup.config, "on_configure") == Some("loop") {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        Ok(Misbehaving {
            mode: field(&setup.config, "on_message")
                .unwrap_or("post")
                .to_owned(),
            webhook: setup.webhooks.first().cloned().unwrap_or_default(),
        })
    }

    fn on_message(&mut self, event: MessageEvent) {
        let session = event.session();
        match self.mode.as_str() {
            // Does nothing at all: what the boundary alone costs (the hook-cost bench).
            "ignore" => {}
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "trap" => panic!("configured to trap on every message"),
            "trap-on-attachment" => {
                assert!(!event.has_attachment, "configured to trap on attachments");
                let _ = session.post("test", "ok");
            }
            "poke-first" => {
                // Acts on a session other than the event's: the first the host saw.
                let _ = session.post("test", "ok");
                let _ = Session::from_id(0).post("test", &format!("poked by {}", event.session));
            }
            "rearm" => {
                let _ = session.set_timer(1, event.at, &[]);
            }
            "sleep" => std::thread::sleep(std::time::Duration::from_secs(3600)),
            "flood" => {
                let sent = (0..100)
                    .filter(|_| {
                        let request =
                            WebhookRequest::new(&self.webhook, "test.flood", "{}".to_owned());
                        session.send(&request).is_ok()
                    })
                    .count();
                let _ = session.post("test", &format!("sent {sent}"));
            }
            "resend" => self.resend(session),
            "chatty" => {
                for i in 0..100 {
                    let forged = format!(
                        "record {i}\nWARN forged: plugin escaped its log line {}",
                        "x".repeat(4096)
                    );
                    session.log(Level::Warn, &forged);
                }
                let _ = session.post("test", "logged 100");
            }
            "huge" => {
                // A 1 MiB post, then a report of how the host answered.
                let answer = session.post("huge", &"x".repeat(1 << 20));
                let _ = session.post("test", &format!("huge: {answer:?}"));
            }
            "timers" => {
                // A million distinct timers in one hook.
                let set = (0..1_000_000u32)
                    .filter(|key| session.set_timer(*key, now() + 3_600_000, &[]).is_ok())
                    .count();
                let _ = session.post("test", &format!("timers set: {set}"));
            }
            "grow" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            _ => {
                let _ = session.post("test", "ok");
            }
        }
    }

    fn on_timer(&mut self, event: TimerEvent) {
        let _ = event.session().post("tick", "tick");
        let _ = event.session().set_timer(event.key, event.at, &[]);
    }

    fn on_http_response(&mut self, event: HttpResponseEvent) {
        if self.mode == "resend" {
            // Answers every outcome with another request: a loop the host must cut.
            self.resend(event.session());
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
        let _ = Session::from_id(event.session).post("test", &text);
    }
}

impl Misbehaving {
    /// Sends one request to the tenant's first webhook.
    fn resend(&self, session: Session) {
        let request = WebhookRequest::new(&self.webhook, "test.resend", "{}".to_owned());
        let _ = session.send(&request);
    }
}

export_plugin!(Misbehaving);
