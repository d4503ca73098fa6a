//! The reference host for `chat-gateway:plugin` components, and the engine of the
//! `autoclose` CLI.
//!
//! - [`runtime`]: wasmtime engine, component loading, the sandbox (time and memory).
//! - [`instance`]: what each instance's store holds, and the capabilities it imports.
//! - [`gateway`]: sessions, timers and per-tenant instances, driven by events and time.
//! - [`replay`] and [`scenario`]: run a recorded conversation on virtual time.

pub mod action;
pub mod bindings;
pub mod cli;
pub mod config;
pub mod event;
pub mod gateway;
pub mod generate;
pub mod http;
pub mod instance;
pub mod outbound;
pub mod outbox;
pub mod replay;
pub mod runtime;
pub mod scenario;
pub mod serve;
pub mod sessions;
pub mod store;
pub mod timers;
pub mod webhook;

/// The auto-close component built from `plugin/` by this crate's build script.
pub const DEFAULT_PLUGIN: &[u8] = include_bytes!(env!("AUTOCLOSE_PLUGIN_WASM"));

/// Where the build script put the auto-close component (for tests and tools).
pub const DEFAULT_PLUGIN_PATH: &str = env!("AUTOCLOSE_PLUGIN_WASM");
