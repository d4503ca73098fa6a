//! The store data of one plugin instance and the capabilities it imports.
//!
//! Capabilities never act directly: they check the call against the tenant's rights
//! and the limits, then record a [`Command`]. The gateway applies the commands after
//! the hook returns, and drops them if it trapped, so a hook's effects are
//! all-or-nothing. Reads (sessions, clock, pending timers) go to the gateway's state,
//! which is lent to the store for the duration of each hook.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use serde_json::Value;
use wasmtime::StoreLimits;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::bindings::chat_gateway::plugin::{
    chat, clock, events, http, logging, sessions, timers, types,
};
use crate::config::{Limits, Webhook};
use crate::outbox::Outbox;
use crate::sessions::{ChannelId, Interner, SessionId, Sessions, TenantId};
use crate::timers::{TimerKey, TimerStore};

/// Most bytes of a plugin's stderr kept for the log when its instance traps.
const STDERR_CAPTURE: usize = 4 * 1024;
/// Longest log line a plugin may write; longer ones are cut.
const MAX_LOG_BYTES: usize = 1024;
/// Log records a plugin may write per event of a call; more are dropped.
const MAX_LOGS_PER_EVENT: u32 = 32;
/// Largest webhook `data` object, in bytes of JSON (push services cap bodies near 4 KB).
pub const MAX_WEBHOOK_DATA_BYTES: usize = 3 * 1024;
/// Longest `kind` label of a post and `reason` of a close.
const MAX_KIND_BYTES: usize = 64;
/// Longest webhook event type and idempotency key.
const MAX_EVENT_TYPE_BYTES: usize = 128;

/// The part of the gateway's state that hooks read: lent to the store while a hook
/// runs (moved in and back out, no locking and no copying).
#[derive(Debug, Default)]
pub struct GatewayState {
    /// All sessions.
    pub sessions: Sessions,
    /// Channel names.
    pub channels: Interner,
    /// Which tenants use which channels: a tenant's plugin may read the names of its
    /// own channels only.
    pub channel_users: foldhash::HashSet<(TenantId, ChannelId)>,
    /// Pending timers.
    pub timers: TimerStore,
    /// The operator's webhooks.
    pub webhooks: Arc<BTreeMap<String, Webhook>>,
    /// Webhooks that answered 410 Gone, per tenant: nothing more goes to them.
    pub gone: HashSet<(TenantId, String)>,
    /// Deliveries under way.
    pub outbox: Outbox,
    /// Host time in ms.
    pub now: u64,
    /// Next outbound request id.
    pub next_request: u64,
}

/// A plugin's request, applied by the gateway once the hook has returned.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// Set or replace a timer.
    SetTimer {
        /// Which timer.
        key: TimerKey,
        /// When it fires.
        due: u64,
        /// What it carries.
        payload: Vec<u8>,
    },
    /// Cancel a timer.
    CancelTimer(TimerKey),
    /// Post a message.
    Post {
        /// Into which session.
        session: SessionId,
        /// The plugin's label.
        kind: String,
        /// The text.
        text: String,
    },
    /// Call a webhook.
    Send(SendRequest),
    /// Replace what the plugin keeps for a session.
    SetState {
        /// Which session.
        session: SessionId,
        /// The bytes; empty clears them.
        state: Vec<u8>,
    },
    /// Close a session.
    Close {
        /// Which session.
        session: SessionId,
        /// Why.
        reason: String,
    },
}

/// A plugin's webhook request, checked and waiting to be queued for delivery.
#[derive(Clone, Debug, PartialEq)]
pub struct SendRequest {
    /// For which session.
    pub session: SessionId,
    /// The request id returned to the plugin.
    pub request: u64,
    /// The webhook's name.
    pub webhook: String,
    /// The event type.
    pub event_type: String,
    /// The data object.
    pub data: Value,
    /// Makes the delivery id; `None`: unique per request.
    pub idempotency_key: Option<String>,
    /// No attempt after this instant.
    pub deliver_by: Option<u64>,
}

impl Command {
    /// The session the command acts on: it counts against that session's event.
    pub fn session(&self) -> SessionId {
        match self {
            Command::SetTimer { key, .. } | Command::CancelTimer(key) => key.session,
            Command::Post { session, .. }
            | Command::SetState { session, .. }
            | Command::Close { session, .. } => *session,
            Command::Send(send) => send.session,
        }
    }
}

