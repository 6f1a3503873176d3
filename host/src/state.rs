//! `VmState`: everything the host keeps for one VM (the wasmtime `Store` data).
//!
//! A bare `§N` in this module is a section of docs/host-semantics.md.

use std::collections::{BTreeMap, HashMap};

use wasmtime::{Memory, TypedFunc};

use crate::env::HostEnv;
use crate::headers::HeaderMap;
use crate::metrics::MetricIds;
use crate::types::{HttpCall, LocalReply, LogLevel, LogRecord, StreamProps, VmConfig};

/// The id of the root context: the first id of the per-VM counter (§1).
pub const ROOT_CONTEXT_ID: u32 = 1;

/// Which hostcalls the guest may make right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `_initialize` / `main`: only logging and WASI (§1, "restricted_callback").
    Startup,
    /// Inside `proxy_on_configure`: the plugin configuration (buffer 7) is readable.
    Configure,
    /// Everything else.
    Running,
}

/// How far one direction (request or response) of a stream has got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flow {
    /// Nothing has reached the plugin yet.
    #[default]
    Idle,
    /// Headers callback returned Pause: StopAllIterationAndWatermark (§4); body is held back.
    StopAll,
    /// Body callback returned Pause: StopIterationAndBuffer (§4); later chunks still arrive.
    Buffering,
    /// Data flows on.
    Continued,
}

/// The "pointers" Envoy holds for a stream: a map/buffer is reachable only while set (§2).
#[derive(Debug, Clone, Copy, Default)]
pub struct Access {
    pub request_headers: bool,
    pub request_body: bool,
    pub response_headers: bool,
    pub response_body: bool,
}

impl Access {
    /// `proxy_continue_stream` nulls the request side whatever the direction (§2 quirk).
    pub fn null_request_side(&mut self) {
        self.request_headers = false;
        self.request_body = false;
    }
}

/// One HTTP stream (one proxy-wasm HTTP context).
#[derive(Debug, Default)]
pub struct StreamData {
    pub props: StreamProps,
    /// `proxy_on_context_create` has run (lazy creation, §1).
    pub created: bool,
    /// `end_stream` ran; the context is gone.
    pub ended: bool,
    pub request_headers: HeaderMap,
    pub response_headers: Option<HeaderMap>,
    /// Request body held by the filter (buffered while paused).
    pub request_body: Vec<u8>,
    /// Request body released upstream.
    pub request_body_out: Vec<u8>,
    /// The request's end of stream has been seen by the body path.
    pub request_eos: bool,
    pub response_body: Vec<u8>,
    pub response_body_out: Vec<u8>,
    pub response_eos: bool,
    pub access: Access,
    pub request_flow: Flow,
    pub response_flow: Flow,
    /// The driver has entered the response phase.
    pub in_response: bool,
    /// The plugin asked for a local reply (a second one is BadArgument, higress-envoy 1.27).
    pub local_reply_requested: bool,
    /// The final local reply, once sent.
    pub local_reply: Option<LocalReply>,
    /// Filter-state entries written by `proxy_set_property` (dotted path → value).
    pub properties: HashMap<String, Vec<u8>>,
}

/// A local reply as the plugin asked for it, before Envoy builds the response.
#[derive(Debug, Clone)]
pub struct LocalReplyRequest {
    pub status: u32,
    pub details: String,
    pub body: Vec<u8>,
    pub headers: Vec<(String, String)>,
}

/// An action queued by a hostcall and run after the VM call returns (§4).
#[derive(Debug, Clone)]
pub enum Deferred {
    LocalReply(u32, LocalReplyRequest),
    /// (context, 0 = request / 1 = response)
    Continue(u32, u32),
}

/// An HTTP-call response, present only during a successful `on_http_call_response`.
#[derive(Debug, Clone, Default)]
pub struct CallResponse {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub trailers: HeaderMap,
}

/// All host-side state of one VM.
pub struct VmState {
    pub cfg: VmConfig,
    pub env: HostEnv,
    pub phase: Phase,
    pub logs: Vec<LogRecord>,
    /// `proxy_log` calls below the logger level: Envoy drops them, but the call was made.
    pub dropped_logs: u64,
    pub memory: Option<Memory>,
    pub alloc: Option<TypedFunc<u32, u32>>,
    pub next_context_id: u32,
    /// `proxy_set_effective_context` target; reset to the callback's context on every call.
    pub effective: u32,
    /// Inside `proxy_on_log`: access-log maps are used (§2).
    pub access_log: bool,
    pub streams: BTreeMap<u32, StreamData>,
    pub next_token: u32,
    pub dispatched: Vec<HttpCall>,
    /// token → dispatching context, for calls not yet delivered.
    pub pending_tokens: HashMap<u32, u32>,
    pub call_response: Option<CallResponse>,
    /// `proxy_get_status` answer (code, message).
    pub status: (u32, String),
    pub deferred: Vec<Deferred>,
    pub tick_period_ms: u32,
    pub metric_ids: MetricIds,
    pub rng: u64,
}

impl VmState {
    /// Fresh state; context ids start at 1 (the root), tokens at 4.
    pub fn new(cfg: VmConfig, env: HostEnv, seed: u64) -> VmState {
        VmState {
            cfg,
            env,
            phase: Phase::Startup,
            logs: Vec::new(),
            dropped_logs: 0,
            memory: None,
            alloc: None,
            next_context_id: ROOT_CONTEXT_ID,
            effective: 0,
            access_log: false,
            streams: BTreeMap::new(),
            next_token: 0,
            dispatched: Vec::new(),
            pending_tokens: HashMap::new(),
            call_response: None,
            status: (0, String::new()),
            deferred: Vec::new(),
            tick_period_ms: 0,
            metric_ids: MetricIds::new(),
            rng: seed | 1,
        }
    }

    /// Allocates the next context id (never reused).
    pub fn next_context(&mut self) -> u32 {
        let id = self.next_context_id;
        self.next_context_id = self.next_context_id.wrapping_add(1);
        id
    }

    /// Allocates the next HTTP-call token: 4, 8, 12, … (§3).
    pub fn next_call_token(&mut self) -> u32 {
        self.next_token = self.next_token.wrapping_add(4);
        self.next_token
    }

    /// Records a log line if the host logger's level lets it through.
    pub fn log(&mut self, level: LogLevel, message: String) {
        if level >= self.cfg.log_level {
            self.logs.push(LogRecord { level, message });
        } else {
            self.dropped_logs += 1;
        }
    }

    /// The live (created, not ended) stream the effective context designates, if any.
    pub fn effective_stream(&self) -> Option<&StreamData> {
        self.streams.get(&self.effective).filter(|s| !s.ended)
    }

    /// Mutable form of [`VmState::effective_stream`].
    pub fn effective_stream_mut(&mut self) -> Option<&mut StreamData> {
        self.streams.get_mut(&self.effective).filter(|s| !s.ended)
    }

    /// Whether `id` names a context that exists now (root, or a created and live stream).
    pub fn context_exists(&self, id: u32) -> bool {
        id == ROOT_CONTEXT_ID || self.streams.get(&id).is_some_and(|s| s.created && !s.ended)
    }

    /// xorshift64* for WASI `random_get`.
    pub fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}
