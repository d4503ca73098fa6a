//! A session's history in words: each step as a line a contact-centre lead reads,
//! and for each action the rule that caused it ("closed: the end user was silent for
//! 5m after the agent's message at 10:02:11"). Pure functions of the steps, so that
//! what the console says is tested without a browser.
//!
//! Times are UTC: the host does not know a tenant's time zone (its plugin's
//! business hours do).

use autoclose_core::history::{Cause, Origin, Role, Step, Trigger, What};

/// `10:02:11`, UTC.
pub fn clock(ms: u64) -> String {
    let stamp = autoclose_core::rfc3339(ms);
    stamp.get(11..19).unwrap_or(&stamp).to_owned()
}

/// `2026-12-03 10:02:11 UTC`.
pub fn stamp(ms: u64) -> String {
    let stamp = autoclose_core::rfc3339(ms);
    match (stamp.get(..10), stamp.get(11..19)) {
        (Some(day), Some(time)) => format!("{day} {time} UTC"),
        _ => stamp,
    }
}

/// `5m`, `2m30s`, `800ms`.
pub fn span(ms: u64) -> String {
    autoclose_duration::Duration::from_ms(ms)
        .map(|d| d.to_string())
        .unwrap_or_else(|_| format!("{ms}ms"))
}

/// `retry at 1796319278849` (the core's words, in host ms) as `retry at 17:34:38`.
fn retry_clock(outcome: &str) -> String {
    match outcome
        .strip_prefix("retry at ")
        .and_then(|ms| ms.parse::<u64>().ok())
    {
        Some(at) => format!("retry at {}", clock(at)),
        None => outcome.to_owned(),
    }
}

/// Who wrote a message, possessive: "the agent's".
fn whose(role: Role) -> &'static str {
    match role {
        Role::EndUser => "the end user's",
        Role::Agent => "the agent's",
        Role::Bot => "the bot's",
        Role::System => "the platform's",
    }
}

/// An event, as the subject of a sentence: "the agent's message".
pub fn event(cause: &Cause) -> String {
    match cause {
        Cause::Message { from, echo: false } => format!("{} message", whose(*from)),
        Cause::Message { echo: true, .. } => "the echo of our own post".into(),
        Cause::Opened => "the session's start".into(),
        Cause::ClosedOutside => "the close by the platform".into(),
        Cause::ClosedByPlugin => "the plugin's own close".into(),
        Cause::Presence { visible: true } => "the end user coming back to the chat".into(),
        Cause::Presence { visible: false } => "the end user leaving the chat's tab or app".into(),
        Cause::Hold { until: Some(until) } => format!("a hold until {}", clock(*until)),
        Cause::Hold { until: None } => "a hold".into(),
        Cause::Queued => "the move back to a queue".into(),
        Cause::Transferred => "the transfer".into(),
        Cause::Answer => "a webhook's answer".into(),
    }
}

/// What an event was, as a line of the timeline: "message from the agent".
fn received(cause: &Cause) -> String {
    match cause {
        Cause::Message { from, echo: false } => format!(
            "message from {}",
            whose(*from).trim_end_matches("'s").trim_end_matches('\'')
        ),
        Cause::Message { echo: true, .. } => "echo of our own post".into(),
        Cause::Opened => "session opened".into(),
        Cause::ClosedOutside => "closed by the platform (agent, end user or gateway)".into(),
        Cause::ClosedByPlugin => "the plugin's close reported back to it".into(),
        Cause::Presence { visible: true } => "the end user is looking at the chat".into(),
        Cause::Presence { visible: false } => "the end user left the chat's tab or app".into(),
        Cause::Hold { until: Some(until) } => format!("on hold until {}", clock(*until)),
        Cause::Hold { until: None } => "on hold (until the agent speaks)".into(),
        Cause::Queued => "back in a queue".into(),
        Cause::Transferred => "transferred to another agent or team".into(),
        Cause::Answer => "a webhook's answer".into(),
    }
}

/// Why the hook behind an action ran, ending a sentence that starts with the
/// action: "the end user was silent for 5m after the agent's message at 10:02:11".
pub fn because(by: &Trigger, at: u64) -> String {
    match (&by.timer, &by.origin) {
        (
            Some(_),
            Some(Origin {
                at: from,
                event: cause,
            }),
        ) if matches!(cause, Cause::Message { from: role, echo: false } if *role != Role::EndUser)
            && by.user_wrote_at.is_none_or(|wrote| wrote < *from) =>
        {
            format!(
                "the end user was silent for {} after {} at {}",
                span(at.saturating_sub(*from)),
                event(cause),
                clock(*from)
            )
        }
        (Some(timer), Some(origin)) => format!(
            "its timer{} fired; the cycle began with {} at {}",
            timer
                .set_at
                .map(|set| format!(", set at {},", clock(set)))
                .unwrap_or_default(),
            event(&origin.event),
            clock(origin.at)
        ),
        (Some(timer), None) => match timer.set_at {
            Some(set) => format!("a timer set at {} fired", clock(set)),
            None => "a timer set before this history began fired".into(),
        },
        (None, Some(origin)) => format!(
            "in answer to {} at {}",
            event(&origin.event),
            clock(origin.at)
        ),
        (None, None) => "for a reason this history does not hold".into(),
    }
}

/// One step as a timeline line: what happened, and for actions why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// What kind of step (a CSS class and a column): `event`, `timer`, `action`,
    /// `delivery`.
    pub kind: &'static str,
    /// What happened.
    pub what: String,
    /// For actions and timers: the rule that caused it, in words.
    pub why: Option<String>,
}

