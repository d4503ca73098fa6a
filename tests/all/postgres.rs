//! `autoclose serve` on a PostgreSQL store: the built binary against the machine's
//! PostgreSQL, each test in a database of its own.

use autoclose_tests::postgres::TestDatabase;
use autoclose_tests::receiver::Receiver;
use autoclose_tests::server::{Server, scratch, spawn};
use serde_json::{Value, json};

use crate::serve::{BINARY, TOKEN, WAIT, body, config, has_close, opened, said, write};

/// `config` with its state in `db` (the URL from the environment, as an operator
/// keeps a password out of the file).
fn on_postgres(config: &str) -> String {
    let mut value: Value = serde_json::from_str(config).unwrap_or(Value::Null);
    // A short lease: a restart after a SIGKILL waits for the dead node's lease.
    value["store"] = json!({"kind": "postgres", "url": "env:AUTOCLOSE_DATABASE_URL", "pool": 4, "lease_ttl": "2s"});
    value.to_string()
}

#[test]
fn serve_on_postgres_loses_no_timer_when_killed_and_keeps_nothing_on_its_disk() {
    let db = TestDatabase::create("serve_kill");
    let dir = scratch("serve-postgres-kill");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    write(
        &config_path,
        &on_postgres(&config(&actions, &push, "Still there?", 2)),
    );
    let env = [("AUTOCLOSE_DATABASE_URL", db.url.as_str())];
    let server = Server::start(BINARY, &config_path, &dir.join("data-1"), &env);
    // Once the node serves its shard, an acknowledged event is applied, not only kept
    // in the shard's inbox.
    server.wait_for_state("/healthz", None, WAIT, |h| h["shards_owned"] == 1);
    // Tenant settings changed through the API are kept in the database too.
    let document = json!({"channels": {"web_chat": {"auto_close": {
        "warnings": [{"after": "2s", "message": "Still there?"}],
        "close": {"after": "4s", "message": "Closed from the database."}}}}});
    let put = server.request(
        "PUT",
        "/v1/admin/tenants/acme",
        Some(TOKEN),
        &[],
        Some(&document),
    );
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(
        db.count("SELECT count(*) FROM autoclose.tenant_versions"),
        1
    );
    let sessions = ["p1", "p2", "p3"];
    for session in sessions {
        server.ingest(
            Some(TOKEN),
            &json!([opened(session, "web_chat"), said(session, "agent")]),
        );
    }
    // Acknowledged means committed in PostgreSQL: the timers are rows there now.
    assert_eq!(db.count("SELECT count(*) FROM autoclose.sessions"), 3);
    server.crash();

    // Another data directory: everything comes from the database.
    let server = Server::start(BINARY, &config_path, &dir.join("data-2"), &env);
    let received = actions.wait_until("three closes", WAIT, |r| {
        sessions.iter().all(|s| has_close(r, s))
    });
    let got = server.request("GET", "/v1/admin/tenants/acme", Some(TOKEN), &[], None);
    assert_eq!(
        (got.etag.as_deref(), &got.body["document"]),
        (Some("\"1\""), &document)
    );
    for session in sessions {
        let close = received.iter().map(body).find(|b| {
            b["session"] == session && b["type"] == "post_message" && b["kind"] == "close"
        });
        assert_eq!(
            close.map(|b| b["text"].clone()),
            Some(json!("Closed from the database.")),
            "{session}"
        );
        let kinds: Vec<String> = received
            .iter()
            .map(body)
            .filter(|b| b["session"] == session)
            .map(|b| {
                format!(
                    "{}/{}",
                    b["type"].as_str().unwrap_or("?"),
                    b["kind"].as_str().unwrap_or("")
                )
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                "post_message/warning",
                "post_message/close",
                "close_session/"
            ],
            "{session}"
        );
    }
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");
}

#[test]
fn serve_refuses_to_start_on_a_newer_schema_or_an_unreachable_database() {
    let db = TestDatabase::create("serve_refuse");
    let dir = scratch("serve-postgres-refuse");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    write(
        &config_path,
        &on_postgres(&config(&actions, &push, "Still there?", 60)),
    );
    let run = |url: &str, data: &str| {
        let child = spawn(
            BINARY,
            &config_path,
            &dir.join(data),
            &[("AUTOCLOSE_DATABASE_URL", url)],
        );
        child.wait_with_output().unwrap_or_else(|e| panic!("{e}"))
    };
    // Nothing listens on port 1.
    let output = run("postgres://app:s3cret-pw@127.0.0.1:1/none", "data-1");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("cannot reach the store postgres://127.0.0.1:1/none"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret-pw"),
        "the password never reaches the log: {stderr}"
    );

    // A schema written by a newer build is refused, and left as it is.
    let server = Server::start(
        BINARY,
        &config_path,
        &dir.join("data-2"),
        &[("AUTOCLOSE_DATABASE_URL", db.url.as_str())],
    );
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");
    db.execute("UPDATE autoclose.schema_version SET version = 7");
    let output = run(&db.url, "data-3");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(
        stderr.contains("has schema version 7; this build knows versions up to 4"),
        "{stderr}"
    );
    assert_eq!(
        db.count("SELECT version::bigint FROM autoclose.schema_version"),
        7
    );
}

