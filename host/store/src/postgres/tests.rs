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
        let pool = connect(&self.settings, self.runtime.handle())?;
        PostgresStore::open(
            pool,
            &self.settings,
            self.runtime.handle(),
            (shard, shards),
            node,
        )
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
        refused.contains("shard 0 is owned by node node-a"),
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
    let keeper = old.keeper(Duration::from_secs(1));
    assert_eq!(db.runtime.block_on(keeper.renew()).ok(), Some(false));
    let keeper = new.keeper(Duration::from_secs(1));
    assert_eq!(db.runtime.block_on(keeper.renew()).ok(), Some(true));
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
        e.contains("has schema version 99; this build knows versions up to 3"),
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
