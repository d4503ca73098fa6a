//! What a console shows of the core: sessions found by tenant, id and state, one
//! session with its pending timers, deliveries and history, and one tenant's counts.
//! Plain data, copied out, so that the core's owner can hand it to another thread.

use serde::Serialize;

use autoclose_runtime::SessionId;
use autoclose_runtime::bindings::chat_gateway::plugin::types::Presence;

use crate::core::Core;
use crate::history::{Cause, History, Role, What};
use crate::tenant::TenantStats;

/// Where a session stands, as people ask about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionState {
    /// A timer is pending: the plugin is waiting for the end user.
    InCycle,
    /// A warning was posted in the current cycle and a timer is pending.
    Warned,
    /// The agent asked the end user to wait.
    OnHold,
    /// The session went back to a queue.
    Queued,
    /// Closed (by the plugin or outside it).
    Closed,
    /// Open, nothing pending (waiting for an agent, or the cycle ended).
    Idle,
}

impl SessionState {
    /// Every state, in the order a filter lists them.
    pub const ALL: [SessionState; 6] = [
        SessionState::InCycle,
        SessionState::Warned,
        SessionState::OnHold,
        SessionState::Queued,
        SessionState::Closed,
        SessionState::Idle,
    ];

    /// Its name in URLs and JSON.
    pub fn name(self) -> &'static str {
        match self {
            SessionState::InCycle => "in_cycle",
            SessionState::Warned => "warned",
            SessionState::OnHold => "on_hold",
            SessionState::Queued => "queued",
            SessionState::Closed => "closed",
            SessionState::Idle => "idle",
        }
    }

    /// The state named `name`, if one is.
    pub fn parse(name: &str) -> Option<SessionState> {
        SessionState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// In words, for people.
    pub fn label(self) -> &'static str {
        match self {
            SessionState::InCycle => "in a cycle",
            SessionState::Warned => "warned",
            SessionState::OnHold => "on hold",
            SessionState::Queued => "queued",
            SessionState::Closed => "closed",
            SessionState::Idle => "idle",
        }
    }
}

/// Where a session stands: closed, else what the newest telling step of its history
/// says (a hold, a queue, a warning, a message), else whether a timer is pending.
pub fn state_of(closed: bool, timers: usize, history: Option<&History>) -> SessionState {
    if closed {
        return SessionState::Closed;
    }
    let pending = if timers > 0 {
        SessionState::InCycle
    } else {
        SessionState::Idle
    };
    let steps = history.into_iter().flat_map(|h| h.steps.iter().rev());
    for step in steps {
        match &step.what {
            What::Received {
                event: Cause::Hold { .. },
            } => return SessionState::OnHold,
            What::Received {
                event: Cause::Queued,
            } => return SessionState::Queued,
            What::Received {
                event: Cause::Message { echo: false, from },
            } if *from != Role::System => return pending,
            What::Posted { kind, .. } if kind == "warning" && timers > 0 => {
                return SessionState::Warned;
            }
            What::TimerSet { started: true, .. } => return pending,
            _ => {}
        }
    }
    pending
}

/// What to look for among the sessions.
#[derive(Clone, Debug, Default)]
pub struct SessionQuery {
    /// Only this tenant's.
    pub tenant: Option<String>,
    /// Only ids containing this text.
    pub session: Option<String>,
    /// Only sessions in this state.
    pub state: Option<SessionState>,
    /// Most sessions returned (the newest activity first).
    pub limit: usize,
}

/// One session in a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionSummary {
    /// The tenant's name.
    pub tenant: String,
    /// The gateway's session id.
    pub session: String,
    /// The channel, once known.
    pub channel: Option<String>,
    /// Where it stands.
    pub state: SessionState,
    /// Host time of the newest step kept, or of the close.
    pub last_at: Option<u64>,
    /// Pending timers.
    pub timers: usize,
}

/// Sessions found, newest activity first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Found {
    /// At most the query's limit of them.
    pub sessions: Vec<SessionSummary>,
    /// How many matched in all.
    pub matched: usize,
}

/// A pending timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PendingTimer {
    /// The plugin's key.
    pub key: u32,
    /// Host time it fires at.
    pub due: u64,
}

