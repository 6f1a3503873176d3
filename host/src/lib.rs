//! easy-jwt-host: an in-process proxy-wasm host that behaves like Envoy (and, in
//! [`Flavor::Higress`], like Higress's gateway): the fast, deterministic test harness of the
//! plugin. Real Envoy is the reference; where the two disagree, this host is wrong
//! (see `host/API.md` and `docs/host-semantics.md`).
//!
//! Layout: `plugin` (compiled module), `env` (process-wide state), `clock`, `pairs`, `headers`,
//! `shared_data`, `metrics`, `wasi` and `hostcalls` (the imports), `vm` (the synchronous
//! driver), `cluster_call` (answers a call from a real HTTP server).

pub mod clock;
pub mod cluster_call;
pub mod env;
pub mod error;
mod guest;
pub mod headers;
mod hostcalls;
mod memory;
pub mod metrics;
pub mod pairs;
pub mod plugin;
pub mod shared_data;
mod state;
pub mod types;
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
