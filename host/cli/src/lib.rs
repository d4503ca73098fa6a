//! The `autoclose` CLI and what it is made of beyond the host's crates: replay on
//! virtual time, the scenario format, and the scenario generator.
//!
//! - [`cli`]: the commands (`replay`, `serve`, `check-config`, `schema`,
//!   `test-webhook`, `compile`, `generate`).
//! - [`replay`] and [`scenario`]: run a recorded conversation on virtual time.
//! - [`generate`]: reproducible scenarios for load figures.
//!
//! The host itself is in the crates this one drives: `autoclose-runtime` (the
//! sandbox), `autoclose-core` (sessions, timers, calls, deliveries),
//! `autoclose-config`, `autoclose-webhook`, `autoclose-store` and `autoclose-serve`.

#![warn(missing_docs)]

pub mod cli;
pub mod generate;
pub mod replay;
pub mod scenario;
pub mod whatif;

/// The auto-close component built from `plugin/` by this crate's build script.
pub const DEFAULT_PLUGIN: &[u8] = include_bytes!(env!("AUTOCLOSE_PLUGIN_WASM"));

/// Where the build script put the auto-close component (for tests and tools).
pub const DEFAULT_PLUGIN_PATH: &str = env!("AUTOCLOSE_PLUGIN_WASM");
