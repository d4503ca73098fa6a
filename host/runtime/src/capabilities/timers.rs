//! `timers`: keyed timers per session, kept by the host.

use std::collections::HashSet;

use super::clamp_u32;
use crate::bindings::chat_gateway::plugin::timers::{self, TimerError};
use crate::command::Command;
use crate::ids::{SessionId, TimerKey};
use crate::state::InstanceState;
use crate::world::World;

impl<W: World> timers::Host for InstanceState<W> {
    fn set(
        &mut self,
        session: u64,
        key: u32,
        due: u64,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), TimerError>> {
        let session = SessionId(session);
        let max_payload = self.limits.max_timer_payload_bytes;
        if payload.len() > max_payload {
            return Ok(Err(TimerError::PayloadTooLarge(clamp_u32(max_payload))));
        }
        if !self.may_act_on(session) {
            return Ok(Err(TimerError::NoSession));
        }
        let key = TimerKey { session, key };
        if !self.replaces_pending(key) {
            let pending = self.pending_keys_after_call(session);
            if !pending.contains(&key.key) && pending.len() >= self.limits.timers_per_session {
                return Ok(Err(TimerError::TooManyTimers(clamp_u32(
                    self.limits.timers_per_session,
                ))));
            }
            if !pending.contains(&key.key)
                && self.tenant_timers_after_call() >= self.limits.timers_per_tenant
            {
                return Ok(Err(TimerError::TooManyTenantTimers(clamp_u32(
                    self.limits.timers_per_tenant,
                ))));
            }
        }
        self.push(Command::SetTimer { key, due, payload })?;
        Ok(Ok(()))
    }

    fn cancel(&mut self, session: u64, key: u32) -> wasmtime::Result<bool> {
        let session = SessionId(session);
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
            .unwrap_or_else(|| self.lent.timer_pending(key));
        self.push(Command::CancelTimer(key))?;
        Ok(pending)
    }
}

impl<W: World> InstanceState<W> {
    /// Whether setting `key` replaces a timer that is pending (in the store and not
    /// cancelled in this call): the common case, which cannot break the per-session cap.
    fn replaces_pending(&self, key: TimerKey) -> bool {
        self.lent.timer_pending(key)
            && !self
                .commands
                .iter()
                .any(|c| matches!(c, Command::CancelTimer(k) if *k == key))
    }

    /// The tenant's pending timers after this call so far, counted conservatively:
    /// the store's count plus every distinct new key set in this call (cancels in the
    /// call are not subtracted, so a call may be refused slightly early, never late).
    fn tenant_timers_after_call(&self) -> usize {
        let stored = self.lent.timers_of(self.tenant);
        // Far from the cap (the usual case) an upper bound will do, without a scan.
        if stored + self.commands.len() < self.limits.timers_per_tenant {
            return stored;
        }
        let new_keys: HashSet<TimerKey> = self
            .commands
            .iter()
            .filter_map(|c| match c {
                Command::SetTimer { key, .. } if !self.lent.timer_pending(*key) => Some(*key),
                _ => None,
            })
            .collect();
        stored + new_keys.len()
    }

    /// The keys `session` would have pending after this call so far. A short list
    /// (bounded by the per-session cap plus the actions of one call), so a plain vector.
    fn pending_keys_after_call(&self, session: SessionId) -> Vec<u32> {
        let mut keys: Vec<u32> = self.lent.timer_keys(session).collect();
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
