//! The auto-close chat-gateway plugin.
//!
//! When an agent or bot has spoken and the end user stays silent, the plugin posts a
//! warning into the chat (and pushes it to the user's phone through the operator's
//! webhook), then closes the chat. The decisions are plain Rust in [`policy`], unit
//! tested natively; the component glue (compiled for `wasm32-wasip2` only) turns host
//! events into policy calls and plans into host capability calls.

#![warn(missing_docs)]

pub mod config;
pub mod explain;
pub mod hours;
pub mod locale;
pub mod policy;
pub mod push;
pub mod template;

#[cfg(target_arch = "wasm32")]
mod component;
