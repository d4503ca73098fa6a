//! A tenant's auto-close configuration: parsed, checked and turned into [`Settings`].
//!
//! Everything that can be wrong with a configuration is found here, when the tenant is
//! configured: unknown keys, wrong types, bad durations, unknown webhooks, unknown
//! placeholders. Each error carries the dotted path of the offending field.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::template::Template;
use autoclose_duration::Duration;

/// Longest message text a tenant may configure, in bytes. Keeps posts and push bodies small.
pub const MAX_TEXT_BYTES: usize = 2_000;

/// Why a configuration was refused, with the dotted path of the field (relative to the
/// tenant's document).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path, e.g. `channels.web_chat.auto_close.warning_after`; empty for the root.
    pub path: String,
    /// What is wrong.
    pub reason: String,
}

impl ConfigError {
    fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

/// The configuration of one tenant: settings per channel name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TenantSettings {
    channels: BTreeMap<String, Settings>,
}

impl TenantSettings {
    /// The auto-close settings of `channel`, if auto-close is on there.
    pub fn channel(&self, channel: &str) -> Option<&Settings> {
        self.channels.get(channel)
    }
}

/// Auto-close as configured for one channel of one tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// The warning before the close, if any.
    pub warning: Option<Warning>,
    /// With a warning: time from the warning to the close. Without: time from the last
    /// agent or bot message to the close.
    pub close_after: Duration,
    /// Posted into the chat just before the close, if set.
    pub close_message: Option<Template>,
    /// The push webhook, if any.
    pub push: Option<Push>,
}

/// The warning step of a cycle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// Idle time after the last agent or bot message before the warning.
    pub after: Duration,
    /// The text posted into the chat (and pushed).
    pub message: Template,
}

/// Which webhook to call, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Push {
    /// Name of a webhook in the operator's configuration.
    pub webhook: String,
    /// Call it when the warning is posted.
    pub on_warning: bool,
    /// Call it when the session is closed for inactivity.
    pub on_close: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    #[serde(default)]
    channels: BTreeMap<String, RawChannel>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    /// Absent: auto-close is off for the channel.
    #[serde(default)]
    auto_close: Option<RawAutoClose>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutoClose {
    #[serde(default = "enabled_by_default")]
    enabled: bool,
    warning_after: Option<Duration>,
    close_after: Option<Duration>,
    warning_message: Option<String>,
    close_message: Option<String>,
    push: Option<RawPush>,
}

fn enabled_by_default() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPush {
    webhook: String,
    #[serde(default)]
    on_warning: bool,
    #[serde(default)]
    on_close: bool,
}

/// Parses and checks a tenant's configuration. `webhooks` are the webhook names the
/// operator configured, against which `push.webhook` is checked.
pub fn parse(text: &str, webhooks: &[String]) -> Result<TenantSettings, ConfigError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ConfigError::at("", format!("not valid JSON: {e}")))?;
    // Deserialising from a `Value` keeps positions out of serde's messages: they would
    // point into the host's re-serialised text, not into the operator's file.
    let raw: RawTenant = serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        ConfigError::at(
            if path == "." { String::new() } else { path },
            e.into_inner().to_string(),
        )
    })?;
    let mut channels = BTreeMap::new();
    for (name, channel) in raw.channels {
        let path = format!("channels.{name}.auto_close");
        let Some(auto_close) = channel.auto_close else {
            continue;
        };
        if let Some(settings) = check_auto_close(&path, auto_close, webhooks)? {
            channels.insert(name, settings);
        }
    }
    Ok(TenantSettings { channels })
}

fn check_auto_close(
    path: &str,
    raw: RawAutoClose,
    webhooks: &[String],
) -> Result<Option<Settings>, ConfigError> {
    if !raw.enabled {
        return Ok(None);
    }
    let close_after = raw.close_after.ok_or_else(|| {
        ConfigError::at(
            format!("{path}.close_after"),
            "missing (required while enabled)",
        )
    })?;
    let warning = match (raw.warning_after, raw.warning_message) {
        (Some(after), Some(message)) => Some(Warning {
            after,
            message: check_text(&format!("{path}.warning_message"), &message)?,
        }),
        (None, None) => None,
        (Some(_), None) => {
            return Err(ConfigError::at(
                format!("{path}.warning_message"),
                "missing: warning_after and warning_message go together",
            ));
        }
        (None, Some(_)) => {
            return Err(ConfigError::at(
                format!("{path}.warning_after"),
                "missing: warning_after and warning_message go together",
            ));
        }
    };
    let close_message = raw
        .close_message
        .map(|text| check_text(&format!("{path}.close_message"), &text))
        .transpose()?;
    let push = raw
        .push
        .map(|push| check_push(&format!("{path}.push"), push, webhooks, warning.is_some()))
        .transpose()?;
    Ok(Some(Settings {
        warning,
        close_after,
        close_message,
        push,
    }))
}

fn check_text(path: &str, text: &str) -> Result<Template, ConfigError> {
    if text.len() > MAX_TEXT_BYTES {
        return Err(ConfigError::at(
            path,
            format!(
                "{} bytes long; at most {MAX_TEXT_BYTES} are allowed",
                text.len()
            ),
        ));
    }
    Template::parse(text).map_err(|reason| ConfigError::at(path, reason))
}

