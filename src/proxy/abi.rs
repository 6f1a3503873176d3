//! The proxy-wasm 0.2.1 exports: Envoy's callbacks routed to the root and stream contexts.
//!
//! Only the callbacks the plugin uses are exported. Envoy calls into the VM only for the ones a
//! module exports (docs/host-semantics.md §1), so a request costs four entries into V8 (context
//! create, request headers, delete, the allocator for each value read) instead of the eight an
//! SDK module with every callback pays. Not exported: the response callbacks, `proxy_on_log`
//! and `proxy_on_done` (a stream's end is handled in `proxy_on_delete`, which Envoy calls right
//! after `on_done`).
//!
//! Call answers always arrive at the root context (§3); the stream that made the call is found
//! by its token, made effective, and handed the answer. A call whose stream is gone is the
//! root's business (it re-dispatches for the followers, see [`crate::proxy::filter`]).
//!
//! Envoy never re-enters the VM from inside a hostcall (§3, §4); should a host do so, the
//! callback finds the contexts borrowed and fails closed (a request gets a local 503) instead of
//! panicking.

use crate::proxy::filter::{Filter, Root};
use crate::proxy::host::{Envoy, Host};
use crate::proxy::logger;
use ::core::cell::RefCell;
use alloc::rc::Rc;
use alloc::vec::Vec;
use log::error;
use std::collections::HashMap;

/// Every context of this VM.
#[derive(Default)]
struct Contexts {
    /// Root contexts: one per plugin instance sharing this VM, a handful at most.
    roots: Vec<(u32, Root)>,
    /// Streams created and not yet at their request headers whose root is not the VM's only
    /// root (several plugin instances share the VM, or an unknown root id): stream id → root id.
    /// With one root, the common case, a stream is that root's and nothing is stored: Envoy
    /// creates a stream's context from `decodeHeaders` right before its request headers
    /// (docs/host-semantics.md "An HTTP stream"), so no root can come or go in between.
    created: HashMap<u32, u32>,
    /// Streams waiting for a call (their own or another's); a stream decided in its request
    /// headers is never stored.
    streams: HashMap<u32, Filter>,
    /// Calls in flight that a stream made: token → stream id.
    calls: HashMap<u32, u32>,
}

impl Contexts {
    fn root(&self, id: u32) -> Option<&Root> {
        self.roots
            .iter()
            .find(|(root, _)| *root == id)
            .map(|(_, root)| root)
    }

    fn root_mut(&mut self, id: u32) -> Option<&mut Root> {
        let found = self.roots.iter_mut().find(|(root, _)| *root == id);
        found.map(|(_, root)| root)
    }

    /// Whether `id` is the one and only root of this VM.
    fn is_only_root(&self, id: u32) -> bool {
        matches!(self.roots.as_slice(), [(only, _)] if *only == id)
    }

    /// The root of a stream at its request headers (the stream leaves `created`).
    fn root_of(&mut self, stream_id: u32) -> Option<&Root> {
        match self.created.remove(&stream_id) {
            Some(root_id) => self.root(root_id),
            None => match self.roots.as_slice() {
                [(_, only)] => Some(only),
                _ => None,
            },
        }
    }
}

/// The VM's contexts, created at the first callback.
struct VmContexts(RefCell<Option<Contexts>>);

// SAFETY: a proxy-wasm VM is single-threaded (wasm32 without the atomics feature).
unsafe impl Sync for VmContexts {}

static CONTEXTS: VmContexts = VmContexts(RefCell::new(None));

