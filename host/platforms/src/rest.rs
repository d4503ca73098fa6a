//! The JSON-over-HTTP calls every adapter makes: one client per platform
//! installation, each call bounded in time, its failure said as a [`CallError`] that
//! the engine's retry policy reads through [`CallError::to_attempt`].
//!
//! The adapters differ in the paths and in how a call is authenticated (Chatwoot's
//! `api_access_token` header, Rocket.Chat's `X-Auth-Token` and `X-User-Id`); the
//! headers are given per call and are never part of an error.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

use autoclose_webhook::retry::{AttemptResult, parse_retry_after};

/// Most bytes of an error answer kept for the log.
pub const MAX_ERROR_BODY: usize = 512;

/// Why a call did not give its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The platform answered with an error status.
    #[error("{method} {path}: status {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// The method.
        method: &'static str,
        /// The path, without the host (it names the account and the conversation).
        path: String,
        /// The status.
        status: u16,
        /// What `Retry-After` asked for, in ms.
        retry_after_ms: Option<u64>,
        /// The start of the answer.
        body: String,
    },
    /// No answer: refused, reset, timed out. The call may or may not have been made.
    #[error("{method} {path}: {reason}")]
    Transport {
        /// The method.
        method: &'static str,
        /// The path.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// An answer that is not the JSON the platform writes.
    #[error("{method} {path}: unexpected answer: {reason}")]
    Answer {
        /// The method.
        method: &'static str,
        /// The path.
        path: String,
        /// What did not fit.
        reason: String,
    },
}

impl CallError {
    /// The error as an attempt's result, for the retry policy: an error status is an
    /// answer (5xx and 429 are retried, other 4xx are final), no answer is a failure
    /// (retried), an unreadable answer is final.
    pub fn to_attempt(&self) -> AttemptResult {
        match self {
            // A 410 from a platform (or a proxy before it) is a final refusal of this
            // call, not the generic callback's "gone" that stops a tenant's actions.
            CallError::Status { status: 410, .. } => AttemptResult::Refused(self.to_string()),
            CallError::Status {
                status,
                retry_after_ms,
                body,
                ..
            } => AttemptResult::Answered {
                status: *status,
                retry_after_ms: *retry_after_ms,
                body: body.clone().into_bytes(),
            },
            CallError::Transport { .. } => AttemptResult::Failed(self.to_string()),
            CallError::Answer { .. } => AttemptResult::Refused(self.to_string()),
        }
    }

    /// Whether the platform refused the credentials or the conversation (401, 403,
    /// 404): trying again cannot help.
    pub fn is_final(&self) -> bool {
        matches!(self, CallError::Status { status, .. } if matches!(status, 401 | 403 | 404))
    }

    /// The HTTP status, if the platform answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            CallError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The answer's body, if the platform answered with an error status.
    pub fn body(&self) -> &str {
        match self {
            CallError::Status { body, .. } => body,
            _ => "",
        }
    }
}

/// A JSON client for one installation at `base`.
#[derive(Clone)]
pub struct Rest {
    http: reqwest::Client,
    base: url::Url,
}

impl Rest {
    /// A client for `base`, each call bounded by `timeout_ms`; `platform` names it in
    /// the error of a client that cannot be built.
    pub fn new(platform: &str, base: &url::Url, timeout_ms: u64) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(timeout_ms))
            .connect_timeout(Duration::from_millis(timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("autoclose/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the {platform} client: {e}"))?;
        let mut base = base.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Rest { http, base })
    }

    /// Calls `method path` (relative to the base, with its query) with `headers` and
    /// an optional JSON `body`, and reads the answer as `T`.
    pub async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<T, CallError> {
        let url = self.base.join(path).map_err(|e| CallError::Answer {
            method,
            path: path.to_owned(),
            reason: format!("cannot build the URL: {e}"),
        })?;
        let mut request = match method {
            "POST" => self.http.post(url),
            _ => self.http.get(url),
        }
        .header("accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let transport = |e: reqwest::Error| CallError::Transport {
            method,
            path: path.to_owned(),
            reason: if e.is_timeout() {
                "timed out".to_owned()
            } else if e.is_connect() {
                "cannot connect".to_owned()
            } else {
                // Without the URL: the path is already named.
                e.without_url().to_string()
            },
        };
        let answer = request.send().await.map_err(transport)?;
        let status = answer.status();
        let retry_after_ms = answer
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
        let bytes = answer.bytes().await.map_err(transport)?;
        if !status.is_success() {
            return Err(CallError::Status {
                method,
                path: path.to_owned(),
                status: status.as_u16(),
                retry_after_ms: (status == StatusCode::TOO_MANY_REQUESTS
                    || status.is_server_error())
                .then_some(retry_after_ms)
                .flatten(),
                body: String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ERROR_BODY)])
                    .into_owned(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| CallError::Answer {
            method,
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }
}
