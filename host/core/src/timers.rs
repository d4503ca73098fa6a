//! The host's timer store: keyed timers with payloads, fired in due order.
//!
//! Set, replace and cancel are O(log n); firing takes the earliest due timer, ties
//! broken by the order in which timers were set. Stays fast with millions pending.

use std::collections::{BTreeMap, BTreeSet};

use foldhash::HashMap;

use autoclose_runtime::{SessionId, TenantId, TimerKey};

/// A timer that came due.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FiredTimer {
    /// Which timer.
    pub key: TimerKey,
    /// When it was due.
    pub due: u64,
    /// The payload it was set with.
    pub payload: Vec<u8>,
    /// How often it was delivered before and failed (see [`TimerStore::set_redelivery`]).
    pub redeliveries: u8,
}

#[derive(Debug)]
struct Entry {
    due: u64,
    seq: u64,
    redeliveries: u8,
    /// The tenant whose plugin set it, for the per-tenant count.
    tenant: TenantId,
    payload: Box<[u8]>,
}

/// Pending timers.
#[derive(Debug, Default)]
pub struct TimerStore {
    entries: BTreeMap<TimerKey, Entry>,
    order: BTreeSet<(u64, u64, TimerKey)>,
    next_seq: u64,
    /// Pending timers per tenant (absent: none), for `limits.timers_per_tenant`.
    per_tenant: HashMap<TenantId, usize>,
}

