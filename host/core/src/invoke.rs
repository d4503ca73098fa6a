//! Invoking a tenant's plugin: its instance started (and configured) when needed,
//! the call made with the host's state lent, and a failure turned into a back-off.
//! What the call asked for is handed back, not applied.

use autoclose_runtime::{Command, SessionId, TenantId, TimerKey};

use crate::bounds::MAX_TIMER_REDELIVERIES;
use crate::core::Core;
use crate::hook::Hook;
use crate::tenant::StartError;

/// What came of invoking a hook.
pub(crate) enum Invoked {
    /// The hook ran: what it asked for, in order, and the session whose close it
    /// reported (whose plugin state goes once the commands are applied).
    Ran {
        commands: Vec<Command>,
        closing: Option<SessionId>,
    },
    /// The hook trapped: the tenant is backed off and the hook's actions discarded.
    Failed { closing: Option<SessionId> },
    /// No instance could be started; the hook is held for when the tenant is back.
    NotStarted,
}

impl Core {
    /// Calls `hook` in `tenant`'s instance now, starting one first if it has none.
    pub(crate) fn invoke(&mut self, tenant: TenantId, hook: Hook) -> Invoked {
        let Core {
            runtime,
            tenants,
            state,
            journal,
            hook_observer,
            ..
        } = self;
        let slot = &mut tenants[tenant.0 as usize];
        if slot.live.is_none() {
            match slot.start(runtime, tenant, state) {
                Ok(live) => {
                    slot.stats.restarts += 1;
                    slot.live = Some(live);
                }
                Err(e) => {
                    let reason = match e {
                        StartError::Config { path, reason } => {
                            format!("configure refused {path}: {reason}")
                        }
                        StartError::Trap(reason) | StartError::Load(reason) => reason,
                    };
                    slot.fail(state.now, &reason, "");
                    match hook {
                        // A timer goes back to the timer store, to wait as a timer.
                        Hook::Timer(event, redeliveries) => {
                            let key = TimerKey {
                                session: SessionId(event.session),
                                key: event.key,
                            };
                            let at = slot.retry_at.max(state.now);
                            if state.hold_timer(tenant, key, at, &event.payload, redeliveries)
                                && let Some(journal) = journal
                            {
                                journal.note_session(key.session);
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
                    return Invoked::NotStarted;
                }
            }
        }
        let Some(live) = slot.live.as_mut() else {
            return Invoked::NotStarted;
        };
        // The plugin's state for the session as it is now, not as it was when the
        // hook was made: a held hook is delivered after later ones changed it.
        let mut hook = hook;
        if let Some(record) = state.sessions.get(hook.session()) {
            hook.set_state((!record.plugin_state.is_empty()).then(|| record.plugin_state.clone()));
        }
        live.state_mut()
            .begin_call([hook.session()], hook.closing());
        // One event: its own hook, which takes it in registers (see `hooks.wit`).
        let started = hook_observer.as_ref().map(|_| std::time::Instant::now());
        let result = live.call(runtime, state, hook.call());
        if let (Some(observer), Some(started)) = (hook_observer, started) {
            observer(started.elapsed());
        }
        let commands = live.state_mut().take_commands();
        let closing = hook.closing();
        match result {
            Ok(()) => {
                slot.succeed(state.now, 1);
                Invoked::Ran { commands, closing }
            }
            Err(trap) => {
                let stderr = live.state().stderr_text();
                slot.fail(state.now, &trap.to_string(), &stderr);
                match hook {
                    // Timers are delivered at least once: a timer whose hook failed
                    // comes back when the tenant does (a few times at most).
                    Hook::Timer(event, redeliveries) if redeliveries < MAX_TIMER_REDELIVERIES => {
                        let key = TimerKey {
                            session: SessionId(event.session),
                            key: event.key,
                        };
                        let at = slot.retry_at.max(state.now);
                        if state.hold_timer(tenant, key, at, &event.payload, redeliveries + 1) {
                            if let Some(journal) = journal {
                                journal.note_session(key.session);
                            }
                        } else {
                            slot.stats.events_dropped += 1;
                        }
                    }
                    _ => slot.stats.events_dropped += 1,
                }
                Invoked::Failed { closing }
            }
        }
    }

    /// Hands an emptied command buffer back to `tenant`'s instance, if it still has
    /// one, so that its next call records without allocating.
    pub(crate) fn give_back(&mut self, tenant: TenantId, commands: Vec<Command>) {
        if let Some(live) = self.tenants[tenant.0 as usize].live.as_mut() {
            live.state_mut().give_back(commands);
        }
    }
}
