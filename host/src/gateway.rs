//! The gateway core: sessions, timers and one plugin instance per tenant, driven by
//! events and by time.
//!
//! Time is an input. Every entry point takes the host time in milliseconds; replay
//! passes virtual time from the scenario, a server passes the wall clock. Nothing here
//! sleeps, reads a clock or does I/O: webhook attempts leave through [`Outbound`], and
//! actions are collected for the caller with [`Gateway::take_actions`].
//!
//! Ordering rules, relied on by plugins:
//! - an event at time `t` is handled before any timer due at `t`;
//! - timers fire in due order, ties in the order they were set; a webhook retry due at
//!   the same instant as a timer comes after it;
//! - a hook's actions apply in the order the hook asked for them, after it returns;
//! - follow-ups (a plugin's own close, synchronous HTTP answers) are handled before
//!   the next event or timer.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use wasmtime::Store;

use crate::action::{Action, ActionKind};
use crate::bindings::Plugin;
use crate::bindings::chat_gateway::plugin::events::{
    CloseCause, Event, HttpAnswer, HttpOutcome, HttpResponseEvent, MessageEvent, MessageField,
    SessionChange, SessionEvent, TimerEvent,
};
use crate::bindings::chat_gateway::plugin::types::{
    HostLimits, Interests, MessageFields, Presence, SenderRole, TenantSetup,
};
use crate::config::{Egress, HostConfig, Limits, TenantConfig};
use crate::event::{GatewayEvent, OpenedEvent, PresenceEvent, Sender, Visibility};
use crate::instance::{Command, GatewayState, InstanceState, MAX_WEBHOOK_DATA_BYTES, SendRequest};
use crate::outbound::{Attempt, Outbound};
use crate::outbox::Delivery;
use crate::runtime::{LoadError, PluginComponent, Runtime};
use crate::sessions::{SessionId, TenantId};
use crate::timers::{FiredTimer, TimerKey};
use crate::webhook::format::Fields;
use crate::webhook::retry::{self, AttemptResult, Decision};
use crate::webhook::signing;

mod batch;
mod persist;
pub use batch::MAX_BATCH_EVENTS;
pub use persist::Restored;

/// The earliest a timer may fire, after the time it is set at (see `timers.set` in
/// the WIT): a floor that keeps a plugin from spinning the host through timers.
pub const MIN_TIMER_DELAY_MS: u64 = 1_000;

/// The latest host time accepted: the last millisecond of year 9999, which RFC 3339
/// timestamps can still show.
pub const MAX_TIME_MS: u64 = 253_402_300_799_999;

/// Times a timer whose hook failed is delivered again before it is dropped.
pub const MAX_TIMER_REDELIVERIES: u8 = 3;

/// Events kept per backed-off tenant, delivered in order when it is back; beyond this
/// the oldest are dropped.
pub const MAX_QUEUED_EVENTS: usize = 1024;

/// Follow-up hooks (a plugin's own close, webhook outcomes known at once) one tenant
/// may cause from one event or timer before it is treated as failing: a plugin that
/// answers every webhook outcome with another request would otherwise never stop.
pub const MAX_FOLLOW_UPS: u32 = 256;

/// Unknown tenant names remembered for log-once reporting; beyond this, debug only.
pub const MAX_UNKNOWN_TENANTS_REMEMBERED: usize = 1024;

/// After this long without a failure, a tenant's failure count starts over.
pub const QUIET_RESET_MS: u64 = 10 * 60 * 1000;

