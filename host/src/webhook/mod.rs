//! Webhooks: the operator's definitions, payload formats, Standard Webhooks signing,
//! the retry policy and the egress policy. Everything here is host-side: secrets,
//! URLs and headers never enter a plugin's sandbox.

pub mod egress;
pub mod format;
pub mod retry;
pub mod secret;
pub mod signing;
