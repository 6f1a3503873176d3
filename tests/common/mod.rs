//! Shared harness of the end-to-end tests: the real `plugin.wasm` in the Envoy-faithful host, the
//! real token server, and a plain HTTP/1.1 client.
// Each test binary uses part of it.
#![allow(dead_code)]

pub mod scenarios;

use easy_jwt_host::vm::{
    CallOutcome, Event, HttpCall, LocalReply, LogLevel, StreamId, StreamProps, StreamState,
    VmConfig,
};
use easy_jwt_host::{Clock, HostEnv, ManualClock, Plugin, Vm};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use token_server::{BackgroundServer, Config as TokenConfig};

/// The cluster name the base configuration makes the plugin call.
pub const CLUSTER: &str = "outbound|9090||token-server.dns";
pub const SECRET: &str = "e2e-test-secret";

/// `plugin.wasm` at the repository root, as `make build` writes it.
pub fn plugin_path() -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("plugin.wasm");
    assert!(
        path.exists(),
        "{} is missing: run `make build` first",
        path.display()
    );
    path
}

/// The artifact, compiled once per test binary.
pub fn plugin() -> &'static Plugin {
    static PLUGIN: OnceLock<Plugin> = OnceLock::new();
    PLUGIN.get_or_init(|| Plugin::load(plugin_path()).expect("plugin.wasm loads"))
}

/// The configuration of `deploy/plugin-config.json` with `extra` keys merged over it.
pub fn config(extra: Value) -> Vec<u8> {
    let mut base: Value =
        serde_json::from_str(include_str!("../../deploy/plugin-config.json")).unwrap();
    for (key, value) in extra.as_object().expect("object") {
        base[key] = value.clone();
    }
    base.to_string().into_bytes()
}

/// A running reference token server with its own runtime.
pub struct TokenServer {
    server: BackgroundServer,
}

impl TokenServer {
    pub fn start() -> TokenServer {
        let server = BackgroundServer::start(TokenConfig {
            secret: SECRET.to_string(),
            ttl: Duration::from_secs(3600),
            deny_path_prefix: None,
        })
        .expect("token server starts");
        TokenServer { server }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// A token for `uid`, created over HTTP like a client would.
    pub fn create(&self, uid: i64) -> String {
        let (status, body) = http_json(
            self.addr(),
            "POST",
            "/api/token/create",
            &json!({ "uid": uid }),
        );
        assert_eq!(status, 200, "token create: {body}");
        body["token"].as_str().expect("token").to_string()
    }
}

/// An expired token signed with the right secret.
pub fn expired_token(uid: i64) -> String {
    token_server::mint(SECRET, uid, token_server::now_unix() - 60)
}

/// A token signed with another secret.
pub fn forged_token(uid: i64) -> String {
    token_server::mint("not-the-secret", uid, token_server::now_unix() + 3600)
}

/// A request as Envoy hands it to the filter.
#[derive(Debug, Clone)]
pub struct Req {
    pub headers: Vec<(String, String)>,
    pub props: StreamProps,
}

impl Req {
    pub fn get(path: &str) -> Req {
        Req {
            headers: vec![
                (":method".into(), "GET".into()),
                (":path".into(), path.into()),
                (":authority".into(), "api.example.com".into()),
                (":scheme".into(), "http".into()),
                ("user-agent".into(), "e2e".into()),
            ],
            props: StreamProps::default(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }

    pub fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn authority(mut self, authority: &str) -> Req {
        for (name, value) in &mut self.headers {
            if name == ":authority" {
                *value = authority.to_string();
            }
        }
        self
    }

    pub fn route(mut self, route: &str) -> Req {
        self.props.route_name = Some(route.into());
        self
    }

    pub fn service(mut self, cluster: &str) -> Req {
        self.props.cluster_name = Some(cluster.into());
        self
    }

    /// A route name served only under the legacy top-level property `route_name` (a gateway
    /// without the `xds.*` names).
    pub fn legacy_route(mut self, route: &str) -> Req {
        self.props
            .extra
            .push(("route_name".into(), route.as_bytes().to_vec()));
        self
    }
}

/// How a request ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Went upstream with these request headers.
    Upstream(Vec<(String, String)>),
    /// Answered by the plugin (or Envoy) locally.
    Reply(LocalReply),
    /// Still paused.
    Paused,
}

impl Outcome {
    pub fn upstream_headers(&self) -> &[(String, String)] {
        match self {
            Outcome::Upstream(headers) => headers,
            other => panic!("expected the request upstream, got {other:?}"),
        }
    }

