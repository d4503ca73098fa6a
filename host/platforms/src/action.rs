//! A chat action as every adapter reads it, and what making it came to.
//!
//! The engine keeps each action as the generic callback's body (docs/contract.md),
//! in order per session; an adapter parses it with [`Action::parse`], makes it as the
//! platform's REST calls, and answers a [`Made`] whose [`AttemptResult`] the engine's
//! retry policy settles.

use serde::Deserialize;

use autoclose_core::event::GatewayEvent;
use autoclose_webhook::retry::AttemptResult;

use crate::rest::CallError;

/// The post kind that goes to agents only: a private note in Chatwoot, a direct
/// message to the serving agent in Rocket.Chat.
pub const AGENT_NOTICE: &str = "agent_notice";

/// A chat action as the engine's callback record holds it.
#[derive(Debug, Deserialize)]
pub struct Action {
    /// The action id, the same on every attempt.
    pub id: String,
    /// `post_message` or `close_session`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The tenant.
    pub tenant: String,
    /// The session: the platform's conversation or room id.
    pub session: String,
    /// The post's kind label (`warning`, `close`, `agent_notice`).
    #[serde(default, rename = "kind")]
    pub post_kind: Option<String>,
    /// The post's text.
    #[serde(default)]
    pub text: Option<String>,
    /// Why a close is made (`inactivity`).
    #[serde(default)]
    pub reason: Option<String>,
}

impl Action {
    /// The action in `body`, or why the body is none (a final refusal).
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|e| format!("not a chat action: {e}"))
    }

    /// Whether the post goes to agents only.
    pub fn is_agent_notice(&self) -> bool {
        self.post_kind.as_deref() == Some(AGENT_NOTICE)
    }
}

/// What an action came to.
#[derive(Debug)]
pub struct Made {
    /// For the retry policy.
    pub result: AttemptResult,
    /// What the platform said that no webhook told us (the conversation is closed,
    /// snoozed, on hold, pending), for the engine to apply.
    pub learned: Vec<GatewayEvent>,
    /// Why nothing was posted although the action is done, for the log.
    pub skipped: Option<&'static str>,
    /// The error of the call that failed, for the log (names the conversation).
    pub error: Option<CallError>,
}

const OK: AttemptResult = AttemptResult::Answered {
    status: 200,
    retry_after_ms: None,
    body: Vec::new(),
};

impl Made {
    /// Made.
    pub fn done() -> Self {
        Made {
            result: OK,
            learned: Vec::new(),
            skipped: None,
            error: None,
        }
    }

    /// Nothing to make (`why`), with what the platform said on the way.
    pub fn skipped(why: &'static str, learned: Vec<GatewayEvent>) -> Self {
        Made {
            result: OK,
            learned,
            skipped: Some(why),
            error: None,
        }
    }

    /// A call failed; the retry policy reads `error`.
    pub fn failed(error: CallError) -> Self {
        Made {
            result: error.to_attempt(),
            learned: Vec::new(),
            skipped: None,
            error: Some(error),
        }
    }

    /// The attempt could not be started (`reason`: shutting down, a reload took the
    /// tenant away); tried again by the retry policy.
    pub fn failed_without_call(reason: &str) -> Self {
        Made {
            result: AttemptResult::Failed(reason.to_owned()),
            learned: Vec::new(),
            skipped: None,
            error: None,
        }
    }

    /// Whether the platform took the action (not skipped, not failed).
    pub fn is_made(&self) -> bool {
        self.skipped.is_none()
            && matches!(self.result, AttemptResult::Answered { status, .. } if (200..300).contains(&status))
    }

    /// The action cannot be made, ever (`reason`).
    pub fn refused(reason: String) -> Self {
        Made {
            result: AttemptResult::Refused(reason),
            learned: Vec::new(),
            skipped: None,
            error: None,
        }
    }
}
