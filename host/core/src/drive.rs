//! The loop that drives the core: each event, timer, retry and wake-up goes through
//! the same stages, and this is the only place that sequences them.
//!
//! ```text
//!  event ──intake──▶ hook ──invoke──▶ commands ──apply──▶ actions, timers, deliveries
//!                     ▲                                        │
//!                     └──────────── follow-ups ◀───────────────┘
//!                       (a plugin's own close, a webhook's outcome)
//! ```
//!
//! Stages hand back values (`intake` the hook, `invoke` the commands); none calls the
//! stage that comes before it.

use autoclose_runtime::bindings::chat_gateway::plugin::events::{
    CloseCause, HttpResponseEvent, SessionChange, TimerEvent,
};
use autoclose_runtime::{RequestId, SessionId, TenantId, TimerKey};
use autoclose_webhook::retry::AttemptResult;

use crate::bounds::{MAX_FOLLOW_UPS, MAX_TIME_MS};
use crate::core::Core;
use crate::error::EventError;
use crate::event::GatewayEvent;
use crate::hook::{FollowUp, Hook, session_hook};
use crate::invoke::Invoked;
use crate::steps::StepKind;
use crate::tenant::MAX_QUEUED_EVENTS;
use crate::timers::FiredTimer;

impl Core {
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
        self.open_step(StepKind::Event);
        let handled = match self.prepare(event) {
            Ok(Some((tenant, hook))) => {
                self.call(tenant, hook);
                self.run_follow_ups();
                Ok(())
            }
            Ok(None) => Ok(()),
            Err(e) => Err(e),
        };
        self.close_step();
        handled
    }

    /// Reports the result of an attempt that [`Outbound::attempt`] left pending.
    /// Unknown request ids (already settled) are ignored.
    pub fn complete_attempt(&mut self, request: RequestId, result: AttemptResult) {
        self.follow_up_counts.clear();
        self.settle(request, result);
        self.run_follow_ups();
    }

    /// Fires what is due at or before `limit`, earliest first; at the same instant,
    /// backed-off tenants come back (their queued hooks are older), then timers, then
    /// webhook retries.
    pub(crate) fn fire_due(&mut self, limit: u64) {
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
                Some(at) if wake == Some(at) => {
                    self.open_step(StepKind::Shared { due: at });
                    self.wake_due(at);
                }
                Some(at) if timer == Some(at) => {
                    if self.steps.is_some()
                        && let Some((due, seq)) = self.state.timers.first()
                    {
                        self.open_step(StepKind::Timer { due, seq });
                    }
                    self.fire_timer(limit);
                }
                Some(at) => {
                    self.open_step(StepKind::Shared { due: at });
                    self.retry_due(limit);
                }
            }
            self.close_step();
        }
    }

    /// Delivers the queued hooks of the first tenant due back at `at`.
    pub(crate) fn wake_due(&mut self, at: u64) {
        let Some((_, tenant)) = self.wakeups.pop_first() else {
            return;
        };
        self.state.now = self.state.now.max(at);
        let slot = &self.tenants[tenant.0 as usize];
        if slot.live.is_none() && self.state.now < slot.retry_at {
            self.wakeups.insert((slot.retry_at, tenant));
            return;
        }
        self.drain_queued(tenant);
        self.run_follow_ups();
    }

    /// Delivers `tenant`'s queued hooks in order; returns false if one failed (the
    /// rest stay queued and a wake-up is set for the end of the new back-off).
    pub(crate) fn drain_queued(&mut self, tenant: TenantId) -> bool {
        while let Some(queued) = self.tenants[tenant.0 as usize].queued.pop_front() {
            self.touch_held(tenant);
            if !self.run_hook(tenant, queued) {
                self.schedule_wakeup(tenant);
                return false;
            }
        }
        true
    }

    pub(crate) fn schedule_wakeup(&mut self, tenant: TenantId) {
        let slot = &self.tenants[tenant.0 as usize];
        if !slot.queued.is_empty() {
            self.wakeups
                .insert((slot.retry_at.max(self.state.now), tenant));
        }
    }

    pub(crate) fn fire_timer(&mut self, limit: u64) {
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
        self.record_timer_fired(key);
        let Some(record) = self.state.sessions.get(key.session) else {
            return;
        };
        let (tenant, Some(channel)) = (record.tenant, record.channel) else {
            return;
        };
        // A backed-off tenant's timer goes back to the store (see `defer`).
        self.call(
            tenant,
            Hook::Timer(
                TimerEvent {
                    state: None,
                    tenant: tenant.0,
                    session: key.session.0,
                    channel: channel.0,
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

    pub(crate) fn retry_due(&mut self, limit: u64) {
        let Some((due, request)) = self.state.outbox.pop_due(limit) else {
            return;
        };
        self.state.now = self.state.now.max(due);
        self.attempt(request);
        self.run_follow_ups();
    }

    pub(crate) fn run_follow_ups(&mut self) {
        while let Some(follow_up) = self.follow_ups.pop_front() {
            let now = self.state.now;
            let tenant = match &follow_up {
                FollowUp::Closed { tenant, .. } | FollowUp::Answered { tenant, .. } => *tenant,
            };
            let count = self.follow_up_counts.entry(tenant).or_default();
            *count += 1;
            if *count > MAX_FOLLOW_UPS {
                let slot = &mut self.tenants[tenant.0 as usize];
                if slot.live.is_some() {
                    slot.stats.events_dropped += 1;
                    slot.fail(
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
                        tenant: tenant.0,
                        session: session.0,
                        request: request.0,
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
    pub(crate) fn call(&mut self, tenant: TenantId, hook: Hook) {
        self.step_calls(tenant);
        let backed_off = self.tenants[tenant.0 as usize].backed_off(self.state.now);
        if backed_off || !self.drain_queued(tenant) {
            self.defer(tenant, hook);
            return;
        }
        if !self.run_hook(tenant, hook) {
            self.schedule_wakeup(tenant);
        }
    }

    /// Queues a hook of a backed-off tenant (dropping the oldest beyond the cap).
    pub(crate) fn defer(&mut self, tenant: TenantId, hook: Hook) {
        // A timer waits as a timer: in the timer store (durable where the store is)
        // until the tenant is back, not in the in-memory queue.
        let hook = match hook {
            Hook::Timer(event, redeliveries) => {
                let at = self.tenants[tenant.0 as usize].retry_at.max(self.state.now);
                let key = TimerKey {
                    session: SessionId(event.session),
                    key: event.key,
                };
                if self
                    .state
                    .hold_timer(tenant, key, at, &event.payload, redeliveries)
                {
                    self.touch_session(key.session);
                }
                return;
            }
            other => other,
        };
        self.touch_held(tenant);
        let slot = &mut self.tenants[tenant.0 as usize];
        slot.stats.events_deferred += 1;
        if slot.queued.len() >= MAX_QUEUED_EVENTS {
            slot.queued.pop_front();
            slot.stats.events_dropped += 1;
        }
        slot.queued.push_back(hook);
        self.schedule_wakeup(tenant);
    }

    /// Invokes `hook` and applies what it asked for; returns whether it ran.
    pub(crate) fn run_hook(&mut self, tenant: TenantId, hook: Hook) -> bool {
        let cause = self.trigger_of(&hook);
        match self.invoke(tenant, hook) {
            Invoked::Ran {
                mut commands,
                closing,
            } => {
                self.cause = cause;
                self.apply(tenant, commands.drain(..));
                self.cause = None;
                if let Some(session) = closing {
                    self.drop_plugin_state(session);
                }
                self.give_back(tenant, commands);
                true
            }
            Invoked::Failed { closing } => {
                if let Some(session) = closing {
                    self.drop_plugin_state(session);
                }
                false
            }
            Invoked::NotStarted => false,
        }
    }
}
