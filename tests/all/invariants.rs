//! Invariants of the auto-close rules over random conversations and random
//! configurations (within the configuration's bounds), through the built component in
//! the real host.
//!
//! For every generated case:
//! - the transcript is in time order and the same scenario gives the same bytes twice;
//! - every session's actions are the same whether it runs alone or among the others
//!   (sessions and tenants never influence each other);
//! - a session is closed for inactivity at most once, and nothing happens to it at or
//!   after a close by the gateway or after its own close;
//! - every warning and every close follows the session's last agent/bot message at
//!   exactly the configured times, with no end-user message since (an end-user
//!   message cancels what is pending; echoes and system messages change nothing);
//! - and conversely, a session whose last agent/bot message is followed by nothing
//!   is warned (when configured) and closed at exactly those times.
//!
//! On failure the shrunk case is printed: the configuration and the scenario as JSON
//! Lines, ready for `autoclose replay --config CONFIG SCENARIO`.

use std::collections::BTreeMap;

use autoclose_tests::{replay_on, start_core};
use proptest::prelude::*;
use serde_json::{Value, json};

const TENANTS: [&str; 2] = ["t0", "t1"];
const CHANNELS: [&str; 2] = ["web_chat", "http_api"];
/// Durations in seconds, small so that generated gaps land exactly on them.
const SECONDS: [u64; 5] = [1, 2, 3, 30, 60];
/// Gaps between lines in ms: ties (0), near misses and exact hits of the durations.
const GAPS: [u64; 10] = [0, 0, 1, 999, 1_000, 2_000, 3_000, 29_999, 30_000, 60_000];

#[derive(Clone, Debug)]
struct ChannelCfg {
    enabled: bool,
    /// Idle seconds before the warning, if any.
    warning_s: Option<u64>,
    /// Seconds from the warning (or, without one, from the cycle's start) to the
    /// close; the config's `close.after` is `warning_s + close_s`.
    close_s: u64,
    push_warning: bool,
    push_close: bool,
}

fn channel_cfg() -> impl Strategy<Value = ChannelCfg> {
    (
        prop::bool::weighted(0.85),
        prop::option::of(prop::sample::select(SECONDS.to_vec())),
        prop::sample::select(SECONDS.to_vec()),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(enabled, warning_s, close_s, push_warning, push_close)| ChannelCfg {
                enabled,
                warning_s,
                close_s,
                push_warning: push_warning && warning_s.is_some(),
                push_close,
            },
        )
}

#[derive(Clone, Debug)]
enum Step {
    Say { sender: &'static str, echo: bool },
    Presence,
    Close,
}

#[derive(Clone, Debug)]
struct Line {
    gap: u64,
    tenant: usize,
    session: usize,
    step: Step,
}

fn line() -> impl Strategy<Value = Line> {
    let step = prop_oneof![
        6 => (prop::sample::select(vec!["agent", "bot", "end_user", "system"]), prop::bool::weighted(0.1))
            .prop_map(|(sender, echo)| Step::Say { sender, echo }),
        1 => Just(Step::Presence),
        1 => Just(Step::Close),
    ];
    (
        prop::sample::select(GAPS.to_vec()),
        0..TENANTS.len(),
        0..3usize,
        step,
    )
        .prop_map(|(gap, tenant, session, step)| Line {
            gap,
            tenant,
            session,
            step,
        })
}

/// A generated case: per (tenant, channel) settings, a channel per session, lines.
#[derive(Clone, Debug)]
struct Case {
    channels: Vec<ChannelCfg>,
    session_channel: Vec<usize>,
    lines: Vec<Line>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(channel_cfg(), TENANTS.len() * CHANNELS.len()),
        prop::collection::vec(0..CHANNELS.len(), TENANTS.len() * 3),
        prop::collection::vec(line(), 1..30),
    )
        .prop_map(|(channels, session_channel, lines)| Case {
            channels,
            session_channel,
            lines,
        })
}

impl Case {
    fn cfg(&self, tenant: usize, session: usize) -> &ChannelCfg {
        let channel = self.session_channel[tenant * 3 + session];
        &self.channels[tenant * CHANNELS.len() + channel]
    }

