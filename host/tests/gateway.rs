//! Gateway tests over real sockets on 127.0.0.1: the noop and probe plugins, the echo upstream,
//! and tiny hyper (or raw TCP) servers standing in for clusters.
//!
//! Needs the test plugins: `cargo build --target wasm32-wasip1 --profile wasm-release
//! -p probe-plugin -p noop-plugin`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use easy_jwt_host::gateway::{Gateway, GatewayConfig, LogSink, Upstream, CANARY_WORKER};
use easy_jwt_host::{echo, Plugin};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Bound for any single wait in these tests.
const WAIT: Duration = Duration::from_secs(10);

/// Path of a test plugin.
fn wasm(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip1/wasm-release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --target wasm32-wasip1 --profile wasm-release \
         -p probe-plugin -p noop-plugin` first",
        path.display()
    );
    path
}

/// The compiled test plugin `name` (compiled once per test binary, shared by the gateways).
fn compiled(name: &str) -> Plugin {
    static NOOP: OnceLock<Plugin> = OnceLock::new();
    static PROBE: OnceLock<Plugin> = OnceLock::new();
    let cell = if name == "noop_plugin" { &NOOP } else { &PROBE };
    cell.get_or_init(|| Plugin::load(wasm(name)).expect("test plugin compiles"))
        .clone()
}

/// Collects plugin log lines.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<(usize, String)>>>);

impl Logs {
    fn sink(&self) -> LogSink {
        let lines = self.0.clone();
        Arc::new(move |worker, record| lines.lock().unwrap().push((worker, record.message.clone())))
    }

    fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, l)| l.clone())
            .collect()
    }

    /// Lines containing `needle` written by `worker`'s VM.
    fn count_on(&self, worker: usize, needle: &str) -> usize {
        let lines = self.0.lock().unwrap();
        lines
            .iter()
            .filter(|(w, l)| *w == worker && l.contains(needle))
            .count()
    }

    fn count(&self, needle: &str) -> usize {
        self.lines().iter().filter(|l| l.contains(needle)).count()
    }
}

/// Starts a gateway for `plugin` with `config`, after `tweak` adjusts the defaults.
async fn start(
    plugin: &str,
    config: &str,
    logs: &Logs,
    tweak: impl FnOnce(&mut GatewayConfig),
) -> Gateway {
    let mut cfg = GatewayConfig::new(wasm(plugin), config);
    cfg.compiled = Some(compiled(plugin));
    cfg.log_sink = Some(logs.sink());
    tweak(&mut cfg);
    Gateway::start(cfg).await.expect("gateway starts")
}

/// A parsed HTTP answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.text()))
    }

    /// Values of `name` in an echo answer, in order.
    fn echoed(&self, name: &str) -> Vec<String> {
        let doc = self.json();
        let pairs = doc["headers"].as_array().cloned().unwrap_or_default();
        pairs
            .iter()
            .filter(|p| p[0] == name)
            .map(|p| p[1].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

/// The raw request text for `method path` with `headers` and `body` (`Connection: close`).
fn raw_request(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("{method} {path} HTTP/1.1\r\nHost: test.local\r\nConnection: close\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        text.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    text.push_str("\r\n");
    text.push_str(body);
    text
}

/// Sends one request over a fresh connection and reads the whole answer.
async fn send(addr: SocketAddr, request: String) -> Answer {
    let exchange = async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.unwrap();
        raw
    };
    let raw = tokio::time::timeout(WAIT, exchange)
        .await
        .expect("answer in time");
    parse(&raw)
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Answer {
    send(addr, raw_request("GET", path, headers, "")).await
}

/// Parses an HTTP/1.1 answer whose body runs to the end of the connection.
fn parse(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Serves `handler` on a fresh 127.0.0.1 port (a stand-in cluster); abort the task to stop it.
async fn spawn_server<F, Fut>(handler: F) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let handler = handler.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| {
                    let answer = handler(req);
                    async move { Ok::<_, Infallible>(answer.await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

fn text_response(status: u16, body: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    response
}

/// A 127.0.0.1 port nothing listens on.
fn closed_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Polls `cond` every 10 ms until it holds or [`WAIT`] passes.
async fn eventually(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A gateway whose probe plugin calls cluster `auth` at `cluster`.
async fn probe_with_cluster(logs: &Logs, cluster: SocketAddr) -> Gateway {
    start("probe_plugin", "{}", logs, |cfg| {
        cfg.clusters.insert("auth".to_string(), cluster);
        cfg.workers = 1;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_to_echo_with_the_client_headers() {
    let logs = Logs::default();
    let gateway = start("noop_plugin", "", &logs, |_| {}).await;
    let headers = [("X-Dup", "1"), ("x-dup", "2"), ("X-Custom", "v")];
    let answer = get(gateway.local_addr(), "/hello?x=1", &headers).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    let doc = answer.json();
    assert_eq!(doc["method"], "GET");
    assert_eq!(doc["path"], "/hello?x=1");
    assert_eq!(answer.echoed("host"), ["test.local"]);
    assert_eq!(answer.echoed("x-dup"), ["1", "2"]);
    assert_eq!(answer.echoed("x-custom"), ["v"]);
    assert!(
        answer.echoed(":path").is_empty(),
        "no pseudo headers upstream"
    );
    eventually("stream end", || {
        gateway.counters().streams_ended.load(Ordering::Relaxed) == 1
    })
    .await;
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_body_goes_through_the_plugin_to_a_real_upstream() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let echo_task = tokio::spawn(echo::serve(listener));
    let logs = Logs::default();
    let gateway = start("probe_plugin", "{}", &logs, |cfg| {
        cfg.upstream = Upstream::Http(upstream);
    })
    .await;
    let headers = [("x-probe", "body-read,body-set")];
    let request = raw_request("POST", "/submit", &headers, "original body");
    let answer = send(gateway.local_addr(), request).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["method"], "POST");
    // The plugin replaced the body with "replaced" (8 bytes) before it went upstream.
    assert_eq!(answer.echoed("content-length"), ["8"]);
    assert_eq!(
        logs.count("body \"original body\""),
        1,
        "{:?}",
        logs.lines()
    );
    assert_eq!(answer.header("x-probe-response-seen"), Some("200"));
    gateway.shutdown().await;
    echo_task.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_many_concurrent_clients() {
    let logs = Logs::default();
    let gateway = start("noop_plugin", "", &logs, |cfg| cfg.workers = 3).await;
    let addr = gateway.local_addr();
    let clients: Vec<_> = (0..64)
        .map(|i| {
            tokio::spawn(async move {
                let id = i.to_string();
                let answer = get(addr, &format!("/c/{i}"), &[("x-client", &id)]).await;
                (i, answer)
            })
        })
        .collect();
    for client in clients {
        let (i, answer) = client.await.unwrap();
        assert_eq!(answer.status, 200);
        assert_eq!(answer.echoed("x-client"), [i.to_string()]);
        assert_eq!(answer.json()["path"], format!("/c/{i}"));
    }
    let counters = gateway.counters();
    eventually("all streams ended", || {
        counters.streams_ended.load(Ordering::Relaxed) == 64
    })
    .await;
    assert_eq!(counters.streams_open.load(Ordering::Relaxed), 0);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_request_is_answered_from_a_real_cluster_call() {
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let (cluster, server) = spawn_server(move |req: Request<Incoming>| {
        let host = req.headers().get("host").cloned();
        let line = format!("{} {} {host:?}", req.method(), req.uri());
        let _ = seen_tx.send(line);
        async { text_response(200, "cluster says hi") }
    })
    .await;
    let logs = Logs::default();
    let gateway = probe_with_cluster(&logs, cluster).await;
    let answer = get(
        gateway.local_addr(),
        "/x",
        &[("x-probe", "call,on-response-echo")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), "cluster says hi");
    assert_eq!(answer.header("x-probe-call"), Some("1"));
    let seen = seen_rx.recv().await.unwrap();
    assert_eq!(seen, "POST /check Some(\"auth.local\")");
    assert_eq!(
        gateway.counters().calls_delivered.load(Ordering::Relaxed),
        1
    );
    gateway.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_resumed_after_a_cluster_call_goes_upstream() {
    let (cluster, server) = spawn_server(|_req| async { text_response(200, "ok") }).await;
    let logs = Logs::default();
    let gateway = probe_with_cluster(&logs, cluster).await;
    let answer = get(gateway.local_addr(), "/after", &[("x-probe", "call")]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    // Added by the plugin while paused, then resumed to the echo upstream.
    assert_eq!(answer.echoed("x-probe-auth"), ["ok"]);
    assert_eq!(answer.json()["path"], "/after");
    gateway.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_timeout_is_delivered_as_504() {
    let (cluster, server) = spawn_server(|_req| async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        text_response(200, "too late")
    })
    .await;
    let logs = Logs::default();
    let gateway = probe_with_cluster(&logs, cluster).await;
    let started = Instant::now();
    let answer = get(
        gateway.local_addr(),
        "/t",
        &[("x-probe", "call,on-response-echo")],
    )
    .await;
    assert_eq!(answer.status, 504, "{}", answer.text());
    assert_eq!(answer.text(), "upstream request timeout");
    // The probe's call timeout is 1000 ms.
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(4), "{elapsed:?}");
    gateway.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_cluster_port_is_delivered_as_503_connect_failure() {
    let logs = Logs::default();
    let gateway = probe_with_cluster(&logs, closed_port()).await;
    let answer = get(
        gateway.local_addr(),
        "/c",
        &[("x-probe", "call,on-response-echo")],
    )
    .await;
    assert_eq!(answer.status, 503, "{}", answer.text());
    assert_eq!(
        answer.text(),
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure"
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_after_headers_is_delivered_as_a_failed_call() {
    // Promises 100 bytes, sends 3, closes.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let cluster = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nabc")
                .await;
        }
    });
    let logs = Logs::default();
    let gateway = probe_with_cluster(&logs, cluster).await;
    let answer = get(
        gateway.local_addr(),
        "/r",
        &[("x-probe", "call,on-response-echo")],
    )
    .await;
    // No `:status` on the failure path: the probe answers 502.
    assert_eq!(answer.status, 502, "{}", answer.text());
    assert_eq!(
        logs.count("headers=0 body=0 trailers=0"),
        1,
        "{:?}",
        logs.lines()
    );
    assert_eq!(logs.count("call_status code=11"), 1, "{:?}", logs.lines());
    gateway.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_disconnect_while_paused_ends_the_stream_and_the_late_answer_is_harmless() {
    let (hit_tx, mut hit_rx) = mpsc::unbounded_channel::<()>();
    let release = Arc::new(tokio::sync::Notify::new());
    let release_server = release.clone();
    let (cluster, server) = spawn_server(move |_req| {
        let _ = hit_tx.send(());
        let release = release_server.clone();
        async move {
            let _ = tokio::time::timeout(WAIT, release.notified()).await;
            text_response(200, "late")
        }
    })
    .await;
    let logs = Logs::default();
    let gateway = probe_with_cluster(&logs, cluster).await;
    let counters = gateway.counters();

    let mut client = TcpStream::connect(gateway.local_addr()).await.unwrap();
    let request = raw_request("GET", "/gone", &[("x-probe", "call")], "");
    client.write_all(request.as_bytes()).await.unwrap();
    tokio::time::timeout(WAIT, hit_rx.recv()).await.unwrap();
    drop(client);

    eventually("stream ended by the disconnect", || {
        counters.streams_ended.load(Ordering::Relaxed) == 1
    })
    .await;
    assert_eq!(counters.streams_open.load(Ordering::Relaxed), 0);
    assert_eq!(counters.calls_delivered.load(Ordering::Relaxed), 0);
    assert_eq!(logs.count("done ctx=2"), 1, "{:?}", logs.lines());

    release.notify_one();
    eventually("late answer delivered", || {
        counters.calls_delivered.load(Ordering::Relaxed) == 1
    })
    .await;
    let answer = get(gateway.local_addr(), "/next", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.json()["path"], "/next");
    gateway.shutdown().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_serves_plugin_stats_and_readiness() {
    let logs = Logs::default();
    let gateway = start("probe_plugin", "{}", &logs, |cfg| {
        cfg.admin = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    for _ in 0..3 {
        let answer = get(gateway.local_addr(), "/", &[("x-probe", "count")]).await;
        assert_eq!(answer.status, 200);
    }
    assert_eq!(gateway.env().metrics.get("probe_requests"), Some(3));
    let admin = gateway.admin_addr().unwrap();
    let stats = get(admin, "/stats", &[]).await;
    assert_eq!(stats.status, 200);
    assert!(
        stats.text().lines().any(|l| l == "probe_requests: 3"),
        "{}",
        stats.text()
    );
    assert_eq!(get(admin, "/ready", &[]).await.status, 200);
    assert_eq!(get(admin, "/nope", &[]).await.status, 404);
    // The data port does not serve stats: it goes to the upstream like any path.
    let data = get(gateway.local_addr(), "/stats", &[]).await;
    assert_eq!(data.json()["path"], "/stats");
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_replies_and_a_failed_vm_are_answered() {
    let logs = Logs::default();
    let gateway = start("probe_plugin", "{}", &logs, |cfg| cfg.workers = 1).await;
    let addr = gateway.local_addr();
    let reply = get(addr, "/", &[("x-probe", "reply")]).await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.text(), "denied");
    assert_eq!(reply.header("x-reply"), Some("1"));
    let trapped = get(addr, "/", &[("x-probe", "panic")]).await;
    assert_eq!(trapped.status, 503, "{}", trapped.text());
    // Fail closed: the worker's VM stays failed.
    assert_eq!(get(addr, "/", &[]).await.status, 503);
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_configuration_fails_start_with_the_vm_logs() {
    let mut cfg = GatewayConfig::new(wasm("probe_plugin"), "fail_configure");
    cfg.compiled = Some(compiled("probe_plugin"));
    cfg.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let error = match Gateway::start(cfg).await {
        Ok(_) => panic!("a rejected configuration must not start"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("on_configure returned false"), "{error}");
    assert!(error.contains("canary"), "{error}");
    assert!(error.contains("probe: configure"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_stops_accepting() {
    let logs = Logs::default();
    let gateway = start("noop_plugin", "", &logs, |_| {}).await;
    let addr = gateway.local_addr();
    assert_eq!(get(addr, "/", &[]).await.status, 200);
    tokio::time::timeout(WAIT, gateway.shutdown())
        .await
        .unwrap();
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_carry_the_configured_route_and_cluster_names() {
    let logs = Logs::default();
    let gateway = start("probe_plugin", "{}", &logs, |cfg| {
        cfg.route_name = Some("api-route".to_string());
        cfg.cluster_name = Some("outbound|80||backend.dns".to_string());
    })
    .await;
    let answer = get(gateway.local_addr(), "/p", &[("x-probe", "props")]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(logs.count("prop route_name=Some(\"api-route\")"), 1);
    assert_eq!(
        logs.count("prop cluster_name=Some(\"outbound|80||backend.dns\")"),
        1,
        "{:?}",
        logs.lines()
    );
    gateway.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_worker_vm_runs_its_own_timer() {
    let logs = Logs::default();
    let gateway = start("probe_plugin", "tick_ms=20", &logs, |cfg| cfg.workers = 2).await;
    eventually("ticks on both workers", || {
        logs.count_on(0, "probe: tick") >= 2 && logs.count_on(1, "probe: tick") >= 2
    })
    .await;
    assert_eq!(logs.count_on(CANARY_WORKER, "probe: tick"), 0);
    // One configure per VM: the canary and each worker (host-semantics §1).
    assert_eq!(logs.count("probe: configure"), 3);
    gateway.shutdown().await;
}