impl TimerStore {
    /// Forgets every timer, keeping the set order: timers restored later still sort
    /// after the ones set before.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
        self.per_tenant.clear();
    }

    /// Sets `key` to fire at `due`, replacing any timer with the same key.
    pub fn set(&mut self, key: TimerKey, tenant: TenantId, due: u64, payload: &[u8]) {
        self.set_redelivery(key, tenant, due, payload, 0);
    }

    /// Sets a timer again after its delivery failed, counting how often that happened
    /// so the host can stop re-delivering a timer whose hook always fails.
    pub fn set_redelivery(
        &mut self,
        key: TimerKey,
        tenant: TenantId,
        due: u64,
        payload: &[u8],
        redeliveries: u8,
    ) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.insert(key, tenant, due, seq, payload, redeliveries);
    }

    /// The set order the next timer set will get.
    #[inline]
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// The due time and set order of the timer that fires next.
    #[inline]
    pub fn first(&self) -> Option<(u64, u64)> {
        self.order.first().map(|(due, seq, _)| (*due, *seq))
    }

    /// Cancels `key`; returns whether it was pending.
    pub fn cancel(&mut self, key: TimerKey) -> bool {
        match self.entries.remove(&key) {
            Some(entry) => {
                self.order.remove(&(entry.due, entry.seq, key));
                self.forget_one(entry.tenant);
                true
            }
            None => false,
        }
    }

    /// Whether `key` is pending.
    #[inline]
    pub fn contains(&self, key: TimerKey) -> bool {
        self.entries.contains_key(&key)
    }

    /// Cancels every timer of `session`; returns how many there were.
    pub fn cancel_session(&mut self, session: SessionId) -> usize {
        let keys: Vec<TimerKey> = self
            .entries
            .range(
                TimerKey { session, key: 0 }..=TimerKey {
                    session,
                    key: u32::MAX,
                },
            )
            .map(|(k, _)| *k)
            .collect();
        keys.iter().filter(|k| self.cancel(**k)).count()
    }

    /// The keys `session` has pending.
    #[inline]
    pub fn keys_of(&self, session: SessionId) -> impl Iterator<Item = TimerKey> + '_ {
        let (first, last) = (
            TimerKey { session, key: 0 },
            TimerKey {
                session,
                key: u32::MAX,
            },
        );
        self.entries.range(first..=last).map(|(k, _)| *k)
    }

    /// When the earliest timer is due.
    /// The pending timers of `session` with their due time, set order, payload and
    /// redelivery count: what the store keeps.
    pub fn entries_of(
        &self,
        session: SessionId,
    ) -> impl Iterator<Item = (TimerKey, u64, u64, &[u8], u8)> + '_ {
        let (first, last) = (
            TimerKey { session, key: 0 },
            TimerKey {
                session,
                key: u32::MAX,
            },
        );
        self.entries
            .range(first..=last)
            .map(|(k, e)| (*k, e.due, e.seq, &*e.payload, e.redeliveries))
    }

    /// Puts back a timer read from the store, keeping its set order `seq` so that ties
    /// fire in the order they did before; later timers are ordered after it.
    pub fn restore(
        &mut self,
        key: TimerKey,
        tenant: TenantId,
        due: u64,
        seq: u64,
        payload: &[u8],
        redeliveries: u8,
    ) {
        self.next_seq = self.next_seq.max(seq.saturating_add(1));
        self.insert(key, tenant, due, seq, payload, redeliveries);
    }

    /// Replaces `key` with a timer of set order `seq`.
    fn insert(
        &mut self,
        key: TimerKey,
        tenant: TenantId,
        due: u64,
        seq: u64,
        payload: &[u8],
        redeliveries: u8,
    ) {
        // A replace (the common case: every agent message re-arms its session's
        // timer) updates the entry in place: one look-up in `entries` instead of a
        // removal and an insertion, and the payload's allocation is reused when the
        // length is the same.
        let replaced_tenant = match self.entries.get_mut(&key) {
            Some(entry) => {
                self.order.remove(&(entry.due, entry.seq, key));
                let previous = entry.tenant;
                entry.due = due;
                entry.seq = seq;
                entry.redeliveries = redeliveries;
                entry.tenant = tenant;
                if entry.payload.len() == payload.len() {
                    entry.payload.copy_from_slice(payload);
                } else {
                    entry.payload = payload.into();
                }
                Some(previous)
            }
            None => {
                self.entries.insert(
                    key,
                    Entry {
                        due,
                        seq,
                        redeliveries,
                        tenant,
                        payload: payload.into(),
                    },
                );
                None
            }
        };
        self.order.insert((due, seq, key));
        if replaced_tenant != Some(tenant) {
            if let Some(previous) = replaced_tenant {
                self.forget_one(previous);
            }
            *self.per_tenant.entry(tenant).or_default() += 1;
        }
    }

    /// How many timers `tenant` has pending.
    #[inline]
    pub fn count_of(&self, tenant: TenantId) -> usize {
        self.per_tenant.get(&tenant).copied().unwrap_or(0)
    }

    fn forget_one(&mut self, tenant: TenantId) {
        if let Some(count) = self.per_tenant.get_mut(&tenant) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.per_tenant.remove(&tenant);
            }
        }
    }

    /// When the earliest pending timer is due, if any: how far a driver may sleep.
    pub fn next_due(&self) -> Option<u64> {
        self.order.first().map(|(due, _, _)| *due)
    }

    /// Removes and returns the earliest timer if it is due at or before `now`.
    pub fn pop_due(&mut self, now: u64) -> Option<FiredTimer> {
        let &(due, _, key) = self.order.first()?;
        if due > now {
            return None;
        }
        self.order.pop_first();
        let entry = self.entries.remove(&key)?;
        self.forget_one(entry.tenant);
        Some(FiredTimer {
            key,
            due,
            payload: entry.payload.into_vec(),
            redeliveries: entry.redeliveries,
        })
    }

    /// Number of pending timers.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(session: u64, key: u32) -> TimerKey {
        TimerKey {
            session: SessionId(session),
            key,
        }
    }

    #[test]
    fn fires_in_due_order_with_ties_in_set_order() {
        let mut timers = TimerStore::default();
        timers.set(key(1, 0), TenantId(0), 50, b"b");
        timers.set(key(2, 0), TenantId(0), 10, b"a");
        timers.set(key(3, 0), TenantId(0), 50, b"c");
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(100))
            .map(|t| t.payload)
            .collect();
        assert_eq!(fired, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
        assert!(timers.is_empty());
    }

    #[test]
    fn replacing_moves_the_timer_and_cancel_removes_it() {
        let mut timers = TimerStore::default();
        timers.set(key(1, 0), TenantId(0), 10, b"old");
        timers.set(key(1, 0), TenantId(0), 30, b"new");
        assert_eq!(timers.len(), 1);
        assert_eq!(timers.pop_due(20), None);
        assert_eq!(timers.next_due(), Some(30));
        assert!(timers.cancel(key(1, 0)));
        assert!(!timers.cancel(key(1, 0)));
        assert_eq!(timers.next_due(), None);
    }

    #[test]
    fn a_replace_carries_the_new_payload_redeliveries_and_set_order() {
        let mut timers = TimerStore::default();
        timers.set(key(1, 0), TenantId(0), 10, b"abc");
        timers.set(key(2, 0), TenantId(0), 10, b"x");
        // Same length (the payload is overwritten in place), then another length.
        timers.set_redelivery(key(1, 0), TenantId(0), 10, b"xyz", 2);
        timers.set(key(2, 0), TenantId(0), 10, b"longer");
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(10)).collect();
        assert_eq!(
            fired
                .iter()
                .map(|t| (t.key, t.payload.as_slice(), t.redeliveries))
                .collect::<Vec<_>>(),
            [(key(1, 0), &b"xyz"[..], 2), (key(2, 0), &b"longer"[..], 0)],
            "a replaced timer takes its place in set order from the replace"
        );
        assert!(timers.is_empty());
        assert!(timers.per_tenant.is_empty());
    }

    #[test]
    fn a_session_s_timers_go_together() {
        let mut timers = TimerStore::default();
        timers.set(key(1, 0), TenantId(0), 10, b"");
        timers.set(key(1, 7), TenantId(0), 10, b"");
        timers.set(key(2, 0), TenantId(0), 10, b"");
        assert_eq!(timers.keys_of(SessionId(1)).count(), 2);
        assert_eq!(timers.cancel_session(SessionId(1)), 2);
        assert_eq!(timers.len(), 1);
        assert!(timers.contains(key(2, 0)));
    }

    #[test]
    fn timers_are_counted_per_tenant_through_every_way_out() {
        let mut timers = TimerStore::default();
        timers.set(key(1, 0), TenantId(7), 10, b"");
        timers.set(key(1, 1), TenantId(7), 20, b"");
        timers.set(key(1, 1), TenantId(7), 30, b"");
        timers.set(key(2, 0), TenantId(8), 10, b"");
        assert_eq!(
            (timers.count_of(TenantId(7)), timers.count_of(TenantId(8))),
            (2, 1),
            "a replace counts once"
        );
        assert!(timers.cancel(key(1, 1)));
        assert_eq!(timers.count_of(TenantId(7)), 1);
        assert!(timers.pop_due(10).is_some());
        assert!(timers.pop_due(10).is_some());
        assert_eq!(
            (timers.count_of(TenantId(7)), timers.count_of(TenantId(8))),
            (0, 0)
        );
        timers.restore(key(3, 0), TenantId(9), 5, 1, b"", 0);
        timers.set_redelivery(key(3, 1), TenantId(9), 5, b"", 1);
        assert_eq!(timers.cancel_session(SessionId(3)), 2);
        assert_eq!(timers.count_of(TenantId(9)), 0);
        assert!(
            timers.per_tenant.is_empty(),
            "no empty counters left behind"
        );
    }
}
