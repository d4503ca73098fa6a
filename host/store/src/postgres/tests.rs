//! The PostgreSQL store against a real server: `AUTOCLOSE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust authentication), each test in
//! a database of its own, dropped at the end.

use super::*;
use std::time::Duration;

/// A database of its own for one test, dropped with it.
struct TestDatabase {
    runtime: tokio::runtime::Runtime,
    name: String,
    settings: PostgresSettings,
}

fn admin_url() -> String {
    std::env::var("AUTOCLOSE_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

async fn admin_execute(sql: &str) {
    let (client, connection) = tokio_postgres::connect(&admin_url(), NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {}: {e}", admin_url()));
    tokio::spawn(connection);
    client
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

impl TestDatabase {
    fn create(test: &str) -> Self {
        let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
        let name = format!("autoclose_store_{test}_{}", std::process::id());
        runtime.block_on(async {
            // One statement each: CREATE DATABASE cannot run in a transaction block.
            admin_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await;
            admin_execute(&format!("CREATE DATABASE {name}")).await;
        });
        let base = admin_url();
        let url = match base.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("{base}: no database in the URL"),
        };
        TestDatabase {
            runtime,
            name,
            settings: PostgresSettings {
                url,
                schema: "autoclose".into(),
                pool: 2,
                lease_ttl: Duration::from_secs(1),
                ca_file: None,
            },
        }
    }

    fn open(&self, shard: usize, shards: usize) -> Result<PostgresStore, StoreError> {
        self.open_as(shard, shards, "test-node")
    }

    fn open_as(
        &self,
        shard: usize,
        shards: usize,
        node: &str,
    ) -> Result<PostgresStore, StoreError> {
        let cluster = self.join(shards, node)?;
        match self.runtime.block_on(cluster.take(shard))? {
            Some(lease) => Ok(cluster.store(lease)),
            None => Err(StoreError::Query {
                database: cluster.place().to_owned(),
                operation: "take a shard's lease",
                reason: format!("shard {shard} is held by another node"),
            }),
        }
    }

    fn join(&self, shards: usize, node: &str) -> Result<cluster::Cluster, StoreError> {
        let pool = connect(&self.settings, self.runtime.handle())?;
        cluster::Cluster::new(pool, &self.settings, self.runtime.handle(), node, shards)
    }

    fn execute(&self, sql: &str) {
        let url = self.settings.url.clone();
        self.runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, NoTls)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            tokio::spawn(connection);
            client
                .batch_execute(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        });
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        self.runtime.block_on(admin_execute(&sql));
    }
}

#[test]
fn what_is_committed_is_loaded_back_after_reopening() {
    let db = TestDatabase::create("roundtrip");
    crate::conformance::what_is_committed_is_loaded_back(|| {
        db.open(0, 1).unwrap_or_else(|e| panic!("{e}"))
    });
    // Shards share the tables and never see each other's rows.
    let other = db.open(1, 2);
    assert!(other.is_err(), "another shard count is refused");
}

#[test]
fn tenant_settings_keep_their_versions_and_audit_in_the_database() {
    let db = TestDatabase::create("settings");
    let settings_store = || {
        let pool = connect(&db.settings, db.runtime.handle()).unwrap_or_else(|e| panic!("{e}"));
        settings::PostgresSettingsStore::new(pool, &db.settings, db.runtime.handle())
    };
    crate::conformance::settings_versions(settings_store);
    let pruned = TestDatabase::create("settings_pruned");
    let pool = connect(&pruned.settings, pruned.runtime.handle()).unwrap_or_else(|e| panic!("{e}"));
    crate::conformance::settings_pruned(settings::PostgresSettingsStore::new(
        pool,
        &pruned.settings,
        pruned.runtime.handle(),
    ));
}

/// A node paused past its lease (here: its lease made to lapse) is taken over; its
/// next commit is refused and lands nothing, the new owner's commits land. A lease
/// another node keeps renewing refuses the start.
#[test]
fn a_taken_over_shard_refuses_the_old_owners_commits() {
    let db = TestDatabase::create("fence");
    let mut old = db.open_as(0, 1, "node-a").unwrap_or_else(|e| panic!("{e}"));
    let batch = |session: &str| Batch {
        core: autoclose_core::records::Changes {
            sessions: vec![crate::conformance::session(session, 1)],
            ..Default::default()
        },
        ..Batch::default()
    };
    old.commit(&batch("before"))
        .unwrap_or_else(|e| panic!("{e}"));
    // A live owner (its lease an hour from expiring) refuses another node's start.
    db.execute("UPDATE autoclose.shard_leases SET expires_at = now() + interval '1 hour'");
    let refused = db
        .open_as(0, 1, "node-b")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("shard 0 is held by another node"),
        "{refused}"
    );
    // node-a pauses past its lease; node-b takes the shard.
    db.execute("UPDATE autoclose.shard_leases SET expires_at = now() - interval '1 second'");
    let mut new = db.open_as(0, 1, "node-b").unwrap_or_else(|e| panic!("{e}"));
    let fenced = old
        .commit(&batch("after"))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        fenced.contains("shard 0 was taken over (epoch 2, this node held 1)"),
        "{fenced}"
    );
    new.commit(&batch("new")).unwrap_or_else(|e| panic!("{e}"));
    let sessions: Vec<String> = new
        .load()
        .unwrap_or_else(|e| panic!("{e}"))
        .core
        .sessions
        .into_iter()
        .map(|s| s.session)
        .collect();
    assert_eq!(sessions, vec!["before".to_owned(), "new".to_owned()]);
    // The old owner's lease cannot be renewed either.
    let cluster = db.join(1, "node-a").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        db.runtime.block_on(cluster.renew(&old.lease)).ok(),
        Some(false)
    );
    assert_eq!(
        db.runtime.block_on(cluster.renew(&new.lease)).ok(),
        Some(true)
    );
}

