//! The `data` object of a push webhook: what a customer's push service needs to notify
//! the end user's device.

use std::time::{Duration, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::policy::Push;

/// Who and where a push is about; names resolved by the glue from host handles.
#[derive(Clone, Copy, Debug)]
pub struct Recipient<'a> {
    /// The tenant's name.
    pub tenant: &'a str,
    /// The gateway's session id.
    pub session: &'a str,
    /// The channel's name.
    pub channel: &'a str,
    /// The attributes the gateway passed when the session opened.
    pub attributes: &'a [(String, String)],
}

/// Latest time RFC 3339 can show (9999-12-31T23:59:59Z), in ms.
pub const MAX_RFC3339_MS: u64 = 253_402_300_799_999;

/// Formats milliseconds since the Unix epoch as RFC 3339 (UTC, whole seconds); times
/// past year 9999 show as the last second of it rather than failing.
pub fn rfc3339(ms: u64) -> String {
    let ms = ms.min(MAX_RFC3339_MS);
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Builds the webhook `data` object as JSON text of at most `max_bytes`. When the
/// whole does not fit, the end user's attributes are left out first, then the message
/// is shortened (with `…`): a shorter push beats none.
pub fn data(push: &Push, to: Recipient<'_>, max_bytes: usize) -> String {
    let end_user: Map<String, Value> = to
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let build = |message: &str, end_user: &Map<String, Value>| {
        json!({
            "tenant": to.tenant,
            "session": to.session,
            "channel": to.channel,
            "message": message,
            "closes_at": rfc3339(push.closes_at),
            "end_user": end_user,
        })
        .to_string()
    };
    let full = build(&push.message, &end_user);
    if full.len() <= max_bytes {
        return full;
    }
    let bare = build(&push.message, &Map::new());
    if bare.len() <= max_bytes {
        return bare;
    }
    // The longest prefix of the message that fits, found by bisection (JSON escapes
    // make the size of a prefix hard to predict).
    let shortened = |keep: usize| build(&format!("{}…", &push.message[..keep]), &Map::new());
    let boundaries: Vec<usize> = push.message.char_indices().map(|(i, _)| i).collect();
    let (mut low, mut high) = (0, boundaries.len());
    while low < high {
        let middle = (low + high).div_ceil(2);
        if shortened(boundaries[middle]).len() <= max_bytes {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    shortened(boundaries.get(low).copied().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Notice;

    #[test]
    fn carries_names_text_deadline_and_attributes() {
        let push = Push {
            notice: Notice::Warning,
            webhook: "p".into(),
            message: "2 min left".into(),
            closes_at: 301_000,
            key: "0-0".into(),
        };
        let attributes = vec![("locale".to_owned(), "en".to_owned())];
        let to = Recipient {
            tenant: "acme",
            session: "s1",
            channel: "web_chat",
            attributes: &attributes,
        };
        let text = data(&push, to, 3072);
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value,
            json!({"tenant":"acme","session":"s1","channel":"web_chat","message":"2 min left",
                   "closes_at":"1970-01-01T00:05:01Z","end_user":{"locale":"en"}})
        );
    }

    #[test]
    fn too_large_data_drops_attributes_then_shortens_the_message() {
        let push = Push {
            notice: Notice::Warning,
            webhook: "p".into(),
            message: "é\"x".repeat(400),
            closes_at: 301_000,
            key: "0-0".into(),
        };
        let attributes = vec![("user_agent".to_owned(), "M".repeat(2_000))];
        let to = Recipient {
            tenant: "acme",
            session: "s1",
            channel: "web_chat",
            attributes: &attributes,
        };
        let roomy = data(&push, to, 8_000);
        assert!(roomy.contains("user_agent"));
        let no_attributes = data(&push, to, 2_500);
        let value: Value = serde_json::from_str(&no_attributes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(value["end_user"], json!({}));
        assert_eq!(value["message"], json!(push.message));
        for budget in [300, 600, 1_000] {
            let short = data(&push, to, budget);
            assert!(short.len() <= budget, "{} > {budget}", short.len());
            let value: Value = serde_json::from_str(&short).unwrap_or_else(|e| panic!("{e}"));
            let message = value["message"].as_str().unwrap_or_default();
            assert!(message.ends_with('…') && message.len() > 20, "{message}");
        }
    }

    #[test]
    fn far_future_times_do_not_fail() {
        assert_eq!(rfc3339(u64::MAX), "9999-12-31T23:59:59Z");
    }
}
