//! Recording sessions' histories (see [`crate::history`]) at the stages that see
//! each step: intake records what came in, the drive loop which hook a timer's
//! commands came from, `apply` and `deliveries` what was done and how it went.
//! Every method here does nothing unless [`Core::keep_history`] asked for histories.

use autoclose_runtime::bindings::chat_gateway::plugin::events::{CloseCause, SessionChange};
use autoclose_runtime::bindings::chat_gateway::plugin::types::{Presence, SenderRole};
use autoclose_runtime::{SessionId, TimerKey};

use crate::core::Core;
use crate::history::{
    Cause, FiredTimer, History, MAX_HISTORY_STEPS, Origin, Role, Step, TimerCause, Trigger, What,
};
use crate::hook::Hook;

/// What a session change is, for a reader of the history.
fn cause_of_change(change: &SessionChange) -> Cause {
    match change {
        SessionChange::Opened => Cause::Opened,
        SessionChange::Closed(CloseCause::External) => Cause::ClosedOutside,
        SessionChange::Closed(CloseCause::Plugin(_)) => Cause::ClosedByPlugin,
        SessionChange::Presence(presence) => Cause::Presence {
            visible: *presence == Presence::Visible,
        },
        SessionChange::Hold(until) => Cause::Hold { until: *until },
        SessionChange::Queued => Cause::Queued,
        SessionChange::Transferred => Cause::Transferred,
    }
}

fn role(sender: SenderRole) -> Role {
    match sender {
        SenderRole::EndUser => Role::EndUser,
        SenderRole::Agent => Role::Agent,
        SenderRole::Bot => Role::Bot,
        SenderRole::System => Role::System,
    }
}

impl Core {
    /// Keeps the last `steps` steps of every session's history from now on (at most
    /// [`MAX_HISTORY_STEPS`]; 0: none). `serve` keeps them for its console; replay
    /// does not.
    pub fn keep_history(&mut self, steps: usize) {
        self.history_steps = steps.min(MAX_HISTORY_STEPS);
    }

    /// The history of `tenant`'s session `session`, if it is known and one is kept.
    pub fn history(&self, tenant: &str, session: &str) -> Option<&History> {
        let tenant = *self.tenant_ids.get(tenant)?;
        let id = self.state.sessions.find(tenant, session)?;
        self.state.sessions.get(id)?.history.as_deref()
    }

    /// Records one attempt of delivering a chat action to the gateway (the caller
    /// delivers them, so the core learns of them here).
    pub fn record_action_attempt(
        &mut self,
        tenant: &str,
        session: &str,
        action: (&str, &str),
        attempt: u32,
        outcome: String,
    ) {
        if self.history_steps == 0 {
            return;
        }
        let Some(&tenant) = self.tenant_ids.get(tenant) else {
            return;
        };
        let Some(id) = self.state.sessions.find(tenant, session) else {
            return;
        };
        let (action_id, kind) = action;
        self.record(
            id,
            What::ActionAttempt {
                id: action_id.to_owned(),
                action: kind.to_owned(),
                attempt,
                outcome,
            },
        );
    }

    /// Appends a step at the current host time to `session`'s history.
    pub(crate) fn record(&mut self, session: SessionId, what: What) {
        self.with_history(session, |history, capacity, at| {
            history.push(capacity, Step { at, what })
        });
    }

    /// Runs `change` on `session`'s history (created on first use), with the
    /// capacity and the host time, and notes the session for the store.
    fn with_history(&mut self, session: SessionId, change: impl FnOnce(&mut History, usize, u64)) {
        if self.history_steps == 0 {
            return;
        }
        let (capacity, at) = (self.history_steps, self.state.now);
        let Some(record) = self.state.sessions.get_mut(session) else {
            return;
        };
        change(
            std::sync::Arc::make_mut(record.history.get_or_insert_default()),
            capacity,
            at,
        );
        self.touch_session(session);
    }

