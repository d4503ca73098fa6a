//! The core's work, one step at a time: for a caller that runs several cores on
//! disjoint sessions and merges their transcripts in the order one core would have
//! given (`autoclose replay --threads`).
//!
//! A step is one thing the core does on its own account: an event, or one timer,
//! webhook retry or tenant wake-up coming due, each with the follow-ups it causes.
//! One core orders its steps by [`StepKind`]'s rules (see the crate's ordering rules);
//! a merger that knows each step's kind, the actions it took and the timers it set can
//! therefore put several cores' steps back into one core's order. What it cannot
//! place (a retry, a wake-up) or what would have made sessions depend on each other
//! (a failed hook, a tenant near its timer limit) is marked, so that the caller can
//! fall back to one core.

use autoclose_runtime::TenantId;

use crate::core::Core;

use crate::step_log::Open;
pub use crate::step_log::{Step, StepKind};

impl Core {
    /// Keeps a log of steps from now on, read with [`Core::drain_steps`].
    pub fn log_steps(&mut self) {
        self.steps.get_or_insert_default();
    }

    /// The steps taken since the last call, in order. Drain them together with
    /// [`Core::drain_actions`]: each step's actions are the next ones there.
    pub fn drain_steps(&mut self) -> impl Iterator<Item = Step> + '_ {
        self.steps.iter_mut().flat_map(|log| log.steps.drain(..))
    }

    /// Each tenant's `(timers_per_session, timers_per_tenant)`, by [`TenantId`]: how
    /// near its timer limit a tenant may come before a merger of several cores must
    /// stop (one step sets timers for one session, so at most the first).
    pub fn timer_limits(&self) -> Vec<(usize, usize)> {
        self.tenants
            .iter()
            .map(|t| (t.limits.timers_per_session, t.limits.timers_per_tenant))
            .collect()
    }

    /// Starts a step of `kind`, when steps are logged.
    #[inline]
    pub(crate) fn open_step(&mut self, kind: StepKind) {
        if let Some(log) = &mut self.steps {
            log.open = Some(Open {
                kind,
                actions_from: self.actions.len(),
                seq_from: self.state.timers.next_seq(),
                tenant: None,
            });
        }
    }

    /// Notes that the open step calls `tenant`'s plugin.
    #[inline]
    pub(crate) fn step_calls(&mut self, tenant: TenantId) {
        if let Some(Open { tenant: called, .. }) = self.steps.as_mut().and_then(|l| l.open.as_mut())
            && called.is_none()
        {
            let failed = self.tenants[tenant.0 as usize].stats.hooks_failed;
            *called = Some((tenant, failed));
        }
    }

    /// Ends the open step.
    #[inline]
    pub(crate) fn close_step(&mut self) {
        let Some(log) = &mut self.steps else {
            return;
        };
        let Some(open) = log.open.take() else {
            return;
        };
        let (tenant, tenant_timers, failed) = match open.tenant {
            Some((tenant, failed_before)) => (
                Some(tenant),
                self.state.timers.count_of(tenant),
                self.tenants[tenant.0 as usize].stats.hooks_failed != failed_before,
            ),
            None => (None, 0, false),
        };
        log.steps.push(Step {
            kind: open.kind,
            actions: self.actions.len() - open.actions_from,
            timers_set: open.seq_from..self.state.timers.next_seq(),
            tenant,
            tenant_timers,
            failed,
        });
    }
}
