//! easy-jwt-host: a proxy-wasm host emulator that behaves like Envoy/Higress
//! (see `host/API.md` and `shared/notes/host-semantics.md`).
//!
//! Layout: `plugin` (compiled module), `env` (process-wide state), `clock`, `pairs`, `headers`,
//! `shared_data`, `metrics`, `wasi` and `hostcalls` (the imports), `vm` (the synchronous
//! driver), `gateway` + `echo` (async HTTP front end).

pub mod clock;
pub mod echo;
pub mod env;
pub mod error;
pub mod gateway;
mod guest;
pub mod headers;
mod hostcalls;
mod memory;
pub mod metrics;
pub mod pairs;
pub mod plugin;
pub mod shared_data;
mod state;
pub mod vm;
mod wasi;

pub use clock::{Clock, ManualClock, SystemClock};
pub use env::HostEnv;
pub use error::HostError;
pub use plugin::Plugin;
pub use vm::{
    CallOutcome, Event, Flavor, HttpCall, LocalReply, LogLevel, LogRecord, StreamId, StreamProps,
    StreamState, Vm, VmConfig,
};
