//! The timelines of chosen sessions under one configuration: what came in and what
//! the plugin did, in words, for the sessions whose outcome differs between
//! configurations (a second replay records them; the first only counts).

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use autoclose_core::action::{Action, ActionKind};
use autoclose_core::event::{GatewayEvent, Sender};

use crate::replay::Transcript;

/// Most characters of a message text kept in a timeline.
const MAX_TEXT_CHARS: usize = 120;

/// One line of a timeline.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// When, in the log's ms.
    pub at_ms: u64,
    /// `in` for what the log says happened, `out` for what the plugin did.
    pub side: &'static str,
    /// What, in words.
    pub what: String,
}

/// The recording transcript: keeps the timelines of `wanted` sessions only.
pub struct Recorder {
    wanted: HashSet<(String, String)>,
    /// The timelines, by tenant and session.
    pub timelines: HashMap<(String, String), Vec<Entry>>,
}

impl Recorder {
    /// A recorder of the `wanted` sessions (tenant, session).
    pub fn new(wanted: impl IntoIterator<Item = (String, String)>) -> Self {
        Recorder {
            wanted: wanted.into_iter().collect(),
            timelines: HashMap::new(),
        }
    }

    fn put(&mut self, tenant: &str, session: &str, at_ms: u64, side: &'static str, what: String) {
        let key = (tenant.to_owned(), session.to_owned());
        if self.wanted.contains(&key) {
            self.timelines
                .entry(key)
                .or_default()
                .push(Entry { at_ms, side, what });
        }
    }
}

fn short(text: Option<&str>) -> String {
    let text = text.unwrap_or("");
    let mut out: String = text.chars().take(MAX_TEXT_CHARS).collect();
    if text.chars().count() > MAX_TEXT_CHARS {
        out.push('…');
    }
    out
}

impl Transcript for Recorder {
    fn event(&mut self, at_ms: u64, event: &GatewayEvent) {
        let what = match event {
            GatewayEvent::SessionOpened(o) => format!("session opened ({})", o.channel),
            GatewayEvent::Message(m) if m.origin.is_some() => {
                format!("our own post came back: {}", short(m.text.as_deref()))
            }
            GatewayEvent::Message(m) => {
                let who = match m.sender {
                    Sender::Agent => "agent",
                    Sender::EndUser => "end user",
                    Sender::Bot => "bot",
                    Sender::System => "system",
                };
                format!("{who}: {}", short(m.text.as_deref()))
            }
            GatewayEvent::Presence(p) => format!("the chat is {:?}", p.state).to_lowercase(),
            GatewayEvent::SessionClosed(_) => "closed by the platform".to_owned(),
            GatewayEvent::Hold(h) => match &h.duration {
                Some(d) => format!("on hold for {d}"),
                None => "on hold".to_owned(),
            },
            GatewayEvent::Queued(_) => "back in the queue".to_owned(),
            GatewayEvent::Transferred(_) => "transferred".to_owned(),
        };
        self.put(event.tenant(), event.session(), at_ms, "in", what);
    }

    fn action(&mut self, action: &Action) -> std::io::Result<()> {
        let (tenant, session, what) = match &action.kind {
            ActionKind::PostMessage {
                tenant,
                session,
                kind,
                text,
            } => (
                tenant,
                session,
                format!("{kind} posted: {}", short(Some(text))),
            ),
            ActionKind::Webhook {
                tenant,
                session,
                event,
                webhook,
                ..
            } => (tenant, session, format!("push {event} through {webhook}")),
            ActionKind::CloseSession {
                tenant,
                session,
                reason,
            } => (tenant, session, format!("closed ({reason})")),
            ActionKind::WebhookAttempt { .. } => return Ok(()),
        };
        self.put(tenant, session, action.at_ms, "out", what);
        Ok(())
    }
}