/// Everything a store holds for one instance.
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    pub(crate) limiter: StoreLimits,
    /// The bounds of this tenant's instance.
    pub(crate) limits: Limits,
    tenant: TenantId,
    tenant_name: Arc<str>,
    /// The webhooks this tenant may call.
    allowed_webhooks: Arc<[String]>,
    /// Log records written in the running call.
    pub(crate) logs_this_call: u32,
    /// The sessions of the running call's events, in order: each action counts
    /// against the event of the session it names.
    pub(crate) call_sessions: Vec<SessionId>,
    /// The event of the running call's latest action so far: a plugin handles the
    /// events in order, acting on each event's session, so this never goes back.
    last_event_acted: usize,
    /// An action of the running call, which has several events, named a session of an
    /// earlier event than the previous action did, or of no event of the call: the
    /// plugin acts across sessions, and the host cannot say which event it belongs to.
    pub(crate) acted_outside: bool,
    /// The gateway's state while a hook runs; empty otherwise.
    pub(crate) lent: Box<GatewayState>,
    /// What the running hook asked for.
    pub(crate) commands: Vec<Command>,
    /// The sessions whose close the running call reports: the plugin may still send a
    /// webhook for them (a last notice), though it may not act on them in the chat.
    pub(crate) closing: Vec<SessionId>,
}

impl InstanceState {
    /// A fresh state for `tenant`: a WASI context that grants nothing (no files, no
    /// environment, no network) and stderr captured for trap reports.
    pub(crate) fn new(
        tenant: TenantId,
        tenant_name: Arc<str>,
        allowed_webhooks: Arc<[String]>,
        limits: Limits,
    ) -> Self {
        let stderr = MemoryOutputPipe::new(STDERR_CAPTURE);
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .stderr(stderr.clone())
            .build();
        InstanceState {
            wasi,
            table: ResourceTable::new(),
            stderr,
            limiter: StoreLimits::default(),
            limits,
            tenant,
            tenant_name,
            allowed_webhooks,
            logs_this_call: 0,
            call_sessions: Vec::new(),
            last_event_acted: 0,
            acted_outside: false,
            lent: Box::default(),
            commands: Vec::new(),
            closing: Vec::new(),
        }
    }

