//! Several events of one tenant in one call (`hooks.on-events`).
//!
//! Entering a component costs the same whether the policy then does much or little:
//! wasmtime resolves the export, lowers the arguments and arms the sandbox on every
//! call. Delivering consecutive events of one tenant together pays that once. It is an
//! optimisation only: a batched run acts exactly as an unbatched one, action for action
//! and in the same order (`tests/differential.rs` compares the transcripts). These rules
//! make it so:
//!
//! - A batch holds consecutive events of one tenant, each of another session, so the
//!   plugin state delivered with each event is current.
//! - Nothing may come due between its events: a batch ends before an event that a
//!   timer, retry or wake-up due earlier would precede, and spans less than
//!   [`MIN_TIMER_DELAY_MS`], so that no timer the batch itself sets can be due inside it.
//! - Each action names a session, so it belongs to that session's event. The host
//!   applies the events' actions one event after another, each at its event's instant,
//!   with the event's follow-ups (a close the plugin made, a webhook answer known at
//!   once) before the next event's actions.
//! - Whenever that picture breaks, the host falls back to one event per call in a
//!   fresh instance, for the events whose actions it has not applied: when the call
//!   traps (so that only an event that fails on its own is lost), when the plugin acts
//!   on a session that none of the batch's events is about (such a tenant is not
//!   batched again), and when applying an event's actions made something due before the
//!   next event or failed the tenant.

use autoclose_runtime::{Call, Command, SessionId, TenantId};

use crate::bounds::{MAX_TIME_MS, MIN_TIMER_DELAY_MS};
use crate::core::Core;
use crate::error::EventError;
use crate::event::GatewayEvent;
use crate::gathered::Batch;
use crate::hook::Hook;

/// Most events one call carries: enough to spread a call's fixed cost thinly, few
/// enough that per-event bookkeeping in the host (which scans the batch) stays cheap.
pub const MAX_BATCH_EVENTS: usize = 32;

/// Fewest events worth one call: a list costs an allocation in the guest and more
/// lowering than the single-event hooks' registers, which a call with two or three
/// events does not earn back (measured on the replay bench: see docs/figures.md).
pub const MIN_BATCH_EVENTS: usize = 4;

impl Core {
    /// Handles `events` (each with its host time, in order) as [`Core::handle`]
    /// would, one after another, but delivers consecutive events of one tenant in one
    /// call where that cannot change what happens (see the module documentation).
    ///
    /// Stops at the first refused event and returns its index and why; the events
    /// before it are handled.
    pub fn handle_all<'e>(
        &mut self,
        events: impl IntoIterator<Item = (u64, &'e GatewayEvent)>,
    ) -> Result<(), (usize, EventError)> {
        let mut batch = std::mem::take(&mut self.batch);
        let result = self.gather(&mut batch, events);
        self.flush(&mut batch);
        self.batch = batch;
        result
    }

    /// Prepares each event and adds its hook to `batch`, delivering the batch whenever
    /// the next event cannot join it.
    pub(crate) fn gather<'e>(
        &mut self,
        batch: &mut Batch,
        events: impl IntoIterator<Item = (u64, &'e GatewayEvent)>,
    ) -> Result<(), (usize, EventError)> {
        for (index, (at, event)) in events.into_iter().enumerate() {
            if at > MAX_TIME_MS {
                return Err((index, EventError::TimeOutOfRange(at)));
            }
            if let Some(&first_at) = batch.times.first() {
                // Gathering applies nothing, so what was due when the batch began is
                // still the earliest (a close only cancels).
                let due_before = batch.due.is_some_and(|due| due < at);
                if due_before
                    || at >= first_at.saturating_add(MIN_TIMER_DELAY_MS)
                    || batch.len() >= MAX_BATCH_EVENTS
                    || self.cannot_join(batch, event)
                {
                    self.flush(batch);
                }
            }
            self.follow_up_counts.clear();
            if at > 0 {
                self.fire_due(at - 1);
            }
            self.state.now = self.state.now.max(at);
            let Some((tenant, hook)) = self.prepare(event).map_err(|e| (index, e))? else {
                continue;
            };
            let joins = batch.len() == 0
                || (batch.tenant == tenant && !batch.sessions.contains(&hook.session()));
            if !joins || !self.batchable(tenant) {
                self.flush(batch);
                // What the delivered batch set going may be due before this event.
                if at > 0 {
                    self.fire_due(at - 1);
                }
            }
            if self.batchable(tenant) {
                if batch.len() == 0 {
                    batch.due = self.next_due();
                }
                batch.push(tenant, self.state.now, hook);
            } else {
                self.follow_up_counts.clear();
                self.call(tenant, hook);
                self.run_follow_ups();
            }
        }
        Ok(())
    }

