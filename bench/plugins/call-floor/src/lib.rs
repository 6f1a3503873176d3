//! The floor of a token-server call in Envoy, for `envoy-bench`: on request headers the filter
//! POSTs `{"token":"<the Authorization value after "Bearer ">"}` to `/api/token/auth` on one
//! cluster and pauses; on the answer it sets `x-auth-user: 1` and resumes. Nothing else: no
//! parsing, no cache, no logging, no metrics, no error handling beyond "resume anyway".
//!
//! The plugin configuration is the cluster name (default `token-server`).

use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(FloorRoot { cluster: "token-server".to_string() }));
}}

struct FloorRoot {
    cluster: String,
}

impl Context for FloorRoot {}

impl RootContext for FloorRoot {
    fn on_configure(&mut self, _size: usize) -> bool {
        if let Some(bytes) = self.get_plugin_configuration() {
            if let Ok(name) = String::from_utf8(bytes) {
                let name = name.trim();
                if !name.is_empty() {
                    self.cluster = name.to_string();
                }
            }
        }
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(FloorHttp {
            cluster: self.cluster.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct FloorHttp {
    cluster: String,
}

impl Context for FloorHttp {
    fn on_http_call_response(
        &mut self,
        _token: u32,
        _headers: usize,
        _body: usize,
        _trailers: usize,
    ) {
        self.set_http_request_header("x-auth-user", Some("1"));
        self.resume_http_request();
    }
}

impl HttpContext for FloorHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let auth = self
            .get_http_request_header("authorization")
            .unwrap_or_default();
        let token = auth.strip_prefix("Bearer ").unwrap_or(&auth);
        let body = format!("{{\"token\":\"{token}\"}}");
        let dispatched = self.dispatch_http_call(
            &self.cluster,
            vec![
                (":method", "POST"),
                (":path", "/api/token/auth"),
                (":authority", "token-server"),
                ("content-type", "application/json"),
            ],
            Some(body.as_bytes()),
            vec![],
            Duration::from_secs(2),
        );
        match dispatched {
            Ok(_) => Action::Pause,
            Err(_) => Action::Continue,
        }
    }
}
