//! The real transport for webhook attempts: HTTPS with rustls, one pooled client,
//! no redirects, a total time-out per attempt, answers read up to 64 KiB, Standard
//! Webhooks signatures made at send time, and the egress policy applied to the
//! addresses a host name resolves to, at connect time.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::egress::refused_range;
use crate::outbound::{Attempt, Outbound};
use crate::retry::{AttemptResult, parse_retry_after};
use crate::signing::{self, ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// Most bytes of an answer read; the rest is discarded unread.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Longest a connection may take to open (within the attempt's total time-out).
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the transport could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The async runtime or the TLS client could not be built.
    #[error("cannot set up the HTTP client: {0}")]
    Setup(String),
}

/// The two pooled clients every attempt goes through: one that applies the egress
/// policy at connect time, one for `egress.allow_private_networks` (and for the
/// operator's own gateway callback). Cheap to clone.
#[derive(Clone)]
pub struct Clients {
    /// Refuses private and loopback addresses.
    guarded: reqwest::Client,
    /// Reaches any address.
    open: reqwest::Client,
}

impl Clients {
    /// Builds both clients.
    pub fn new() -> Result<Self, HttpError> {
        let build = |guard: bool| {
            let builder = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(CONNECT_TIMEOUT)
                .pool_idle_timeout(Duration::from_secs(60))
                .user_agent(concat!("autoclose/", env!("CARGO_PKG_VERSION")));
            let builder = if guard {
                builder.dns_resolver(Arc::new(EgressResolver))
            } else {
                builder
            };
            builder.build().map_err(|e| HttpError::Setup(e.to_string()))
        };
        Ok(Clients {
            guarded: build(true)?,
            open: build(false)?,
        })
    }

    /// Makes one attempt with the client its egress policy calls for.
    pub async fn send(&self, attempt: &Attempt) -> AttemptResult {
        let client = if attempt.allow_private_networks {
            &self.open
        } else {
            &self.guarded
        };
        send(client, attempt).await
    }
}

/// Sends attempts for real, one at a time, blocking the caller until each ends (replay
/// and `test-webhook`; the server sends asynchronously through [`Clients`]).
pub struct HttpSender {
    runtime: tokio::runtime::Runtime,
    clients: Clients,
}

impl HttpSender {
    /// Builds the runtime and the clients.
    pub fn new() -> Result<Self, HttpError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| HttpError::Setup(e.to_string()))?;
        Ok(HttpSender {
            runtime,
            clients: Clients::new()?,
        })
    }

    /// Makes one attempt and waits for its result.
    pub fn send(&self, attempt: &Attempt) -> AttemptResult {
        self.runtime.block_on(self.clients.send(attempt))
    }
}

impl Outbound for HttpSender {
    fn attempt(&mut self, attempt: Attempt) -> Option<AttemptResult> {
        Some(self.send(&attempt))
    }
}

/// The refusal message for an address in a refused range.
fn refusal(host: &str, ip: IpAddr, range: &str) -> String {
    format!(
        "refused by the egress policy: {host} is {ip}, in {range}; set egress.allow_private_networks to allow it"
    )
}

/// Makes one attempt with `client`.
pub async fn send(client: &reqwest::Client, attempt: &Attempt) -> AttemptResult {
    let host = attempt
        .url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_owned();
    if !attempt.allow_private_networks
        && let Ok(ip) = host.parse::<IpAddr>()
        && let Some(range) = refused_range(ip)
    {
        return AttemptResult::Refused(refusal(&host, ip, range));
    }
    let method = match reqwest::Method::from_bytes(attempt.method.as_bytes()) {
        Ok(method) => method,
        Err(_) => {
            return AttemptResult::Refused(format!("{:?} is not an HTTP method", attempt.method));
        }
    };
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut request = client
        .request(method, attempt.url.clone())
        .timeout(Duration::from_millis(attempt.timeout_ms))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(ID_HEADER, &attempt.id)
        .header(TIMESTAMP_HEADER, timestamp.to_string());
    for (name, value) in &attempt.headers {
        request = request.header(name, value);
    }
    if !attempt.secrets.is_empty() {
        let signature = signing::signature(&attempt.secrets, &attempt.id, timestamp, &attempt.body);
        request = request.header(SIGNATURE_HEADER, signature);
    }
    let response = match request.body(attempt.body.to_vec()).send().await {
        Ok(response) => response,
        Err(e) => return classify(e, attempt.timeout_ms),
    };
    let status = response.status().as_u16();
    let retry_after_ms = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()));
    // Read at most MAX_ANSWER_BYTES: a receiver cannot stream without end.
    let mut response = response;
    let mut body = Vec::new();
    while body.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER_BYTES - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            _ => break,
        }
    }
    AttemptResult::Answered {
        status,
        retry_after_ms,
        body,
    }
}

/// Turns a client error into an attempt result, without the URL (it may carry a
/// token in its query).
fn classify(error: reqwest::Error, timeout_ms: u64) -> AttemptResult {
    let mut source: Option<&dyn std::error::Error> = Some(&error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<EgressRefused>() {
            return AttemptResult::Refused(refused.0.clone());
        }
        source = e.source();
    }
    if error.is_timeout() {
        return AttemptResult::Failed(format!("timed out after {timeout_ms} ms"));
    }
    let error = error.without_url();
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(e) = source {
        reason = format!("{reason}: {e}");
        source = e.source();
    }
    AttemptResult::Failed(reason)
}

/// A host name whose every address is refused by the egress policy.
#[derive(Debug)]
struct EgressRefused(String);

impl std::fmt::Display for EgressRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EgressRefused {}

/// Resolves names and keeps only addresses the egress policy allows: checked after
/// resolution, at connect time, so a name re-bound to an internal address is refused.
struct EgressResolver;

impl reqwest::dns::Resolve for EgressResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addresses
                .iter()
                .filter(|a| refused_range(a.ip()).is_none())
                .copied()
                .collect();
            if allowed.is_empty() {
                let reason = match addresses.first() {
                    Some(a) => refusal(
                        &host,
                        a.ip(),
                        refused_range(a.ip()).unwrap_or("a refused range"),
                    ),
                    None => format!("{host} did not resolve"),
                };
                return Err(
                    Box::new(EgressRefused(reason)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
