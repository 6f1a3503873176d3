//! Test support for easy-jwt on a real Envoy: the Envoy harness ([`envoy`]), a blocking HTTP/1.1
//! client ([`http`]), a misbehaving mock token server ([`mock`]), plus the echo upstream and the
//! reference token server re-exported.
//!
//! Setup failures panic with a message saying what to do (build the plugin, install Envoy).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

pub mod envoy;
pub mod http;
pub mod mock;

use std::path::PathBuf;

pub use echo_server::{self, EchoServer};
pub use token_server;

/// The workspace root (`tests/testbed/../..`).
pub fn workspace_root() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize().unwrap_or(root)
}

/// `<root>/plugin.wasm`; panics if it has not been built.
pub fn plugin_wasm() -> PathBuf {
    let path = workspace_root().join("plugin.wasm");
    if !path.is_file() {
        panic!("{} is missing: run `make build` first", path.display());
    }
    path
}
