//! The gateway core: sessions, timers and one plugin instance per tenant, driven by
//! events and by time.
//!
//! Time is an input. Every entry point takes the host time in milliseconds; replay
//! passes virtual time from the scenario, a server passes the wall clock. Nothing here
//! sleeps, reads a clock or does I/O: outbound requests leave through [`Outbound`], and
//! actions are collected for the caller with [`Gateway::take_actions`].
//!
//! Ordering rules, relied on by plugins:
//! - an event at time `t` is handled before any timer due at `t`;
//! - timers fire in due order, ties in the order they were set;
//! - a hook's actions apply in the order the hook asked for them, after it returns;
//! - follow-ups (a plugin's own close, synchronous HTTP answers) are handled before
//!   the next event or timer.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Value, json};
use wasmtime::Store;

use crate::action::{Action, ActionKind};
use crate::bindings::Plugin;
use crate::bindings::chat_gateway::plugin::events::{
    CloseCause, HttpAnswer, HttpOutcome, HttpResponseEvent, MessageEvent, SessionChange,
    SessionEvent, TimerEvent,
};
use crate::bindings::chat_gateway::plugin::types::{
    Interests, MessageFields, Presence, SenderRole,
};
use crate::config::{HostConfig, TenantConfig};
use crate::event::{GatewayEvent, OpenedEvent, PresenceEvent, Sender, Visibility};
use crate::instance::{Command, GatewayState, InstanceState};
use crate::runtime::{LoadError, PluginComponent, Runtime};
use crate::sessions::{SessionId, TenantId};
use crate::timers::FiredTimer;

/// The earliest a timer may fire, after the time it is set at (see `timers.set` in
/// the WIT): a floor that keeps a plugin from spinning the host through timers.
pub const MIN_TIMER_DELAY_MS: u64 = 1_000;

/// Longest a failing tenant waits before its next instance is tried.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Wait after the second consecutive failure; doubles with each further one. The first
/// failure is retried at once: a single bad event should not silence a tenant.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A component could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A tenant's component refused its configuration.
    #[error("tenants.{tenant}{}: {reason}", if path.is_empty() { String::new() } else { format!(".{path}") })]
    Config {
        /// The tenant.
        tenant: String,
        /// Dotted path inside the tenant's document.
        path: String,
        /// What the component said.
        reason: String,
    },
    /// A tenant's component could not be started.
    #[error("tenants.{tenant}: component {component} failed to start: {reason}")]
    Start {
        /// The tenant.
        tenant: String,
        /// The component's name.
        component: String,
        /// The trap or error.
        reason: String,
    },
}

/// Why an event was refused.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// A message for a session whose channel was never given.
    #[error(
        "session {session:?} of tenant {tenant:?} has no channel: send session_opened first or give the message a channel"
    )]
    NoChannel {
        /// The tenant.
        tenant: String,
        /// The session.
        session: String,
    },
}

/// A webhook request on its way out. Carries the operator's URL and headers, which
/// never reach the plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboundRequest {
    /// The id the plugin was given.
    pub id: u64,
    /// The tenant's name.
    pub tenant: String,
    /// The gateway's session id.
    pub session: String,
    /// The webhook's name.
    pub webhook: String,
    /// HTTP method.
    pub method: String,
    /// Target URL.
    pub url: String,
    /// The payload envelope.
    pub body: Value,
}

/// Where outbound requests go. Returns the outcome when it is known at once (replay's
/// simulated receiver), or `None` when it will be reported later through
/// [`Gateway::complete`].
pub trait Outbound {
    /// Takes one request.
    fn send(&mut self, request: &OutboundRequest) -> Option<HttpOutcome>;
}

/// An [`Outbound`] that sends nothing and answers every request with `200`: replay's
/// stand-in for the customer's receiver, whose requests appear in the transcript.
#[derive(Debug, Default)]
pub struct AnswerOk;

