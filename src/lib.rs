//! easy-jwt: token-server authentication for Envoy-based gateways (Higress, Istio, Envoy) as one
//! proxy-wasm plugin (ABI 0.2.1).
//!
//! For each request: skip `ignoreUrls` (uid header = `anonymousUID`), take the token from the
//! request, map the anonymous token to `anonymousUID`, otherwise ask the token server
//! (`POST /api/token/auth {"token":"…"}` through an Envoy cluster) and either set the uid header
//! and resume, or answer with the configured error reply. Every failure fails closed.
//!
//! # Layout
//! The core decides and makes no hostcalls (unit-tested natively with `cargo test`):
//! - [`config`]  — keys, defaults, validation; compiled once per configuration;
//! - [`rules`]   — Higress `_rules_` and the per-request choice of configuration;
//! - [`cluster`] — the token server's Envoy cluster name and authority;
//! - [`matcher`] — path normalisation and `ignoreUrls` patterns;
//! - [`token`]   — token sources (header, query, cookie), stripping, redaction;
//! - [`auth`]    — the decision flow: request → decision, token-server answer → decision;
//! - [`cache`]   — the auth-result cache (per VM and shared slots), JWT `exp`;
//! - [`reply`]   — the error reply body;
//! - [`request`] — the read-only request view and header edits;
//! - [`stats`]   — the Envoy counters.
//!
//! The adapter carries decisions out: `filter` (root and HTTP contexts), `shared` (per-VM
//! counters, cache glue and coalesced calls), `actions` (decisions → hostcalls), all over
//! `hostio` (raw hostcalls that report errors instead of panicking).

mod actions;
pub mod auth;
pub mod cache;
pub mod cluster;
pub mod config;
mod filter;
mod hostio;
pub mod matcher;
pub mod reply;
pub mod request;
pub mod rules;
mod shared;
pub mod stats;
pub mod token;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(proxy_wasm::types::LogLevel::Trace);
    proxy_wasm::set_root_context(|_| Box::new(filter::Root::default()));
}}
