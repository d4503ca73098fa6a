//! Limits over limits: a component's or a tenant's own bounds over the host-wide ones.

use serde_json::Value;

use crate::FieldError;

use crate::Limits;

/// `base` with the fields of `overrides` (a component's or tenant's `limits` object)
/// replacing its own. Errors name the field inside the limits object.
pub(crate) fn with_overrides(base: &Limits, overrides: Value) -> Result<Limits, FieldError> {
    let Value::Object(overrides) = overrides else {
        return Err(FieldError::new(
            String::new(),
            format!("must be an object of limits, not {overrides}"),
        ));
    };
    let mut merged = match serde_json::to_value(base) {
        Ok(Value::Object(map)) => map,
        _ => {
            return Err(FieldError::new(
                String::new(),
                "limits could not be merged".to_owned(),
            ));
        }
    };
    // The name limits had before contract 0.4.0 is read as the new one.
    merged.extend(
        overrides
            .into_iter()
            .map(|(key, value)| match key.as_str() {
                "actions_per_hook" => ("actions_per_event".to_owned(), value),
                _ => (key, value),
            }),
    );
    let limits: Limits =
        crate::fields(Value::Object(merged)).map_err(|e| match e.split_once(": ") {
            Some((field, reason)) if !field.contains(' ') => {
                FieldError::new(field.to_owned(), reason.to_owned())
            }
            _ => FieldError::new(String::new(), e),
        })?;
    limits
        .check()
        .map_err(|(name, reason)| FieldError::new(name.to_owned(), reason))?;
    if limits.memory_mib > base.memory_mib {
        return Err(FieldError::new(
            "memory_mib".to_owned(),
            format!(
                "{} is more than the host-wide limits.memory_mib ({}), which sizes every instance's reservation",
                limits.memory_mib, base.memory_mib
            ),
        ));
    }
    Ok(limits)
}