    /// Whether `event` is of another tenant than `batch` or of a session in it. Asked
    /// before the event is prepared: preparing changes the session (its attributes, its
    /// presence), which the batch's earlier hook for it must not see.
    pub(crate) fn cannot_join(&self, batch: &Batch, event: &GatewayEvent) -> bool {
        match self.tenant_ids.get(event.tenant()) {
            None => false,
            Some(&tenant) => {
                tenant != batch.tenant
                    || self
                        .state
                        .sessions
                        .find(tenant, event.session())
                        .is_some_and(|session| batch.sessions.contains(&session))
            }
        }
    }

    /// Whether `tenant`'s events may share a call now: its instance is up, nothing of
    /// it is held back, and it has never acted outside a batch's sessions.
    pub(crate) fn batchable(&self, tenant: TenantId) -> bool {
        let slot = &self.tenants[tenant.0 as usize];
        slot.live.is_some() && slot.queued.is_empty() && slot.batches
    }

    /// Delivers what `batch` holds and empties it.
    pub(crate) fn flush(&mut self, batch: &mut Batch) {
        let end = self.state.now;
        match batch.len() {
            0 => return,
            n if n < MIN_BATCH_EVENTS => {
                let events = batch.take();
                self.deliver_one_by_one(batch.tenant, events);
            }
            _ => self.call_batch(batch),
        }
        self.state.now = self.state.now.max(end);
    }

    /// Delivers `events` of `tenant` one per call, each at its own instant, firing
    /// whatever comes due before each as [`Core::handle`] does.
    pub(crate) fn deliver_one_by_one(&mut self, tenant: TenantId, events: Vec<(u64, Hook)>) {
        for (at, hook) in events {
            self.follow_up_counts.clear();
            // Host time may be ahead (later events were prepared): back to this one's.
            self.state.now = self.state.now.min(at);
            if at > 0 {
                self.fire_due(at - 1);
            }
            self.state.now = self.state.now.max(at);
            self.call(tenant, hook);
            self.run_follow_ups();
        }
    }

