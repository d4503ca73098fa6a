//! One tenant's document: what the host takes from it (`component`, `webhooks`,
//! `limits`) and what it hands to the component.
//!
//! The same reading serves a tenant of the file and a tenant managed through the admin
//! API, so that both are refused for the same reasons with the same words. Errors name
//! the path inside the document; the file's reader puts `tenants.<name>.` in front.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::{Map, Value};

use crate::limits::with_overrides;
use crate::{FieldError, Limits, TenantConfig, Webhook};

/// The host-level key of a tenant naming its own component.
pub const COMPONENT_KEY: &str = "component";
/// The host-level key of a tenant listing the webhooks it may call.
pub const WEBHOOKS_KEY: &str = "webhooks";
/// The host-level key of a tenant's own limits.
pub const LIMITS_KEY: &str = "limits";

/// A vendor component the operator installed once for many tenants, resolved.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct NamedComponent {
    pub(crate) path: PathBuf,
    pub(crate) defaults: String,
    pub(crate) limits: Limits,
}

/// What a tenant's document may refer to besides the webhooks: the file's installed
/// components, host-wide limits and defaults, and the directory component paths are
/// relative to. Kept with the configuration so that a tenant can be read alone later
/// (a `PUT` of the admin API) exactly as the file's tenants were.
#[derive(Clone, Debug, PartialEq)]
pub struct Catalog {
    pub(crate) components: BTreeMap<String, NamedComponent>,
    pub(crate) limits: Limits,
    pub(crate) defaults: String,
    pub(crate) base: PathBuf,
}

impl Catalog {
    /// The names of the installed components (`components` in the file).
    pub fn component_names(&self) -> impl Iterator<Item = &str> {
        self.components.keys().map(String::as_str)
    }
}

fn listed(names: impl Iterator<Item = impl AsRef<str>>, none: &str) -> String {
    let names: Vec<String> = names.map(|n| n.as_ref().to_owned()).collect();
    if names.is_empty() {
        none.to_owned()
    } else {
        names.join(", ")
    }
}

/// Reads tenant `name`'s `document` against the file's `webhooks` and `catalog`.
/// Errors name the path inside the document (`webhooks[1]`, `limits.fuel`, or empty
/// for the document itself).
pub(crate) fn parse_tenant(
    name: &str,
    document: Map<String, Value>,
    webhooks: &BTreeMap<String, Webhook>,
    catalog: &Catalog,
) -> Result<TenantConfig, FieldError> {
    if name.is_empty() {
        return Err(FieldError::new(
            String::new(),
            "a tenant name is empty".into(),
        ));
    }
    let written = document.clone();
    let mut doc = document;
    let named = match doc.get(COMPONENT_KEY) {
        Some(Value::String(key)) => catalog.components.get(key),
        _ => None,
    };
    let component = match doc.remove(COMPONENT_KEY) {
        None => None,
        Some(Value::String(_)) if named.is_some() => named.map(|c| c.path.clone()),
        Some(Value::String(p)) if p.ends_with(".wasm") || p.ends_with(".cwasm") => {
            Some(catalog.base.join(p))
        }
        Some(Value::String(p)) => {
            return Err(FieldError::new(
                COMPONENT_KEY.into(),
                format!(
                    "{p:?} is neither a name in `components` ({}) nor a .wasm or .cwasm file",
                    listed(catalog.components.keys(), "there are none")
                ),
            ));
        }
        Some(other) => {
            return Err(FieldError::new(
                COMPONENT_KEY.into(),
                format!("must name a component or be the path of a .wasm component, not {other}"),
            ));
        }
    };
    let base_limits = named.map_or(catalog.limits, |c| c.limits);
    let allowed = match doc.remove(WEBHOOKS_KEY) {
        None => Vec::new(),
        Some(Value::Array(names)) => {
            let mut allowed = Vec::with_capacity(names.len());
            for (index, value) in names.into_iter().enumerate() {
                let path = format!("{WEBHOOKS_KEY}[{index}]");
                let Value::String(hook) = value else {
                    return Err(FieldError::new(path, "must be a webhook name".into()));
                };
                if !webhooks.contains_key(&hook) {
                    return Err(FieldError::new(
                        path,
                        format!(
                            "unknown webhook {hook:?} (defined: {})",
                            listed(webhooks.keys(), "none")
                        ),
                    ));
                }
                allowed.push(hook);
            }
            allowed
        }
        Some(other) => {
            return Err(FieldError::new(
                WEBHOOKS_KEY.into(),
                format!("must be a list of webhook names, not {other}"),
            ));
        }
    };
    let limits = match doc.remove(LIMITS_KEY) {
        None => base_limits,
        Some(overrides) => with_overrides(&base_limits, overrides).map_err(|e| {
            let path = if e.path.is_empty() {
                LIMITS_KEY.to_owned()
            } else {
                format!("{LIMITS_KEY}.{}", e.path)
            };
            FieldError::new(path, e.reason)
        })?,
    };
    Ok(TenantConfig {
        limits,
        defaults: match (named, &component) {
            (Some(named), _) => named.defaults.clone(),
            (None, Some(_)) => "{}".to_owned(),
            (None, None) => catalog.defaults.clone(),
        },
        plugin_config: Value::Object(doc).to_string(),
        name: name.to_owned(),
        component,
        webhooks: allowed,
        document: written,
    })
}

/// Whether `document` names its component by a file path rather than by an installed
/// component's name: what a tenant-scoped token may not do (a path could load any file
/// the server can read).
pub fn names_a_file(document: &Map<String, Value>, catalog: &Catalog) -> bool {
    match document.get(COMPONENT_KEY) {
        Some(Value::String(key)) => !catalog.components.contains_key(key),
        Some(_) => true,
        None => false,
    }
}
