//! `gateway.rocketchat`: `serve` speaking Rocket.Chat's Omnichannel webhooks and REST
//! API, so that a Rocket.Chat workspace gets warnings without a gateway of its own.
//!
//! One tenant per Rocket.Chat workspace: a workspace has one Omnichannel webhook URL
//! (Administration → Omnichannel → Webhooks), which posts to
//! `/v1/rocketchat/{tenant}`, and the tenant's posts and closes become REST calls made
//! as a bot user of that workspace. Departments are not tenants: a room forwarded to
//! another department would change tenants in the middle of its cycle.

use std::collections::BTreeMap;

use autoclose_webhook::retry::RawRetry;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::FieldError;
use crate::credential::{Credential, trimmed_secret};
use crate::env::resolve_env;
use crate::platform::{PlatformTiming, RawEvery, RawTiming, parse_base_url};

/// Fewest characters of the webhooks' shared token: it is all that authenticates a
/// Rocket.Chat webhook.
pub const MIN_WEBHOOK_TOKEN_CHARS: usize = 24;

/// How `serve` reaches Rocket.Chat workspaces and which tenant each one is.
#[derive(Clone, Debug, PartialEq)]
pub struct RocketChatSettings {
    /// REST calls and reconciliation (Rocket.Chat keeps a failed webhook in memory
    /// only, so a restart of Rocket.Chat or a long outage of ours loses it).
    pub timing: PlatformTiming,
    /// The workspaces, by the tenant each one is.
    pub servers: BTreeMap<String, RocketChatServer>,
}

/// One Rocket.Chat workspace, served as one tenant.
#[derive(Clone, Debug, PartialEq)]
pub struct RocketChatServer {
    /// The workspace's URL (`https://chat.example.com`): REST calls go under
    /// `{url}/api/v1/`.
    pub url: url::Url,
    /// The bot user's id (`X-User-Id`).
    pub user_id: String,
    /// The bot user's personal access token (`X-Auth-Token`), never printed.
    pub auth_token: Credential,
    /// The Omnichannel webhooks' secret token (`X-RocketChat-Livechat-Token`).
    pub webhook_token: Credential,
}

/// `gateway.rocketchat` as written.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRocketChat {
    /// Total time of one REST call (default 5s, at most 1m).
    #[serde(default)]
    timeout: Option<autoclose_duration::Duration>,
    /// Retries of posts and closes that failed with 5xx, 429 or a time-out.
    #[serde(default)]
    retry: Option<RawRetry>,
    /// How often the open rooms are read back through the API (default 5m;
    /// `"start_only"`: only at start).
    #[serde(default)]
    reconcile_every: Option<RawEvery>,
    /// How old a room's last message may be for reconciliation to submit it (default
    /// 1h).
    #[serde(default)]
    reconcile_window: Option<autoclose_duration::Duration>,
    /// The workspaces, by the tenant each one is (a key of `tenants`).
    servers: BTreeMap<String, RawRocketChatServer>,
}

/// One workspace as written.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawRocketChatServer {
    /// The workspace's URL, e.g. `https://chat.example.com`.
    url: String,
    /// The bot user's id (shown with its personal access token), or `env:NAME`.
    user_id: String,
    /// The bot user's personal access token, best as `env:NAME`.
    auth_token: String,
    /// The Omnichannel webhooks' secret token (Administration → Omnichannel →
    /// Webhooks → Secret token), at least 24 characters, best as `env:NAME`.
    webhook_token: String,
}

impl RawRocketChat {
    /// The settings, each checked; errors name the field under `gateway.rocketchat`.
    pub(crate) fn parse(
        self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<RocketChatSettings, FieldError> {
        let path = "gateway.rocketchat";
        let timing = RawTiming {
            timeout: self.timeout,
            retry: self.retry,
            reconcile_every: self.reconcile_every,
            reconcile_window: self.reconcile_window,
        }
        .parse(path)?;
        if self.servers.is_empty() {
            return Err(FieldError::new(
                format!("{path}.servers"),
                "name at least one workspace: {\"<tenant>\": {\"url\": \"https://...\", ...}}"
                    .into(),
            ));
        }
        let mut servers = BTreeMap::new();
        let mut urls: BTreeMap<String, String> = BTreeMap::new();
        for (tenant, raw) in self.servers {
            let at = format!("{path}.servers.{tenant}");
            let url = parse_base_url(&raw.url, format!("{at}.url"))?;
            if let Some(other) = urls.insert(
                url.as_str().trim_end_matches('/').to_owned(),
                tenant.clone(),
            ) {
                return Err(FieldError::new(
                    format!("{at}.url"),
                    format!(
                        "{} is already tenant {other:?}: one tenant per workspace (it has one webhook URL)",
                        raw.url
                    ),
                ));
            }
            let user_id = resolve_env(&raw.user_id, env)
                .map_err(|reason| FieldError::new(format!("{at}.user_id"), reason))?
                .trim()
                .to_owned();
            if user_id.is_empty() {
                return Err(FieldError::new(format!("{at}.user_id"), "is empty".into()));
            }
            let secret = |field: &str, value: &str| {
                resolve_env(value, env)
                    .and_then(|v| trimmed_secret(&v))
                    .map(Credential::new)
                    .map_err(|reason| FieldError::new(format!("{at}.{field}"), reason))
            };
            let auth_token = secret("auth_token", &raw.auth_token)?;
            if auth_token.expose().trim().is_empty() {
                return Err(FieldError::new(
                    format!("{at}.auth_token"),
                    "is empty".into(),
                ));
            }
            let webhook_token = secret("webhook_token", &raw.webhook_token)?;
            if webhook_token.expose().chars().count() < MIN_WEBHOOK_TOKEN_CHARS {
                return Err(FieldError::new(
                    format!("{at}.webhook_token"),
                    format!(
                        "must have at least {MIN_WEBHOOK_TOKEN_CHARS} characters: it is all that authenticates a webhook"
                    ),
                ));
            }
            servers.insert(
                tenant,
                RocketChatServer {
                    url,
                    user_id,
                    auth_token,
                    webhook_token,
                },
            );
        }
        Ok(RocketChatSettings { timing, servers })
    }
}
