//! What every store must do, as one check run against each backend: what is committed
//! is loaded back after reopening, a later batch overrides an earlier one, removals
//! remove. The redb and PostgreSQL stores run it in their tests.

use autoclose_core::event::{ClosedEvent, GatewayEvent};
use autoclose_core::records::{
    CallbackRecord, Changes, DeliveryRecord, HeldEvent, HeldRecord, SessionRecord, StoredPresence,
    TimerRecord,
};
use autoclose_runtime::RequestId;

use crate::{Batch, Store};

/// A session record of acme with `timers` pending timers.
pub(crate) fn session(name: &str, timers: usize) -> SessionRecord {
    SessionRecord {
        tenant: "acme".into(),
        session: name.into(),
        channel: Some("web_chat".into()),
        attributes: vec![("locale".into(), "pt-BR".into())],
        presence: StoredPresence::Hidden,
        closed: false,
        closed_at: None,
        state: vec![1, 0, 2, 0],
        timers: (0..timers)
            .map(|i| TimerRecord {
                key: i as u32,
                due: 1_000 + i as u64,
                seq: i as u64,
                payload: vec![1, 2, 3, i as u8],
                redeliveries: 0,
            })
            .collect(),
    }
}

/// A webhook delivery record of request `request`.
pub(crate) fn delivery(request: u64) -> DeliveryRecord {
    DeliveryRecord {
        request: RequestId(request),
        tenant: "acme".into(),
        session: "s1".into(),
        webhook: "push".into(),
        event_type: "chat.warning".into(),
        id: format!("msg_{request}"),
        body: br#"{"a":1}"#.to_vec(),
        queued_at: 5,
        deadline: 500,
        attempts: 1,
        next_at: Some(50),
    }
}

/// Commits two batches to the store `open` gives, drops it, opens it again and checks
/// what it loads: s1 rewritten, s2 forgotten, one delivery ended, the callback ended,
/// the held events and counters kept.
pub(crate) fn what_is_committed_is_loaded_back<S: Store>(mut open: impl FnMut() -> S) {
    let mut store = open();
    let first = Batch {
        core: Changes {
            sessions: vec![session("s1", 2), session("s2", 0)],
            deliveries: vec![delivery(7), delivery(8)],
            ended: vec![],
            forgotten: vec![],
            held: vec![HeldRecord {
                tenant: "acme".into(),
                events: vec![HeldEvent {
                    at_ms: 7,
                    event: GatewayEvent::SessionClosed(ClosedEvent {
                        tenant: "acme".into(),
                        session: "s1".into(),
                    }),
                }],
            }],
            next_request: RequestId(9),
            now: 1234,
        },
        callbacks: vec![CallbackRecord {
            seq: 3,
            id: "act_1".into(),
            tenant: "acme".into(),
            session: "s1".into(),
            body: b"{}".to_vec(),
            queued_at: 1,
            deadline: 2,
            attempts: 0,
            next_at: None,
        }],
        callbacks_ended: vec![],
        next_callback: 4,
    };
    store.commit(&first).expect("commit");
    let second = Batch {
        core: Changes {
            sessions: vec![session("s1", 1)],
            forgotten: vec![("acme".into(), "s2".into())],
            ended: vec![RequestId(7)],
            next_request: RequestId(10),
            now: 2000,
            ..Changes::default()
        },
        callbacks_ended: vec![3],
        next_callback: 4,
        ..Batch::default()
    };
    store.commit(&second).expect("commit");
    drop(store);

    let store = open();
    let stored = store.load().expect("load");
    assert_eq!(stored.core.next_request, RequestId(10));
    assert_eq!(stored.core.now, 2000);
    assert_eq!(stored.next_callback, 4);
    assert_eq!(
        stored.core.sessions, second.core.sessions,
        "s1 rewritten, s2 forgotten"
    );
    assert_eq!(stored.core.deliveries, vec![delivery(8)]);
    assert_eq!(stored.core.held, first.core.held);
    assert!(stored.callbacks.is_empty());

    // Held events emptied are removed.
    let mut store = store;
    let third = Batch {
        core: Changes {
            held: vec![HeldRecord {
                tenant: "acme".into(),
                events: vec![],
            }],
            next_request: RequestId(10),
            now: 2001,
            ..Changes::default()
        },
        next_callback: 4,
        ..Batch::default()
    };
    store.commit(&third).expect("commit");
    assert!(store.load().expect("load").core.held.is_empty());
}
