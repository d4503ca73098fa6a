//! Layered settings: the operator's defaults, then the tenant, then the channel, then
//! the session's group, each overriding what came before it, key by key.
//!
//! Layers are merged as JSON before they are checked: objects merge key by key, any
//! other value (text, number, list) replaces what an earlier layer set, and `null`
//! removes it. The merge remembers which layer set every value, so that
//! `check-config` can say where each effective setting came from and an error in a
//! merged value names the place in the file where it was written.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// One layer of settings.
#[derive(Clone, Copy, Debug)]
pub struct Layer<'a> {
    /// Who set it, for people: `defaults`, `tenant`, `channel web_chat`, `group vip`.
    pub label: &'a str,
    /// Dotted path of the layer's object in its document, e.g.
    /// `channels.web_chat.auto_close`; `defaults.` paths are in the operator's defaults.
    pub path: &'a str,
    /// The layer's settings.
    pub value: &'a Map<String, Value>,
}

/// Where an effective value was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origin {
    /// The layer's label.
    pub label: String,
    /// The dotted path of the value where it was written.
    pub path: String,
}

/// The merged settings and where each value came from.
#[derive(Clone, Debug, Default)]
pub struct Merged {
    /// The effective settings.
    pub value: Map<String, Value>,
    /// Origin of every value that is not an object, by its dotted path in `value`.
    pub origins: BTreeMap<String, Origin>,
}

impl Merged {
    /// Merges `layers`, later ones winning.
    pub fn new(layers: &[Layer<'_>]) -> Self {
        let mut merged = Merged::default();
        for layer in layers {
            merge_object(
                &mut merged.value,
                &mut merged.origins,
                "",
                layer.value,
                layer,
            );
        }
        merged
    }

    /// Where the value at `path` (a dotted path into the merged settings, possibly
    /// with `[i]` indices or deeper than any stored value) was written, as a path in
    /// the configuration file; `None` when no layer wrote it.
    pub fn source_of(&self, path: &str) -> Option<(String, &Origin)> {
        let mut candidate = path;
        loop {
            if let Some(origin) = self.origins.get(candidate) {
                let rest = &path[candidate.len()..];
                return Some((format!("{}{rest}", origin.path), origin));
            }
            let Some(cut) = candidate.rfind(['.', '[']) else {
                break;
            };
            candidate = &candidate[..cut];
        }
        // An object: the place of the last value written below it (its last layer).
        let (key, origin) = self
            .origins
            .range(path.to_owned()..)
            .take_while(|(k, _)| k.starts_with(path))
            .filter(|(k, _)| {
                !path.is_empty() && matches!(k.as_bytes().get(path.len()), Some(b'.' | b'['))
            })
            .last()?;
        let below = key.len() - path.len();
        let place = origin.path.get(..origin.path.len().checked_sub(below)?)?;
        Some((place.to_owned(), origin))
    }
}

/// Appends the object key `key` to a dotted path. A key that would make the path
/// ambiguous (empty, or containing `.`, `[`, `]` or `"`) is written as `["..."]`, so
/// that a key `"close.after"` is never taken for `close` then `after`.
pub fn join(prefix: &str, key: &str) -> String {
    if key.is_empty() || key.contains(['.', '[', ']', '"']) {
        let quoted = serde_json::to_string(key).unwrap_or_default();
        format!("{prefix}[{quoted}]")
    } else if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

/// Appends a sub-path (`close.after`, `[0].after`, `["a.b"]`) to a path.
pub fn append(prefix: &str, sub: &str) -> String {
    if sub.is_empty() {
        prefix.to_owned()
    } else if prefix.is_empty() {
        sub.to_owned()
    } else if sub.starts_with('[') {
        format!("{prefix}{sub}")
    } else {
        format!("{prefix}.{sub}")
    }
}

/// The path of a deserialisation error in the notation of [`join`] (serde's own
/// display joins keys with dots unescaped).
pub fn from_serde(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => out = join(&out, key),
            Segment::Enum { variant } => out = join(&out, variant),
            Segment::Unknown => out = join(&out, "?"),
        }
    }
    out
}

