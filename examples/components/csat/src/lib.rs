//! An example vendor component for the `chat-gateway:plugin` world: when a chat in
//! which the end user took part ends, it asks the tenant's survey service (through a
//! webhook the operator configured) to send a satisfaction survey.
//!
//! It is a model for vendors, small on purpose, and shows the parts every component
//! has: settings checked at `configure` with errors that name the field, a policy in
//! plain Rust tested natively ([`survey`]), state kept in the host rather than in the
//! instance (`sessions.state`), and a webhook sent as a last notice while the host
//! reports the session's close. See "Writing your own component" in docs/contract.md.

#![warn(missing_docs)]

pub mod survey;

#[cfg(target_arch = "wasm32")]
mod component;
