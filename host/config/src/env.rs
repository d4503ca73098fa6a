//! `env:NAME` values: a secret (a token, a password, a signing key) is best kept out
//! of the file, so any field that takes one takes `env:NAME` as well, resolved once,
//! when the file is read.

/// Resolves `env:NAME` from the environment; any other text is the value itself.
pub(crate) fn resolve_env(
    value: &str,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<String, String> {
    match value.strip_prefix("env:") {
        Some(name) => env(name).ok_or_else(|| format!("environment variable {name} is not set")),
        None => Ok(value.to_owned()),
    }
}
