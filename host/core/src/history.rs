//! A session's history, kept for people: what came in, what the plugin did and what
//! made it do so, and how each delivery went. It answers "why did this chat close?"
//! and "why was no warning sent?" without reading logs.
//!
//! The host records it, not the plugin, so it holds for any component: the host sees
//! every event, every hook and every action the hook asked for. What caused an action
//! is the hook it came from ([`Trigger`]): an event, or a timer, and then the event
//! that set the first timer of the chain (a warning's timer is set by the previous
//! warning's hook, which was set by the agent's message).
//!
//! Bounded per session ([`History::push`] drops the oldest step beyond the capacity
//! and counts it), kept in the session's record (so it survives a restart where the
//! session does) and forgotten with the session. Off unless asked for
//! ([`crate::Core::keep_history`]): replay does not pay for it.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

/// Steps kept per session unless configured otherwise: about two warning cycles
/// with their deliveries.
pub const DEFAULT_HISTORY_STEPS: usize = 32;

/// Most steps a session keeps, whatever is configured: a record is written whole.
pub const MAX_HISTORY_STEPS: usize = 256;

/// One session's bounded history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// The steps kept, oldest first.
    pub steps: VecDeque<Step>,
    /// Older steps no longer kept: shown as such, so a reader knows the start is
    /// missing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub dropped: u64,
    /// When the end user last wrote: what tells "silent since the agent's message".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_wrote_at: Option<u64>,
    /// Why each pending timer was set, by key: carried from one timer to the next so
    /// that the close can name the message that started the cycle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<TimerCause>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Why a pending timer was set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimerCause {
    /// The plugin's timer key.
    pub key: u32,
    /// Host time it was set at.
    pub set_at: u64,
    /// The event at the start of its chain, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// One step, at the host time it happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Host time in ms.
    pub at: u64,
    /// What happened.
    #[serde(flatten)]
    pub what: What,
}

/// What a step records, tagged `step` in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum What {
    /// An event from the gateway, handed to the plugin.
    Received {
        /// What it was.
        event: Cause,
    },
    /// The plugin set (or moved) a timer.
    TimerSet {
        /// Its key.
        key: u32,
        /// When it fires.
        due: u64,
        /// No timer of this key was pending: a cycle started here.
        started: bool,
        /// The hook that set it.
        by: Trigger,
    },
    /// The plugin cancelled a pending timer.
    TimerCancelled {
        /// Its key.
        key: u32,
        /// The hook that cancelled it.
        by: Trigger,
    },
    /// A timer fired and its hook was called.
    TimerFired {
        /// Its key.
        key: u32,
        /// When it had been set, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        set_at: Option<u64>,
    },
    /// The plugin posted into the chat.
    Posted {
        /// Its label (`warning`, `close`, `agent_notice`, ...).
        kind: String,
        /// The hook that posted.
        by: Trigger,
    },
    /// The plugin closed the session.
    Closed {
        /// The reason it gave.
        reason: String,
        /// The hook that closed it.
        by: Trigger,
    },
    /// The plugin asked for a webhook request (a push).
    Webhook {
        /// The webhook's name.
        webhook: String,
        /// The event type, e.g. `chat.auto_close.warning`.
        event_type: String,
        /// The `webhook-id` every attempt carries.
        id: String,
        /// The hook that asked.
        by: Trigger,
    },
    /// One attempt of a webhook delivery.
    WebhookAttempt {
        /// The `webhook-id`.
        id: String,
        /// 1 for the first.
        attempt: u32,
        /// What the receiver did (`status 503`, `timed out after 10s`).
        result: String,
        /// What follows (`delivered after 2 attempts`, `retry at ...`, `gave up: ...`).
        outcome: String,
    },
    /// One attempt of delivering a chat action (a post, a close) to the gateway.
    ActionAttempt {
        /// The action id the gateway deduplicates on.
        id: String,
        /// What the action is (`post_message`, `close_session`).
        action: String,
        /// 1 for the first.
        attempt: u32,
        /// How it went.
        outcome: String,
    },
}

/// What a hook was called for: an event, or a timer (with the event that started
/// its chain).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// The timer that fired, when the hook was a timer's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timer: Option<FiredTimer>,
    /// The event: the hook's own, or the one at the start of the timer's chain (absent
    /// when unknown, e.g. a timer set before history was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// When the end user last wrote, as of the hook: what tells "silent since".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_wrote_at: Option<u64>,
}

