//! Typed handles for what the host interns, whose methods are the capabilities.

use crate::bindings::chat_gateway::plugin::{chat, clock, http, logging, sessions, timers};
use crate::{
    ActionError, ChannelId, HttpResponseEvent, Level, MessageEvent, Presence, SendError,
    SessionEvent, SessionId, StateError, TimerError, TimerEvent, TimestampMs, WebhookRequest,
};

/// A chat session of the tenant whose event is being handled: the handle the host
/// interned, with the capabilities that act on it as methods.
///
/// Handles are never reused by the host, so a stale one reaches nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Session(SessionId);

/// The id the host gives a webhook request, reported back in its
/// [`HttpResponseEvent::request`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RequestId(pub u64);

impl Session {
    /// The session behind a raw handle from an event.
    pub fn from_id(id: SessionId) -> Self {
        Session(id)
    }

    /// The raw handle.
    pub fn id(self) -> SessionId {
        self.0
    }

    /// Posts `text` into the session's history as this plugin (`chat.post-message`);
    /// `kind` labels it for the gateway (`warning`, `close`, ...).
    pub fn post(self, kind: &str, text: &str) -> Result<(), ActionError> {
        chat::post_message(self.0, kind, text)
    }

    /// Ends the session with `reason`, e.g. `inactivity` (`chat.close-session`).
    pub fn close(self, reason: &str) -> Result<(), ActionError> {
        chat::close_session(self.0, reason)
    }

    /// Sets the timer `key` of this session to fire at `due` with `payload`,
    /// replacing one set under the same key (`timers.set`). Put in the payload what
    /// the timer needs when it fires: the instance may be gone by then.
    pub fn set_timer(self, key: u32, due: TimestampMs, payload: &[u8]) -> Result<(), TimerError> {
        timers::set(self.0, key, due, payload)
    }

    /// Cancels the timer `key`; whether one was pending.
    pub fn cancel_timer(self, key: u32) -> bool {
        timers::cancel(self.0, key)
    }

    /// Queues a call of a webhook the operator allows this tenant (`http.send`). The
    /// outcome comes later, once, to [`crate::Plugin::on_http_response`].
    pub fn send(self, request: &WebhookRequest) -> Result<RequestId, SendError> {
        http::send(self.0, request).map(RequestId)
    }

    /// The gateway's own id of the session.
    pub fn external_id(self) -> Option<String> {
        sessions::external_id(self.0)
    }

    /// One attribute the gateway gave when the session opened (`locale`, ...).
    pub fn attribute(self, name: &str) -> Option<String> {
        sessions::attribute(self.0, name)
    }

    /// Every attribute, in name order. One call copies them all into the guest: read
    /// them once per hook.
    pub fn attributes(self) -> Vec<(String, String)> {
        sessions::attributes(self.0)
    }

    /// What the end user's client last reported about its visibility.
    pub fn presence(self) -> Presence {
        sessions::last_presence(self.0)
    }

    /// The bytes this plugin last kept for the session; empty when none. Events carry
    /// them too (`state`), which costs no call.
    pub fn state(self) -> Vec<u8> {
        sessions::state(self.0)
    }

    /// Keeps `state` for the session, in the host, until it closes; empty clears it.
    pub fn set_state(self, state: &[u8]) -> Result<(), StateError> {
        sessions::set_state(self.0, state)
    }

    /// Writes `message` to the host's log at `level`, tagged with this session.
    pub fn log(self, level: Level, message: &str) {
        logging::log(level, Some(self.0), message);
    }
}

/// A channel (widget kind such as `web_chat`), as the host interned it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Channel(ChannelId);

impl Channel {
    /// The channel behind a raw handle from an event.
    pub fn from_id(id: ChannelId) -> Self {
        Channel(id)
    }

    /// The raw handle.
    pub fn id(self) -> ChannelId {
        self.0
    }

    /// The channel's name, e.g. `web_chat`. One call each time: cache it per tenant
    /// (a tenant has a handful of channels).
    pub fn name(self) -> Option<String> {
        sessions::channel_name(self.0)
    }
}

/// The host's time in ms since the Unix epoch: virtual under replay, so a plugin
/// takes time from here or from its events, never from WASI.
pub fn now() -> TimestampMs {
    clock::now()
}

/// Writes `message` to the host's log at `level`, not tied to a session.
pub fn log(level: Level, message: &str) {
    logging::log(level, None, message);
}

/// The handles every event about a session's chat carries, and the plugin state
/// delivered with it.
macro_rules! session_event_handles {
    ($($event:ty: $what:literal),* $(,)?) => {$(
        impl $event {
            #[doc = concat!("The session ", $what, ".")]
            pub fn session(&self) -> Session {
                Session(self.session)
            }

            /// The session's channel.
            pub fn channel(&self) -> Channel {
                Channel(self.channel)
            }

            /// What this plugin kept for the session, delivered with the event; empty
            /// when none.
            pub fn state(&self) -> &[u8] {
                self.state.as_deref().unwrap_or_default()
            }
        }
    )*};
}

session_event_handles!(
    MessageEvent: "the message was written in",
    SessionEvent: "concerned",
    TimerEvent: "the timer was set for",
);

impl MessageEvent {
    /// The text, if the tenant asked for it (`MessageFields::TEXT`) and the gateway
    /// gave one.
    pub fn text(&self) -> Option<&str> {
        self.field(|f| match f {
            crate::MessageField::Text(text) => Some(text),
            _ => None,
        })
    }

    /// The display name of who wrote it, if asked for (`MessageFields::SENDER_NAME`).
    pub fn sender_name(&self) -> Option<&str> {
        self.field(|f| match f {
            crate::MessageField::SenderName(name) => Some(name),
            _ => None,
        })
    }

    /// The gateway's message id, if asked for (`MessageFields::MESSAGE_ID`).
    pub fn message_id(&self) -> Option<&str> {
        self.field(|f| match f {
            crate::MessageField::MessageId(id) => Some(id),
            _ => None,
        })
    }

    fn field<'a>(
        &'a self,
        pick: impl Fn(&'a crate::MessageField) -> Option<&'a String>,
    ) -> Option<&'a str> {
        self.fields
            .iter()
            .flatten()
            .find_map(pick)
            .map(String::as_str)
    }
}

impl HttpResponseEvent {
    /// The session the request was sent for.
    pub fn session(&self) -> Session {
        Session(self.session)
    }

    /// The request's id, as [`Session::send`] returned it.
    pub fn request_id(&self) -> RequestId {
        RequestId(self.request)
    }
}

impl WebhookRequest {
    /// A call of `webhook` with an event of type `event_type` (`a-z 0-9 . _ -`) and
    /// `data`, a JSON object as text; every attempt a new delivery, retried until the
    /// webhook's own deadline.
    pub fn new(webhook: &str, event_type: &str, data: String) -> Self {
        WebhookRequest {
            webhook: webhook.to_owned(),
            event_type: event_type.to_owned(),
            data,
            idempotency_key: None,
            deliver_by: None,
        }
    }

    /// The same, collapsing at the receiver with any other notice of this session and
    /// event type that has the same `key`.
    pub fn idempotency_key(mut self, key: String) -> Self {
        self.idempotency_key = Some(key);
        self
    }

    /// The same, with no attempt made after `at`.
    pub fn deliver_by(mut self, at: TimestampMs) -> Self {
        self.deliver_by = Some(at);
        self
    }
}
