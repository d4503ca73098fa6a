//! `autoclose test-webhook`: the "send test event" button.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use autoclose_core::event::{GatewayEvent, MessageEvent, OpenedEvent, Sender};
use autoclose_webhook::http::HttpSender;
use autoclose_webhook::outbound::Capture;
use autoclose_webhook::retry::{self, Decision};

/// The session id the simulated conversation uses.
const SESSION: &str = "autoclose-test-webhook";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Renders the push by running the tenant's component on a simulated conversation
/// (an agent message, then silence), then delivers it for real.
pub fn run(
    config_path: &Path,
    plugin: Option<&Path>,
    tenant: &str,
    channel: &str,
    warning: bool,
) -> Result<()> {
    let capture = Capture::default();
    let (mut core, config) = super::start_with(config_path, plugin, Box::new(capture.clone()))?;
    if !config.tenants.iter().any(|t| t.name == tenant) {
        bail!("{}: no tenant {tenant:?}", config_path.display());
    }
    let start = now_ms();
    let opened = GatewayEvent::SessionOpened(OpenedEvent {
        tenant: tenant.to_owned(),
        session: SESSION.to_owned(),
        channel: channel.to_owned(),
        attributes: BTreeMap::from([("locale".to_owned(), "en".to_owned())]),
        reopen: false,
    });
    let message = GatewayEvent::Message(MessageEvent {
        tenant: tenant.to_owned(),
        session: SESSION.to_owned(),
        sender: Sender::Agent,
        id: None,
        text: None,
        channel: None,
        origin: None,
        attachment: false,
        seq: None,
        sender_name: None,
    });
    core.handle(start, &opened)?;
    core.handle(start, &message)?;
    let suffix = if warning { ".warning" } else { ".closed" };
    let horizon = start + 15 * 24 * 60 * 60 * 1000;
    let attempt = loop {
        if let Some(found) = capture
            .attempts()
            .into_iter()
            .find(|a| a.event_type.ends_with(suffix))
        {
            break found;
        }
        match core.next_due() {
            Some(due) if due <= horizon => core.advance_to(due),
            _ => bail!(
                "tenant {tenant:?} sends no {} push on channel {channel:?}: check its push.webhook and {}",
                if warning { "warning" } else { "close" },
                if warning {
                    "the push switch of its warnings (warnings[i].push)"
                } else {
                    "close.push"
                }
            ),
        }
    };
    let webhook = config
        .webhooks
        .get(&attempt.webhook)
        .with_context(|| format!("webhook {:?} is not configured", attempt.webhook))?;
    println!(
        "{} via webhook {:?}: {} {}://{}{}",
        attempt.event_type,
        attempt.webhook,
        attempt.method,
        attempt.url.scheme(),
        attempt.url.host_str().unwrap_or(""),
        attempt.url.path()
    );
    println!("webhook-id: {}", attempt.id);
    println!(
        "signed: {}",
        if webhook.secrets.is_empty() {
            "no (no secret configured)".to_owned()
        } else {
            format!("yes, {} signature(s)", webhook.secrets.len())
        }
    );
    println!("body: {}", String::from_utf8_lossy(&attempt.body));
    let sender = HttpSender::new()?;
    let queued = now_ms();
    let deadline = queued + webhook.retry.deadline_ms;
    let mut number = 1;
    loop {
        let mut this = attempt.clone();
        this.number = number;
        let result = sender.send(&this);
        let now = now_ms();
        let decision = retry::decide(&webhook.retry, number, &result, now, deadline, &attempt.id);
        let outcome = decision.outcome(number);
        match decision {
            Decision::Delivered => {
                println!("attempt {number}: {result} -> {outcome}");
                return Ok(());
            }
            Decision::Retry { at } => {
                let wait = at.saturating_sub(now);
                println!(
                    "attempt {number}: {result} -> {outcome} (in {:.1}s)",
                    wait as f64 / 1000.0
                );
                std::thread::sleep(Duration::from_millis(wait));
                number += 1;
            }
            Decision::GiveUp { reason } => {
                println!("attempt {number}: {result} -> {outcome}");
                bail!("not delivered: {reason}");
            }
            Decision::Gone => {
                println!("attempt {number}: {result} -> {outcome}");
                bail!("not delivered: the receiver answered 410 Gone");
            }
        }
    }
}
