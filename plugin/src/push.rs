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

/// Formats milliseconds since the Unix epoch as RFC 3339 (UTC, whole seconds).
pub fn rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Builds the webhook `data` object as JSON text.
pub fn data(push: &Push, to: Recipient<'_>) -> String {
    let end_user: Map<String, Value> = to
        .attributes
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    json!({
        "tenant": to.tenant,
        "session": to.session,
        "channel": to.channel,
        "message": push.message,
        "closes_at": rfc3339(push.closes_at),
        "end_user": end_user,
    })
    .to_string()
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
        };
        let attributes = vec![("locale".to_owned(), "en".to_owned())];
        let text = data(
            &push,
            Recipient {
                tenant: "acme",
                session: "s1",
                channel: "web_chat",
                attributes: &attributes,
            },
        );
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            value,
            json!({"tenant":"acme","session":"s1","channel":"web_chat","message":"2 min left",
                   "closes_at":"1970-01-01T00:05:01Z","end_user":{"locale":"en"}})
        );
    }
}
