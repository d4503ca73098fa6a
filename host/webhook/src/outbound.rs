//! Where webhook attempts go: the seam between the core (which decides what to
//! send and when) and the transport (which sends).
//!
//! Replay uses [`ScriptedReceiver`]: nothing leaves the machine and a scenario scripts
//! the answers. A real host uses [`crate::http::HttpSender`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use crate::retry::AttemptResult;
use crate::secret::Secret;

/// One attempt of a delivery, with everything the transport needs. Carries the
/// operator's headers and secrets: `Debug` leaves them out.
#[derive(Clone)]
pub struct Attempt {
    /// The delivery's request id.
    pub request: u64,
    /// 1 for the first attempt.
    pub number: u32,
    /// The webhook's name.
    pub webhook: String,
    /// The event type (the plugin's).
    pub event_type: String,
    /// The `webhook-id`.
    pub id: String,
    /// HTTP method.
    pub method: String,
    /// Target URL.
    pub url: url::Url,
    /// The operator's static headers.
    pub headers: Vec<(String, String)>,
    /// Signing secrets (empty: unsigned).
    pub secrets: Arc<[Secret]>,
    /// The exact body bytes.
    pub body: Arc<[u8]>,
    /// Total time the attempt may take.
    pub timeout_ms: u64,
    /// Whether private and loopback addresses may be reached.
    pub allow_private_networks: bool,
}

impl std::fmt::Debug for Attempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attempt")
            .field("request", &self.request)
            .field("number", &self.number)
            .field("webhook", &self.webhook)
            .field("id", &self.id)
            .field("url", &self.url.as_str())
            .field("body_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// Takes attempts. Returns the result when it is known at once (replay), or `None`
/// when it will be reported through `Core::complete_attempt` (`autoclose-core`).
pub trait Outbound {
    /// Makes (or starts) one attempt.
    fn attempt(&mut self, attempt: Attempt) -> Option<AttemptResult>;
}

/// Answers every attempt with `200` at once and sends nothing.
#[derive(Debug, Default)]
pub struct AnswerOk;

impl Outbound for AnswerOk {
    fn attempt(&mut self, _: Attempt) -> Option<AttemptResult> {
        Some(AttemptResult::Answered {
            status: 200,
            retry_after_ms: None,
            body: Vec::new(),
        })
    }
}

/// Replay's stand-in for the customers' receivers: answers each webhook's attempts
/// from a script (a queue per webhook, filled by `webhook_response` scenario lines),
/// and `200` once the script is used up. Clones share the script.
#[derive(Clone, Debug, Default)]
pub struct ScriptedReceiver {
    script: Arc<Mutex<HashMap<String, VecDeque<AttemptResult>>>>,
}

impl ScriptedReceiver {
    /// Queues `answer` `times` times for the next attempts to `webhook`.
    pub fn push(&self, webhook: &str, answer: AttemptResult, times: u32) {
        let mut script = self
            .script
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let queue = script.entry(webhook.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(answer, times as usize));
    }
}

impl Outbound for ScriptedReceiver {
    fn attempt(&mut self, attempt: Attempt) -> Option<AttemptResult> {
        let mut script = self
            .script
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let scripted = script
            .get_mut(&attempt.webhook)
            .and_then(VecDeque::pop_front);
        Some(scripted.unwrap_or(AttemptResult::Answered {
            status: 200,
            retry_after_ms: None,
            body: Vec::new(),
        }))
    }
}

/// Keeps every attempt and answers none (they stay pending): lets a caller see what
/// the core would send, e.g. to deliver it itself (`autoclose test-webhook`).
#[derive(Clone, Debug, Default)]
pub struct Capture {
    attempts: Arc<Mutex<Vec<Attempt>>>,
}

impl Capture {
    /// The attempts captured so far.
    pub fn attempts(&self) -> Vec<Attempt> {
        self.attempts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

impl Outbound for Capture {
    fn attempt(&mut self, attempt: Attempt) -> Option<AttemptResult> {
        self.attempts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(attempt);
        None
    }
}