#[test]
fn shards_keep_apart_and_the_shard_count_is_fixed() {
    let db = TestDatabase::create("shards");
    let mut zero = db.open(0, 2).unwrap_or_else(|e| panic!("{e}"));
    let one = db.open(1, 2).unwrap_or_else(|e| panic!("{e}"));
    let batch = Batch {
        core: autoclose_core::records::Changes {
            sessions: vec![crate::conformance::session("s1", 1)],
            ..Default::default()
        },
        ..Batch::default()
    };
    zero.commit(&batch).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(zero.load().map(|s| s.core.sessions.len()).ok(), Some(1));
    assert_eq!(one.load().map(|s| s.core.sessions.len()).ok(), Some(0));
    let e = db
        .open(0, 3)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("written with --shards 2, not 3"), "{e}");
}

#[test]
fn a_newer_schema_or_no_server_is_refused_by_name() {
    let db = TestDatabase::create("newer");
    drop(db.open(0, 1).unwrap_or_else(|e| panic!("{e}")));
    db.runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(&db.settings.url, NoTls)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        tokio::spawn(connection);
        client
            .batch_execute("UPDATE autoclose.schema_version SET version = 99")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    });
    let e = db
        .open(0, 1)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.contains("has schema version 99; this build knows versions up to 4"),
        "{e}"
    );
    assert!(
        e.contains(&format!("127.0.0.1:5432/{}", db.name)) || e.contains(&db.name),
        "{e}"
    );

    let nowhere = PostgresSettings {
        url: "postgres://app:s3cret@127.0.0.1:1/none".into(),
        schema: "autoclose".into(),
        pool: 1,
        lease_ttl: Duration::from_secs(1),
        ca_file: None,
    };
    let e = connect(&nowhere, db.runtime.handle())
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        e.starts_with("cannot reach the store postgres://127.0.0.1:1/none"),
        "{e}"
    );
    assert!(!e.contains("s3cret"), "{e}");
}