    fn config(&self) -> String {
        let mut tenants = serde_json::Map::new();
        for (t, tenant) in TENANTS.iter().enumerate() {
            let mut channels = serde_json::Map::new();
            for (c, channel) in CHANNELS.iter().enumerate() {
                let cfg = &self.channels[t * CHANNELS.len() + c];
                let auto_close = if !cfg.enabled {
                    json!({"enabled": false})
                } else {
                    let close_s = cfg.warning_s.unwrap_or(0) + cfg.close_s;
                    let mut close = json!({"after": format!("{close_s}s"), "message": "closed"});
                    if cfg.push_close {
                        close["push"] = json!(true);
                    }
                    let mut a = json!({"close": close, "push": {"webhook": "push"}});
                    if let Some(w) = cfg.warning_s {
                        let mut warning =
                            json!({"after": format!("{w}s"), "message": "still there?"});
                        if cfg.push_warning {
                            warning["push"] = json!(true);
                        }
                        a["warnings"] = json!([warning]);
                    }
                    a
                };
                channels.insert((*channel).to_owned(), json!({ "auto_close": auto_close }));
            }
            tenants.insert(
                (*tenant).to_owned(),
                json!({"webhooks": ["push"], "channels": channels}),
            );
        }
        json!({"webhooks": {"push": {"url": "https://push.example.com/hook"}}, "tenants": tenants})
            .to_string()
    }

