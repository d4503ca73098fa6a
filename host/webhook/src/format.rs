//! Payload formats: what the body of a webhook request looks like.
//!
//! The plugin supplies an event type and a `data` object; the host builds the body
//! from them in the webhook's format, so a customer shapes the request for their push
//! service in configuration, without code:
//! - `standard` (default): the Standard Webhooks envelope `{type, timestamp, data}`;
//! - `ntfy` and `gotify`: presets for push services that take a plain JSON POST;
//! - a template: any JSON value whose strings may hold `{{placeholders}}`.

use serde::Deserialize;
use serde_json::{Map, Value, json};

/// How the body of a webhook is built.
#[derive(Clone, Debug, PartialEq)]
pub enum Format {
    /// `{"type", "timestamp", "data"}`.
    Standard,
    /// A JSON template; see [`render_template`].
    Template(Value),
}

/// What a body is built from.
#[derive(Clone, Copy, Debug)]
pub struct Fields<'a> {
    /// The delivery id (`webhook-id`).
    pub id: &'a str,
    /// The event type, e.g. `chat.auto_close.warning`.
    pub event_type: &'a str,
    /// RFC 3339 time the event happened.
    pub timestamp: &'a str,
    /// The plugin's data object.
    pub data: &'a Value,
}

/// The `format` key of a webhook, as written in config.
enum RawFormat {
    Name(String),
    Preset(RawPreset),
    Template { template: Value },
}

#[derive(Deserialize)]
#[serde(tag = "preset", rename_all = "snake_case", deny_unknown_fields)]
enum RawPreset {
    Ntfy {
        topic: String,
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        priority: Option<u8>,
        #[serde(default)]
        tags: Vec<String>,
        #[serde(default)]
        click: Option<String>,
    },
    Gotify {
        #[serde(default)]
        title: Option<String>,
        #[serde(default)]
        priority: Option<u8>,
        #[serde(default)]
        click: Option<String>,
    },
}

/// Placeholder roots a template may use; `data.` reaches into the plugin's data object.
pub const PLACEHOLDERS: [&str; 4] = ["id", "type", "timestamp", "data.<field>"];

impl Format {
    /// Reads a `format` value from config: `"standard"`, `{"preset": ...}` or
    /// `{"template": ...}`. The error says what is wrong (the caller adds the path).
    pub fn from_value(value: Value) -> Result<Self, String> {
        let raw = match value {
            Value::String(name) => RawFormat::Name(name),
            Value::Object(mut map) if map.contains_key("preset") => {
                let preset =
                    serde_path_to_error::deserialize(Value::Object(std::mem::take(&mut map)))
                        .map_err(|e| match e.path().to_string().as_str() {
                            "." => e.into_inner().to_string(),
                            path => format!("{path}: {}", e.into_inner()),
                        })?;
                RawFormat::Preset(preset)
            }
            Value::Object(mut map) if map.len() == 1 && map.contains_key("template") => {
                RawFormat::Template {
                    template: map.remove("template").unwrap_or(Value::Null),
                }
            }
            other => {
                return Err(format!(
                    "{other} is not a format (use \"standard\", {{\"preset\": \"ntfy\" | \"gotify\", ...}} or {{\"template\": ...}})"
                ));
            }
        };
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawFormat) -> Result<Self, String> {
        let format = match raw {
            RawFormat::Name(name) => {
                match name.as_str() {
                    "standard" => Format::Standard,
                    "ntfy" => return Err(
                        "the ntfy preset needs a topic: {\"preset\": \"ntfy\", \"topic\": \"...\"}"
                            .into(),
                    ),
                    "gotify" => Format::Template(gotify(None, None, None)),
                    other => {
                        return Err(format!(
                            "unknown format {other:?} (use \"standard\", a preset such as {{\"preset\": \"ntfy\", \"topic\": \"...\"}}, or {{\"template\": ...}})"
                        ));
                    }
                }
            }
            RawFormat::Preset(RawPreset::Ntfy {
                topic,
                title,
                priority,
                tags,
                click,
            }) => {
                check_priority(priority)?;
                let mut body = Map::new();
                body.insert("topic".into(), Value::String(topic));
                body.insert("message".into(), Value::String("{{data.message}}".into()));
                if let Some(title) = title {
                    body.insert("title".into(), Value::String(title));
                }
                if let Some(priority) = priority {
                    body.insert("priority".into(), Value::from(priority));
                }
                if !tags.is_empty() {
                    body.insert("tags".into(), Value::from(tags));
                }
                if let Some(click) = click {
                    body.insert("click".into(), Value::String(click));
                }
                Format::Template(Value::Object(body))
            }
            RawFormat::Preset(RawPreset::Gotify {
                title,
                priority,
                click,
            }) => {
                check_priority(priority)?;
                Format::Template(gotify(title, priority, click))
            }
            RawFormat::Template { template } => Format::Template(template),
        };
        if let Format::Template(template) = &format {
            check_template(template)?;
        }
        Ok(format)
    }

