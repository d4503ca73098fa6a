//! The core's state and its public face: starting the tenants, and what callers read.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use autoclose_config::{Egress, HostConfig, TenantConfig};
use autoclose_runtime::bindings::chat_gateway::plugin::events::Event;
use autoclose_runtime::bindings::chat_gateway::plugin::types::TenantSetup;
use autoclose_runtime::{SessionId, TenantId};
use autoclose_webhook::outbound::Outbound;

use crate::action::Action;
use crate::bounds::MAX_TIME_MS;
use crate::changes::Journal;
use crate::error::CoreError;
use crate::gathered::Batch;
use crate::hook::FollowUp;
use crate::state::HostState;
use crate::state::{PluginComponent, Runtime};
use crate::tenant::{StartError, Tenant, TenantFailure, TenantStats};

/// Sessions, timers and the tenants' plugin instances.
pub struct Core {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) tenants: Vec<Tenant>,
    pub(crate) tenant_ids: foldhash::HashMap<String, TenantId>,
    pub(crate) egress: Egress,
    /// Boxed so that lending it to a store for a hook swaps a pointer, not the struct.
    pub(crate) state: Box<HostState>,
    pub(crate) actions: Vec<Action>,
    pub(crate) follow_ups: VecDeque<FollowUp>,
    /// Follow-up hooks per tenant since the last event or timer.
    pub(crate) follow_up_counts: foldhash::HashMap<TenantId, u32>,
    /// Unknown tenant names already reported at info; shared by the cores of one
    /// replay on several threads ([`Core::share_unknown_tenants`]), so that each is
    /// reported once there too.
    pub(crate) unknown_tenants: UnknownTenants,
    /// When backed-off tenants with queued hooks are due back.
    pub(crate) wakeups: std::collections::BTreeSet<(u64, TenantId)>,
    pub(crate) outbound: Box<dyn Outbound + Send>,
    /// What changed, while change tracking is on.
    pub(crate) journal: Option<Journal>,
    /// Told how long each hook call took, when set.
    pub(crate) hook_observer: Option<HookObserver>,
    /// Closed sessions in the order they closed, for [`Core::forget_closed`].
    pub(crate) closed_order: VecDeque<(u64, SessionId)>,
    /// The events of the batched call being made, kept to reuse its allocation.
    pub(crate) call_events: Vec<Event>,
    /// Events gathered by [`Core::handle_all`] for one call.
    pub(crate) batch: Batch,
    /// Steps of history kept per session; 0: none (see [`Core::keep_history`]).
    pub(crate) history_steps: usize,
    /// What the hook whose commands are being applied was called for, while
    /// histories are kept.
    pub(crate) cause: Option<crate::history::Trigger>,
    /// The steps taken, while they are logged (see [`Core::log_steps`]).
    pub(crate) steps: Option<Box<crate::step_log::StepLog>>,
}

/// Unknown tenant names reported at info, shareable between cores.
pub type UnknownTenants = Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

/// Receives the duration of every hook call (for a latency histogram).
pub type HookObserver = Box<dyn Fn(Duration) + Send>;

impl Core {
    /// Starts every tenant of `config`: loads the components it names (tenants without
    /// one run `default`), instantiates and configures them. Any refusal is an error
    /// naming the tenant and the path inside its document: what a replay or a check
    /// wants, where a half-configured run would mislead.
    pub fn new(
        runtime: Arc<Runtime>,
        config: &HostConfig,
        default: Arc<PluginComponent>,
        outbound: Box<dyn Outbound + Send>,
    ) -> Result<Self, CoreError> {
        let (core, failures) = Self::holding_failures(runtime, config, default, outbound);
        match failures.into_iter().next() {
            Some(failure) => Err(failure),
            None => Ok(core),
        }
    }

    /// Starts every tenant of `config` as [`Core::new`] does, but a tenant that cannot
    /// start (its component does not load, traps or runs out of time in `configure`,
    /// or refuses its settings) does not stop the others: it is kept failed, with the
    /// back-off of a failing tenant; its events are held for it (durably, where the
    /// core's changes are stored) and its instance is tried again when its back-off
    /// ends. Returns the core and why each such tenant failed, in configuration order.
    pub fn holding_failures(
        runtime: Arc<Runtime>,
        config: &HostConfig,
        default: Arc<PluginComponent>,
        outbound: Box<dyn Outbound + Send>,
    ) -> (Self, Vec<CoreError>) {
        let mut components: HashMap<PathBuf, Arc<PluginComponent>> = HashMap::new();
        let mut core = Core {
            runtime,
            tenants: Vec::new(),
            tenant_ids: Default::default(),
            egress: config.egress.clone(),
            state: Box::new(HostState {
                webhooks: Arc::new(config.webhooks.clone()),
                ..HostState::default()
            }),
            actions: Vec::new(),
            follow_ups: VecDeque::new(),
            follow_up_counts: Default::default(),
            wakeups: std::collections::BTreeSet::new(),
            unknown_tenants: UnknownTenants::default(),
            outbound,
            journal: None,
            hook_observer: None,
            closed_order: VecDeque::new(),
            call_events: Vec::new(),
            batch: Batch::default(),
            history_steps: 0,
            cause: None,
            steps: None,
        };
        let mut failures = Vec::new();
        for tenant_config in &config.tenants {
            let name = &tenant_config.name;
            // Fewer than 2^32 tenants: each is a key of one configuration file.
            let id = TenantId(u32::try_from(core.tenants.len()).unwrap_or(u32::MAX));
            let component = match &tenant_config.component {
                None => Ok(default.clone()),
                Some(path) => match components.get(path) {
                    Some(c) => Ok(c.clone()),
                    None => core.runtime.load_file(path).inspect(|loaded| {
                        components.insert(path.clone(), loaded.clone());
                    }),
                },
            };
            let mut tenant = match component {
                Ok(component) => Tenant::new(tenant_config, Some(component)),
                Err(source) => {
                    let mut tenant = Tenant::new(tenant_config, None);
                    let failure = CoreError::Load {
                        tenant: name.clone(),
                        source,
                    };
                    tenant.mark_failed(core.state.now, &failure.to_string(), "");
                    failures.push(failure);
                    core.tenant_ids.insert(name.clone(), id);
                    core.tenants.push(tenant);
                    continue;
                }
            };
            if let Err(failure) = core.start_tenant(id, &mut tenant) {
                tenant.mark_failed(core.state.now, &failure.to_string(), "");
                failures.push(failure);
            }
            core.tenant_ids.insert(name.clone(), id);
            core.tenants.push(tenant);
        }
        (core, failures)
    }

