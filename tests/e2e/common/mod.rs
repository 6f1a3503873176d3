//! Shared harness of the end-to-end tests: the real `plugin.wasm` in every Envoy of `ENVOY_BINS`
//! (by default the pinned 1.40.0 and 1.36.2), the mock and reference token servers, the echo
//! upstream, and misbehaving servers for the fault tests.
//!
//! Each test binary starts ONE Envoy per version ([`World`]), with one listener per plugin
//! configuration it needs ([`Site`]), on first use; its tests share it and run in parallel. The
//! plugin's counters are Envoy-wide (`wasmcustom.easy_jwt.*`, every VM adds to the same stat), so
//! a test that reads them runs alone in its Envoy ([`each_counting`]: exclusive, after the counts
//! of earlier requests have landed); every other test runs with [`each`] (shared).
// Each test binary uses part of it.
#![allow(dead_code)]

pub mod scenarios;

use scenarios::OUTCOMES;

pub use scenarios::{
    base_config, CLOSED_CLUSTER, ECHO_CLUSTER, MOCK_CLUSTER, ROUTES, SECRET, SERVICE_CLUSTER,
    TOKEN_CLUSTER,
};

use easy_jwt_testbed::envoy::{self, Bootstrap, Envoy, EnvoyBin, Listener, Opts};
use easy_jwt_testbed::http::{self, Request, Response};
use easy_jwt_testbed::mock::MockTokenServer;
use easy_jwt_testbed::token_server::{self, BackgroundServer, Config as TokenConfig};
use easy_jwt_testbed::{plugin_wasm, EchoServer};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::thread;
use std::time::{Duration, Instant};

/// The cluster `tokenServerFQDN: token-server.dns` + `tokenServerPort: 9090` names (Higress
/// naming): the reference token server.
pub const CLUSTER: &str = "outbound|9090||token-server.dns";

/// The configuration of `deploy/plugin-config.json` (reference token server, cache on) with
/// `extra` keys merged over it.
pub fn config(extra: Value) -> Value {
    let mut base: Value =
        serde_json::from_str(include_str!("../../../deploy/plugin-config.json")).unwrap();
    for (key, value) in extra.as_object().expect("object") {
        base[key] = value.clone();
    }
    base
}

/// A valid token of the reference token server for `uid` (an hour left).
pub fn valid_token(uid: i64) -> String {
    token_server::mint(SECRET, uid, token_server::now_unix() + 3600)
}

/// An expired token signed with the right secret.
pub fn expired_token(uid: i64) -> String {
    token_server::mint(SECRET, uid, token_server::now_unix() - 60)
}

/// A token signed with another secret.
pub fn forged_token(uid: i64) -> String {
    token_server::mint("not-the-secret", uid, token_server::now_unix() + 3600)
}

/// The servers around one Envoy: the mock token server ([`MOCK_CLUSTER`]), the reference token
/// server ([`TOKEN_CLUSTER`]), the echo upstream, a closed port ([`CLOSED_CLUSTER`]) and any
/// extra cluster a binary adds (fake servers are kept alive with the world).
pub struct Backends {
    pub mock: MockTokenServer,
    pub echo: EchoServer,
    pub tokens: BackgroundServer,
    pub closed: SocketAddr,
    extra: Vec<(String, SocketAddr)>,
    fakes: Vec<FakeServer>,
    mocks: Vec<MockTokenServer>,
    servers: Vec<BackgroundServer>,
}

impl Backends {
    fn start() -> Backends {
        Backends {
            mock: MockTokenServer::start(),
            echo: EchoServer::start("127.0.0.1:0").expect("echo server starts"),
            tokens: BackgroundServer::start(TokenConfig {
                secret: SECRET.into(),
                ttl: Duration::from_secs(3600),
                deny_path_prefix: None,
            })
            .expect("reference token server starts"),
            closed: closed_port(),
            extra: Vec::new(),
            fakes: Vec::new(),
            mocks: Vec::new(),
            servers: Vec::new(),
        }
    }

    /// A cluster `name` to `addr`.
    pub fn cluster(&mut self, name: &str, addr: SocketAddr) {
        self.extra.push((name.to_string(), addr));
    }