/// A webhook delivery under way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PendingDelivery {
    /// The webhook's name.
    pub webhook: String,
    /// The event type.
    pub event_type: String,
    /// The `webhook-id`.
    pub id: String,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (`None`: one is under way).
    pub next_at: Option<u64>,
    /// No attempt after this.
    pub deadline: u64,
}

/// One session, whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SessionDetail {
    /// Its line in a list.
    pub summary: SessionSummary,
    /// The end user's last reported presence (`visible`, `hidden`, `unknown`).
    pub presence: &'static str,
    /// The attributes given when it opened.
    pub attributes: Vec<(String, String)>,
    /// Host time of the close.
    pub closed_at: Option<u64>,
    /// Pending timers, earliest first.
    pub timers: Vec<PendingTimer>,
    /// Webhook deliveries under way.
    pub deliveries: Vec<PendingDelivery>,
    /// Its history, when one is kept.
    pub history: Option<History>,
    /// The host time now.
    pub now: u64,
}

/// One tenant's counts and health.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantOverview {
    /// Its name.
    pub name: String,
    /// The component's name (its file), when loaded.
    pub component: Option<String>,
    /// The channels its sessions came in on.
    pub channels: Vec<String>,
    /// Sessions open.
    pub open: usize,
    /// Closed sessions still remembered.
    pub closed: usize,
    /// Pending timers.
    pub timers: usize,
    /// Webhook deliveries under way.
    pub deliveries: usize,
    /// Events held while its component is failing.
    pub held: usize,
    /// Its counters.
    pub stats: TenantStats,
    /// Why its component is not running, when it is not.
    pub failing: Option<String>,
    /// Failures in a row (what the back-off grows with).
    pub failures: u32,
    /// Host time from which another instance is tried, while failing.
    pub retry_at: Option<u64>,
}

impl Core {
    /// The sessions matching `query`, newest activity first.
    pub fn find_sessions(&self, query: &SessionQuery) -> Found {
        let tenant = match &query.tenant {
            Some(name) => match self.tenant_ids.get(name) {
                Some(&id) => Some(id),
                None => return Found::default(),
            },
            None => None,
        };
        let mut sessions: Vec<SessionSummary> = self
            .state
            .sessions
            .ids()
            .into_iter()
            .filter_map(|id| {
                let s = self.state.sessions.get(id)?;
                if tenant.is_some_and(|t| t != s.tenant) {
                    return None;
                }
                if let Some(text) = &query.session
                    && !s.external.contains(text.as_str())
                {
                    return None;
                }
                let summary = self.summary(id)?;
                query
                    .state
                    .is_none_or(|state| state == summary.state)
                    .then_some(summary)
            })
            .collect();
        let matched = sessions.len();
        sessions.sort_by(|a, b| b.last_at.cmp(&a.last_at).then(a.session.cmp(&b.session)));
        sessions.truncate(query.limit);
        Found { sessions, matched }
    }

    fn summary(&self, id: SessionId) -> Option<SessionSummary> {
        let s = self.state.sessions.get(id)?;
        let timers = self.state.timers.keys_of(id).count();
        let history = s.history.as_deref();
        let newest = history.and_then(|h| h.steps.back()).map(|step| step.at);
        Some(SessionSummary {
            tenant: self.tenants.get(s.tenant.0 as usize)?.name.to_string(),
            session: s.external.to_string(),
            channel: s
                .channel
                .and_then(|c| self.state.channels.name(c))
                .map(str::to_owned),
            state: state_of(s.closed, timers, history),
            last_at: newest.max(s.closed.then_some(s.closed_at)),
            timers,
        })
    }

