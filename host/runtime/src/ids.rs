//! The handles the host interns and plugins see as integers, as distinct types: a
//! tenant's handle is never taken for a channel's, nor a session's for a request's.
//!
//! The contract carries them as plain `u32`/`u64` (WIT type aliases); they are wrapped
//! here, on the host's side of the boundary, and unwrapped only where an event is
//! built or a capability call arrives.

/// A tenant: its index among the configured tenants, stable for an instance's life.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TenantId(pub u32);

/// A chat session. Never reused within a process, so a plugin holding a stale handle
/// reaches nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

/// A channel name (widget kind such as `web_chat`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub u32);

/// An outbound webhook request, as `http.send` returned it to the plugin and as its
/// outcome reports it back.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct RequestId(pub u64);

/// A timer: the session it belongs to and the plugin's key for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    /// The session.
    pub session: SessionId,
    /// The plugin's key.
    pub key: u32,
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