    /// What `hook` was called for, as the trigger of its commands; `None` while no
    /// history is kept.
    pub(crate) fn trigger_of(&self, hook: &Hook) -> Option<Trigger> {
        if self.history_steps == 0 {
            return None;
        }
        let history = self
            .state
            .sessions
            .get(hook.session())
            .and_then(|s| s.history.as_deref());
        let user_wrote_at = history.and_then(|h| h.user_wrote_at);
        let event = |at, event| {
            Some(Trigger {
                user_wrote_at,
                ..Trigger::event(Origin { at, event })
            })
        };
        match hook {
            Hook::Message(e) => event(
                e.at,
                Cause::Message {
                    from: role(e.sender),
                    echo: e.origin.is_some(),
                },
            ),
            Hook::Session(e) => event(e.at, cause_of_change(&e.change)),
            Hook::Http(e) => event(e.at, Cause::Answer),
            Hook::Timer(e, _) => {
                let cause = history.and_then(|h| h.timer(e.key));
                Some(Trigger {
                    timer: Some(FiredTimer {
                        key: e.key,
                        set_at: cause.map(|c| c.set_at),
                    }),
                    origin: cause.and_then(|c| c.origin.clone()),
                    user_wrote_at,
                })
            }
        }
    }

    /// Records the gateway event behind `hook` (a message or a session change).
    pub(crate) fn record_received(&mut self, hook: &Hook) {
        if self.history_steps == 0 {
            return;
        }
        let Some(Trigger {
            origin: Some(origin),
            ..
        }) = self.trigger_of(hook)
        else {
            return;
        };
        let user_wrote = matches!(
            origin.event,
            Cause::Message {
                from: Role::EndUser,
                echo: false
            }
        );
        self.with_history(hook.session(), |history, capacity, at| {
            if origin.event == Cause::ClosedOutside {
                history.timers.clear();
            }
            if user_wrote {
                history.user_wrote_at = Some(at);
            }
            history.push(
                capacity,
                Step {
                    at,
                    what: What::Received {
                        event: origin.event,
                    },
                },
            );
        });
    }

    /// Records that timer `key` fired.
    pub(crate) fn record_timer_fired(&mut self, key: TimerKey) {
        self.with_history(key.session, |history, capacity, at| {
            let set_at = history.timer(key.key).map(|t| t.set_at);
            history.push(
                capacity,
                Step {
                    at,
                    what: What::TimerFired {
                        key: key.key,
                        set_at,
                    },
                },
            );
        });
    }

    /// Records that the hook being applied set timer `key` due at `due`.
    pub(crate) fn record_timer_set(&mut self, key: TimerKey, due: u64) {
        let by = self.cause.clone().unwrap_or_default();
        self.with_history(key.session, |history, capacity, at| {
            history.set_timer(TimerCause {
                key: key.key,
                set_at: at,
                origin: by.origin.clone(),
            });
            history.push(
                capacity,
                Step {
                    at,
                    what: What::TimerSet {
                        key: key.key,
                        due,
                        started: by.timer.is_none(),
                        by,
                    },
                },
            );
        });
    }

    /// Records that the hook being applied cancelled the pending timer `key`.
    pub(crate) fn record_timer_cancelled(&mut self, key: TimerKey) {
        let by = self.cause.clone().unwrap_or_default();
        self.with_history(key.session, |history, capacity, at| {
            history.cancel_timer(key.key);
            history.push(
                capacity,
                Step {
                    at,
                    what: What::TimerCancelled { key: key.key, by },
                },
            );
        });
    }

    /// Records the hook being applied posting a message of `kind`.
    pub(crate) fn record_posted(&mut self, session: SessionId, kind: &str) {
        if self.history_steps == 0 {
            return;
        }
        let by = self.cause.clone().unwrap_or_default();
        self.record(
            session,
            What::Posted {
                kind: kind.to_owned(),
                by,
            },
        );
    }

    /// Records the hook being applied closing the session.
    pub(crate) fn record_closed(&mut self, session: SessionId, reason: &str) {
        let by = self.cause.clone().unwrap_or_default();
        self.with_history(session, |history, capacity, at| {
            history.timers.clear();
            history.push(
                capacity,
                Step {
                    at,
                    what: What::Closed {
                        reason: reason.to_owned(),
                        by,
                    },
                },
            );
        });
    }

    /// Records the hook being applied asking for a webhook request.
    pub(crate) fn record_webhook(
        &mut self,
        session: SessionId,
        webhook: &str,
        event_type: &str,
        id: &str,
    ) {
        if self.history_steps == 0 {
            return;
        }
        let by = self.cause.clone().unwrap_or_default();
        self.record(
            session,
            What::Webhook {
                webhook: webhook.to_owned(),
                event_type: event_type.to_owned(),
                id: id.to_owned(),
                by,
            },
        );
    }
}
