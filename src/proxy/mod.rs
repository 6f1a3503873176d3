//! The proxy-wasm adapter: turns Envoy callbacks into core inputs and core decisions into
//! hostcalls. Its own logic (coalescing, the leader-gone re-dispatch, cache glue, counting) goes
//! through the [`host::Host`] trait, so it is unit-tested natively against a fake host.
//!
//! - [`abi`]      — the proxy-wasm exports, routing Envoy's callbacks to the contexts (wasm only);
//! - [`filter`]   — the root context and the HTTP stream contexts;
//! - [`vm_state`] — per-VM state: counters, cache glue (this VM's map + shared-data slots),
//!   in-flight calls;
//! - [`actions`]  — decisions → hostcalls (call dispatch, header edits, local replies);
//! - [`counters`] — the Envoy counters of one VM;
//! - [`host`]     — the `Host` trait and [`host::Envoy`], the real host;
//! - [`hostio`]   — raw proxy-wasm 0.2.1 hostcalls that report a status instead of panicking;
//! - [`logger`]   — the `log` crate's records as `proxy_log` lines, and the panic handler;
//! - [`heap`]     — the VM's memory allocator (the crate is `no_std` in the VM).

#[cfg(target_arch = "wasm32")]
mod abi;
pub mod actions;
pub mod counters;
#[cfg(test)]
mod fake;
pub mod filter;
pub mod heap;
pub mod host;
mod hostio;
#[cfg(target_arch = "wasm32")]
mod logger;
#[cfg(test)]
mod tests;
pub mod vm_state;
