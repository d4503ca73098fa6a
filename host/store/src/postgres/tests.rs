//! The PostgreSQL store against a real server: `AUTOCLOSE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust authentication), each test in
//! a database of its own, dropped at the end.

use super::*;

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
            },
        }
    }

    fn open(&self, shard: usize, shards: usize) -> Result<PostgresStore, StoreError> {
        let pool = connect(&self.settings, self.runtime.handle())?;
        PostgresStore::open(pool, &self.settings, self.runtime.handle(), shard, shards)
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
        e.contains("has schema version 99; this build knows versions up to 2"),
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
