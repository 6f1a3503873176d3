//! Shared code of the benchmark and soak binaries of easy-jwt (`src/bin/`):
//!
//! - `envoy-bench` (`make bench`): instructions Envoy executes per request with the plugin on
//!   each of its paths, next to no filter, a no-op wasm filter, a minimal call-and-resume filter,
//!   Envoy's `jwt_authn` and a Lua filter, counted by valgrind's callgrind ([`callgrind`]); then
//!   the guest-side breakdown ([`guest`]) and the artifact size.
//! - `guest-bench`: the guest-side breakdown alone: wasm instructions (wasmtime fuel) and
//!   hostcalls per request in the in-process host.
//! - `envoy-soak` (`make soak`) and `host-soak`: long mixed runs in Envoy and in the host.
//!
//! [`scenario`] holds what both measurements share (requests, tokens, plugin configuration,
//! targets); [`table`] prints markdown tables.

pub mod callgrind;
pub mod guest;
pub mod scenario;
pub mod table;
