//! `Vm`: the synchronous, deterministic driver of one plugin VM (one Envoy worker's VM).
//!
//! Every guest request that Envoy defers (resume, local reply, call delivery) is queued by the
//! hostcalls and run here after the VM call returns (docs/host-semantics.md §4), so the guest is
//! never re-entered.

mod actions;
mod calls;
mod flow;
mod startup;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use wasmtime::{CallHook, Store, TypedFunc, WasmParams, WasmResults};

pub use crate::types::{
    CallOutcome, Event, Flavor, HttpCall, LocalReply, LogLevel, LogRecord, StreamId, StreamProps,
    StreamState, VmConfig,
};

use crate::env::HostEnv;
use crate::error::HostError;
use crate::guest::Guest;
use crate::plugin::Plugin;
use crate::state::{Flow, StreamData, VmState, ROOT_CONTEXT_ID};

/// One plugin VM with its root context (id 1) and its HTTP streams.
pub struct Vm {
    store: Store<VmState>,
    guest: Guest,
    configured: bool,
    failed: Option<String>,
    events: Vec<Event>,
    /// Instruction and hostcall counters; `Some` only for a [`Plugin::load_metered`] module.
    meter: Option<Meter>,
}

/// The fuel a metered VM starts with: far more than any run can burn, so it never traps.
const FUEL_BUDGET: u64 = u64::MAX / 2;

/// Counters of a metered VM: the fuel budget in the store and a hostcall count kept by a
/// wasmtime call hook.
struct Meter {
    hostcalls: Arc<AtomicU64>,
}

impl Meter {
    /// For a metered plugin: fills the store's fuel and counts every wasm → host call. Must run
    /// before the first guest call (a fuel-metered store starts empty and would trap).
    fn install(store: &mut Store<VmState>, plugin: &Plugin) -> Result<Option<Meter>, HostError> {
        if !plugin.metered() {
            return Ok(None);
        }
        store
            .set_fuel(FUEL_BUDGET)
            .map_err(|e| HostError::Other(format!("cannot set fuel: {e:#}")))?;
        let hostcalls = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&hostcalls);
        store.call_hook(move |_, hook| {
            if matches!(hook, CallHook::CallingHost) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        });
        Ok(Some(Meter { hostcalls }))
    }
}

/// The result of one guest call.
enum Outcome<R> {
    /// The export does not exist; Envoy treats this as Continue.
    Missing,
    Done(R),
    /// The guest trapped (or the VM had already failed); the VM is now failed.
    Trapped,
}

impl Vm {
    /// _initialize, main, allocator lookup (malloc first), create root 1, vm_start, configure.
    /// Ok(vm) even if configure returned false (check `configured()`); Err on load/link/trap at start.
    pub fn start(plugin: &Plugin, env: &HostEnv, cfg: VmConfig) -> Result<Vm, HostError> {
        startup::start(plugin, env, cfg)
    }

    /// Whether `proxy_on_configure` returned true.
    pub fn configured(&self) -> bool {
        self.configured
    }

    /// Some(trap message) after a trap.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// Everything logged so far (and not taken).
    pub fn logs(&self) -> &[LogRecord] {
        &self.store.data().logs
    }

    /// Takes the logs.
    pub fn take_logs(&mut self) -> Vec<LogRecord> {
        std::mem::take(&mut self.store.data_mut().logs)
    }

    /// How many log lines the plugin sent below the logger level (wasted hostcalls: a plugin
    /// that follows `proxy_get_log_level` sends none).
    pub fn dropped_logs(&self) -> u64 {
        self.store.data().dropped_logs
    }

    /// Wasm instructions the guest has executed since the VM was created (wasmtime fuel: one unit
    /// per operator, none for `nop`, `drop`, `block`, `loop`, `end` and the like). `None` unless
    /// the plugin was compiled with [`Plugin::load_metered`].
    pub fn fuel_consumed(&self) -> Option<u64> {
        self.meter.as_ref()?;
        let left = self.store.get_fuel().ok()?;
        Some(FUEL_BUDGET.saturating_sub(left))
    }

    /// Hostcalls the guest has made since the VM was created (every wasm → host call: the
    /// `proxy_*` imports and WASI). `None` unless the plugin was compiled with
    /// [`Plugin::load_metered`].
    pub fn hostcalls(&self) -> Option<u64> {
        self.meter
            .as_ref()
            .map(|m| m.hostcalls.load(Ordering::Relaxed))
    }