/// A node paused past its lease (SIGSTOP) is taken over by another node on the same
/// database; when it wakes (SIGCONT) its commits are refused, it sends nothing it had
/// not recorded, and it rejoins and takes a share of the shards again.
#[test]
fn a_node_paused_past_its_lease_is_fenced_and_rejoins() {
    let db = TestDatabase::create("serve_fence");
    let dir = scratch("serve-postgres-fence");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    write(
        &config_path,
        &on_postgres(&config(&actions, &push, "Still there?", 2)),
    );
    let env = [("AUTOCLOSE_DATABASE_URL", db.url.as_str())];
    let start = |data: &str| {
        Server::start_with(
            BINARY,
            &config_path,
            &dir.join(data),
            &env,
            &["--shards", "4"],
        )
    };
    let old = start("data-a");
    old.wait_for_state("/healthz", None, WAIT, |h| h["shards_owned"] == 4);
    old.ingest(
        Some(TOKEN),
        &json!([opened("f1", "web_chat"), said("f1", "agent")]),
    );
    let shard = autoclose_serve::shards::shard_of("acme", "f1", 4);
    let epoch = || {
        db.count(&format!(
            "SELECT epoch FROM autoclose.shard_leases WHERE shard = {shard}"
        ))
    };
    assert_eq!(epoch(), 1);
    old.signal("STOP");
    // The new node sees the paused one's heartbeat and leases expire, and takes every
    // shard.
    let new = start("data-b");
    new.wait_for_state("/healthz", None, WAIT, |h| h["shards_owned"] == 4);
    assert_eq!(epoch(), 2);
    // The new node says who owns what.
    let shards = new.request("GET", "/v1/admin/shards", Some(TOKEN), &[], None);
    assert_eq!(shards.status, 200, "{:?}", shards.body);
    let owner = shards.body["shards"][shard]["owner"].as_str().unwrap_or("");
    assert_eq!(
        Some(owner),
        shards.body["node"].as_str(),
        "{:?}",
        shards.body
    );
    assert!(
        shards.body["shards"][shard]["expires_in_ms"]
            .as_i64()
            .unwrap_or(0)
            > 0
    );
    // Woken, it finds its leases gone (or its commit refused) and stops serving them.
    old.signal("CONT");
    let received = actions.wait_until("f1's close", WAIT, |r| has_close(r, "f1"));
    old.wait_for_log("taken over", 1, WAIT);
    // It rejoins: the new node gives it the shards placed on it.
    old.wait_for_state("/healthz", None, WAIT, |h| {
        h["shards_owned"].as_u64().is_some_and(|n| n > 0)
    });
    let nodes = new.wait_for_state("/v1/admin/nodes", Some(TOKEN), WAIT, |b| {
        b["nodes"].as_array().is_some_and(|n| {
            n.len() == 2
                && n.iter()
                    .map(|n| n["shards"].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
                    == 4
        })
    });
    assert_eq!(nodes["nodes"].as_array().map(Vec::len), Some(2), "{nodes}");
    // Each of f1's actions went out under one id; any resend carries the same id.
    let ids: std::collections::BTreeSet<String> = received
        .iter()
        .filter(|r| body(r)["session"] == "f1")
        .filter_map(|r| {
            r.headers
                .get("webhook-id")?
                .to_str()
                .ok()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(ids.len(), 3, "warning, close message, close: {ids:?}");
    for server in [old, new] {
        let (status, stderr) = server.terminate(WAIT);
        assert!(status.success(), "{stderr}");
    }
}

/// A database that takes TLS connections only: `sslmode=require` in the URL with the
/// server's certificate in `store.ca_file` reaches it and serves; without the
/// certificate the server is not trusted, and without TLS it refuses; each start that
/// fails names the database and why.
#[test]
fn serve_reaches_a_database_over_verified_tls() {
    let pg = autoclose_tests::postgres::PrivateServer::start_tls("tls");
    let dir = scratch("serve-postgres-tls");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let with = |ca_file: Option<&std::path::Path>| {
        let mut value: Value =
            serde_json::from_str(&on_postgres(&config(&actions, &push, "Still there?", 1)))
                .unwrap_or(Value::Null);
        if let Some(file) = ca_file {
            value["store"]["ca_file"] = json!(file.display().to_string());
        }
        value.to_string()
    };
    let secure = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=require",
        pg.port
    );
    let plain = format!("postgres://postgres@127.0.0.1:{}/postgres", pg.port);
    let refused = |config: &str, url: &str, data: &str| {
        let path = dir.join(format!("{data}.json"));
        write(&path, config);
        let child = spawn(
            BINARY,
            &path,
            &dir.join(data),
            &[("AUTOCLOSE_DATABASE_URL", url)],
        );
        let output = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let stderr = refused(&with(None), &secure, "untrusted");
    assert!(
        stderr.contains(&format!(
            "cannot reach the store postgres://127.0.0.1:{}",
            pg.port
        )) && stderr.contains("certificate"),
        "{stderr}"
    );
    let stderr = refused(&with(None), &plain, "plain");
    assert!(stderr.contains("no encryption"), "{stderr}");
    let stderr = refused(&with(Some(&pg.certificate())), &plain, "ca-without-tls");
    assert!(stderr.contains("add ?sslmode=require"), "{stderr}");

    let path = dir.join("tls.json");
    write(&path, &with(Some(&pg.certificate())));
    let server = Server::start(
        BINARY,
        &path,
        &dir.join("tls"),
        &[("AUTOCLOSE_DATABASE_URL", secure.as_str())],
    );
    server.wait_for_state("/healthz", None, WAIT, |h| h["shards_owned"] == 1);
    server.ingest(
        Some(TOKEN),
        &json!([opened("t1", "web_chat"), said("t1", "agent")]),
    );
    actions.wait_until("t1's close", WAIT, |r| has_close(r, "t1"));
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");
}
