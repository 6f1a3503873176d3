//! The proxy-wasm adapter: turns Envoy's callbacks into core inputs and core decisions into
//! hostcalls. Its own logic (coalescing, cache glue, counting) goes through the [`host::Host`]
//! trait, so it is unit-tested natively against a fake host.
//!
//! - [`context`]  — the SDK's root and HTTP contexts, handing callbacks to [`filter`] (wasm only);
//! - [`filter`]   — the root context and the HTTP stream contexts, without the SDK;
//! - [`flights`]  — calls in flight and the requests waiting for each;
//! - [`vm_state`] — per-VM state: counters, cache glue (this VM's map + shared-data slots),
//!   flights, the tick and the clock reading;
//! - [`actions`]  — decisions → hostcalls (call dispatch, header edits, local replies);
//! - [`counters`] — the Envoy counters of one VM;
//! - [`host`]     — the `Host` trait and [`host::Envoy`], the real host (the SDK's hostcalls);
//! - [`imports`]  — the few proxy-wasm imports whose status the SDK would turn into a panic.

pub mod actions;
#[cfg(target_arch = "wasm32")]
mod context;
pub mod counters;
#[cfg(test)]
mod fake;
pub mod filter;
pub mod flights;
pub mod host;
mod imports;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_host_only;
#[cfg(test)]
mod tests_retry;
pub mod vm_state;
