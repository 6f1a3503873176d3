//! The end-to-end tests: the real `plugin.wasm` in real Envoy, every binary of `ENVOY_BINS` (by
//! default the pinned 1.40.0 and 1.36.2 from `make envoy`). One test binary, so the Envoys of its
//! modules start side by side rather than one binary after another: each module starts one Envoy
//! per version with a listener per plugin configuration it needs (`common::start_worlds`), shared
//! by its tests.

mod common;

mod auth_flow;
mod cache;
mod concurrency;
mod config;
mod deploy;
mod envoy;
mod failures;
mod fault_matrix;
mod retries;
mod workers;
