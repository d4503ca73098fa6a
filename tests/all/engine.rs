//! The serve engine driven directly (no HTTP, no process): requests queued before it
//! runs land in one round, which is how races between ingest, reload and shutdown are
//! made reproducible.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use autoclose_config::HostConfig;
use autoclose_core::event::GatewayEvent;
use autoclose_core::records::SessionRecord;
use autoclose_serve::callbacks::Callbacks;
use autoclose_serve::dispatch::Dispatcher;
use autoclose_serve::engine::{Collector, Engine, Health};
use autoclose_serve::metrics::Metrics;
use autoclose_serve::request::Request;
use autoclose_store::{Batch, Store, StoreError, Stored};
use autoclose_tests::{CONFIG, start_core_with};
use autoclose_webhook::http::Clients;
use serde_json::json;
use tokio::sync::oneshot;

/// A store in memory that the test can read after the engine ends.
#[derive(Clone, Default)]
struct MemoryStore(Arc<Mutex<Vec<Batch>>>);

impl Store for MemoryStore {
    fn load(&self) -> Result<Stored, StoreError> {
        Ok(Stored::default())
    }

    fn commit(&mut self, batch: &Batch) -> Result<(), StoreError> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(batch.clone());
        Ok(())
    }
}

impl MemoryStore {
    /// The session records written, last write wins.
    fn sessions(&self) -> Vec<SessionRecord> {
        let mut out: Vec<SessionRecord> = Vec::new();
        for batch in self.0.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            for record in &batch.core.sessions {
                out.retain(|r| (&r.tenant, &r.session) != (&record.tenant, &record.session));
                out.push(record.clone());
            }
        }
        out
    }
}

fn config_with_callback() -> String {
    CONFIG.replacen(
        '{',
        r#"{"gateway": {"actions_url": "http://127.0.0.1:9/actions"},"#,
        1,
    )
}

fn event(value: serde_json::Value) -> GatewayEvent {
    let serde_json::Value::Object(object) = value else {
        panic!("an object");
    };
    GatewayEvent::from_json(object).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn an_event_and_a_reload_in_the_same_round_lose_nothing() {
    let text = config_with_callback();
    let config = HostConfig::parse(&text, std::path::Path::new("test.json"))
        .unwrap_or_else(|e| panic!("{e}"));
    let callback = config.gateway.clone().unwrap_or_else(|| panic!("gateway"));
    let collector = Collector::default();
    let gateway =
        start_core_with(&text, Box::new(collector.clone())).unwrap_or_else(|e| panic!("{e}"));
    let replacement =
        start_core_with(&text, Box::new(collector.clone())).unwrap_or_else(|e| panic!("{e}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let (tx, rx) = mpsc::channel();
    let dispatcher = Dispatcher::new(
        runtime.handle().clone(),
        Clients::new().unwrap_or_else(|e| panic!("{e}")),
        tx.clone(),
    );
    let store = MemoryStore::default();
    let mut registry = prometheus_client::registry::Registry::default();
    let engine = Engine::new(
        gateway,
        Some(Box::new(store.clone())),
        Callbacks::default(),
        autoclose_serve::gateway::Gateway {
            callback: Some(callback.clone()),
            chatwoot: None,
            rocketchat: None,
        },
        collector,
        dispatcher,
        Metrics::new(&mut registry),
        Arc::new(Health::default()),
    );

    let (ingested, ingest_answer) = oneshot::channel();
    tx.send(Request::Ingest {
        events: vec![
            event(json!({"type": "session_opened", "tenant": "acme", "session": "s1", "channel": "web_chat"})),
            event(json!({"type": "message", "tenant": "acme", "session": "s1", "sender": "agent"})),
        ],
        reply: ingested,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let (reloaded, reload_answer) = oneshot::channel();
    tx.send(Request::Reload {
        core: Box::new(replacement),
        gateway: Box::new(autoclose_serve::gateway::Gateway {
            callback: Some(callback),
            chatwoot: None,
            rocketchat: None,
        }),
        reply: reloaded,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    tx.send(Request::Stop {
        grace: Duration::ZERO,
    })
    .unwrap_or_else(|e| panic!("{e}"));
    engine.run(rx).unwrap_or_else(|e| panic!("{e}"));

    let accepted = ingest_answer
        .blocking_recv()
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(accepted, 2);
    let restored = reload_answer
        .blocking_recv()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((restored.sessions, restored.timers), (1, 1));
    // The event's effect (the warning timer) was committed although the gateway that
    // handled it was replaced before the round's commit.
    let sessions = store.sessions();
    assert_eq!(sessions.len(), 1, "{sessions:?}");
    assert_eq!(sessions[0].session, "s1");
    assert_eq!(sessions[0].timers.len(), 1, "{sessions:?}");
}
