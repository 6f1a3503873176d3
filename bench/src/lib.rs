//! Shared code of the benchmark and soak binaries of easy-jwt (`src/bin/`):
//!
//! - `envoy-bench` (`make bench`): instructions Envoy executes per request with the plugin on
//!   each of its paths, next to no filter, a no-op wasm filter, a minimal call-and-resume filter,
//!   Envoy's `jwt_authn` and a Lua filter, counted by valgrind's callgrind ([`callgrind`]), and
//!   the artifact size.
//! - `envoy-soak` (`make soak`): a long mixed run in Envoy.
//!
//! [`scenario`] holds the requests, tokens, plugin configuration and targets; [`table`] prints
//! markdown tables.

pub mod callgrind;
pub mod scenario;
pub mod table;
