//! `gateway.chatwoot`: `serve` speaking Chatwoot's own webhooks and REST API, so that
//! a Chatwoot installation gets warnings without a gateway of its own.
//!
//! One tenant per Chatwoot account: the account's webhook posts to
//! `/v1/chatwoot/{tenant}`, and the tenant's posts and closes become REST calls made
//! with the account's access token.

use std::collections::BTreeMap;

use autoclose_webhook::retry::RawRetry;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::FieldError;
use crate::credential::{Credential, trimmed_secret};
use crate::env::resolve_env;
use crate::platform::{PlatformTiming, RawEvery, RawTiming, parse_base_url};

/// How `serve` reaches a Chatwoot installation and which tenant each account is.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatwootSettings {
    /// Chatwoot's base URL (`https://chat.example.com`): REST calls go under
    /// `{url}/api/v1/accounts/{account_id}/`.
    pub url: url::Url,
    /// REST calls and reconciliation (Chatwoot does not retry account webhooks, so
    /// reconciliation is what catches a delivery that reached no node).
    pub timing: PlatformTiming,
    /// How far a signed webhook's timestamp may be from this host's clock.
    pub max_clock_skew_ms: u64,
    /// The accounts, by the tenant each one is.
    pub accounts: BTreeMap<String, ChatwootAccount>,
}

/// One Chatwoot account, served as one tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatwootAccount {
    /// The account's id (the number in `/app/accounts/{id}/...`).
    pub account_id: u64,
    /// The access token of the administrator user that posts and resolves (Profile
    /// settings → Access token; an agent bot's cannot list conversations); sent as
    /// `api_access_token`, never printed.
    pub api_access_token: Credential,
    /// How a webhook proves it comes from this account.
    pub inbound: ChatwootInbound,
}

/// How a Chatwoot webhook is authenticated.
#[derive(Clone, Debug, PartialEq)]
pub enum ChatwootInbound {
    /// Chatwoot 4.11.2 and later sign each delivery with the webhook's secret
    /// (`X-Chatwoot-Signature` over the timestamp and the body).
    Signed(Credential),
    /// Older versions sign nothing: the webhook URL carries a token of ours
    /// (`?token=...`), compared in constant time.
    UrlToken(Credential),
}

/// Default allowed clock skew of a signed webhook.
pub const DEFAULT_MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Fewest characters of a URL token.
pub const MIN_URL_TOKEN_CHARS: usize = 24;

/// `gateway.chatwoot` as written.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawChatwoot {
    /// Chatwoot's base URL, e.g. `https://chat.example.com`.
    url: String,
    /// Total time of one REST call (default 5s, at most 1m).
    #[serde(default)]
    timeout: Option<autoclose_duration::Duration>,
    /// Retries of posts and closes that failed with 5xx, 429 or a time-out.
    #[serde(default)]
    retry: Option<RawRetry>,
    /// How often the open conversations are read back through the API (default 5m;
    /// `"start_only"`: only at start).
    #[serde(default)]
    reconcile_every: Option<RawEvery>,
    /// How old a conversation's last message may be for reconciliation to submit it
    /// (default 1h).
    #[serde(default)]
    reconcile_window: Option<autoclose_duration::Duration>,
    /// How far a signed webhook's timestamp may be from this host's clock (default 5m).
    #[serde(default)]
    max_clock_skew: Option<autoclose_duration::Duration>,
    /// The Chatwoot accounts, by the tenant each one is (a key of `tenants`).
    accounts: BTreeMap<String, RawChatwootAccount>,
}

/// One account as written.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawChatwootAccount {
    /// The account's id.
    account_id: u64,
    /// The access token that posts and resolves, best as `env:NAME`.
    api_access_token: String,
    /// The webhook's secret (Chatwoot 4.11.2 and later show it with the webhook),
    /// best as `env:NAME`.
    #[serde(default)]
    webhook_secret: Option<String>,
    /// For Chatwoot before 4.11.2, which signs nothing: a random token of at least 24
    /// characters that the webhook URL carries as `?token=...`.
    #[serde(default)]
    webhook_url_token: Option<String>,
}