    /// All values of a request header that reached the upstream.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.upstream_headers()
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .collect()
    }

    /// The uid the upstream sees (exactly one `x-auth-user` entry is asserted).
    pub fn uid(&self) -> String {
        let values = self.values("x-auth-user");
        assert_eq!(
            values.len(),
            1,
            "x-auth-user must reach the upstream exactly once: {values:?}"
        );
        values[0].clone()
    }

    pub fn reply(&self) -> &LocalReply {
        match self {
            Outcome::Reply(reply) => reply,
            other => panic!("expected a local reply, got {other:?}"),
        }
    }

    /// Status and parsed JSON body of a local reply (asserting `content-type: application/json`).
    pub fn error(&self) -> (u16, Value) {
        let reply = self.reply();
        assert!(
            reply
                .headers
                .iter()
                .any(|(k, v)| k == "content-type" && v == "application/json"),
            "error replies are JSON: {reply:?}"
        );
        let body = serde_json::from_slice(&reply.body).unwrap_or_else(|e| {
            panic!(
                "reply body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&reply.body)
            )
        });
        (reply.status, body)
    }
}

/// Where the harness sends the plugin's calls.
#[derive(Clone)]
pub enum Answerer {
    /// Real HTTP to these cluster addresses (missing cluster address: connect failure).
    Http(BTreeMap<String, SocketAddr>),
    /// A fixed outcome for every call.
    Fixed(CallOutcome),
}

/// One VM of the real artifact, driven like Envoy drives it, with calls answered by `answerer`.
pub struct Gateway {
    pub vm: Vm,
    pub env: HostEnv,
    pub clock: Arc<ManualClock>,
    runtime: tokio::runtime::Runtime,
    pub answerer: Answerer,
    pub calls: Vec<HttpCall>,
    /// Monotonic clock reading of the root's last tick (see [`Gateway::fire_due_tick`]).
    ticked_at: u64,
}

/// A clock at a fixed, realistic wall time (so JWT `exp` comparisons make sense).
pub fn manual_clock() -> Arc<ManualClock> {
    let now = u64::try_from(token_server::now_unix()).unwrap() * 1_000_000_000;
    Arc::new(ManualClock::new(now))
}

impl Gateway {
    /// A VM configured with `config`, knowing the clusters of `answerer` (or just `CLUSTER`).
    pub fn start(config: &[u8], answerer: Answerer) -> Gateway {
        let clock = manual_clock();
        let env = HostEnv::with_clock(clock.clone() as Arc<dyn Clock>);
        Gateway::start_in(&env, clock, config, answerer)
    }

    /// A VM whose `wasm` logger runs at `level` (Envoy `--component-log-level wasm:<level>`).
    pub fn at_log_level(config: &[u8], answerer: Answerer, level: LogLevel) -> Gateway {
        Gateway::tuned(config, answerer, |vm_cfg| vm_cfg.log_level = level)
    }

    /// A VM whose host settings `tune` adjusts (log level, flavor…).
    pub fn tuned(config: &[u8], answerer: Answerer, tune: impl FnOnce(&mut VmConfig)) -> Gateway {
        let clock = manual_clock();
        let env = HostEnv::with_clock(clock.clone() as Arc<dyn Clock>);
        let mut vm_cfg = vm_config(config, &answerer);
        tune(&mut vm_cfg);
        let vm = Vm::start(plugin(), &env, vm_cfg).expect("VM starts");
        Gateway::around(vm, env, clock, answerer)
    }

    /// Another VM in the same "Envoy" (shared data and metrics shared with `env`).
    pub fn start_in(
        env: &HostEnv,
        clock: Arc<ManualClock>,
        config: &[u8],
        answerer: Answerer,
    ) -> Gateway {
        let vm = Vm::start(plugin(), env, vm_config(config, &answerer)).expect("VM starts");
        Gateway::around(vm, env.clone(), clock, answerer)
    }

