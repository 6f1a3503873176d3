//! `Guest`: the plugin's exports, looked up once and called with typed signatures.

use wasmtime::{Func, Instance, Store, TypedFunc, WasmParams, WasmResults};

use crate::error::HostError;
use crate::state::VmState;

/// `proxy_on_http_call_response(context, token, headers, body_size, trailers)`.
pub type CallResponseFn = TypedFunc<(u32, u32, u32, u32, u32), ()>;

/// The proxy-wasm callbacks the host drives (absent exports are `None`).
#[derive(Clone)]
pub struct Guest {
    pub initialize: Option<TypedFunc<(), ()>>,
    pub start: Option<TypedFunc<(), ()>>,
    pub main: Option<Func>,
    pub on_context_create: Option<TypedFunc<(u32, u32), ()>>,
    pub on_vm_start: Option<TypedFunc<(u32, u32), u32>>,
    pub on_configure: Option<TypedFunc<(u32, u32), u32>>,
    pub on_tick: Option<TypedFunc<u32, ()>>,
    pub on_done: Option<TypedFunc<u32, u32>>,
    pub on_log: Option<TypedFunc<u32, ()>>,
    pub on_delete: Option<TypedFunc<u32, ()>>,
    pub on_request_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    pub on_request_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    pub on_response_headers: Option<TypedFunc<(u32, u32, u32), u32>>,
    pub on_response_body: Option<TypedFunc<(u32, u32, u32), u32>>,
    pub on_http_call_response: Option<CallResponseFn>,
}

fn typed<P: WasmParams, R: WasmResults>(
    instance: &Instance,
    store: &mut Store<VmState>,
    name: &str,
) -> Result<Option<TypedFunc<P, R>>, HostError> {
    if instance.get_func(&mut *store, name).is_none() {
        return Ok(None);
    }
    instance
        .get_typed_func::<P, R>(&mut *store, name)
        .map(Some)
        .map_err(|e| HostError::Link(format!("export {name} has an unexpected signature: {e:#}")))
}

impl Guest {
    /// Looks up every callback; a present export with a wrong signature is a link error.
    pub fn lookup(instance: &Instance, store: &mut Store<VmState>) -> Result<Guest, HostError> {
        Ok(Guest {
            initialize: typed(instance, store, "_initialize")?,
            start: typed(instance, store, "_start")?,
            main: instance
                .get_func(&mut *store, "main")
                .or_else(|| instance.get_func(&mut *store, "__main_void")),
            on_context_create: typed(instance, store, "proxy_on_context_create")?,
            on_vm_start: typed(instance, store, "proxy_on_vm_start")?,
            on_configure: typed(instance, store, "proxy_on_configure")?,
            on_tick: typed(instance, store, "proxy_on_tick")?,
            on_done: typed(instance, store, "proxy_on_done")?,
            on_log: typed(instance, store, "proxy_on_log")?,
            on_delete: typed(instance, store, "proxy_on_delete")?,
            on_request_headers: typed(instance, store, "proxy_on_request_headers")?,
            on_request_body: typed(instance, store, "proxy_on_request_body")?,
            on_response_headers: typed(instance, store, "proxy_on_response_headers")?,
            on_response_body: typed(instance, store, "proxy_on_response_body")?,
            on_http_call_response: typed(instance, store, "proxy_on_http_call_response")?,
        })
    }

    /// The allocator, `malloc` first, then `proxy_on_memory_allocate` (cpp-host order,
    /// docs/host-semantics.md §1).
    pub fn allocator(
        instance: &Instance,
        store: &mut Store<VmState>,
    ) -> Result<TypedFunc<u32, u32>, HostError> {
        for name in ["malloc", "proxy_on_memory_allocate"] {
            if let Some(f) = typed::<u32, u32>(instance, store, name)? {
                return Ok(f);
            }
        }
        Err(HostError::Link(
            "module exports neither malloc nor proxy_on_memory_allocate".to_string(),
        ))
    }
}
