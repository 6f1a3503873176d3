//! `Plugin`: a compiled proxy-wasm module (one wasmtime Engine + Module).

use std::path::Path;

use wasmtime::{Config, Engine, Module};

use crate::error::HostError;

/// A compiled plugin; cheap to clone and shareable across threads (one VM per worker).
#[derive(Clone)]
pub struct Plugin {
    engine: Engine,
    module: Module,
    metered: bool,
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
        Plugin::compile(bytes, false)
    }

    /// Reads and compiles a `.wasm` file with wasmtime fuel metering: VMs started from it count
    /// the wasm instructions they execute ([`crate::Vm::fuel_consumed`]) and the hostcalls they
    /// make ([`crate::Vm::hostcalls`]). For benchmarks; the code runs slower than [`Plugin::load`]'s.
    pub fn load_metered(path: impl AsRef<Path>) -> Result<Plugin, HostError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|e| HostError::Io(format!("{}: {e}", path.display())))?;
        Plugin::from_bytes_metered(&bytes)
    }

    /// [`Plugin::load_metered`] from the module's bytes.
    pub fn from_bytes_metered(bytes: &[u8]) -> Result<Plugin, HostError> {
        Plugin::compile(bytes, true)
    }

    fn compile(bytes: &[u8], metered: bool) -> Result<Plugin, HostError> {
        let mut config = Config::new();
        if metered {
            config.consume_fuel(true);
        }
        let engine = Engine::new(&config).map_err(|e| HostError::Compile(format!("{e:#}")))?;
        let module =
            Module::new(&engine, bytes).map_err(|e| HostError::Compile(format!("{e:#}")))?;
        Ok(Plugin {
            engine,
            module,
            metered,
        })
    }

    /// Whether the module was compiled with fuel metering ([`Plugin::load_metered`]).
    pub fn metered(&self) -> bool {
        self.metered
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
