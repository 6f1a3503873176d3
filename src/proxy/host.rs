//! The hostcalls the adapter makes, behind one trait: [`Envoy`] makes them for real, the unit
//! tests' fake host records them. Nothing else in the adapter touches the ABI.

use crate::proxy::imports;
use log::LevelFilter;
use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, LogLevel, MapType, MetricType};
use std::time::{Duration, UNIX_EPOCH};

pub use crate::proxy::imports::Refused as Status;

/// What a stream callback tells the host: go on, or stop here (paused or answered locally).
pub use proxy_wasm::types::Action;

/// An HTTP call to a cluster (`proxy_http_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call<'a> {
    pub cluster: &'a str,
    /// Pseudo headers (`:method`, `:path`, `:authority`) first, then the others.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub timeout: Duration,
}

/// What the adapter asks of the host. Calls act on the effective context: the stream whose
/// callback is running, or the one [`Host::set_effective_context`] chose.
pub trait Host {
    /// Every request header as Envoy holds it (lowercase names, raw values: a client may send
    /// bytes that are not UTF-8); read once per request, the view looks names up in it.
    fn request_headers(&self) -> Vec<(String, Vec<u8>)>;
    /// A property by its path segments (`["xds", "route_name"]`).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    /// The plugin configuration (readable during `on_configure` only).
    fn plugin_configuration(&self) -> Vec<u8>;
    /// `:status` of the call answer being delivered.
    fn call_status(&self) -> Option<u16>;
    /// Up to `max` bytes of the call answer's body.
    fn call_body(&self, max: usize) -> Vec<u8>;
    /// Replaces every entry of a request header with one value.
    fn set_request_header(&self, name: &str, value: &str) -> Result<(), Status>;
    /// Removes every entry of a request header.
    fn remove_request_header(&self, name: &str) -> Result<(), Status>;
    /// Answers the request locally; `details` shows in `%RESPONSE_CODE_DETAILS%`.
    fn send_local_reply(
        &self,
        status: u16,
        details: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(), Status>;
    /// Resumes the paused request.
    fn resume_request(&self) -> Result<(), Status>;
    /// Makes later calls act on stream `context_id`.
    fn set_effective_context(&self, context_id: u32) -> Result<(), Status>;
    /// Dispatches a call; its answer goes to the effective context's `on_http_call_response`.
    fn dispatch(&self, call: &Call) -> Result<u32, Status>;
    /// A process-wide shared-data value.
    fn shared_data(&self, key: &str) -> Option<Vec<u8>>;
    /// Stores a shared-data value.
    fn set_shared_data(&self, key: &str, value: &[u8]) -> Result<(), Status>;
    /// Defines a counter (ids are per VM).
    fn define_counter(&self, name: &str) -> Result<u32, Status>;
    /// Adds `offset` to a counter.
    fn increment(&self, id: u32, offset: u64) -> Result<(), Status>;
    /// Wall-clock seconds since the Unix epoch.
    fn now_secs(&self) -> u64;
    /// Wall-clock milliseconds since the Unix epoch (the budget of a retried exchange).
    fn now_ms(&self) -> u64;
    /// Makes the plugin's log calls below the level of Envoy's `wasm` logger free: skipped
    /// inside the VM, no formatting, no hostcall.
    fn follow_log_level(&self);
    /// Arms (or with 0 disarms) the root context's tick.
    fn set_tick_period_ms(&self, period: u32) -> Result<(), Status>;
}

/// The real host: Envoy (or any proxy-wasm 0.2.1 host), through the SDK's `hostcalls` and, where
/// Envoy may answer a status the SDK does not expect, [`imports`].
pub struct Envoy;

impl Host for Envoy {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        hostcalls::get_map_bytes(MapType::HttpRequestHeaders).unwrap_or_default()
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn plugin_configuration(&self) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn call_status(&self) -> Option<u16> {
        let bytes = imports::header_value(MapType::HttpCallResponseHeaders, ":status")?;
        std::str::from_utf8(&bytes).ok()?.parse().ok()
    }

    fn call_body(&self, max: usize) -> Vec<u8> {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, max)
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    fn set_request_header(&self, name: &str, value: &str) -> Result<(), Status> {
        imports::replace_header(MapType::HttpRequestHeaders, name, value)
    }

    fn remove_request_header(&self, name: &str) -> Result<(), Status> {
        imports::remove_header(MapType::HttpRequestHeaders, name)
    }

    fn send_local_reply(
        &self,
        status: u16,
        details: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(), Status> {
        imports::send_local_response(status, details, body, headers)
    }

    fn resume_request(&self) -> Result<(), Status> {
        imports::resume_request()
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), Status> {
        imports::set_effective_context(context_id)
    }

    fn dispatch(&self, call: &Call) -> Result<u32, Status> {
        // Above 2^31 - 1 ms Envoy reads the timeout as negative (docs/host-semantics.md §3);
        // the configuration caps it far below.
        let timeout = call.timeout.min(Duration::from_millis(i32::MAX as u64));
        hostcalls::dispatch_http_call(
            call.cluster,
            call.headers.to_vec(),
            Some(call.body),
            vec![],
            timeout,
        )
        .map_err(Status::from)
    }

    fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        hostcalls::get_shared_data(key).ok()?.0
    }

    fn set_shared_data(&self, key: &str, value: &[u8]) -> Result<(), Status> {
        hostcalls::set_shared_data(key, Some(value), None).map_err(Status::from)
    }

    fn define_counter(&self, name: &str) -> Result<u32, Status> {
        hostcalls::define_metric(MetricType::Counter, name).map_err(Status::from)
    }

    fn increment(&self, id: u32, offset: u64) -> Result<(), Status> {
        let offset = i64::try_from(offset).unwrap_or(i64::MAX);
        hostcalls::increment_metric(id, offset).map_err(Status::from)
    }

    fn now_secs(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| since.as_secs())
    }

    fn now_ms(&self) -> u64 {
        hostcalls::get_current_time()
            .ok()
            .and_then(|now| now.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |since| {
                u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
            })
    }

    fn follow_log_level(&self) {
        let level = match hostcalls::get_log_level() {
            Ok(LogLevel::Trace) => LevelFilter::Trace,
            Ok(LogLevel::Debug) => LevelFilter::Debug,
            Ok(LogLevel::Info) => LevelFilter::Info,
            Ok(LogLevel::Warn) => LevelFilter::Warn,
            Ok(LogLevel::Error | LogLevel::Critical) => LevelFilter::Error,
            Err(_) => return,
        };
        log::set_max_level(level);
    }

    fn set_tick_period_ms(&self, period: u32) -> Result<(), Status> {
        hostcalls::set_tick_period(Duration::from_millis(u64::from(period))).map_err(Status::from)
    }
}
