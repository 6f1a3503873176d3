//! easy-jwt: token-server authentication for Envoy-based gateways (Higress, Istio, Envoy) as one
//! proxy-wasm plugin (ABI 0.2.1). See `docs/architecture.md` for the request's path through the
//! [`core`] (decides, no hostcalls) and the [`proxy`] adapter (the proxy-wasm SDK, hostcalls).

// A panic aborts the VM and takes the gateway's traffic with it: the plugin never panics (test
// code may: clippy.toml allows it in `#[cfg(test)]`). Integration tests are other crates.
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice,
    clippy::unreachable,
    clippy::todo
)]

extern crate alloc;

pub mod core;
pub mod proxy;
