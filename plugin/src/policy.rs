//! The auto-close policy as pure functions: facts in, a [`Plan`] out.
//!
//! No I/O, no clock, no memory between calls: everything a decision needs arrives as
//! arguments (the settings, the event, the timer payload, the session's small state
//! kept by the host), so the same code runs inside the component and natively in
//! tests, and a replaced instance decides exactly as the old one would have.
//!
//! A cycle starts at an agent's or bot's message. Its schedule (the time of each
//! warning and of the close) is fixed then and travels in the timer's payload, so a
//! configuration change applies to cycles that start after it while running cycles
//! keep their deadlines; texts and switches are read from the configuration in force
//! when each step fires.

use crate::config::Settings;
use crate::hours::Outside;
use crate::template::Values;

/// The one timer key auto-close uses per session: setting it again replaces the
/// pending step, which is exactly "restart the cycle".
pub const TIMER_KEY: u32 = 0;

/// Reason given when closing a session for inactivity.
pub const CLOSE_REASON: &str = "inactivity";

/// Name this plugin posts under; messages echoed back with this origin are ignored.
pub const ORIGIN: &str = "autoclose";

/// Longest agent name carried in a timer payload, in bytes.
pub const MAX_AGENT_NAME_BYTES: usize = 256;

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// A human agent.
    Agent,
    /// The customer.
    EndUser,
    /// An automated participant for the contact centre.
    Bot,
    /// A gateway notice.
    System,
}

/// What the policy needs to know about a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    /// Who wrote it.
    pub sender: Sender,
    /// It is this plugin's own post, echoed back by the gateway.
    pub own_echo: bool,
    /// When it was written (ms).
    pub at: u64,
    /// The writer's display name, when the gateway passed it.
    pub sender_name: Option<&'a str>,
}

/// What the end user's client last reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// Never reported.
    Unknown,
    /// The chat is on screen.
    Visible,
    /// The chat is in the background.
    Hidden,
}

/// Something that happened to a session other than a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// The agent asked the user to wait, until the given instant or (when absent)
    /// until an agent speaks again.
    Hold(Option<u64>),
    /// The session went back to a queue.
    Queued,
    /// The session was handed to another agent or team.
    Transferred,
    /// The session ended.
    Closed,
}

/// What auto-close remembers about a session between cycles, kept by the host
/// (`sessions.state`): small, versioned, and empty for most sessions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionState {
    /// The session is on hold, queued or transferred: only an agent's message starts
    /// the next cycle (a bot's does not).
    pub awaiting_agent: bool,
    /// Cycles that reached their first warning, for `max_cycles`.
    pub cycles: u16,
}

const STATE_V1: u8 = 1;

impl SessionState {
    /// Encodes the state; the default state encodes as nothing, so most sessions keep
    /// no bytes in the host.
    pub fn encode(self) -> Vec<u8> {
        if self == SessionState::default() {
            return Vec::new();
        }
        let [low, high] = self.cycles.to_le_bytes();
        vec![STATE_V1, u8::from(self.awaiting_agent), low, high]
    }

    /// Decodes stored bytes; anything this version did not write reads as the default.
    pub fn decode(bytes: &[u8]) -> Self {
        match bytes {
            [STATE_V1, flags, low, high] => SessionState {
                awaiting_agent: flags & 1 == 1,
                cycles: u16::from_le_bytes([*low, *high]),
            },
            _ => SessionState::default(),
        }
    }
}

/// Most steps of a cycle: the warnings and the close.
pub const MAX_STEPS: usize = crate::config::MAX_WARNINGS + 1;

/// The idle time before each step of a cycle, from the previous step (the first from
/// the cycle's start), in ms. Fixed size, so starting a cycle allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gaps {
    values: [u32; MAX_STEPS],
    len: u8,
}

impl Gaps {
    /// Gaps from a slice of 1 to [`MAX_STEPS`] values.
    pub fn from_slice(gaps: &[u32]) -> Option<Self> {
        if gaps.is_empty() || gaps.len() > MAX_STEPS {
            return None;
        }
        let mut values = [0; MAX_STEPS];
        values[..gaps.len()].copy_from_slice(gaps);
        Some(Gaps {
            values,
            len: gaps.len() as u8,
        })
    }