fn check_push(
    path: &str,
    raw: RawPush,
    webhooks: &[String],
    has_warning: bool,
) -> Result<Push, ConfigError> {
    if !webhooks.contains(&raw.webhook) {
        let known = if webhooks.is_empty() {
            "no webhooks are configured".to_owned()
        } else {
            format!("configured: {}", webhooks.join(", "))
        };
        return Err(ConfigError::at(
            format!("{path}.webhook"),
            format!("unknown webhook {:?} ({known})", raw.webhook),
        ));
    }
    if raw.on_warning && !has_warning {
        return Err(ConfigError::at(
            format!("{path}.on_warning"),
            "set, but this channel has no warning (add warning_after and warning_message)",
        ));
    }
    Ok(Push {
        webhook: raw.webhook,
        on_warning: raw.on_warning,
        on_close: raw.on_close,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hooks() -> Vec<String> {
        vec!["mobile-push".to_owned()]
    }

    fn err(text: &str) -> String {
        parse(text, &hooks()).map(|_| ()).unwrap_err().to_string()
    }

    const GOOD: &str = r#"{"channels": {"web_chat": {"auto_close": {
        "warning_after": "3m", "close_after": "2m",
        "warning_message": "Still there? Closing in {{minutes_left}} minutes.",
        "close_message": "Closed.",
        "push": {"webhook": "mobile-push", "on_warning": true}}}}}"#;

    #[test]
    fn accepts_the_documented_example() {
        let tenant = parse(GOOD, &hooks()).unwrap_or_else(|e| panic!("{e}"));
        let settings = tenant.channel("web_chat").expect("web_chat configured");
        assert_eq!(settings.close_after.as_ms(), 120_000);
        assert_eq!(
            settings.warning.as_ref().map(|w| w.after.as_ms()),
            Some(180_000)
        );
        assert_eq!(
            settings.push,
            Some(Push {
                webhook: "mobile-push".into(),
                on_warning: true,
                on_close: false
            })
        );
        assert!(tenant.channel("http_api").is_none());
    }

    #[test]
    fn disabled_channels_are_absent() {
        let tenant = parse(
            r#"{"channels":{"web_chat":{"auto_close":{"enabled":false}}}}"#,
            &[],
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(tenant.channel("web_chat").is_none());
        let tenant = parse(r#"{"channels":{"sms":{}}}"#, &[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(
            tenant.channel("sms").is_none(),
            "a channel without auto_close is off"
        );
    }

    #[test]
    fn names_the_path_of_a_bad_duration() {
        assert_eq!(
            err(
                r#"{"channels":{"web_chat":{"auto_close":{"warning_after":"3 minutes","close_after":"2m","warning_message":"x"}}}}"#
            ),
            r#"channels.web_chat.auto_close.warning_after: "3 minutes" is not a duration (try "3m")"#
        );
    }

    #[test]
    fn names_unknown_keys_and_wrong_types() {
        let e = err(
            r#"{"channels":{"web_chat":{"auto_close":{"close_after":"2m","colse_message":"x"}}}}"#,
        );
        assert!(
            e.starts_with(
                "channels.web_chat.auto_close.colse_message: unknown field `colse_message`"
            ),
            "{e}"
        );
        let e = err(r#"{"channels":{"web_chat":{"auto_close":{"close_after":120}}}}"#);
        assert!(
            e.starts_with("channels.web_chat.auto_close.close_after: invalid type: integer `120`"),
            "{e}"
        );
        let e = err(r#"{"tenants":{}}"#);
        assert!(e.starts_with("tenants: unknown field `tenants`"), "{e}");
    }

    #[test]
    fn names_unknown_webhooks_and_placeholders() {
        let e = err(
            r#"{"channels":{"c":{"auto_close":{"close_after":"2m","push":{"webhook":"pager","on_close":true}}}}}"#,
        );
        assert_eq!(
            e,
            r#"channels.c.auto_close.push.webhook: unknown webhook "pager" (configured: mobile-push)"#
        );
        let e = err(
            r#"{"channels":{"c":{"auto_close":{"close_after":"2m","close_message":"Bye {{user}}"}}}}"#,
        );
        assert!(
            e.starts_with("channels.c.auto_close.close_message: unknown placeholder {{user}}"),
            "{e}"
        );
    }

    #[test]
    fn warning_fields_go_together() {
        let e =
            err(r#"{"channels":{"c":{"auto_close":{"close_after":"2m","warning_after":"1m"}}}}"#);
        assert_eq!(
            e,
            "channels.c.auto_close.warning_message: missing: warning_after and warning_message go together"
        );
        let e =
            err(r#"{"channels":{"c":{"auto_close":{"close_after":"2m","warning_message":"hi"}}}}"#);
        assert_eq!(
            e,
            "channels.c.auto_close.warning_after: missing: warning_after and warning_message go together"
        );
        let e = err(
            r#"{"channels":{"c":{"auto_close":{"warning_after":"1m","warning_message":"hi"}}}}"#,
        );
        assert_eq!(
            e,
            "channels.c.auto_close.close_after: missing (required while enabled)"
        );
        let e = err(
            r#"{"channels":{"c":{"auto_close":{"close_after":"2m","push":{"webhook":"mobile-push","on_warning":true}}}}}"#,
        );
        assert!(
            e.starts_with("channels.c.auto_close.push.on_warning: set, but"),
            "{e}"
        );
    }

    #[test]
    fn rejects_overlong_texts() {
        let long = "x".repeat(MAX_TEXT_BYTES + 1);
        let e = err(&format!(
            r#"{{"channels":{{"c":{{"auto_close":{{"close_after":"2m","close_message":"{long}"}}}}}}}}"#
        ));
        assert!(
            e.starts_with("channels.c.auto_close.close_message: 2001 bytes long"),
            "{e}"
        );
    }
}
