//! The floor of a proxy-wasm SDK plugin that reads the request headers and sets one, for
//! `envoy-bench`: on request headers it reads every request header once and replaces
//! `x-auth-user` with `0`; nothing else (no configuration parsing, logic, logging or metrics).
//! It is what easy-jwt's ignored, missing-token and anonymous paths cannot go below on the SDK.
//!
//! The plugin configuration picks how the headers are read: `string` (default,
//! `get_http_request_headers`, every value checked as UTF-8 into a `String`) or `bytes`
//! (`get_http_request_headers_bytes`, what easy-jwt does); `noop` reads and sets nothing (the
//! no-op wasm filter: what any SDK plugin costs).

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(FloorRoot { read: Read::Strings }));
}}

#[derive(Clone, Copy)]
enum Read {
    Nothing,
    Strings,
    Bytes,
}

struct FloorRoot {
    read: Read,
}

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.read = match config.trim_ascii() {
            b"noop" => Read::Nothing,
            b"bytes" => Read::Bytes,
            _ => Read::Strings,
        };
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FloorHttp { read: self.read }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FloorHttp {
    read: Read,
}

impl Context for FloorHttp {}

impl HttpContext for FloorHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        // The count keeps the read from being optimised away.
        let read = match self.read {
            Read::Nothing => return Action::Continue,
            Read::Strings => self.get_http_request_headers().len(),
            Read::Bytes => self.get_http_request_headers_bytes().len(),
        };
        if read > 0 {
            self.set_http_request_header("x-auth-user", Some("0"));
        }
        Action::Continue
    }
}
