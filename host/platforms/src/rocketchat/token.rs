//! Whether a webhook delivery comes from the workspace: Rocket.Chat signs nothing and
//! sends only the shared token of its Omnichannel webhook settings, in the
//! `X-RocketChat-Livechat-Token` header (and only when one is set). It is compared in
//! constant time, so that the time of a refusal says nothing about the token.

use autoclose_config::Credential;
use autoclose_webhook::signing::constant_time_eq;

/// Why a delivery was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthentic {
    /// No token header: the workspace's webhook has no secret token set.
    #[error(
        "no X-RocketChat-Livechat-Token header (set the secret token of the Omnichannel webhook)"
    )]
    Missing,
    /// A token that is not the configured one.
    #[error("the X-RocketChat-Livechat-Token header is not this workspace's webhook token")]
    Wrong,
}

/// Checks the token header's value against the workspace's `expected` token.
pub fn verify(header: Option<&str>, expected: &Credential) -> Result<(), Unauthentic> {
    let given = header.ok_or(Unauthentic::Missing)?;
    if constant_time_eq(given.as_bytes(), expected.expose().as_bytes()) {
        Ok(())
    } else {
        Err(Unauthentic::Wrong)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_token_passes() {
        let expected = Credential::new("a-webhook-token-of-24-chars".into());
        assert_eq!(
            verify(Some("a-webhook-token-of-24-chars"), &expected),
            Ok(())
        );
        assert_eq!(
            verify(Some("a-webhook-token-of-24-charZ"), &expected),
            Err(Unauthentic::Wrong)
        );
        assert_eq!(verify(Some(""), &expected), Err(Unauthentic::Wrong));
        assert_eq!(verify(None, &expected), Err(Unauthentic::Missing));
    }
}
