//! The host's public data types (VM configuration, streams, calls, events): a leaf every module
//! can use; [`crate::vm`] re-exports them.
//!
//! A bare `§N` in this module is a section of docs/host-semantics.md.

use std::collections::BTreeSet;

/// Per-VM configuration, as Envoy's `VmConfig` + `PluginConfig` would give it.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// Property `plugin_name`, log prefix.
    pub plugin_name: String,
    /// Property `plugin_root_id`.
    pub root_id: String,
    /// Property `plugin_vm_id`; also the shared-data namespace (§2).
    pub vm_id: String,
    /// Buffer 6, always readable.
    pub vm_configuration: Vec<u8>,
    /// Buffer 7, readable only during `on_configure` (§1).
    pub plugin_configuration: Vec<u8>,
    /// Cluster names known to "Envoy"; `proxy_http_call` to any other → BadArgument (§3).
    pub clusters: BTreeSet<String>,
    /// Level of the host's `wasm` logger: the `proxy_get_log_level` answer; records below it
    /// are dropped as Envoy drops them.
    pub log_level: LogLevel,
    /// VM failure policy (§1): false = later streams get 503 `wasm_fail_stream`.
    pub fail_open: bool,
    /// WASI environment variables (Envoy `vm_config.environment_variables`). Empty by default.
    pub environment: Vec<(String, String)>,
    /// Which gateway's property names the host serves (default: upstream Envoy).
    pub flavor: Flavor,
}

/// The gateway the host imitates where Envoy builds differ (docs/host-semantics.md §2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flavor {
    /// Upstream Envoy 1.33 and later: the route and cluster names are only `xds.route_name` and
    /// `xds.cluster_name` (the top-level names were removed, envoyproxy/envoy PR 36619).
    #[default]
    Envoy,
    /// Higress's gateway: the `xds.*` names plus the legacy top-level `route_name` and
    /// `cluster_name`.
    Higress,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            plugin_name: "easy-jwt".to_string(),
            root_id: String::new(),
            vm_id: String::new(),
            vm_configuration: Vec::new(),
            plugin_configuration: Vec::new(),
            clusters: BTreeSet::new(),
            log_level: LogLevel::Trace,
            fail_open: false,
            environment: Vec::new(),
            flavor: Flavor::default(),
        }
    }
}

/// proxy-wasm log levels 0–5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    Critical = 5,
}

impl LogLevel {
    /// The level for a guest-provided number; None above 5 (→ BadArgument).
    pub fn from_u32(n: u32) -> Option<LogLevel> {
        match n {
            0 => Some(LogLevel::Trace),
            1 => Some(LogLevel::Debug),
            2 => Some(LogLevel::Info),
            3 => Some(LogLevel::Warn),
            4 => Some(LogLevel::Error),
            5 => Some(LogLevel::Critical),
            _ => None,
        }
    }

    /// Lowercase name as Envoy prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warning",
            LogLevel::Error => "error",
            LogLevel::Critical => "critical",
        }
    }
}

/// One line logged by the plugin (`proxy_log`, WASI stdout/stderr, or a host note on a trap).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub level: LogLevel,
    pub message: String,
}

/// A stream, identified by its proxy-wasm context id (never reused within a VM).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

/// What "Envoy" knows about a stream besides its headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamProps {
    /// The route's name: property `xds.route_name` (and `route_name` in [`Flavor::Higress`]).
    pub route_name: Option<String>,
    /// The upstream cluster's name, e.g. `outbound|80||svc.ns.svc.cluster.local`: property
    /// `xds.cluster_name` (and `cluster_name` in [`Flavor::Higress`]).
    pub cluster_name: Option<String>,
    /// Further properties: dotted path (e.g. `source.address`) → raw bytes.
    pub extra: Vec<(String, Vec<u8>)>,
}

/// Where a stream stands after a driver call (for the phase the driver is in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamState {
    /// headers (or body) callback not yet run / still running through callbacks
    Pending,
    /// plugin returned Pause (StopAllIterationAndWatermark) and has not resumed yet
    Paused,
    /// request continues upstream; `Vm::request_headers(id)` gives the headers that go upstream
    /// (in the response phase: the response goes downstream, see `Vm::response_headers`)
    Continued,
    /// local reply sent (already passed through the plugin's on_response_* as Envoy does)
    LocalReply(LocalReply),
    /// stream finished (on_log/on_done/on_delete ran)
    Ended,
}

/// A reply generated by the proxy instead of the upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    /// Final headers (after the plugin's response callbacks), without `:status`.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Envoy's response code details (`wasm_fail_stream`, or the plugin's details string).
    pub details: String,
}

/// An HTTP call dispatched by the plugin, for the driver to perform.
///
/// Envoy does **not** send trailers of HTTP calls (§3); they are recorded for inspection only.
/// A non-empty body has `content-length` added to `headers`, as Envoy does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub trailers: Vec<(String, String)>,
    /// 0 = no timeout.
    pub timeout_ms: u32,
    /// The (effective) context that dispatched it; delivery always goes to the root (§3).
    pub from_context: u32,
}

/// How an HTTP call ended (§3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallOutcome {
    /// headers incl. ":status"
    Response {
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        trailers: Vec<(String, String)>,
    },
    /// delivered as 504, body "upstream request timeout" (§3)
    Timeout,
    /// 503, "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
    ConnectFailure,
    /// failure path: (token, 0, 0, 0), get_status → 11 "reset"
    Reset,
}

/// Something that happened to a stream outside the driver call that drives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A paused stream continues (request upstream, or response downstream).
    Resumed(StreamId),
    /// A paused stream was answered locally.
    LocalReply(StreamId, LocalReply),
}
