//! A generator of realistic scenarios, for load figures and soak tests: many sessions
//! across tenants and channels, agents answering, end users replying late or never,
//! some chats closed by people, some left to the plugin.

use std::collections::BTreeMap;
use std::io::Write;

use serde_json::Value;

use autoclose_core::event::{
    ClosedEvent, GatewayEvent, MessageEvent, OpenedEvent, PresenceEvent, Sender, Visibility,
};

/// What to generate.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Number of sessions.
    pub sessions: usize,
    /// Tenants, used round-robin.
    pub tenants: Vec<String>,
    /// Channels, used round-robin (offset from the tenants).
    pub channels: Vec<String>,
    /// Seed: the same spec gives the same bytes.
    pub seed: u64,
    /// Sessions start spread over this many milliseconds.
    pub spread_ms: u64,
    /// Most agent-and-end-user exchanges in a session (at least 1); each session has
    /// between 1 and this many, unless the end user goes quiet first.
    pub max_rounds: u64,
    /// Chance, in percent, that the end user answers a round (and the next one starts).
    pub reply_percent: u64,
    /// How long an end user who answers takes.
    pub replies: Replies,
    /// Sessions start mostly in business hours (09:00 to 17:00 of the virtual day, less
    /// in the evening and early morning, few at night) instead of evenly: with a
    /// spread of a day or more, the closes by hour of day look like a contact centre's.
    pub business_hours: bool,
}

/// How long an end user who answers takes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Replies {
    /// Evenly between 5 s and 4 minutes (the generator's first model, kept so that
    /// files made with it stay reproducible).
    #[default]
    Uniform,
    /// As people answer: most within a minute, a long tail past typical warnings
    /// (1 to 5 minutes) and closes (5 to 20 minutes), so that a 5-minute and a
    /// 10-minute close differ ([`realistic_reply_ms`]).
    Realistic,
}

/// A reply time drawn the way people answer a chat: 70% within 5 to 60 s, 20% within
/// 1 to 5 minutes, 10% within 5 to 20 minutes (each evenly within its band). Those who
/// never answer are the rounds `reply_percent` leaves unanswered.
pub fn realistic_reply_ms(rng: &mut Rng) -> u64 {
    match rng.range(0, 100) {
        0..70 => rng.range(5_000, 60_000),
        70..90 => rng.range(60_000, 300_000),
        _ => rng.range(300_000, 1_200_000),
    }
}

/// The weight, in percent, of a session starting at `at_ms` of the virtual clock
/// (hour of the day, UTC) with business hours on.
pub fn business_weight(at_ms: u64) -> u64 {
    match (at_ms / 3_600_000) % 24 {
        9..17 => 100,
        7..9 | 17..20 => 30,
        _ => 5,
    }
}

/// A start time within `spread_ms`, weighted by [`business_weight`] (rejection
/// sampling, at most 64 draws).
fn business_start(rng: &mut Rng, spread_ms: u64) -> u64 {
    let mut at = 0;
    for _ in 0..64 {
        at = rng.range(0, spread_ms.max(1));
        if rng.range(0, 100) < business_weight(at) {
            break;
        }
    }
    at
}

impl Spec {
    /// The CLI's defaults (seed 1, an hour's spread, up to 4 rounds, 65% replies): about
    /// 4.7 events per session.
    pub fn new(sessions: usize, tenants: Vec<String>, channels: Vec<String>) -> Spec {
        Spec {
            sessions,
            tenants,
            channels,
            seed: 1,
            spread_ms: 3_600_000,
            max_rounds: 4,
            reply_percent: 65,
            replies: Replies::Uniform,
            business_hours: false,
        }
    }
}

/// SplitMix64: a tiny, well-known generator; enough for reproducible test data (the
/// generator here, the fuzz smoke test's mutations).
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `low..high` (`high > low`).
    pub fn range(&mut self, low: u64, high: u64) -> u64 {
        low + self.next_u64() % (high - low)
    }

    /// Uniform in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// True with probability `percent`%.
    fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }
}

