//! The survey policy as pure functions: which chats deserve a survey, and what the
//! survey service is told. Unit tested natively; `component.rs` is the glue.

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

/// A tenant's survey settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Survey {
    /// The webhook of the tenant's survey service.
    pub webhook: String,
    /// End-user messages a chat needs before it is worth a survey (a chat the user
    /// never answered in is not).
    pub min_user_messages: u32,
    /// Channels that get surveys; empty: all.
    pub channels: Vec<String>,
    /// Survey also chats that a plugin (such as auto-close) ended for inactivity.
    pub after_inactivity: bool,
}

/// A tenant's settings document (the operator's `defaults` for this component share
/// its shape).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "CSAT survey settings")]
struct RawTenant {
    /// When to ask the tenant's survey service for a satisfaction survey.
    survey: RawSurvey,
}

/// The survey settings.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RawSurvey {
    /// The webhook of the tenant's survey service (one the tenant may call).
    webhook: String,
    /// End-user messages a chat needs before it is worth a survey.
    #[serde(default = "one")]
    min_user_messages: u32,
    /// Channels that get surveys; empty or absent: all.
    #[serde(default)]
    channels: Vec<String>,
    /// Survey also chats that a plugin (such as auto-close) ended for inactivity.
    #[serde(default)]
    after_inactivity: bool,
}

/// The JSON Schema of a tenant's settings, as text (`about.info`).
pub fn schema() -> String {
    serde_json::to_string(&schemars::schema_for!(RawTenant)).unwrap_or_default()
}

/// What `survey` makes the component do, in words (`about.explain`).
pub fn explain(survey: &Survey) -> String {
    let channels = if survey.channels.is_empty() {
        "any channel".to_owned()
    } else {
        format!("channel {}", survey.channels.join(" or "))
    };
    let messages = match survey.min_user_messages {
        0 => "whether or not the end user wrote".to_owned(),
        1 => "in which the end user wrote at least once".to_owned(),
        n => format!("in which the end user wrote at least {n} times"),
    };
    let inactivity = if survey.after_inactivity {
        "also when a plugin ended it (auto-close for inactivity)"
    } else {
        "not when a plugin ended it (auto-close for inactivity)"
    };
    format!(
        "when a chat on {channels} ends, {messages}: a survey request through webhook {:?}\n\
         ended by the agent, the end user or the gateway: yes; {inactivity}\n",
        survey.webhook
    )
}

fn one() -> u32 {
    1
}

/// Parses a tenant's document over the operator's `defaults` for this component (the
/// tenant's `survey` keys win); errors are `(dotted path, reason)`.
pub fn parse(text: &str, defaults: &str, webhooks: &[String]) -> Result<Survey, (String, String)> {
    let json = |text: &str| -> Result<Value, (String, String)> {
        if text.trim().is_empty() {
            return Ok(json!({}));
        }
        serde_json::from_str(text).map_err(|e| (String::new(), format!("not valid JSON: {e}")))
    };
    let mut value = json(defaults)?;
    let tenant = json(text)?;
    // One level of layering is all this component needs: `survey` keys override.
    if let (Some(base), Some(over)) = (value.as_object_mut(), tenant.as_object()) {
        for (key, over) in over {
            match (base.get_mut(key), over) {
                (Some(Value::Object(base)), Value::Object(over)) => {
                    base.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
                }
                _ => {
                    base.insert(key.clone(), over.clone());
                }
            }
        }
    }
    let raw: RawTenant = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        (
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })?;
    if !webhooks.contains(&raw.survey.webhook) {
        return Err((
            "survey.webhook".to_owned(),
            format!(
                "unknown webhook {:?} (this tenant may call: {})",
                raw.survey.webhook,
                webhooks.join(", ")
            ),
        ));
    }
    Ok(Survey {
        webhook: raw.survey.webhook,
        min_user_messages: raw.survey.min_user_messages,
        channels: raw.survey.channels,
        after_inactivity: raw.survey.after_inactivity,
    })
}

/// How a chat ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The agent, the user or the gateway closed it.
    External,
    /// A plugin closed it, with this reason (auto-close says `inactivity`).
    Plugin(String),
}

/// The per-session counter kept in the host (`sessions.state`): 4 bytes, little endian.
pub fn decode_count(bytes: &[u8]) -> u32 {
    bytes.try_into().map(u32::from_le_bytes).unwrap_or(0)
}

/// The state after one more end-user message, or `None` when the count no longer
/// matters (it reached the threshold), which saves the host a write per message.
pub fn count_message(survey: &Survey, count: u32) -> Option<Vec<u8>> {
    (count < survey.min_user_messages).then(|| (count + 1).to_le_bytes().to_vec())
}

/// The survey request's `data`, when the chat deserves one.
pub fn on_close(
    survey: &Survey,
    channel: &str,
    count: u32,
    ending: &Ending,
    session: &str,
    locale: Option<&str>,
) -> Option<String> {
    if !survey.channels.is_empty() && !survey.channels.iter().any(|c| c == channel) {
        return None;
    }
    if count < survey.min_user_messages {
        return None;
    }
    let ended_by = match ending {
        Ending::External => "participant".to_owned(),
        Ending::Plugin(reason) if survey.after_inactivity => format!("plugin:{reason}"),
        Ending::Plugin(_) => return None,
    };
    Some(
        json!({"session": session, "channel": channel, "ended_by": ended_by, "locale": locale})
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey() -> Survey {
        parse(
            r#"{"survey": {"min_user_messages": 2, "channels": ["web_chat"]}}"#,
            r#"{"survey": {"webhook": "surveys", "min_user_messages": 1}}"#,
            &["surveys".to_owned()],
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn only_chats_the_user_took_part_in_get_a_survey() {
        let s = survey();
        let mut count = 0;
        while let Some(state) = count_message(&s, count) {
            count = decode_count(&state);
        }
        assert_eq!(count, 2);
        assert!(on_close(&s, "web_chat", 1, &Ending::External, "s1", None).is_none());
        let data =
            on_close(&s, "web_chat", 2, &Ending::External, "s1", Some("pt")).unwrap_or_default();
        assert_eq!(
            data,
            r#"{"session":"s1","channel":"web_chat","ended_by":"participant","locale":"pt"}"#
        );
        assert!(on_close(&s, "http_api", 5, &Ending::External, "s1", None).is_none());
        assert!(
            on_close(
                &s,
                "web_chat",
                5,
                &Ending::Plugin("inactivity".into()),
                "s1",
                None
            )
            .is_none()
        );
    }

    #[test]
    fn the_explanation_says_who_gets_a_survey_and_when() {
        let text = explain(&survey());
        assert!(
            text.starts_with("when a chat on channel web_chat ends, in which the end user wrote at least 2 times: a survey request through webhook \"surveys\"\n"),
            "{text}"
        );
        assert!(text.contains("not when a plugin ended it"), "{text}");
        let schema = schema();
        assert!(schema.contains("\"min_user_messages\""), "{schema}");
    }

    #[test]
    fn bad_settings_name_the_field() {
        let e = parse(
            r#"{"survey": {"webhook": "nope"}}"#,
            "{}",
            &["surveys".to_owned()],
        )
        .unwrap_err();
        assert_eq!(e.0, "survey.webhook");
        let e = parse(
            r#"{"survey": {"webhook": "surveys", "min_messages": 1}}"#,
            "",
            &["surveys".to_owned()],
        )
        .unwrap_err();
        assert_eq!(e.0, "survey.min_messages");
        let e = parse(r#"{}"#, "{}", &[]).unwrap_err();
        assert!(e.1.contains("missing field `survey`"), "{e:?}");
    }
}