/// A timer that fired, as a trigger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiredTimer {
    /// Its key.
    pub key: u32,
    /// When it was set, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_at: Option<u64>,
}

/// An event, with the host time it came at.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// Host time in ms.
    pub at: u64,
    /// What it was.
    pub event: Cause,
}

/// What an event was, as far as a reader of the history needs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cause {
    /// A message. Its text is not kept: the history is for operators, not a copy of
    /// the chat.
    Message {
        /// Who wrote it.
        from: Role,
        /// An echo of a plugin's own post.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        echo: bool,
    },
    /// The session started.
    Opened,
    /// The session ended outside the plugin (agent, end user, gateway).
    ClosedOutside,
    /// The plugin's own close, reported back to it.
    ClosedByPlugin,
    /// The end user's client reported whether the chat is in view.
    Presence {
        /// In view.
        visible: bool,
    },
    /// The agent asked the end user to wait.
    Hold {
        /// Until when, if said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        until: Option<u64>,
    },
    /// The session went back to a queue.
    Queued,
    /// The session was handed to another agent or team.
    Transferred,
    /// A webhook request's final outcome, reported to the plugin.
    Answer,
}

/// Who wrote a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The customer.
    EndUser,
    /// A person on the contact centre's side.
    Agent,
    /// An automated participant.
    Bot,
    /// The platform itself.
    System,
}

impl History {
    /// Appends a step, dropping the oldest beyond `capacity`.
    pub fn push(&mut self, capacity: usize, step: Step) {
        while self.steps.len() >= capacity.max(1) {
            self.steps.pop_front();
            self.dropped += 1;
        }
        self.steps.push_back(step);
    }

    /// Why timer `key` was set, if it is known.
    pub fn timer(&self, key: u32) -> Option<&TimerCause> {
        self.timers.iter().find(|t| t.key == key)
    }

    /// Notes why timer `key` was set, replacing what was noted before.
    pub fn set_timer(&mut self, cause: TimerCause) {
        self.timers.retain(|t| t.key != cause.key);
        self.timers.push(cause);
    }

    /// Forgets why timer `key` was set (it was cancelled, or the session closed).
    pub fn cancel_timer(&mut self, key: u32) {
        self.timers.retain(|t| t.key != key);
    }
}

impl Trigger {
    /// The trigger of a hook called for `origin` itself.
    pub fn event(origin: Origin) -> Self {
        Trigger {
            timer: None,
            origin: Some(origin),
            user_wrote_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received(at: u64) -> Step {
        Step {
            at,
            what: What::Received {
                event: Cause::Message {
                    from: Role::Agent,
                    echo: false,
                },
            },
        }
    }

    #[test]
    fn the_oldest_steps_go_first_and_are_counted() {
        let mut history = History::default();
        for at in 0..5 {
            history.push(3, received(at));
        }
        let kept: Vec<u64> = history.steps.iter().map(|s| s.at).collect();
        assert_eq!(kept, [2, 3, 4]);
        assert_eq!(history.dropped, 2);
    }

    #[test]
    fn a_step_reads_back_as_written() {
        let step = Step {
            at: 7,
            what: What::Closed {
                reason: "inactivity".into(),
                by: Trigger {
                    timer: Some(FiredTimer {
                        key: 1,
                        set_at: Some(5),
                    }),
                    origin: Some(Origin {
                        at: 2,
                        event: Cause::Message {
                            from: Role::Agent,
                            echo: false,
                        },
                    }),
                    user_wrote_at: None,
                },
            },
        };
        let text = serde_json::to_string(&step).unwrap_or_default();
        assert!(text.contains(r#""step":"closed""#), "{text}");
        let back: Step = serde_json::from_str(&text).unwrap_or(received(0));
        assert_eq!(back, step);
    }

    #[test]
    fn a_timer_cause_is_replaced_and_cancelled_by_key() {
        let mut history = History::default();
        let cause = |key, set_at| TimerCause {
            key,
            set_at,
            origin: None,
        };
        history.set_timer(cause(1, 10));
        history.set_timer(cause(2, 11));
        history.set_timer(cause(1, 20));
        assert_eq!(history.timer(1).map(|t| t.set_at), Some(20));
        history.cancel_timer(1);
        assert!(history.timer(1).is_none());
        assert_eq!(history.timers.len(), 1);
    }
}