/// Writes the scenario as JSON Lines, in time order; returns the number of lines.
pub fn generate(spec: &Spec, out: &mut impl Write) -> std::io::Result<usize> {
    let mut rng = Rng(spec.seed);
    let mut events: Vec<(u64, usize, GatewayEvent)> = Vec::new();
    for index in 0..spec.sessions {
        let tenant = spec.tenants[index % spec.tenants.len()].clone();
        let channel = spec.channels[(index / spec.tenants.len()) % spec.channels.len()].clone();
        let session = format!("s{index}");
        let mut at = if spec.business_hours {
            business_start(&mut rng, spec.spread_ms)
        } else {
            rng.range(0, spec.spread_ms.max(1))
        };
        let mut push = |at: u64, event: GatewayEvent| {
            let order = events.len();
            events.push((at, order, event));
        };
        let message = |sender: Sender, id: usize, origin: Option<&str>| {
            GatewayEvent::Message(MessageEvent {
                tenant: tenant.clone(),
                session: session.clone(),
                sender,
                id: Some(format!("{session}-m{id}")),
                text: Some(format!("message {id}")),
                channel: None,
                origin: origin.map(str::to_owned),
                attachment: false,
                seq: None,
                sender_name: None,
            })
        };
        let mut attributes = BTreeMap::new();
        attributes.insert(
            "locale".to_owned(),
            ["en", "pt-BR", "de"][index % 3].to_owned(),
        );
        push(
            at,
            GatewayEvent::SessionOpened(OpenedEvent {
                tenant: tenant.clone(),
                session: session.clone(),
                channel,
                attributes,
                reopen: false,
            }),
        );
        let mut id = 0;
        let rounds = rng.range(1, spec.max_rounds.clamp(1, u64::MAX - 1) + 1);
        for _ in 0..rounds {
            at = at.saturating_add(rng.range(1_000, 30_000));
            push(
                at,
                message(
                    if rng.chance(80) {
                        Sender::Agent
                    } else {
                        Sender::Bot
                    },
                    id,
                    None,
                ),
            );
            id += 1;
            if rng.chance(10) {
                at = at.saturating_add(rng.range(100, 2_000));
                push(at, message(Sender::System, id, None));
                id += 1;
            }
            if rng.chance(20) {
                at = at.saturating_add(rng.range(1_000, 60_000));
                push(
                    at,
                    GatewayEvent::Presence(PresenceEvent {
                        tenant: tenant.clone(),
                        session: session.clone(),
                        state: Visibility::Hidden,
                    }),
                );
            }
            if !rng.chance(spec.reply_percent) {
                break; // the end user goes quiet: the plugin takes it from here
            }
            // Replies sometimes come after the warning (3 minutes in the examples).
            at = at.saturating_add(match spec.replies {
                Replies::Uniform => rng.range(5_000, 240_000),
                Replies::Realistic => realistic_reply_ms(&mut rng),
            });
            push(at, message(Sender::EndUser, id, None));
            id += 1;
        }
        if rng.chance(25) {
            at = at.saturating_add(rng.range(10_000, 120_000));
            push(
                at,
                GatewayEvent::SessionClosed(ClosedEvent {
                    tenant: tenant.clone(),
                    session: session.clone(),
                }),
            );
        }
    }
    events.sort_by_key(|(at, order, _)| (*at, *order));
    for (at, _, event) in &events {
        let mut line = serde_json::Map::new();
        line.insert("at_ms".to_owned(), Value::from(*at));
        if let Value::Object(fields) = serde_json::to_value(event)? {
            line.extend(fields);
        }
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(events.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(seed: u64) -> Spec {
        Spec {
            seed,
            spread_ms: 60_000,
            ..Spec::new(
                50,
                vec!["acme".into(), "globex".into()],
                vec!["web_chat".into(), "http_api".into()],
            )
        }
    }

    #[test]
    fn output_is_a_valid_ordered_scenario_and_reproducible() {
        let mut first = Vec::new();
        let lines = generate(&spec(7), &mut first).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(first.clone()).unwrap_or_else(|e| panic!("{e}"));
        let parsed = crate::scenario::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(parsed.len(), lines);
        assert!(
            lines >= 100,
            "50 sessions give at least open + agent message each"
        );
        let mut again = Vec::new();
        generate(&spec(7), &mut again).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(first, again);
        let mut other = Vec::new();
        generate(&spec(8), &mut other).unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(first, other);
    }

    #[test]
    fn realistic_replies_are_mostly_quick_with_a_long_tail() {
        let mut rng = Rng(3);
        let delays: Vec<u64> = (0..10_000).map(|_| realistic_reply_ms(&mut rng)).collect();
        let share = |f: &dyn Fn(u64) -> bool| delays.iter().filter(|d| f(**d)).count();
        let within_a_minute = share(&|d| d < 60_000);
        assert!(
            (6_700..7_300).contains(&within_a_minute),
            "{within_a_minute}"
        );
        // Between a 5- and a 10-minute close: the answers that tell them apart.
        let between = share(&|d| (300_000..600_000).contains(&d));
        assert!((300..700).contains(&between), "{between}");
        assert!(delays.iter().all(|d| (5_000..1_200_000).contains(d)));
    }

    #[test]
    fn business_hours_put_most_starts_in_the_working_day() {
        let day = Spec {
            sessions: 2_000,
            spread_ms: 86_400_000,
            business_hours: true,
            ..spec(5)
        };
        let mut out = Vec::new();
        generate(&day, &mut out).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
        let starts: Vec<u64> = text
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "session_opened")
            .filter_map(|v| v["at_ms"].as_u64())
            .collect();
        assert_eq!(starts.len(), 2_000);
        let working = starts
            .iter()
            .filter(|at| business_weight(**at) == 100)
            .count();
        // 8 of 24 hours; with the weights, about 80% of the starts.
        assert!(working > 1_500, "{working} of 2,000 in 09:00 to 17:00");
        assert_eq!(business_weight(3 * 3_600_000), 5);
        assert_eq!(business_weight(8 * 3_600_000 + 59_000), 30);
    }
}