    /// (at_ms, tenant, session, JSON line) in order; a session's first line opens it.
    fn events(&self) -> Vec<(u64, usize, usize, String)> {
        let mut at = 0;
        let mut opened = std::collections::HashSet::new();
        let mut out = Vec::new();
        for l in &self.lines {
            at += l.gap;
            let (tenant, session) = (TENANTS[l.tenant], format!("s{}", l.session));
            let head = format!(r#"{{"at_ms":{at},"tenant":"{tenant}","session":"{session}","#);
            if opened.insert((l.tenant, l.session)) {
                let channel = CHANNELS[self.session_channel[l.tenant * 3 + l.session]];
                out.push((
                    at,
                    l.tenant,
                    l.session,
                    format!(r#"{head}"type":"session_opened","channel":"{channel}"}}"#),
                ));
            }
            let rest = match &l.step {
                Step::Say { sender, echo: true } => {
                    format!(r#""type":"message","sender":"{sender}","origin":"autoclose"}}"#)
                }
                Step::Say {
                    sender,
                    echo: false,
                } => format!(r#""type":"message","sender":"{sender}"}}"#),
                Step::Presence => r#""type":"presence","state":"hidden"}"#.to_owned(),
                Step::Close => r#""type":"session_closed"}"#.to_owned(),
            };
            out.push((at, l.tenant, l.session, format!("{head}{rest}")));
        }
        out
    }
}

fn scenario_text(events: &[(u64, usize, usize, String)]) -> String {
    events.iter().map(|e| format!("{}\n", e.3)).collect()
}

fn run(config: &str, scenario: &str) -> (String, Vec<Value>) {
    let mut gw = start_core(config).unwrap_or_else(|e| panic!("{e}\n{config}"));
    let lines = replay_on(&mut gw, scenario).unwrap_or_else(|e| panic!("{e}\n{scenario}"));
    let text = lines
        .iter()
        .map(Value::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    (text, lines)
}

/// The non-attempt actions of `tenant`/`session`, as `at kind` strings.
fn actions_of(transcript: &[Value], tenant: &str, session: &str) -> Vec<(u64, String)> {
    transcript
        .iter()
        .filter(|a| a["tenant"] == tenant && a["session"] == session)
        .filter(|a| a["action"] != "webhook_attempt")
        .map(|a| {
            let at = a["at_ms"].as_u64().unwrap_or(0);
            let what = match a["action"].as_str() {
                Some("post_message") => format!("post/{}", a["kind"].as_str().unwrap_or("?")),
                Some("webhook") => format!("push/{}", a["event"].as_str().unwrap_or("?")),
                Some(other) => other.to_owned(),
                None => "?".into(),
            };
            (at, what)
        })
        .collect()
}

/// What a session's own input lines say, in order: (at, kind) where kind is
/// `start`, `cancel`, `closed` or `other`.
fn inputs_of(case: &Case, tenant: usize, session: usize) -> Vec<(u64, &'static str)> {
    let mut at = 0;
    let mut out = Vec::new();
    for l in &case.lines {
        at += l.gap;
        if (l.tenant, l.session) != (tenant, session) {
            continue;
        }
        let kind = match &l.step {
            Step::Say { echo: true, .. }
            | Step::Say {
                sender: "system", ..
            } => "other",
            Step::Say {
                sender: "end_user", ..
            } => "cancel",
            Step::Say { .. } => "start",
            Step::Close => "closed",
            Step::Presence => "other",
        };
        out.push((at, kind));
    }
    out
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let config = case.config();
    let events = case.events();
    let scenario = scenario_text(&events);
    let (first, transcript) = run(&config, &scenario);
    let (second, _) = run(&config, &scenario);
    prop_assert_eq!(
        &first,
        &second,
        "the same scenario must give the same bytes"
    );
    let times: Vec<u64> = transcript
        .iter()
        .filter_map(|a| a["at_ms"].as_u64())
        .collect();
    prop_assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order");

    let mut sessions: BTreeMap<(usize, usize), ()> = BTreeMap::new();
    for e in &events {
        sessions.insert((e.1, e.2), ());
    }
    for &(t, s) in sessions.keys() {
        let (tenant, session) = (TENANTS[t], format!("s{s}"));
        let together = actions_of(&transcript, tenant, &session);
        // Alone: only this session's lines.
        let own: Vec<_> = events
            .iter()
            .filter(|e| (e.1, e.2) == (t, s))
            .cloned()
            .collect();
        let (_, alone) = run(&config, &scenario_text(&own));
        prop_assert_eq!(
            &together,
            &actions_of(&alone, tenant, &session),
            "{}/{} differs when run alone",
            tenant,
            &session
        );

        let cfg = case.cfg(t, s);
        let inputs = inputs_of(case, t, s);
        let gateway_close = inputs.iter().find(|i| i.1 == "closed").map(|i| i.0);
        let closes: Vec<u64> = together
            .iter()
            .filter(|a| a.1 == "close_session")
            .map(|a| a.0)
            .collect();
        prop_assert!(closes.len() <= 1, "{}/{} closed twice", tenant, &session);
        if let Some(closed_at) = gateway_close {
            prop_assert!(
                together.iter().all(|a| a.0 < closed_at),
                "{}/{}: an action at or after the gateway's close at {}",
                tenant,
                &session,
                closed_at
            );
        }
        if let Some(&own_close) = closes.first() {
            prop_assert!(
                together.iter().all(|a| a.0 <= own_close),
                "{}/{}: an action after its own close",
                tenant,
                &session
            );
        }
        if !cfg.enabled {
            prop_assert!(
                together.is_empty(),
                "{}/{}: channel is disabled",
                tenant,
                &session
            );
            continue;
        }
        let warning_ms = cfg.warning_s.map(|w| w * 1000);
        let close_ms = cfg.close_s * 1000;
        // Every warning and close follows the last start at exactly the configured time.
        for (at, what) in &together {
            let offset = match what.as_str() {
                "post/warning" | "push/chat.auto_close.warning" => warning_ms,
                "post/close" | "close_session" | "push/chat.auto_close.closed" => {
                    Some(warning_ms.unwrap_or(0) + close_ms)
                }
                _ => None,
            };
            let Some(offset) = offset else {
                prop_assert!(false, "{}/{}: unexpected action {}", tenant, &session, what);
                continue;
            };
            // Every input at or before `at` was handled before the timer at `at`.
            let before: Vec<_> = inputs.iter().filter(|i| i.0 <= *at).collect();
            let last_start = before.iter().rposition(|i| i.1 == "start");
            let Some(last_start) = last_start else {
                prop_assert!(
                    false,
                    "{}/{}: {} without any agent message",
                    tenant,
                    &session,
                    what
                );
                continue;
            };
            prop_assert!(
                before[last_start + 1..]
                    .iter()
                    .all(|i| i.1 != "cancel" && i.1 != "closed"),
                "{}/{}: {} at {} after an end-user message or a close",
                tenant,
                &session,
                what,
                at
            );
            prop_assert_eq!(
                *at,
                before[last_start].0 + offset,
                "{}/{}: {} not at the configured time after the last agent message",
                tenant,
                &session,
                what
            );
        }
        // Conversely: a last start followed by nothing leads to the full cycle.
        if let Some(last) = inputs.iter().rposition(|i| i.1 == "start") {
            let quiet_after = inputs[last + 1..].iter().all(|i| i.1 == "other");
            let closed_before = closes.first().is_some_and(|c| *c <= inputs[last].0)
                || inputs[..last].iter().any(|i| i.1 == "closed");
            if quiet_after && !closed_before {
                let start = inputs[last].0;
                let close_at = start + warning_ms.unwrap_or(0) + close_ms;
                prop_assert_eq!(
                    closes.first().copied(),
                    Some(close_at),
                    "{}/{}: not closed {} ms after its last agent message at {}",
                    tenant,
                    &session,
                    close_at - start,
                    start
                );
                if let Some(w) = warning_ms {
                    prop_assert!(
                        together.contains(&(start + w, "post/warning".to_owned())),
                        "{}/{}: not warned",
                        tenant,
                        &session
                    );
                }
            }
        }
    }
    Ok(())
}

/// Runs [`check`] on random cases; on failure prints the shrunk case as a config and a
/// replayable scenario, then fails with proptest's reason.
#[test]
fn the_rules_hold_for_random_conversations_and_configurations() {
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    if let Err(error) = runner.run(&case(), |case| check(&case)) {
        if let proptest::test_runner::TestError::Fail(_, case) = &error {
            eprintln!(
                "--- config (JSON):\n{}\n--- scenario (JSON Lines, for autoclose replay --config CONFIG SCENARIO):\n{}",
                case.config(),
                scenario_text(&case.events())
            );
        }
        panic!("{error}");
    }
}
