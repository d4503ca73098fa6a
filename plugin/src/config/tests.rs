use super::*;

fn hooks() -> Vec<String> {
    vec!["mobile-push".to_owned()]
}

fn parse_ok(text: &str, defaults: &str) -> TenantSettings {
    parse(text, defaults, &hooks()).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> String {
    err_with(text, "{}")
}

fn err_with(text: &str, defaults: &str) -> String {
    parse(text, defaults, &hooks())
        .map(|_| ())
        .expect_err("the config should be refused")
        .to_string()
}

/// A tenant with one channel whose auto_close is `layer`.
fn channel(layer: &str) -> String {
    format!(r#"{{"channels":{{"web_chat":{{"auto_close":{layer}}}}}}}"#)
}

const TWO_STEPS: &str = r#"{"auto_close": {
    "warnings": [
        {"after": "2m", "message": "Still there?"},
        {"after": "4m", "message": {"default": "Closing in {{minutes_left}} min", "pt": "Fecha em {{minutes_left}} min"}, "push": true}
    ],
    "close": {"after": "5m", "message": "Closed.", "push": true},
    "push": {"webhook": "mobile-push", "only_when_away": true}
}}"#;

#[test]
fn accepts_several_warnings_with_their_own_switches() {
    let tenant = parse_ok(TWO_STEPS, "{}");
    let s = tenant.channel("any_channel").expect("tenant-wide settings");
    assert_eq!(s.schedule(), vec![120_000, 240_000, 300_000]);
    assert_eq!(
        s.warnings
            .iter()
            .map(|w| (w.post, w.push))
            .collect::<Vec<_>>(),
        vec![(true, false), (true, true)]
    );
    assert!(s.close.push);
    assert_eq!(
        s.push,
        Some(PushTarget {
            webhook: "mobile-push".into(),
            only_when_away: true
        })
    );
    assert_eq!(
        s.started_by,
        Starters {
            agent: true,
            bot: true
        }
    );
    assert_eq!(s.zone.name(), "UTC");
}

#[test]
fn layers_override_key_by_key_defaults_then_tenant_then_channel_then_group() {
    let defaults = r#"{"auto_close": {"close": {"after": "10m", "message": "Bye"}, "time_zone": "Europe/Lisbon"},
                       "channels": {"http_api": {"auto_close": {"close": {"after": "30m"}}}}}"#;
    let tenant = r#"{
        "auto_close": {"close": {"after": "8m"}},
        "channels": {"web_chat": {"auto_close": {"close": {"after": "6m"}}},
                     "sms": {"auto_close": {"enabled": false}}},
        "groups": {"vip": {"auto_close": {"close": {"after": "20m"}, "started_by": ["agent"]}}},
        "group_attribute": "department"
    }"#;
    let t = parse_ok(tenant, defaults);
    let close = |channel: &str, group: Option<&str>| {
        t.get(channel, group)
            .map(|s| s.close.after.as_ms() / 60_000)
    };
    assert_eq!(close("web_chat", None), Some(6));
    assert_eq!(
        close("http_api", None),
        Some(8),
        "the tenant overrides the defaults' channel layer"
    );
    assert_eq!(close("other", None), Some(8));
    assert_eq!(close("web_chat", Some("vip")), Some(20));
    assert_eq!(close("web_chat", Some("unknown group")), Some(6));
    assert_eq!(close("sms", None), None, "enabled: false");
    let s = t.get("web_chat", Some("vip")).expect("vip");
    assert_eq!(
        s.started_by,
        Starters {
            agent: true,
            bot: false
        }
    );
    assert_eq!(s.zone.name(), "Europe/Lisbon", "from the defaults");
    assert!(
        s.close.message.is_some(),
        "the defaults' message survives the tenant's close.after"
    );
    assert_eq!(t.group_attribute(), Some("department"));
}