    /// The gaps of `settings`' schedule (durations are at most 7 days, well within u32
    /// milliseconds).
    fn of(settings: &Settings) -> Self {
        let mut values = [0; MAX_STEPS];
        let mut len = 0;
        let mut previous = 0;
        let times = settings
            .warnings
            .iter()
            .map(|w| w.after.as_ms())
            .chain(std::iter::once(settings.close.after.as_ms()));
        for (slot, at) in values.iter_mut().zip(times) {
            *slot = u32::try_from(at.saturating_sub(previous)).unwrap_or(u32::MAX);
            previous = at;
            len += 1;
        }
        Gaps { values, len }
    }

    /// The gaps in step order.
    pub fn as_slice(&self) -> &[u32] {
        &self.values[..usize::from(self.len)]
    }
}

/// A running cycle, as carried by its timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cycle {
    /// When the cycle started (ms); with the step, it identifies a notice.
    pub started_at: u64,
    /// The step that fires next: warnings come first, the close last.
    pub next: u8,
    /// Idle time before each step, from the previous step (the first from the start).
    pub gaps: Gaps,
    /// The name of the agent whose message started the cycle.
    pub agent_name: Option<String>,
}

impl Cycle {
    /// Whether the next step is the close.
    pub fn at_close(&self) -> bool {
        usize::from(self.next) + 1 >= self.gaps.as_slice().len()
    }
}

/// What a pending timer carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pending {
    /// The next step of a cycle.
    Step(Cycle),
    /// A hold ends: start a cycle then.
    Resume {
        /// The agent who asked the user to hold on.
        agent_name: Option<String>,
    },
}

/// Version tag of the payload layout; bump it if the layout changes so that timers
/// written by an older component are recognised (they may outlive it in a durable host).
const PAYLOAD_V2: u8 = 2;
const KIND_STEP: u8 = 0;
const KIND_RESUME: u8 = 1;
const HEADER_LEN: usize = 12;

/// Longest encoded [`Pending`]: header, every gap, the longest agent name.
pub const MAX_PAYLOAD_LEN: usize = HEADER_LEN + MAX_STEPS * 4 + MAX_AGENT_NAME_BYTES;

/// An encoded [`Pending`], on the stack: setting a timer on every agent message then
/// allocates nothing in the guest.
#[derive(Clone, Copy)]
pub struct Payload {
    bytes: [u8; MAX_PAYLOAD_LEN],
    len: usize,
}

impl Payload {
    fn push(&mut self, bytes: &[u8]) {
        self.bytes[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

impl Pending {
    /// Encodes the payload: version, kind, next step, step count, start, gaps (u32 ms
    /// each), then the agent's name. At most [`MAX_PAYLOAD_LEN`] (312) bytes.
    pub fn encode(&self) -> Payload {
        let (kind, next, gaps, started_at, name) = match self {
            Pending::Step(c) => (
                KIND_STEP,
                c.next,
                c.gaps.as_slice(),
                c.started_at,
                &c.agent_name,
            ),
            Pending::Resume { agent_name } => (KIND_RESUME, 0, &[][..], 0, agent_name),
        };
        let name = name.as_deref().map(truncate_name).unwrap_or("");
        let mut out = Payload {
            bytes: [0; MAX_PAYLOAD_LEN],
            len: 0,
        };
        out.push(&[PAYLOAD_V2, kind, next, gaps.len() as u8]);
        out.push(&started_at.to_le_bytes());
        for gap in gaps {
            out.push(&gap.to_le_bytes());
        }
        out.push(name.as_bytes());
        out
    }

    /// Decodes a payload; `None` for anything this version did not write.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let header = bytes.get(..HEADER_LEN)?;
        if header[0] != PAYLOAD_V2 {
            return None;
        }
        let count = usize::from(header[3]);
        let started_at = u64::from_le_bytes(header[4..12].try_into().ok()?);
        let gaps_end = HEADER_LEN + count * 4;
        if count > MAX_STEPS {
            return None;
        }
        let mut values = [0u32; MAX_STEPS];
        for (slot, chunk) in values
            .iter_mut()
            .zip(bytes.get(HEADER_LEN..gaps_end)?.chunks_exact(4))
        {
            *slot = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        }
        let gaps = Gaps {
            values,
            len: count as u8,
        };
        let name = std::str::from_utf8(&bytes[gaps_end..]).ok()?;
        let agent_name = (!name.is_empty()).then(|| name.to_owned());
        match header[1] {
            KIND_STEP if count > 0 && usize::from(header[2]) < count => {
                Some(Pending::Step(Cycle {
                    started_at,
                    next: header[2],
                    gaps,
                    agent_name,
                }))
            }
            KIND_RESUME if count == 0 => Some(Pending::Resume { agent_name }),
            _ => None,
        }
    }
}

fn truncate_name(name: &str) -> &str {
    if name.len() <= MAX_AGENT_NAME_BYTES {
        return name;
    }
    let mut cut = MAX_AGENT_NAME_BYTES;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    &name[..cut]
}

/// What to do with the session's timer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimerOp {
    /// Set (or replace) the timer to fire at `due` carrying `pending`.
    Set {
        /// When to fire (ms).
        due: u64,
        /// What to do then.
        pending: Pending,
    },
    /// Cancel whatever is pending.
    Cancel,
}

/// Which notice a post or push is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Notice {
    /// A warning before the close.
    Warning,
    /// The close itself.
    Close,
}

