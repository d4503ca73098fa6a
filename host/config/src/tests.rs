use super::*;
use autoclose_webhook::format::Format;
use autoclose_webhook::retry::RetryPolicy;
use autoclose_webhook::secret::Secret;

fn parse(text: &str) -> Result<HostConfig, String> {
    HostConfig::parse(text, Path::new("cfg.json")).map_err(|e| e.to_string())
}

#[test]
fn splits_host_keys_from_the_tenant_document() {
    let config = parse(
            r#"{"webhooks":{"p":{"url":"https://push.example.com/hook","headers":{"Authorization":"Bearer x"}}},
                "tenants":{"acme":{"component":"vendor.wasm","channels":{}}}}"#,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.webhooks["p"].method, "POST");
    assert_eq!(
        config.tenants[0].component.as_deref(),
        Some(Path::new("vendor.wasm"))
    );
    assert_eq!(config.tenants[0].plugin_config, r#"{"channels":{}}"#);
    assert!(
        config.tenants[0].webhooks.is_empty(),
        "no webhooks unless listed"
    );
    assert_eq!(config.limits, Limits::default());
    assert!(!config.egress.allow_private_networks);
    let shown = format!("{:?}", config.webhooks["p"]);
    assert!(
        shown.contains("Authorization") && !shown.contains("Bearer"),
        "{shown}"
    );
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let e = parse("{\n  \"tenants\": {\n    \"acme\": [}\n}").unwrap_err();
    assert!(e.starts_with("cfg.json:3:"), "{e}");
}

#[test]
fn unknown_keys_name_the_path_and_line() {
    let e = parse("{\"webhooks\": {\"p\": {\"url\": \"https://x.example\",\n \"sekret\": 1}}}")
        .unwrap_err();
    assert!(e.starts_with("cfg.json:2:"), "{e}");
    assert!(
        e.contains("webhooks.p.sekret: unknown field `sekret`"),
        "{e}"
    );
}

#[test]
fn bad_webhooks_are_refused_with_their_path() {
    let e = parse(r#"{"webhooks":{"p":{"url":"not a url"}}}"#).unwrap_err();
    assert!(
        e.starts_with("cfg.json: webhooks.p.url: \"not a url\" is not a URL"),
        "{e}"
    );
    let e = parse(r#"{"webhooks":{"p":{"url":"ftp://x.example/"}}}"#).unwrap_err();
    assert!(
        e.contains("webhooks.p.url: \"ftp://x.example/\" must be an http"),
        "{e}"
    );
    let e = parse(r#"{"webhooks":{"p":{"url":"https://x.example/","method":"GET"}}}"#).unwrap_err();
    assert!(
        e.contains("webhooks.p.method: \"GET\" is not allowed"),
        "{e}"
    );
    let e = parse(r#"{"webhooks":{"p":{"url":"https://x.example/","headers":{"a b":"c"}}}}"#)
        .unwrap_err();
    assert!(
        e.contains("webhooks.p.headers: \"a b\" is not a valid header name"),
        "{e}"
    );
}

#[test]
fn webhook_secrets_timeouts_retries_and_formats() {
    let secret = Secret::encode(&[3u8; 32]);
    let text = format!(
        r#"{{"webhooks":{{"p":{{"url":"https://x.example/","secret":["{secret}","env:NEXT"],
                "timeout":"5s","retry":{{"max_attempts":3,"deadline":"30m"}},"format":{{"preset":"gotify"}}}}}}}}"#
    );
    let next = Secret::encode(&[4u8; 24]);
    let config = HostConfig::parse_with_env(&text, Path::new("cfg.json"), |n| {
        (n == "NEXT").then(|| next.clone())
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let hook = &config.webhooks["p"];
    assert_eq!(hook.secrets.len(), 2);
    assert_eq!(hook.timeout_ms, 5_000);
    assert_eq!(
        hook.retry,
        RetryPolicy {
            max_attempts: 3,
            deadline_ms: 1_800_000
        }
    );
    assert!(matches!(hook.format, Format::Template(_)));
    let shown = format!("{hook:?}");
    assert!(
        !shown.contains(&secret[6..]) && shown.contains("whsec_***"),
        "{shown}"
    );
}

#[test]
fn bad_webhook_settings_name_their_path_without_the_secret() {
    let e = parse(r#"{"webhooks":{"p":{"url":"https://x.example/","secret":"sk_live_123456"}}}"#)
        .unwrap_err();
    assert!(
        e.starts_with("cfg.json: webhooks.p.secret: must start with \"whsec_\""),
        "{e}"
    );
    assert!(!e.contains("123456"), "{e}");
    let e = parse(
        r#"{"webhooks":{"p":{"url":"https://x.example/","secret":"env:AUTOCLOSE_SURELY_UNSET"}}}"#,
    )
    .unwrap_err();
    assert!(
        e.ends_with("webhooks.p.secret: environment variable AUTOCLOSE_SURELY_UNSET is not set"),
        "{e}"
    );
    let e = parse(
        r#"{"webhooks":{"p":{"url":"https://x.example/","format":{"template":{"a":"{{who}}"}}}}}"#,
    )
    .unwrap_err();
    assert!(
        e.starts_with("cfg.json: webhooks.p.format: unknown placeholder {{who}}"),
        "{e}"
    );
    let e = parse(r#"{"webhooks":{"p":{"url":"https://x.example/","retry":{"max_attempts":0}}}}"#)
        .unwrap_err();
    assert!(
        e.contains("webhooks.p.retry: max_attempts 0 is out of range"),
        "{e}"
    );
    let e = parse(r#"{"webhooks":{"p":{"url":"https://x.example/","timeout":"2m"}}}"#).unwrap_err();
    assert!(e.contains("webhooks.p.timeout: must be at most 1m"), "{e}");
    let e =
        parse(r#"{"webhooks":{"p":{"url":"https://x.example/","timeout":"ten"}}}"#).unwrap_err();
    assert!(
        e.contains("webhooks.p.timeout: \"ten\" is not a duration"),
        "{e}"
    );
}

#[test]
fn bad_tenants_and_limits_are_refused() {
    let e = parse(r#"{"tenants":{"acme":{"component":7}}}"#).unwrap_err();
    assert!(
        e.contains("tenants.acme.component: must name a component or be the path"),
        "{e}"
    );
    let e =
        parse(r#"{"components":{"c":{"path":"c.wasm","limits":{"memory_mib":64}}}}"#).unwrap_err();
    assert!(
        e.contains("components.c.limits.memory_mib: 64 is more than"),
        "{e}"
    );
    let e = parse(r#"{"components":{"c":{"path":""}}}"#).unwrap_err();
    assert!(e.contains("components.c.path: is empty"), "{e}");
    let e = parse(r#"{"components":{"c":{"path":"c.wasm","default":{}}}}"#).unwrap_err();
    assert!(e.contains("components.c.default: unknown field"), "{e}");
    let e = parse(r#"{"tenants":{"acme":[]}}"#).unwrap_err();
    assert!(e.contains("tenants.acme: invalid type: sequence"), "{e}");
    let e = parse(r#"{"limits":{"hook_time_ms":0}}"#).unwrap_err();
    assert!(
        e.contains("limits.hook_time_ms: 0 is out of range (1 to 60000)"),
        "{e}"
    );
    // Read under its name before contract 0.4.0 too, and reported under the new one.
    for key in ["actions_per_event", "actions_per_hook"] {
        let e = parse(&format!(r#"{{"limits":{{"{key}":0}}}}"#)).unwrap_err();
        assert!(
            e.contains("limits.actions_per_event: 0 is out of range"),
            "{e}"
        );
    }
    let e = parse(r#"{"tenants":{"acme":{"webhooks":["nope"]}}}"#).unwrap_err();
    assert!(
        e.contains("tenants.acme.webhooks[0]: unknown webhook \"nope\" (defined: none)"),
        "{e}"
    );
    let e = parse(r#"{"tenants":{"acme":{"webhooks":"p"}}}"#).unwrap_err();
    assert!(e.contains("tenants.acme.webhooks: must be a list"), "{e}");
    let e = parse(r#"{} x"#).unwrap_err();
    assert!(e.contains("trailing characters"), "{e}");
}

#[test]
fn the_gateway_callback_and_ingest_sections_are_checked_with_their_paths() {
    let parse_env = |text: &str| {
        HostConfig::parse_with_env(text, Path::new("cfg.json"), |name| {
            (name == "TOKEN").then(|| "a-token-of-enough-length".to_owned())
        })
        .map_err(|e| e.to_string())
    };
    let config = parse_env(
        r#"{"gateway": {"actions_url": "http://10.0.0.5:9000/actions", "timeout": "5s"},
                "ingest": {"token": "env:TOKEN", "max_body_bytes": 2048}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let gateway = config.gateway.unwrap_or_else(|| panic!("gateway section"));
    assert_eq!(gateway.endpoint.timeout_ms, 5_000);
    assert_eq!(
        config.ingest.token.as_deref(),
        Some("a-token-of-enough-length")
    );
    assert_eq!(config.ingest.max_body_bytes, 2048);
    assert!(!format!("{:?}", config.ingest).contains("a-token"));

    let e = parse_env(r#"{"gateway": {"actions_url": "nowhere"}}"#).unwrap_err();
    assert!(e.starts_with("cfg.json: gateway.actions_url: "), "{e}");
    let e = parse_env(r#"{"ingest": {"token": "env:MISSING"}}"#).unwrap_err();
    assert_eq!(
        e,
        "cfg.json: ingest.token: environment variable MISSING is not set"
    );
    let e = parse_env(r#"{"ingest": {"token": "short"}}"#).unwrap_err();
    assert!(e.contains("ingest.token: must have at least 16"), "{e}");
    let e = parse_env(r#"{"ingest": {"max_body_bytes": 10}}"#).unwrap_err();
    assert!(
        e.contains("ingest.max_body_bytes: 10 is out of range"),
        "{e}"
    );
    let e = parse_env(r#"{"gateway": {"actions_url": "http://x.example", "method": "GET"}}"#)
        .unwrap_err();
    assert!(e.contains("gateway.method: unknown field"), "{e}");
}

#[test]
fn a_file_over_the_size_cap_is_refused_unread() {
    let file = std::env::temp_dir().join(format!("autoclose-big-{}.json", std::process::id()));
    let big = vec![b' '; MAX_CONFIG_BYTES as usize + 1];
    std::fs::write(&file, &big).expect("write");
    let e = HostConfig::load(&file).expect_err("too large").to_string();
    let _ = std::fs::remove_file(&file);
    assert!(
        e.contains(&format!(
            "{} bytes; a configuration file may have at most",
            big.len()
        )),
        "{e}"
    );
}

#[test]
fn admin_tokens_are_checked_and_never_shown() {
    let with_admin = |admin: &str| {
        parse(&format!(
            r#"{{"webhooks":{{"p":{{"url":"https://push.example.com/hook"}}}},
                "ingest":{{"token":"ingest-token-0123456789"}},
                "admin":{admin}}}"#
        ))
    };
    let config = with_admin(
        r#"{"token":"admin-token-0123456789",
            "tenants":{"acme":{"token":"acme-token-0123456789","webhooks":["p"]}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.admin.tenants["acme"].webhooks, vec!["p".to_owned()]);
    let shown = format!("{:?}", config.admin);
    assert!(!shown.contains("0123456789"), "{shown}");

    let e = with_admin(r#"{"token":"short"}"#).unwrap_err();
    assert!(e.contains("admin.token: must have at least 16"), "{e}");
    let e = with_admin(r#"{"token":"ingest-token-0123456789"}"#).unwrap_err();
    assert!(
        e.contains("admin.token: is the same as ingest.token"),
        "{e}"
    );
    let e = with_admin(
        r#"{"token":"admin-token-0123456789","tenants":{"acme":{"token":"admin-token-0123456789"}}}"#,
    )
    .unwrap_err();
    assert!(
        e.contains("admin.tenants.acme.token: is the same as admin.token"),
        "{e}"
    );
    let e =
        with_admin(r#"{"tenants":{"acme":{"token":"acme-token-0123456789","webhooks":["q"]}}}"#)
            .unwrap_err();
    assert!(
        e.contains("admin.tenants.acme.webhooks[0]: unknown webhook"),
        "{e}"
    );
}

#[test]
fn one_tenant_reads_alone_as_it_reads_in_the_file() {
    let config = parse(
        r#"{"webhooks":{"p":{"url":"https://push.example.com/hook"}},
            "components":{"csat":{"path":"csat.wasm"}},
            "tenants":{"acme":{"webhooks":["p"],"channels":{}}}}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let document = |text: &str| -> serde_json::Map<String, Value> {
        serde_json::from_str(text).unwrap_or_default()
    };
    let alone = config
        .tenant("acme", document(r#"{"webhooks":["p"],"channels":{}}"#))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(alone, config.tenants[0]);
    let e = config
        .tenant("acme", document(r#"{"webhooks":["p","q"]}"#))
        .unwrap_err();
    assert_eq!(e.path, "webhooks[1]");
    let e = config
        .tenant("acme", document(r#"{"limits":{"memory_mib":"lots"}}"#))
        .unwrap_err();
    assert!(e.path.starts_with("limits"), "{e}");
    let vendor = config
        .tenant("newco", document(r#"{"component":"csat"}"#))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(vendor.component.as_deref(), Some(Path::new("csat.wasm")));
    assert!(names_a_file(
        &document(r#"{"component":"x.wasm"}"#),
        &config.catalog
    ));
    assert!(!names_a_file(
        &document(r#"{"component":"csat"}"#),
        &config.catalog
    ));
    let mut added = config.clone();
    added.set_tenant(vendor);
    let names: Vec<&str> = added.tenants.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, vec!["acme", "newco"]);
    added.remove_tenant("acme");
    assert_eq!(added.tenants.len(), 1);
    assert!(added.without_tenants().tenants.is_empty());
}

#[test]
fn a_postgres_store_is_checked_and_its_password_never_shown() {
    let with_store = |store: &str| parse(&format!(r#"{{"store": {store}}}"#));
    assert_eq!(
        parse("{}")
            .map(|c| c.store)
            .unwrap_or_else(|e| panic!("{e}")),
        StoreSettings::Redb
    );
    let config = HostConfig::parse_with_env(
        r#"{"store": {"kind": "postgres", "url": "env:DB"}}"#,
        Path::new("cfg.json"),
        |name| (name == "DB").then(|| "postgres://app:s3cret@db.internal:5432/chat".to_owned()),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let StoreSettings::Postgres(pg) = &config.store else {
        panic!("{:?}", config.store);
    };
    assert_eq!(
        (pg.schema.as_str(), pg.pool),
        (DEFAULT_SCHEMA, DEFAULT_POOL)
    );
    assert_eq!(
        pg.place(),
        "postgres://db.internal:5432/chat (schema autoclose)"
    );
    assert!(!format!("{:?}", config.store).contains("s3cret"));
    let e = with_store(r#"{"kind": "postgres"}"#).unwrap_err();
    assert!(
        e.contains("store.url: a postgres store needs its URL"),
        "{e}"
    );
    let e = with_store(r#"{"kind": "postgres", "url": "mysql://x"}"#).unwrap_err();
    assert!(e.contains("store.url: must start with postgres://"), "{e}");
    let e = with_store(r#"{"kind": "postgres", "url": "postgres://h/d", "schema": "Drop Table"}"#)
        .unwrap_err();
    assert!(
        e.contains("store.schema: \"Drop Table\" is not a schema name"),
        "{e}"
    );
    let e = with_store(r#"{"kind": "redb", "pool": 3}"#).unwrap_err();
    assert!(
        e.contains("store: url, schema, pool, lease_ttl and ca_file are for"),
        "{e}"
    );
    let e =
        with_store(r#"{"kind": "postgres", "url": "postgres://h/d", "ca_file": "no-such-ca.pem"}"#)
            .unwrap_err();
    assert!(
        e.contains("store.ca_file: ") && e.contains("no-such-ca.pem is not a file"),
        "{e}"
    );
    let e = with_store(r#"{"kind": "sqlite"}"#).unwrap_err();
    assert!(e.contains("store.kind: unknown variant"), "{e}");
}

#[test]
fn platform_gateways_are_checked_with_their_paths_and_never_show_a_secret() {
    let env = |name: &str| match name {
        "CW_TOKEN" => Some("chatwoot-api-token".to_owned()),
        "CW_SECRET" => Some("chatwoot-webhook-secret".to_owned()),
        "RC_TOKEN" => Some("rocketchat-personal-token".to_owned()),
        "RC_HOOK" => Some("rocketchat-webhook-token-of-24+".to_owned()),
        _ => None,
    };
    let parse_env = |gateway: &str| {
        let text = format!(
            r#"{{"gateway": {gateway},
                "tenants": {{"acme": {{"channels": {{}}}}, "globex": {{"channels": {{}}}}}}}}"#
        );
        HostConfig::parse_with_env(&text, Path::new("cfg.json"), env).map_err(|e| e.to_string())
    };
    let chatwoot = r#""chatwoot": {"url": "https://cw.example.com", "accounts": {"acme": {"account_id": 3, "api_access_token": "env:CW_TOKEN", "webhook_secret": "env:CW_SECRET"}}}"#;
    let rocketchat = r#""rocketchat": {"reconcile_every": "start_only", "servers": {"globex": {"url": "https://rc.example.com", "user_id": "bot1", "auth_token": "env:RC_TOKEN", "webhook_token": "env:RC_HOOK"}}}"#;
    let config =
        parse_env(&format!("{{{chatwoot}, {rocketchat}}}")).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        config.gateway.is_none(),
        "no generic callback was asked for"
    );
    let cw = config
        .chatwoot
        .as_ref()
        .unwrap_or_else(|| panic!("chatwoot"));
    assert_eq!(cw.accounts["acme"].account_id, 3);
    assert_eq!(cw.timing.timeout_ms, DEFAULT_PLATFORM_TIMEOUT_MS);
    let rc = config
        .rocketchat
        .as_ref()
        .unwrap_or_else(|| panic!("rocketchat"));
    assert_eq!(rc.timing.reconcile_every_ms, 0);
    assert_eq!(rc.servers["globex"].user_id, "bot1");
    assert_eq!(
        rc.servers["globex"].auth_token.expose(),
        "rocketchat-personal-token"
    );
    let shown = format!("{:?} {:?}", config.chatwoot, config.rocketchat);
    for secret in [
        "chatwoot-api-token",
        "chatwoot-webhook-secret",
        "rocketchat-personal-token",
        "rocketchat-webhook-token",
    ] {
        assert!(!shown.contains(secret), "{secret} shown: {shown}");
    }

    // Each mistake names its field.
    let refused = |gateway: String, at: &str, says: &str| {
        let e = parse_env(&gateway).expect_err(&gateway);
        assert!(e.contains(&format!("{at}: ")) && e.contains(says), "{e}");
        assert!(
            !e.contains("rocketchat-personal") && !e.contains("chatwoot-api"),
            "{e}"
        );
    };
    refused(
        r#"{"rocketchat": {"servers": {"globex": {"url": "ftp://rc", "user_id": "b", "auth_token": "env:RC_TOKEN", "webhook_token": "env:RC_HOOK"}}}}"#.into(),
        "gateway.rocketchat.servers.globex.url",
        "is not an http:// or https:// URL",
    );
    refused(
        r#"{"rocketchat": {"servers": {"globex": {"url": "https://rc.example.com", "user_id": "b", "auth_token": "env:RC_TOKEN", "webhook_token": "short"}}}}"#.into(),
        "gateway.rocketchat.servers.globex.webhook_token",
        "at least 24 characters",
    );
    refused(
        r#"{"rocketchat": {"servers": {"globex": {"url": "https://rc.example.com", "user_id": " ", "auth_token": "env:RC_TOKEN", "webhook_token": "env:RC_HOOK"}}}}"#.into(),
        "gateway.rocketchat.servers.globex.user_id",
        "is empty",
    );
    refused(
        r#"{"rocketchat": {"servers": {"globex": {"url": "https://rc.example.com", "user_id": "b", "auth_token": "env:NOPE", "webhook_token": "env:RC_HOOK"}}}}"#.into(),
        "gateway.rocketchat.servers.globex.auth_token",
        "NOPE is not set",
    );
    refused(
        r#"{"rocketchat": {"servers": {"initech": {"url": "https://rc.example.com", "user_id": "b", "auth_token": "env:RC_TOKEN", "webhook_token": "env:RC_HOOK"}}}}"#.into(),
        "gateway.rocketchat.servers.initech",
        "no tenant \"initech\" in tenants",
    );
    refused(
        r#"{"rocketchat": {"servers": {"acme": {"url": "https://rc.example.com", "user_id": "b", "auth_token": "env:RC_TOKEN", "webhook_token": "env:RC_HOOK"}, "globex": {"url": "https://rc.example.com/", "user_id": "b", "auth_token": "env:RC_TOKEN", "webhook_token": "env:RC_HOOK"}}}}"#.into(),
        "gateway.rocketchat.servers.globex.url",
        "one tenant per workspace",
    );
    refused(
        format!("{{{chatwoot}, {}}}", rocketchat.replace("globex", "acme")),
        "gateway.rocketchat.servers.acme",
        "one platform per tenant",
    );
    refused(
        r#"{"chatwoot": {"url": "https://cw.example.com", "reconcile_every": "0s", "accounts": {"acme": {"account_id": 3, "api_access_token": "env:CW_TOKEN", "webhook_secret": "env:CW_SECRET"}}}}"#.into(),
        "gateway.chatwoot.reconcile_every",
        "nor \"start_only\"",
    );
    refused(
        r#"{"chatwoot": {"url": "https://cw.example.com", "accounts": {"acme": {"account_id": 3, "api_access_token": "env:CW_TOKEN"}}}}"#.into(),
        "gateway.chatwoot.accounts.acme",
        "missing webhook_secret",
    );
    refused(
        r#"{"headers": {"x": "y"}, "chatwoot": {"url": "https://cw.example.com", "accounts": {"acme": {"account_id": 3, "api_access_token": "env:CW_TOKEN", "webhook_secret": "env:CW_SECRET"}}}}"#.into(),
        "gateway.actions_url",
        "missing",
    );
}