#[test]
fn resolution_says_where_each_value_came_from() {
    let defaults = r#"{"auto_close": {"close": {"after": "10m", "message": "Bye"}}}"#;
    let tenant = r#"{"channels": {"web_chat": {"auto_close": {"close": {"after": "6m"}}}}}"#;
    let resolution = resolve(tenant, defaults, &hooks()).unwrap_or_else(|e| panic!("{e}"));
    let web = &resolution.combinations[0];
    assert_eq!(web.channel, ChannelScope::Named("web_chat".into()));
    let origin = |path: &str| {
        web.merged
            .source_of(path)
            .map(|(p, o)| (p, o.label.clone()))
    };
    assert_eq!(
        origin("close.after"),
        Some((
            "channels.web_chat.auto_close.close.after".into(),
            "channel web_chat".into()
        ))
    );
    assert_eq!(
        origin("close.message"),
        Some((
            "defaults.auto_close.close.message".into(),
            "defaults".into()
        ))
    );
    assert_eq!(resolution.combinations[1].channel, ChannelScope::Other);
}

#[test]
fn a_channel_without_a_close_is_off() {
    let t = parse_ok(
        r#"{"channels":{"web_chat":{"auto_close":{"time_zone":"UTC"}}, "sms":{}}}"#,
        "{}",
    );
    assert!(t.channel("web_chat").is_none());
    assert!(t.channel("sms").is_none());
    assert!(t.channel("other").is_none());
    let e = err(&channel(r#"{"enabled": true}"#));
    assert_eq!(
        e,
        "channels.web_chat.auto_close.close: missing: auto-close is enabled, so some layer must set close.after"
    );
}

#[test]
fn names_the_path_of_bad_durations_unknown_keys_and_wrong_types() {
    assert_eq!(
        err(&channel(r#"{"close": {"after": "3 minutes"}}"#)),
        r#"channels.web_chat.auto_close.close.after: "3 minutes" is not a duration (try "3m")"#
    );
    let e = err(&channel(r#"{"close": {"after": "2m", "mesage": "x"}}"#));
    assert!(
        e.starts_with("channels.web_chat.auto_close.close.mesage: unknown field `mesage`"),
        "{e}"
    );
    let e = err(&channel(r#"{"close": {"after": 120}}"#));
    assert!(
        e.starts_with("channels.web_chat.auto_close.close.after: invalid type: integer `120`"),
        "{e}"
    );
    let e = err(r#"{"tenants":{}}"#);
    assert!(e.starts_with("tenants: unknown field `tenants`"), "{e}");
    let e = err(&channel(r#"{"close": {"message": "bye"}}"#));
    assert!(
        e.starts_with("channels.web_chat.auto_close.close: missing field `after`"),
        "{e}"
    );
    let e = err_with(r#"{}"#, r#"{"auto_close": {"close": {"after": "1x"}}}"#);
    assert!(
        e.starts_with("defaults.auto_close.close.after: \"1x\" is not a duration"),
        "{e}"
    );
    let e = err_with("{}", r#"{"auto_close": {"clos": {}}}"#);
    assert!(
        e.starts_with("defaults.auto_close.clos: unknown field"),
        "{e}"
    );
}

#[test]
fn steps_must_be_ordered_and_before_the_close() {
    let e = err(&channel(
        r#"{"warnings": [{"after": "3m", "message": "a"}, {"after": "2m", "message": "b"}], "close": {"after": "5m"}}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.warnings[1].after: 2m is not after the previous warning (3m)"),
        "{e}"
    );
    let e = err(&channel(
        r#"{"warnings": [{"after": "3m", "message": "a"}, {"after": "3m", "message": "b"}], "close": {"after": "5m"}}"#,
    ));
    assert!(
        e.contains("warnings[1].after: 3m is not after the previous warning"),
        "{e}"
    );
    // The close set in another layer: the error names both places.
    let tenant = r#"{"auto_close": {"close": {"after": "5m"}},
                     "channels": {"web_chat": {"auto_close": {"warnings": [{"after": "6m", "message": "late"}]}}}}"#;
    let e = err(tenant);
    assert_eq!(
        e,
        "channels.web_chat.auto_close.warnings[0].after: a warning at 6m comes at or after the close at 5m \
         (set at auto_close.close.after): every warning must come before the close"
    );
    let many: Vec<String> = (1..=11)
        .map(|i| format!(r#"{{"after":"{i}m","message":"w"}}"#))
        .collect();
    let e = err(&channel(&format!(
        r#"{{"warnings":[{}],"close":{{"after":"1h"}}}}"#,
        many.join(",")
    )));
    assert_eq!(
        e,
        "channels.web_chat.auto_close.warnings: 11 warnings; at most 10"
    );
    let e = err(&channel(
        r#"{"warnings": [{"after": "1m", "message": "a", "post": false}], "close": {"after": "5m"}}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.warnings[0]: does nothing"),
        "{e}"
    );
    let e = err(&channel(
        r#"{"warnings": [{"after": "1m", "message": "a", "agent_notice": "{{nope}}"}], "close": {"after": "5m"}}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.warnings[0].agent_notice"),
        "{e}"
    );
}

#[test]
fn locales_need_a_default_and_well_formed_keys() {
    let e = err(&channel(
        r#"{"close": {"after": "5m", "message": {"pt": "Fechado"}}}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.close.message: no \"default\" text"),
        "{e}"
    );
    let e = err(&channel(
        r#"{"close": {"after": "5m", "message": {"default": "x", "Portuguese": "y"}}}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.close.message.Portuguese: \"Portuguese\" is not a locale key"),
        "{e}"
    );
    let e = err(&channel(r#"{"close": {"after": "5m", "message": 7}}"#));
    assert!(
        e.starts_with("channels.web_chat.auto_close.close.message: 7 is not a text"),
        "{e}"
    );
    // A locale added in the channel layer over the tenant's texts keeps the default.
    let tenant = r#"{"auto_close": {"close": {"after": "5m", "message": {"default": "Closed", "pt": "Fechado"}}},
                     "channels": {"web_chat": {"auto_close": {"close": {"message": {"pt-BR": "Encerrado"}}}}}}"#;
    let t = parse_ok(tenant, "{}");
    let texts = t
        .channel("web_chat")
        .and_then(|s| s.close.message.as_ref())
        .expect("texts");
    assert_eq!(texts.locales().collect::<Vec<_>>(), vec!["pt", "pt-br"]);
}

#[test]
fn unknown_placeholders_are_config_errors_wherever_the_text_was_written() {
    let e = err(&channel(
        r#"{"close": {"after": "5m", "message": "Bye {{user}}"}}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.close.message: unknown placeholder {{user}}"),
        "{e}"
    );
    let tenant = r#"{"auto_close": {"close": {"after": "5m", "message": {"default": "ok", "pt": "{{nome}}"}}}}"#;
    let e = err(tenant);
    assert!(
        e.starts_with("auto_close.close.message.pt: unknown placeholder {{nome}}"),
        "{e}"
    );
    let long = "x".repeat(MAX_TEXT_BYTES + 1);
    let e = err(&channel(&format!(
        r#"{{"close": {{"after": "5m", "message": "{long}"}}}}"#
    )));
    assert!(
        e.starts_with("channels.web_chat.auto_close.close.message: 2001 bytes long"),
        "{e}"
    );
}

#[test]
fn time_zones_and_business_hours_are_checked() {
    let e = err(&channel(
        r#"{"close": {"after": "5m"}, "time_zone": "Lisbon"}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.time_zone: \"Lisbon\" is not a time zone"),
        "{e}"
    );
    let e = err(&channel(
        r#"{"close": {"after": "5m"}, "business_hours": {"weekly": {"mon": ["09:00-18:00"]}, "holidays": ["12/25/2026"]}}"#,
    ));
    assert!(
        e.starts_with(
            "channels.web_chat.auto_close.business_hours.holidays[0]: \"12/25/2026\" is not a date"
        ),
        "{e}"
    );
    let e = err(&channel(
        r#"{"close": {"after": "5m"}, "business_hours": {"weekly": {"mon": ["9am-5pm"]}}}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.business_hours.weekly.mon[0]: \"9am-5pm\""),
        "{e}"
    );
    let e = err(&channel(
        r#"{"close": {"after": "5m"}, "business_hours": {"weekly": {}, "outside": "pause"}}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.business_hours.weekly: no open hours"),
        "{e}"
    );
    let e = err(&channel(
        r#"{"close": {"after": "5m"}, "business_hours": {"weekly": {"mon": ["09:00-18:00"]}, "outside": "sleep"}}"#,
    ));
    assert!(
        e.starts_with(
            "channels.web_chat.auto_close.business_hours.outside: unknown variant `sleep`"
        ),
        "{e}"
    );
}

#[test]
fn push_needs_a_known_webhook_when_any_step_pushes() {
    let e = err(&channel(
        r#"{"close": {"after": "2m"}, "push": {"webhook": "pager"}}"#,
    ));
    assert_eq!(
        e,
        r#"channels.web_chat.auto_close.push.webhook: unknown webhook "pager" (this tenant may call: mobile-push)"#
    );
    let e = err(&channel(r#"{"close": {"after": "2m", "push": true}}"#));
    assert!(
        e.starts_with("channels.web_chat.auto_close.close.push: push is on, but no push webhook"),
        "{e}"
    );
    let e = err(&channel(
        r#"{"warnings": [{"after": "1m", "message": "w", "push": true}], "close": {"after": "2m"}}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.warnings[0].push: push is on"),
        "{e}"
    );
}

#[test]
fn groups_need_their_attribute_and_stay_out_of_defaults() {
    let e = err(r#"{"groups": {"vip": {"auto_close": {"close": {"after": "1m"}}}}}"#);
    assert!(e.starts_with("group_attribute: missing"), "{e}");
    let e = err_with("{}", r#"{"groups": {"vip": {}}}"#);
    assert!(
        e.starts_with("defaults.groups.vip: groups belong to a tenant"),
        "{e}"
    );
    let e = err(
        r#"{"group_attribute": "dept", "groups": {"vip": {"auto_close": {"close": {"after": "x"}}}}}"#,
    );
    assert!(e.starts_with("groups.vip.auto_close.close.after:"), "{e}");
}

#[test]
fn other_settings_are_checked() {
    let e = err(&channel(r#"{"close": {"after": "2m"}, "started_by": []}"#));
    assert!(
        e.starts_with("channels.web_chat.auto_close.started_by: is empty"),
        "{e}"
    );
    let e = err(&channel(
        r#"{"close": {"after": "2m"}, "started_by": ["customer"]}"#,
    ));
    assert!(
        e.starts_with("channels.web_chat.auto_close.started_by[0]: unknown variant `customer`"),
        "{e}"
    );
    let e = err(&channel(r#"{"close": {"after": "2m"}, "max_cycles": 0}"#));
    assert!(
        e.starts_with("channels.web_chat.auto_close.max_cycles: must be at least 1"),
        "{e}"
    );
    let e = err(&channel(
        r#"{"close": {"after": "2m"}, "attributes": {"locale": ""}}"#,
    ));
    assert_eq!(
        e,
        "channels.web_chat.auto_close.attributes.locale: is empty"
    );
    let t = parse_ok(
        &channel(
            r#"{"close": {"after": "2m", "message": "{{agent_name}}"}, "attributes": {"opt_out": "no_autoclose"}}"#,
        ),
        "",
    );
    let s = t.channel("web_chat").expect("on");
    assert_eq!(s.attributes.opt_out.as_deref(), Some("no_autoclose"));
    assert_eq!(s.attributes.locale, "locale");
    assert!(t.needs_agent_name());
    assert!(!parse_ok(TWO_STEPS, "{}").needs_agent_name());
}

#[test]
fn keys_with_dots_are_never_taken_for_paths() {
    // Found by fuzzing: a key "close.af" beside a "close" object was placed in the wrong
    // layer, because "close.af" read as "close" then "af".
    let e = err_with(
        "{}",
        r#"{"channels": {"web_chat": {"auto_close": {"close.af": [], "close": {"after": "1m"}}}}}"#,
    );
    assert!(
        e.starts_with(
            r#"defaults.channels.web_chat.auto_close["close.af"]: unknown field `close.af`"#
        ),
        "{e}"
    );
    let e = err(r#"{"channels": {"web.chat": {"auto_close": {"close": {"after": "x"}}}}}"#);
    assert!(
        e.starts_with(r#"channels["web.chat"].auto_close.close.after:"#),
        "{e}"
    );
    let e = err(&channel(
        r#"{"close": {"after": "1m", "message": {"default": "x", "pt.BR": "y"}}}"#,
    ));
    assert!(
        e.starts_with(
            r#"channels.web_chat.auto_close.close.message["pt.BR"]: "pt.BR" is not a locale key"#
        ),
        "{e}"
    );
}
