//! The fuzz targets' oracles: each `targets::<name>::check(data)` panics when `data` breaks an
//! invariant of the core. `fuzz/fuzz_targets/<name>.rs` hands libFuzzer's inputs to it (nightly,
//! `make fuzz`); `tests/replay.rs` replays every seed and every crash ever found through it
//! natively (`make test`), so a fixed crash stays fixed.
// An oracle's job is to panic on a broken invariant.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

pub mod harness;
pub mod percent;

/// One module per fuzz target, named like it.
pub mod targets {
    pub mod auth_response;
    pub mod config;
    pub mod path;
    pub mod request;
    pub mod strict_json;
    pub mod token;
}
