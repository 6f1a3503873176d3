//! Typed errors of the host emulator.

use std::fmt;

/// Everything that can go wrong outside the guest's own control flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The wasm file could not be read.
    Io(String),
    /// The module failed to compile (not valid wasm, unsupported feature…).
    Compile(String),
    /// The module could not be linked or lacks a required export (memory, allocator…).
    Link(String),
    /// The guest trapped during start-up (`_initialize`, `main`, create, vm_start, configure).
    Trap(String),
    /// A configuration error of the host itself (gateway flags, clusters…).
    Config(String),
    /// The plugin's `on_configure` returned false (used by the gateway's canary check).
    ConfigureFailed,
    /// Anything else, with a human-readable message.
    Other(String),
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Io(m) => write!(f, "i/o error: {m}"),
            HostError::Compile(m) => write!(f, "wasm compile error: {m}"),
            HostError::Link(m) => write!(f, "wasm link error: {m}"),
            HostError::Trap(m) => write!(f, "wasm trap during start-up: {m}"),
            HostError::Config(m) => write!(f, "configuration error: {m}"),
            HostError::ConfigureFailed => write!(f, "plugin on_configure returned false"),
            HostError::Other(m) => write!(f, "{m}"),
        }
    }
}

impl std::error::Error for HostError {}