/// Longest a failing tenant waits before its next instance is tried.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Wait after the second consecutive failure; doubles with each further one. The first
/// failure is retried at once: a single bad event should not silence a tenant.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// The optional fields of `message` that the tenant asked for, in the documented order.
fn message_fields(
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

/// Where a component's configuration error is, as a path in the host's config file:
/// inside the tenant's document, or in the operator's `defaults` as applied to it.
fn config_error_place(tenant: &str, path: &str) -> String {
    if path == "defaults" || path.starts_with("defaults.") {
        format!("{path} (applied to tenant {tenant})")
    } else if path.is_empty() {
        format!("tenants.{tenant}")
    } else {
        format!("tenants.{tenant}.{path}")
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A tenant's component could not be loaded.
    #[error("tenants.{tenant}.component: {source}")]
    Load {
        /// The tenant naming it.
        tenant: String,
        /// Why.
        source: LoadError,
    },
    /// A tenant's component refused its configuration.
    #[error("{}: {reason}", config_error_place(tenant, path))]
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
    /// A time past year 9999.
    #[error("time {0} ms is past the year 9999")]
    TimeOutOfRange(u64),
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

/// Counters of one tenant, for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TenantStats {
    /// Hook calls that returned normally.
    pub hooks_ok: u64,
    /// Hook calls that trapped or ran out of time.
    pub hooks_failed: u64,
    /// Instances created after the first (replacements).
    pub restarts: u64,
    /// Events and timers lost: the ones whose hook failed (after redelivery, for
    /// timers), and the oldest queued ones beyond [`MAX_QUEUED_EVENTS`].
    pub events_dropped: u64,
    /// Events held while the tenant was backed off and delivered later.
    pub events_deferred: u64,
    /// Webhook deliveries that ended delivered.
    pub deliveries_ok: u64,
    /// Webhook deliveries that ended without success.
    pub deliveries_failed: u64,
    /// Webhook attempts retried.
    pub retries: u64,
}

struct Live {
    store: Store<InstanceState>,
    plugin: Plugin,
}

struct Tenant {
    name: Arc<str>,
    component: Arc<PluginComponent>,
    config: String,
    defaults: Arc<str>,
    limits: Limits,
    webhooks: Arc<[String]>,
    interests: Interests,
    live: Option<Live>,
    failures: u32,
    last_failure_at: u64,
    retry_at: u64,
    /// Hooks held while backed off, oldest first.
    queued: VecDeque<Hook>,
    /// Whether its events may share a call: until its plugin is seen acting across
    /// sessions (see `batch`).
    batches: bool,
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
    /// A timer, and how often it was delivered before and failed.
    Timer(TimerEvent, u8),
    Http(HttpResponseEvent),
}

/// A session hook; the plugin's state is filled in when it is delivered.
fn session_hook(
    tenant: TenantId,
    session: SessionId,
    channel: crate::sessions::ChannelId,
    at: u64,
    change: SessionChange,
) -> Hook {
    Hook::Session(SessionEvent {
        state: None,
        tenant,
        session,
        channel,
        at,
        change,
    })
}

impl Hook {
    /// The event as the plugin receives it, and how often it was delivered before.
    fn into_event(self) -> (Event, u8) {
        match self {
            Hook::Message(e) => (Event::Message(e), 0),
            Hook::Session(e) => (Event::Session(e), 0),
            Hook::Timer(e, redeliveries) => (Event::Timer(e), redeliveries),
            Hook::Http(e) => (Event::HttpResponse(e), 0),
        }
    }

    /// The hook back from [`Hook::into_event`].
    fn from_event(event: Event, redeliveries: u8) -> Hook {
        match event {
            Event::Message(e) => Hook::Message(e),
            Event::Session(e) => Hook::Session(e),
            Event::Timer(e) => Hook::Timer(e, redeliveries),
            Event::HttpResponse(e) => Hook::Http(e),
        }
    }

    /// The session whose close the hook reports, if it does.
    fn closing(&self) -> Option<SessionId> {
        match self {
            Hook::Session(SessionEvent {
                session,
                change: SessionChange::Closed(_),
                ..
            }) => Some(*session),
            _ => None,
        }
    }

    /// Gives the hook the plugin's state for its session (HTTP outcomes carry none).
    fn set_state(&mut self, state: Option<Vec<u8>>) {
        match self {
            Hook::Message(e) => e.state = state,
            Hook::Session(e) => e.state = state,
            Hook::Timer(e, _) => e.state = state,
            Hook::Http(_) => {}
        }
    }

    /// The session the hook is about.
    fn session(&self) -> SessionId {
        match self {
            Hook::Message(e) => e.session,
            Hook::Session(e) => e.session,
            Hook::Timer(e, _) => e.session,
            Hook::Http(e) => e.session,
        }
    }
}

/// Sessions, timers and the tenants' plugin instances.
pub struct Gateway {
    runtime: Arc<Runtime>,
    tenants: Vec<Tenant>,
    tenant_ids: foldhash::HashMap<String, TenantId>,
    egress: Egress,
    /// Boxed so that lending it to a store for a hook swaps a pointer, not the struct.
    state: Box<GatewayState>,
    actions: Vec<Action>,
    follow_ups: VecDeque<FollowUp>,
    /// Follow-up hooks per tenant since the last event or timer.
    follow_up_counts: foldhash::HashMap<TenantId, u32>,
    /// Unknown tenant names already reported at info.
    unknown_tenants: std::collections::HashSet<String>,
    /// When backed-off tenants with queued hooks are due back.
    wakeups: std::collections::BTreeSet<(u64, TenantId)>,
    outbound: Box<dyn Outbound + Send>,
    /// What changed, while change tracking is on.
    journal: Option<persist::Journal>,
    /// Told how long each hook call took, when set.
    hook_observer: Option<HookObserver>,
    /// Closed sessions in the order they closed, for [`Gateway::forget_closed`].
    closed_order: VecDeque<(u64, SessionId)>,
    /// The events of the batched call being made, kept to reuse its allocation.
    call_events: Vec<Event>,
    /// Events gathered by [`Gateway::handle_all`] for one call.
    batch: batch::Batch,
}

/// Receives the duration of every hook call (for a latency histogram).
pub type HookObserver = Box<dyn Fn(Duration) + Send>;

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
            tenant_ids: Default::default(),
            egress: config.egress.clone(),
            state: Box::new(GatewayState {
                webhooks: Arc::new(config.webhooks.clone()),
                ..GatewayState::default()
            }),
            actions: Vec::new(),
            follow_ups: VecDeque::new(),
            follow_up_counts: Default::default(),
            wakeups: std::collections::BTreeSet::new(),
            unknown_tenants: std::collections::HashSet::new(),
            outbound,
            journal: None,
            hook_observer: None,
            closed_order: VecDeque::new(),
            call_events: Vec::new(),
            batch: batch::Batch::default(),
        };
        for TenantConfig {
            name,
            component,
            plugin_config,
            webhooks,
            defaults,
            limits,
        } in &config.tenants
        {
            let component = match component {
                None => default.clone(),
                Some(path) => match components.get(path) {
                    Some(c) => c.clone(),
                    None => {
                        let loaded = gateway.runtime.load_file(path).map_err(|source| {
                            GatewayError::Load {
                                tenant: name.clone(),
                                source,
                            }
                        })?;
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
                defaults: defaults.as_str().into(),
                limits: *limits,
                webhooks: webhooks.clone().into(),
                interests: Interests {
                    message_fields: MessageFields::empty(),
                },
                live: None,
                failures: 0,
                last_failure_at: 0,
                retry_at: 0,
                queued: VecDeque::new(),
                batches: true,
                stats: TenantStats::default(),
            };
            match start(&gateway.runtime, &mut tenant, id, &mut gateway.state) {
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
        if at > MAX_TIME_MS {
            return Err(EventError::TimeOutOfRange(at));
        }
        self.follow_up_counts.clear();
        if at > 0 {
            self.fire_due(at - 1);
        }
        self.state.now = self.state.now.max(at);
        if let Some((tenant, hook)) = self.prepare(event)? {
            self.call(tenant, hook);
            self.run_follow_ups();
        }
        Ok(())
    }

    /// Records what `event` tells the host (a session opened, the user's presence, a
    /// close, ...) at the current host time, and returns the hook to deliver, if any:
    /// none for an unknown tenant, a closed session, or a session without a channel.
    fn prepare(&mut self, event: &GatewayEvent) -> Result<Option<(TenantId, Hook)>, EventError> {
        let Some(&tenant) = self.tenant_ids.get(event.tenant()) else {
            // Once per unknown tenant at info (a misrouted gateway would flood the log),
            // every event at debug.
            let first = self.unknown_tenants.len() < MAX_UNKNOWN_TENANTS_REMEMBERED
                && self.unknown_tenants.insert(event.tenant().to_owned());
            if first {
                tracing::info!(
                    tenant = event.tenant(),
                    session = event.session(),
                    "no such tenant configured: event ignored (further events of this tenant are logged at debug)"
                );
            } else {
                tracing::debug!(
                    tenant = event.tenant(),
                    session = event.session(),
                    "no such tenant configured: event ignored"
                );
            }
            return Ok(None);
        };
        let session = self.state.sessions.open_or_get(tenant, event.session());
        self.touch_session(session);
        let now = self.state.now;
        let Some(record) = self.state.sessions.get_mut(session) else {
            return Ok(None);
        };
        if record.closed {
            tracing::debug!(
                tenant = event.tenant(),
                session = event.session(),
                "session already closed: event ignored"
            );
            return Ok(None);
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
                self.state.channel_users.insert((tenant, channel));
                record.attributes = attributes
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                session_hook(tenant, session, channel, now, SessionChange::Opened)
            }
            GatewayEvent::Message(message) => {
                let channel = match (record.channel, &message.channel) {
                    (Some(channel), _) => channel,
                    (None, Some(name)) => {
                        let channel = self.state.channels.intern(name);
                        if let Some(record) = self.state.sessions.get_mut(session) {
                            record.channel = Some(channel);
                        }
                        self.state.channel_users.insert((tenant, channel));
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
                    state: None,
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
                    fields: message_fields(message, fields),
                })
            }
            GatewayEvent::Hold(_) | GatewayEvent::Queued(_) | GatewayEvent::Transferred(_) => {
                let Some(channel) = record.channel else {
                    return Ok(None);
                };
                let change = match event {
                    GatewayEvent::Hold(hold) => {
                        SessionChange::Hold(hold.duration.map(|d| now.saturating_add(d.as_ms())))
                    }
                    GatewayEvent::Queued(_) => SessionChange::Queued,
                    _ => SessionChange::Transferred,
                };
                session_hook(tenant, session, channel, now, change)
            }
            GatewayEvent::Presence(PresenceEvent { state, .. }) => {
                let presence = match state {
                    Visibility::Visible => Presence::Visible,
                    Visibility::Hidden => Presence::Hidden,
                };
                record.presence = presence;
                let Some(channel) = record.channel else {
                    return Ok(None);
                };
                session_hook(
                    tenant,
                    session,
                    channel,
                    now,
                    SessionChange::Presence(presence),
                )
            }
            GatewayEvent::SessionClosed(_) => {
                record.closed = true;
                record.closed_at = now;
                self.closed_order.push_back((now, session));
                let channel = record.channel;
                self.state.timers.cancel_session(session);
                let Some(channel) = channel else {
                    return Ok(None);
                };
                session_hook(
                    tenant,
                    session,
                    channel,
                    now,
                    SessionChange::Closed(CloseCause::External),
                )
            }
        };
        Ok(Some((tenant, hook)))
    }

    /// Checks that `events` would be accepted, in this order, without applying any of
    /// them: a caller that must take all of a batch or none checks first. Returns the
    /// index of the first refused event and why.
    pub fn check(&self, at: u64, events: &[GatewayEvent]) -> Result<(), (usize, EventError)> {
        if at > MAX_TIME_MS {
            return Err((0, EventError::TimeOutOfRange(at)));
        }
        let mut opened: std::collections::HashSet<(&str, &str)> = Default::default();
        for (index, event) in events.iter().enumerate() {
            let key = (event.tenant(), event.session());
            match event {
                GatewayEvent::SessionOpened(_) => {
                    opened.insert(key);
                }
                GatewayEvent::Message(message) if message.channel.is_some() => {
                    opened.insert(key);
                }
                GatewayEvent::Message(message) => {
                    // Unknown tenants and closed sessions are ignored, not refused.
                    let known = opened.contains(&key)
                        || match self.tenant_ids.get(event.tenant()) {
                            None => true,
                            Some(&tenant) => self
                                .state
                                .sessions
                                .find(tenant, event.session())
                                .and_then(|id| self.state.sessions.get(id))
                                .is_some_and(|s| s.channel.is_some() || s.closed),
                        };
                    if !known {
                        return Err((
                            index,
                            EventError::NoChannel {
                                tenant: message.tenant.clone(),
                                session: message.session.clone(),
                            },
                        ));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Names of the configured tenants, in configuration order.
    pub fn tenant_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.tenants.iter().map(|t| &*t.name)
    }

    /// Each tenant's name, its component and what its `configure` got: for tools that
    /// ask a component about a tenant's settings (`check-config` explains them).
    pub fn tenant_setups(
        &self,
    ) -> impl Iterator<Item = (&str, &Arc<PluginComponent>, TenantSetup)> + '_ {
        self.tenants.iter().enumerate().map(|(id, tenant)| {
            let id = TenantId::try_from(id).unwrap_or(TenantId::MAX);
            (&*tenant.name, &tenant.component, tenant_setup(tenant, id))
        })
    }

    /// The runtime the tenants' instances run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Reports the duration of every hook call to `observer` from now on.
    pub fn set_hook_observer(&mut self, observer: HookObserver) {
        self.hook_observer = Some(observer);
    }

    /// Fires every timer due at or before `to` (in due order), advancing host time to
    /// each timer's due time as it goes, and finally to `to`.
    pub fn advance_to(&mut self, to: u64) {
        let to = to.min(MAX_TIME_MS);
        self.fire_due(to);
        self.state.now = self.state.now.max(to);
    }

    /// When the next timer, webhook retry or tenant wake-up is due, if any.
    pub fn next_due(&self) -> Option<u64> {
        [
            self.state.timers.next_due(),
            self.state.outbox.next_due(),
            self.wakeups.first().map(|(at, _)| *at),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Webhook deliveries under way.
    pub fn deliveries_pending(&self) -> usize {
        self.state.outbox.len()
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

    /// The actions taken since the last call, in order, drained from a buffer the
    /// gateway keeps: for a caller that writes them out after every event and would
    /// otherwise allocate a vector each time.
    pub fn drain_actions(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.actions.drain(..)
    }

    /// Counters of the tenant `name`.
    pub fn tenant_stats(&self, name: &str) -> Option<TenantStats> {
        let id = *self.tenant_ids.get(name)?;
        Some(self.tenants[id as usize].stats)
    }

    /// Reports the result of an attempt that [`Outbound::attempt`] left pending.
    /// Unknown request ids (already settled) are ignored.
    pub fn complete_attempt(&mut self, request: u64, result: AttemptResult) {
        self.follow_up_counts.clear();
        self.settle(request, result);
        self.run_follow_ups();
    }

    /// Fires what is due at or before `limit`, earliest first; at the same instant,
    /// backed-off tenants come back (their queued hooks are older), then timers, then
    /// webhook retries.
    fn fire_due(&mut self, limit: u64) {
        loop {
            let wake = self
                .wakeups
                .first()
                .map(|(at, _)| *at)
                .filter(|at| *at <= limit);
            let timer = self.state.timers.next_due().filter(|due| *due <= limit);
            let retry = self.state.outbox.next_due().filter(|due| *due <= limit);
            self.follow_up_counts.clear();
            let earliest = [wake, timer, retry].into_iter().flatten().min();
            match earliest {
                None => return,
                Some(at) if wake == Some(at) => self.wake_due(at),
                Some(at) if timer == Some(at) => self.fire_timer(limit),
                Some(_) => self.retry_due(limit),
            }
        }
    }

    /// Delivers the queued hooks of the first tenant due back at `at`.
    fn wake_due(&mut self, at: u64) {
        let Some((_, tenant)) = self.wakeups.pop_first() else {
            return;
        };
        self.state.now = self.state.now.max(at);
        let slot = &self.tenants[tenant as usize];
        if slot.live.is_none() && self.state.now < slot.retry_at {
            self.wakeups.insert((slot.retry_at, tenant));
            return;
        }
        self.drain_queued(tenant);
        self.run_follow_ups();
    }

    /// Delivers `tenant`'s queued hooks in order; returns false if one failed (the
    /// rest stay queued and a wake-up is set for the end of the new back-off).
    fn drain_queued(&mut self, tenant: TenantId) -> bool {
        while let Some(queued) = self.tenants[tenant as usize].queued.pop_front() {
            self.touch_held(tenant);
            if !self.call_now(tenant, queued) {
                self.schedule_wakeup(tenant);
                return false;
            }
        }
        true
    }

    fn schedule_wakeup(&mut self, tenant: TenantId) {
        let slot = &self.tenants[tenant as usize];
        if !slot.queued.is_empty() {
            self.wakeups
                .insert((slot.retry_at.max(self.state.now), tenant));
        }
    }

    fn fire_timer(&mut self, limit: u64) {
        let Some(FiredTimer {
            key,
            due,
            payload,
            redeliveries,
        }) = self.state.timers.pop_due(limit)
        else {
            return;
        };
        self.state.now = self.state.now.max(due);
        self.touch_session(key.session);
        let Some(record) = self.state.sessions.get(key.session) else {
            return;
        };
        let (tenant, Some(channel)) = (record.tenant, record.channel) else {
            return;
        };
        let slot = &self.tenants[tenant as usize];
        if slot.live.is_none() && self.state.now < slot.retry_at {
            // The tenant is backed off: keep the timer for when it is back.
            let retry_at = slot.retry_at;
            self.state
                .timers
                .set_redelivery(key, tenant, retry_at, &payload, redeliveries);
            return;
        }
        self.call(
            tenant,
            Hook::Timer(
                TimerEvent {
                    state: None,
                    tenant,
                    session: key.session,
                    channel,
                    key: key.key,
                    due,
                    at: self.state.now,
                    payload,
                },
                redeliveries,
            ),
        );
        self.run_follow_ups();
    }

    fn retry_due(&mut self, limit: u64) {
        let Some((due, request)) = self.state.outbox.pop_due(limit) else {
            return;
        };
        self.state.now = self.state.now.max(due);
        self.attempt(request);
        self.run_follow_ups();
    }

    fn run_follow_ups(&mut self) {
        while let Some(follow_up) = self.follow_ups.pop_front() {
            let now = self.state.now;
            let tenant = match &follow_up {
                FollowUp::Closed { tenant, .. } | FollowUp::Answered { tenant, .. } => *tenant,
            };
            let count = self.follow_up_counts.entry(tenant).or_default();
            *count += 1;
            if *count > MAX_FOLLOW_UPS {
                let slot = &mut self.tenants[tenant as usize];
                if slot.live.is_some() {
                    slot.stats.events_dropped += 1;
                    fail(
                        slot,
                        now,
                        &format!(
                            "more than {MAX_FOLLOW_UPS} follow-up hooks from one event (a request loop?)"
                        ),
                        "",
                    );
                }
                continue;
            }
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
                        session_hook(
                            tenant,
                            session,
                            channel,
                            now,
                            SessionChange::Closed(CloseCause::Plugin(reason)),
                        ),
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
    /// While the tenant is backed off, hooks are queued and delivered in order when it
    /// is back, before the hook that brings it back.
    fn call(&mut self, tenant: TenantId, hook: Hook) {
        let slot = &self.tenants[tenant as usize];
        let backed_off = slot.live.is_none() && self.state.now < slot.retry_at;
        if backed_off || !self.drain_queued(tenant) {
            self.defer(tenant, hook);
            return;
        }
        if !self.call_now(tenant, hook) {
            self.schedule_wakeup(tenant);
        }
    }

    /// Queues a hook of a backed-off tenant (dropping the oldest beyond the cap).
    fn defer(&mut self, tenant: TenantId, hook: Hook) {
        // A timer waits as a timer: in the timer store (durable where the store is)
        // until the tenant is back, not in the in-memory queue.
        let hook = match hook {
            Hook::Timer(event, redeliveries) => {
                let at = self.tenants[tenant as usize].retry_at.max(self.state.now);
                if self.state.sessions.open_of(tenant, event.session).is_some() {
                    let key = TimerKey {
                        session: event.session,
                        key: event.key,
                    };
                    self.state
                        .timers
                        .set_redelivery(key, tenant, at, &event.payload, redeliveries);
                    self.touch_session(event.session);
                }
                return;
            }
            other => other,
        };
        self.touch_held(tenant);
        let slot = &mut self.tenants[tenant as usize];
        slot.stats.events_deferred += 1;
        if slot.queued.len() >= MAX_QUEUED_EVENTS {
            slot.queued.pop_front();
            slot.stats.events_dropped += 1;
        }
        slot.queued.push_back(hook);
        self.schedule_wakeup(tenant);
    }

    /// Calls the hook now; returns whether it ran to completion.
    fn call_now(&mut self, tenant: TenantId, hook: Hook) -> bool {
        let Gateway {
            runtime,
            tenants,
            state,
            journal,
            hook_observer,
            ..
        } = self;
        let slot = &mut tenants[tenant as usize];
        if slot.live.is_none() {
            match start(runtime, slot, tenant, state) {
                Ok(live) => {
                    slot.stats.restarts += 1;
                    slot.live = Some(live);
                }
                Err(e) => {
                    let reason = match e {
                        StartError::Config { path, reason } => {
                            format!("configure refused {path}: {reason}")
                        }
                        StartError::Trap(reason) => reason,
                    };
                    fail(slot, state.now, &reason, "");
                    match hook {
                        // As in `defer`: a timer goes back to the timer store.
                        Hook::Timer(event, redeliveries) => {
                            if state.sessions.open_of(tenant, event.session).is_some() {
                                let key = TimerKey {
                                    session: event.session,
                                    key: event.key,
                                };
                                let at = slot.retry_at.max(state.now);
                                state.timers.set_redelivery(
                                    key,
                                    tenant,
                                    at,
                                    &event.payload,
                                    redeliveries,
                                );
                                if let Some(journal) = journal {
                                    journal.note_session(event.session);
                                }
                            }
                        }
                        hook => {
                            slot.stats.events_deferred += 1;
                            slot.queued.push_front(hook);
                            if let Some(journal) = journal {
                                journal.note_held(tenant);
                            }
                        }
                    }
                    return false;
                }
            }
        }
        let Some(live) = slot.live.as_mut() else {
            return false;
        };
        // The plugin's state for the session as it is now, not as it was when the
        // hook was made: a held hook is delivered after later ones changed it.
        let mut hook = hook;
        if let Some(record) = state.sessions.get(hook.session()) {
            hook.set_state((!record.plugin_state.is_empty()).then(|| record.plugin_state.clone()));
        }
        let data = live.store.data_mut();
        data.begin_call([hook.session()]);
        data.closing.clear();
        data.closing.extend(hook.closing());
        // One event: its own hook, which takes it in registers (see `hooks.wit`).
        let started = hook_observer.as_ref().map(|_| std::time::Instant::now());
        let result = with_lent_state(
            runtime,
            &mut live.store,
            state,
            &live.plugin,
            1,
            |store, hooks| match &hook {
                Hook::Message(e) => hooks.call_on_message(store, e),
                Hook::Session(e) => hooks.call_on_session_event(store, e),
                Hook::Timer(e, _) => hooks.call_on_timer(store, e),
                Hook::Http(e) => hooks.call_on_http_response(store, e),
            },
        );
        if let (Some(observer), Some(started)) = (hook_observer, started) {
            observer(started.elapsed());
        }
        let mut commands = std::mem::take(&mut live.store.data_mut().commands);
        let closing = live.store.data_mut().closing.pop();
        match result {
            Ok(()) => {
                if state.now.saturating_sub(slot.last_failure_at) >= QUIET_RESET_MS {
                    slot.failures = 0;
                }
                slot.stats.hooks_ok += 1;
                self.apply(tenant, commands.drain(..));
                if let Some(session) = closing {
                    self.drop_plugin_state(session);
                }
                // Hand the emptied buffer back: the next hook records into it without
                // allocating.
                if let Some(live) = self.tenants[tenant as usize].live.as_mut() {
                    live.store.data_mut().commands = commands;
                }
                true
            }
            Err(trap) => {
                let stderr = live.store.data().stderr_text();
                let reason = format!("{trap:#}");
                fail(slot, state.now, &reason, &stderr);
                match hook {
                    // Timers are delivered at least once: a timer whose hook failed
                    // comes back when the tenant does (a few times at most).
                    Hook::Timer(event, redeliveries)
                        if redeliveries < MAX_TIMER_REDELIVERIES
                            && state.sessions.open_of(tenant, event.session).is_some() =>
                    {
                        let key = TimerKey {
                            session: event.session,
                            key: event.key,
                        };
                        let at = slot.retry_at.max(state.now);
                        state.timers.set_redelivery(
                            key,
                            tenant,
                            at,
                            &event.payload,
                            redeliveries + 1,
                        );
                        if let Some(journal) = journal {
                            journal.note_session(key.session);
                        }
                    }
                    _ => slot.stats.events_dropped += 1,
                }
                if let Some(session) = closing {
                    self.drop_plugin_state(session);
                }
                false
            }
        }
    }

    /// Drops what the plugin kept for a session once the hook reporting its close has
    /// run: nothing can read it any more.
    fn drop_plugin_state(&mut self, session: SessionId) {
        if let Some(record) = self.state.sessions.get_mut(session)
            && !record.plugin_state.is_empty()
        {
            record.plugin_state = Vec::new();
            self.touch_session(session);
        }
    }

    /// Applies what a hook asked for, in order.
    fn apply(&mut self, tenant: TenantId, commands: impl Iterator<Item = Command>) {
        let now = self.state.now;
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
                    self.touch_session(key.session);
                    if self.state.sessions.open_of(tenant, key.session).is_some() {
                        let due = due.max(now.saturating_add(MIN_TIMER_DELAY_MS));
                        self.state.timers.set(key, tenant, due, &payload);
                    }
                }
                Command::CancelTimer(key) => {
                    self.touch_session(key.session);
                    self.state.timers.cancel(key);
                }
                Command::Post {
                    session,
                    kind,
                    text,
                } => self.actions.push(Action {
                    at_ms: now,
                    kind: ActionKind::PostMessage {
                        tenant: self.tenants[tenant as usize].name.to_string(),
                        session: external(&self.state, session),
                        kind,
                        text,
                    },
                }),
                Command::Send(send) => self.queue_delivery(tenant, send),
                Command::SetState { session, state } => {
                    if let Some(record) = self.state.sessions.get_mut(session)
                        && record.tenant == tenant
                        && !record.closed
                    {
                        record.plugin_state = state;
                        self.touch_session(session);
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
                    record.closed_at = now;
                    self.closed_order.push_back((now, session));
                    self.state.timers.cancel_session(session);
                    self.touch_session(session);
                    self.actions.push(Action {
                        at_ms: now,
                        kind: ActionKind::CloseSession {
                            tenant: self.tenants[tenant as usize].name.to_string(),
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

impl Gateway {
    /// Renders a plugin's request in the webhook's format, records it, and makes the
    /// first attempt at once.
    fn queue_delivery(&mut self, tenant: TenantId, send: SendRequest) {
        let SendRequest {
            session,
            request,
            webhook,
            event_type,
            data,
            idempotency_key,
            deliver_by,
        } = send;
        let now = self.state.now;
        let Some(target) = self.state.webhooks.get(&webhook) else {
            return;
        };
        let tenant_name = self.tenants[tenant as usize].name.clone();
        let external = self.external(session);
        let key = idempotency_key.unwrap_or_else(|| format!("request-{request}"));
        let id = signing::delivery_id(&tenant_name, &external, &event_type, &key);
        let timestamp = rfc3339(now);
        let body_value = target.format.render(Fields {
            id: &id,
            event_type: &event_type,
            timestamp: &timestamp,
            data: &data,
        });
        // A `Value` always serialises (its keys are strings).
        let body = serde_json::to_vec(&body_value).unwrap_or_default();
        let deadline = now
            .saturating_add(target.retry.deadline_ms)
            .min(deliver_by.unwrap_or(u64::MAX));
        self.actions.push(Action {
            at_ms: now,
            kind: ActionKind::Webhook {
                tenant: tenant_name.to_string(),
                session: external,
                event: event_type.clone(),
                webhook: webhook.clone(),
                id: id.clone(),
                method: target.method.clone(),
                url: target.url.to_string(),
                body: body_value,
            },
        });
        self.state.outbox.insert(Delivery {
            request,
            tenant,
            session,
            webhook,
            event_type,
            id,
            body: body.into(),
            queued_at: now,
            deadline,
            attempts: 0,
            next_at: None,
        });
        self.attempt(request);
    }

    /// Makes the next attempt of a delivery, unless it is already stale.
    fn attempt(&mut self, request: u64) {
        self.touch_delivery(request);
        let now = self.state.now;
        let Some(delivery) = self.state.outbox.get_mut(request) else {
            return;
        };
        if now > delivery.deadline {
            let reason = "gave up: the deadline passed before the attempt".to_owned();
            tracing::warn!(webhook = &delivery.webhook, id = &delivery.id, "{reason}");
            self.finish(request, Err(reason));
            return;
        }
        delivery.attempts += 1;
        let Some(target) = self.state.webhooks.get(&delivery.webhook) else {
            return;
        };
        let attempt = Attempt {
            request,
            number: delivery.attempts,
            webhook: delivery.webhook.clone(),
            event_type: delivery.event_type.clone(),
            id: delivery.id.clone(),
            method: target.method.clone(),
            url: target.url.clone(),
            headers: target
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            secrets: target.secrets.clone().into(),
            body: delivery.body.clone(),
            timeout_ms: target.timeout_ms,
            allow_private_networks: self.egress.allow_private_networks,
        };
        if let Some(result) = self.outbound.attempt(attempt) {
            self.settle(request, result);
        }
    }

    /// Decides what follows an attempt's result: done, retry later, or give up.
    fn settle(&mut self, request: u64, result: AttemptResult) {
        self.touch_delivery(request);
        let now = self.state.now;
        let Some(delivery) = self.state.outbox.get(request) else {
            return;
        };
        let Some(target) = self.state.webhooks.get(&delivery.webhook) else {
            return;
        };
        let decision = retry::decide(
            &target.retry,
            delivery.attempts,
            &result,
            now,
            delivery.deadline,
            &delivery.id,
        );
        let attempts = delivery.attempts;
        let outcome = match &decision {
            Decision::Delivered => format!(
                "delivered after {attempts} attempt{}",
                if attempts == 1 { "" } else { "s" }
            ),
            Decision::Retry { at } => format!("retry at {at}"),
            Decision::GiveUp { reason } => format!("gave up: {reason}"),
            Decision::Gone => "gave up: 410 Gone; the webhook is disabled for this tenant until the configuration is reloaded".to_owned(),
        };
        self.actions.push(Action {
            at_ms: now,
            kind: ActionKind::WebhookAttempt {
                tenant: self.tenants[delivery.tenant as usize].name.to_string(),
                session: self.external(delivery.session),
                webhook: delivery.webhook.clone(),
                id: delivery.id.clone(),
                attempt: attempts,
                result: result.to_string(),
                outcome,
            },
        });
        match decision {
            Decision::Retry { at } => {
                self.tenants[delivery.tenant as usize].stats.retries += 1;
                self.state.outbox.schedule(request, at);
            }
            Decision::Delivered => {
                tracing::debug!(
                    tenant = &*self.tenants[delivery.tenant as usize].name,
                    webhook = &delivery.webhook,
                    id = &delivery.id,
                    "delivered after {attempts} attempt(s)"
                );
                self.finish(request, Ok(result));
            }
            Decision::GiveUp { reason } => {
                tracing::warn!(
                    tenant = &*self.tenants[delivery.tenant as usize].name,
                    webhook = &delivery.webhook,
                    id = &delivery.id,
                    "gave up after {attempts} attempt(s): {reason}"
                );
                match result {
                    AttemptResult::Answered { .. } => self.finish(request, Ok(result)),
                    _ => self.finish(request, Err(format!("gave up: {reason}"))),
                }
            }
            Decision::Gone => {
                let key = (delivery.tenant, delivery.webhook.clone());
                tracing::warn!(
                    tenant = &*self.tenants[delivery.tenant as usize].name,
                    webhook = &delivery.webhook,
                    "webhook answered 410 Gone: nothing more is sent to it for this tenant until the configuration is reloaded"
                );
                self.state.gone.insert(key);
                self.finish(request, Ok(result));
            }
        }
    }

    /// Ends a delivery and tells the plugin: `Ok` with the final answer, or `Err`
    /// with why no usable answer came.
    fn finish(&mut self, request: u64, outcome: Result<AttemptResult, String>) {
        let Some(delivery) = self.state.outbox.remove(request) else {
            return;
        };
        let slot = &mut self.tenants[delivery.tenant as usize];
        let outcome = match outcome {
            Ok(AttemptResult::Answered { status, body, .. }) => {
                if (200..300).contains(&status) {
                    slot.stats.deliveries_ok += 1;
                } else {
                    slot.stats.deliveries_failed += 1;
                }
                HttpOutcome::Answered(HttpAnswer { status, body })
            }
            Ok(other) => {
                slot.stats.deliveries_failed += 1;
                HttpOutcome::Failed(other.to_string())
            }
            Err(reason) => {
                slot.stats.deliveries_failed += 1;
                HttpOutcome::Failed(reason)
            }
        };
        self.follow_ups.push_back(FollowUp::Answered {
            tenant: delivery.tenant,
            session: delivery.session,
            request,
            outcome,
        });
    }

    /// The gateway event a held hook stands for, with its time: what the store keeps
    /// of events held for a failing tenant. Follow-ups (a plugin's own close, webhook
    /// outcomes) are not events and are not kept.
    fn hook_event(&self, hook: &Hook) -> Option<crate::store::records::HeldEvent> {
        let names = |session: SessionId| {
            let record = self.state.sessions.get(session)?;
            let tenant = self.tenants.get(record.tenant as usize)?;
            Some((tenant.name.to_string(), record.external.to_string()))
        };
        let (at_ms, event) = match hook {
            Hook::Message(m) => {
                let (tenant, session) = names(m.session)?;
                let channel = self.state.channels.name(m.channel).map(str::to_owned);
                (
                    m.at,
                    GatewayEvent::Message(crate::event::MessageEvent {
                        tenant,
                        session,
                        sender: match m.sender {
                            SenderRole::Agent => Sender::Agent,
                            SenderRole::EndUser => Sender::EndUser,
                            SenderRole::Bot => Sender::Bot,
                            SenderRole::System => Sender::System,
                        },
                        id: m.fields.iter().flatten().find_map(|f| match f {
                            MessageField::MessageId(id) => Some(id.clone()),
                            _ => None,
                        }),
                        text: m.fields.iter().flatten().find_map(|f| match f {
                            MessageField::Text(text) => Some(text.clone()),
                            _ => None,
                        }),
                        channel,
                        origin: m.origin.clone(),
                        sender_name: m.fields.iter().flatten().find_map(|f| match f {
                            MessageField::SenderName(name) => Some(name.clone()),
                            _ => None,
                        }),
                        attachment: m.has_attachment,
                    }),
                )
            }
            Hook::Session(e) => {
                let (tenant, session) = names(e.session)?;
                let event = match &e.change {
                    SessionChange::Opened => GatewayEvent::SessionOpened(OpenedEvent {
                        tenant,
                        channel: self.state.channels.name(e.channel)?.to_owned(),
                        attributes: self
                            .state
                            .sessions
                            .get(e.session)?
                            .attributes
                            .iter()
                            .cloned()
                            .collect(),
                        session,
                    }),
                    SessionChange::Presence(p) => GatewayEvent::Presence(PresenceEvent {
                        tenant,
                        session,
                        state: match p {
                            Presence::Visible => Visibility::Visible,
                            _ => Visibility::Hidden,
                        },
                    }),
                    SessionChange::Closed(CloseCause::External) => {
                        GatewayEvent::SessionClosed(crate::event::ClosedEvent { tenant, session })
                    }
                    SessionChange::Closed(CloseCause::Plugin(_)) => return None,
                    SessionChange::Hold(until) => GatewayEvent::Hold(crate::event::HoldEvent {
                        tenant,
                        session,
                        duration: until.and_then(|until| {
                            autoclose_duration::Duration::from_ms(until.saturating_sub(e.at)).ok()
                        }),
                    }),
                    SessionChange::Queued => {
                        GatewayEvent::Queued(crate::event::SessionRef { tenant, session })
                    }
                    SessionChange::Transferred => {
                        GatewayEvent::Transferred(crate::event::SessionRef { tenant, session })
                    }
                };
                (e.at, event)
            }
            Hook::Timer(..) | Hook::Http(_) => return None,
        };
        Some(crate::store::records::HeldEvent { at_ms, event })
    }

    fn external(&self, session: SessionId) -> String {
        self.state
            .sessions
            .get(session)
            .map(|s| s.external.to_string())
            .unwrap_or_default()
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
    state: &mut Box<GatewayState>,
) -> Result<Live, StartError> {
    let fresh = InstanceState::new(
        id,
        tenant.name.clone(),
        tenant.webhooks.clone(),
        tenant.limits,
    );
    let (mut store, plugin) = runtime
        .instantiate(&tenant.component, fresh)
        .map_err(|e| StartError::Trap(format!("{e:#}")))?;
    let setup = tenant_setup(tenant, id);
    let configured = with_lent_state(runtime, &mut store, state, &plugin, 1, |store, hooks| {
        hooks.call_configure(store, &setup)
    });
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

/// What `configure` (and `about.explain`) gets for `tenant`.
fn tenant_setup(tenant: &Tenant, id: TenantId) -> TenantSetup {
    TenantSetup {
        tenant: id,
        name: tenant.name.to_string(),
        config: tenant.config.clone(),
        defaults: tenant.defaults.to_string(),
        webhooks: tenant.webhooks.to_vec(),
        limits: host_limits(&tenant.limits),
    }
}

/// The limits as the contract reports them to plugins.
fn host_limits(limits: &Limits) -> HostLimits {
    let clamp = |v: usize| u32::try_from(v).unwrap_or(u32::MAX);
    HostLimits {
        actions_per_event: clamp(limits.actions_per_hook),
        max_post_bytes: clamp(limits.max_post_bytes),
        max_timer_payload_bytes: clamp(limits.max_timer_payload_bytes),
        timers_per_session: clamp(limits.timers_per_session),
        timers_per_tenant: clamp(limits.timers_per_tenant),
        max_webhook_data_bytes: clamp(MAX_WEBHOOK_DATA_BYTES),
        max_session_state_bytes: clamp(limits.max_session_state_bytes),
    }
}

/// Runs `call` with the gateway's state lent to the store and a fresh time budget for
/// `events` events.
fn with_lent_state<R>(
    runtime: &Runtime,
    store: &mut Store<InstanceState>,
    state: &mut Box<GatewayState>,
    plugin: &Plugin,
    events: u64,
    call: impl FnOnce(
        &mut Store<InstanceState>,
        &crate::bindings::exports::chat_gateway::plugin::hooks::Guest,
    ) -> wasmtime::Result<R>,
) -> wasmtime::Result<R> {
    std::mem::swap(&mut store.data_mut().lent, state);
    runtime.arm_deadline(store, events);
    let result = call(store, plugin.chat_gateway_plugin_hooks());
    std::mem::swap(&mut store.data_mut().lent, state);
    result
}

/// Records a failed hook: drops the instance and sets the back-off.
fn fail(slot: &mut Tenant, now: u64, reason: &str, stderr: &str) {
    slot.live = None;
    slot.failures += 1;
    slot.last_failure_at = now;
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

/// Milliseconds since the Unix epoch as RFC 3339 (UTC, whole seconds); times past
/// [`MAX_TIME_MS`] show as its last second.
pub fn rfc3339(ms: u64) -> String {
    let ms = ms.min(MAX_TIME_MS);
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