/// The `kind` label of a post meant for the agents only: the gateway shows it to
/// them, not to the end user.
pub const AGENT_NOTICE: &str = "agent_notice";

impl Notice {
    /// The `kind` label of the post in the chat.
    pub fn post_kind(self) -> &'static str {
        match self {
            Notice::Warning => "warning",
            Notice::Close => "close",
        }
    }

    /// The webhook event type (Standard Webhooks style, dot-separated).
    pub fn event_type(self) -> &'static str {
        match self {
            Notice::Warning => "chat.auto_close.warning",
            Notice::Close => "chat.auto_close.closed",
        }
    }
}

/// A webhook call to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// Which notice.
    pub notice: Notice,
    /// The webhook's name.
    pub webhook: String,
    /// The rendered text (the same as posted into the chat, if anything was).
    pub message: String,
    /// When the session closes (ms).
    pub closes_at: u64,
    /// The cycle's start and the step: what makes this notice unique, so a notice
    /// triggered twice collapses at the receiver.
    pub key: String,
}

impl Push {
    /// The idempotency key of the delivery.
    pub fn idempotency_key(&self) -> String {
        self.key.clone()
    }

    /// After this instant the push is worthless: a warning once the chat has closed.
    /// A close notice has no deadline of its own (the webhook's policy applies).
    pub fn deliver_by(&self) -> Option<u64> {
        match self.notice {
            Notice::Warning => Some(self.closes_at),
            Notice::Close => None,
        }
    }
}

/// Everything one event makes the plugin do, executed in this order: state, post,
/// push, timer, close. At a close this gives the documented order post_message,
/// webhook, close_session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// The session's new state, when it changes.
    pub state: Option<SessionState>,
    /// A message to post into the chat: its notice kind and text.
    pub post: Option<(Notice, String)>,
    /// A note for the agents only (post kind [`AGENT_NOTICE`]).
    pub agent_notice: Option<String>,
    /// A webhook to call.
    pub push: Option<Push>,
    /// What to do with the session's timer.
    pub timer: Option<TimerOp>,
    /// Close the session for inactivity.
    pub close: bool,
    /// Why nothing (or less than expected) happened, for the log.
    pub note: Option<&'static str>,
}

impl Plan {
    fn note(note: &'static str) -> Self {
        Plan {
            note: Some(note),
            ..Plan::default()
        }
    }
}

