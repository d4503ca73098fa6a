//! How a JSON settings object becomes a typed value with errors that name the field.

/// Deserialises a JSON value into `T`; the error names the offending field, e.g.
/// `sender: unknown variant `customer`, expected one of ...`. Deserialising from a
/// `Value` keeps serde's positions out of the message: they would point into
/// re-serialised text, not into what the user wrote.
pub fn fields<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        if path == "." {
            inner
        } else {
            format!("{path}: {inner}")
        }
    })
}