impl Outbound for AnswerOk {
    fn send(&mut self, _: &OutboundRequest) -> Option<HttpOutcome> {
        Some(HttpOutcome::Answered(HttpAnswer {
            status: 200,
            body: Vec::new(),
        }))
    }
}

/// Counters of one tenant, for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantStats {
    /// Hook calls that returned normally.
    pub hooks_ok: u64,
    /// Hook calls that trapped or ran out of time.
    pub hooks_failed: u64,
    /// Instances created after the first (replacements).
    pub restarts: u64,
    /// Events dropped because the tenant was backed off or its component failed.
    pub events_dropped: u64,
}

struct Live {
    store: Store<InstanceState>,
    plugin: Plugin,
}

struct Tenant {
    name: Arc<str>,
    component: Arc<PluginComponent>,
    config: String,
    interests: Interests,
    live: Option<Live>,
    failures: u32,
    retry_at: u64,
    stats: TenantStats,
}

/// An event the plugin is told about after the hook that caused it.
enum FollowUp {
    Closed {
        tenant: TenantId,
        session: SessionId,
        reason: String,
    },
    Answered {
        tenant: TenantId,
        session: SessionId,
        request: u64,
        outcome: HttpOutcome,
    },
}

/// The hook to call.
enum Hook {
    Message(MessageEvent),
    Session(SessionEvent),
    Timer(TimerEvent),
    Http(HttpResponseEvent),
}

/// Sessions, timers and the tenants' plugin instances.
pub struct Gateway {
    runtime: Arc<Runtime>,
    tenants: Vec<Tenant>,
    tenant_ids: HashMap<String, TenantId>,
    webhook_names: Vec<String>,
    state: GatewayState,
    actions: Vec<Action>,
    follow_ups: VecDeque<FollowUp>,
    in_flight: HashMap<u64, (TenantId, SessionId)>,
    outbound: Box<dyn Outbound + Send>,
}

impl Gateway {
    /// Starts every tenant of `config`: loads the components it names (tenants without
    /// one run `default`), instantiates and configures them. Any refusal is an error
    /// naming the tenant and the path inside its document.
    pub fn new(
        runtime: Arc<Runtime>,
        config: &HostConfig,
        default: Arc<PluginComponent>,
        outbound: Box<dyn Outbound + Send>,
    ) -> Result<Self, GatewayError> {
        let mut components: HashMap<PathBuf, Arc<PluginComponent>> = HashMap::new();
        let mut gateway = Gateway {
            runtime,
            tenants: Vec::new(),
            tenant_ids: HashMap::new(),
            webhook_names: config.webhooks.keys().cloned().collect(),
            state: GatewayState {
                webhooks: Arc::new(config.webhooks.clone()),
                ..GatewayState::default()
            },
            actions: Vec::new(),
            follow_ups: VecDeque::new(),
            in_flight: HashMap::new(),
            outbound,
        };
        for TenantConfig {
            name,
            component,
            plugin_config,
        } in &config.tenants
        {
            let component = match component {
                None => default.clone(),
                Some(path) => match components.get(path) {
                    Some(c) => c.clone(),
                    None => {
                        let loaded = gateway.runtime.load_file(path)?;
                        components.insert(path.clone(), loaded.clone());
                        loaded
                    }
                },
            };
            let id = TenantId::try_from(gateway.tenants.len()).expect("fewer than 2^32 tenants");
            let mut tenant = Tenant {
                name: name.as_str().into(),
                component,
                config: plugin_config.clone(),
                interests: Interests {
                    message_fields: MessageFields::empty(),
                },
                live: None,
                failures: 0,
                retry_at: 0,
                stats: TenantStats::default(),
            };
            match start(
                &gateway.runtime,
                &mut tenant,
                id,
                &gateway.webhook_names,
                &mut gateway.state,
            ) {
                Ok(live) => tenant.live = Some(live),
                Err(StartError::Config { path, reason }) => {
                    return Err(GatewayError::Config {
                        tenant: name.clone(),
                        path,
                        reason,
                    });
                }
                Err(StartError::Trap(reason)) => {
                    return Err(GatewayError::Start {
                        tenant: name.clone(),
                        component: tenant.component.name().to_owned(),
                        reason,
                    });
                }
            }
            gateway.tenant_ids.insert(name.clone(), id);
            gateway.tenants.push(tenant);
        }
        Ok(gateway)
    }

