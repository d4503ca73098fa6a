//! Differential test: random conversations run through the component in the host and
//! through a native model that calls the same policy directly must give the same
//! actions, with the same texts, at the same times. Both sides share the policy code,
//! so what this checks is everything around it: the contract, the glue, the host's
//! ordering rules (events before timers at the same instant, due order, ties), the
//! session state and attributes the host keeps for the plugin, presence, holds and
//! queues, sessions and closes. The configuration uses every layer and most features:
//! defaults, channel and group layers, several warnings, locales, names, presence-aware
//! pushes, `started_by`, `max_cycles`, an opt-out and business hours.
//!
//! On failure the shrunk scenario is printed as JSON Lines, ready for `autoclose replay`.

use std::collections::{BTreeMap, HashMap, HashSet};

use autoclose_plugin::config::TenantSettings;
use autoclose_plugin::policy::{
    self, Change, Fire, Message, Pending, Plan, Presence, SessionState, TimerOp,
};
use autoclose_tests::{replay_on, start_core, transcript_text};
use proptest::prelude::*;
use serde_json::Value;

/// Every layer and most features, with times that the gaps below land on.
const DIFF_CONFIG: &str = r#"{
  "webhooks": {"mobile-push": {"url": "https://push.example.com/hook"}},
  "defaults": {"auto_close": {"close": {"after": "10m", "message": {"default": "Closed.", "pt": "Fechado."}}}},
  "tenants": {
    "acme": {"webhooks": ["mobile-push"],
      "auto_close": {"push": {"webhook": "mobile-push", "only_when_away": true}, "max_cycles": 2,
                     "attributes": {"opt_out": "opt_out"}},
      "channels": {
        "web_chat": {"auto_close": {
          "warnings": [
            {"after": "30s", "message": "Hi {{end_user_name|there}}, still there?"},
            {"after": "1m", "push": true,
             "message": {"default": "{{agent_name|We}} will close in {{seconds_left}}s", "pt": "Fecha em {{seconds_left}}s"}}],
          "close": {"after": "2m", "push": true}}},
        "http_api": {"auto_close": {"started_by": ["agent"], "close": {"after": "3m"}}},
        "sms": {"auto_close": {"enabled": false}}},
      "group_attribute": "department",
      "groups": {"vip": {"auto_close": {"warnings": [{"after": "3m", "message": "VIP check-in at {{closes_at}}"}],
                                         "close": {"after": "10m"}}}}},
    "globex": {"webhooks": ["mobile-push"],
      "auto_close": {"started_by": ["bot"],
                     "warnings": [{"after": "1m", "message": "w {{tenant}}", "push": true}],
                     "close": {"after": "1m30s", "push": true},
                     "push": {"webhook": "mobile-push"},
                     "business_hours": {"weekly": {"thu": ["00:00-00:05", "00:10-24:00"]}}}},
    "initech": {"webhooks": []}
  }
}"#;

const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
const CHANNELS: [&str; 3] = ["web_chat", "http_api", "sms"];
/// Gaps chosen to land exactly on the configured times (30s, 60s, 90s, 120s, 180s, 600s).
const GAPS: [u64; 13] = [
    0, 0, 1, 999, 1_000, 29_999, 30_000, 60_000, 90_000, 120_000, 180_000, 181_000, 600_000,
];

