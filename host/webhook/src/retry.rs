//! When to try a webhook delivery again, and when to give up. Pure: the caller passes
//! the time, the attempt's result and the delivery's deadline.
//!
//! Retried: connection errors, time-outs, 408, 429 and 5xx, on a schedule of about 5s,
//! 30s, 2m, 10m, 30m, 1h, 2h, 4h after each failure (plus or minus 10% jitter, derived
//! from the delivery id so replays are reproducible), or later if the receiver sent
//! `Retry-After`. Never retried: other 4xx, 3xx (redirects are not followed), refusals
//! by the egress policy. 410 Gone also marks the webhook as gone for the tenant. No
//! attempt is ever made after the delivery's deadline: a stale push is worse than none.

use serde::Deserialize;

/// Delays after the first, second, ... failed attempt, in milliseconds.
pub const SCHEDULE_MS: [u64; 8] = [
    5_000, 30_000, 120_000, 600_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000,
];

/// A webhook's retry policy (`webhooks.<name>.retry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// How long after it was queued a delivery is still worth making, when the plugin
    /// gave no earlier deadline (auto-close gives the close time for warnings).
    pub deadline_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 8,
            deadline_ms: 60 * 60 * 1000,
        }
    }
}

/// `retry` as written in config.
#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetry {
    /// Attempts in all, the first included (1 to 20; default 8).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// No attempt later than this after the request was queued (default 1h).
    #[serde(default)]
    pub deadline: Option<autoclose_duration::Duration>,
}

impl RetryPolicy {
    /// The policy `raw` asks for, over the defaults; the error says what is out of
    /// range (the caller adds the path).
    pub fn from_raw(raw: RawRetry) -> Result<Self, String> {
        let default = RetryPolicy::default();
        let max_attempts = raw.max_attempts.unwrap_or(default.max_attempts);
        if !(1..=20).contains(&max_attempts) {
            return Err(format!(
                "max_attempts {max_attempts} is out of range (1 to 20)"
            ));
        }
        Ok(RetryPolicy {
            max_attempts,
            deadline_ms: raw.deadline.map_or(default.deadline_ms, |d| d.as_ms()),
        })
    }
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptResult {
    /// The receiver answered.
    Answered {
        /// HTTP status.
        status: u16,
        /// Its `Retry-After`, converted to a delay in ms.
        retry_after_ms: Option<u64>,
        /// The start of its body (at most 64 KiB), handed to the plugin with the final
        /// outcome.
        body: Vec<u8>,
    },
    /// No answer: connection refused, reset, time-out. Worth retrying.
    Failed(String),
    /// Not attempted: refused by policy (egress, unknown host scheme). Final.
    Refused(String),
}

impl std::fmt::Display for AttemptResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptResult::Answered { status, .. } => write!(f, "status {status}"),
            AttemptResult::Failed(reason) | AttemptResult::Refused(reason) => f.write_str(reason),
        }
    }
}

/// What to do after an attempt.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Decision {
    /// Done: the receiver took it.
    Delivered,
    /// Try again at this time.
    Retry {
        /// When (ms).
        at: u64,
    },
    /// Stop; the reason says why.
    GiveUp {
        /// Why, for logs and transcripts.
        reason: String,
    },
    /// The receiver answered 410: stop, and send nothing more to this webhook for the
    /// tenant until the configuration is reloaded.
    Gone,
}

impl Decision {
    /// The decision in words after `attempts` attempts, as transcripts and
    /// `test-webhook` show it: the one wording of every outcome.
    pub fn outcome(&self, attempts: u32) -> String {
        match self {
            Decision::Delivered => format!(
                "delivered after {attempts} attempt{}",
                if attempts == 1 { "" } else { "s" }
            ),
            Decision::Retry { at } => format!("retry at {at}"),
            Decision::GiveUp { reason } => format!("gave up: {reason}"),
            Decision::Gone => "gave up: 410 Gone; the webhook is disabled for this tenant until the configuration is reloaded".to_owned(),
        }
    }
}

/// Decides after attempt number `attempt` (1-based) ended with `result` at `now`.
pub fn decide(
    policy: &RetryPolicy,
    attempt: u32,
    result: &AttemptResult,
    now: u64,
    deadline: u64,
    delivery_id: &str,
) -> Decision {
    let retry_after = match result {
        AttemptResult::Answered { status, .. } if (200..300).contains(status) => {
            return Decision::Delivered;
        }
        AttemptResult::Answered { status: 410, .. } => return Decision::Gone,
        AttemptResult::Answered { status, .. } if (300..400).contains(status) => {
            return Decision::GiveUp {
                reason: format!("status {status}: redirects are not followed"),
            };
        }
        AttemptResult::Answered {
            status,
            retry_after_ms,
            ..
        } if *status == 408 || *status == 429 || *status >= 500 => *retry_after_ms,
        AttemptResult::Answered { status, .. } => {
            return Decision::GiveUp {
                reason: format!("status {status} is final"),
            };
        }
        AttemptResult::Failed(_) => None,
        AttemptResult::Refused(reason) => {
            return Decision::GiveUp {
                reason: reason.clone(),
            };
        }
    };
    if attempt >= policy.max_attempts {
        return Decision::GiveUp {
            reason: format!("{result} on attempt {attempt} of {}", policy.max_attempts),
        };
    }
    let index = (attempt as usize - 1).min(SCHEDULE_MS.len() - 1);
    let scheduled = jitter(SCHEDULE_MS[index], delivery_id, attempt);
    let delay = retry_after.map_or(scheduled, |asked| asked.max(scheduled));
    let at = now.saturating_add(delay);
    if at > deadline {
        return Decision::GiveUp {
            reason: format!("{result}; the next attempt would come after the deadline (stale)"),
        };
    }
    Decision::Retry { at }
}