    /// Builds the body. A value, not bytes: the host both sends it and shows it in
    /// the transcript, and serialising once is cheaper than parsing the bytes back.
    pub fn render(&self, fields: Fields<'_>) -> Value {
        match self {
            Format::Standard => json!({
                "type": fields.event_type,
                "timestamp": fields.timestamp,
                "data": fields.data,
            }),
            Format::Template(template) => render_template(template, fields),
        }
    }
}

fn check_priority(priority: Option<u8>) -> Result<(), String> {
    match priority {
        Some(p) if !(1..=10).contains(&p) => Err(format!("priority {p} is out of range (1 to 10)")),
        _ => Ok(()),
    }
}

/// Gotify's `/message` body: title, message, priority, and a click URL in `extras`.
fn gotify(title: Option<String>, priority: Option<u8>, click: Option<String>) -> Value {
    let mut body = Map::new();
    body.insert(
        "title".into(),
        Value::String(title.unwrap_or_else(|| "{{type}}".into())),
    );
    body.insert("message".into(), Value::String("{{data.message}}".into()));
    body.insert("priority".into(), Value::from(priority.unwrap_or(5)));
    if let Some(click) = click {
        body.insert(
            "extras".into(),
            json!({"client::notification": {"click": {"url": click}}}),
        );
    }
    Value::Object(body)
}

/// Every placeholder in the template must have a known root.
fn check_template(template: &Value) -> Result<(), String> {
    let mut problem = None;
    visit_strings(template, &mut |text| {
        for name in placeholders(text) {
            let known = matches!(name, "id" | "type" | "timestamp")
                || name
                    .strip_prefix("data.")
                    .is_some_and(|rest| !rest.is_empty());
            if !known && problem.is_none() {
                problem = Some(format!(
                    "unknown placeholder {{{{{name}}}}} (known: {})",
                    PLACEHOLDERS.map(|p| format!("{{{{{p}}}}}")).join(", ")
                ));
            }
        }
        if text.matches("{{").count() != text.matches("}}").count() && problem.is_none() {
            problem = Some(format!("unbalanced braces in {text:?}"));
        }
    });
    problem.map_or(Ok(()), Err)
}

fn visit_strings(value: &Value, f: &mut impl FnMut(&str)) {
    match value {
        Value::String(s) => f(s),
        Value::Array(items) => items.iter().for_each(|v| visit_strings(v, f)),
        Value::Object(map) => map.values().for_each(|v| visit_strings(v, f)),
        _ => {}
    }
}

/// The placeholder names in `text`, trimmed.
fn placeholders(text: &str) -> impl Iterator<Item = &str> {
    text.split("{{")
        .skip(1)
        .filter_map(|part| part.split_once("}}").map(|(name, _)| name.trim()))
}

/// Looks a placeholder up. `data.a.b` walks into the data object.
fn lookup<'a>(name: &str, fields: &Fields<'a>) -> Option<Value> {
    match name {
        "id" => Some(Value::String(fields.id.to_owned())),
        "type" => Some(Value::String(fields.event_type.to_owned())),
        "timestamp" => Some(Value::String(fields.timestamp.to_owned())),
        _ => {
            let path = name.strip_prefix("data.")?;
            let mut value = fields.data;
            for key in path.split('.') {
                value = value.get(key)?;
            }
            Some(value.clone())
        }
    }
}