impl RawChatwoot {
    /// The settings, each checked; errors name the field under `gateway.chatwoot`.
    pub(crate) fn parse(
        self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<ChatwootSettings, FieldError> {
        let path = "gateway.chatwoot";
        let url = parse_base_url(&self.url, format!("{path}.url"))?;
        let timing = RawTiming {
            timeout: self.timeout,
            retry: self.retry,
            reconcile_every: self.reconcile_every,
            reconcile_window: self.reconcile_window,
        }
        .parse(path)?;
        let max_clock_skew_ms = self
            .max_clock_skew
            .map_or(DEFAULT_MAX_CLOCK_SKEW_MS, |d| d.as_ms());
        if !(1_000..=60 * 60 * 1000).contains(&max_clock_skew_ms) {
            return Err(FieldError::new(
                format!("{path}.max_clock_skew"),
                "must be between 1s and 1h".into(),
            ));
        }
        if self.accounts.is_empty() {
            return Err(FieldError::new(
                format!("{path}.accounts"),
                "name at least one account: {\"<tenant>\": {\"account_id\": 1, ...}}".into(),
            ));
        }
        let mut accounts = BTreeMap::new();
        let mut ids = BTreeMap::new();
        for (tenant, raw) in self.accounts {
            let at = format!("{path}.accounts.{tenant}");
            if let Some(other) = ids.insert(raw.account_id, tenant.clone()) {
                return Err(FieldError::new(
                    format!("{at}.account_id"),
                    format!(
                        "account {} is already tenant {other:?}: one tenant per account",
                        raw.account_id
                    ),
                ));
            }
            let secret = |field: &str, value: &str| {
                resolve_env(value, env)
                    .and_then(|v| trimmed_secret(&v))
                    .map(Credential::new)
                    .map_err(|reason| FieldError::new(format!("{at}.{field}"), reason))
            };
            let api_access_token = secret("api_access_token", &raw.api_access_token)?;
            if api_access_token.expose().trim().is_empty() {
                return Err(FieldError::new(
                    format!("{at}.api_access_token"),
                    "is empty".into(),
                ));
            }
            let inbound = match (raw.webhook_secret, raw.webhook_url_token) {
                (Some(value), None) => {
                    let secret = secret("webhook_secret", &value)?;
                    if secret.expose().is_empty() {
                        return Err(FieldError::new(
                            format!("{at}.webhook_secret"),
                            "is empty".into(),
                        ));
                    }
                    ChatwootInbound::Signed(secret)
                }
                (None, Some(value)) => {
                    let token = secret("webhook_url_token", &value)?;
                    if token.expose().chars().count() < MIN_URL_TOKEN_CHARS {
                        return Err(FieldError::new(
                            format!("{at}.webhook_url_token"),
                            format!("must have at least {MIN_URL_TOKEN_CHARS} characters"),
                        ));
                    }
                    ChatwootInbound::UrlToken(token)
                }
                (Some(_), Some(_)) => {
                    return Err(FieldError::new(
                        at,
                        "give webhook_secret (Chatwoot 4.11.2 and later) or webhook_url_token (older versions), not both".into(),
                    ));
                }
                (None, None) => {
                    return Err(FieldError::new(
                        at,
                        "missing webhook_secret (Chatwoot 4.11.2 and later sign webhooks; copy the webhook's secret) or, for older versions, webhook_url_token".into(),
                    ));
                }
            };
            accounts.insert(
                tenant,
                ChatwootAccount {
                    account_id: raw.account_id,
                    api_access_token,
                    inbound,
                },
            );
        }
        Ok(ChatwootSettings {
            url,
            timing,
            max_clock_skew_ms,
            accounts,
        })
    }
}