    /// Handles `event` at host time `at`: first fires the timers due before `at`, then
    /// the event, then whatever follows from it.
    pub fn handle(&mut self, at: u64, event: &GatewayEvent) -> Result<(), EventError> {
        if at > 0 {
            self.fire_due(at - 1);
        }
        self.state.now = self.state.now.max(at);
        let Some(&tenant) = self.tenant_ids.get(event.tenant()) else {
            tracing::info!(
                tenant = event.tenant(),
                session = event.session(),
                "no such tenant configured: event ignored"
            );
            return Ok(());
        };
        let session = self.state.sessions.open_or_get(tenant, event.session());
        let now = self.state.now;
        let Some(record) = self.state.sessions.get_mut(session) else {
            return Ok(());
        };
        if record.closed {
            tracing::debug!(
                tenant = event.tenant(),
                session = event.session(),
                "session already closed: event ignored"
            );
            return Ok(());
        }
        let hook = match event {
            GatewayEvent::SessionOpened(OpenedEvent {
                channel,
                attributes,
                ..
            }) => {
                let channel = self.state.channels.intern(channel);
                let record = self
                    .state
                    .sessions
                    .get_mut(session)
                    .expect("session exists");
                record.channel = Some(channel);
                record.attributes = attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                Hook::Session(SessionEvent {
                    tenant,
                    session,
                    channel,
                    at: now,
                    change: SessionChange::Opened,
                })
            }
            GatewayEvent::Message(message) => {
                let channel = match (record.channel, &message.channel) {
                    (Some(channel), _) => channel,
                    (None, Some(name)) => {
                        let channel = self.state.channels.intern(name);
                        if let Some(record) = self.state.sessions.get_mut(session) {
                            record.channel = Some(channel);
                        }
                        channel
                    }
                    (None, None) => {
                        return Err(EventError::NoChannel {
                            tenant: message.tenant.clone(),
                            session: message.session.clone(),
                        });
                    }
                };
                let fields = self.tenants[tenant as usize].interests.message_fields;
                Hook::Message(MessageEvent {
                    tenant,
                    session,
                    channel,
                    sender: match message.sender {
                        Sender::Agent => SenderRole::Agent,
                        Sender::EndUser => SenderRole::EndUser,
                        Sender::Bot => SenderRole::Bot,
                        Sender::System => SenderRole::System,
                    },
                    at: now,
                    has_attachment: message.attachment,
                    origin: message.origin.clone(),
                    message_id: message
                        .id
                        .clone()
                        .filter(|_| fields.contains(MessageFields::MESSAGE_ID)),
                    text: message
                        .text
                        .clone()
                        .filter(|_| fields.contains(MessageFields::TEXT)),
                })
            }
            GatewayEvent::Presence(PresenceEvent { state, .. }) => {
                let presence = match state {
                    Visibility::Visible => Presence::Visible,
                    Visibility::Hidden => Presence::Hidden,
                };
                record.presence = presence;
                let Some(channel) = record.channel else {
                    return Ok(());
                };
                Hook::Session(SessionEvent {
                    tenant,
                    session,
                    channel,
                    at: now,
                    change: SessionChange::Presence(presence),
                })
            }
            GatewayEvent::SessionClosed(_) => {
                record.closed = true;
                let channel = record.channel;
                self.state.timers.cancel_session(session);
                let Some(channel) = channel else {
                    return Ok(());
                };
                Hook::Session(SessionEvent {
                    tenant,
                    session,
                    channel,
                    at: now,
                    change: SessionChange::Closed(CloseCause::External),
                })
            }
        };
        self.call(tenant, hook);
        self.run_follow_ups();
        Ok(())
    }

