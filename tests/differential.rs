//! Differential test: random conversations run through the component in the host and
//! through a native model that calls the same policy directly must give the same
//! actions at the same times. Both sides share the policy code, so what this checks is
//! everything around it: the contract, the glue, the host's ordering rules (events
//! before timers at the same instant, due order, ties), sessions and closes.
//!
//! On failure the shrunk scenario is printed as JSON Lines, ready for `autoclose replay`.

use std::collections::{BTreeMap, HashMap, HashSet};

use autoclose_plugin::config::TenantSettings;
use autoclose_plugin::policy::{self, Message, Pending, Plan, TimerOp};
use autoclose_tests::{CONFIG, gateway, replay_on, summary};
use proptest::prelude::*;

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const CHANNELS: [&str; 3] = ["web_chat", "http_api", "sms"];
/// Gaps chosen to land exactly on the configured times (30s, 60s, 120s, 180s, 600s).
const GAPS: [u64; 12] = [
    0, 0, 1, 999, 1_000, 29_999, 30_000, 60_000, 120_000, 180_000, 181_000, 600_000,
];

#[derive(Clone, Debug)]
enum Step {
    Open { channel: usize },
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

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => (0..CHANNELS.len()).prop_map(|channel| Step::Open { channel }),
        4 => (prop::sample::select(vec!["agent", "bot", "end_user", "system"]), prop::bool::weighted(0.1))
            .prop_map(|(sender, echo)| Step::Say { sender, echo }),
        1 => Just(Step::Presence),
        1 => Just(Step::Close),
    ]
}

fn line() -> impl Strategy<Value = Line> {
    (
        prop::sample::select(GAPS.to_vec()),
        0..TENANTS.len(),
        0..3usize,
        step(),
    )
        .prop_map(|(gap, tenant, session, step)| Line {
            gap,
            tenant,
            session,
            step,
        })
}

