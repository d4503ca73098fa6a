//! Outbound endpoints as the operator configures them: the webhooks plugins name, the
//! gateway's callback of `serve`, the egress policy, and `serve`'s ingest settings.

use std::collections::BTreeMap;

use autoclose_webhook::format::Format;
use autoclose_webhook::retry::{RawRetry, RetryPolicy};
use autoclose_webhook::secret::Secret;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::FieldError;
use crate::chatwoot::{ChatwootSettings, RawChatwoot};
use crate::env::resolve_env;
use crate::rocketchat::{RawRocketChat, RocketChatSettings};

/// The gateway's callback for chat actions (post a message, close a session): signed
/// and retried like a webhook. `Debug` redacts header values.
#[derive(Clone, Debug, PartialEq)]
pub struct GatewayCallback {
    /// The endpoint, its headers, secrets, time-out and retry policy. The gateway is
    /// the operator's own service, so private addresses are allowed.
    pub endpoint: Webhook,
}

/// How the server takes events.
#[derive(Clone, PartialEq, Eq)]
pub struct Ingest {
    /// Bearer token required on `/v1/*` requests; `None`: no authentication (only
    /// sensible on a loopback listener). Never printed.
    pub token: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most events in one request.
    pub max_events_per_request: usize,
}

/// Default largest ingest request body: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// Default most events per ingest request.
pub const DEFAULT_MAX_EVENTS_PER_REQUEST: usize = 1000;

impl Default for Ingest {
    fn default() -> Self {
        Ingest {
            token: None,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_events_per_request: DEFAULT_MAX_EVENTS_PER_REQUEST,
        }
    }
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("max_body_bytes", &self.max_body_bytes)
            .field("max_events_per_request", &self.max_events_per_request)
            .finish()
    }
}

/// An outbound webhook the operator configured. Plugins name it; only the host sees
/// its URL and headers. `Debug` redacts header values: they often carry tokens.
#[derive(Clone, PartialEq)]
pub struct Webhook {
    /// Where requests go.
    pub url: url::Url,
    /// HTTP method: `POST` (default), `PUT` or `PATCH`.
    pub method: String,
    /// Static headers added to every request (e.g. `Authorization`).
    pub headers: BTreeMap<String, String>,
    /// Signing secrets: none (unsigned), one, or two during a rotation.
    pub secrets: Vec<Secret>,
    /// Total time one attempt may take, connecting included.
    pub timeout_ms: u64,
    /// When to retry and when to give up.
    pub retry: RetryPolicy,
    /// How the body is built.
    pub format: Format,
}

/// Default total time of one attempt.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 10_000;

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<&str> = self.headers.keys().map(String::as_str).collect();
        f.debug_struct("Webhook")
            .field("url", &self.url.as_str())
            .field("method", &self.method)
            .field("headers (values redacted)", &headers)
            .field("secrets", &self.secrets)
            .field("timeout_ms", &self.timeout_ms)
            .field("retry", &self.retry)
            .field("format", &self.format)
            .finish()
    }
}

/// Egress policy for outbound requests.
#[derive(Clone, Debug, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// Let webhooks reach loopback and private addresses (on-premise push services,
    /// tests). Off by default.
    #[serde(default)]
    pub allow_private_networks: bool,
}

/// The gateway's callback for chat actions.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    /// The gateway's own endpoint for chat actions (the generic callback of
    /// docs/contract.md); tenants no platform adapter serves send their actions here.
    #[serde(default)]
    actions_url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    secret: Option<SecretSpec>,
    #[serde(default)]
    timeout: Option<autoclose_duration::Duration>,
    #[serde(default)]
    retry: Option<RawRetry>,
    /// Chatwoot accounts served through Chatwoot's own webhooks and REST API.
    #[serde(default)]
    chatwoot: Option<RawChatwoot>,
    /// Rocket.Chat workspaces served through their Omnichannel webhooks and REST API.
    #[serde(default)]
    rocketchat: Option<RawRocketChat>,
}

/// The `gateway` section parsed: the generic callback and the platform adapters.
pub(crate) struct Gateways {
    pub callback: Option<GatewayCallback>,
    pub chatwoot: Option<ChatwootSettings>,
    pub rocketchat: Option<RocketChatSettings>,
}

/// How `autoclose serve` takes events.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawIngest {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    max_body_bytes: Option<usize>,
    #[serde(default)]
    max_events_per_request: Option<usize>,
}

/// An outbound webhook.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    secret: Option<SecretSpec>,
    #[serde(default)]
    timeout: Option<autoclose_duration::Duration>,
    #[serde(default)]
    retry: Option<RawRetry>,
    /// The body format: `standard_webhooks` (default), a preset object such as
    /// `{"preset": "ntfy", "topic": "..."}`, or `{"template": {...}}`.
    #[serde(default)]
    format: Option<Value>,
}

/// One secret, or two during a rotation.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum SecretSpec {
    One(String),
    Rotation(Vec<String>),
}

