//! Webhook signing secrets: `whsec_` + base64 of at least 24 random bytes, given inline
//! or as `env:NAME`. A secret never prints: `Debug` and `Display` show `whsec_***`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Fewest random bytes a secret may have (Standard Webhooks recommends 24 to 64).
pub const MIN_SECRET_BYTES: usize = 24;
/// Most random bytes a secret may have.
pub const MAX_SECRET_BYTES: usize = 64;

/// A decoded signing key. Never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    key: Vec<u8>,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("whsec_***")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("whsec_***")
    }
}

impl Secret {
    /// The HMAC key bytes.
    pub fn key(&self) -> &[u8] {
        &self.key
    }

    /// Resolves `value` (`whsec_...` or `env:NAME`) with `env` looking up variables.
    /// Errors never contain the secret itself.
    pub fn resolve(value: &str, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        if let Some(name) = value.strip_prefix("env:") {
            let text =
                env(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
            return Self::parse(&text).map_err(|e| format!("environment variable {name}: {e}"));
        }
        Self::parse(value)
    }

    /// Parses `whsec_` + base64.
    pub fn parse(text: &str) -> Result<Self, String> {
        let encoded = text
            .strip_prefix("whsec_")
            .ok_or_else(|| "must start with \"whsec_\" (or be \"env:NAME\")".to_owned())?;
        let key = STANDARD
            .decode(encoded.trim())
            .map_err(|_| "the part after \"whsec_\" is not valid base64".to_owned())?;
        if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
            return Err(format!(
                "decodes to {} bytes; a secret must have {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} random bytes",
                key.len()
            ));
        }
        Ok(Secret { key })
    }

    /// Encodes `key` as a `whsec_` string (for tests and tooling that mint secrets).
    pub fn encode(key: &[u8]) -> String {
        format!("whsec_{}", STANDARD.encode(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn parses_inline_and_env_secrets() {
        let text = Secret::encode(&[7u8; 32]);
        let inline = Secret::resolve(&text, no_env).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(inline.key(), &[7u8; 32]);
        let from_env = Secret::resolve("env:PUSH_SECRET", |n| {
            (n == "PUSH_SECRET").then(|| text.clone())
        })
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(from_env, inline);
    }

    #[test]
    fn refuses_bad_secrets_without_echoing_them() {
        let short = Secret::encode(&[1u8; 8]);
        let e = Secret::resolve(&short, no_env).unwrap_err();
        assert!(
            e.contains("decodes to 8 bytes") && !e.contains(&short[6..]),
            "{e}"
        );
        let e = Secret::resolve("sk_live_abcdef", no_env).unwrap_err();
        assert!(
            e.starts_with("must start with \"whsec_\"") && !e.contains("abcdef"),
            "{e}"
        );
        assert_eq!(
            Secret::resolve("env:NOPE", no_env).unwrap_err(),
            "environment variable NOPE is not set"
        );
        assert!(
            Secret::resolve("whsec_!!!", no_env)
                .unwrap_err()
                .contains("not valid base64")
        );
    }

    #[test]
    fn never_prints() {
        let secret = Secret::parse(&Secret::encode(&[9u8; 24])).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(format!("{secret} {secret:?}"), "whsec_*** whsec_***");
    }
}
