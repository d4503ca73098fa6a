//! A tenant as the core runs it: its component and settings, its live instance (if
//! any), its failure back-off and the events held while it is backed off.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use autoclose_config::{Limits, TenantConfig};
use autoclose_runtime::bindings::chat_gateway::plugin::types::{
    Interests, MessageFields, TenantSetup,
};
use autoclose_runtime::{Instance, InstanceState, TenantId};

use crate::hook::Hook;
use crate::state::HostState;
use crate::state::{PluginComponent, Runtime};

/// Events kept per backed-off tenant, delivered in order when it is back; beyond this
/// the oldest are dropped.
pub const MAX_QUEUED_EVENTS: usize = 1024;

/// After this long without a failure, a tenant's failure count starts over.
pub const QUIET_RESET_MS: u64 = 10 * 60 * 1000;

/// Longest a failing tenant waits before its next instance is tried.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Wait after the second consecutive failure; doubles with each further one. The first
/// failure is retried at once: a single bad event should not silence a tenant.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// Counters of one tenant, for operators and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
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

/// One configured tenant.
pub(crate) struct Tenant {
    pub(crate) name: Arc<str>,
    /// Its component; `None` while the file it names has not loaded.
    pub(crate) component: Option<Arc<PluginComponent>>,
    /// The file its own component comes from (`None`: the default component), loaded
    /// again when it has not loaded yet.
    source: Option<std::path::PathBuf>,
    config: String,
    defaults: Arc<str>,
    pub(crate) limits: Limits,
    webhooks: Arc<[String]>,
    pub(crate) interests: Interests,
    pub(crate) live: Option<Instance<HostState>>,
    pub(crate) failures: u32,
    pub(crate) last_failure_at: u64,
    pub(crate) retry_at: u64,
    /// Why its component last failed; `None` once an instance started since.
    pub(crate) last_error: Option<String>,
    /// Hooks held while backed off, oldest first.
    pub(crate) queued: VecDeque<Hook>,
    /// Whether its events may share a call: until its plugin is seen acting across
    /// sessions (see `batch`).
    pub(crate) batches: bool,
    pub(crate) stats: TenantStats,
}

/// Why a tenant's instance could not be started.
pub(crate) enum StartError {
    /// `configure` refused the settings.
    Config { path: String, reason: String },
    /// Instantiating or configuring trapped.
    Trap(String),
    /// Its component's file still does not load.
    Load(String),
}

/// A tenant whose component is not running because it failed, as
/// [`crate::Core::failing_tenants`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TenantFailure {
    /// The tenant.
    pub tenant: String,
    /// Why, as logged.
    pub reason: String,
    /// The host time from which another instance is tried (at its next event).
    pub retry_at: u64,
}

impl Tenant {
    /// A tenant of `config` running `component`, not started yet.
    pub(crate) fn new(config: &TenantConfig, component: Option<Arc<PluginComponent>>) -> Self {
        Tenant {
            name: config.name.as_str().into(),
            component,
            source: config.component.clone(),
            config: config.plugin_config.clone(),
            defaults: config.defaults.as_str().into(),
            limits: config.limits,
            webhooks: config.webhooks.clone().into(),
            interests: Interests {
                message_fields: MessageFields::empty(),
            },
            live: None,
            failures: 0,
            last_failure_at: 0,
            retry_at: 0,
            last_error: None,
            queued: VecDeque::new(),
            batches: true,
            stats: TenantStats::default(),
        }
    }

    /// What `configure` (and `about.explain`) gets for this tenant, whose handle is
    /// `id`.
    pub(crate) fn setup(&self, id: TenantId) -> TenantSetup {
        TenantSetup {
            tenant: id.0,
            name: self.name.to_string(),
            config: self.config.clone(),
            defaults: self.defaults.to_string(),
            webhooks: self.webhooks.to_vec(),
            limits: self.limits.to_host_limits(),
        }
    }

    /// Whether the tenant is backed off at `now`: no instance, and not yet time to
    /// try another.
    pub(crate) fn backed_off(&self, now: u64) -> bool {
        self.live.is_none() && now < self.retry_at
    }

    /// Instantiates the tenant's component and configures it, with `state` lent to
    /// the instance.
    pub(crate) fn start(
        &mut self,
        runtime: &Runtime,
        id: TenantId,
        state: &mut Box<HostState>,
    ) -> Result<Instance<HostState>, StartError> {
        let fresh = InstanceState::new(id, self.name.clone(), self.webhooks.clone(), self.limits);
        let component = match &self.component {
            Some(component) => component.clone(),
            None => {
                let Some(path) = &self.source else {
                    return Err(StartError::Load("no component".to_owned()));
                };
                let loaded = runtime
                    .load_file(path)
                    .map_err(|e| StartError::Load(e.to_string()))?;
                self.component = Some(loaded.clone());
                loaded
            }
        };
        let mut instance = Instance::new(runtime, &component, fresh)
            .map_err(|e| StartError::Trap(e.to_string()))?;
        let setup = self.setup(id);
        let configured = instance.configure(runtime, state, &setup);
        let ignored = instance.state_mut().take_commands();
        if !ignored.is_empty() {
            tracing::warn!(
                tenant = &*self.name,
                count = ignored.len(),
                "actions taken during configure were ignored"
            );
        }
        match configured {
            Err(trap) => {
                let stderr = instance.state().stderr_text();
                Err(StartError::Trap(if stderr.is_empty() {
                    trap.to_string()
                } else {
                    format!("{trap} (plugin stderr: {stderr})")
                }))
            }
            Ok(Err(e)) => Err(StartError::Config {
                path: e.path,
                reason: e.reason,
            }),
            Ok(Ok(interests)) => {
                self.interests = interests;
                self.last_error = None;
                Ok(instance)
            }
        }
    }

    /// Records a failed hook at `now`: drops the instance and sets the back-off.
    pub(crate) fn fail(&mut self, now: u64, reason: &str, stderr: &str) {
        let wait = self.mark_failed(now, reason, stderr);
        tracing::error!(
            tenant = &*self.name,
            component = self.component_name(),
            failures = self.failures,
            retry_in_ms = wait.as_millis() as u64,
            plugin_stderr = stderr,
            "plugin hook failed; instance dropped, its actions discarded: {reason}"
        );
    }

    /// [`Tenant::fail`] without the log line (whoever calls reports the failure):
    /// drops the instance, counts the failure, and returns the back-off it set.
    pub(crate) fn mark_failed(&mut self, now: u64, reason: &str, stderr: &str) -> Duration {
        self.live = None;
        self.last_error = Some(if stderr.is_empty() {
            reason.to_owned()
        } else {
            format!("{reason} (plugin stderr: {stderr})")
        });
        self.failures += 1;
        self.last_failure_at = now;
        self.stats.hooks_failed += 1;
        let wait = backoff(self.failures);
        self.retry_at = now.saturating_add(wait.as_millis() as u64);
        wait
    }

    /// Its component's name, or the file that did not load.
    pub(crate) fn component_name(&self) -> String {
        match (&self.component, &self.source) {
            (Some(component), _) => component.name().to_owned(),
            (None, Some(path)) => path.display().to_string(),
            (None, None) => "default".to_owned(),
        }
    }

    /// Records a hook that returned at `at`: a tenant quiet for long enough starts its
    /// failure count over.
    pub(crate) fn succeed(&mut self, at: u64, hooks: u64) {
        if at.saturating_sub(self.last_failure_at) >= QUIET_RESET_MS {
            self.failures = 0;
        }
        self.stats.hooks_ok += hooks;
    }
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
