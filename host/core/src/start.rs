//! What every host that runs the core starts with, from the operator's file: the
//! runtime its limits ask for, and the component of tenants that name none. The CLI's
//! commands and `serve` (at start and on reload) start the same way.

use std::path::Path;
use std::sync::Arc;

use autoclose_config::HostConfig;
use autoclose_runtime::LoadError;

use crate::state::{PluginComponent, Runtime};

/// How the built-in component is labelled in errors and reports.
pub const BUILT_IN: &str = "built-in";

/// Whether `runtime` runs instances as `config` asks (so that a reload may keep it).
pub fn runtime_fits(runtime: &Runtime, config: &HostConfig) -> bool {
    *runtime.limits() == config.limits && runtime.options() == config.runtime_options()
}

/// The runtime `config` asks for: its limits, epoch interruption, and its instance
/// allocation.
pub fn runtime_for(config: &HostConfig) -> Result<Arc<Runtime>, LoadError> {
    Ok(Arc::new(Runtime::with_options(
        config.limits,
        config.runtime_options(),
    )?))
}

/// The component of tenants that name none: the file `plugin` when given, else
/// `built_in` (the binary's own auto-close component).
pub fn default_component(
    runtime: &Runtime,
    plugin: Option<&Path>,
    built_in: &[u8],
) -> Result<Arc<PluginComponent>, LoadError> {
    match plugin {
        Some(path) => runtime.load_file(path),
        None => runtime.load_bytes(BUILT_IN, built_in),
    }
}
