//! `Plugin`: a compiled proxy-wasm module (one wasmtime Engine + Module).

use std::path::Path;

use wasmtime::{Config, Engine, Module};

use crate::error::HostError;

/// A compiled plugin; cheap to clone and shareable across threads (one VM per worker).
#[derive(Clone)]
pub struct Plugin {
    engine: Engine,
    module: Module,
}

impl Plugin {
    /// Reads and compiles a `.wasm` file.
    pub fn load(path: impl AsRef<Path>) -> Result<Plugin, HostError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| HostError::Io(format!("{}: {e}", path.display())))?;
        Plugin::from_bytes(&bytes)
    }

    /// Compiles a module from its bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Plugin, HostError> {
        let engine =
            Engine::new(&Config::new()).map_err(|e| HostError::Compile(format!("{e:#}")))?;
        let module =
            Module::new(&engine, bytes).map_err(|e| HostError::Compile(format!("{e:#}")))?;
        Ok(Plugin { engine, module })
    }

    /// The wasmtime engine the module was compiled with.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The compiled module.
    pub fn module(&self) -> &Module {
        &self.module
    }

    /// The module's imports as (module, name) pairs.
    pub fn imports(&self) -> Vec<(String, String)> {
        self.module
            .imports()
            .map(|i| (i.module().to_string(), i.name().to_string()))
            .collect()
    }
}