    /// Starts `tenant`'s instance as tenant `id`: instantiated and configured, or why
    /// not, naming the tenant and the path inside its document.
    fn start_tenant(&mut self, id: TenantId, tenant: &mut Tenant) -> Result<(), CoreError> {
        match tenant.start(&self.runtime, id, &mut self.state) {
            Ok(live) => {
                tenant.live = Some(live);
                Ok(())
            }
            Err(StartError::Config { path, reason }) => Err(CoreError::Config {
                tenant: tenant.name.to_string(),
                path,
                reason,
            }),
            Err(StartError::Trap(reason) | StartError::Load(reason)) => Err(CoreError::Start {
                tenant: tenant.name.to_string(),
                component: tenant.component_name(),
                reason,
            }),
        }
    }

    /// Gives one tenant new settings (or adds it) without touching any other tenant:
    /// what a change through the admin API does. An instance of `component` is started
    /// with `config`'s settings; only if it starts does it replace the tenant's running
    /// one, keeping the tenant's sessions, pending timers, deliveries, counters and held
    /// events, which then run at once, in order. A refusal leaves the tenant as it was,
    /// except that a new tenant is added held failed, as at start.
    pub fn replace_tenant(
        &mut self,
        config: &TenantConfig,
        component: Arc<PluginComponent>,
    ) -> Result<(), CoreError> {
        let mut fresh = Tenant::new(config, Some(component));
        let Some(&id) = self.tenant_ids.get(&config.name) else {
            let id = TenantId(u32::try_from(self.tenants.len()).unwrap_or(u32::MAX));
            let started = self.start_tenant(id, &mut fresh);
            if let Err(failure) = &started {
                fresh.mark_failed(self.state.now, &failure.to_string(), "");
            }
            self.tenant_ids.insert(config.name.clone(), id);
            self.tenants.push(fresh);
            return started;
        };
        self.start_tenant(id, &mut fresh)?;
        let old = std::mem::replace(&mut self.tenants[id.0 as usize], fresh);
        let slot = &mut self.tenants[id.0 as usize];
        slot.queued = old.queued;
        slot.stats = old.stats;
        self.follow_up_counts.clear();
        if !slot.queued.is_empty() {
            self.drain_queued(id);
            self.run_follow_ups();
        }
        Ok(())
    }

    /// The tenants whose component is not running because it failed (to load, to
    /// start, or in a hook), with why and when it is tried again: what a health check
    /// reports as degraded. A tenant leaves the list when an instance of its component
    /// starts.
    pub fn failing_tenants(&self) -> Vec<TenantFailure> {
        self.tenants
            .iter()
            .filter(|t| t.live.is_none())
            .filter_map(|t| {
                Some(TenantFailure {
                    tenant: t.name.to_string(),
                    reason: t.last_error.clone()?,
                    retry_at: t.retry_at,
                })
            })
            .collect()
    }

    /// Names of the configured tenants, in configuration order.
    pub fn tenant_names(&self) -> impl Iterator<Item = &str> + '_ {
        self.tenants.iter().map(|t| &*t.name)
    }

    /// Each tenant's name, its component and what its `configure` got: for tools that
    /// ask a component about a tenant's settings (`check-config` explains them). A
    /// tenant whose component did not load is left out.
    pub fn tenant_setups(
        &self,
    ) -> impl Iterator<Item = (&str, &Arc<PluginComponent>, TenantSetup)> + '_ {
        self.tenants.iter().enumerate().filter_map(|(id, tenant)| {
            let id = TenantId(u32::try_from(id).unwrap_or(u32::MAX));
            Some((&*tenant.name, tenant.component.as_ref()?, tenant.setup(id)))
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

    /// Reports unknown tenants once among all the cores given `reported`, not once per
    /// core: what a replay split across cores wants of its log.
    pub fn share_unknown_tenants(&mut self, reported: UnknownTenants) {
        self.unknown_tenants = reported;
    }

    /// The actions taken since the last call, in order, drained from a buffer the
    /// core keeps: for a caller that writes them out after every event and would
    /// otherwise allocate a vector each time.
    pub fn drain_actions(&mut self) -> impl Iterator<Item = Action> + '_ {
        self.actions.drain(..)
    }

    /// Counters of the tenant `name`.
    pub fn tenant_stats(&self, name: &str) -> Option<TenantStats> {
        let id = *self.tenant_ids.get(name)?;
        Some(self.tenants[id.0 as usize].stats)
    }

    /// The core's id of `session` (empty for an unknown one).
    pub(crate) fn external(&self, session: SessionId) -> String {
        self.state.external(session)
    }
}