    /// Guest linear memory size in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.store
            .data()
            .memory
            .map(|m| m.data_size(&self.store))
            .unwrap_or(0)
    }

    /// The configuration this VM was started with.
    pub fn config(&self) -> &VmConfig {
        &self.store.data().cfg
    }

    /// The root context id (always 1, §1).
    pub fn root_id(&self) -> u32 {
        ROOT_CONTEXT_ID
    }

    /// Allocates the next context id; no guest call (creation is lazy, §1).
    pub fn new_stream(&mut self, props: StreamProps) -> StreamId {
        let state = self.store.data_mut();
        let id = state.next_context();
        let stream = StreamData {
            props,
            ..StreamData::default()
        };
        state.streams.insert(id, stream);
        StreamId(id)
    }

    /// The state of a stream (for the phase it is in); unknown or finished ids are `Ended`.
    pub fn state(&self, id: StreamId) -> StreamState {
        let Some(stream) = self.store.data().streams.get(&id.0) else {
            return StreamState::Ended;
        };
        if let Some(reply) = &stream.local_reply {
            return StreamState::LocalReply(reply.clone());
        }
        let flow = if stream.in_response {
            stream.response_flow
        } else {
            stream.request_flow
        };
        match flow {
            Flow::Idle => StreamState::Pending,
            Flow::StopAll | Flow::Buffering => StreamState::Paused,
            Flow::Continued => StreamState::Continued,
        }
    }

    /// The current request headers (what goes upstream once Continued).
    pub fn request_headers(&self, id: StreamId) -> Vec<(String, String)> {
        self.stream(id)
            .map(|s| s.request_headers.to_vec())
            .unwrap_or_default()
    }

    /// The current response headers (what goes downstream once Continued).
    pub fn response_headers(&self, id: StreamId) -> Vec<(String, String)> {
        self.stream(id)
            .and_then(|s| s.response_headers.as_ref())
            .map(|h| h.to_vec())
            .unwrap_or_default()
    }

    /// Takes the request body the plugin has released upstream so far.
    pub fn take_request_body(&mut self, id: StreamId) -> Vec<u8> {
        self.stream_mut(id)
            .map(|s| std::mem::take(&mut s.request_body_out))
            .unwrap_or_default()
    }

    /// Takes the response body the plugin has released downstream so far.
    pub fn take_response_body(&mut self, id: StreamId) -> Vec<u8> {
        self.stream_mut(id)
            .map(|s| std::mem::take(&mut s.response_body_out))
            .unwrap_or_default()
    }

    /// Number of live (not ended) streams.
    pub fn live_streams(&self) -> usize {
        self.store.data().streams.len()
    }

    /// HTTP calls dispatched since the last take.
    pub fn take_calls(&mut self) -> Vec<HttpCall> {
        std::mem::take(&mut self.store.data_mut().dispatched)
    }

    /// Calls dispatched and not yet delivered.
    pub fn pending_calls(&self) -> usize {
        self.store.data().pending_tokens.len()
    }

    /// Resumes / local replies produced outside the driver call of their own stream.
    pub fn take_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.events)
    }

    /// The tick period the root context asked for (`None` = disabled).
    pub fn tick_period(&self) -> Option<Duration> {
        match self.store.data().tick_period_ms {
            0 => None,
            ms => Some(Duration::from_millis(u64::from(ms))),
        }
    }

    /// Runs `proxy_on_tick(root)` if a period is set; resulting events go to `take_events`.
    pub fn tick(&mut self) {
        if self.store.data().tick_period_ms == 0 {
            return;
        }
        let on_tick = self.guest.on_tick.clone();
        self.invoke(on_tick, ROOT_CONTEXT_ID, ROOT_CONTEXT_ID);
        let events = self.after_call(None);
        self.events.extend(events);
    }

    fn stream(&self, id: StreamId) -> Option<&StreamData> {
        self.store.data().streams.get(&id.0)
    }

    fn stream_mut(&mut self, id: StreamId) -> Option<&mut StreamData> {
        self.store.data_mut().streams.get_mut(&id.0)
    }

    /// Calls a guest export with `ctx` as the effective context; a trap fails the VM.
    fn invoke<P: WasmParams, R: WasmResults>(
        &mut self,
        func: Option<TypedFunc<P, R>>,
        ctx: u32,
        params: P,
    ) -> Outcome<R> {
        if self.failed.is_some() {
            return Outcome::Trapped;
        }
        let Some(func) = func else {
            return Outcome::Missing;
        };
        self.store.data_mut().effective = ctx;
        match func.call(&mut self.store, params) {
            Ok(r) => Outcome::Done(r),
            Err(e) => {
                self.fail(&e);
                Outcome::Trapped
            }
        }
    }

    /// Marks the VM failed (§1): pending guest requests are dropped.
    fn fail(&mut self, error: &wasmtime::Error) {
        let message = format!("{error:#}");
        let state = self.store.data_mut();
        state.deferred.clear();
        state.call_response = None;
        state.access_log = false;
        self.failed = Some(message);
    }
}