    fn around(vm: Vm, env: HostEnv, clock: Arc<ManualClock>, answerer: Answerer) -> Gateway {
        assert!(vm.configured(), "configuration rejected: {:?}", vm.logs());
        Gateway {
            vm,
            env,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            ticked_at: clock.monotonic_nanos(),
            clock,
            answerer,
            calls: Vec::new(),
        }
    }

    /// Envoy's timer, on the manual clock: runs the root's tick when its period has passed since
    /// the last one (the plugin flushes its counts and forgets its clock reading there).
    fn fire_due_tick(&mut self) {
        let Some(period) = self.vm.tick_period() else {
            return;
        };
        let now = self.clock.monotonic_nanos();
        let period = u64::try_from(period.as_nanos()).unwrap_or(u64::MAX);
        if now.saturating_sub(self.ticked_at) >= period {
            self.ticked_at = now;
            self.vm.tick();
        }
    }

    /// Against a real token server.
    pub fn with_token_server(config: &[u8], server: &TokenServer) -> Gateway {
        Gateway::start(config, http_answerer(server.addr()))
    }

    /// Runs the request headers; returns the stream and its state (possibly paused).
    pub fn begin(&mut self, req: Req) -> (StreamId, StreamState) {
        self.fire_due_tick();
        let id = self.vm.new_stream(req.props);
        let state = self.vm.on_request_headers(id, req.headers, true);
        (id, state)
    }

    /// A whole request: headers, then every call answered, then the outcome; the stream ends.
    pub fn send(&mut self, req: Req) -> Outcome {
        let (id, state) = self.begin(req);
        let outcome = self.settle(id, state);
        self.vm.end_stream(id);
        outcome
    }

    /// Answers pending calls until the stream is decided.
    pub fn settle(&mut self, id: StreamId, mut state: StreamState) -> Outcome {
        for _ in 0..8 {
            match state {
                StreamState::Paused => {}
                other => return self.outcome_of(id, other),
            }
            let calls = self.vm.take_calls();
            if calls.is_empty() {
                return Outcome::Paused;
            }
            for call in calls {
                let outcome = self.perform(&call);
                self.calls.push(call.clone());
                self.vm.deliver_call(call.token, outcome);
            }
            state = self.vm.state(id);
        }
        Outcome::Paused
    }

    pub fn outcome_of(&self, id: StreamId, state: StreamState) -> Outcome {
        match state {
            StreamState::Continued => Outcome::Upstream(self.vm.request_headers(id)),
            StreamState::LocalReply(reply) => Outcome::Reply(reply),
            StreamState::Paused => Outcome::Paused,
            other => panic!("unexpected stream state {other:?}"),
        }
    }

    /// What the answerer says to one call.
    pub fn perform(&self, call: &HttpCall) -> CallOutcome {
        match &self.answerer {
            Answerer::Fixed(outcome) => outcome.clone(),
            Answerer::Http(clusters) => {
                let addr = clusters.get(&call.cluster).copied();
                self.runtime
                    .block_on(easy_jwt_host::cluster_call::perform_call(
                        addr,
                        call.clone(),
                    ))
            }
        }
    }

    /// Current value of a plugin counter (`easy_jwt.<name>`), 0 when never incremented. The
    /// plugin hands its counts to the host on its root's tick (within 100 ms in Envoy): the
    /// armed tick runs first, as time passing would.
    pub fn counter(&mut self, name: &str) -> i64 {
        self.vm.tick();
        self.env
            .metrics
            .get(&format!("easy_jwt.{name}"))
            .unwrap_or(0)
    }

    pub fn log_text(&self) -> String {
        self.vm
            .logs()
            .iter()
            .map(|record| format!("[{:?}] {}\n", record.level, record.message))
            .collect()
    }