    /// `tenant`'s session `session`, whole, if it is known.
    pub fn session_detail(&self, tenant: &str, session: &str) -> Option<SessionDetail> {
        let tenant = *self.tenant_ids.get(tenant)?;
        let id = self.state.sessions.find(tenant, session)?;
        let s = self.state.sessions.get(id)?;
        let mut timers: Vec<PendingTimer> = self
            .state
            .timers
            .entries_of(id)
            .map(|(key, due, ..)| PendingTimer { key: key.key, due })
            .collect();
        timers.sort_by_key(|t| t.due);
        let deliveries = self
            .state
            .outbox
            .iter()
            .filter(|d| d.session == id)
            .map(|d| PendingDelivery {
                webhook: d.webhook.clone(),
                event_type: d.event_type.clone(),
                id: d.id.clone(),
                attempts: d.attempts,
                next_at: d.next_at,
                deadline: d.deadline,
            })
            .collect();
        Some(SessionDetail {
            summary: self.summary(id)?,
            presence: match s.presence {
                Presence::Visible => "visible",
                Presence::Hidden => "hidden",
                Presence::Unknown => "unknown",
            },
            attributes: s.attributes.clone(),
            closed_at: s.closed.then_some(s.closed_at),
            timers,
            deliveries,
            history: s.history.as_deref().cloned(),
            now: self.state.now,
        })
    }

    /// The tenant `name`'s counts and health, if it is configured.
    pub fn tenant_overview(&self, name: &str) -> Option<TenantOverview> {
        let id = *self.tenant_ids.get(name)?;
        let slot = self.tenants.get(id.0 as usize)?;
        let (mut open, mut closed) = (0, 0);
        for session in self.state.sessions.ids() {
            match self.state.sessions.get(session) {
                Some(s) if s.tenant == id && s.closed => closed += 1,
                Some(s) if s.tenant == id => open += 1,
                _ => {}
            }
        }
        let mut channels: Vec<String> = self
            .state
            .channel_users
            .iter()
            .filter(|(tenant, _)| *tenant == id)
            .filter_map(|(_, channel)| self.state.channels.name(*channel))
            .map(str::to_owned)
            .collect();
        channels.sort();
        let failing = if slot.live.is_none() {
            slot.last_error.clone()
        } else {
            None
        };
        Some(TenantOverview {
            name: name.to_owned(),
            component: slot.component.as_ref().map(|c| c.name().to_owned()),
            channels,
            open,
            closed,
            timers: self.state.timers.count_of(id),
            deliveries: self.state.outbox.iter().filter(|d| d.tenant == id).count(),
            held: slot.queued.len(),
            stats: slot.stats,
            retry_at: failing.as_ref().map(|_| slot.retry_at),
            failing,
            failures: slot.failures,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Origin, Step, Trigger};

    fn step(at: u64, what: What) -> Step {
        Step { at, what }
    }

    fn message(from: Role) -> What {
        What::Received {
            event: Cause::Message { from, echo: false },
        }
    }

    #[test]
    fn the_newest_telling_step_decides_the_state() {
        let mut history = History::default();
        history.push(16, step(1, message(Role::Agent)));
        assert_eq!(state_of(false, 1, Some(&history)), SessionState::InCycle);
        assert_eq!(state_of(false, 0, Some(&history)), SessionState::Idle);
        history.push(
            16,
            step(
                2,
                What::Posted {
                    kind: "warning".into(),
                    by: Trigger::event(Origin {
                        at: 1,
                        event: Cause::Opened,
                    }),
                },
            ),
        );
        assert_eq!(state_of(false, 1, Some(&history)), SessionState::Warned);
        history.push(
            16,
            step(
                3,
                What::Received {
                    event: Cause::Hold { until: None },
                },
            ),
        );
        assert_eq!(state_of(false, 0, Some(&history)), SessionState::OnHold);
        history.push(16, step(4, message(Role::Agent)));
        assert_eq!(state_of(false, 1, Some(&history)), SessionState::InCycle);
        history.push(
            16,
            step(
                5,
                What::Received {
                    event: Cause::Queued,
                },
            ),
        );
        assert_eq!(state_of(false, 0, Some(&history)), SessionState::Queued);
        assert_eq!(state_of(true, 0, Some(&history)), SessionState::Closed);
        assert_eq!(state_of(false, 2, None), SessionState::InCycle);
    }

    #[test]
    fn states_read_back_from_their_names() {
        for state in SessionState::ALL {
            assert_eq!(SessionState::parse(state.name()), Some(state));
        }
        assert_eq!(SessionState::parse("asleep"), None);
    }
}