#[derive(Clone, Debug)]
enum Step {
    Open {
        channel: usize,
        locale: Option<&'static str>,
        name: Option<&'static str>,
        department: Option<&'static str>,
        opt_out: bool,
    },
    Say {
        sender: &'static str,
        echo: bool,
        name: Option<&'static str>,
    },
    Presence(bool),
    Hold(Option<&'static str>),
    Queued,
    Transferred,
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
    let maybe = |values: Vec<&'static str>| prop::option::of(prop::sample::select(values));
    prop_oneof![
        2 => (0..CHANNELS.len(), maybe(vec!["pt-BR", "pt", "en"]), maybe(vec!["Rui", ""]),
              maybe(vec!["vip", "sales"]), prop::bool::weighted(0.1))
            .prop_map(|(channel, locale, name, department, opt_out)| Step::Open {
                channel, locale, name, department, opt_out,
            }),
        6 => (prop::sample::select(vec!["agent", "bot", "end_user", "system"]), prop::bool::weighted(0.1),
              maybe(vec!["Ana", "Bot 9"]))
            .prop_map(|(sender, echo, name)| Step::Say { sender, echo, name }),
        1 => prop::bool::ANY.prop_map(Step::Presence),
        1 => maybe(vec!["30s", "2m"]).prop_map(Step::Hold),
        1 => Just(Step::Queued),
        1 => Just(Step::Transferred),
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
        let mut event = serde_json::json!({"at_ms": at, "tenant": tenant, "session": session});
        if opened.insert((l.tenant, l.session)) && !matches!(l.step, Step::Open { .. }) {
            let mut open = event.clone();
            open["type"] = "session_opened".into();
            open["channel"] = "web_chat".into();
            out += &format!("{open}\n");
        }
        match &l.step {
            Step::Open {
                channel,
                locale,
                name,
                department,
                opt_out,
            } => {
                event["type"] = "session_opened".into();
                event["channel"] = CHANNELS[*channel].into();
                let mut attributes = serde_json::Map::new();
                for (key, value) in [
                    ("locale", locale),
                    ("name", name),
                    ("department", department),
                ] {
                    if let Some(value) = value {
                        attributes.insert(key.to_owned(), (*value).into());
                    }
                }
                if *opt_out {
                    attributes.insert("opt_out".to_owned(), "yes".into());
                }
                event["attributes"] = Value::Object(attributes);
            }
            Step::Say { sender, echo, name } => {
                event["type"] = "message".into();
                event["sender"] = (*sender).into();
                if *echo {
                    event["origin"] = "autoclose".into();
                }
                if let Some(name) = name {
                    event["sender_name"] = (*name).into();
                }
            }
            Step::Presence(hidden) => {
                event["type"] = "presence".into();
                event["state"] = if *hidden { "hidden" } else { "visible" }.into();
            }
            Step::Hold(duration) => {
                event["type"] = "hold".into();
                if let Some(duration) = duration {
                    event["for"] = (*duration).into();
                }
            }
            Step::Queued => event["type"] = "queued".into(),
            Step::Transferred => event["type"] = "transferred".into(),
            Step::Close => event["type"] = "session_closed".into(),
        }
        out += &format!("{event}\n");
    }
    out
}

#[derive(Default)]
struct SessionModel {
    channel: String,
    attributes: Vec<(String, String)>,
    presence: Option<bool>,
    state: SessionState,
}

/// The native model: the same policy, called directly, with the host's rules.
struct Model {
    tenants: HashMap<String, TenantSettings>,
    sessions: HashMap<(String, String), SessionModel>,
    closed: HashSet<(String, String)>,
    /// (due, order) -> (tenant, session, payload)
    timers: BTreeMap<(u64, u64), (String, String, Vec<u8>)>,
    order: u64,
    out: Vec<String>,
}

impl Model {
    fn new() -> Self {
        let config: Value = serde_json::from_str(DIFF_CONFIG).unwrap_or_else(|e| panic!("{e}"));
        let defaults = config["defaults"].to_string();
        let mut tenants = HashMap::new();
        for (name, doc) in config["tenants"].as_object().into_iter().flatten() {
            let mut doc = doc.as_object().cloned().unwrap_or_default();
            let webhooks: Vec<String> = doc
                .remove("webhooks")
                .and_then(|w| serde_json::from_value(w).ok())
                .unwrap_or_default();
            let settings = autoclose_plugin::config::parse(
                &Value::Object(doc).to_string(),
                &defaults,
                &webhooks,
            )
            .unwrap_or_else(|e| panic!("{e}"));
            tenants.insert(name.clone(), settings);
        }
        Model {
            tenants,
            sessions: HashMap::new(),
            closed: HashSet::new(),
            timers: BTreeMap::new(),
            order: 0,
            out: Vec::new(),
        }
    }

    fn settings(&self, key: &(String, String)) -> Option<&autoclose_plugin::config::Settings> {
        let session = self.sessions.get(key)?;
        let tenant = self.tenants.get(&key.0)?;
        let group = tenant.group_attribute().and_then(|name| {
            session
                .attributes
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        });
        tenant.get(&session.channel, group)
    }

    fn cancel(&mut self, key: &(String, String)) {
        self.timers
            .retain(|_, (t, s, _)| (&*t, &*s) != (&key.0, &key.1));
    }

    fn apply(&mut self, at: u64, key: &(String, String), plan: Plan) {
        let who = format!("{}/{}", key.0, key.1);
        if let Some(state) = plan.state
            && let Some(session) = self.sessions.get_mut(key)
        {
            session.state = state;
        }
        if let Some((notice, text)) = &plan.post {
            self.out.push(format!(
                "{at} post_message {who} {} {text}",
                notice.post_kind()
            ));
        }
        if let Some(push) = &plan.push {
            self.out.push(format!(
                "{at} webhook {who} {} {}",
                push.notice.event_type(),
                push.message
            ));
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
            self.close(key);
        }
    }

    fn close(&mut self, key: &(String, String)) {
        self.closed.insert(key.clone());
        self.cancel(key);
        if let Some(session) = self.sessions.get_mut(key) {
            session.state = SessionState::default();
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
            let Some(session) = self.sessions.get(&key) else {
                continue;
            };
            let fire = Fire {
                now: due,
                state: session.state,
                attributes: &session.attributes,
                presence: match session.presence {
                    None => Presence::Unknown,
                    Some(true) => Presence::Hidden,
                    Some(false) => Presence::Visible,
                },
                tenant: &key.0,
            };
            let plan = policy::on_timer(self.settings(&key), &payload, fire);
            self.apply(due, &key, plan);
        }
    }

