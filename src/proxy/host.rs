//! The hostcalls the adapter makes, behind one trait: [`Envoy`] makes them for real, the unit
//! tests' fake host records them. Nothing else in the adapter touches the ABI.

use crate::proxy::hostio::{self, Buffer, Map};
use ::core::time::Duration;
use alloc::vec::Vec;
use log::LevelFilter;

pub use crate::proxy::hostio::Status;

/// What a stream callback tells the host (ABI 0.2.1 values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Action {
    /// Go on with the next filter.
    Continue = 0,
    /// Stop here: the request is paused, or answered locally.
    Pause = 1,
}

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
    /// Every request header, in the map encoding (`hostio::serialize_pairs`); read once per
    /// request, the view looks names up in it.
    fn request_headers(&self) -> Vec<u8>;
    /// A property by its path, segments joined by NUL (`xds\0route_name`).
    fn property(&self, path: &str) -> Option<Vec<u8>>;
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
    /// Two random 64-bit keys (for the VM's hash-flooding-resistant map).
    fn random_keys(&self) -> [u64; 2];
    /// Makes the plugin's log calls below the level of Envoy's `wasm` logger free: skipped
    /// inside the VM, no formatting, no hostcall.
    fn follow_log_level(&self);
    /// Arms (or with 0 disarms) the root context's tick.
    fn set_tick_period_ms(&self, period: u32) -> Result<(), Status>;
}

/// The real host: Envoy (or any proxy-wasm 0.2.1 host) through the ABI.
pub struct Envoy;

impl Host for Envoy {
    fn request_headers(&self) -> Vec<u8> {
        hostio::header_pairs(Map::RequestHeaders)
    }

    fn property(&self, path: &str) -> Option<Vec<u8>> {
        hostio::property(path)
    }

    fn plugin_configuration(&self) -> Vec<u8> {
        hostio::buffer(Buffer::PluginConfiguration, usize::MAX)
    }

    fn call_status(&self) -> Option<u16> {
        let bytes = hostio::header(Map::CallResponseHeaders, ":status")?;
        ::core::str::from_utf8(&bytes).ok()?.parse().ok()
    }

    fn call_body(&self, max: usize) -> Vec<u8> {
        hostio::buffer(Buffer::CallResponseBody, max)
    }

    fn set_request_header(&self, name: &str, value: &str) -> Result<(), Status> {
        hostio::replace_header(Map::RequestHeaders, name, value)
    }

    fn remove_request_header(&self, name: &str) -> Result<(), Status> {
        hostio::remove_header(Map::RequestHeaders, name)
    }

    fn send_local_reply(
        &self,
        status: u16,
        details: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> Result<(), Status> {
        hostio::send_local_response(status, details, body, headers)
    }

    fn resume_request(&self) -> Result<(), Status> {
        hostio::resume_request()
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), Status> {
        hostio::set_effective_context(context_id)
    }

    fn dispatch(&self, call: &Call) -> Result<u32, Status> {
        let timeout_ms = u32::try_from(call.timeout.as_millis()).unwrap_or(u32::MAX);
        hostio::http_call(call.cluster, call.headers, call.body, timeout_ms)
    }

    fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        hostio::shared_data(key)
    }

    fn set_shared_data(&self, key: &str, value: &[u8]) -> Result<(), Status> {
        hostio::set_shared_data(key, value)
    }

    fn define_counter(&self, name: &str) -> Result<u32, Status> {
        hostio::define_counter(name)
    }

    fn increment(&self, id: u32, offset: u64) -> Result<(), Status> {
        hostio::increment(id, offset)
    }

    fn now_secs(&self) -> u64 {
        hostio::now_secs()
    }

    fn random_keys(&self) -> [u64; 2] {
        hostio::random_keys()
    }

    fn follow_log_level(&self) {
        let level = match hostio::log_level() {
            Some(0) => LevelFilter::Trace,
            Some(1) => LevelFilter::Debug,
            Some(2) => LevelFilter::Info,
            Some(3) => LevelFilter::Warn,
            Some(_) => LevelFilter::Error,
            None => return,
        };
        log::set_max_level(level);
    }

    fn set_tick_period_ms(&self, period: u32) -> Result<(), Status> {
        hostio::set_tick_period_ms(period)
    }
}