    /// Fires every timer due at or before `to` (in due order), advancing host time to
    /// each timer's due time as it goes, and finally to `to`.
    pub fn advance_to(&mut self, to: u64) {
        self.fire_due(to);
        self.state.now = self.state.now.max(to);
    }

    /// When the next timer is due, if any is pending.
    pub fn next_due(&self) -> Option<u64> {
        self.state.timers.next_due()
    }

    /// The host time: the latest event, timer or advance seen.
    pub fn now(&self) -> u64 {
        self.state.now
    }

    /// Number of pending timers.
    pub fn pending_timers(&self) -> usize {
        self.state.timers.len()
    }

    /// Number of sessions seen.
    pub fn sessions_seen(&self) -> usize {
        self.state.sessions.len()
    }

    /// The actions taken since the last call, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    /// Counters of the tenant `name`.
    pub fn tenant_stats(&self, name: &str) -> Option<TenantStats> {
        let id = *self.tenant_ids.get(name)?;
        Some(self.tenants[id as usize].stats)
    }

    /// Reports the outcome of a request that [`Outbound::send`] left pending. Unknown
    /// ids (already completed) are ignored.
    pub fn complete(&mut self, request: u64, outcome: HttpOutcome) {
        if let Some((tenant, session)) = self.in_flight.remove(&request) {
            self.follow_ups.push_back(FollowUp::Answered {
                tenant,
                session,
                request,
                outcome,
            });
            self.run_follow_ups();
        }
    }

    fn fire_due(&mut self, limit: u64) {
        while let Some(FiredTimer { key, due, payload }) = self.state.timers.pop_due(limit) {
            self.state.now = self.state.now.max(due);
            let Some(record) = self.state.sessions.get(key.session) else {
                continue;
            };
            let (tenant, Some(channel)) = (record.tenant, record.channel) else {
                continue;
            };
            let slot = &self.tenants[tenant as usize];
            if slot.live.is_none() && self.state.now < slot.retry_at {
                // The tenant is backed off: keep the timer for when it is back.
                let retry_at = slot.retry_at;
                self.state.timers.set(key, retry_at, &payload);
                continue;
            }
            self.call(
                tenant,
                Hook::Timer(TimerEvent {
                    tenant,
                    session: key.session,
                    channel,
                    key: key.key,
                    due,
                    payload,
                }),
            );
            self.run_follow_ups();
        }
    }

    fn run_follow_ups(&mut self) {
        while let Some(follow_up) = self.follow_ups.pop_front() {
            let now = self.state.now;
            match follow_up {
                FollowUp::Closed {
                    tenant,
                    session,
                    reason,
                } => {
                    let Some(channel) = self.state.sessions.get(session).and_then(|s| s.channel)
                    else {
                        continue;
                    };
                    self.call(
                        tenant,
                        Hook::Session(SessionEvent {
                            tenant,
                            session,
                            channel,
                            at: now,
                            change: SessionChange::Closed(CloseCause::Plugin(reason)),
                        }),
                    );
                }
                FollowUp::Answered {
                    tenant,
                    session,
                    request,
                    outcome,
                } => self.call(
                    tenant,
                    Hook::Http(HttpResponseEvent {
                        tenant,
                        session,
                        request,
                        at: now,
                        outcome,
                    }),
                ),
            }
        }
    }

