//! The few Chatwoot REST calls the adapter makes, each authenticated with the
//! account's `api_access_token` header (routes in `config/routes.rb`; controllers
//! under `app/controllers/api/v1/accounts/`).

use serde::Deserialize;
use serde_json::{Value, json};

use autoclose_config::{ChatwootSettings, Credential};

use crate::rest::{CallError, Rest};

use super::payload::{Conversation, Message};
use super::{ECHO_KEY, SOURCE_ID_PREFIX};

/// A REST client for one Chatwoot installation.
#[derive(Clone)]
pub struct Client {
    rest: Rest,
}

/// The account a call is made for.
#[derive(Clone, Copy)]
pub struct Account<'a> {
    /// Its id.
    pub id: u64,
    /// Its access token.
    pub token: &'a Credential,
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
    /// A client for `settings.url`, each call bounded by `settings.timing.timeout_ms`.
    pub fn new(settings: &ChatwootSettings) -> Result<Self, String> {
        Ok(Client {
            rest: Rest::new("Chatwoot", &settings.url, settings.timing.timeout_ms)?,
        })
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
            // Chatwoot before 4.11.2 drops custom content attributes but keeps the
            // source id: both mark the post, so that its echo is ours on every version.
            "source_id": format!("{SOURCE_ID_PREFIX}{action}"),
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
        let headers = [("api_access_token", account.token.expose())];
        self.rest.call(method, path, &headers, body).await
    }
}