    /// A cluster `name` to a fake server kept alive as long as the world.
    pub fn fake(&mut self, name: &str, server: FakeServer) -> usize {
        self.cluster(name, server.addr());
        self.fakes.push(server);
        self.fakes.len() - 1
    }

    /// A cluster `name` to another mock token server; returns its index for [`World::mock_at`].
    pub fn other_mock(&mut self, name: &str) -> usize {
        let mock = MockTokenServer::start();
        self.cluster(name, mock.addr());
        self.mocks.push(mock);
        self.mocks.len() - 1
    }

    /// A cluster `name` to another reference token server.
    pub fn other_token_server(&mut self, name: &str, config: TokenConfig) {
        let server = BackgroundServer::start(config).expect("token server starts");
        self.cluster(name, server.addr());
        self.servers.push(server);
    }

    fn bootstrap(&self) -> Bootstrap {
        let bootstrap = Bootstrap::new()
            .cluster(ECHO_CLUSTER, self.echo.addr())
            .cluster(SERVICE_CLUSTER, self.echo.addr())
            .cluster(MOCK_CLUSTER, self.mock.addr())
            .cluster(TOKEN_CLUSTER, self.tokens.addr())
            .cluster(CLOSED_CLUSTER, self.closed);
        self.extra
            .iter()
            .fold(bootstrap, |b, (name, addr)| b.cluster(name, *addr))
    }
}

/// One plugin configuration: a listener with the plugin in front of [`ROUTES`].
pub struct Site {
    pub name: String,
    pub config: String,
    /// Its own VM (and shared data) instead of the one every other listener shares.
    pub vm_id: Option<String>,
    /// Extra routes before [`ROUTES`]: (route name, path prefix, cluster).
    pub routes: Vec<(String, String, String)>,
}

/// A site with a JSON configuration.
pub fn site(name: &str, config: Value) -> Site {
    raw_site(name, &config.to_string())
}

/// A site with a configuration as text.
pub fn raw_site(name: &str, config: &str) -> Site {
    Site {
        name: name.to_string(),
        config: config.to_string(),
        vm_id: None,
        routes: Vec::new(),
    }
}

impl Site {
    /// The site's plugin runs in a VM of its own (its own per-VM cache and shared data).
    pub fn own_vm(mut self) -> Site {
        self.vm_id = Some(self.name.clone());
        self
    }

    /// Adds a route `name` for paths starting with `prefix` to `cluster`, before [`ROUTES`].
    pub fn route(mut self, name: &str, prefix: &str, cluster: &str) -> Site {
        self.routes
            .push((name.to_string(), prefix.to_string(), cluster.to_string()));
        self
    }

    fn listener(&self) -> Listener {
        // The root id carries the site, so each log line says which listener wrote it.
        let mut listener = Listener::new(&self.name)
            .wasm(plugin_wasm(), &self.config)
            .wasm_name(&plugin_name(&self.name), &plugin_name(&self.name));
        if let Some(id) = &self.vm_id {
            listener = listener.wasm_vm_id(id);
        }
        let listener = self
            .routes
            .iter()
            .fold(listener, |l, (name, prefix, cluster)| {
                l.route(name, prefix, cluster)
            });
        ROUTES.iter().fold(listener, |l, route| {
            l.route(route.name, route.prefix, route.cluster)
        })
    }
}

/// The plugin name and root id of a site's filter (`easy-jwt.<site>`); Envoy prints the root id
/// (and the VM id) in front of each plugin log line: `wasm log easy-jwt.<site> <vm id>: …`.
pub fn plugin_name(site: &str) -> String {
    format!("easy-jwt.{site}")
}

/// How a binary's Envoys run.
#[derive(Clone, Copy)]
pub struct Setup {
    pub concurrency: u32,
    /// The `wasm` component's log level (Envoy's own stays at `info`).
    pub wasm_log_level: &'static str,
}

impl Default for Setup {
    fn default() -> Setup {
        Setup {
            concurrency: 1,
            wasm_log_level: "info",
        }
    }
}