    /// What the plugin wrote to stderr (a panic message, usually), for the log.
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }

    /// Records `command`, counting it against the event of the session it names (in a
    /// call with one event, against that event whatever the session).
    fn push(&mut self, command: Command) -> wasmtime::Result<()> {
        let limit = self.limits.actions_per_hook;
        let counted = if self.call_sessions.len() <= 1 {
            self.commands.len()
        } else {
            let session = command.session();
            match self.call_sessions.iter().position(|s| *s == session) {
                Some(event) if event >= self.last_event_acted => {
                    self.last_event_acted = event;
                    self.commands
                        .iter()
                        .filter(|c| c.session() == session)
                        .count()
                }
                _ => {
                    self.acted_outside = true;
                    self.commands.len() / self.call_sessions.len()
                }
            }
        };
        if counted >= limit {
            wasmtime::bail!("plugin exceeded limits.actions_per_hook ({limit}) for one event");
        }
        self.commands.push(command);
        Ok(())
    }

    /// Limits for the coming call, which carries `sessions`' events in order.
    pub(crate) fn begin_call(&mut self, sessions: impl IntoIterator<Item = SessionId>) {
        self.call_sessions.clear();
        self.call_sessions.extend(sessions);
        self.last_event_acted = 0;
        self.acted_outside = false;
        self.logs_this_call = 0;
    }

    /// Whether `session` is this tenant's, open, and not closed earlier in this hook.
    fn may_act_on(&self, session: SessionId) -> bool {
        self.lent.sessions.open_of(self.tenant, session).is_some()
            && !self
                .commands
                .iter()
                .any(|c| matches!(c, Command::Close { session: s, .. } if *s == session))
    }

    fn external(&self, session: SessionId) -> Option<&str> {
        self.lent
            .sessions
            .get(session)
            .filter(|s| s.tenant == self.tenant)
            .map(|s| &*s.external)
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl types::Host for InstanceState {}
impl events::Host for InstanceState {}

impl timers::Host for InstanceState {
    fn set(
        &mut self,
        session: SessionId,
        key: u32,
        due: u64,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), timers::TimerError>> {
        let max_payload = self.limits.max_timer_payload_bytes;
        if payload.len() > max_payload {
            return Ok(Err(timers::TimerError::PayloadTooLarge(clamp_u32(
                max_payload,
            ))));
        }
        if !self.may_act_on(session) {
            return Ok(Err(timers::TimerError::NoSession));
        }
        let key = TimerKey { session, key };
        if !self.replaces_pending(key) {
            let pending = self.pending_keys_after_hook(session);
            if !pending.contains(&key.key) && pending.len() >= self.limits.timers_per_session {
                return Ok(Err(timers::TimerError::TooManyTimers(clamp_u32(
                    self.limits.timers_per_session,
                ))));
            }
            if !pending.contains(&key.key)
                && self.tenant_timers_after_hook() >= self.limits.timers_per_tenant
            {
                return Ok(Err(timers::TimerError::TooManyTenantTimers(clamp_u32(
                    self.limits.timers_per_tenant,
                ))));
            }
        }
        self.push(Command::SetTimer { key, due, payload })?;
        Ok(Ok(()))
    }

    fn cancel(&mut self, session: SessionId, key: u32) -> wasmtime::Result<bool> {
        if !self.may_act_on(session) {
            return Ok(false);
        }
        let key = TimerKey { session, key };
        let pending = self
            .commands
            .iter()
            .rev()
            .find_map(|c| match c {
                Command::SetTimer { key: k, .. } if *k == key => Some(true),
                Command::CancelTimer(k) if *k == key => Some(false),
                _ => None,
            })
            .unwrap_or_else(|| self.lent.timers.contains(key));
        self.push(Command::CancelTimer(key))?;
        Ok(pending)
    }
}

impl InstanceState {
    /// Whether setting `key` replaces a timer that is pending (in the store and not
    /// cancelled in this hook): the common case, which cannot break the per-session cap.
    fn replaces_pending(&self, key: TimerKey) -> bool {
        self.lent.timers.contains(key)
            && !self
                .commands
                .iter()
                .any(|c| matches!(c, Command::CancelTimer(k) if *k == key))
    }

    /// The tenant's pending timers after this hook so far, counted conservatively:
    /// the store's count plus every distinct new key set in this hook (cancels in the
    /// hook are not subtracted, so a hook may be refused slightly early, never late).
    fn tenant_timers_after_hook(&self) -> usize {
        let stored = self.lent.timers.count_of(self.tenant);
        // Far from the cap (the usual case) an upper bound will do, without a scan.
        if stored + self.commands.len() < self.limits.timers_per_tenant {
            return stored;
        }
        let new_keys: HashSet<TimerKey> = self
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::SetTimer { key, .. } if !self.lent.timers.contains(*key) => Some(*key),
                _ => None,
            })
            .collect();
        stored + new_keys.len()
    }

    /// The keys `session` would have pending after this hook so far. A short list
    /// (bounded by the per-session cap plus the actions of one hook), so a plain vector.
    fn pending_keys_after_hook(&self, session: SessionId) -> Vec<u32> {
        let mut keys: Vec<u32> = self.lent.timers.keys_of(session).map(|k| k.key).collect();
        for command in &self.commands {
            match command {
                Command::SetTimer { key, .. }
                    if key.session == session && !keys.contains(&key.key) =>
                {
                    keys.push(key.key);
                }
                Command::CancelTimer(key) if key.session == session => {
                    keys.retain(|k| *k != key.key);
                }
                _ => {}
            }
        }
        keys
    }
}

