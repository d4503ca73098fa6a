//! The configuration as written: serde types, and the JSON Schema editors validate
//! config files with (generated from these types, reported through `about.info`).
//!
//! Every field of a layer is optional because layers override one another; what must
//! be set is checked on the merged settings (see [`super::check`]).

use std::collections::BTreeMap;

use autoclose_duration::Duration;
use serde::Deserialize;
use serde_json::{Map, Value};

/// A tenant's document (and the operator's defaults, which have the same shape
/// without groups).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawTenant {
    /// Settings for every channel of the tenant.
    #[serde(default)]
    #[schemars(with = "Option<RawAutoClose>")]
    pub auto_close: Option<Map<String, Value>>,
    /// Settings per channel (widget kind, e.g. `web_chat`, `http_api`), over the
    /// tenant's.
    #[serde(default)]
    pub channels: BTreeMap<String, RawScope>,
    /// Named groups (departments, queues) a session selects through the session
    /// attribute `group_attribute`; over the channel's settings.
    #[serde(default)]
    pub groups: BTreeMap<String, RawScope>,
    /// The session attribute whose value names the session's group.
    #[serde(default)]
    pub group_attribute: Option<String>,
}

/// The settings of one channel or group.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawScope {
    /// Auto-close settings overriding the broader layers, key by key.
    #[serde(default)]
    #[schemars(with = "Option<RawAutoClose>")]
    pub auto_close: Option<Map<String, Value>>,
}

/// One layer of auto-close settings. Times are idle time since the message that
/// started the cycle.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAutoClose {
    /// `false` turns auto-close off here. Auto-close is on wherever the merged
    /// settings have a `close`.
    pub enabled: Option<bool>,
    /// Which senders start (or restart) a cycle: `agent`, `bot` or both (default).
    pub started_by: Option<Vec<RawStarter>>,
    /// Warnings before the close, in order, at most 10.
    pub warnings: Option<Vec<RawWarning>>,
    /// The close.
    pub close: Option<RawClose>,
    /// The push webhook.
    pub push: Option<RawPush>,
    /// IANA time zone for business hours and `{{closes_at}}` (default `UTC`).
    pub time_zone: Option<String>,
    /// Opening hours; without them every hour counts.
    pub business_hours: Option<RawHours>,
    /// Which session attributes carry the locale, the end user's name and the opt-out.
    pub attributes: Option<RawAttributes>,
    /// Most cycles that warn or close in one session; later idle periods are left
    /// alone.
    pub max_cycles: Option<u32>,
}

/// A sender that starts a cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawStarter {
    /// A human agent.
    Agent,
    /// An automated participant for the contact centre.
    Bot,
}

/// A warning step.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawWarning {
    /// Idle time before this warning.
    pub after: Duration,
    /// The text, or texts per locale.
    pub message: RawText,
    /// Post it into the chat (default true).
    #[serde(default = "yes")]
    pub post: bool,
    /// Push it through `push.webhook` (default false).
    #[serde(default)]
    pub push: bool,
    /// A note for the agents at this step, which the end user does not see (a
    /// private note in Chatwoot, a direct message to the serving agent in
    /// Rocket.Chat; the generic callback gets a post of kind `agent_notice`): the
    /// countdown agents ask to see.
    #[serde(default)]
    pub agent_notice: Option<RawText>,
}

/// The close step.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawClose {
    /// Idle time before the close.
    pub after: Duration,
    /// Posted into the chat just before the close.
    pub message: Option<RawText>,
    /// Push the close through `push.webhook` (default false).
    #[serde(default)]
    pub push: bool,
}

/// The push webhook and when it is worth calling.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawPush {
    /// A webhook the operator allows this tenant to call.
    pub webhook: String,
    /// Push only when the end user's client last reported the chat hidden (or never
    /// reported); a user looking at the chat gets the in-chat message only.
    #[serde(default)]
    pub only_when_away: bool,
}

/// Business hours.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHours {
    /// Open ranges per weekday (`mon` .. `sun`), e.g. `["09:00-12:00", "13:00-18:00"]`.
    /// A day not listed is closed.
    pub weekly: BTreeMap<String, Vec<String>>,
    /// Dates closed all day, `YYYY-MM-DD`.
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Outside business hours: `pause` the idle clock (default) or
    /// `suppress_warnings` (the clock runs and the close happens, without warnings).
    #[serde(default)]
    pub outside: RawOutside,
}

/// What happens outside business hours.
#[derive(Clone, Copy, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RawOutside {
    /// Only open time counts.
    #[default]
    Pause,
    /// Time counts, warnings are quiet.
    SuppressWarnings,
}

/// Session attribute names.
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAttributes {
    /// The end user's locale (default `locale`).
    pub locale: Option<String>,
    /// The end user's name for `{{end_user_name}}` (default `name`).
    pub end_user_name: Option<String>,
    /// Set to `true`, `yes` or `1`, turns auto-close off for the session.
    pub opt_out: Option<String>,
}

fn yes() -> bool {
    true
}

/// A text: one for everybody, or one per locale with a `default`.
#[derive(Debug)]
pub enum RawText {
    /// The same text for every locale.
    Plain(String),
    /// Texts by locale key (`default`, `pt`, `pt-BR`).
    Localized(BTreeMap<String, String>),
}

impl<'de> Deserialize<'de> for RawText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match Value::deserialize(deserializer)? {
            Value::String(text) => Ok(RawText::Plain(text)),
            Value::Object(map) => {
                let mut texts = BTreeMap::new();
                for (key, value) in map {
                    match value {
                        Value::String(text) => {
                            texts.insert(key, text);
                        }
                        other => {
                            return Err(D::Error::custom(format!(
                                "the text for {key:?} is {other}, not a string"
                            )));
                        }
                    }
                }
                Ok(RawText::Localized(texts))
            }
            other => Err(D::Error::custom(format!(
                "{other} is not a text: write a string, or an object of strings per locale with a \"default\""
            ))),
        }
    }
}

impl schemars::JsonSchema for RawText {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Text".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A text with {{placeholders}}, or texts per locale key (`default` required, then tags such as `pt` or `pt-BR`).",
            "oneOf": [
                {"type": "string"},
                {
                    "type": "object",
                    "required": ["default"],
                    "additionalProperties": {"type": "string"},
                    "propertyNames": {"pattern": "^(default|[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)$"}
                }
            ]
        })
    }
}

/// The JSON Schema of a tenant's settings document (and of the operator's defaults,
/// which share its shape), as text: what the component reports in `about.info` for
/// hosts to merge into their configuration file's schema.
pub fn schema() -> String {
    serde_json::to_string(&schemars::schema_for!(RawTenant)).unwrap_or_default()
}