/// Runs `f` on the contexts; `None` if they are already borrowed (a re-entrant host).
fn with_contexts<R>(f: impl FnOnce(&mut Contexts) -> R) -> Option<R> {
    let result = CONTEXTS
        .0
        .try_borrow_mut()
        .ok()
        .map(|mut c| f(c.get_or_insert_with(Contexts::default)));
    if result.is_none() {
        error!("easy-jwt: the host re-entered the VM during a callback; refusing the request");
    }
    result
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

extern "C" {
    fn __wasm_call_ctors();
}

// wasi-libc, as std linked it: `memcmp` (slice and string comparison) is all the plugin takes
// from it now that the crate is `no_std` in the VM; the linker leaves the rest out.
#[link(name = "c")]
extern "C" {}

/// Module start-up (WASI reactor): static constructors, then the logger.
#[no_mangle]
pub extern "C" fn _initialize() {
    // SAFETY: wasi-libc's constructors, run once before any other export (the host calls
    // `_initialize` first, docs/host-semantics.md §1).
    unsafe { __wasm_call_ctors() };
    logger::install();
}

/// The allocator the host uses for every value it returns; the adapter takes ownership of those
/// buffers with `Vec::from_raw_parts` (`hostio`).
#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer: Vec<u8> = Vec::with_capacity(size);
    let pointer = buffer.as_mut_ptr();
    ::core::mem::forget(buffer);
    pointer
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(context_id: u32, root_id: u32) {
    with_contexts(|contexts| {
        if root_id == 0 {
            let host: Rc<dyn Host> = Rc::new(Envoy);
            contexts.roots.push((context_id, Root::new(host)));
        } else if !contexts.is_only_root(root_id) {
            contexts.created.insert(context_id, root_id);
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _vm_configuration_size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(root_id: u32, configuration_size: usize) -> u32 {
    let configured = with_contexts(|contexts| {
        contexts
            .root_mut(root_id)
            .is_some_and(|root| root.on_configure(configuration_size))
    });
    u32::from(configured.unwrap_or(false))
}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(context_id: u32, headers: usize, end: u32) -> u32 {
    let action = with_contexts(|contexts| {
        let Some(root) = contexts.root_of(context_id) else {
            // A stream whose root was never created: never let it through unchecked.
            return Filter::refuse_unknown(&Envoy, context_id);
        };
        let mut stream = root.filter(context_id);
        let action = stream.on_http_request_headers(headers, end != 0);
        if stream.is_waiting() {
            if let Some(token) = stream.call_token() {
                contexts.calls.insert(token, context_id);
            }
            contexts.streams.insert(context_id, stream);
        }
        action
    });
    action.unwrap_or_else(|| Filter::refuse_unknown(&Envoy, context_id)) as u32
}

#[no_mangle]
pub extern "C" fn proxy_on_http_call_response(
    root_id: u32,
    token: u32,
    headers: usize,
    body_size: usize,
    trailers: usize,
) {
    with_contexts(|contexts| {
        let stream = contexts
            .calls
            .remove(&token)
            .and_then(|id| contexts.streams.get_mut(&id));
        match stream {
            Some(stream) => stream.on_http_call_response(token, headers, body_size, trailers),
            None => {
                if let Some(root) = contexts.root_mut(root_id) {
                    root.on_http_call_response(token, headers, body_size, trailers);
                }
            }
        }
    });
}

#[no_mangle]
pub extern "C" fn proxy_on_tick(root_id: u32) {
    with_contexts(|contexts| {
        if let Some(root) = contexts.root_mut(root_id) {
            root.on_tick();
        }
    });
}

/// The end of a context: a waiting stream's `on_done` work (leave its call or flight), then
/// forget it.
#[no_mangle]
pub extern "C" fn proxy_on_delete(context_id: u32) {
    with_contexts(|contexts| {
        if !contexts.created.is_empty() {
            contexts.created.remove(&context_id);
        }
        // Most streams were decided in their request headers and never stored.
        let waiting = if contexts.streams.is_empty() {
            None
        } else {
            contexts.streams.remove(&context_id)
        };
        if let Some(mut stream) = waiting {
            if let Some(token) = stream.call_token() {
                contexts.calls.remove(&token);
            }
            stream.on_done();
        } else {
            contexts.roots.retain(|(id, _)| *id != context_id);
        }
    });
}
