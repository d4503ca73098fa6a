//! The auto-close policy as pure functions: facts in, a [`Plan`] out.
//!
//! No I/O, no clock, no memory between calls: everything a decision needs arrives as
//! arguments (the settings, the event, the timer payload), so the same code runs inside
//! the component and natively in tests, and a replaced instance decides exactly as the
//! old one would have.

use crate::config::Settings;
use crate::template::Values;

/// The one timer key auto-close uses per session: setting it again replaces the
/// pending step, which is exactly "restart the cycle".
pub const TIMER_KEY: u32 = 0;

/// Reason given when closing a session for inactivity.
pub const CLOSE_REASON: &str = "inactivity";

/// Name this plugin posts under; messages echoed back with this origin are ignored.
pub const ORIGIN: &str = "autoclose";

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
pub struct Message {
    /// Who wrote it.
    pub sender: Sender,
    /// It is this plugin's own post, echoed back by the gateway.
    pub own_echo: bool,
    /// When it was written (ms).
    pub at: u64,
}

/// What a pending timer carries, fixed when its step was planned: a running cycle
/// keeps its timing even if the configuration changes meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// Post the warning; the close follows this long after it (ms). Measured from the
    /// moment the warning is actually posted, so a late timer never shortens the
    /// user's time to answer.
    Warn {
        /// `close_after` as configured when the cycle started.
        close_after: u64,
    },
    /// Close the session; `closes_at` is the deadline announced in the warning.
    Close {
        /// The deadline (ms).
        closes_at: u64,
    },
}

/// Version tag of the payload layout; bump it if the layout changes so that timers
/// written by an older component are recognised (they may outlive it in a durable host).
const PAYLOAD_V1: u8 = 1;
/// Size of an encoded [`Pending`].
pub const PAYLOAD_LEN: usize = 10;

impl Pending {
    /// Encodes the payload handed to the host's timer: version, step, time.
    pub fn encode(self) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        out[0] = PAYLOAD_V1;
        let (step, time) = match self {
            Pending::Warn { close_after } => (0, close_after),
            Pending::Close { closes_at } => (1, closes_at),
        };
        out[1] = step;
        out[2..].copy_from_slice(&time.to_le_bytes());
        out
    }

    /// Decodes a payload; `None` for anything this version did not write.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let bytes: &[u8; PAYLOAD_LEN] = bytes.try_into().ok()?;
        if bytes[0] != PAYLOAD_V1 {
            return None;
        }
        let mut time = [0u8; 8];
        time.copy_from_slice(&bytes[2..]);
        let time = u64::from_le_bytes(time);
        match bytes[1] {
            0 => Some(Pending::Warn { close_after: time }),
            1 => Some(Pending::Close { closes_at: time }),
            _ => None,
        }
    }
}

/// What to do with the session's timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    /// The warning before the close.
    Warning,
    /// The close itself.
    Close,
}

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
    /// When the session closes (ms). Also identifies the cycle, so a notice sent
    /// twice for the same cycle carries the same idempotency key.
    pub closes_at: u64,
}