    fn run(mut self, scenario: &str) -> Vec<String> {
        for raw in scenario.lines() {
            let v: Value = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{e}"));
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
            let change = match v["type"].as_str() {
                Some("session_opened") => {
                    let session = self.sessions.entry(key).or_default();
                    session.channel = v["channel"].as_str().unwrap_or("").to_owned();
                    session.attributes = v["attributes"]
                        .as_object()
                        .into_iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned()))
                        .collect();
                    session.attributes.sort();
                    continue;
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
                        sender_name: v["sender_name"].as_str(),
                    };
                    let state = self.sessions.get(&key).map(|s| s.state).unwrap_or_default();
                    let plan = policy::on_message(self.settings(&key), message, state);
                    self.apply(at, &key, plan);
                    continue;
                }
                Some("presence") => {
                    if let Some(session) = self.sessions.get_mut(&key) {
                        session.presence = Some(v["state"] == "hidden");
                    }
                    continue;
                }
                Some("session_closed") => {
                    self.close(&key);
                    continue;
                }
                Some("hold") => Change::Hold(v["for"].as_str().map(|d| {
                    at + autoclose_duration::Duration::parse(d)
                        .unwrap_or_else(|e| panic!("{e}"))
                        .as_ms()
                })),
                Some("queued") => Change::Queued,
                Some("transferred") => Change::Transferred,
                _ => continue,
            };
            let state = self.sessions.get(&key).map(|s| s.state).unwrap_or_default();
            let plan = policy::on_change(change, at, state);
            self.apply(at, &key, plan);
        }
        self.fire_until(u64::MAX);
        self.out
    }
}

/// The transcript of the component in the host, in the model's notation.
fn hosted(scenario: &str) -> Vec<String> {
    let mut gw = start_core(DIFF_CONFIG).unwrap_or_else(|e| panic!("{e}"));
    let transcript = replay_on(&mut gw, scenario).unwrap_or_else(|e| panic!("{e}\n{scenario}"));
    transcript
        .iter()
        .filter_map(|a| {
            let who = format!(
                "{}/{}",
                a["tenant"].as_str().unwrap_or("?"),
                a["session"].as_str().unwrap_or("?")
            );
            let at = &a["at_ms"];
            match a["action"].as_str()? {
                "post_message" => Some(format!(
                    "{at} post_message {who} {} {}",
                    a["kind"].as_str().unwrap_or("?"),
                    a["text"].as_str().unwrap_or("?")
                )),
                "webhook" => Some(format!(
                    "{at} webhook {who} {} {}",
                    a["event"].as_str().unwrap_or("?"),
                    a["body"]["data"]["message"].as_str().unwrap_or("?")
                )),
                "close_session" => Some(format!(
                    "{at} close_session {who} {}",
                    a["reason"].as_str().unwrap_or("?")
                )),
                _ => None,
            }
        })
        .collect()
}

proptest! {
    // Thousands of scenarios, as the differential check promises: about 30 s in a
    // debug build on two cores.
    #![proptest_config(ProptestConfig { cases: 3_000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_component_in_the_host_matches_the_native_model(lines in prop::collection::vec(line(), 1..40)) {
        let scenario = render(&lines);
        let native = Model::new().run(&scenario);
        let component = hosted(&scenario);
        prop_assert_eq!(&component, &native, "scenario (replayable JSON Lines):\n{}", scenario);
        // Batching is invisible: the whole transcript, webhook attempts and all, is
        // byte for byte the one of a replay with every event in a call of its own.
        let (batched, _) = transcript_text(DIFF_CONFIG, &scenario, true);
        let (one_by_one, _) = transcript_text(DIFF_CONFIG, &scenario, false);
        prop_assert_eq!(batched, one_by_one, "scenario (replayable JSON Lines):\n{}", scenario);
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
    // Guards the model itself: two warnings (the second pushed, the user being away),
    // a hold, then the close.
    let scenario = concat!(
        r#"{"at_ms":0,"tenant":"acme","session":"s1","type":"session_opened","channel":"web_chat","attributes":{"locale":"pt-BR","name":"Rui"}}"#,
        "\n",
        r#"{"at_ms":1000,"tenant":"acme","session":"s1","type":"message","sender":"agent","sender_name":"Ana"}"#,
        "\n",
        r#"{"at_ms":2000,"tenant":"acme","session":"s1","type":"hold","for":"30s"}"#,
        "\n",
    );
    let expected = vec![
        "62000 post_message acme/s1 warning Hi Rui, still there?",
        "92000 post_message acme/s1 warning Fecha em 60s",
        "92000 webhook acme/s1 chat.auto_close.warning Fecha em 60s",
        "152000 post_message acme/s1 close Fechado.",
        "152000 webhook acme/s1 chat.auto_close.closed Fechado.",
        "152000 close_session acme/s1 inactivity",
    ];
    assert_eq!(Model::new().run(scenario), expected);
    assert_eq!(hosted(scenario), expected);
    let _ = Pending::Resume { agent_name: None };
}
