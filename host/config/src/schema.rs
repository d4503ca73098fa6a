//! The configuration file's JSON Schema: the host's keys, with the default component's
//! settings schema merged in where those settings go.
//!
//! The host knows nothing of a component's settings; the component reports their
//! schema through the contract (`about.info`). Merging is a pure function of the two
//! documents, so `autoclose schema --plugin X.wasm` serves any component.

use serde_json::{Map, Value, json};

/// Where the host's schema describes one tenant (its host keys).
const TENANT: &str = "TenantSchema";
/// The name the component's settings get among the definitions.
const SETTINGS: &str = "TenantSettings";
/// Prefix of a component definition whose name the host already uses differently.
const RENAMED: &str = "component.";

/// `host` (generated from the host's types) with `settings` (a component's schema of
/// one tenant's document) merged in:
///
/// - the component's definitions join the host's (renamed, references and all, where
///   a name is taken by a different definition);
/// - a tenant without a `component` key takes the host keys and the component's
///   settings; a tenant with one takes the host keys and anything else, because its
///   settings have its own component's shape;
/// - `defaults` takes the component's settings.
pub fn merge(mut host: Value, settings: Option<&Value>) -> Value {
    let mut settings = match settings {
        Some(Value::Object(root)) => root.clone(),
        // `true`, absent, or not an object: the component does not constrain them.
        _ => Map::from_iter([("type".to_owned(), json!("object"))]),
    };
    settings.remove("$schema");
    let component_defs = match settings.remove("$defs") {
        Some(Value::Object(defs)) => defs,
        _ => Map::new(),
    };
    let Some(root) = host.as_object_mut() else {
        return host;
    };
    let defs = root
        .entry("$defs")
        .or_insert_with(|| Value::Object(Map::new()));
    let Some(defs) = defs.as_object_mut() else {
        return host;
    };
    let renames: Vec<(String, String)> = component_defs
        .iter()
        .filter(|(name, def)| defs.get(*name).is_some_and(|taken| taken != *def))
        .map(|(name, _)| (name.clone(), format!("{RENAMED}{name}")))
        .collect();
    let mut settings = Value::Object(settings);
    rename_refs(&mut settings, &renames);
    for (name, mut def) in component_defs {
        rename_refs(&mut def, &renames);
        let name = renames
            .iter()
            .find(|(from, _)| *from == name)
            .map_or(name, |(_, to)| to.clone());
        defs.insert(name, def);
    }
    let host_keys = defs
        .get(TENANT)
        .and_then(|tenant| tenant.get("properties"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut own = settings.clone();
    if let Some(own) = own.as_object_mut() {
        own.remove("title");
        let properties = own
            .entry("properties")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(properties) = properties.as_object_mut() {
            for (key, value) in &host_keys {
                properties.insert(key.clone(), value.clone());
            }
        }
    }
    let description = defs
        .get(TENANT)
        .and_then(|tenant| tenant.get("description"))
        .cloned()
        .unwrap_or(Value::Null);
    defs.insert(SETTINGS.to_owned(), settings);
    defs.insert(
        TENANT.to_owned(),
        json!({
            "description": description,
            "type": "object",
            "if": {"required": ["component"]},
            "then": {"properties": host_keys},
            "else": own,
        }),
    );
    if let Some(defaults) = root
        .get_mut("properties")
        .and_then(|p| p.get_mut("defaults"))
        .and_then(Value::as_object_mut)
    {
        defaults.remove("type");
        defaults.remove("additionalProperties");
        defaults.insert("$ref".to_owned(), json!(format!("#/$defs/{SETTINGS}")));
    }
    host
}

/// Rewrites `#/$defs/FROM` references to `#/$defs/TO` everywhere in `value`.
fn rename_refs(value: &mut Value, renames: &[(String, String)]) {
    if renames.is_empty() {
        return;
    }
    match value {
        Value::Object(map) => {
            for (key, inner) in map.iter_mut() {
                if key == "$ref"
                    && let Value::String(target) = inner
                    && let Some(name) = target.strip_prefix("#/$defs/")
                    && let Some((_, to)) = renames.iter().find(|(from, _)| from == name)
                {
                    *target = format!("#/$defs/{to}");
                } else {
                    rename_refs(inner, renames);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rename_refs(v, renames)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Value {
        json!({
            "properties": {
                "tenants": {"additionalProperties": {"$ref": "#/$defs/TenantSchema"}},
                "defaults": {"type": "object"}
            },
            "$defs": {
                "TenantSchema": {"description": "a tenant", "type": "object",
                                 "properties": {"component": {"type": "string"}}},
                "Duration": {"type": "string"},
                "Limits": {"type": "object"}
            }
        })
    }

    #[test]
    fn the_component_s_settings_go_to_tenants_without_a_component_and_to_defaults() {
        let settings = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "Settings",
            "type": "object",
            "properties": {"after": {"$ref": "#/$defs/Duration"}, "limits": {"$ref": "#/$defs/Limits"}},
            "additionalProperties": false,
            "$defs": {"Duration": {"type": "string"}, "Limits": {"type": "integer"}}
        });
        let merged = merge(host(), Some(&settings));
        let defs = &merged["$defs"];
        assert_eq!(
            defs["Duration"],
            json!({"type": "string"}),
            "identical: shared"
        );
        assert_eq!(
            defs["Limits"],
            json!({"type": "object"}),
            "the host's stays"
        );
        assert_eq!(defs["component.Limits"], json!({"type": "integer"}));
        let own = &defs["TenantSchema"]["else"];
        assert_eq!(
            own["properties"]["limits"]["$ref"],
            "#/$defs/component.Limits"
        );
        assert_eq!(own["properties"]["component"]["type"], "string");
        assert_eq!(own["additionalProperties"], false);
        assert!(own.get("title").is_none() && own.get("$schema").is_none());
        assert_eq!(
            defs["TenantSchema"]["then"]["properties"]["component"]["type"],
            "string"
        );
        assert_eq!(
            merged["properties"]["defaults"]["$ref"],
            "#/$defs/TenantSettings"
        );
        assert_eq!(defs["TenantSettings"]["title"], "Settings");
    }

    #[test]
    fn a_component_without_a_schema_constrains_nothing() {
        let merged = merge(host(), None);
        assert_eq!(
            merged["$defs"]["TenantSchema"]["else"],
            json!({"type": "object", "properties": {"component": {"type": "string"}}})
        );
        assert_eq!(merged["$defs"]["TenantSettings"], json!({"type": "object"}));
    }
}