    /// Calls a hook of `tenant`'s instance (starting one if needed), then applies what
    /// it asked for; on a trap, discards that, replaces the instance and backs off.
    fn call(&mut self, tenant: TenantId, hook: Hook) {
        let Gateway {
            runtime,
            tenants,
            webhook_names,
            state,
            ..
        } = self;
        let slot = &mut tenants[tenant as usize];
        if slot.live.is_none() {
            if state.now < slot.retry_at {
                slot.stats.events_dropped += 1;
                tracing::debug!(tenant = &*slot.name, "tenant backed off: event dropped");
                return;
            }
            match start(runtime, slot, tenant, webhook_names, state) {
                Ok(live) => {
                    slot.stats.restarts += 1;
                    slot.live = Some(live);
                }
                Err(e) => {
                    slot.stats.events_dropped += 1;
                    let reason = match e {
                        StartError::Config { path, reason } => {
                            format!("configure refused {path}: {reason}")
                        }
                        StartError::Trap(reason) => reason,
                    };
                    let stderr = String::new();
                    fail(slot, state.now, &reason, &stderr);
                    return;
                }
            }
        }
        let Some(live) = slot.live.as_mut() else {
            return;
        };
        let result = with_lent_state(
            runtime,
            &mut live.store,
            state,
            |store, plugin_hooks| match hook {
                Hook::Message(e) => plugin_hooks.call_on_message(store, &e),
                Hook::Session(e) => plugin_hooks.call_on_session_event(store, &e),
                Hook::Timer(e) => plugin_hooks.call_on_timer(store, &e),
                Hook::Http(e) => plugin_hooks.call_on_http_response(store, &e),
            },
            &live.plugin,
        );
        let commands = std::mem::take(&mut live.store.data_mut().commands);
        match result {
            Ok(()) => {
                slot.failures = 0;
                slot.stats.hooks_ok += 1;
                self.apply(tenant, commands);
            }
            Err(trap) => {
                let stderr = live.store.data().stderr_text();
                slot.stats.events_dropped += 1;
                let reason = format!("{trap:#}");
                fail(slot, state.now, &reason, &stderr);
            }
        }
    }

    fn apply(&mut self, tenant: TenantId, commands: Vec<Command>) {
        let now = self.state.now;
        let tenant_name = self.tenants[tenant as usize].name.clone();
        let external = |state: &GatewayState, session: SessionId| {
            state
                .sessions
                .get(session)
                .map(|s| s.external.to_string())
                .unwrap_or_default()
        };
        for command in commands {
            match command {
                Command::SetTimer { key, due, payload } => {
                    if self.state.sessions.open_of(tenant, key.session).is_some() {
                        let due = due.max(now.saturating_add(MIN_TIMER_DELAY_MS));
                        self.state.timers.set(key, due, &payload);
                    }
                }
                Command::CancelTimer(key) => {
                    self.state.timers.cancel(key);
                }
                Command::Post {
                    session,
                    kind,
                    text,
                } => self.actions.push(Action {
                    at_ms: now,
                    kind: ActionKind::PostMessage {
                        tenant: tenant_name.to_string(),
                        session: external(&self.state, session),
                        kind,
                        text,
                    },
                }),
                Command::Send {
                    session,
                    request,
                    webhook,
                    event_type,
                    data,
                } => {
                    let Some(target) = self.state.webhooks.get(&webhook) else {
                        continue;
                    };
                    let body = json!({
                        "type": event_type,
                        "timestamp": rfc3339(now),
                        "data": data,
                    });
                    let outbound = OutboundRequest {
                        id: request,
                        tenant: tenant_name.to_string(),
                        session: external(&self.state, session),
                        webhook: webhook.clone(),
                        method: target.method.clone(),
                        url: target.url.to_string(),
                        body: body.clone(),
                    };
                    self.actions.push(Action {
                        at_ms: now,
                        kind: ActionKind::Webhook {
                            tenant: tenant_name.to_string(),
                            session: outbound.session.clone(),
                            event: event_type,
                            webhook,
                            method: outbound.method.clone(),
                            url: outbound.url.clone(),
                            body,
                        },
                    });
                    match self.outbound.send(&outbound) {
                        Some(outcome) => self.follow_ups.push_back(FollowUp::Answered {
                            tenant,
                            session,
                            request,
                            outcome,
                        }),
                        None => {
                            self.in_flight.insert(request, (tenant, session));
                        }
                    }
                }
                Command::Close { session, reason } => {
                    let Some(record) = self.state.sessions.get_mut(session) else {
                        continue;
                    };
                    if record.closed {
                        continue;
                    }
                    record.closed = true;
                    self.state.timers.cancel_session(session);
                    self.actions.push(Action {
                        at_ms: now,
                        kind: ActionKind::CloseSession {
                            tenant: tenant_name.to_string(),
                            session: external(&self.state, session),
                            reason: reason.clone(),
                        },
                    });
                    self.follow_ups.push_back(FollowUp::Closed {
                        tenant,
                        session,
                        reason,
                    });
                }
            }
        }
    }
}

