//! The few Chatwoot REST calls the adapter makes, each authenticated with the
//! account's `api_access_token` header (routes in `config/routes.rb`; controllers
//! under `app/controllers/api/v1/accounts/`).

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use autoclose_config::{ChatwootSettings, Credential};
use autoclose_webhook::retry::{AttemptResult, parse_retry_after};

use super::ECHO_KEY;
use super::payload::{Conversation, Message};

/// Most bytes of an error answer kept for the log.
const MAX_ERROR_BODY: usize = 512;

/// A REST client for one Chatwoot installation.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base: url::Url,
}

/// The account a call is made for.
#[derive(Clone, Copy)]
pub struct Account<'a> {
    /// Its id.
    pub id: u64,
    /// Its access token.
    pub token: &'a Credential,
}

/// Why a call did not give its answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// Chatwoot answered with an error status.
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
    /// An answer that is not the JSON Chatwoot writes.
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

    /// Whether Chatwoot refused the credentials or the conversation (401, 403, 404):
    /// trying again cannot help.
    pub fn is_final(&self) -> bool {
        matches!(self, CallError::Status { status, .. } if matches!(status, 401 | 403 | 404))
    }
}

/// A page of the conversation list (`GET .../conversations`).
#[derive(Deserialize)]
struct ConversationList {
    data: ConversationPage,
}

#[derive(Deserialize)]
struct ConversationPage {
    #[serde(default)]
    payload: Vec<Conversation>,
}

/// The message list (`GET .../conversations/{id}/messages`).
#[derive(Deserialize)]
struct MessageList {
    #[serde(default)]
    payload: Vec<Message>,
}

impl Client {
    /// A client for `settings.url`, each call bounded by `settings.timeout_ms`.
    pub fn new(settings: &ChatwootSettings) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(settings.timeout_ms))
            .connect_timeout(Duration::from_millis(settings.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("autoclose/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the Chatwoot client: {e}"))?;
        let mut base = settings.url.clone();
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(Client { http, base })
    }

    /// The conversation with display id `conversation`.
    pub async fn conversation(
        &self,
        account: Account<'_>,
        conversation: u64,
    ) -> Result<Conversation, CallError> {
        let path = format!(
            "api/v1/accounts/{}/conversations/{conversation}",
            account.id
        );
        self.call(account, "GET", &path, None).await
    }

    /// The conversation's latest messages (Chatwoot answers the last 20, oldest
    /// first).
    pub async fn messages(
        &self,
        account: Account<'_>,
        conversation: u64,
    ) -> Result<Vec<Message>, CallError> {
        let path = format!(
            "api/v1/accounts/{}/conversations/{conversation}/messages",
            account.id
        );
        let list: MessageList = self.call(account, "GET", &path, None).await?;
        Ok(list.payload)
    }

    /// Posts `content` as an outgoing message (a private note when `private`),
    /// marked as ours with `action` so that its echo is recognised.
    pub async fn post(
        &self,
        account: Account<'_>,
        conversation: u64,
        content: &str,
        private: bool,
        action: &str,
    ) -> Result<Message, CallError> {
        let path = format!(
            "api/v1/accounts/{}/conversations/{conversation}/messages",
            account.id
        );
        let body = json!({
            "content": content,
            "message_type": "outgoing",
            "private": private,
            "content_attributes": { ECHO_KEY: action },
        });
        self.call(account, "POST", &path, Some(body)).await
    }

    /// Sets the conversation's status (`resolved`).
    pub async fn set_status(
        &self,
        account: Account<'_>,
        conversation: u64,
        status: &str,
    ) -> Result<(), CallError> {
        let path = format!(
            "api/v1/accounts/{}/conversations/{conversation}/toggle_status",
            account.id
        );
        let _: Value = self
            .call(account, "POST", &path, Some(json!({ "status": status })))
            .await?;
        Ok(())
    }

    /// One page (1-based) of the account's open conversations, newest activity first.
    pub async fn open_conversations(
        &self,
        account: Account<'_>,
        page: u32,
    ) -> Result<Vec<Conversation>, CallError> {
        let path = format!(
            "api/v1/accounts/{}/conversations?status=open&assignee_type=all&page={page}",
            account.id
        );
        let list: ConversationList = self.call(account, "GET", &path, None).await?;
        Ok(list.data.payload)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        account: Account<'_>,
        method: &'static str,
        path: &str,
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
        .header("api_access_token", account.token.expose())
        .header("accept", "application/json");
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
                // Without the URL: reqwest's errors print it, and nothing secret is in
                // it, but the path is already named.
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
