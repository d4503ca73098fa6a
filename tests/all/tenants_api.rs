//! Tenant settings through `serve`'s admin API, end to end: the built binary, real
//! HTTP, a local receiver for the gateway's callback, a restart on the same data
//! directory.

use autoclose_tests::receiver::{Received, Receiver};
use autoclose_tests::server::{Reply, Server, scratch};
use serde_json::{Value, json};

use crate::serve::{BINARY, TOKEN, WAIT, body, config, has_close, opened, said, write};

const ADMIN: &str = "test-admin-token-0123456789";
const ACME: &str = "test-acme-token-0123456789";
const GLOBEX: &str = "test-globex-token-0123456789";

/// A document for acme: web_chat closes after 1s with `text`.
fn closes_after_1s(text: &str) -> Value {
    json!({"webhooks": ["push"], "channels": {"web_chat": {"auto_close": {
        "close": {"after": "1s", "message": text}}}}})
}

/// The text posted before the close of `session`.
fn close_text(received: &[Received], session: &str) -> Option<String> {
    received
        .iter()
        .map(body)
        .find(|b| b["session"] == session && b["type"] == "post_message" && b["kind"] == "close")
        .and_then(|b| b["text"].as_str().map(str::to_owned))
}

fn tenants_listed(reply: &Reply) -> Vec<(String, String, u64, bool)> {
    reply.body["tenants"]
        .as_array()
        .map(|list| {
            list.iter()
                .map(|t| {
                    (
                        t["tenant"].as_str().unwrap_or("?").to_owned(),
                        t["source"].as_str().unwrap_or("?").to_owned(),
                        t["version"].as_u64().unwrap_or(u64::MAX),
                        t["in_file"].as_bool().unwrap_or(false),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn tenant_settings_are_managed_one_tenant_at_a_time_and_survive_a_restart() {
    let dir = scratch("serve-tenants-api");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    // In the file, acme warns after a minute: nothing closes within this test unless
    // the API's settings run.
    let mut file: Value =
        serde_json::from_str(&config(&actions, &push, "Still there?", 60)).unwrap_or(Value::Null);
    file["webhooks"]["other"] = json!({"url": push.url("/other")});
    // picky's settings are refused: it is held failed, its events kept.
    file["tenants"]["picky"] = json!({"auto_close": {"close": {"after": "soon", "message": "x"}}});
    file["admin"] = json!({"token": ADMIN, "tenants": {
        "acme": {"token": ACME, "webhooks": ["push"]},
        "globex": {"token": GLOBEX}}});
    write(&config_path, &file.to_string());
    let data = dir.join("data");
    let server = Server::start(BINARY, &config_path, &data, &[]);
    let call =
        |method: &str, path: &str, token: &str, headers: &[(&str, &str)], body: Option<&Value>| {
            server.request(method, path, Some(token), headers, body)
        };

    // With admin.token set, the ingest token does not open the admin routes.
    assert_eq!(
        call("GET", "/v1/admin/tenants", TOKEN, &[], None).status,
        401
    );
    let listed = call("GET", "/v1/admin/tenants", ADMIN, &[], None);
    assert_eq!(listed.status, 200, "{:?}", listed.body);
    assert_eq!(
        tenants_listed(&listed),
        vec![
            ("acme".into(), "file".into(), 0, true),
            ("picky".into(), "file".into(), 0, true)
        ]
    );

    // A PUT is checked, stored and applied: a chat then closes on the new timings.
    let v1 = closes_after_1s("Closed by v1.");
    let put = call(
        "PUT",
        "/v1/admin/tenants/acme",
        ADMIN,
        &[("if-match", "\"0\"")],
        Some(&v1),
    );
    assert_eq!(put.status, 200, "{:?}", put.body);
    assert_eq!(put.etag.as_deref(), Some("\"1\""));
    assert_eq!(
        (
            &put.body["version"],
            &put.body["audit"]["by"],
            &put.body["dropped"]
        ),
        (&json!(1), &json!("admin"), &json!([])),
        "{:?}",
        put.body
    );
    server.ingest(
        Some(TOKEN),
        &json!([opened("s1", "web_chat"), said("s1", "agent")]),
    );
    let received = actions.wait_until("s1's close", WAIT, |r| has_close(r, "s1"));
    assert_eq!(
        close_text(&received, "s1").as_deref(),
        Some("Closed by v1.")
    );

    // A failed tenant fixed through the API: its held events run, in order.
    let mut picky_chat = json!([opened("p1", "web_chat"), said("p1", "agent")]);
    for event in picky_chat.as_array_mut().into_iter().flatten() {
        event["tenant"] = json!("picky");
    }
    server.ingest(Some(TOKEN), &picky_chat);
    let fixed = json!({"auto_close": {"close": {"after": "1s", "message": "Picky closed."}}});
    let put = call("PUT", "/v1/admin/tenants/picky", ADMIN, &[], Some(&fixed));
    assert_eq!(put.status, 200, "{:?}", put.body);
    let received = actions.wait_until("p1's close", WAIT, |r| has_close(r, "p1"));
    assert_eq!(
        close_text(&received, "p1").as_deref(),
        Some("Picky closed.")
    );

    // A document the component refuses is 422 with the path, and changes nothing.
    let bad = json!({"channels": {"web_chat": {"auto_close": {"close": {"after": "soon", "message": "x"}}}}});
    let refused = call("PUT", "/v1/admin/tenants/acme", ADMIN, &[], Some(&bad));
    assert_eq!(refused.status, 422, "{:?}", refused.body);
    let path = refused.body["path"].as_str().unwrap_or("");
    assert!(path.ends_with("close.after"), "{:?}", refused.body);
    // One the host refuses (an unknown webhook) too.
    let unknown = json!({"webhooks": ["nope"]});
    let refused = call("PUT", "/v1/admin/tenants/acme", ADMIN, &[], Some(&unknown));
    assert_eq!(
        (refused.status, refused.body["path"].as_str()),
        (422, Some("webhooks[0]"))
    );
    let now = call("GET", "/v1/admin/tenants/acme", ADMIN, &[], None);
    assert_eq!(now.etag.as_deref(), Some("\"1\""));
    assert_eq!(now.body["document"], v1);

    // A stale If-Match is a lost update refused.
    let stale = call(
        "PUT",
        "/v1/admin/tenants/acme",
        ADMIN,
        &[("if-match", "\"0\"")],
        Some(&v1),
    );
    assert_eq!(stale.status, 412, "{:?}", stale.body);
    assert_eq!(stale.body["current_version"], 1);

    // A tenant's token reads and changes its tenant only, with the webhooks granted.
    assert_eq!(
        call("GET", "/v1/admin/tenants/acme", GLOBEX, &[], None).status,
        403
    );
    assert_eq!(
        call("PUT", "/v1/admin/tenants/acme", GLOBEX, &[], Some(&v1)).status,
        403
    );
    assert_eq!(
        tenants_listed(&call("GET", "/v1/admin/tenants", GLOBEX, &[], None)),
        vec![]
    );
    assert_eq!(
        call("POST", "/v1/admin/reload", ACME, &[], None).status,
        403
    );
    let other_hook = json!({"webhooks": ["other"]});
    let forbidden = call(
        "PUT",
        "/v1/admin/tenants/acme",
        ACME,
        &[],
        Some(&other_hook),
    );
    assert_eq!(forbidden.status, 403, "{:?}", forbidden.body);
    assert!(
        forbidden.body["error"].to_string().contains("webhooks[0]"),
        "{:?}",
        forbidden.body
    );
    let own_limits = json!({"limits": {"fuel_per_hook": 1}});
    assert_eq!(
        call(
            "PUT",
            "/v1/admin/tenants/acme",
            ACME,
            &[],
            Some(&own_limits)
        )
        .status,
        403
    );
    let a_file = json!({"component": "/etc/passwd.wasm"});
    assert_eq!(
        call("PUT", "/v1/admin/tenants/acme", ACME, &[], Some(&a_file)).status,
        403
    );
    assert_eq!(
        call("GET", "/v1/admin/audit?tenant=globex", ACME, &[], None).status,
        403
    );

    let v2 = closes_after_1s("Closed by v2.");
    let put = call(
        "PUT",
        "/v1/admin/tenants/acme",
        ACME,
        &[("if-match", "\"1\"")],
        Some(&v2),
    );
    assert_eq!(
        (put.status, put.etag.as_deref()),
        (200, Some("\"2\"")),
        "{:?}",
        put.body
    );

    // Rollback writes version 1's document again, as version 3.
    let back = call(
        "POST",
        "/v1/admin/tenants/acme/rollback",
        ACME,
        &[("if-match", "\"2\"")],
        Some(&json!({"version": 1})),
    );
    assert_eq!(
        (back.status, back.etag.as_deref()),
        (200, Some("\"3\"")),
        "{:?}",
        back.body
    );
    let versions = call("GET", "/v1/admin/tenants/acme/versions", ACME, &[], None);
    let by: Vec<(u64, &str)> = versions.body["versions"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| {
                    (
                        v["version"].as_u64().unwrap_or(0),
                        v["by"].as_str().unwrap_or("?"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        by,
        vec![(1, "admin"), (2, "tenant:acme"), (3, "tenant:acme")]
    );

    // A tenant only the API knows.
    let newco = call(
        "PUT",
        "/v1/admin/tenants/newco",
        ADMIN,
        &[],
        Some(&closes_after_1s("Newco closed.")),
    );
    assert_eq!(newco.status, 200, "{:?}", newco.body);
    let listed = tenants_listed(&call("GET", "/v1/admin/tenants", ADMIN, &[], None));
    assert_eq!(
        listed,
        vec![
            ("acme".into(), "api".into(), 3, true),
            ("newco".into(), "api".into(), 1, false),
            ("picky".into(), "api".into(), 1, true)
        ]
    );
    let (_, metrics) = server.get("/metrics");
    for (outcome, count) in [("put", 4), ("rollback", 1), ("refused", 5), ("stale", 1)] {
        let line = format!("autoclose_tenant_changes_total{{outcome=\"{outcome}\"}} {count}");
        assert!(metrics.contains(&line), "{line} in:\n{metrics}");
    }
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");
    assert!(
        !stderr.contains(ADMIN) && !stderr.contains(ACME),
        "tokens never reach the log"
    );

    // After a restart, the stored versions run.
    let server = Server::start(BINARY, &config_path, &data, &[]);
    let call =
        |method: &str, path: &str, token: &str, headers: &[(&str, &str)], body: Option<&Value>| {
            server.request(method, path, Some(token), headers, body)
        };
    let now = call("GET", "/v1/admin/tenants/acme", ACME, &[], None);
    assert_eq!(
        (now.etag.as_deref(), &now.body["document"]),
        (Some("\"3\""), &v1)
    );
    let mut newco_chat = json!([opened("n1", "web_chat"), said("n1", "agent")]);
    for event in newco_chat.as_array_mut().into_iter().flatten() {
        event["tenant"] = json!("newco");
    }
    server.ingest(
        Some(TOKEN),
        &json!([opened("s2", "web_chat"), said("s2", "agent")]),
    );
    server.ingest(Some(TOKEN), &newco_chat);
    let received = actions.wait_until("s2's and n1's closes", WAIT, |r| {
        has_close(r, "s2") && has_close(r, "n1")
    });
    assert_eq!(
        close_text(&received, "s2").as_deref(),
        Some("Closed by v1.")
    );
    assert_eq!(
        close_text(&received, "n1").as_deref(),
        Some("Newco closed.")
    );

    // The CLI wraps the API: the token from the environment, refusals on stderr.
    let cli = |args: &[&str], token: &str| {
        std::process::Command::new(BINARY)
            .arg("tenants")
            .args(args)
            .env("AUTOCLOSE_URL", server.url(""))
            .env("AUTOCLOSE_TOKEN", token)
            .output()
            .unwrap_or_else(|e| panic!("cannot run the CLI: {e}"))
    };
    let out = cli(&["get", "acme"], ACME);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(
        (shown["version"].as_u64(), &shown["document"]),
        (Some(3), &v1)
    );
    let doc_file = dir.join("v2.json");
    write(&doc_file, &v2.to_string());
    let doc_arg = doc_file.to_string_lossy().into_owned();
    let out = cli(&["put", "acme", &doc_arg, "--if-match", "2"], ACME);
    assert!(!out.status.success(), "a stale version is refused");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("412") && stderr.contains("version 3"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(ACME),
        "the token is never printed: {stderr}"
    );
    let out = cli(&["put", "acme", &doc_arg, "--if-match", "3"], ACME);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["rollback", "acme", "3", "--if-match", "4"], ACME);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rolled: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(rolled["version"], 5, "{rolled}");

    // DELETE returns acme to the file's settings; the file's own tenant cannot be
    // deleted through the API; newco is gone.
    let deleted = call(
        "DELETE",
        "/v1/admin/tenants/acme",
        ADMIN,
        &[("if-match", "\"5\"")],
        None,
    );
    assert_eq!(
        (deleted.status, deleted.etag.as_deref()),
        (200, Some("\"6\"")),
        "{:?}",
        deleted.body
    );
    let now = call("GET", "/v1/admin/tenants/acme", ADMIN, &[], None);
    assert_eq!(now.body["source"], "file");
    assert_eq!(
        now.body["document"]["channels"]["web_chat"]["auto_close"]["warnings"][0]["after"],
        "60s"
    );
    assert_eq!(
        call("DELETE", "/v1/admin/tenants/acme", ADMIN, &[], None).status,
        409
    );
    assert_eq!(
        call("DELETE", "/v1/admin/tenants/newco", ADMIN, &[], None).status,
        200
    );
    assert_eq!(
        call("GET", "/v1/admin/tenants/newco", ADMIN, &[], None).status,
        404
    );

    // Every change is in the audit log, with who made it.
    let audit = call("GET", "/v1/admin/audit", ADMIN, &[], None);
    let log: Vec<(String, String, String, u64, u64)> = audit.body["audit"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    (
                        r["tenant"].as_str().unwrap_or("?").to_owned(),
                        r["by"].as_str().unwrap_or("?").to_owned(),
                        r["kind"].as_str().unwrap_or("?").to_owned(),
                        r["old_version"].as_u64().unwrap_or(99),
                        r["new_version"].as_u64().unwrap_or(99),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let expected: Vec<(String, String, String, u64, u64)> = [
        ("acme", "admin", "put", 0, 1),
        ("picky", "admin", "put", 0, 1),
        ("acme", "tenant:acme", "put", 1, 2),
        ("acme", "tenant:acme", "rollback", 2, 3),
        ("newco", "admin", "put", 0, 1),
        ("acme", "tenant:acme", "put", 3, 4),
        ("acme", "tenant:acme", "rollback", 4, 5),
        ("acme", "admin", "delete", 5, 6),
        ("newco", "admin", "delete", 1, 2),
    ]
    .into_iter()
    .map(|(t, b, k, o, n)| (t.into(), b.into(), k.into(), o, n))
    .collect();
    assert_eq!(log, expected);
    let own = call("GET", "/v1/admin/audit", ACME, &[], None);
    assert_eq!(
        own.body["audit"].as_array().map(Vec::len),
        Some(6),
        "a tenant sees its own changes"
    );
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");
}

/// The OpenAPI document `serve` serves is the checked-in one, and every operation in
/// it is routed (answered with something other than 404 or 405), while a path it
/// does not list is not.
#[test]
fn the_openapi_document_lists_exactly_what_serve_answers() {
    let dir = scratch("serve-openapi");
    let actions = Receiver::start(vec![]);
    let push = Receiver::start(vec![]);
    let config_path = dir.join("config.json");
    write(&config_path, &config(&actions, &push, "Still there?", 60));
    let server = Server::start(BINARY, &config_path, &dir.join("data"), &[]);
    let served = server.request("GET", "/v1/openapi.json", None, &[], None);
    assert_eq!(served.status, 200);
    let checked_in: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.json"))
            .unwrap_or_default(),
    )
    .unwrap_or(Value::Null);
    assert_eq!(served.body, checked_in, "docs/openapi.json is stale");
    let paths = checked_in["paths"].as_object().cloned().unwrap_or_default();
    let mut operations = 0;
    for (path, item) in &paths {
        let concrete = path.replace("{tenant}", "acme");
        for method in item
            .as_object()
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
        {
            // No token: the admin and ingest routes answer 401, which a missing route
            // would not.
            let reply = server.request(&method.to_uppercase(), &concrete, None, &[], None);
            assert!(
                reply.status != 404 && reply.status != 405,
                "{method} {path} is in the document but not routed: {}",
                reply.status
            );
            operations += 1;
        }
    }
    assert_eq!(operations, 16);
    assert_eq!(
        server
            .request("GET", "/v1/admin/nothing", None, &[], None)
            .status,
        404
    );
    assert_eq!(
        server
            .request("PATCH", "/v1/admin/tenants/acme", None, &[], None)
            .status,
        405
    );
    let (status, stderr) = server.terminate(WAIT);
    assert!(status.success(), "{stderr}");
}
