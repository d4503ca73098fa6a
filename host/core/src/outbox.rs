//! Webhook deliveries under way: what to send, how often it was tried, when to try
//! again and when it stops being worth sending.
//!
//! Kept in the host beside the timers (and durable with them once a host persists its
//! state), never in a sleeping task, so a retry survives whatever happens to the
//! plugin instance.

use std::collections::BTreeSet;

use foldhash::HashMap;
use std::sync::Arc;

use autoclose_runtime::{RequestId, SessionId, TenantId};

/// One delivery: a rendered request and its progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The request id the plugin was given.
    pub request: RequestId,
    /// The tenant that sent it.
    pub tenant: TenantId,
    /// The session it is about.
    pub session: SessionId,
    /// The webhook's name.
    pub webhook: String,
    /// The event type.
    pub event_type: String,
    /// The `webhook-id`: the same for every attempt.
    pub id: String,
    /// The exact bytes to send (and sign).
    pub body: Arc<[u8]>,
    /// When it was queued.
    pub queued_at: u64,
    /// No attempt after this instant.
    pub deadline: u64,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due; `None` while one is under way.
    pub next_at: Option<u64>,
}

/// Deliveries by request id, and the schedule of their next attempts.
#[derive(Debug, Default)]
pub struct Outbox {
    deliveries: HashMap<RequestId, Delivery>,
    schedule: BTreeSet<(u64, RequestId)>,
    per_tenant: HashMap<TenantId, usize>,
}

impl Outbox {
    /// Adds a delivery (not scheduled: the caller attempts it at once).
    pub fn insert(&mut self, delivery: Delivery) {
        *self.per_tenant.entry(delivery.tenant).or_default() += 1;
        self.deliveries.insert(delivery.request, delivery);
    }

    /// Deliveries of `tenant` under way.
    #[inline]
    pub fn count(&self, tenant: TenantId) -> usize {
        self.per_tenant.get(&tenant).copied().unwrap_or(0)
    }

    /// The delivery `request`.
    #[inline]
    pub fn get(&self, request: RequestId) -> Option<&Delivery> {
        self.deliveries.get(&request)
    }

    /// The delivery `request`, mutably.
    #[inline]
    pub fn get_mut(&mut self, request: RequestId) -> Option<&mut Delivery> {
        self.deliveries.get_mut(&request)
    }

    /// Schedules the next attempt of `request` at `at`.
    pub fn schedule(&mut self, request: RequestId, at: u64) {
        if let Some(delivery) = self.deliveries.get_mut(&request) {
            if let Some(previous) = delivery.next_at.replace(at) {
                self.schedule.remove(&(previous, request));
            }
            self.schedule.insert((at, request));
        }
    }

    /// Every delivery under way, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Delivery> + '_ {
        self.deliveries.values()
    }

    /// Removes a finished delivery.
    pub fn remove(&mut self, request: RequestId) -> Option<Delivery> {
        let delivery = self.deliveries.remove(&request)?;
        if let Some(at) = delivery.next_at {
            self.schedule.remove(&(at, request));
        }
        if let Some(count) = self.per_tenant.get_mut(&delivery.tenant) {
            *count = count.saturating_sub(1);
        }
        Some(delivery)
    }

    /// When the next scheduled attempt is due.
    pub fn next_due(&self) -> Option<u64> {
        self.schedule.first().map(|(at, _)| *at)
    }

    /// Takes the next scheduled attempt due at or before `now`: (due, request).
    pub fn pop_due(&mut self, now: u64) -> Option<(u64, RequestId)> {
        let &(at, request) = self.schedule.first()?;
        if at > now {
            return None;
        }
        self.schedule.pop_first();
        if let Some(delivery) = self.deliveries.get_mut(&request) {
            delivery.next_at = None;
        }
        Some((at, request))
    }

    /// Deliveries under way.
    pub fn len(&self) -> usize {
        self.deliveries.len()
    }

    /// Whether nothing is under way.
    pub fn is_empty(&self) -> bool {
        self.deliveries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(request: RequestId, tenant: TenantId) -> Delivery {
        Delivery {
            request,
            tenant,
            session: SessionId(0),
            webhook: "p".into(),
            event_type: "t".into(),
            id: format!("msg_{request}"),
            body: Arc::from(&b"{}"[..]),
            queued_at: 0,
            deadline: 100,
            attempts: 0,
            next_at: None,
        }
    }

    #[test]
    fn counts_per_tenant_and_schedules_in_time_order() {
        let mut outbox = Outbox::default();
        outbox.insert(delivery(RequestId(1), TenantId(0)));
        outbox.insert(delivery(RequestId(2), TenantId(0)));
        outbox.insert(delivery(RequestId(3), TenantId(1)));
        assert_eq!(
            (outbox.count(TenantId(0)), outbox.count(TenantId(1))),
            (2, 1)
        );
        outbox.schedule(RequestId(2), 50);
        outbox.schedule(RequestId(1), 20);
        assert_eq!(outbox.next_due(), Some(20));
        assert_eq!(outbox.pop_due(10), None);
        assert_eq!(outbox.pop_due(60), Some((20, RequestId(1))));
        assert_eq!(outbox.pop_due(60), Some((50, RequestId(2))));
        assert!(outbox.remove(RequestId(1)).is_some());
        assert_eq!(outbox.count(TenantId(0)), 1);
        assert_eq!(outbox.len(), 2);
    }
}