/// Spreads `delay` by up to 10% either way, reproducibly for the same delivery and attempt.
fn jitter(delay: u64, delivery_id: &str, attempt: u32) -> u64 {
    let seed = delivery_id.bytes().fold(
        u64::from(attempt).wrapping_mul(0x9E37_79B9_7F4A_7C15),
        |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3),
    );
    let percent = 90 + seed % 21; // 90..=110
    delay * percent / 100
}

/// Parses a `Retry-After` header: delta-seconds or an HTTP date (relative to `now`).
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<u64> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(seconds.saturating_mul(1000));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).map_or(0, |d| d.as_millis() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16) -> AttemptResult {
        AttemptResult::Answered {
            status,
            retry_after_ms: None,
            body: Vec::new(),
        }
    }

    const FAR: u64 = u64::MAX;

    #[test]
    fn success_gone_redirect_and_client_errors_are_final() {
        let p = RetryPolicy::default();
        assert_eq!(
            decide(&p, 1, &answered(204), 0, FAR, "id"),
            Decision::Delivered
        );
        assert_eq!(decide(&p, 1, &answered(410), 0, FAR, "id"), Decision::Gone);
        assert!(
            matches!(decide(&p, 1, &answered(301), 0, FAR, "id"), Decision::GiveUp { reason } if reason.contains("redirects"))
        );
        assert!(matches!(
            decide(&p, 1, &answered(400), 0, FAR, "id"),
            Decision::GiveUp { .. }
        ));
        let refused = AttemptResult::Refused("egress".into());
        assert!(matches!(
            decide(&p, 1, &refused, 0, FAR, "id"),
            Decision::GiveUp { .. }
        ));
    }

    #[test]
    fn retryable_failures_follow_the_schedule_with_jitter() {
        let p = RetryPolicy::default();
        for (attempt, base) in [(1, 5_000), (2, 30_000), (3, 120_000), (8, 14_400_000)] {
            let p = RetryPolicy {
                max_attempts: 20,
                ..p
            };
            for result in [
                answered(503),
                answered(429),
                answered(408),
                AttemptResult::Failed("refused".into()),
            ] {
                let Decision::Retry { at } = decide(&p, attempt, &result, 1_000, FAR, "msg_x")
                else {
                    panic!("attempt {attempt} {result} must be retried");
                };
                let delay = at - 1_000;
                assert!(
                    delay >= base * 9 / 10 && delay <= base * 11 / 10,
                    "{attempt}: {delay}"
                );
            }
        }
    }

    #[test]
    fn jitter_is_reproducible_and_varies_between_deliveries() {
        let p = RetryPolicy::default();
        let a = decide(&p, 1, &answered(503), 0, FAR, "msg_a");
        assert_eq!(a, decide(&p, 1, &answered(503), 0, FAR, "msg_a"));
        let spread: std::collections::HashSet<_> = (0..20)
            .map(|i| decide(&p, 1, &answered(503), 0, FAR, &format!("msg_{i}")))
            .collect();
        assert!(spread.len() > 5, "jitter spreads retries: {spread:?}");
    }

    #[test]
    fn retry_after_is_honoured_and_deadlines_and_limits_stop_retries() {
        let p = RetryPolicy::default();
        let slow = AttemptResult::Answered {
            status: 503,
            retry_after_ms: Some(60_000),
            body: Vec::new(),
        };
        assert_eq!(
            decide(&p, 1, &slow, 0, FAR, "id"),
            Decision::Retry { at: 60_000 }
        );
        let stale = decide(&p, 1, &slow, 0, 59_999, "id");
        assert!(
            matches!(stale, Decision::GiveUp { ref reason } if reason.contains("deadline")),
            "{stale:?}"
        );
        let last = decide(&p, 8, &answered(500), 0, FAR, "id");
        assert!(
            matches!(last, Decision::GiveUp { ref reason } if reason == "status 500 on attempt 8 of 8"),
            "{last:?}"
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        assert_eq!(parse_retry_after("120", now), Some(120_000));
        let later = httpdate::fmt_http_date(now + std::time::Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(30_000));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
