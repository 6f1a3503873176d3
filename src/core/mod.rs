//! The core: everything that decides, with no hostcall in it: it never names the proxy-wasm SDK
//! or the adapter (`tests/layout.rs` checks). Unit-tested natively with `cargo test`.
//!
//! - [`config`]      — keys, defaults, validation; compiled once per configuration scope;
//! - [`route_rules`] — Higress `_rules_` and the per-request choice of configuration;
//! - [`token_server`] — the token server's Envoy cluster name, authority, path and timeout;
//! - [`target`]      — the request target (`:path`) split once into path, query and fragment;
//! - [`ignore`]      — path normalisation and the `ignoreUrls` matcher;
//! - [`token`]       — token sources (header, query, cookie), stripping, redaction;
//! - [`auth`]        — the decision flow: request → decision, token-server answer → decision;
//! - [`cache`]       — the auth-result cache (per VM and shared slots), JWT `exp`;
//! - [`reply`]       — the error reply body;
//! - [`request`]     — the read-only request view and header edits;
//! - [`stats`]       — the counters' names;
//! - [`strict`]      — serde_json with member names unique at every depth (configuration,
//!   token-server answer, JWT claims);
//! - leaf: [`identity`].
//!
//! JSON is read and written with serde_json, query strings decoded with url's `form_urlencoded`,
//! and every map is std's `HashMap` with its default, randomly keyed hasher.

pub mod auth;
pub mod cache;
pub mod config;
pub mod identity;
pub mod ignore;
pub mod reply;
pub mod request;
pub mod route_rules;
pub mod stats;
pub mod strict;
pub mod target;
pub mod token;
pub mod token_server;