/// `step` in words.
pub fn line(step: &Step) -> Line {
    let at = step.at;
    match &step.what {
        What::Received { event: cause } => Line {
            kind: "event",
            what: received(cause),
            why: None,
        },
        What::TimerSet {
            key,
            due,
            started,
            by,
        } => Line {
            kind: "timer",
            what: format!(
                "{} timer {key} due at {} (in {})",
                if *started {
                    "cycle started:"
                } else {
                    "next step:"
                },
                clock(*due),
                span(due.saturating_sub(at))
            ),
            why: Some(match (&by.timer, &by.origin) {
                (None, Some(origin)) => {
                    format!("set by {} at {}", event(&origin.event), clock(origin.at))
                }
                _ => format!("set when {}", because(by, at)),
            }),
        },
        What::TimerCancelled { key, by } => Line {
            kind: "timer",
            what: format!("timer {key} cancelled: the cycle ended"),
            why: Some(format!("cancelled {}", because(by, at))),
        },
        What::TimerFired { key, set_at } => Line {
            kind: "timer",
            what: match set_at {
                Some(set) => format!(
                    "timer {key} fired ({} after it was set)",
                    span(at.saturating_sub(*set))
                ),
                None => format!("timer {key} fired"),
            },
            why: None,
        },
        What::Posted { kind, by } => Line {
            kind: "action",
            what: format!("posted the {} into the chat", kind.replace('_', " ")),
            why: Some(format!("{}: {}", kind.replace('_', " "), because(by, at))),
        },
        What::Closed { reason, by } => Line {
            kind: "action",
            what: format!("closed the session ({reason})"),
            why: Some(format!("closed: {}", because(by, at))),
        },
        What::Webhook {
            webhook,
            event_type,
            id,
            by,
        } => Line {
            kind: "action",
            what: format!("push {event_type} to webhook {webhook} ({id})"),
            why: Some(format!("pushed: {}", because(by, at))),
        },
        What::WebhookAttempt {
            id,
            attempt,
            result,
            outcome,
        } => Line {
            kind: "delivery",
            what: format!(
                "push {id}, attempt {attempt}: {result}; {}",
                retry_clock(outcome)
            ),
            why: None,
        },
        What::ActionAttempt {
            id,
            action,
            attempt,
            outcome,
        } => Line {
            kind: "delivery",
            what: format!(
                "{} {id} to the gateway, attempt {attempt}: {outcome}",
                action.replace('_', " ")
            ),
            why: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autoclose_core::history::FiredTimer;

    const AGENT_AT: u64 = 1_764_756_131_000; // 2025-12-03T10:02:11Z

    fn agent() -> Origin {
        Origin {
            at: AGENT_AT,
            event: Cause::Message {
                from: Role::Agent,
                echo: false,
            },
        }
    }

    fn by_timer(origin: Option<Origin>, user_wrote_at: Option<u64>) -> Trigger {
        Trigger {
            timer: Some(FiredTimer {
                key: 0,
                set_at: Some(AGENT_AT + 180_000),
            }),
            origin,
            user_wrote_at,
        }
    }

    fn closed(by: Trigger) -> Step {
        Step {
            at: AGENT_AT + 300_000,
            what: What::Closed {
                reason: "inactivity".into(),
                by,
            },
        }
    }

    #[test]
    fn a_close_names_the_silence_and_the_message_it_followed() {
        let line = line(&closed(by_timer(Some(agent()), None)));
        assert_eq!(line.kind, "action");
        assert_eq!(line.what, "closed the session (inactivity)");
        assert_eq!(
            line.why.as_deref(),
            Some("closed: the end user was silent for 5m after the agent's message at 10:02:11")
        );
    }

    #[test]
    fn silence_is_claimed_only_when_the_user_did_not_write_since() {
        let wrote = by_timer(Some(agent()), Some(AGENT_AT + 1_000));
        assert_eq!(
            line(&closed(wrote)).why.as_deref(),
            Some(
                "closed: its timer, set at 10:05:11, fired; the cycle began with the agent's message at 10:02:11"
            )
        );
        let before = by_timer(Some(agent()), Some(AGENT_AT - 60_000));
        assert!(
            line(&closed(before))
                .why
                .is_some_and(|why| why.contains("silent for 5m"))
        );
    }

    #[test]
    fn what_the_history_does_not_hold_is_said_so() {
        let unknown = Trigger {
            timer: Some(FiredTimer {
                key: 0,
                set_at: None,
            }),
            ..Trigger::default()
        };
        assert_eq!(
            line(&closed(unknown)).why.as_deref(),
            Some("closed: a timer set before this history began fired")
        );
        let hold = Trigger::event(Origin {
            at: AGENT_AT,
            event: Cause::Hold { until: None },
        });
        assert_eq!(
            line(&Step {
                at: AGENT_AT,
                what: What::TimerCancelled { key: 0, by: hold },
            })
            .why
            .as_deref(),
            Some("cancelled in answer to a hold at 10:02:11")
        );
    }

    #[test]
    fn a_retry_is_given_its_clock_time() {
        let attempt = Step {
            at: AGENT_AT,
            what: What::WebhookAttempt {
                id: "msg_1".into(),
                attempt: 1,
                result: "status 503".into(),
                outcome: format!("retry at {}", AGENT_AT + 4_000),
            },
        };
        assert_eq!(
            line(&attempt).what,
            "push msg_1, attempt 1: status 503; retry at 10:02:15"
        );
    }

    #[test]
    fn times_and_spans_read_as_people_write_them() {
        assert_eq!(clock(AGENT_AT), "10:02:11");
        assert_eq!(stamp(AGENT_AT), "2025-12-03 10:02:11 UTC");
        assert_eq!(span(150_000), "2m30s");
        assert_eq!(span(800), "800ms");
    }
}