/// One Envoy version with the binary's listeners and its backends.
pub struct World {
    pub bin: EnvoyBin,
    pub backends: Backends,
    pub envoy: &'static Envoy,
    counts: RwLock<()>,
}

/// Starts one world per Envoy of `ENVOY_BINS`, in parallel; `build` adds clusters and returns the
/// sites. Every Envoy lives until the test binary exits.
pub fn start_worlds(build: fn(&mut Backends) -> Vec<Site>, setup: Setup) -> Vec<World> {
    let bins = envoy::binaries();
    thread::scope(|scope| {
        let handles: Vec<_> = bins
            .into_iter()
            .map(|bin| scope.spawn(move || World::start(bin, build, setup)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

impl World {
    fn start(bin: EnvoyBin, build: fn(&mut Backends) -> Vec<Site>, setup: Setup) -> World {
        let mut backends = Backends::start();
        let sites = build(&mut backends);
        let bootstrap = sites
            .iter()
            .fold(backends.bootstrap(), |b, site| b.listener(site.listener()));
        let envoy = Envoy::start(
            &bin,
            &bootstrap,
            Opts {
                concurrency: setup.concurrency,
                wasm_log_level: Some(setup.wasm_log_level),
                ..Opts::default()
            },
        )
        .unwrap_or_else(|e| panic!("Envoy {} did not start: {e}", bin.version))
        .keep_until_exit();
        World {
            bin,
            backends,
            envoy,
            counts: RwLock::new(()),
        }
    }

    /// `1.40.0`.
    pub fn version(&self) -> &str {
        &self.bin.version
    }

    pub fn addr(&self, site: &str) -> SocketAddr {
        self.envoy.listener_addr(site)
    }

    /// One request on a fresh connection to `site`.
    pub fn send(&self, site: &str, request: &Request) -> Response {
        http::send(self.addr(site), request)
    }

    /// `GET path` with `token` as a bearer token.
    pub fn get(&self, site: &str, path: &str, token: &str) -> Response {
        self.send(site, &Request::get(path).bearer(token))
    }

    /// The fake server `index` of [`Backends::fake`].
    pub fn fake_at(&self, index: usize) -> &FakeServer {
        &self.backends.fakes[index]
    }

    pub fn mock_at(&self, index: usize) -> &MockTokenServer {
        &self.backends.mocks[index]
    }

    /// The plugin's counters by short name (`allowed`), in one admin read of only them.
    pub fn plugin_stats(&self) -> BTreeMap<String, i64> {
        let response = self
            .envoy
            .admin("/stats?format=json&filter=%5Ewasmcustom%5C.easy_jwt%5C.");
        assert_eq!(response.status, 200, "admin /stats: {}", response.text());
        response.json()["stats"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|stat| {
                let name = stat["name"]
                    .as_str()?
                    .strip_prefix("wasmcustom.easy_jwt.")?;
                Some((name.to_string(), stat["value"].as_i64()?))
            })
            .collect()
    }

    /// Current value of plugin counter `name` (`wasmcustom.easy_jwt.<name>`), 0 before any.
    pub fn counter(&self, name: &str) -> i64 {
        self.plugin_stats().get(name).copied().unwrap_or(0)
    }

    /// Counters `names` in one read.
    pub fn counters_of(&self, names: &[&str]) -> Vec<i64> {
        let stats = self.plugin_stats();
        names
            .iter()
            .map(|name| stats.get(*name).copied().unwrap_or(0))
            .collect()
    }

    /// Every counter of the plugin: the outcomes ([`OUTCOMES`]) and the [`MARKERS`].
    pub fn counters(&self) -> Vec<i64> {
        let names: Vec<&str> = OUTCOMES.iter().chain(&MARKERS).copied().collect();
        self.counters_of(&names)
    }

    /// Counter `name` once it reads `want`, or whatever it reads after [`COUNTS_DUE`].
    pub fn counter_reaching(&self, name: &str, want: i64) -> i64 {
        let deadline = Instant::now() + COUNTS_DUE;
        loop {
            let value = self.counter(name);
            if value == want || Instant::now() >= deadline {
                return value;
            }
            thread::sleep(POLL);
        }
    }

    /// Waits (up to [`COUNTS_DUE`]) until `condition` holds; returns whether it did.
    pub fn eventually(&self, mut condition: impl FnMut() -> bool) -> bool {
        let deadline = Instant::now() + COUNTS_DUE;
        loop {
            if condition() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(POLL);
        }
    }

    /// The plugin's log lines of `site` so far (Envoy's log, this listener's plugin only).
    pub fn plugin_log(&self, site: &str) -> Vec<String> {
        let marker = format!("wasm log {}", plugin_name(site));
        self.envoy
            .log()
            .lines()
            .filter(|line| line.contains(&marker))
            .map(str::to_string)
            .collect()
    }

    fn shared(&self) -> RwLockReadGuard<'_, ()> {
        self.counts
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Alone in this Envoy, once the counts of earlier requests have landed: no counter moves
    /// for one flush period (the plugin hands its counts over on its root's tick).
    fn exclusive(&self) -> RwLockWriteGuard<'_, ()> {
        let guard = self
            .counts
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let deadline = Instant::now() + COUNTS_DUE;
        let mut last = (self.counters(), Instant::now());
        while Instant::now() < deadline {
            thread::sleep(POLL);
            let now = self.counters();
            if now != last.0 {
                last = (now, Instant::now());
            } else if last.1.elapsed() >= COUNTS_QUIET {
                break;
            }
        }
        guard
    }
}

/// The counters that are not outcomes: `cache_hit` marks an `allowed` request answered from the
/// cache, `token_server_retry` counts re-sent calls.
pub const MARKERS: [&str; 2] = ["cache_hit", "token_server_retry"];

/// The plugin hands its counts to Envoy on its root's tick, at most 100 ms after they happen
/// (`proxy::counters::FLUSH_MS`): how long a test waits for a count (or another condition) before
/// giving up, and how long no count may move for the counts to be settled.
pub const COUNTS_DUE: Duration = Duration::from_secs(5);
pub const COUNTS_QUIET: Duration = Duration::from_millis(250);
const POLL: Duration = Duration::from_millis(20);

/// Runs `test` on every world at once (one thread per Envoy version), sharing each Envoy with
/// the binary's other tests. A failure names the version.
pub fn each(worlds: &'static [World], test: impl Fn(&World) + Sync) {
    on_every(worlds, |world| {
        let _shared = world.shared();
        test(world);
    });
}

/// Like [`each`], alone in each Envoy: for tests that read the plugin's counters.
pub fn each_counting(worlds: &'static [World], test: impl Fn(&World) + Sync) {
    on_every(worlds, |world| {
        let _alone = world.exclusive();
        test(world);
    });
}

fn on_every(worlds: &'static [World], test: impl Fn(&World) + Sync) {
    let test = &test;
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = worlds
            .iter()
            .map(|world| (world, scope.spawn(move || test(world))))
            .collect();
        handles
            .into_iter()
            .filter_map(|(world, handle)| {
                handle.join().err().map(|panic| {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    format!("Envoy {}: {message}", world.version())
                })
            })
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The uid the upstream saw (asserting the request went upstream with exactly one
/// `x-auth-user`).
pub fn uid(response: &Response) -> String {
    let values = echoed(response, "x-auth-user");
    assert_eq!(
        values.len(),
        1,
        "x-auth-user must reach the upstream exactly once: {values:?}"
    );
    values[0].clone()
}

/// Every value of request header `name` the echo upstream saw (panics on a local reply).
pub fn echoed(response: &Response, name: &str) -> Vec<String> {
    assert!(
        is_upstream(response),
        "expected the request upstream, got {} {:?}",
        response.status,
        response.text()
    );
    response.echoed_all(name)
}

/// The path the echo upstream saw.
pub fn echoed_path(response: &Response) -> String {
    assert!(is_upstream(response), "{}", response.text());
    response.json()["path"].as_str().unwrap().to_string()
}

pub fn is_upstream(response: &Response) -> bool {
    response.status == 200
        && serde_json::from_slice::<Value>(&response.body)
            .is_ok_and(|body| body["headers"].is_array() && body["path"].is_string())
}

/// Status and JSON body of a local reply (asserting `content-type: application/json`).
pub fn error(response: &Response) -> (u16, Value) {
    assert!(
        !is_upstream(response),
        "expected a local reply, the request went upstream: {}",
        response.text()
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "error replies are JSON: {} {:?}",
        response.status,
        response.text()
    );
    (response.status, response.json())
}

/// Status and `message` of a local reply.
pub fn failure(response: &Response) -> (u16, String) {
    let (status, body) = error(response);
    (
        status,
        body["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// What a [`FakeServer`] does with each connection.
#[derive(Clone)]
pub enum Behaviour {
    /// Reads the request, writes these raw bytes, closes.
    Raw(Vec<u8>),
    /// Accepts and never answers (until the test binary ends).
    Hang,
    /// Sends headers announcing a 100-byte body, 7 bytes of it, then closes the connection.
    ResetMidBody,
    /// Writes these bytes one at a time, `delay` apart (a slow drip answer).
    Drip(Vec<u8>, Duration),
}

/// A misbehaving HTTP server on 127.0.0.1 for fault tests (one thread per connection); stops
/// when dropped.
pub struct FakeServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<AtomicUsize>,
}

impl FakeServer {
    pub fn start(behaviour: Behaviour) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicUsize::new(0));
        let (flag, count) = (stop.clone(), requests.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if flag.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (behaviour, flag, count) = (behaviour.clone(), flag.clone(), count.clone());
                thread::spawn(move || serve_fake(stream, &behaviour, &flag, &count));
            }
        });
        FakeServer {
            addr,
            stop,
            requests,
        }
    }

    /// A server answering `status` with `content_type` and `body`.
    pub fn respond(status: u16, content_type: &str, body: &[u8]) -> FakeServer {
        FakeServer::start(Behaviour::Raw(raw_answer(status, content_type, body)))
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Requests read so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve_fake(
    mut stream: TcpStream,
    behaviour: &Behaviour,
    stop: &AtomicBool,
    count: &AtomicUsize,
) {
    // One request per connection: every answer ends it (`connection: close`, a hang, a short
    // body or the end of a drip), so Envoy opens a new one for the next call.
    if !read_request(&mut stream) {
        return;
    }
    count.fetch_add(1, Ordering::SeqCst);
    match behaviour {
        Behaviour::Raw(bytes) => {
            let _ = stream.write_all(bytes);
        }
        Behaviour::Hang => {
            // Hold the socket until Envoy closes it; no answer ever comes.
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).is_ok_and(|n| n > 0) {}
        }
        Behaviour::ResetMidBody => {
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"uid\":",
            );
            let _ = stream.flush();
        }
        Behaviour::Drip(bytes, delay) => {
            for byte in bytes {
                if stop.load(Ordering::Relaxed) || stream.write_all(&[*byte]).is_err() {
                    return;
                }
                let _ = stream.flush();
                thread::sleep(*delay);
            }
        }
    }
}

/// Reads one request (headers and a `content-length` body); false at end of connection.
fn read_request(stream: &mut TcpStream) -> bool {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
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
                return true;
            }
        }
    }
}

/// A loopback address nothing listens on: port 1 (tcpmux), below the ephemeral range every
/// server of the tests binds from (`127.0.0.1:0`). A port taken from that range and released
/// could be handed to another module's server starting at the same time in this binary.
pub fn closed_port() -> SocketAddr {
    let addr = SocketAddr::from(([127, 0, 0, 1], 1));
    assert!(
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "{addr} must be closed for the connection-failure tests"
    );
    addr
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

/// A cluster name for a fake server (Higress naming, so `tokenServerCluster` accepts it).
pub fn fake_cluster(name: &str) -> String {
    format!("outbound|80||{name}.fake")
}

/// A configuration calling cluster `cluster` (the global token server unset).
pub fn calling(cluster: &str, extra: Value) -> Value {
    let mut config = base_config(json!({ "tokenServerCluster": cluster }));
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}