/// Events left in a shard's inbox by a node that does not own it come back to the
/// owner in order, and are gone once a commit applied them; a commit fenced after a
/// takeover leaves them for the new owner.
#[test]
fn the_inbox_is_read_in_order_and_emptied_only_by_the_owners_commit() {
    let db = TestDatabase::create("inbox");
    let elsewhere = db.join(2, "node-b").unwrap_or_else(|e| panic!("{e}"));
    let closed = |session: &str| {
        GatewayEvent::SessionClosed(autoclose_core::event::ClosedEvent {
            tenant: "acme".into(),
            session: session.into(),
        })
    };
    for session in ["i1", "i2", "i3"] {
        db.runtime
            .block_on(elsewhere.push_inbox(1, &[closed(session)]))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let mut owner = db.open_as(1, 2, "node-a").unwrap_or_else(|e| panic!("{e}"));
    let other = db.open_as(0, 2, "node-a").unwrap_or_else(|e| panic!("{e}"));
    let read = |store: &mut PostgresStore| -> Vec<Inboxed> {
        store.inbox().unwrap_or_else(|e| panic!("{e}"))
    };
    let inbox = read(&mut owner);
    let sessions: Vec<&str> = inbox
        .iter()
        .flat_map(|i| i.events.iter().map(|e| e.session()))
        .collect();
    assert_eq!(sessions, vec!["i1", "i2", "i3"]);
    assert!(inbox.windows(2).all(|w| w[0].seq < w[1].seq));
    let mut other = other;
    assert_eq!(read(&mut other), Vec::new(), "shards keep apart");

    // The first two applied: gone; the third stays.
    owner
        .commit(&Batch {
            inbox_applied: inbox.iter().take(2).map(|i| i.seq).collect(),
            ..Batch::default()
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let left = read(&mut owner);
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].events, vec![closed("i3")]);

    // Taken over: the old owner's commit of it lands nothing.
    db.execute("UPDATE autoclose.shard_leases SET expires_at = now() - interval '1 second'");
    let mut new = db.open_as(1, 2, "node-b").unwrap_or_else(|e| panic!("{e}"));
    let fenced = owner.commit(&Batch {
        inbox_applied: vec![left[0].seq],
        ..Batch::default()
    });
    assert!(
        matches!(fenced, Err(StoreError::Fenced { .. })),
        "{fenced:?}"
    );
    assert_eq!(read(&mut new), left);
}

/// Heartbeats say who is alive: a node that stops beating drops out once its row
/// expires, one that leaves drops out at once.
#[test]
fn live_nodes_are_the_ones_that_keep_beating() {
    let db = TestDatabase::create("nodes");
    let a = db.join(4, "node-a").unwrap_or_else(|e| panic!("{e}"));
    let b = db.join(4, "node-b").unwrap_or_else(|e| panic!("{e}"));
    let names =
        |nodes: Vec<cluster::Node>| -> Vec<String> { nodes.into_iter().map(|n| n.node).collect() };
    let beat = |c: &cluster::Cluster| {
        db.runtime
            .block_on(c.heartbeat())
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert_eq!(names(beat(&a)), vec!["node-a"]);
    assert_eq!(names(beat(&b)), vec!["node-a", "node-b"]);
    db.execute(
        "UPDATE autoclose.nodes SET expires_at = now() - interval '1 second' WHERE node = 'node-a'",
    );
    assert_eq!(names(beat(&b)), vec!["node-b"]);
    beat(&a);
    db.runtime.block_on(b.leave());
    assert_eq!(names(beat(&a)), vec!["node-a"]);
    // Every node must use the shard count the database was started with.
    let e = db
        .join(8, "node-c")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("written with --shards 4, not 8"), "{e}");
}

/// An inbox longer than a page comes back whole and in order: the owner applies every
/// acknowledged entry before anything sent to it directly.
#[test]
fn a_long_inbox_comes_back_whole() {
    let db = TestDatabase::create("inbox_long");
    let elsewhere = db.join(1, "node-b").unwrap_or_else(|e| panic!("{e}"));
    let total = INBOX_PAGE as usize * 2 + 7;
    db.runtime.block_on(async {
        for i in 0..total {
            let event = GatewayEvent::SessionClosed(autoclose_core::event::ClosedEvent {
                tenant: "acme".into(),
                session: format!("l{i}"),
            });
            elsewhere
                .push_inbox(0, &[event])
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    });
    let mut owner = db.open_as(0, 1, "node-a").unwrap_or_else(|e| panic!("{e}"));
    let inbox = owner.inbox().unwrap_or_else(|e| panic!("{e}"));
    let sessions: Vec<String> = inbox
        .iter()
        .map(|i| i.events[0].session().to_owned())
        .collect();
    let expected: Vec<String> = (0..total).map(|i| format!("l{i}")).collect();
    assert_eq!(sessions, expected);
}
