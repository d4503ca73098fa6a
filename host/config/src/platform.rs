//! What every platform adapter's settings share: how long a REST call may take, how a
//! failed one is retried, and how reconciliation reads back what no webhook said.

use autoclose_webhook::retry::{RawRetry, RetryPolicy};

use crate::FieldError;

/// Default time of one REST call: Chatwoot's own webhook time-out.
pub const DEFAULT_PLATFORM_TIMEOUT_MS: u64 = 5_000;
/// Default interval of reconciliation.
pub const DEFAULT_RECONCILE_EVERY_MS: u64 = 5 * 60 * 1000;
/// Default age limit of what reconciliation submits.
pub const DEFAULT_RECONCILE_WINDOW_MS: u64 = 60 * 60 * 1000;

/// How an adapter's REST calls and reconciliation are paced.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PlatformTiming {
    /// Total time one REST call may take.
    pub timeout_ms: u64,
    /// When a failed post or close is tried again (5xx, 429 and time-outs; other 4xx
    /// are final).
    pub retry: RetryPolicy,
    /// How often the open conversations are read back through the API, to catch what
    /// a webhook that reached no node would have said. `0` (`"start_only"`): only at
    /// start.
    pub reconcile_every_ms: u64,
    /// How old a conversation's last message may be for reconciliation to submit it:
    /// older ones are left alone, so that a first start does not close every stale
    /// conversation at once.
    pub reconcile_window_ms: u64,
}

/// The word for `reconcile_every` that reads back once, at start, and never again.
pub const START_ONLY: &str = "start_only";

/// `reconcile_every` as written: a duration, or `"start_only"`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub(crate) enum RawEvery {
    /// Every so long (`5m`).
    Every(autoclose_duration::Duration),
    /// `start_only`.
    Word(String),
}

/// The timing fields as written, under `path` (`gateway.chatwoot`).
pub(crate) struct RawTiming {
    pub timeout: Option<autoclose_duration::Duration>,
    pub retry: Option<RawRetry>,
    pub reconcile_every: Option<RawEvery>,
    pub reconcile_window: Option<autoclose_duration::Duration>,
}

impl RawTiming {
    /// The timing over the defaults; errors name the field under `path`.
    pub(crate) fn parse(self, path: &str) -> Result<PlatformTiming, FieldError> {
        let timeout_ms = self
            .timeout
            .map_or(DEFAULT_PLATFORM_TIMEOUT_MS, |d| d.as_ms());
        if !(1..=60_000).contains(&timeout_ms) {
            return Err(FieldError::new(
                format!("{path}.timeout"),
                "must be more than 0s and at most 1m".into(),
            ));
        }
        let retry = self
            .retry
            .map(RetryPolicy::from_raw)
            .transpose()
            .map_err(|reason| FieldError::new(format!("{path}.retry"), reason))?
            .unwrap_or_default();
        let reconcile_window_ms = self
            .reconcile_window
            .map_or(DEFAULT_RECONCILE_WINDOW_MS, |d| d.as_ms());
        let reconcile_every_ms = match self.reconcile_every {
            None => DEFAULT_RECONCILE_EVERY_MS,
            Some(RawEvery::Every(every)) => every.as_ms(),
            Some(RawEvery::Word(word)) if word == START_ONLY => 0,
            Some(RawEvery::Word(word)) => {
                return Err(FieldError::new(
                    format!("{path}.reconcile_every"),
                    format!(
                        "{word:?} is neither a duration from 1s to 7d (such as \"5m\") nor \"{START_ONLY}\""
                    ),
                ));
            }
        };
        Ok(PlatformTiming {
            timeout_ms,
            retry,
            reconcile_every_ms,
            reconcile_window_ms,
        })
    }
}

/// A platform's base URL from `raw`, or an error at `path`.
pub(crate) fn parse_base_url(raw: &str, path: String) -> Result<url::Url, FieldError> {
    url::Url::parse(raw)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| {
            FieldError::new(
                path,
                format!("{raw:?} is not an http:// or https:// URL with a host"),
            )
        })
}