/// Checks one outbound endpoint (a webhook, or the gateway's callback): URL, method,
/// header names, secrets, retry policy, body format and time-out. Errors name the field.
pub(crate) fn parse_endpoint(
    raw: RawWebhook,
    path: &str,
    url_key: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Webhook, FieldError> {
    let url = url::Url::parse(&raw.url).map_err(|e| {
        FieldError::new(
            format!("{path}.{url_key}"),
            format!("{:?} is not a URL: {e}", raw.url),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(FieldError::new(
            format!("{path}.{url_key}"),
            format!(
                "{:?} must be an http:// or https:// URL with a host",
                raw.url
            ),
        ));
    }
    let method = raw.method.unwrap_or_else(|| "POST".to_owned());
    if !matches!(method.as_str(), "POST" | "PUT" | "PATCH") {
        return Err(FieldError::new(
            format!("{path}.method"),
            format!("{method:?} is not allowed (use POST, PUT or PATCH)"),
        ));
    }
    for header in raw.headers.keys() {
        let valid = !header.is_empty()
            && header
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b));
        if !valid {
            return Err(FieldError::new(
                format!("{path}.headers"),
                format!("{header:?} is not a valid header name"),
            ));
        }
    }
    let secrets = match raw.secret {
        None => Vec::new(),
        Some(SecretSpec::One(value)) => vec![value],
        Some(SecretSpec::Rotation(values)) if (1..=2).contains(&values.len()) => values,
        Some(SecretSpec::Rotation(_)) => {
            return Err(FieldError::new(
                format!("{path}.secret"),
                "give one secret, or two during a rotation".into(),
            ));
        }
    };
    let secrets = secrets
        .iter()
        .map(|value| Secret::resolve(value, env))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|reason| FieldError::new(format!("{path}.secret"), reason))?;
    let retry = raw
        .retry
        .map(RetryPolicy::from_raw)
        .transpose()
        .map_err(|reason| FieldError::new(format!("{path}.retry"), reason))?
        .unwrap_or_default();
    let format = raw
        .format
        .map(Format::from_value)
        .transpose()
        .map_err(|reason| FieldError::new(format!("{path}.format"), reason))?
        .unwrap_or(Format::Standard);
    let timeout_ms = raw
        .timeout
        .map_or(DEFAULT_WEBHOOK_TIMEOUT_MS, |d| d.as_ms());
    if timeout_ms > 60_000 {
        return Err(FieldError::new(
            format!("{path}.timeout"),
            "must be at most 1m: a push that slow is not a push".into(),
        ));
    }
    Ok(Webhook {
        url,
        method,
        headers: raw.headers,
        secrets,
        timeout_ms,
        retry,
        format,
    })
}

impl RawGateway {
    /// The gateway's callback, checked as an endpoint, and the platform adapters.
    /// Errors name the field.
    pub(crate) fn parse(
        self,
        env: &impl Fn(&str) -> Option<String>,
    ) -> Result<Gateways, FieldError> {
        let chatwoot = self.chatwoot.map(|c| c.parse(env)).transpose()?;
        let rocketchat = self.rocketchat.map(|c| c.parse(env)).transpose()?;
        if let (Some(chatwoot), Some(rocketchat)) = (&chatwoot, &rocketchat)
            && let Some(tenant) = chatwoot
                .accounts
                .keys()
                .find(|t| rocketchat.servers.contains_key(*t))
        {
            return Err(FieldError::new(
                format!("gateway.rocketchat.servers.{tenant}"),
                format!(
                    "tenant {tenant:?} is already a Chatwoot account (gateway.chatwoot.accounts): one platform per tenant"
                ),
            ));
        }
        let Some(actions_url) = self.actions_url else {
            let callback_fields = !self.headers.is_empty()
                || self.secret.is_some()
                || self.timeout.is_some()
                || self.retry.is_some();
            if callback_fields || (chatwoot.is_none() && rocketchat.is_none()) {
                return Err(FieldError::new(
                    "gateway.actions_url".into(),
                    "missing: the generic callback needs its URL (or configure a platform: gateway.chatwoot or gateway.rocketchat)".into(),
                ));
            }
            return Ok(Gateways {
                callback: None,
                chatwoot,
                rocketchat,
            });
        };
        let raw = RawWebhook {
            url: actions_url,
            method: None,
            headers: self.headers,
            secret: self.secret,
            timeout: self.timeout,
            retry: self.retry,
            format: None,
        };
        let endpoint = parse_endpoint(raw, "gateway", "actions_url", env)?;
        Ok(Gateways {
            callback: Some(GatewayCallback { endpoint }),
            chatwoot,
            rocketchat,
        })
    }
}

impl RawIngest {
    /// The ingest settings over the defaults, each in its range. Errors are
    /// `(path, reason)`.
    pub(crate) fn parse(self, env: &impl Fn(&str) -> Option<String>) -> Result<Ingest, FieldError> {
        let mut ingest = Ingest::default();
        if let Some(token) = self.token {
            let token = resolve_env(&token, env)
                .map_err(|reason| FieldError::new("ingest.token".into(), reason))?;
            if token.len() < 16 {
                return Err(FieldError::new(
                    "ingest.token".into(),
                    "must have at least 16 characters".into(),
                ));
            }
            ingest.token = Some(token);
        }
        if let Some(bytes) = self.max_body_bytes {
            if !(1024..=64 * 1024 * 1024).contains(&bytes) {
                return Err(FieldError::new(
                    "ingest.max_body_bytes".into(),
                    format!("{bytes} is out of range (1024 to 67108864)"),
                ));
            }
            ingest.max_body_bytes = bytes;
        }
        if let Some(count) = self.max_events_per_request {
            if !(1..=100_000).contains(&count) {
                return Err(FieldError::new(
                    "ingest.max_events_per_request".into(),
                    format!("{count} is out of range (1 to 100000)"),
                ));
            }
            ingest.max_events_per_request = count;
        }
        Ok(ingest)
    }
}
