//! Probe plugin: a tiny proxy-wasm plugin that exercises host behaviours on request and
//! records what it observed as `probe: …` log lines (info level) for the host tests.
//!
//! Driven by the request header `x-probe: action[,action…]` (see `Http::run`; after a call,
//! `on-response-reply`, `on-response-echo` (reply with the call's status and body) or
//! `on-response-nothing` choose what `on_http_call_response` does), by the plugin
//! configuration (`fail_configure`, `tick_ms=N`) and by the WASI environment variable
//! `PROBE_START` (`hostcall` | `panic`) for start-up behaviours.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, LogLevel, MapType, MetricType, Status};

mod raw;

static REQUESTS: AtomicU32 = AtomicU32::new(0);
static INITIALIZED: AtomicU32 = AtomicU32::new(0);

fn say(message: String) {
    let _ = hostcalls::log(LogLevel::Info, &format!("probe: {message}"));
}

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    INITIALIZED.store(1, Ordering::SeqCst);
    say("init".to_string());
    match std::env::var("PROBE_START").as_deref() {
        Ok("hostcall") => {
            let _ = hostcalls::get_current_time();
        }
        Ok("panic") => panic!("probe start-up panic"),
        _ => {}
    }
    proxy_wasm::set_root_context(|id| {
        say(format!("root_id={id}"));
        Box::new(Root { config: String::new() })
    });
}}

/// Called by the host after `_initialize` (cpp-host calls `main(0, 0)` when exported).
#[no_mangle]
pub extern "C" fn main(_argc: i32, _argv: i32) -> i32 {
    say(format!(
        "main initialized={}",
        INITIALIZED.load(Ordering::SeqCst)
    ));
    0
}

