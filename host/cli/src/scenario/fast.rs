//! The fast path for scenario lines: one typed pass over the text, no intermediate
//! `serde_json::Value`, which made parsing cost more than replaying.
//!
//! It only ever says "yes, this is the event" or "ask the precise parser": any line
//! it is unsure of (an error, a `webhook_response`, a duplicate key, a field that
//! does not belong to the line's type) goes to [`super::parse_line`]'s careful path,
//! which names the field at fault. So errors read exactly as before, and what this
//! accepts is what the careful path accepts (a property test checks both agree).

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer};

use autoclose_core::event::{
    ClosedEvent, GatewayEvent, HoldEvent, MessageEvent, OpenedEvent, PresenceEvent, Sender,
    SessionRef, Visibility,
};

/// Every field any event line may carry, each `Some` exactly when the line has the
/// key (even with `null`): a key that does not belong to the line's type then falls
/// back and is refused by the careful path. Fields that accept `null` there (`id`,
/// `text`, `origin`, `sender_name`, a message's `channel`, `for`) are
/// `Option<Option<_>>` here; a `null` anywhere else fails the typed read and falls back
/// too.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlatLine {
    at_ms: u64,
    /// A string, not [`Kind`]: serde would also read an enum from `{"message": null}`,
    /// which the careful path refuses.
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, deserialize_with = "present")]
    tenant: Option<String>,
    #[serde(default, deserialize_with = "present")]
    session: Option<String>,
    /// Required on `session_opened`, optional on `message`.
    #[serde(default, deserialize_with = "present")]
    channel: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    attributes: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    sender: Option<Sender>,
    #[serde(default, deserialize_with = "present")]
    id: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    text: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    origin: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    sender_name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    attachment: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    state: Option<Visibility>,
    #[serde(default, rename = "for", deserialize_with = "present")]
    duration: Option<Option<autoclose_duration::Duration>>,
}

/// The line types this path knows; anything else (`webhook_response`, a typo) falls back.
enum Kind {
    SessionOpened,
    Message,
    Presence,
    SessionClosed,
    Hold,
    Queued,
    Transferred,
}