/// Renders the lines as a scenario; a session's first line opens it if it is not an
/// `Open` (messages need a channel).
fn render(lines: &[Line]) -> String {
    let mut at = 0;
    let mut opened = HashSet::new();
    let mut out = String::new();
    for l in lines {
        at += l.gap;
        let (tenant, session) = (TENANTS[l.tenant], format!("s{}", l.session));
        let head = format!(r#"{{"at_ms":{at},"tenant":"{tenant}","session":"{session}","#);
        if opened.insert((l.tenant, l.session)) && !matches!(l.step, Step::Open { .. }) {
            out += &format!(r#"{head}"type":"session_opened","channel":"web_chat"}}"#);
            out.push('\n');
        }
        let rest = match &l.step {
            Step::Open { channel } => format!(
                r#""type":"session_opened","channel":"{}"}}"#,
                CHANNELS[*channel]
            ),
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
        out += &head;
        out += &rest;
        out.push('\n');
    }
    out
}

/// The native model: the same policy, called directly, with the host's rules.
struct Model {
    tenants: HashMap<String, TenantSettings>,
    channels: HashMap<(String, String), String>,
    closed: HashSet<(String, String)>,
    /// (due, order) -> (tenant, session, payload)
    timers: BTreeMap<(u64, u64), (String, String, Vec<u8>)>,
    order: u64,
    out: Vec<String>,
}

impl Model {
    fn new() -> Self {
        let config: serde_json::Value =
            serde_json::from_str(CONFIG).unwrap_or_else(|e| panic!("{e}"));
        let mut tenants = HashMap::new();
        for (name, doc) in config["tenants"].as_object().into_iter().flatten() {
            let mut doc = doc.as_object().cloned().unwrap_or_default();
            let webhooks: Vec<String> = doc
                .remove("webhooks")
                .and_then(|w| serde_json::from_value(w).ok())
                .unwrap_or_default();
            let settings = autoclose_plugin::config::parse(
                &serde_json::Value::Object(doc).to_string(),
                &webhooks,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            tenants.insert(name.clone(), settings);
        }
        Model {
            tenants,
            channels: HashMap::new(),
            closed: HashSet::new(),
            timers: BTreeMap::new(),
            order: 0,
            out: Vec::new(),
        }
    }

    fn settings(&self, key: &(String, String)) -> Option<&autoclose_plugin::config::Settings> {
        let channel = self.channels.get(key)?;
        self.tenants.get(&key.0)?.channel(channel)
    }

    fn cancel(&mut self, key: &(String, String)) {
        self.timers
            .retain(|_, (t, s, _)| (&*t, &*s) != (&key.0, &key.1));
    }

    fn apply(&mut self, at: u64, key: &(String, String), plan: Plan) {
        let who = format!("{}/{}", key.0, key.1);
        if let Some((notice, _)) = &plan.post {
            self.out
                .push(format!("{at} post_message {who} {}", notice.post_kind()));
        }
        if let Some(push) = &plan.push {
            self.out
                .push(format!("{at} webhook {who} {}", push.notice.event_type()));
        }
        match plan.timer {
            Some(TimerOp::Set { due, pending }) => {
                self.cancel(key);
                self.order += 1;
                self.timers.insert(
                    (due.max(at + 1_000), self.order),
                    (key.0.clone(), key.1.clone(), pending.encode().to_vec()),
                );
            }
            Some(TimerOp::Cancel) => self.cancel(key),
            None => {}
        }
        if plan.close {
            self.out
                .push(format!("{at} close_session {who} inactivity"));
            self.closed.insert(key.clone());
            self.cancel(key);
        }
    }

    fn fire_until(&mut self, limit: u64) {
        while let Some((&(due, order), _)) = self.timers.first_key_value() {
            if due > limit {
                return;
            }
            let Some((tenant, session, payload)) = self.timers.remove(&(due, order)) else {
                return;
            };
            let key = (tenant, session);
            let plan = policy::on_timer(self.settings(&key), &payload, due);
            self.apply(due, &key, plan);
        }
    }

    fn run(mut self, scenario: &str) -> Vec<String> {
        for raw in scenario.lines() {
            let v: serde_json::Value = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{e}"));
            let at = v["at_ms"].as_u64().unwrap_or(0);
            if at > 0 {
                self.fire_until(at - 1);
            }
            let key = (
                v["tenant"].as_str().unwrap_or("").to_owned(),
                v["session"].as_str().unwrap_or("").to_owned(),
            );
            if !self.tenants.contains_key(&key.0) || self.closed.contains(&key) {
                continue;
            }
            match v["type"].as_str() {
                Some("session_opened") => {
                    self.channels
                        .insert(key, v["channel"].as_str().unwrap_or("").to_owned());
                }
                Some("message") => {
                    let sender = match v["sender"].as_str() {
                        Some("agent") => policy::Sender::Agent,
                        Some("bot") => policy::Sender::Bot,
                        Some("end_user") => policy::Sender::EndUser,
                        _ => policy::Sender::System,
                    };
                    let message = Message {
                        sender,
                        own_echo: v["origin"].as_str() == Some(policy::ORIGIN),
                        at,
                    };
                    let plan = policy::on_message(self.settings(&key), message);
                    self.apply(at, &key, plan);
                }
                Some("session_closed") => {
                    self.closed.insert(key.clone());
                    self.cancel(&key);
                }
                _ => {}
            }
        }
        self.fire_until(u64::MAX);
        self.out
    }
}

fn hosted(scenario: &str) -> Vec<String> {
    let mut gw = gateway(CONFIG).unwrap_or_else(|e| panic!("{e}"));
    summary(&replay_on(&mut gw, scenario).unwrap_or_else(|e| panic!("{e}\n{scenario}")))
        .into_iter()
        .map(|l| l.trim_end().to_owned())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_component_in_the_host_matches_the_native_model(lines in prop::collection::vec(line(), 1..40)) {
        let scenario = render(&lines);
        let native = Model::new().run(&scenario);
        let component = hosted(&scenario);
        prop_assert_eq!(&component, &native, "scenario (replayable JSON Lines):\n{}", scenario);
        // Invariants on the transcript itself.
        let mut closed = HashSet::new();
        let mut previous = 0;
        for line in &component {
            let mut parts = line.split(' ');
            let at: u64 = parts.next().and_then(|t| t.parse().ok()).unwrap_or(0);
            prop_assert!(at >= previous, "time order");
            previous = at;
            let (action, who) = (parts.next().unwrap_or(""), parts.next().unwrap_or("").to_owned());
            prop_assert!(!closed.contains(&who), "nothing after a close: {}", line);
            if action == "close_session" {
                closed.insert(who);
            }
        }
    }
}

#[test]
fn the_model_agrees_on_a_known_conversation() {
    // Guards the model itself: a plain warning-then-close cycle.
    let scenario = concat!(
        r#"{"at_ms":0,"tenant":"acme","session":"s1","type":"session_opened","channel":"web_chat"}"#,
        "\n",
        r#"{"at_ms":1000,"tenant":"acme","session":"s1","type":"message","sender":"agent"}"#,
        "\n",
    );
    let expected = vec![
        "181000 post_message acme/s1 warning",
        "181000 webhook acme/s1 chat.auto_close.warning",
        "301000 post_message acme/s1 close",
        "301000 close_session acme/s1 inactivity",
    ];
    assert_eq!(Model::new().run(scenario), expected);
    assert_eq!(hosted(scenario), expected);
    let _ = Pending::Close { closes_at: 0 };
}
