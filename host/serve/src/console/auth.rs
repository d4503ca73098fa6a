//! Who may open the console: the same tokens as the admin API (the operator's sees
//! every tenant, a tenant's token only its own), given once on a sign-in page and
//! then carried by a cookie, because a browser cannot send a bearer header when it
//! follows a link. A bearer header works too, for tools.
//!
//! The cookie is `HttpOnly` (no script reads it) and `SameSite=Strict` (no other site
//! makes the browser send it); the console only reads, so the one form that changes
//! anything is the sign-in itself. Serve the console behind TLS (or on loopback): the
//! cookie holds the token.

use axum::http::{HeaderMap, HeaderValue, header};

use crate::access::Scope;
use crate::state::AppState;

/// The cookie's name.
pub const COOKIE: &str = "autoclose_console";

/// The token a request carries: its bearer header, else the console's cookie.
pub fn token(headers: &HeaderMap) -> &str {
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return bearer;
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .unwrap_or("")
}

/// The scope of a console request, or `None` (sign in first).
pub fn viewer(state: &AppState, headers: &HeaderMap) -> Option<Scope> {
    state.access.scope_of_token(token(headers))
}

/// The `Set-Cookie` that signs a browser in with `token` (a token is printable ASCII
/// without `;`, or it is refused).
pub fn sign_in(token: &str) -> Option<HeaderValue> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic() && b != b';') {
        return None;
    }
    HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/ui; HttpOnly; SameSite=Strict"
    ))
    .ok()
}

/// The `Set-Cookie` that signs a browser out.
pub fn sign_out() -> HeaderValue {
    HeaderValue::from_static("autoclose_console=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_comes_from_the_bearer_header_else_the_cookie() {
        let mut headers = HeaderMap::new();
        assert_eq!(token(&headers), "");
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; autoclose_console=abc123; other=1"),
        );
        assert_eq!(token(&headers), "abc123");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(token(&headers), "xyz");
    }

    #[test]
    fn a_cookie_is_made_only_of_a_token_that_fits_in_one() {
        assert!(sign_in("abc;def").is_none());
        assert!(sign_in("").is_none());
        assert!(sign_in("with space").is_none());
        let cookie = sign_in("token-0123456789abcdef").expect("a cookie");
        let text = cookie.to_str().unwrap_or_default();
        assert!(
            text.contains("HttpOnly") && text.contains("SameSite=Strict"),
            "{text}"
        );
    }
}