    /// Events delivered by calls, keyed by stream.
    pub fn events(&mut self) -> Vec<Event> {
        self.vm.take_events()
    }
}

pub fn http_answerer(addr: SocketAddr) -> Answerer {
    Answerer::Http(BTreeMap::from([(CLUSTER.to_string(), addr)]))
}

pub fn vm_config(config: &[u8], answerer: &Answerer) -> VmConfig {
    let clusters = match answerer {
        Answerer::Http(map) => map.keys().cloned().collect(),
        Answerer::Fixed(_) => [CLUSTER.to_string()].into(),
    };
    VmConfig {
        plugin_configuration: config.to_vec(),
        clusters,
        ..VmConfig::default()
    }
}

/// Starts a VM with `config` and returns it whatever `on_configure` said.
pub fn try_configure(config: &[u8]) -> Vm {
    Vm::start(
        plugin(),
        &HostEnv::new(),
        vm_config(config, &Answerer::Fixed(CallOutcome::Reset)),
    )
    .expect("VM starts")
}

/// A canned token-server answer.
pub fn answer(status: u16, body: &str) -> CallOutcome {
    CallOutcome::Response {
        headers: vec![
            (":status".into(), status.to_string()),
            ("content-type".into(), "application/json".into()),
        ],
        body: body.as_bytes().to_vec(),
        trailers: Vec::new(),
    }
}

/// A minimal blocking HTTP/1.1 exchange (`connection: close`), for tests that talk to servers.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read response");
    parse_response(&raw)
}

fn parse_response(raw: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    (status, headers, body)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = data.windows(2).position(|w| w == b"\r\n") {
        let size =
            usize::from_str_radix(String::from_utf8_lossy(&data[..end]).trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[end + 4 + size..];
    }
    out
}

/// POST/GET with a JSON body; returns status and parsed JSON.
pub fn http_json(addr: SocketAddr, method: &str, path: &str, body: &Value) -> (u16, Value) {
    let bytes = body.to_string();
    let (status, _, body) = http(
        addr,
        method,
        path,
        &[("content-type", "application/json")],
        bytes.as_bytes(),
    );
    (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
}

/// What a [`FakeServer`] does with each connection.
#[derive(Clone)]
pub enum Behaviour {
    /// Reads the request, writes these raw bytes, closes.
    Raw(Vec<u8>),
    /// Accepts and never answers (until the test ends).
    Hang,
    /// Sends headers announcing a body, part of it, then resets the connection.
    ResetMidBody,
}

/// A misbehaving HTTP server on 127.0.0.1 for fault tests; stops when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<std::sync::atomic::AtomicBool>,
}

impl FakeServer {
    pub fn start(behaviour: Behaviour) -> FakeServer {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            let mut held = Vec::new();
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).unwrap();
                        read_request(&mut stream);
                        match &behaviour {
                            Behaviour::Raw(bytes) => {
                                let _ = stream.write_all(bytes);
                            }
                            Behaviour::Hang => held.push(stream),
                            Behaviour::ResetMidBody => {
                                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"uid\":");
                                let _ = stream.flush();
                                std::thread::sleep(Duration::from_millis(20));
                                // SO_LINGER 0 would be a true RST; closing early ends the body short.
                                drop(stream);
                            }
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        FakeServer { addr, stop }
    }

    /// A server answering `status` with `content_type` and `body`.
    pub fn respond(status: u16, content_type: &str, body: &[u8]) -> FakeServer {
        let mut raw = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        FakeServer::start(Behaviour::Raw(raw))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn read_request(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                break;
            }
        }
    }
}

/// A loopback address nothing listens on.
pub fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A server that reads each request, then writes `bytes` one at a time, `delay` apart (a slow
/// drip answer); stops when dropped.
pub fn drip_server(bytes: Vec<u8>, delay: Duration) -> FakeServer {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let Ok((mut stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            };
            let (bytes, flag) = (bytes.clone(), flag.clone());
            std::thread::spawn(move || {
                stream.set_nonblocking(false).unwrap();
                read_request(&mut stream);
                for byte in bytes {
                    if flag.load(std::sync::atomic::Ordering::Relaxed)
                        || stream.write_all(&[byte]).is_err()
                    {
                        return;
                    }
                    let _ = stream.flush();
                    std::thread::sleep(delay);
                }
            });
        }
    });
    FakeServer { addr, stop }
}

/// A raw HTTP/1.1 answer with `content-length`.
pub fn raw_answer(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}