/// A plugin's log message as the host records it: control characters (newlines above
/// all, which would let a plugin forge log lines) escaped, cut at [`MAX_LOG_BYTES`].
fn log_text(message: String) -> String {
    let mut message = if message.chars().any(char::is_control) {
        let mut escaped = String::with_capacity(message.len() + 8);
        for c in message.chars() {
            if c.is_control() {
                escaped.extend(c.escape_default());
            } else {
                escaped.push(c);
            }
        }
        escaped
    } else {
        message
    };
    if message.len() > MAX_LOG_BYTES {
        let mut cut = MAX_LOG_BYTES;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    message
}

/// A limit as the `u32` the contract reports it in.
fn clamp_u32(value: usize) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

/// Whether `text` is a well-formed event type: `a-z 0-9 . _ -`, at most 128 bytes.
fn valid_event_type(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_EVENT_TYPE_BYTES
        && text
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl http::Host for InstanceState {
    fn send(
        &mut self,
        session: SessionId,
        request: http::WebhookRequest,
    ) -> wasmtime::Result<Result<u64, http::SendError>> {
        use http::SendError;
        if !self.may_act_on(session) && !self.closing.contains(&session) {
            return Ok(Err(SendError::NoSession));
        }
        if !self.allowed_webhooks.contains(&request.webhook)
            || !self.lent.webhooks.contains_key(&request.webhook)
        {
            return Ok(Err(SendError::UnknownWebhook(request.webhook)));
        }
        if self
            .lent
            .gone
            .contains(&(self.tenant, request.webhook.clone()))
        {
            return Ok(Err(SendError::WebhookGone(request.webhook)));
        }
        if !valid_event_type(&request.event_type) {
            return Ok(Err(SendError::InvalidData(format!(
                "event-type must be 1 to {MAX_EVENT_TYPE_BYTES} bytes of a-z 0-9 . _ -"
            ))));
        }
        if request
            .idempotency_key
            .as_ref()
            .is_some_and(|k| k.len() > MAX_EVENT_TYPE_BYTES)
        {
            return Ok(Err(SendError::InvalidData(format!(
                "idempotency-key is longer than {MAX_EVENT_TYPE_BYTES} bytes"
            ))));
        }
        if request.data.len() > MAX_WEBHOOK_DATA_BYTES {
            return Ok(Err(SendError::InvalidData(format!(
                "data is {} bytes; at most {MAX_WEBHOOK_DATA_BYTES}",
                request.data.len()
            ))));
        }
        let data = match serde_json::from_str::<Value>(&request.data) {
            Ok(data @ Value::Object(_)) => data,
            Ok(_) => {
                return Ok(Err(SendError::InvalidData(
                    "data is not a JSON object".into(),
                )));
            }
            Err(e) => return Ok(Err(SendError::InvalidData(format!("data: {e}")))),
        };
        let queued = self
            .commands
            .iter()
            .filter(|c| matches!(c, Command::Send(_)))
            .count();
        if self.lent.outbox.count(self.tenant) + queued >= self.limits.http_in_flight_per_tenant {
            return Ok(Err(SendError::TooManyInFlight));
        }
        let id = self.lent.next_request;
        self.lent.next_request += 1;
        self.push(Command::Send(SendRequest {
            session,
            request: id,
            webhook: request.webhook,
            event_type: request.event_type,
            data,
            idempotency_key: request.idempotency_key,
            deliver_by: request.deliver_by,
        }))?;
        Ok(Ok(id))
    }
}

impl chat::Host for InstanceState {
    fn post_message(
        &mut self,
        session: SessionId,
        kind: String,
        text: String,
    ) -> wasmtime::Result<Result<(), chat::ActionError>> {
        let max = self.limits.max_post_bytes;
        if text.len() > max || kind.len() > MAX_KIND_BYTES {
            return Ok(Err(chat::ActionError::TooLong(
                u32::try_from(max).unwrap_or(u32::MAX),
            )));
        }
        if !self.may_act_on(session) {
            return Ok(Err(chat::ActionError::NoSession));
        }
        self.push(Command::Post {
            session,
            kind,
            text,
        })?;
        Ok(Ok(()))
    }

    fn close_session(
        &mut self,
        session: SessionId,
        reason: String,
    ) -> wasmtime::Result<Result<(), chat::ActionError>> {
        if reason.len() > MAX_KIND_BYTES {
            return Ok(Err(chat::ActionError::TooLong(clamp_u32(MAX_KIND_BYTES))));
        }
        if !self.may_act_on(session) {
            return Ok(Err(chat::ActionError::NoSession));
        }
        self.push(Command::Close { session, reason })?;
        Ok(Ok(()))
    }
}

impl sessions::Host for InstanceState {
    fn external_id(&mut self, session: SessionId) -> wasmtime::Result<Option<String>> {
        Ok(self.external(session).map(str::to_owned))
    }

    fn channel_name(&mut self, channel: ChannelId) -> wasmtime::Result<Option<String>> {
        if !self.lent.channel_users.contains(&(self.tenant, channel)) {
            return Ok(None);
        }
        Ok(self.lent.channels.name(channel).map(str::to_owned))
    }

    fn attribute(&mut self, session: SessionId, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self
            .lent
            .sessions
            .get(session)
            .filter(|s| s.tenant == self.tenant)
            .and_then(|s| s.attributes.iter().find(|(k, _)| *k == name))
            .map(|(_, v)| v.clone()))
    }

    fn attributes(&mut self, session: SessionId) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self
            .lent
            .sessions
            .get(session)
            .filter(|s| s.tenant == self.tenant)
            .map(|s| s.attributes.clone())
            .unwrap_or_default())
    }

    fn state(&mut self, session: SessionId) -> wasmtime::Result<Vec<u8>> {
        let written = self.commands.iter().rev().find_map(|c| match c {
            Command::SetState { session: s, state } if *s == session => Some(state.clone()),
            _ => None,
        });
        if let Some(state) = written {
            return Ok(state);
        }
        Ok(self
            .lent
            .sessions
            .get(session)
            .filter(|s| s.tenant == self.tenant)
            .map(|s| s.plugin_state.clone())
            .unwrap_or_default())
    }

    fn set_state(
        &mut self,
        session: SessionId,
        state: Vec<u8>,
    ) -> wasmtime::Result<Result<(), sessions::StateError>> {
        if !self.may_act_on(session) {
            return Ok(Err(sessions::StateError::NoSession));
        }
        if state.len() > self.limits.max_session_state_bytes {
            return Ok(Err(sessions::StateError::TooLarge(clamp_u32(
                self.limits.max_session_state_bytes,
            ))));
        }
        self.push(Command::SetState { session, state })?;
        Ok(Ok(()))
    }

    fn last_presence(&mut self, session: SessionId) -> wasmtime::Result<types::Presence> {
        Ok(self
            .lent
            .sessions
            .get(session)
            .filter(|s| s.tenant == self.tenant)
            .map(|s| s.presence)
            .unwrap_or(types::Presence::Unknown))
    }
}

