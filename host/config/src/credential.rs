//! A credential for another system (an API token, a webhook secret): kept as given,
//! never printed.

/// A token or secret from the configuration. `Debug` and `Display` print `***`, so
/// that it cannot reach a log or an error by accident; [`Credential::expose`] is the
/// one way to read it, where it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(String);

impl Credential {
    /// Wraps `value`.
    pub fn new(value: String) -> Self {
        Credential(value)
    }

    /// The value itself, for the header or the HMAC that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// `value` without the whitespace around it (a secret file's trailing newline), or an
/// error if a control character is left inside: it would make an invalid header, or
/// a token that never matches.
pub(crate) fn trimmed_secret(value: &str) -> Result<String, String> {
    let trimmed = value.trim();
    if trimmed.chars().any(char::is_control) {
        return Err("contains a control character (a line break inside the value?)".into());
    }
    Ok(trimmed.to_owned())
}