struct Root {
    config: String,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, size: usize) -> bool {
        say(format!("vm_start size={size}"));
        true
    }

    fn on_configure(&mut self, size: usize) -> bool {
        let config = self.get_plugin_configuration();
        self.config = config
            .as_deref()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .unwrap_or_default();
        say(format!(
            "configure size={size} config={:?}",
            config.map(|c| c.len())
        ));
        if let Some(ms) = setting(&self.config, "tick_ms") {
            let ms = ms.parse().unwrap_or(0);
            self.set_tick_period(Duration::from_millis(ms));
        }
        !self.config.contains("fail_configure")
    }

    fn on_tick(&mut self) {
        say("tick".to_string());
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        say(format!("create ctx={context_id}"));
        Some(Box::new(Http {
            id: context_id,
            config: self.config.clone(),
            actions: Vec::new(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// `key=value` inside the configuration text (values end at `,` `;` `"` or whitespace).
fn setting<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    let start = config.find(&format!("{key}="))? + key.len() + 1;
    let rest = config.get(start..)?;
    let end = rest
        .find(|c: char| c == ',' || c == ';' || c == '"' || c.is_whitespace())
        .unwrap_or(rest.len());
    rest.get(..end)
}

struct Http {
    id: u32,
    config: String,
    actions: Vec<String>,
}

impl Drop for Http {
    fn drop(&mut self) {
        say(format!("delete ctx={}", self.id));
    }
}

impl Context for Http {
    fn on_http_call_response(&mut self, token: u32, headers: usize, body: usize, trailers: usize) {
        say(format!(
            "call_response ctx={} token={token} headers={headers} body={body} trailers={trailers}",
            self.id
        ));
        let pairs = self.get_http_call_response_headers();
        say(format!("call_response_headers {pairs:?}"));
        let body = self
            .get_http_call_response_body(0, body)
            .unwrap_or_default();
        say(format!(
            "call_response_body {:?}",
            String::from_utf8_lossy(&body)
        ));
        say(format!(
            "call_response_trailers {:?}",
            self.get_http_call_response_trailers()
        ));
        let (code, message) = self.get_grpc_status();
        say(format!("call_status code={code} message={message:?}"));
        let value = raw::get_map_value(MapType::HttpCallResponseHeaders, ":status");
        say(format!("call_status_header {value:?}"));
        let trailer = raw::get_map_value(MapType::HttpCallResponseTrailers, "x-t");
        say(format!("call_trailer_value {trailer:?}"));
        if self.has("on-response-reply") {
            self.send_http_response(401, vec![("x-probe", "denied")], Some(b"no"));
        } else if self.has("on-response-echo") {
            // Answers the client with the call's own status and body (no `:status`: 502).
            let code = value
                .1
                .as_deref()
                .and_then(|s| s.parse().ok())
                .unwrap_or(502);
            self.send_http_response(code, vec![("x-probe-call", "1")], Some(&body));
        } else if !self.has("on-response-nothing") {
            let status = raw::add_map_value(MapType::HttpRequestHeaders, "x-probe-auth", "ok");
            say(format!("add_while_paused {status:?}"));
            self.resume_http_request();
        }
    }

    fn on_done(&mut self) -> bool {
        say(format!("done ctx={}", self.id));
        true
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, num_headers: usize, end_of_stream: bool) -> Action {
        let n = REQUESTS.fetch_add(1, Ordering::SeqCst) + 1;
        say(format!(
            "request_headers ctx={} n={num_headers} eos={end_of_stream} vm_requests={n}",
            self.id
        ));
        self.actions = self
            .get_http_request_header("x-probe")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect();
        let mut action = Action::Continue;
        for name in self.actions.clone() {
            if self.run(&name) == Action::Pause {
                action = Action::Pause;
            }
        }
        say(format!(
            "request_headers_return ctx={} pause={}",
            self.id,
            action == Action::Pause
        ));
        action
    }

    fn on_http_request_body(&mut self, size: usize, eos: bool) -> Action {
        say(format!(
            "request_body ctx={} size={size} eos={eos}",
            self.id
        ));
        if self.has("body-read") {
            let body = self.get_http_request_body(0, size).unwrap_or_default();
            say(format!("body {:?}", String::from_utf8_lossy(&body)));
        }
        if self.has("body-set") && eos {
            self.set_http_request_body(0, size, b"replaced");
        }
        if self.has("body-bad-set") {
            let status = raw::set_buffer(BufferType::HttpRequestBody, 1, 0, b"x");
            say(format!("body_bad_set {status:?}"));
        }
        if self.has("body-pause") && !eos {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, num_headers: usize, eos: bool) -> Action {
        let status = self.get_http_response_header(":status").unwrap_or_default();
        say(format!(
            "response_headers ctx={} status={status} n={num_headers} eos={eos}",
            self.id
        ));
        say(format!(
            "response_header_pairs {:?}",
            self.get_http_response_headers()
        ));
        let request_value = raw::get_map_value(MapType::HttpRequestHeaders, "x-probe");
        let request_pairs = raw::get_map_pairs_len(MapType::HttpRequestHeaders);
        say(format!(
            "response_phase_request_header {request_value:?} pairs={request_pairs:?}"
        ));
        self.add_http_response_header("x-probe-response-seen", &status);
        if self.has("reply-again-in-response") {
            let status = raw::send_local_response(500, b"again");
            say(format!("second_reply {status:?}"));
        }
        if self.has("resp-pause") {
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, eos: bool) -> Action {
        let body = self.get_http_response_body(0, size).unwrap_or_default();
        say(format!(
            "response_body ctx={} size={size} eos={eos} body={:?}",
            self.id,
            String::from_utf8_lossy(&body)
        ));
        if self.has("resp-body-rewrite") && eos {
            self.set_http_response_body(0, size, b"rewritten");
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        let path = raw::get_map_value(MapType::HttpRequestHeaders, ":path");
        let trailer = raw::get_map_value(MapType::HttpRequestTrailers, "x");
        say(format!(
            "log ctx={} path={path:?} trailer={trailer:?}",
            self.id
        ));
    }
}

impl Http {
    fn has(&self, action: &str) -> bool {
        self.actions.iter().any(|a| a == action)
    }

    fn header(&self, name: &str) -> Option<String> {
        self.get_http_request_header(name)
    }

    /// One `x-probe` action; returns Pause when the action wants the request held.
    fn run(&mut self, name: &str) -> Action {
        match name {
            "pause" => return Action::Pause,
            "panic" => panic!("probe panic on request"),
            "log-headers" => say(format!("headers {:?}", self.get_http_request_headers())),
            "mutate" => self.mutate(),
            "reply" => self.reply(b"denied"),
            "reply-empty" => self.reply(b""),
            "reply-twice" => {
                self.reply(b"first");
                let status = raw::send_local_response(500, b"second");
                say(format!("second_reply {status:?}"));
            }
            "reply-then-resume" => {
                self.reply(b"denied");
                self.resume_http_request();
                say("after_resume".to_string());
                return Action::Pause;
            }
            "resume-then-touch" => {
                self.resume_http_request();
                say(format!(
                    "after_resume add={:?} get={:?} pairs={:?}",
                    raw::add_map_value(MapType::HttpRequestHeaders, "x-late", "1"),
                    raw::get_map_value(MapType::HttpRequestHeaders, ":path"),
                    raw::get_map_pairs_len(MapType::HttpRequestHeaders),
                ));
                return Action::Pause;
            }
            "call" => return self.call(None),
            "call-twice" => {
                self.call(None);
                return self.call(None);
            }
            "call-unknown-cluster" => return self.call(Some("bad-cluster")),
            "call-missing-path" => return self.call(Some("missing-path")),
            "call-missing-method" => return self.call(Some("missing-method")),
            "call-missing-authority" => return self.call(Some("missing-authority")),
            "call-big-timeout" => return self.call(Some("big-timeout")),
            "props" => self.props(),
            "metrics" => self.metrics(),
            "count" => self.count(),
            "shared" => self.shared(),
            "misc" => self.misc(),
            "stdout" => {
                println!("probe stdout line");
                eprintln!("probe stderr line");
            }
            "effective-bad" => say(format!(
                "effective_bad {:?}",
                hostcalls::set_effective_context(9999)
            )),
            "oob" => say(format!("oob {:?}", raw::log_out_of_bounds())),
            "buffers" => self.buffers(),
            _ => {}
        }
        Action::Continue
    }

    fn mutate(&self) {
        self.add_http_request_header("X-Added", "a1");
        self.add_http_request_header("x-added", "a2");
        self.set_http_request_header("x-replaced", Some("r"));
        self.remove_http_request_header("x-removed");
        let size = raw::get_map_size(MapType::HttpRequestHeaders);
        say(format!(
            "mutate first={:?} size={size:?}",
            self.get_http_request_header("x-added")
        ));
    }

    fn reply(&self, body: &[u8]) {
        let headers = vec![("x-reply", "1"), ("content-type", "application/json")];
        self.send_http_response(403, headers, Some(body));
        say("after_send".to_string());
    }

    fn call(&self, variant: Option<&str>) -> Action {
        let cluster = setting(&self.config, "cluster")
            .unwrap_or("auth")
            .to_string();
        let cluster = if variant == Some("bad-cluster") {
            "nope".to_string()
        } else {
            cluster
        };
        let mut headers = vec![
            (":method", "POST"),
            (":path", "/check"),
            (":authority", "auth.local"),
        ];
        let drop_name = match variant {
            Some("missing-path") => ":path",
            Some("missing-method") => ":method",
            Some("missing-authority") => ":authority",
            _ => "",
        };
        headers.retain(|(k, _)| *k != drop_name);
        let body = self.header("x-probe-call-body").unwrap_or_default();
        let timeout = if variant == Some("big-timeout") {
            Duration::from_millis(1u64 << 31)
        } else {
            Duration::from_millis(1000)
        };
        let body_opt = (!body.is_empty()).then_some(body.as_bytes());
        let result =
            self.dispatch_http_call(&cluster, headers, body_opt, vec![("x-tr", "1")], timeout);
        say(format!("dispatch {result:?}"));
        match result {
            Ok(_) => Action::Pause,
            Err(_) => Action::Continue,
        }
    }

    fn props(&self) {
        let names = [
            "plugin_name",
            "plugin_root_id",
            "plugin_vm_id",
            "route_name",
            "cluster_name",
            "xds.route_name",
            "xds.cluster_name",
            "request.path",
            "request.url_path",
            "request.host",
            "request.method",
            "request.scheme",
            "request.id",
            "request.query",
            "request.headers.x-probe",
            "custom.thing",
            "no.such",
        ];
        for name in names {
            let path: Vec<&str> = name.split('.').collect();
            let value = self
                .get_property(path)
                .map(|v| String::from_utf8_lossy(&v).into_owned());
            say(format!("prop {name}={value:?}"));
        }
        let headers = self
            .get_property(vec!["request", "headers"])
            .map(|v| v.len());
        say(format!("prop request.headers bytes={headers:?}"));
        self.set_property(vec!["probe", "set"], Some(b"v1"));
        let back = self
            .get_property(vec!["probe", "set"])
            .map(|v| String::from_utf8_lossy(&v).into_owned());
        say(format!("prop probe.set={back:?}"));
    }

    fn metrics(&self) {
        let counter = hostcalls::define_metric(MetricType::Counter, "probe_counter");
        let gauge = hostcalls::define_metric(MetricType::Gauge, "probe_gauge");
        let histogram = hostcalls::define_metric(MetricType::Histogram, "probe_histogram");
        say(format!("metric_ids {counter:?} {gauge:?} {histogram:?}"));
        let (Ok(c), Ok(g), Ok(h)) = (counter, gauge, histogram) else {
            return;
        };
        say(format!(
            "counter_inc0 {:?}",
            hostcalls::increment_metric(c, 0)
        ));
        say(format!(
            "counter_inc2 {:?}",
            hostcalls::increment_metric(c, 2)
        ));
        say(format!(
            "counter_record5 {:?}",
            hostcalls::record_metric(c, 5)
        ));
        say(format!("counter_get {:?}", hostcalls::get_metric(c)));
        say(format!(
            "gauge_record10 {:?}",
            hostcalls::record_metric(g, 10)
        ));
        say(format!(
            "gauge_inc-3 {:?}",
            hostcalls::increment_metric(g, -3)
        ));
        say(format!("gauge_get {:?}", hostcalls::get_metric(g)));
        say(format!("hist_record7 {:?}", hostcalls::record_metric(h, 7)));
        say(format!("hist_inc {:?}", hostcalls::increment_metric(h, 1)));
        say(format!("hist_get {:?}", hostcalls::get_metric(h)));
        say(format!("unknown_get {:?}", hostcalls::get_metric(999)));
    }

    fn count(&self) {
        if let Ok(id) = hostcalls::define_metric(MetricType::Counter, "probe_requests") {
            let _ = hostcalls::increment_metric(id, 1);
        }
    }

    fn shared(&self) {
        let key = self
            .header("x-probe-key")
            .unwrap_or_else(|| "k".to_string());
        let value = self.header("x-probe-value").unwrap_or_default();
        let cas = self.header("x-probe-cas").and_then(|c| c.parse().ok());
        let set = hostcalls::set_shared_data(&key, Some(value.as_bytes()), cas);
        let (got, got_cas) = self.get_shared_data(&key);
        let got = got.map(|v| String::from_utf8_lossy(&v).into_owned());
        say(format!("shared set={set:?} value={got:?} cas={got_cas:?}"));
    }

    fn misc(&self) {
        say(format!("log_level {:?}", hostcalls::get_log_level()));
        let now = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
        say(format!("time_nanos {:?}", now.map(|d| d.as_nanos())));
        say(format!("log_level_6 {:?}", raw::log_with_level(6)));
        say(format!(
            "foreign {:?}",
            hostcalls::call_foreign_function("nothing", None)
        ));
        say(format!(
            "vm_config {:?}",
            hostcalls::get_buffer(BufferType::VmConfiguration, 0, usize::MAX)
        ));
        say(format!(
            "plugin_config_at_request {:?}",
            raw::get_buffer_status(BufferType::PluginConfiguration)
        ));
        say(format!(
            "buffer_type_99 {:?}",
            raw::get_buffer_status_raw(99)
        ));
        say(format!(
            "effective_self {:?}",
            hostcalls::set_effective_context(self.id)
        ));
    }

    fn buffers(&self) {
        say(format!(
            "request_body_in_headers {:?}",
            raw::get_buffer_status(BufferType::HttpRequestBody)
        ));
        say(format!(
            "call_body_outside {:?}",
            raw::get_buffer_status(BufferType::HttpCallResponseBody)
        ));
        say(format!(
            "call_headers_outside {:?}",
            raw::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        ));
    }
}

/// Keeps `Status` in scope for the raw module's signatures.
#[allow(dead_code)]
fn _status(_: Status) {}