impl Push {
    /// The idempotency key of the delivery: the cycle's deadline.
    pub fn idempotency_key(&self) -> String {
        self.closes_at.to_string()
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

/// Everything one event makes the plugin do, executed in this order: post, push,
/// timer, close. At a close this gives the documented order post_message, webhook,
/// close_session.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// A message to post into the chat: its notice kind and text.
    pub post: Option<(Notice, String)>,
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

/// Decides what a message does to the session's cycle (rules 1, 4, 5, 7).
///
/// `settings` is `None` where auto-close is off for the session's channel.
pub fn on_message(settings: Option<&Settings>, message: Message) -> Plan {
    if message.own_echo {
        return Plan::note("own post echoed back: ignored");
    }
    match message.sender {
        Sender::System => Plan::note("system message: ignored"),
        // Cancel even where auto-close is now off: a cycle started before a reload
        // must still be stopped by the user's answer.
        Sender::EndUser => Plan {
            timer: Some(TimerOp::Cancel),
            ..Plan::default()
        },
        Sender::Agent | Sender::Bot => match settings {
            None => Plan::note("auto-close is off for this channel"),
            Some(settings) => Plan {
                timer: Some(start_cycle(settings, message.at)),
                ..Plan::default()
            },
        },
    }
}

/// The first timer of a cycle that starts at `at`.
fn start_cycle(settings: &Settings, at: u64) -> TimerOp {
    let close_after = settings.close_after.as_ms();
    match &settings.warning {
        Some(warning) => TimerOp::Set {
            due: at.saturating_add(warning.after.as_ms()),
            pending: Pending::Warn { close_after },
        },
        None => {
            let closes_at = at.saturating_add(close_after);
            TimerOp::Set {
                due: closes_at,
                pending: Pending::Close { closes_at },
            }
        }
    }
}

/// Decides what a fired timer does (rules 2, 3, 9). `now` is the time it is handled.
pub fn on_timer(settings: Option<&Settings>, payload: &[u8], now: u64) -> Plan {
    let Some(pending) = Pending::decode(payload) else {
        return Plan::note("timer payload not written by this plugin version: ignored");
    };
    let Some(settings) = settings else {
        return Plan::note("auto-close was turned off for this channel: pending step dropped");
    };
    let closes_at = match pending {
        Pending::Warn { close_after } => now.saturating_add(close_after),
        Pending::Close { closes_at } => closes_at,
    };
    let values = Values {
        ms_left: closes_at.saturating_sub(now),
    };
    let push_for = |notice: Notice, wanted: fn(&crate::config::Push) -> bool, message: &str| {
        settings.push.as_ref().filter(|p| wanted(p)).map(|p| Push {
            notice,
            webhook: p.webhook.clone(),
            message: message.to_owned(),
            closes_at,
        })
    };
    match pending {
        Pending::Warn { .. } => {
            let close_timer = TimerOp::Set {
                due: closes_at,
                pending: Pending::Close { closes_at },
            };
            let Some(warning) = &settings.warning else {
                return Plan {
                    timer: Some(close_timer),
                    note: Some("the warning was removed from the config: closing on schedule"),
                    ..Plan::default()
                };
            };
            let text = warning.message.render(values);
            Plan {
                push: push_for(Notice::Warning, |p| p.on_warning, &text),
                post: Some((Notice::Warning, text)),
                timer: Some(close_timer),
                ..Plan::default()
            }
        }
        Pending::Close { .. } => {
            let text = settings.close_message.as_ref().map(|t| t.render(values));
            Plan {
                push: push_for(Notice::Close, |p| p.on_close, text.as_deref().unwrap_or("")),
                post: text.map(|text| (Notice::Close, text)),
                close: true,
                ..Plan::default()
            }
        }
    }
}

/// A session that closed has nothing pending (rule 6). The host drops its timers too;
/// cancelling here keeps the plugin correct on hosts that do not.
pub fn on_session_closed() -> Plan {
    Plan {
        timer: Some(TimerOp::Cancel),
        ..Plan::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;

    fn settings(text: &str) -> Settings {
        let tenant = config::parse(
            &format!(r#"{{"channels":{{"c":{{"auto_close":{text}}}}}}}"#),
            &["push".to_owned()],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        tenant.channel("c").cloned().expect("channel c")
    }

    fn with_warning() -> Settings {
        settings(
            r#"{"warning_after":"3m","close_after":"2m","warning_message":"{{minutes_left}} min left",
               "close_message":"bye","push":{"webhook":"push","on_warning":true,"on_close":true}}"#,
        )
    }

    fn msg(sender: Sender, at: u64) -> Message {
        Message {
            sender,
            own_echo: false,
            at,
        }
    }

    #[test]
    fn agent_and_bot_messages_start_a_cycle_from_their_own_time() {
        let s = with_warning();
        for sender in [Sender::Agent, Sender::Bot] {
            let plan = on_message(Some(&s), msg(sender, 1_000));
            assert_eq!(
                plan.timer,
                Some(TimerOp::Set {
                    due: 181_000,
                    pending: Pending::Warn {
                        close_after: 120_000
                    }
                })
            );
        }
    }

    #[test]
    fn without_a_warning_the_close_follows_the_last_message() {
        let s = settings(r#"{"close_after":"2m"}"#);
        let plan = on_message(Some(&s), msg(Sender::Agent, 5));
        assert_eq!(
            plan.timer,
            Some(TimerOp::Set {
                due: 120_005,
                pending: Pending::Close { closes_at: 120_005 }
            })
        );
    }

    #[test]
    fn end_user_cancels_system_and_echoes_do_nothing() {
        let s = with_warning();
        assert_eq!(
            on_message(Some(&s), msg(Sender::EndUser, 0)).timer,
            Some(TimerOp::Cancel)
        );
        assert_eq!(
            on_message(None, msg(Sender::EndUser, 0)).timer,
            Some(TimerOp::Cancel)
        );
        assert_eq!(on_message(Some(&s), msg(Sender::System, 0)).timer, None);
        let echo = Message {
            own_echo: true,
            ..msg(Sender::Agent, 0)
        };
        assert_eq!(on_message(Some(&s), echo).timer, None);
        let echo_user = Message {
            own_echo: true,
            ..msg(Sender::EndUser, 0)
        };
        assert_eq!(on_message(Some(&s), echo_user).timer, None);
        assert_eq!(on_message(None, msg(Sender::Agent, 0)).timer, None);
    }

    #[test]
    fn warning_posts_pushes_and_schedules_the_close() {
        let s = with_warning();
        let payload = Pending::Warn {
            close_after: 120_000,
        }
        .encode();
        let plan = on_timer(Some(&s), &payload, 181_000);
        assert_eq!(plan.post, Some((Notice::Warning, "2 min left".to_owned())));
        assert_eq!(
            plan.push.as_ref().map(|p| (p.notice, p.message.as_str())),
            Some((Notice::Warning, "2 min left"))
        );
        assert_eq!(
            plan.timer,
            Some(TimerOp::Set {
                due: 301_000,
                pending: Pending::Close { closes_at: 301_000 }
            })
        );
        assert!(!plan.close);
        assert_eq!(plan.push.as_ref().and_then(Push::deliver_by), Some(301_000));
    }

    #[test]
    fn close_posts_pushes_and_closes() {
        let s = with_warning();
        let payload = Pending::Close { closes_at: 301_000 }.encode();
        let plan = on_timer(Some(&s), &payload, 301_000);
        assert_eq!(plan.post, Some((Notice::Close, "bye".to_owned())));
        assert_eq!(plan.push.map(|p| p.notice), Some(Notice::Close));
        assert!(plan.close);
        assert_eq!(plan.timer, None);
    }

    #[test]
    fn push_switches_are_respected() {
        let s = settings(
            r#"{"warning_after":"1m","close_after":"1m","warning_message":"w","push":{"webhook":"push","on_warning":true}}"#,
        );
        let close = Pending::Close { closes_at: 1 }.encode();
        let plan = on_timer(Some(&s), &close, 1);
        assert_eq!(plan.push, None);
        assert_eq!(plan.post, None, "no close message configured");
        assert!(plan.close);
    }

    #[test]
    fn foreign_payloads_are_ignored() {
        let s = with_warning();
        for payload in [
            &[][..],
            &[9, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            &[1, 7, 0, 0, 0, 0, 0, 0, 0, 0],
        ] {
            let plan = on_timer(Some(&s), payload, 0);
            assert!(plan.note.is_some());
            assert!(!plan.close && plan.post.is_none() && plan.timer.is_none());
        }
    }

    #[test]
    fn payload_round_trips() {
        for pending in [
            Pending::Warn { close_after: 7 },
            Pending::Close {
                closes_at: u64::MAX - 3,
            },
        ] {
            assert_eq!(Pending::decode(&pending.encode()), Some(pending));
        }
    }

    #[test]
    fn a_late_warning_still_gives_the_full_close_after() {
        let s = with_warning();
        let payload = Pending::Warn {
            close_after: 120_000,
        }
        .encode();
        // The warning timer was delivered 50s late (say, after a host restart).
        let plan = on_timer(Some(&s), &payload, 231_000);
        assert_eq!(plan.post, Some((Notice::Warning, "2 min left".to_owned())));
        assert_eq!(
            plan.timer,
            Some(TimerOp::Set {
                due: 351_000,
                pending: Pending::Close { closes_at: 351_000 }
            })
        );
    }
}
