//! The SDK's side of the adapter: `proxy_wasm::main!` registers the root context, and the SDK's
//! `RootContext` / `HttpContext` callbacks are handed to [`Root`] and [`Filter`], which hold the
//! logic (and are unit-tested without the SDK over the fake host).
//!
//! The SDK routes each call answer to the context that dispatched the call: a stream's own call
//! comes back to its [`Filter`], a call the root made again for orphaned waiters to the [`Root`].

use crate::proxy::filter::{Filter, Root};
use crate::proxy::host::{Envoy, Host};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};
use std::rc::Rc;

proxy_wasm::main! {{
    // Everything passes until the root reads Envoy's level (`Host::follow_log_level`). The
    // SDK's logger also logs a panic as critical before the VM aborts.
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|context_id| -> Box<dyn RootContext> {
        let host: Rc<dyn Host> = Rc::new(Envoy);
        Box::new(RootCtx(Root::new(context_id, host)))
    });
}}

/// The SDK's root context around [`Root`].
struct RootCtx(Root);

impl Context for RootCtx {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        self.0.on_http_call_response(token, headers, body, trailers);
    }
}

impl RootContext for RootCtx {
    fn on_configure(&mut self, size: usize) -> bool {
        self.0.on_configure(size)
    }

    fn on_tick(&mut self) {
        self.0.on_tick();
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(StreamCtx(self.0.filter(context_id))))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// The SDK's HTTP context around [`Filter`].
struct StreamCtx(Filter);

impl Context for StreamCtx {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        self.0.on_http_call_response(token, headers, body, trailers);
    }

    fn on_done(&mut self) -> bool {
        self.0.on_done()
    }
}

impl HttpContext for StreamCtx {
    fn on_http_request_headers(&mut self, headers: usize, end_of_stream: bool) -> Action {
        self.0.on_http_request_headers(headers, end_of_stream)
    }
}