    /// Makes one call with all of `batch`'s events, then applies each event's actions
    /// in order; falls back to one event per call where the module documentation says.
    pub(crate) fn call_batch(&mut self, batch: &mut Batch) {
        let tenant = batch.tenant;
        if self.tenants[tenant.0 as usize].live.is_none() {
            let events = batch.take();
            self.deliver_one_by_one(tenant, events);
            return;
        }
        let Core {
            runtime,
            tenants,
            state,
            hook_observer,
            call_events,
            ..
        } = self;
        let slot = &mut tenants[tenant.0 as usize];
        let Some(live) = slot.live.as_mut() else {
            return;
        };
        live.state_mut().begin_call(
            batch.sessions.iter().copied(),
            batch.hooks.iter().filter_map(|hook| hook.closing()),
        );
        call_events.clear();
        batch.redeliveries.clear();
        for (mut hook, session) in batch.hooks.drain(..).zip(&batch.sessions) {
            if let Some(record) = state.sessions.get(*session)
                && !record.plugin_state.is_empty()
            {
                hook.set_state(Some(record.plugin_state.clone()));
            }
            let (event, redeliveries) = hook.into_event();
            call_events.push(event);
            batch.redeliveries.push(redeliveries);
        }
        let times = std::mem::take(&mut batch.times);
        let sessions = std::mem::take(&mut batch.sessions);
        let first_request = state.next_request;
        let started = hook_observer.as_ref().map(|_| std::time::Instant::now());
        let result = live.call(runtime, state, Call::Events(call_events));
        if let (Some(observer), Some(started)) = (hook_observer, started) {
            observer(started.elapsed());
        }
        let hooks: Vec<Hook> = call_events
            .drain(..)
            .zip(batch.redeliveries.drain(..))
            .map(|(event, redeliveries)| Hook::from_event(event, redeliveries))
            .collect();
        let mut commands = live.state_mut().take_commands();
        let acted_outside = live.state().acted_outside();
        let first_at = times.first().copied().unwrap_or_default();
        match result {
            Ok(()) if !acted_outside => {
                slot.succeed(first_at, hooks.len() as u64);
                self.apply_in_order(tenant, &times, &sessions, hooks, &mut commands);
                self.give_back(tenant, commands);
                // Hand the lists back: the next batch fills them without allocating.
                let (mut times, mut sessions) = (times, sessions);
                times.clear();
                sessions.clear();
                batch.times = times;
                batch.sessions = sessions;
            }
            Ok(()) => {
                tracing::info!(
                    tenant = &*slot.name,
                    component = slot.component_name(),
                    "the plugin acted on a session none of the call's events is about; this tenant's events go one per call from now on"
                );
                slot.batches = false;
                slot.live = None;
                state.next_request = first_request;
                self.state.now = first_at;
                self.deliver_one_by_one(tenant, times.into_iter().zip(hooks).collect());
            }
            Err(trap) => {
                tracing::warn!(
                    tenant = &*slot.name,
                    component = slot.component_name(),
                    events = hooks.len(),
                    "a call with several events failed; delivering them one per call in a fresh instance: {trap:#}"
                );
                slot.live = None;
                state.next_request = first_request;
                self.state.now = first_at;
                self.deliver_one_by_one(tenant, times.into_iter().zip(hooks).collect());
            }
        }
    }

    /// Applies the actions of a call that returned, event by event: each event's at
    /// its instant and followed by its follow-ups. If that makes something due before
    /// the next event, or fails the tenant, the remaining events' actions are dropped
    /// and those events delivered again, one per call, in a fresh instance.
    pub(crate) fn apply_in_order(
        &mut self,
        tenant: TenantId,
        times: &[u64],
        sessions: &[SessionId],
        hooks: Vec<Hook>,
        commands: &mut Vec<Command>,
    ) {
        let position = |command: &Command| {
            sessions
                .iter()
                .position(|session| *session == command.session())
                .unwrap_or(usize::MAX)
        };
        let mut ordered: Vec<(usize, Command)> =
            commands.drain(..).map(|c| (position(&c), c)).collect();
        ordered.sort_by_key(|(index, _)| *index);
        let mut ordered = ordered.into_iter().peekable();
        let failures = self.tenants[tenant.0 as usize].stats.hooks_failed;
        let mut hooks = hooks.into_iter();
        for (index, &at) in times.iter().enumerate() {
            let Some(hook) = hooks.next() else {
                break;
            };
            self.state.now = at;
            self.follow_up_counts.clear();
            self.cause = self.trigger_of(&hook);
            self.apply(
                tenant,
                std::iter::from_fn(|| ordered.next_if(|(i, _)| *i == index).map(|(_, c)| c)),
            );
            self.cause = None;
            if let Some(session) = hook.closing() {
                self.drop_plugin_state(session);
            }
            self.run_follow_ups();
            let Some(&next_at) = times.get(index + 1) else {
                break;
            };
            let slot = &self.tenants[tenant.0 as usize];
            let interrupted = slot.stats.hooks_failed != failures
                || slot.live.is_none()
                || self.next_due().is_some_and(|due| due < next_at);
            if interrupted {
                if let Some(slot) = self.tenants.get_mut(tenant.0 as usize) {
                    slot.live = None;
                }
                let rest = times[index + 1..].iter().copied().zip(hooks).collect();
                self.deliver_one_by_one(tenant, rest);
                return;
            }
        }
    }
}
