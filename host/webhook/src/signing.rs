//! Standard Webhooks v1 signatures: `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}")),
//! over the exact bytes sent. With two secrets (rotation) both signatures are sent,
//! space-separated, so receivers holding either secret accept the request.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::secret::Secret;

/// Lower-case hexadecimal digits, for ids.
const HEX: &[u8; 16] = b"0123456789abcdef";

/// Header carrying the delivery id, the same for every attempt of one delivery.
pub const ID_HEADER: &str = "webhook-id";
/// Header carrying the attempt's Unix time in seconds.
pub const TIMESTAMP_HEADER: &str = "webhook-timestamp";
/// Header carrying the signatures.
pub const SIGNATURE_HEADER: &str = "webhook-signature";

/// The `webhook-signature` value for `body` sent as delivery `id` at `timestamp`.
pub fn signature(secrets: &[Secret], id: &str, timestamp: u64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|secret| {
            let mut mac = Hmac::<Sha256>::new_from_slice(secret.key())
                .expect("HMAC-SHA256 takes keys of any length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(timestamp.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A delivery id derived from what identifies the notice (tenant, session, event type
/// and the plugin's idempotency key), so that the same notice triggered twice gets the
/// same id and the receiver can drop the duplicate.
pub fn delivery_id(tenant: &str, session: &str, event_type: &str, key: &str) -> String {
    derived_id("msg_", &[tenant, session, event_type, key])
}

/// `prefix` + 32 hex digits of SHA-256 over the length-prefixed `parts`: an id that
/// the same parts always give and different parts practically never share.
pub fn derived_id(prefix: &str, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut id = String::with_capacity(prefix.len() + 32);
    id.push_str(prefix);
    for byte in &digest[..16] {
        id.push(HEX[usize::from(byte >> 4)] as char);
        id.push(HEX[usize::from(byte & 0xf)] as char);
    }
    id
}

/// Compares two byte strings in time that depends on their lengths only: a token
/// compared with an early exit on the first differing byte would tell, by the time
/// the answer takes, how much of a guess was right.
pub fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = given.len() ^ expected.len();
    for (i, x) in expected.iter().enumerate() {
        diff |= usize::from(x ^ given.get(i).copied().unwrap_or(0));
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification (its reference test vector).
    #[test]
    fn matches_the_specification_example() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").ok();
        // That example secret is 24 bytes long: a valid secret here too.
        let secret = secret.unwrap_or_else(|| panic!("the spec's example secret must parse"));
        let body = br#"{"test": 2432232314}"#;
        let sig = signature(&[secret], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn rotation_sends_one_signature_per_secret() {
        let a = Secret::parse(&Secret::encode(&[1u8; 24])).unwrap_or_else(|e| panic!("{e}"));
        let b = Secret::parse(&Secret::encode(&[2u8; 24])).unwrap_or_else(|e| panic!("{e}"));
        let both = signature(&[a.clone(), b.clone()], "id", 1, b"{}");
        let parts: Vec<&str> = both.split(' ').collect();
        assert_eq!(
            parts,
            vec![
                signature(&[a], "id", 1, b"{}"),
                signature(&[b], "id", 1, b"{}")
            ]
        );
    }

    #[test]
    fn delivery_ids_are_stable_and_distinct() {
        let id = delivery_id("acme", "s1", "chat.auto_close.warning", "301000");
        assert_eq!(
            id,
            delivery_id("acme", "s1", "chat.auto_close.warning", "301000")
        );
        assert!(id.starts_with("msg_") && id.len() == 36, "{id}");
        assert_ne!(
            id,
            delivery_id("acme", "s1", "chat.auto_close.closed", "301000")
        );
        assert_ne!(
            id,
            delivery_id("acme", "s1", "chat.auto_close.warning", "302000")
        );
        // Length-prefixing keeps ("ab","c") and ("a","bc") apart.
        assert_ne!(
            delivery_id("ab", "c", "t", "k"),
            delivery_id("a", "bc", "t", "k")
        );
    }
}