/// Decides what a message does to the session's cycle. `settings` is `None` where
/// auto-close is off for the session's channel; `state` is what the host delivered
/// with the event.
pub fn on_message(settings: Option<&Settings>, message: Message<'_>, state: SessionState) -> Plan {
    if message.own_echo {
        return Plan::note("own post echoed back: ignored");
    }
    match message.sender {
        Sender::System => Plan::note("system message: ignored"),
        // Cancel even where auto-close is now off: a cycle started before a reload
        // must still be stopped by the user's answer. Attachments count the same.
        Sender::EndUser => Plan {
            timer: Some(TimerOp::Cancel),
            ..Plan::default()
        },
        Sender::Agent => {
            // An agent speaking ends any hold or queue wait.
            let resumed = SessionState {
                awaiting_agent: false,
                ..state
            };
            let changed = (resumed != state).then_some(resumed);
            let mut plan = match settings {
                None => Plan::note("auto-close is off for this channel"),
                Some(s) if !s.started_by.agent => Plan::note("agents do not start cycles here"),
                Some(s) => start_cycle(s, message.at, message.sender_name, resumed),
            };
            plan.state = changed;
            plan
        }
        Sender::Bot => match settings {
            _ if state.awaiting_agent => {
                Plan::note("waiting for an agent: a bot message does not start a cycle")
            }
            None => Plan::note("auto-close is off for this channel"),
            Some(s) if !s.started_by.bot => Plan::note("bots do not start cycles here"),
            Some(s) => start_cycle(s, message.at, message.sender_name, state),
        },
    }
}

/// Decides what a session change does: a hold, a queue or a transfer stops the cycle
/// until an agent speaks (or the hold ends); a close drops what is pending.
pub fn on_change(change: Change, at: u64, state: SessionState) -> Plan {
    let waiting = Some(SessionState {
        awaiting_agent: true,
        ..state
    });
    match change {
        Change::Hold(Some(until)) if until > at => Plan {
            state: waiting,
            timer: Some(TimerOp::Set {
                due: until,
                pending: Pending::Resume { agent_name: None },
            }),
            ..Plan::default()
        },
        Change::Hold(_) | Change::Queued | Change::Transferred => Plan {
            state: waiting,
            timer: Some(TimerOp::Cancel),
            ..Plan::default()
        },
        // The host drops a closed session's timers too; cancelling here keeps the
        // plugin correct on hosts that do not.
        Change::Closed => Plan {
            timer: Some(TimerOp::Cancel),
            ..Plan::default()
        },
    }
}

/// `from` plus `ms` of idle time that counts: with business hours that pause the
/// clock, closed time does not.
fn advance(settings: &Settings, from: u64, ms: u64) -> u64 {
    match &settings.hours {
        Some(hours) if hours.outside == Outside::Pause => {
            hours.add_open_time(&settings.zone, from, ms)
        }
        _ => from.saturating_add(ms),
    }
}

/// The first timer of a cycle that starts at `at`, unless `max_cycles` is reached.
fn start_cycle(
    settings: &Settings,
    at: u64,
    agent_name: Option<&str>,
    state: SessionState,
) -> Plan {
    if settings
        .max_cycles
        .is_some_and(|max| u32::from(state.cycles) >= max)
    {
        return Plan::note("max_cycles reached: no further cycle in this session");
    }
    let gaps = Gaps::of(settings);
    let due = advance(settings, at, u64::from(gaps.as_slice()[0]));
    Plan {
        timer: Some(TimerOp::Set {
            due,
            pending: Pending::Step(Cycle {
                started_at: at,
                next: 0,
                gaps,
                agent_name: agent_name.map(|n| truncate_name(n).to_owned()),
            }),
        }),
        ..Plan::default()
    }
}

/// What is known when a timer fires, gathered by the caller from the host.
#[derive(Clone, Copy, Debug)]
pub struct Fire<'a> {
    /// The time it is handled (ms).
    pub now: u64,
    /// The session's state.
    pub state: SessionState,
    /// The session's attributes, in name order.
    pub attributes: &'a [(String, String)],
    /// What the end user's client last reported.
    pub presence: Presence,
    /// The tenant's name.
    pub tenant: &'a str,
}

impl Fire<'_> {
    fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .binary_search_by(|(k, _)| k.as_str().cmp(name))
            .ok()
            .map(|i| self.attributes[i].1.as_str())
    }
}

