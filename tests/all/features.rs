//! Every per-tenant feature, shown by the scenarios in `examples/multi-tenant/` replayed
//! with the built component in the host against the realistic two-tenant config there:
//! several warnings, locales with fallback, names and times in templates,
//! presence-aware pushes, holds, queues and transfers, attachments, business hours
//! (pausing and suppressing), groups, per-channel senders, max cycles and the opt-out.
//!
//! Each expected line is `seconds-after-10:00Z action tenant/session detail text`,
//! where detail is the post kind, the webhook event or the close reason.

use std::path::Path;

use autoclose_tests::transcript;
use serde_json::Value;

/// Wednesday 2026-11-25 10:00:00 UTC, the scenarios' reference time.
const TEN_AM: u64 = 1_795_600_800_000;

fn example(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/multi-tenant")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Replays an example scenario and renders its actions (attempts left out).
fn replay(scenario: &str) -> Vec<String> {
    transcript(&example("config.json"), &example(scenario))
        .iter()
        .filter(|a| a["action"] != "webhook_attempt")
        .map(render)
        .collect()
}

fn render(a: &Value) -> String {
    let at = a["at_ms"].as_u64().unwrap_or(0);
    let when = if at >= TEN_AM {
        format!("{}", (at - TEN_AM) / 1000)
    } else {
        format!("-{}", (TEN_AM - at) / 1000)
    };
    let who = format!(
        "{}/{}",
        a["tenant"].as_str().unwrap_or("?"),
        a["session"].as_str().unwrap_or("?")
    );
    let (detail, text) = match a["action"].as_str() {
        Some("post_message") => (&a["kind"], &a["text"]),
        Some("webhook") => (&a["event"], &a["body"]["data"]["message"]),
        _ => (&a["reason"], &Value::Null),
    };
    let line = format!(
        "{when} {} {who} {} {}",
        a["action"].as_str().unwrap_or("?"),
        detail.as_str().unwrap_or(""),
        text.as_str().unwrap_or("")
    );
    line.trim_end().to_owned()
}

#[test]
fn several_warnings_locales_names_and_presence_aware_pushes() {
    let pt_close = "Esta conversa foi encerrada por falta de resposta. Escreva-nos quando quiser.";
    let en_close =
        "This chat was closed because we did not hear from you. Write to us again any time.";
    assert_eq!(
        replay("steps-and-locales.jsonl"),
        vec![
            // Reminder at 2m, in the chat only; pt-PT falls back to pt.
            "121 post_message acme/rui warning Olá Rui, ainda está por aí?".to_owned(),
            "121 post_message acme/kim warning Hi Kim, are you still with us?".to_owned(),
            // Final warning at 4m with the close time in Lisbon and the agent's name;
            // pushed to Rui (away) but not to Kim (looking at the chat).
            "241 post_message acme/rui warning Esta conversa fecha às 10:05 se não responder a Ana."
                .to_owned(),
            "241 webhook acme/rui chat.auto_close.warning Esta conversa fecha às 10:05 se não responder a Ana."
                .to_owned(),
            "241 post_message acme/kim warning This chat closes at 10:05 unless you answer Ana."
                .to_owned(),
            // The close message comes from the operator's defaults.
            format!("301 post_message acme/rui close {pt_close}"),
            format!("301 webhook acme/rui chat.auto_close.closed {pt_close}"),
            "301 close_session acme/rui inactivity".to_owned(),
            format!("301 post_message acme/kim close {en_close}"),
            "301 close_session acme/kim inactivity".to_owned(),
        ]
    );
}

#[test]
fn holds_queues_transfers_and_attachments() {
    let lines = replay("hold-and-queue.jsonl");
    let of = |session: &str| -> Vec<&str> {
        lines
            .iter()
            .filter(|l| l.contains(&format!(" acme/{session} ")))
            .map(String::as_str)
            .collect()
    };
    // A 10 minute hold from 60s: the cycle restarts when it ends (660s), so the
    // reminder comes at 780s, not at 121s.
    assert_eq!(
        of("hold").first().copied(),
        Some("780 post_message acme/hold warning Hi there, are you still with us?")
    );
    assert_eq!(
        of("hold").last().copied(),
        Some("960 close_session acme/hold inactivity")
    );
    // Transferred: the queue bot's message starts nothing; Bea's message (600s) does,
    // and her name is in the warning.
    assert_eq!(
        of("queue")[..2],
        [
            "720 post_message acme/queue warning Hi there, are you still with us?",
            "840 post_message acme/queue warning This chat closes at 10:15 unless you answer Bea.",
        ]
    );
    // An attachment from the end user is an answer.
    assert!(of("photo").is_empty(), "{lines:#?}");
}

#[test]
fn business_hours_pause_the_clock_or_keep_warnings_quiet() {
    let lines = replay("business-hours.jsonl");
    // acme (Lisbon, pause): the agent spoke at 17:57; the reminder at 17:59, then the
    // clock stops at 18:00 and resumes at 09:00 on Thursday: warning 09:01, close 09:02.
    let acme: Vec<&String> = lines.iter().filter(|l| l.contains("acme/late")).collect();
    assert_eq!(acme.len(), 6, "{lines:#?}");
    assert!(
        acme[0].starts_with("28740 post_message acme/late warning Hi there"),
        "{}",
        acme[0]
    );
    assert!(
        acme[1].starts_with("82860 post_message acme/late warning This chat closes at 09:02"),
        "{}",
        acme[1]
    );
    assert!(acme[5].starts_with("82920 close_session"), "{}", acme[5]);
    // globex (São Paulo, suppress_warnings): the bot spoke at 19:59; the warning at
    // 20:00 falls after closing time and is not sent; the close comes on time.
    let globex: Vec<&String> = lines.iter().filter(|l| l.contains("globex/")).collect();
    assert_eq!(
        globex,
        vec![
            "46920 post_message globex/night close Conversa encerrada por inatividade.",
            "46920 webhook globex/night chat.auto_close.closed Conversa encerrada por inatividade.",
            "46920 close_session globex/night inactivity",
        ]
    );
}

#[test]
fn groups_channels_and_who_starts_a_cycle() {
    let lines = replay("groups-and-channels.jsonl");
    let of = |who: &str| -> Vec<&str> {
        lines
            .iter()
            .filter(|l| l.contains(&format!(" {who} ")))
            .map(String::as_str)
            .collect()
    };
    // The billing department's longer timeline: 5m, 9m, 10m.
    let invoice = of("acme/invoice");
    assert_eq!(invoice.len(), 6, "{lines:#?}");
    assert!(invoice[0].starts_with("301 post_message acme/invoice warning Tem tempo"));
    assert!(invoice[1].starts_with(
        "541 post_message acme/invoice warning Esta conversa fecha dentro de 1 minuto(s)."
    ));
    assert!(invoice[5].starts_with("601 close_session"));
    // On http_api only agents start cycles (the defaults' channel layer): the bot at 1s
    // does not, the agent at 120s does: warning 10m later, close 15m later.
    assert_eq!(
        of("acme/api"),
        vec![
            "720 post_message acme/api warning No answer for 10 minutes: this conversation closes in 5 minutes.",
            "1020 post_message acme/api close This chat was closed because we did not hear from you. Write to us again any time.",
            "1020 close_session acme/api inactivity",
        ]
    );
    // es-MX falls back to es; the warning at 07:01 in São Paulo is before opening
    // time and stays quiet.
    assert_eq!(
        of("globex/es")[0],
        "181 post_message globex/es close Chat cerrado por inactividad."
    );
}

#[test]
fn max_cycles_and_the_opt_out_limit_auto_close() {
    let lines = replay("max-cycles-and-opt-out.jsonl");
    assert!(
        !lines.iter().any(|l| l.contains("acme/optout")),
        "{lines:#?}"
    );
    // Four idle periods, each answered after the reminder: only three are warned.
    assert_eq!(
        lines,
        vec![
            "121 post_message acme/chatty warning Hi there, are you still with us?",
            "321 post_message acme/chatty warning Hi there, are you still with us?",
            "521 post_message acme/chatty warning Hi there, are you still with us?",
        ]
    );
}