/// A field given in the line: `Some` of its value.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// The line's time and event, or `None` when the careful path must decide. The caller
/// still checks the sizes and the time bound (the careful path checks them itself).
pub(super) fn event_line(raw: &str) -> Option<(u64, GatewayEvent)> {
    // serde reads a struct from an array too; the careful path wants an object.
    if !raw.trim_start().starts_with('{') {
        return None;
    }
    let line: FlatLine = serde_json::from_str(raw).ok()?;
    let FlatLine {
        at_ms,
        kind,
        tenant,
        session,
        channel,
        attributes,
        sender,
        id,
        text,
        origin,
        sender_name,
        attachment,
        state,
        duration,
    } = line;
    let kind = match kind.as_str() {
        "session_opened" => Kind::SessionOpened,
        "message" => Kind::Message,
        "presence" => Kind::Presence,
        "session_closed" => Kind::SessionClosed,
        "hold" => Kind::Hold,
        "queued" => Kind::Queued,
        "transferred" => Kind::Transferred,
        _ => return None,
    };
    let (tenant, session) = (tenant?, session?);
    let message_keys = sender.is_some()
        || id.is_some()
        || text.is_some()
        || origin.is_some()
        || sender_name.is_some()
        || attachment.is_some();
    let other_keys = |allowed: &[&str]| {
        [
            ("channel", channel.is_some()),
            ("attributes", attributes.is_some()),
            ("state", state.is_some()),
            ("for", duration.is_some()),
        ]
        .iter()
        .any(|(key, given)| *given && !allowed.contains(key))
    };
    let event = match kind {
        Kind::SessionOpened if !message_keys && !other_keys(&["channel", "attributes"]) => {
            GatewayEvent::SessionOpened(OpenedEvent {
                tenant,
                session,
                channel: channel??,
                attributes: attributes.unwrap_or_default(),
                reopen: false,
            })
        }
        Kind::Message if !other_keys(&["channel"]) => GatewayEvent::Message(MessageEvent {
            tenant,
            session,
            sender: sender?,
            id: id.flatten(),
            text: text.flatten(),
            channel: channel.flatten(),
            origin: origin.flatten(),
            sender_name: sender_name.flatten(),
            attachment: attachment.unwrap_or(false),
            seq: None,
        }),
        Kind::Presence if !message_keys && !other_keys(&["state"]) => {
            GatewayEvent::Presence(PresenceEvent {
                tenant,
                session,
                state: state?,
            })
        }
        Kind::Hold if !message_keys && !other_keys(&["for"]) => GatewayEvent::Hold(HoldEvent {
            tenant,
            session,
            duration: duration.flatten(),
        }),
        _ if message_keys || other_keys(&[]) => return None,
        Kind::SessionClosed => GatewayEvent::SessionClosed(ClosedEvent { tenant, session }),
        Kind::Queued => GatewayEvent::Queued(SessionRef { tenant, session }),
        Kind::Transferred => GatewayEvent::Transferred(SessionRef { tenant, session }),
        Kind::SessionOpened | Kind::Message | Kind::Presence | Kind::Hold => return None,
    };
    Some((at_ms, event))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::super::{Item, careful_line, parse_line};
    use super::event_line;

    /// Values a key may take: right ones for some key, `null` and wrong types.
    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            Just(json!("acme")),
            Just(json!("s1")),
            Just(json!("web_chat")),
            Just(json!("agent")),
            Just(json!("end_user")),
            Just(json!("hidden")),
            Just(json!("10m")),
            Just(json!("message")),
            Just(json!({"agent": null})),
            Just(json!({"locale": "en"})),
            Just(json!({"locale": 1})),
            Just(json!(["acme"])),
            Just(json!(true)),
            Just(json!(7)),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!(u64::MAX)),
            Just(json!("x".repeat(300))),
        ]
    }

    /// Every event type, and types only the careful path takes or refuses.
    fn types() -> Vec<&'static str> {
        autoclose_core::event::EVENT_TYPES
            .into_iter()
            .chain(["webhook_response", "Message", ""])
            .collect()
    }

    const KEYS: [&str; 14] = [
        "tenant",
        "session",
        "channel",
        "attributes",
        "sender",
        "id",
        "text",
        "origin",
        "sender_name",
        "attachment",
        "state",
        "for",
        "webhook",
        "unknown",
    ];

    /// A valid line of each type, with every optional key.
    fn valid(kind: &str) -> serde_json::Map<String, Value> {
        let extra = match kind {
            "session_opened" => json!({"channel": "web_chat", "attributes": {"locale": "en"}}),
            "message" => json!({"sender": "agent", "id": "m1", "text": "Hi", "channel": "web_chat",
                                "origin": "auto-close", "sender_name": "Ana", "attachment": true}),
            "presence" => json!({"state": "hidden"}),
            "hold" => json!({"for": "10m"}),
            "webhook_response" => json!({"webhook": "w", "status": 200}),
            _ => json!({}),
        };
        let mut object = serde_json::Map::new();
        object.insert("at_ms".into(), json!(5));
        object.insert("type".into(), json!(kind));
        object.insert("tenant".into(), json!("acme"));
        object.insert("session".into(), json!("s1"));
        if let Value::Object(extra) = extra {
            object.extend(extra);
        }
        object
    }

    /// A valid line, then up to three changes: a key removed, added or given another
    /// value (right for some key, `null`, or the wrong type), the type or time changed.
    fn line() -> impl Strategy<Value = String> {
        (
            prop::sample::select(types()),
            prop::collection::vec((0..4u8, 0..KEYS.len(), value()), 0..4),
            0..4u8,
        )
            .prop_map(|(kind, changes, shape)| {
                let mut object = valid(kind);
                for (op, key, value) in changes {
                    match op {
                        0 => {
                            let victim = object.keys().nth(key % object.len()).cloned();
                            if let Some(victim) = victim {
                                object.remove(&victim);
                            }
                        }
                        1 => {
                            object.insert(["type", "at_ms"][key % 2].into(), value);
                        }
                        _ => {
                            object.insert(KEYS[key].into(), value);
                        }
                    }
                }
                let text = Value::Object(object).to_string();
                match shape {
                    // A duplicate key, which only the careful path takes (last wins).
                    1 => text.replacen('{', r#"{"tenant":"first","#, 1),
                    // Surrounding space.
                    2 => format!("  {text} "),
                    _ => text,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// What the fast path accepts, the careful path accepts as the same event;
        /// and through `parse_line` every line gets the careful path's verdict.
        #[test]
        fn the_fast_path_agrees_with_the_careful_one(raw in line()) {
            let careful = careful_line(&raw);
            if let Some((at, event)) = event_line(&raw)
                && at <= super::super::MAX_AT_MS
                && event.check_sizes().is_ok()
            {
                prop_assert_eq!(careful.clone(), Ok((at, Item::Event(event))));
            }
            prop_assert_eq!(parse_line(&raw), careful);
        }
    }

    #[test]
    fn the_fast_path_takes_the_documented_lines() {
        for raw in [
            r#"{"at_ms":0,"type":"session_opened","tenant":"acme","session":"s1","channel":"web_chat","attributes":{"locale":"en"}}"#,
            r#"{"at_ms":1,"type":"message","tenant":"acme","session":"s1","sender":"agent","id":"m1","text":"Hi","sender_name":"Ana","attachment":true,"channel":null}"#,
            r#"{"at_ms":2,"type":"presence","tenant":"acme","session":"s1","state":"hidden"}"#,
            r#"{"at_ms":3,"type":"hold","tenant":"acme","session":"s1","for":"10m"}"#,
            r#"{"at_ms":4,"type":"queued","tenant":"acme","session":"s1"}"#,
            r#"{"at_ms":5,"type":"transferred","tenant":"acme","session":"s1"}"#,
            r#"{"at_ms":6,"type":"session_closed","tenant":"acme","session":"s1"}"#,
        ] {
            let fast = event_line(raw).map(|(at, event)| (at, Item::Event(event)));
            assert_eq!(fast, careful_line(raw).ok(), "{raw}");
            assert!(fast.is_some(), "the fast path takes {raw}");
        }
        for raw in [
            r#"[0,"session_closed","acme","s1"]"#,
            r#"{"at_ms":0,"type":{"session_closed":null},"tenant":"acme","session":"s1"}"#,
            r#"{"at_ms":0,"type":"session_closed","tenant":"acme","session":"s1","for":null}"#,
            r#"{"at_ms":0,"type":"session_opened","tenant":"acme","session":"s1","channel":null}"#,
            r#"{"at_ms":0,"type":"webhook_response","webhook":"w","status":200}"#,
        ] {
            assert!(event_line(raw).is_none(), "falls back: {raw}");
        }
    }
}