/// Whether an opt-out attribute's value means "opted out".
fn opted_out(value: Option<&str>) -> bool {
    value.is_some_and(|v| {
        ["true", "yes", "1"]
            .iter()
            .any(|y| v.trim().eq_ignore_ascii_case(y))
    })
}

/// Decides what a fired timer does.
pub fn on_timer(settings: Option<&Settings>, payload: &[u8], fire: Fire<'_>) -> Plan {
    let Some(pending) = Pending::decode(payload) else {
        return Plan::note("timer payload not written by this plugin version: ignored");
    };
    let Some(settings) = settings else {
        return Plan::note("auto-close was turned off for this channel: pending step dropped");
    };
    if let Some(name) = &settings.attributes.opt_out
        && opted_out(fire.attribute(name))
    {
        return Plan::note("the session opted out of auto-close");
    }
    let cycle = match pending {
        Pending::Resume { agent_name } => {
            let resumed = SessionState {
                awaiting_agent: false,
                ..fire.state
            };
            let mut plan = start_cycle(settings, fire.now, agent_name.as_deref(), resumed);
            plan.state = (resumed != fire.state).then_some(resumed);
            return plan;
        }
        Pending::Step(cycle) => cycle,
    };
    let now = fire.now;
    let step = usize::from(cycle.next);
    let gaps = cycle.gaps.as_slice();
    let remaining: u64 = gaps[step + 1..].iter().map(|g| u64::from(*g)).sum();
    let closes_at = advance(settings, now, remaining);
    let closes_at_text = settings.zone.format_time(closes_at, now);
    let values = Values {
        ms_left: closes_at.saturating_sub(now),
        closes_at: &closes_at_text,
        agent_name: cycle.agent_name.as_deref(),
        end_user_name: fire.attribute(&settings.attributes.end_user_name),
        tenant: fire.tenant,
        attributes: fire.attributes,
    };
    let locale = fire.attribute(&settings.attributes.locale);
    let away = fire.presence != Presence::Visible;
    let push_for = |notice: Notice, wanted: bool, message: &str| {
        settings
            .push
            .as_ref()
            .filter(|p| wanted && (away || !p.only_when_away))
            .map(|p| Push {
                notice,
                webhook: p.webhook.clone(),
                message: message.to_owned(),
                closes_at,
                key: format!("{}-{step}", cycle.started_at),
            })
    };

    if cycle.at_close() {
        let text = settings
            .close
            .message
            .as_ref()
            .map(|t| t.pick(locale).render(values));
        return Plan {
            push: push_for(
                Notice::Close,
                settings.close.push,
                text.as_deref().unwrap_or(""),
            ),
            post: text.map(|text| (Notice::Close, text)),
            close: true,
            ..Plan::default()
        };
    }

    let next = Cycle {
        next: cycle.next + 1,
        ..cycle.clone()
    };
    let timer = Some(TimerOp::Set {
        due: advance(settings, now, u64::from(gaps[step + 1])),
        pending: Pending::Step(next),
    });
    let state = (step == 0).then(|| SessionState {
        cycles: fire.state.cycles.saturating_add(1),
        ..fire.state
    });
    let Some(warning) = settings.warnings.get(step) else {
        return Plan {
            timer,
            state,
            note: Some(
                "this warning is no longer configured: skipped, the cycle keeps its deadline",
            ),
            ..Plan::default()
        };
    };
    if let Some(hours) = &settings.hours
        && hours.outside == Outside::SuppressWarnings
        && !hours.is_open(&settings.zone, now)
    {
        return Plan {
            timer,
            state,
            note: Some("outside business hours: warning suppressed"),
            ..Plan::default()
        };
    }
    let text = warning.message.pick(locale).render(values);
    let push = push_for(Notice::Warning, warning.push, &text);
    let note = (warning.push && push.is_none() && settings.push.is_some())
        .then_some("the end user is looking at the chat: warning not pushed");
    let agent_notice = warning
        .agent_notice
        .as_ref()
        .map(|t| t.pick(locale).render(values));
    Plan {
        state,
        post: warning.post.then_some((Notice::Warning, text)),
        agent_notice,
        push,
        timer,
        close: false,
        note,
    }
}

#[cfg(test)]
mod tests;
