//! Components: loaded once (compiled, or mapped from a precompiled artifact), linked
//! against the host's capabilities, then instantiated for every tenant that runs them.

use std::path::Path;
use std::sync::Arc;

use wasmtime::component::Component;

use crate::bindings::PluginPre;
use crate::engine::Runtime;
use crate::state::InstanceState;
use crate::world::World;

/// Why a component could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The engine could not be set up.
    #[error("cannot set up the wasm engine: {0:#}")]
    Engine(wasmtime::Error),
    /// The file could not be read.
    #[error("{path}: cannot read component: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not a component of the `chat-gateway:plugin` world.
    #[error("{name}: not a usable chat-gateway:plugin component: {source:#}")]
    Invalid {
        /// File name or label.
        name: String,
        /// What wasmtime found wrong.
        source: wasmtime::Error,
    },
}

/// A compiled component, linked and ready to instantiate many times.
pub struct PluginComponent<W: 'static> {
    name: String,
    pub(crate) pre: PluginPre<InstanceState<W>>,
}

impl<W: 'static> PluginComponent<W> {
    /// The file name or label it was loaded from.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl<W: 'static> std::fmt::Debug for PluginComponent<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginComponent")
            .field("name", &self.name)
            .finish()
    }
}

impl<W: World> Runtime<W> {
    /// Loads a component: compiles a `.wasm` file, or maps a `.cwasm` file made by
    /// [`Runtime::precompile`] (`autoclose compile`), which skips compilation and
    /// starts in a fraction of the time.
    ///
    /// A `.cwasm` file is machine code that is mapped and run as it is: load only files
    /// you compiled yourself with the same autoclose build. Wasmtime refuses files from
    /// another version or configuration.
    pub fn load_file(&self, path: &Path) -> Result<Arc<PluginComponent<W>>, LoadError> {
        let name = path.display().to_string();
        if path.extension().is_some_and(|e| e == "cwasm") {
            // SAFETY: the operator names the file in their own configuration or command
            // line; the documented contract is that only artifacts they compiled with
            // `autoclose compile` are given here. Wasmtime checks the header (version,
            // target, engine configuration) before mapping.
            let component = unsafe { Component::deserialize_file(&self.engine, path) }.map_err(|source| {
                LoadError::Invalid {
                    name: name.clone(),
                    source: source.context(
                        "not a component precompiled by this autoclose build; run `autoclose compile` again",
                    ),
                }
            })?;
            return self.prepare(&name, component);
        }
        let bytes = std::fs::read(path).map_err(|source| LoadError::Read {
            path: name.clone(),
            source,
        })?;
        self.load_bytes(&name, &bytes)
    }

    /// Compiles `bytes` (a `.wasm` component) into an artifact for
    /// [`Runtime::load_file`] with a `.cwasm` name. Checks first that it is a usable
    /// component of the world.
    pub fn precompile(&self, name: &str, bytes: &[u8]) -> Result<Vec<u8>, LoadError> {
        self.load_bytes(name, bytes)?;
        self.engine
            .precompile_component(bytes)
            .map_err(|source| LoadError::Invalid {
                name: name.to_owned(),
                source,
            })
    }

    /// Compiles a component from its bytes; `name` labels it in errors and logs.
    pub fn load_bytes(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<Arc<PluginComponent<W>>, LoadError> {
        let invalid = |source| LoadError::Invalid {
            name: name.to_owned(),
            source,
        };
        let component = Component::new(&self.engine, bytes).map_err(invalid)?;
        self.prepare(name, component)
    }

    /// Links a compiled component against the host's capabilities.
    fn prepare(
        &self,
        name: &str,
        component: Component,
    ) -> Result<Arc<PluginComponent<W>>, LoadError> {
        let invalid = |source| LoadError::Invalid {
            name: name.to_owned(),
            source,
        };
        let pre = self.linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = PluginPre::new(pre).map_err(invalid)?;
        Ok(Arc::new(PluginComponent {
            name: name.to_owned(),
            pre,
        }))
    }
}
