//! Write a [`chat-gateway:plugin`](https://example.invalid/autoclose/wit) component in
//! Rust.
//!
//! A chat gateway (or `autoclose serve` beside one) loads a plugin component per
//! tenant and feeds it the tenant's chat events; the plugin acts through the host's
//! capabilities: timers, webhooks, posts, closes. This crate is what a plugin
//! depends on:
//!
//! - [`Plugin`]: a trait with a default for every hook, implemented by what the
//!   plugin keeps per tenant. The SDK keeps one value per configured tenant and hands
//!   each event to its tenant's value, so a plugin never keys anything by tenant.
//! - [`export_plugin!`]: exports the type as the component's `about` and `hooks`.
//!   Several events in one call (`hooks.on-events`) reach the single-event hooks one by
//!   one, in order, as the contract requires.
//! - [`Session`] and [`Channel`]: typed handles whose methods are the capabilities
//!   (`session.post(..)`, `session.set_timer(..)`, `session.send(..)`, ...), and
//!   [`now`] and [`log`] for the clock and the host's log.
//!
//! The contract itself (every type, every rule) is documented in the WIT this crate is
//! generated from; its types are re-exported here under their WIT names.
//!
//! # A complete plugin
//!
//! Greets the end user once per chat, the first time an agent speaks, with a text each
//! tenant sets (`{"greeting": "..."}`):
//!
//! ```no_run
#![doc = include_str!("../examples/greeter.rs")]
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2 --release` (after
//! `rustup target add wasm32-wasip2`); the `.wasm` file under
//! `target/wasm32-wasip2/release/` is the component.
//!
//! # What the SDK does not do
//!
//! It keeps nothing per session: the host may replace an instance between any two
//! hooks, so what a plugin must remember about a session goes into
//! [`Session::set_state`] or a timer's payload. The per-tenant values are rebuilt by
//! [`Plugin::configure`] in every fresh instance.

#![warn(missing_docs)]

mod handles;
mod plugin;

#[doc(hidden)]
pub mod glue;

/// The bindings generated from the WIT contract. Everything a plugin needs is
/// re-exported at the crate root; the module stays public for the generated export
/// macro, which the plugin's crate expands.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "chat-gateway:plugin/plugin",
        default_bindings_module: "chat_gateway_sdk::bindings",
        pub_export_macro: true,
        export_macro_name: "__export_world",
    });
}

pub use bindings::chat_gateway::plugin::chat::ActionError;
pub use bindings::chat_gateway::plugin::events::{
    CloseCause, Event, HttpAnswer, HttpOutcome, HttpResponseEvent, MessageEvent, MessageField,
    SessionChange, SessionEvent, TimerEvent,
};
pub use bindings::chat_gateway::plugin::http::{SendError, WebhookRequest};
pub use bindings::chat_gateway::plugin::logging::Level;
pub use bindings::chat_gateway::plugin::sessions::StateError;
pub use bindings::chat_gateway::plugin::timers::TimerError;
pub use bindings::chat_gateway::plugin::types::{
    ChannelId, ConfigError, HostLimits, Interests, MessageFields, Presence, SenderRole, SessionId,
    TenantId, TenantSetup, TimestampMs,
};
pub use bindings::exports::chat_gateway::plugin::about::PluginInfo;
pub use handles::{Channel, RequestId, Session, log, now};
pub use plugin::Plugin;

/// Exports `$plugin`, a type implementing [`Plugin`], as this crate's component.
///
/// Use it once, at the root of a `cdylib` crate built for `wasm32-wasip2`. It keeps
/// one `$plugin` per configured tenant (built by [`Plugin::configure`]) and hands each
/// event to its tenant's.
///
/// Expands to nothing on other targets than wasm32, so that a plugin crate also builds
/// natively (for its unit tests): the exports are component-model symbols no native
/// linker takes.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct Exports;

            ::std::thread_local! {
                static TENANTS: $crate::glue::Tenants<$plugin> = const { $crate::glue::Tenants::new() };
            }

            impl $crate::glue::About for Exports {
                fn info() -> $crate::PluginInfo {
                    <$plugin as $crate::Plugin>::info()
                }

                fn explain(
                    setup: $crate::TenantSetup,
                ) -> ::core::result::Result<::std::string::String, $crate::ConfigError> {
                    $crate::glue::explain::<$plugin>(setup)
                }
            }

            impl $crate::glue::Hooks for Exports {
                fn configure(
                    setup: $crate::TenantSetup,
                ) -> ::core::result::Result<$crate::Interests, $crate::ConfigError> {
                    TENANTS.with(|tenants| tenants.configure(setup))
                }

                fn on_message(event: $crate::MessageEvent) {
                    TENANTS.with(|tenants| tenants.on_message(event))
                }

                fn on_session_event(event: $crate::SessionEvent) {
                    TENANTS.with(|tenants| tenants.on_session_event(event))
                }

                fn on_timer(event: $crate::TimerEvent) {
                    TENANTS.with(|tenants| tenants.on_timer(event))
                }

                fn on_http_response(event: $crate::HttpResponseEvent) {
                    TENANTS.with(|tenants| tenants.on_http_response(event))
                }

                fn on_events(events: ::std::vec::Vec<$crate::Event>) {
                    TENANTS.with(|tenants| tenants.on_events(events))
                }
            }

    $crate::bindings::__export_world!(Exports with_types_in $crate::bindings);
        };
        // Natively, what the exports would call is still checked and counted as used.
        #[cfg(not(target_arch = "wasm32"))]
        const _: fn(&$crate::TenantSetup) -> ::core::result::Result<$plugin, $crate::ConfigError> =
            <$plugin as $crate::Plugin>::configure;
    };
}