fn forget_below(origins: &mut BTreeMap<String, Origin>, path: &str) {
    let below: Vec<String> = origins
        .range(path.to_owned()..)
        .take_while(|(k, _)| k.starts_with(path))
        .filter(|(k, _)| {
            k.len() == path.len() || matches!(k.as_bytes().get(path.len()), Some(b'.' | b'['))
        })
        .map(|(k, _)| k.clone())
        .collect();
    for key in below {
        origins.remove(&key);
    }
}

fn record(origins: &mut BTreeMap<String, Origin>, path: &str, value: &Value, layer: &Layer<'_>) {
    match value {
        Value::Object(object) if !object.is_empty() => {
            for (key, inner) in object {
                record(origins, &join(path, key), inner, layer);
            }
        }
        _ => {
            origins.insert(
                path.to_owned(),
                Origin {
                    label: layer.label.to_owned(),
                    path: append(layer.path, path),
                },
            );
        }
    }
}

fn merge_object(
    into: &mut Map<String, Value>,
    origins: &mut BTreeMap<String, Origin>,
    prefix: &str,
    from: &Map<String, Value>,
    layer: &Layer<'_>,
) {
    for (key, value) in from {
        let path = join(prefix, key);
        match (into.get_mut(key), value) {
            (_, Value::Null) => {
                into.remove(key);
                forget_below(origins, &path);
            }
            (Some(Value::Object(existing)), Value::Object(update)) => {
                merge_object(existing, origins, &path, update, layer);
            }
            _ => {
                forget_below(origins, &path);
                into.insert(key.clone(), value.clone());
                record(origins, &path, value, layer);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn later_layers_win_key_by_key_and_remember_where_values_came_from() {
        let defaults =
            object(json!({"close": {"after": "10m", "message": "bye"}, "push": {"webhook": "p"}}));
        let tenant = object(json!({"close": {"after": "5m"}, "warnings": [{"after": "1m"}]}));
        let channel = object(json!({"warnings": [{"after": "2m"}], "push": null}));
        let merged = Merged::new(&[
            Layer {
                label: "defaults",
                path: "defaults.auto_close",
                value: &defaults,
            },
            Layer {
                label: "tenant",
                path: "auto_close",
                value: &tenant,
            },
            Layer {
                label: "channel web_chat",
                path: "channels.web_chat.auto_close",
                value: &channel,
            },
        ]);
        assert_eq!(
            Value::Object(merged.value.clone()),
            json!({"close": {"after": "5m", "message": "bye"}, "warnings": [{"after": "2m"}]})
        );
        let source = |p: &str| merged.source_of(p).map(|(path, o)| (path, o.label.clone()));
        assert_eq!(
            source("close.after"),
            Some(("auto_close.close.after".into(), "tenant".into()))
        );
        assert_eq!(
            source("close.message"),
            Some((
                "defaults.auto_close.close.message".into(),
                "defaults".into()
            ))
        );
        assert_eq!(
            source("warnings[0].after"),
            Some((
                "channels.web_chat.auto_close.warnings[0].after".into(),
                "channel web_chat".into()
            ))
        );
        assert_eq!(source("push.webhook"), None, "null removed it");
        assert_eq!(
            source("close"),
            Some(("defaults.auto_close.close".into(), "defaults".into())),
            "an object is placed by the last value below it in key order"
        );
    }

    #[test]
    fn a_value_replacing_an_object_forgets_the_object_origins() {
        let a = object(json!({"close": {"message": {"default": "x", "pt": "y"}}}));
        let b = object(json!({"close": {"message": "plain"}}));
        let merged = Merged::new(&[
            Layer {
                label: "a",
                path: "a",
                value: &a,
            },
            Layer {
                label: "b",
                path: "b",
                value: &b,
            },
        ]);
        assert_eq!(merged.origins.len(), 1, "{:?}", merged.origins);
        assert_eq!(
            merged.source_of("close.message").map(|(p, _)| p),
            Some("b.close.message".into())
        );
    }
}