enum StartError {
    Config { path: String, reason: String },
    Trap(String),
}

/// Instantiates `tenant`'s component and configures it.
fn start(
    runtime: &Runtime,
    tenant: &mut Tenant,
    id: TenantId,
    webhooks: &[String],
    state: &mut GatewayState,
) -> Result<Live, StartError> {
    let fresh = InstanceState::new(id, tenant.name.clone(), *runtime.limits());
    let (mut store, plugin) = runtime
        .instantiate(&tenant.component, fresh)
        .map_err(|e| StartError::Trap(format!("{e:#}")))?;
    let name = tenant.name.clone();
    let config = tenant.config.clone();
    let configured = with_lent_state(
        runtime,
        &mut store,
        state,
        |store, hooks| hooks.call_configure(store, id, &name, &config, webhooks),
        &plugin,
    );
    let ignored = std::mem::take(&mut store.data_mut().commands);
    if !ignored.is_empty() {
        tracing::warn!(
            tenant = &*tenant.name,
            count = ignored.len(),
            "actions taken during configure were ignored"
        );
    }
    match configured {
        Err(trap) => {
            let stderr = store.data().stderr_text();
            Err(StartError::Trap(if stderr.is_empty() {
                format!("{trap:#}")
            } else {
                format!("{trap:#} (plugin stderr: {stderr})")
            }))
        }
        Ok(Err(e)) => Err(StartError::Config {
            path: e.path,
            reason: e.reason,
        }),
        Ok(Ok(interests)) => {
            tenant.interests = interests;
            Ok(Live { store, plugin })
        }
    }
}

/// Runs `call` with the gateway's state lent to the store and a fresh time budget.
fn with_lent_state<R>(
    runtime: &Runtime,
    store: &mut Store<InstanceState>,
    state: &mut GatewayState,
    call: impl FnOnce(
        &mut Store<InstanceState>,
        &crate::bindings::exports::chat_gateway::plugin::hooks::Guest,
    ) -> wasmtime::Result<R>,
    plugin: &Plugin,
) -> wasmtime::Result<R> {
    std::mem::swap(&mut store.data_mut().lent, state);
    runtime.arm_deadline(store);
    let result = call(store, plugin.chat_gateway_plugin_hooks());
    std::mem::swap(&mut store.data_mut().lent, state);
    result
}

/// Records a failed hook: drops the instance and sets the back-off.
fn fail(slot: &mut Tenant, now: u64, reason: &str, stderr: &str) {
    slot.live = None;
    slot.failures += 1;
    slot.stats.hooks_failed += 1;
    let wait = backoff(slot.failures);
    slot.retry_at = now.saturating_add(wait.as_millis() as u64);
    tracing::error!(
        tenant = &*slot.name,
        component = slot.component.name(),
        failures = slot.failures,
        retry_in_ms = wait.as_millis() as u64,
        plugin_stderr = stderr,
        "plugin hook failed; instance dropped, its actions discarded: {reason}"
    );
}

/// The wait before the next instance after `failures` consecutive failures.
pub fn backoff(failures: u32) -> Duration {
    if failures <= 1 {
        return Duration::ZERO;
    }
    let doublings = (failures - 2).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// Milliseconds since the Unix epoch as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_retries_once_at_once_then_doubles_up_to_the_cap() {
        assert_eq!(backoff(1), Duration::ZERO);
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(8));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
