//! What the core hands a plugin: the hook to call for an event, and the events a
//! hook's own actions cause (follow-ups).

use autoclose_runtime::bindings::chat_gateway::plugin::events::{
    Event, HttpOutcome, HttpResponseEvent, MessageEvent, MessageField, SessionChange, SessionEvent,
    TimerEvent,
};
use autoclose_runtime::bindings::chat_gateway::plugin::types::MessageFields;
use autoclose_runtime::{Call, ChannelId, RequestId, SessionId, TenantId};

/// The optional fields of `message` that the tenant asked for, in the documented order.
pub(crate) fn message_fields(
    message: &crate::event::MessageEvent,
    wanted: MessageFields,
) -> Option<Vec<MessageField>> {
    if wanted == MessageFields::empty() {
        return None;
    }
    let mut fields = Vec::new();
    if let Some(text) = message
        .text
        .as_ref()
        .filter(|_| wanted.contains(MessageFields::TEXT))
    {
        fields.push(MessageField::Text(text.clone()));
    }
    if let Some(id) = message
        .id
        .as_ref()
        .filter(|_| wanted.contains(MessageFields::MESSAGE_ID))
    {
        fields.push(MessageField::MessageId(id.clone()));
    }
    if let Some(name) = message
        .sender_name
        .as_ref()
        .filter(|_| wanted.contains(MessageFields::SENDER_NAME))
    {
        fields.push(MessageField::SenderName(name.clone()));
    }
    (!fields.is_empty()).then_some(fields)
}

/// An event the plugin is told about after the hook that caused it.
pub(crate) enum FollowUp {
    Closed {
        tenant: TenantId,
        session: SessionId,
        reason: String,
    },
    Answered {
        tenant: TenantId,
        session: SessionId,
        request: RequestId,
        outcome: HttpOutcome,
    },
}

/// The hook to call.
pub(crate) enum Hook {
    Message(MessageEvent),
    Session(SessionEvent),
    /// A timer, and how often it was delivered before and failed.
    Timer(TimerEvent, u8),
    Http(HttpResponseEvent),
}

/// A session hook; the plugin's state is filled in when it is delivered.
pub(crate) fn session_hook(
    tenant: TenantId,
    session: SessionId,
    channel: ChannelId,
    at: u64,
    change: SessionChange,
) -> Hook {
    Hook::Session(SessionEvent {
        state: None,
        tenant: tenant.0,
        session: session.0,
        channel: channel.0,
        at,
        change,
    })
}

impl Hook {
    /// The event as the plugin receives it, and how often it was delivered before.
    pub(crate) fn into_event(self) -> (Event, u8) {
        match self {
            Hook::Message(e) => (Event::Message(e), 0),
            Hook::Session(e) => (Event::Session(e), 0),
            Hook::Timer(e, redeliveries) => (Event::Timer(e), redeliveries),
            Hook::Http(e) => (Event::HttpResponse(e), 0),
        }
    }

    /// The hook back from [`Hook::into_event`].
    pub(crate) fn from_event(event: Event, redeliveries: u8) -> Hook {
        match event {
            Event::Message(e) => Hook::Message(e),
            Event::Session(e) => Hook::Session(e),
            Event::Timer(e) => Hook::Timer(e, redeliveries),
            Event::HttpResponse(e) => Hook::Http(e),
        }
    }

    /// The session whose close the hook reports, if it does.
    pub(crate) fn closing(&self) -> Option<SessionId> {
        match self {
            Hook::Session(SessionEvent {
                session,
                change: SessionChange::Closed(_),
                ..
            }) => Some(SessionId(*session)),
            _ => None,
        }
    }

    /// Gives the hook the plugin's state for its session (HTTP outcomes carry none).
    pub(crate) fn set_state(&mut self, state: Option<Vec<u8>>) {
        match self {
            Hook::Message(e) => e.state = state,
            Hook::Session(e) => e.state = state,
            Hook::Timer(e, _) => e.state = state,
            Hook::Http(_) => {}
        }
    }

    /// The session the hook is about.
    pub(crate) fn session(&self) -> SessionId {
        SessionId(match self {
            Hook::Message(e) => e.session,
            Hook::Session(e) => e.session,
            Hook::Timer(e, _) => e.session,
            Hook::Http(e) => e.session,
        })
    }
}

impl Hook {
    /// The call that delivers the hook on its own.
    pub(crate) fn call(&self) -> Call<'_> {
        match self {
            Hook::Message(e) => Call::Message(e),
            Hook::Session(e) => Call::Session(e),
            Hook::Timer(e, _) => Call::Timer(e),
            Hook::Http(e) => Call::Http(e),
        }
    }
}
