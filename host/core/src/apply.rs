//! Applying what a hook asked for, in the order it asked: timers, state, posts and
//! closes change the host's state and the transcript; sends become deliveries.

use autoclose_runtime::{Command, SessionId, TenantId};

use crate::action::{Action, ActionKind};
use crate::bounds::MIN_TIMER_DELAY_MS;
use crate::core::Core;
use crate::hook::FollowUp;
use crate::state::HostState;

impl Core {
    /// Drops what the plugin kept for a session once the hook reporting its close has
    /// run: nothing can read it any more.
    pub(crate) fn drop_plugin_state(&mut self, session: SessionId) {
        if let Some(record) = self.state.sessions.get_mut(session)
            && !record.plugin_state.is_empty()
        {
            record.plugin_state = Vec::new();
            self.touch_session(session);
        }
    }

    /// Applies what a hook asked for, in order.
    pub(crate) fn apply(&mut self, tenant: TenantId, commands: impl Iterator<Item = Command>) {
        let now = self.state.now;
        let external = |state: &HostState, session: SessionId| {
            state
                .sessions
                .get(session)
                .map(|s| s.external.to_string())
                .unwrap_or_default()
        };
        for command in commands {
            match command {
                Command::SetTimer { key, due, payload } => {
                    self.touch_session(key.session);
                    if self.state.sessions.open_of(tenant, key.session).is_some() {
                        let due = due.max(now.saturating_add(MIN_TIMER_DELAY_MS));
                        self.state.timers.set(key, tenant, due, &payload);
                        self.record_timer_set(key, due);
                    }
                }
                Command::CancelTimer(key) => {
                    self.touch_session(key.session);
                    if self.state.timers.cancel(key) {
                        self.record_timer_cancelled(key);
                    }
                }
                Command::Post {
                    session,
                    kind,
                    text,
                } => {
                    self.record_posted(session, &kind);
                    self.actions.push(Action {
                        at_ms: now,
                        kind: ActionKind::PostMessage {
                            tenant: self.tenants[tenant.0 as usize].name.to_string(),
                            session: external(&self.state, session),
                            kind,
                            text,
                        },
                    })
                }
                Command::Send(send) => self.queue_delivery(tenant, send),
                Command::SetState { session, state } => {
                    if let Some(record) = self.state.sessions.get_mut(session)
                        && record.tenant == tenant
                        && !record.closed
                    {
                        record.plugin_state = state;
                        self.touch_session(session);
                    }
                }
                Command::Close { session, reason } => {
                    let Some(record) = self.state.sessions.get_mut(session) else {
                        continue;
                    };
                    if record.closed {
                        continue;
                    }
                    record.closed = true;
                    record.closed_at = now;
                    self.closed_order.push_back((now, session));
                    self.state.timers.cancel_session(session);
                    self.touch_session(session);
                    self.record_closed(session, &reason);
                    self.actions.push(Action {
                        at_ms: now,
                        kind: ActionKind::CloseSession {
                            tenant: self.tenants[tenant.0 as usize].name.to_string(),
                            session: external(&self.state, session),
                            reason: reason.clone(),
                        },
                    });
                    self.follow_ups.push_back(FollowUp::Closed {
                        tenant,
                        session,
                        reason,
                    });
                }
            }
        }
    }
}
