//! What one configuration did to a conversation log, counted as a replay goes: a
//! [`Transcript`] that sees every event and every action in time order.
//!
//! - **closed**: chats closed for inactivity (`close_session`);
//! - **warnings**: warnings posted; **pushes**: push webhooks queued;
//! - **rescued**: the end user answered after a warning and before the close;
//! - **came back**: the end user wrote again after the close, in the log: a chat that,
//!   under this configuration, closed on someone who was still there;
//! - the time from the last agent (or bot) message to each close, and the hour of day
//!   (UTC of the log's clock) of each close.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use autoclose_core::action::{Action, ActionKind};
use autoclose_core::event::{GatewayEvent, Sender};

use crate::replay::Transcript;

/// Counts of one configuration, for a tenant and channel or in total.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Sessions seen in the log.
    pub sessions: u64,
    /// Chats closed for inactivity.
    pub closed: u64,
    /// Warnings posted.
    pub warnings: u64,
    /// Pushes queued (warnings and closes).
    pub pushes: u64,
    /// Warned chats the end user answered before the close.
    pub rescued: u64,
    /// Closed chats the end user wrote to again afterwards.
    pub came_back: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.sessions += other.sessions;
        self.closed += other.closed;
        self.warnings += other.warnings;
        self.pushes += other.pushes;
        self.rescued += other.rescued;
        self.came_back += other.came_back;
    }
}

/// What happened to one session, to compare configurations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// When it was closed for inactivity.
    pub closed_at_ms: Option<u64>,
    /// Warnings it got.
    pub warnings: u32,
    /// Times the end user answered a warning.
    pub rescued: u32,
    /// The end user wrote after the close.
    pub came_back: bool,
}

impl Outcome {
    /// Whether two configurations treated the session differently (closed or not,
    /// warned a different number of times, rescued or not).
    pub fn differs(&self, other: &Outcome) -> bool {
        self.closed_at_ms.is_some() != other.closed_at_ms.is_some()
            || self.warnings != other.warnings
            || self.rescued != other.rescued
    }

    /// The outcome in words.
    pub fn describe(&self) -> String {
        let warned = match self.warnings {
            0 => "no warning".to_owned(),
            1 => "1 warning".to_owned(),
            n => format!("{n} warnings"),
        };
        let rescued = if self.rescued > 0 {
            ", the end user answered"
        } else {
            ""
        };
        match self.closed_at_ms {
            Some(at) => format!(
                "closed at {}{}: {warned}{rescued}",
                clock(at),
                if self.came_back {
                    " (the end user came back later)"
                } else {
                    ""
                }
            ),
            None => format!("not closed: {warned}{rescued}"),
        }
    }
}

/// The virtual time `ms` as `HH:MM:SS` of its day (and the day, after the first).
pub fn clock(ms: u64) -> String {
    let s = ms / 1000;
    let day = s / 86_400;
    let time = format!("{:02}:{:02}:{:02}", (s / 3600) % 24, (s / 60) % 60, s % 60);
    if day == 0 {
        time
    } else {
        format!("day {} {time}", day + 1)
    }
}

#[derive(Default)]
struct Track {
    tenant_channel: (String, String),
    last_starter_ms: Option<u64>,
    warned: bool,
    pushes: u64,
    outcome: Outcome,
    order: u64,
}

/// The counting transcript of one configuration.
#[derive(Default)]
pub struct Tally {
    sessions: HashMap<(String, String), Track>,
    /// Time from the last agent or bot message to each close, in ms.
    pub close_delays_ms: Vec<u64>,
    /// Closes by hour of day (UTC of the log's clock).
    pub closes_by_hour: [u64; 24],
}

impl Tally {
    fn track(&mut self, tenant: &str, session: &str) -> &mut Track {
        let next = self.sessions.len() as u64;
        self.sessions
            .entry((tenant.to_owned(), session.to_owned()))
            .or_insert_with(|| Track {
                tenant_channel: (tenant.to_owned(), "unknown".to_owned()),
                order: next,
                ..Track::default()
            })
    }

    /// The counts per tenant and channel, in name order.
    pub fn by_channel(&self) -> BTreeMap<(String, String), Counts> {
        let mut out: BTreeMap<(String, String), Counts> = BTreeMap::new();
        for track in self.sessions.values() {
            let counts = out.entry(track.tenant_channel.clone()).or_default();
            let o = &track.outcome;
            counts.add(&Counts {
                sessions: 1,
                closed: u64::from(o.closed_at_ms.is_some()),
                warnings: u64::from(o.warnings),
                pushes: track.pushes,
                rescued: u64::from(o.rescued),
                came_back: u64::from(o.came_back),
            });
        }
        out
    }

    /// The counts over every tenant and channel.
    pub fn totals(&self) -> Counts {
        let mut total = Counts::default();
        for counts in self.by_channel().values() {
            total.add(counts);
        }
        total
    }

    /// Every session's outcome, in the order the log first named them.
    pub fn outcomes(&self) -> Vec<((String, String), Outcome)> {
        let mut all: Vec<(&(String, String), &Track)> = self.sessions.iter().collect();
        all.sort_by_key(|(_, t)| t.order);
        all.into_iter()
            .map(|(key, track)| (key.clone(), track.outcome))
            .collect()
    }
}

impl Transcript for Tally {
    fn event(&mut self, at_ms: u64, event: &GatewayEvent) {
        match event {
            GatewayEvent::SessionOpened(opened) => {
                let track = self.track(&opened.tenant, &opened.session);
                track.tenant_channel.1 = opened.channel.clone();
            }
            GatewayEvent::Message(message) => {
                let track = self.track(&message.tenant, &message.session);
                if track.tenant_channel.1 == "unknown"
                    && let Some(channel) = &message.channel
                {
                    track.tenant_channel.1 = channel.clone();
                }
                if message.origin.is_some() {
                    return;
                }
                match message.sender {
                    Sender::Agent | Sender::Bot => {
                        track.last_starter_ms = Some(at_ms);
                        track.warned = false;
                    }
                    Sender::EndUser if track.outcome.closed_at_ms.is_some() => {
                        track.outcome.came_back = true;
                    }
                    Sender::EndUser if track.warned => {
                        track.outcome.rescued += 1;
                        track.warned = false;
                    }
                    _ => {}
                }
            }
            other => {
                self.track(other.tenant(), other.session());
            }
        }
    }

    fn action(&mut self, action: &Action) -> std::io::Result<()> {
        match &action.kind {
            ActionKind::PostMessage {
                tenant,
                session,
                kind,
                ..
            } if kind == "warning" => {
                let track = self.track(tenant, session);
                track.outcome.warnings += 1;
                track.warned = true;
            }
            ActionKind::Webhook {
                tenant, session, ..
            } => {
                self.track(tenant, session).pushes += 1;
            }
            ActionKind::CloseSession {
                tenant, session, ..
            } => {
                let track = self.track(tenant, session);
                if track.outcome.closed_at_ms.is_none() {
                    track.outcome.closed_at_ms = Some(action.at_ms);
                    let delay = track
                        .last_starter_ms
                        .map(|at| action.at_ms.saturating_sub(at));
                    if let Some(delay) = delay {
                        self.close_delays_ms.push(delay);
                    }
                    self.closes_by_hour[((action.at_ms / 3_600_000) % 24) as usize] += 1;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
