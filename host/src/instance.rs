//! The store data of one plugin instance and the capabilities it imports.
//!
//! Capabilities never act directly: they check the call against the tenant's rights
//! and the limits, then record a [`Command`]. The gateway applies the commands after
//! the hook returns, and drops them if it trapped, so a hook's effects are
//! all-or-nothing. Reads (sessions, clock, pending timers) go to the gateway's state,
//! which is lent to the store for the duration of each hook.

use std::collections::BTreeMap;
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
use crate::sessions::{ChannelId, Interner, SessionId, Sessions, TenantId};
use crate::timers::{TimerKey, TimerStore};

/// Most bytes of a plugin's stderr kept for the log when its instance traps.
const STDERR_CAPTURE: usize = 4 * 1024;
/// Longest log line a plugin may write; longer ones are cut.
const MAX_LOG_BYTES: usize = 1024;
/// Largest webhook `data` object, in bytes of JSON (push services cap bodies near 4 KB).
pub const MAX_WEBHOOK_DATA_BYTES: usize = 3 * 1024;
/// Longest `kind` label of a post.
const MAX_KIND_BYTES: usize = 64;

/// The part of the gateway's state that hooks read: lent to the store while a hook
/// runs (moved in and back out, no locking and no copying).
#[derive(Debug, Default)]
pub struct GatewayState {
    /// All sessions.
    pub sessions: Sessions,
    /// Channel names.
    pub channels: Interner,
    /// Pending timers.
    pub timers: TimerStore,
    /// The operator's webhooks.
    pub webhooks: Arc<BTreeMap<String, Webhook>>,
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
    Send {
        /// For which session.
        session: SessionId,
        /// The request id returned to the plugin.
        request: u64,
        /// The webhook's name.
        webhook: String,
        /// The event type.
        event_type: String,
        /// The data object.
        data: Value,
    },
    /// Close a session.
    Close {
        /// Which session.
        session: SessionId,
        /// Why.
        reason: String,
    },
}

/// Everything a store holds for one instance.
pub struct InstanceState {
    wasi: WasiCtx,
    table: ResourceTable,
    stderr: MemoryOutputPipe,
    pub(crate) limiter: StoreLimits,
    limits: Limits,
    tenant: TenantId,
    tenant_name: Arc<str>,
    /// The gateway's state while a hook runs; empty otherwise.
    pub(crate) lent: GatewayState,
    /// What the running hook asked for.
    pub(crate) commands: Vec<Command>,
}

impl InstanceState {
    /// A fresh state for `tenant`: a WASI context that grants nothing (no files, no
    /// environment, no network) and stderr captured for trap reports.
    pub(crate) fn new(tenant: TenantId, tenant_name: Arc<str>, limits: Limits) -> Self {
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
            lent: GatewayState::default(),
            commands: Vec::new(),
        }
    }

    /// What the plugin wrote to stderr (a panic message, usually), for the log.
    pub(crate) fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.contents())
            .trim()
            .to_owned()
    }

    fn push(&mut self, command: Command) -> wasmtime::Result<()> {
        if self.commands.len() >= self.limits.actions_per_hook {
            wasmtime::bail!(
                "plugin exceeded limits.actions_per_hook ({}) in one hook",
                self.limits.actions_per_hook
            );
        }
        self.commands.push(command);
        Ok(())
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
    ) -> wasmtime::Result<()> {
        if payload.len() > self.limits.max_timer_payload_bytes {
            wasmtime::bail!(
                "timer payload of {} bytes exceeds limits.max_timer_payload_bytes ({})",
                payload.len(),
                self.limits.max_timer_payload_bytes
            );
        }
        if !self.may_act_on(session) {
            return Ok(());
        }
        let key = TimerKey { session, key };
        let pending = self.lent.timers.count_session(session)
            + self
                .commands
                .iter()
                .filter(|c| matches!(c, Command::SetTimer { key: k, .. } if k.session == session))
                .count();
        if !self.lent.timers.contains(key) && pending >= self.limits.timers_per_session {
            wasmtime::bail!(
                "plugin exceeded limits.timers_per_session ({})",
                self.limits.timers_per_session
            );
        }
        self.push(Command::SetTimer { key, due, payload })
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

impl http::Host for InstanceState {
    fn send(
        &mut self,
        session: SessionId,
        request: http::WebhookRequest,
    ) -> wasmtime::Result<Result<u64, http::SendError>> {
        if !self.may_act_on(session) {
            return Ok(Err(http::SendError::NoSession));
        }
        if !self.lent.webhooks.contains_key(&request.webhook) {
            return Ok(Err(http::SendError::UnknownWebhook(request.webhook)));
        }
        if request.data.len() > MAX_WEBHOOK_DATA_BYTES {
            return Ok(Err(http::SendError::InvalidData(format!(
                "{} bytes; at most {MAX_WEBHOOK_DATA_BYTES}",
                request.data.len()
            ))));
        }
        let data = match serde_json::from_str::<Value>(&request.data) {
            Ok(data @ Value::Object(_)) => data,
            Ok(_) => {
                return Ok(Err(http::SendError::InvalidData(
                    "not a JSON object".into(),
                )));
            }
            Err(e) => return Ok(Err(http::SendError::InvalidData(e.to_string()))),
        };
        let id = self.lent.next_request;
        self.lent.next_request += 1;
        self.push(Command::Send {
            session,
            request: id,
            webhook: request.webhook,
            event_type: request.event_type,
            data,
        })?;
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
            return Ok(Err(chat::ActionError::TooLong(MAX_KIND_BYTES as u32)));
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
        let mut message = message;
        if message.len() > MAX_LOG_BYTES {
            let mut cut = MAX_LOG_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
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
