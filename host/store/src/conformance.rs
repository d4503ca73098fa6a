//! What every store must do, as one check run against each backend: what is committed
//! is loaded back after reopening, a later batch overrides an earlier one, removals
//! remove. The redb and PostgreSQL stores run it in their tests.

use autoclose_core::event::{ClosedEvent, GatewayEvent};
use autoclose_core::history::{Cause, History, Origin, Role, Step, Trigger, What};
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
        last_seq: Some(41),
        last_id: Some("m-41".into()),
        history: Some(std::sync::Arc::new(history())),
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

/// A history of two steps: an agent's message and the timer it set.
fn history() -> History {
    let origin = Origin {
        at: 900,
        event: Cause::Message {
            from: Role::Agent,
            echo: false,
        },
    };
    let mut history = History::default();
    history.push(
        8,
        Step {
            at: 900,
            what: What::Received {
                event: origin.event.clone(),
            },
        },
    );
    history.push(
        8,
        Step {
            at: 900,
            what: What::TimerSet {
                key: 0,
                due: 1_000,
                started: true,
                by: Trigger::event(origin),
            },
        },
    );
    history
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
        inbox_applied: vec![],
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

use crate::settings::{
    Change, ChangeKind, CommitError, KEPT_VERSIONS, SettingsStore, SettingsVersion,
};

fn put(tenant: &str, based_on: u64, close: &str) -> Change {
    let mut document = serde_json::Map::new();
    document.insert("close".into(), serde_json::Value::String(close.into()));
    Change {
        tenant: tenant.into(),
        based_on: SettingsVersion(based_on),
        document: Some(document),
        kind: ChangeKind::Put,
        restored: None,
        at_ms: 1_000 + based_on,
        by: "admin".into(),
    }
}

/// Settings versions count up per tenant, a change based on a stale version is refused
/// with nothing written, a delete is a version, the audit log keeps every change, and
/// all of it is there after reopening the store `open` gives.
pub(crate) fn settings_versions<S: SettingsStore>(mut open: impl FnMut() -> S) {
    {
        let store = open();
        let (first, audit) = store.commit(put("acme", 0, "5m")).expect("commit");
        assert_eq!(first.version, SettingsVersion(1));
        assert_eq!(
            (audit.seq, audit.old_version, audit.new_version),
            (1, SettingsVersion(0), SettingsVersion(1))
        );
        store.commit(put("acme", 1, "10m")).expect("commit");
        store.commit(put("globex", 0, "1m")).expect("commit");
        // Based on version 1 while 2 is current: refused, nothing written.
        match store.commit(put("acme", 1, "lost")) {
            Err(CommitError::Stale { current, .. }) => assert_eq!(current, SettingsVersion(2)),
            other => panic!("expected a stale refusal, got {other:?}"),
        }
        let mut delete = put("acme", 2, "");
        delete.document = None;
        delete.kind = ChangeKind::Delete;
        store.commit(delete).expect("commit");
    }
    let store = open();
    let current = store.current().expect("current");
    let summary: Vec<(&str, u64, bool)> = current
        .iter()
        .map(|v| (v.tenant.as_str(), v.version.0, v.document.is_some()))
        .collect();
    assert_eq!(summary, vec![("acme", 3, false), ("globex", 1, true)]);
    let audit = store.audit(Some("acme"), 10).expect("audit");
    let kinds: Vec<(ChangeKind, u64)> = audit.iter().map(|a| (a.kind, a.new_version.0)).collect();
    assert_eq!(
        kinds,
        vec![
            (ChangeKind::Put, 1),
            (ChangeKind::Put, 2),
            (ChangeKind::Delete, 3)
        ]
    );
    let last_two: Vec<u64> = store
        .audit(None, 2)
        .expect("audit")
        .iter()
        .map(|a| a.seq)
        .collect();
    assert_eq!(last_two, vec![3, 4]);
}

/// Only the newest [`KEPT_VERSIONS`] versions of a tenant are kept.
pub(crate) fn settings_pruned<S: SettingsStore>(store: S) {
    for based_on in 0..(KEPT_VERSIONS as u64 + 5) {
        store
            .commit(put("acme", based_on, &format!("{based_on}m")))
            .expect("commit");
    }
    let versions = store.versions("acme").expect("versions");
    assert_eq!(versions.len(), KEPT_VERSIONS);
    assert_eq!(versions.first().map(|v| v.version.0), Some(6));
    assert_eq!(
        versions.last().map(|v| v.version.0),
        Some(KEPT_VERSIONS as u64 + 5)
    );
}