impl clock::Host for InstanceState {
    fn now(&mut self) -> wasmtime::Result<u64> {
        Ok(self.lent.now)
    }
}

impl logging::Host for InstanceState {
    fn log(
        &mut self,
        level: logging::Level,
        session: Option<SessionId>,
        message: String,
    ) -> wasmtime::Result<()> {
        self.logs_this_call += 1;
        let events = u32::try_from(self.call_sessions.len().max(1)).unwrap_or(u32::MAX);
        let cap = MAX_LOGS_PER_EVENT.saturating_mul(events);
        if self.logs_this_call > cap {
            if self.logs_this_call == cap + 1 {
                tracing::warn!(target: "plugin", tenant = &*self.tenant_name, "plugin exceeded {MAX_LOGS_PER_EVENT} log records per event in one call; dropping the rest");
            }
            return Ok(());
        }
        // Plugins log on the hot path (auto-close writes a debug note for every event
        // it ignores): a record nobody will see costs no more than this check.
        let enabled = match level {
            logging::Level::Debug => tracing::enabled!(target: "plugin", tracing::Level::DEBUG),
            logging::Level::Info => tracing::enabled!(target: "plugin", tracing::Level::INFO),
            logging::Level::Warn => tracing::enabled!(target: "plugin", tracing::Level::WARN),
            logging::Level::Error => tracing::enabled!(target: "plugin", tracing::Level::ERROR),
        };
        if !enabled {
            return Ok(());
        }
        let message = log_text(message);
        let tenant = &*self.tenant_name;
        let session = session.and_then(|s| self.external(s)).unwrap_or("");
        match level {
            logging::Level::Debug => {
                tracing::debug!(target: "plugin", tenant, session, "{message}")
            }
            logging::Level::Info => tracing::info!(target: "plugin", tenant, session, "{message}"),
            logging::Level::Warn => tracing::warn!(target: "plugin", tenant, session, "{message}"),
            logging::Level::Error => {
                tracing::error!(target: "plugin", tenant, session, "{message}")
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bindings::chat_gateway::plugin::sessions::Host as _;

    /// Tenant 0's instance, with a session and a channel of tenant 1 in the lent state.
    fn tenant_zero_seeing_tenant_one() -> (InstanceState, SessionId, ChannelId) {
        let mut state =
            InstanceState::new(0, "zero".into(), Arc::from(Vec::new()), Limits::default());
        let channel = state.lent.channels.intern("secret_channel");
        state.lent.channel_users.insert((1, channel));
        let session = state.lent.sessions.open_or_get(1, "their-session");
        if let Some(record) = state.lent.sessions.get_mut(session) {
            record.channel = Some(channel);
            record.attributes = vec![("name".into(), "Ana".into())];
        }
        (state, session, channel)
    }

    #[test]
    fn a_plugin_cannot_read_another_tenant_s_sessions_or_channels() {
        let (mut state, session, channel) = tenant_zero_seeing_tenant_one();
        assert_eq!(state.channel_name(channel).ok().flatten(), None);
        assert_eq!(state.external_id(session).ok().flatten(), None);
        assert_eq!(state.attribute(session, "name".into()).ok().flatten(), None);
        assert_eq!(state.attributes(session).ok(), Some(Vec::new()));
        state.lent.channel_users.insert((0, channel));
        assert_eq!(
            state.channel_name(channel).ok().flatten().as_deref(),
            Some("secret_channel")
        );
    }

    #[test]
    fn a_plugin_cannot_act_on_another_tenant_s_sessions() {
        use crate::bindings::chat_gateway::plugin::{chat::Host as _, timers::Host as _};
        let (mut state, session, _) = tenant_zero_seeing_tenant_one();
        assert!(matches!(
            state.post_message(session, "k".into(), "t".into()),
            Ok(Err(chat::ActionError::NoSession))
        ));
        assert!(matches!(
            state.close_session(session, "r".into()),
            Ok(Err(chat::ActionError::NoSession))
        ));
        assert!(matches!(
            state.set(session, 0, 1, vec![]),
            Ok(Err(timers::TimerError::NoSession))
        ));
        assert!(state.commands.is_empty());
    }

    #[test]
    fn session_state_is_bounded_owned_and_read_back_within_the_hook() {
        use crate::bindings::chat_gateway::plugin::sessions::Host as _;
        let limits = Limits {
            max_session_state_bytes: 16,
            ..Limits::default()
        };
        let mut state = InstanceState::new(0, "zero".into(), Arc::from(Vec::new()), limits);
        let session = state.lent.sessions.open_or_get(0, "s");
        if let Some(s) = state.lent.sessions.get_mut(session) {
            s.plugin_state = vec![7];
        }
        assert_eq!(
            state.state(session).ok(),
            Some(vec![7]),
            "what the host keeps"
        );
        assert!(matches!(
            state.set_state(session, vec![0; 17]),
            Ok(Err(sessions::StateError::TooLarge(16)))
        ));
        assert!(matches!(state.set_state(session, vec![1, 2]), Ok(Ok(()))));
        assert_eq!(
            state.state(session).ok(),
            Some(vec![1, 2]),
            "a later read in the same hook sees the write"
        );
        assert_eq!(
            state.commands.len(),
            1,
            "applied by the gateway after the hook"
        );
        let (mut other, theirs, _) = tenant_zero_seeing_tenant_one();
        if let Some(s) = other.lent.sessions.get_mut(theirs) {
            s.plugin_state = vec![9];
        }
        assert_eq!(
            other.state(theirs).ok(),
            Some(Vec::new()),
            "not another tenant's"
        );
        assert!(matches!(
            other.set_state(theirs, vec![1]),
            Ok(Err(sessions::StateError::NoSession))
        ));
    }

    #[test]
    fn the_tenant_timer_cap_counts_every_session_and_the_hook_so_far() {
        use crate::bindings::chat_gateway::plugin::timers::Host as _;
        let limits = Limits {
            timers_per_tenant: 3,
            ..Limits::default()
        };
        let mut state = InstanceState::new(0, "zero".into(), Arc::from(Vec::new()), limits);
        let s1 = state.lent.sessions.open_or_get(0, "s1");
        let s2 = state.lent.sessions.open_or_get(0, "s2");
        let other = state.lent.sessions.open_or_get(1, "theirs");
        for key in [0, 1] {
            state
                .lent
                .timers
                .set(TimerKey { session: s1, key }, 0, 10, b"");
        }
        state.lent.timers.set(
            TimerKey {
                session: other,
                key: 0,
            },
            1,
            10,
            b"",
        );
        assert!(
            matches!(state.set(s2, 0, 20, vec![]), Ok(Ok(()))),
            "2 pending + 1: within the cap; another tenant's timer does not count"
        );
        assert!(matches!(
            state.set(s2, 1, 20, vec![]),
            Ok(Err(timers::TimerError::TooManyTenantTimers(3)))
        ));
        assert!(
            matches!(state.set(s1, 0, 30, vec![]), Ok(Ok(()))),
            "replacing a pending timer is always fine"
        );
        assert!(
            matches!(state.set(s2, 0, 40, vec![]), Ok(Ok(()))),
            "re-setting a key set earlier in the hook adds nothing"
        );
    }

    #[test]
    fn the_timer_cap_counts_keys_after_the_hook() {
        use crate::bindings::chat_gateway::plugin::timers::Host as _;
        let limits = Limits {
            timers_per_session: 2,
            ..Limits::default()
        };
        let mut state = InstanceState::new(0, "zero".into(), Arc::from(Vec::new()), limits);
        let session = state.lent.sessions.open_or_get(0, "s");
        for key in [1, 2] {
            state.lent.timers.set(TimerKey { session, key }, 0, 10, b"");
        }
        assert!(
            matches!(state.set(session, 1, 20, vec![]), Ok(Ok(()))),
            "replacing is fine"
        );
        assert!(
            matches!(state.set(session, 1, 30, vec![]), Ok(Ok(()))),
            "twice too"
        );
        assert!(matches!(
            state.set(session, 3, 20, vec![]),
            Ok(Err(timers::TimerError::TooManyTimers(2)))
        ));
        assert!(matches!(state.cancel(session, 2), Ok(true)));
        assert!(
            matches!(state.set(session, 3, 20, vec![]), Ok(Ok(()))),
            "a cancelled key frees its place"
        );
        assert!(matches!(
            state.set(session, 4, 20, vec![]),
            Ok(Err(timers::TimerError::TooManyTimers(2)))
        ));
    }

    #[test]
    fn log_text_escapes_control_characters_and_cuts_at_a_char_boundary() {
        assert_eq!(log_text("plain text".into()), "plain text");
        assert_eq!(
            log_text("line\nforged\u{7}".into()),
            "line\\nforged\\u{7}",
            "a newline cannot start a forged record"
        );
        let long = "é".repeat(MAX_LOG_BYTES);
        let cut = log_text(long);
        assert!(cut.ends_with('…'));
        assert!(cut.len() <= MAX_LOG_BYTES + '…'.len_utf8());
        assert!(cut.len() >= MAX_LOG_BYTES - 1);
    }

    #[test]
    fn payloads_data_and_actions_per_hook_are_bounded() {
        use crate::bindings::chat_gateway::plugin::{
            chat::Host as _, http::Host as _, timers::Host as _,
        };
        let limits = Limits {
            actions_per_hook: 3,
            ..Limits::default()
        };
        let mut state =
            InstanceState::new(0, "zero".into(), Arc::from(vec!["push".to_owned()]), limits);
        let webhook = crate::config::HostConfig::parse(
            r#"{"webhooks": {"push": {"url": "https://push.example.com/"}}}"#,
            std::path::Path::new("t.json"),
        )
        .map(|c| c.webhooks)
        .unwrap_or_default();
        state.lent.webhooks = Arc::new(webhook);
        let session = state.lent.sessions.open_or_get(0, "s");
        let big_payload = vec![0u8; limits.max_timer_payload_bytes + 1];
        assert!(matches!(
            state.set(session, 1, 10, big_payload),
            Ok(Err(timers::TimerError::PayloadTooLarge(1024)))
        ));
        let request = |data: String| http::WebhookRequest {
            webhook: "push".into(),
            event_type: "test.event".into(),
            data,
            idempotency_key: None,
            deliver_by: None,
        };
        let big_data = format!("{{\"x\":\"{}\"}}", "y".repeat(MAX_WEBHOOK_DATA_BYTES));
        assert!(matches!(
            state.send(session, request(big_data)),
            Ok(Err(http::SendError::InvalidData(_)))
        ));
        assert!(state.commands.is_empty(), "refusals record nothing");
        for i in 0..3 {
            assert!(matches!(
                state.post_message(session, "k".into(), format!("{i}")),
                Ok(Ok(()))
            ));
        }
        assert!(
            state
                .post_message(session, "k".into(), "one too many".into())
                .is_err(),
            "the fourth action traps the hook"
        );
    }
}
