//! Webhooks, host-side: the operator's endpoints, payload formats, Standard Webhooks
//! signing, the retry policy, the egress guard, and the transport that makes the
//! attempts. Secrets, URLs and headers live here and never enter a plugin's sandbox.
//!
//! - [`secret`], [`signing`]: `whsec_` secrets and Standard Webhooks v1 signatures.
//! - [`format`]: how a body is built (standard envelope, ntfy, gotify, templates).
//! - [`retry`]: when to retry and when to give up.
//! - [`egress`]: which addresses a request may reach.
//! - [`outbound`]: the transport seam ([`outbound::Attempt`], [`outbound::Outbound`])
//!   and the in-memory transports of replay and tests.
//! - [`http`]: the real transport (reqwest and rustls, the egress guard at connect
//!   time).

#![warn(missing_docs)]

pub mod egress;
pub mod format;
pub mod http;
pub mod outbound;
pub mod retry;
pub mod secret;
pub mod signing;
