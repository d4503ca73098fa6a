//! Whether a webhook delivery comes from the Chatwoot account it claims to.
//!
//! Chatwoot 4.11.2 and later sign account webhooks (`lib/webhooks/trigger.rb`):
//! `X-Chatwoot-Timestamp` is the Unix time in seconds and `X-Chatwoot-Signature` is
//! `sha256=` + hex(HMAC-SHA256(secret, timestamp + "." + body)). Older versions sign
//! nothing; their webhook URL carries a token of ours instead.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use autoclose_config::{ChatwootInbound, Credential};
use autoclose_webhook::signing::constant_time_eq;

/// The header with the signature.
pub const SIGNATURE_HEADER: &str = "x-chatwoot-signature";
/// The header with the signing time (Unix seconds).
pub const TIMESTAMP_HEADER: &str = "x-chatwoot-timestamp";

/// Why a delivery was refused. Never carries the secret or the expected signature.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unauthentic {
    /// A signature or timestamp header is missing.
    #[error(
        "missing {0} (Chatwoot before 4.11.2 signs nothing: configure webhook_url_token instead of webhook_secret)"
    )]
    Missing(&'static str),
    /// The timestamp is not a number of seconds.
    #[error("{TIMESTAMP_HEADER} is not a Unix time in seconds")]
    BadTimestamp,
    /// The timestamp is further from our clock than allowed: a replay, or a clock off.
    #[error(
        "signed {skew_s}s away from this host's clock; at most {max_s}s (gateway.chatwoot.max_clock_skew)"
    )]
    Skewed {
        /// How far, in seconds.
        skew_s: u64,
        /// The bound, in seconds.
        max_s: u64,
    },
    /// The signature does not match the body.
    #[error("the signature does not match the body (wrong webhook_secret?)")]
    Mismatch,
    /// The URL token is missing or wrong.
    #[error("the webhook URL's token is missing or wrong")]
    BadToken,
}

/// What of a delivery the check needs: its headers (lower-case names), the URL's
/// `token` query parameter, and the exact body bytes.
pub struct Delivery<'a> {
    /// Looks up a header by its lower-case name.
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
    /// The `token` query parameter, if any.
    pub url_token: Option<&'a str>,
    /// The body as received.
    pub body: &'a [u8],
}

/// Checks `delivery` against the account's inbound setting at `now_ms`.
pub fn verify(
    inbound: &ChatwootInbound,
    delivery: &Delivery<'_>,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<(), Unauthentic> {
    match inbound {
        ChatwootInbound::Signed(secret) => verify_signed(secret, delivery, now_ms, max_skew_ms),
        ChatwootInbound::UrlToken(token) => {
            let given = delivery.url_token.ok_or(Unauthentic::BadToken)?;
            if constant_time_eq(given.as_bytes(), token.expose().as_bytes()) {
                Ok(())
            } else {
                Err(Unauthentic::BadToken)
            }
        }
    }
}

fn verify_signed(
    secret: &Credential,
    delivery: &Delivery<'_>,
    now_ms: u64,
    max_skew_ms: u64,
) -> Result<(), Unauthentic> {
    let signature =
        (delivery.header)(SIGNATURE_HEADER).ok_or(Unauthentic::Missing("X-Chatwoot-Signature"))?;
    let timestamp =
        (delivery.header)(TIMESTAMP_HEADER).ok_or(Unauthentic::Missing("X-Chatwoot-Timestamp"))?;
    let seconds: u64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Unauthentic::BadTimestamp)?;
    let skew_ms = seconds.saturating_mul(1000).abs_diff(now_ms);
    if skew_ms > max_skew_ms {
        return Err(Unauthentic::Skewed {
            skew_s: skew_ms / 1000,
            max_s: max_skew_ms / 1000,
        });
    }
    let hex = signature
        .trim()
        .strip_prefix("sha256=")
        .ok_or(Unauthentic::Mismatch)?;
    let expected = decode_hex(hex).ok_or(Unauthentic::Mismatch)?;
    let mut mac = mac(secret);
    mac.update(timestamp.trim().as_bytes());
    mac.update(b".");
    mac.update(delivery.body);
    // verify_slice compares in constant time.
    mac.verify_slice(&expected)
        .map_err(|_| Unauthentic::Mismatch)
}

/// The signature Chatwoot would send for `body` at `timestamp` (tests and fakes).
pub fn sign(secret: &Credential, timestamp: &str, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn mac(secret: &Credential) -> Hmac<Sha256> {
    // HMAC takes a key of any length.
    Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()).expect("HMAC takes any key length")
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ChatwootInbound {
        ChatwootInbound::Signed(Credential::new("s3cr3t-from-chatwoot".into()))
    }

    fn check(headers: &[(&str, String)], body: &[u8], now_ms: u64) -> Result<(), Unauthentic> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        let delivery = Delivery {
            header: &header,
            url_token: None,
            body,
        };
        verify(&secret(), &delivery, now_ms, 300_000)
    }

    #[test]
    fn a_signature_over_timestamp_and_body_passes_and_any_change_fails() {
        let key = Credential::new("s3cr3t-from-chatwoot".into());
        let body = br#"{"event":"message_created","id":1}"#;
        let ts = "1764700000";
        let good = sign(&key, ts, body);
        let now = 1_764_700_010_000;
        let headers = vec![
            (SIGNATURE_HEADER, good.clone()),
            (TIMESTAMP_HEADER, ts.to_owned()),
        ];
        assert_eq!(check(&headers, body, now), Ok(()));
        assert_eq!(
            check(&headers, br#"{"event":"message_created","id":2}"#, now),
            Err(Unauthentic::Mismatch)
        );
        let later = vec![
            (SIGNATURE_HEADER, good.clone()),
            (TIMESTAMP_HEADER, "1764700001".to_owned()),
        ];
        assert_eq!(check(&later, body, now), Err(Unauthentic::Mismatch));
        assert!(matches!(
            check(&headers, body, now + 600_000),
            Err(Unauthentic::Skewed { .. })
        ));
        assert_eq!(
            check(&headers[..1], body, now),
            Err(Unauthentic::Missing("X-Chatwoot-Timestamp"))
        );
        let e = check(&headers, b"x", now).unwrap_err().to_string();
        assert!(!e.contains("s3cr3t"), "{e}");
    }

    #[test]
    fn a_url_token_is_compared_whole() {
        let inbound = ChatwootInbound::UrlToken(Credential::new("t".repeat(24)));
        fn no_header(_: &str) -> Option<&'static str> {
            None
        }
        let with = |token: Option<&'static str>| {
            verify(
                &inbound,
                &Delivery {
                    header: &no_header,
                    url_token: token,
                    body: b"{}",
                },
                0,
                1,
            )
        };
        let right: &'static str = "tttttttttttttttttttttttt";
        let short: &'static str = "ttttttttttttttttttttttt";
        assert_eq!(with(Some(right)), Ok(()));
        assert_eq!(with(Some(short)), Err(Unauthentic::BadToken));
        assert_eq!(with(None), Err(Unauthentic::BadToken));
    }
}
