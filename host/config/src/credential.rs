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