/// Renders a template: a string that is exactly one placeholder becomes the value
/// itself (an object stays an object); placeholders inside longer strings are
/// replaced by their text. A `data.` field the plugin did not send renders as `null`
/// alone, or as empty text inside a string.
pub fn render_template(template: &Value, fields: Fields<'_>) -> Value {
    match template {
        Value::String(text) => {
            let trimmed = text.trim();
            if let Some(name) = trimmed
                .strip_prefix("{{")
                .and_then(|t| t.strip_suffix("}}"))
                && !name.contains("{{")
            {
                return lookup(name.trim(), &fields).unwrap_or(Value::Null);
            }
            let mut out = String::new();
            let mut rest = text.as_str();
            while let Some(open) = rest.find("{{") {
                out.push_str(&rest[..open]);
                let Some((name, after)) = rest[open + 2..].split_once("}}") else {
                    break;
                };
                match lookup(name.trim(), &fields) {
                    Some(Value::String(s)) => out.push_str(&s),
                    Some(Value::Null) | None => {}
                    Some(other) => out.push_str(&other.to_string()),
                }
                rest = after;
            }
            out.push_str(rest);
            Value::String(out)
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| render_template(v, fields)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), render_template(v, fields)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(data: &Value) -> Fields<'_> {
        Fields {
            id: "msg_1",
            event_type: "chat.auto_close.warning",
            timestamp: "2026-01-01T00:00:00Z",
            data,
        }
    }

    fn parse(value: Value) -> Result<Format, String> {
        Format::from_value(value)
    }

    fn body(format: &Format, data: &Value) -> Value {
        let bytes = serde_json::to_vec(&format.render(fields(data)));
        serde_json::from_slice(&bytes.unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn standard_is_the_envelope() {
        let data = json!({"message": "hi"});
        let format = parse(json!("standard")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body(&format, &data),
            json!({"type": "chat.auto_close.warning", "timestamp": "2026-01-01T00:00:00Z", "data": {"message": "hi"}})
        );
    }

    #[test]
    fn ntfy_and_gotify_presets() {
        let data = json!({"message": "closing soon"});
        let ntfy = parse(json!({"preset": "ntfy", "topic": "acme", "priority": 4, "tags": ["warning"], "click": "https://x.example/c"}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body(&ntfy, &data),
            json!({"topic": "acme", "message": "closing soon", "priority": 4, "tags": ["warning"], "click": "https://x.example/c"})
        );
        let gotify =
            parse(json!({"preset": "gotify", "title": "Chat", "click": "https://x.example/c"}))
                .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body(&gotify, &data),
            json!({"title": "Chat", "message": "closing soon", "priority": 5,
                   "extras": {"client::notification": {"click": {"url": "https://x.example/c"}}}})
        );
        assert!(parse(json!("ntfy")).unwrap_err().contains("needs a topic"));
        assert!(
            parse(json!({"preset": "ntfy", "topic": "t", "priority": 11}))
                .unwrap_err()
                .contains("out of range")
        );
        let e = parse(json!({"preset": "ntfy"})).unwrap_err();
        assert!(e.contains("missing field `topic`"), "{e}");
        let e = parse(json!({"preset": "ntfy", "topic": "t", "colour": 1})).unwrap_err();
        assert!(e.contains("unknown field `colour`"), "{e}");
        assert!(
            parse(json!(7))
                .unwrap_err()
                .starts_with("7 is not a format")
        );
    }

    #[test]
    fn templates_keep_types_and_interpolate_strings() {
        let data = json!({"message": "hi", "end_user": {"token": "abc", "locale": "en"}, "n": 3});
        let format = parse(json!({"template": {
            "to": "{{data.end_user.token}}",
            "who": "{{ data.end_user }}",
            "text": "[{{type}}] {{data.message}} x{{data.n}} {{data.missing}}!",
            "fixed": [1, true],
            "absent": "{{data.nope}}"
        }}))
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            body(&format, &data),
            json!({"to": "abc", "who": {"token": "abc", "locale": "en"},
                   "text": "[chat.auto_close.warning] hi x3 !", "fixed": [1, true], "absent": null})
        );
    }

    #[test]
    fn unknown_formats_and_placeholders_are_refused() {
        assert!(
            parse(json!("xml"))
                .unwrap_err()
                .starts_with("unknown format \"xml\"")
        );
        let e = parse(json!({"template": {"a": "{{user}}"}})).unwrap_err();
        assert!(e.starts_with("unknown placeholder {{user}}"), "{e}");
        let e = parse(json!({"template": {"a": "{{data.}}"}})).unwrap_err();
        assert!(e.starts_with("unknown placeholder {{data.}}"), "{e}");
        let e = parse(json!({"template": "{{type"})).unwrap_err();
        assert!(e.starts_with("unbalanced braces"), "{e}");
    }
}
