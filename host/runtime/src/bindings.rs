//! Host-side bindings of the `chat-gateway:plugin` world (see `wit/`).
//!
//! Every import may trap (`trappable`): the host traps a plugin that breaks a limit,
//! which replaces its instance, rather than returning an error it could ignore.

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "chat-gateway:plugin/plugin",
    imports: { default: trappable },
});
