//! The real artifact behind real sockets: the host's gateway (one VM per worker) in front of the
//! built-in echo upstream, calling the real token server. The same path `make dev` serves.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

mod common;

use common::*;
use easy_jwt_host::gateway::{Gateway as Host, GatewayConfig};
use easy_jwt_host::vm::LogLevel;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct Running {
    gateway: Option<Host>,
    runtime: tokio::runtime::Runtime,
}

impl Running {
    fn start(plugin_config: Vec<u8>, token_server: SocketAddr, workers: usize) -> Running {
        Running::start_with(plugin_config, token_server, workers, |_| {})
    }

    /// Like `start`, with a last say on the gateway configuration.
    fn start_with(
        plugin_config: Vec<u8>,
        token_server: SocketAddr,
        workers: usize,
        adjust: impl FnOnce(&mut GatewayConfig),
    ) -> Running {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut cfg = GatewayConfig::new(plugin_path(), plugin_config);
        cfg.compiled = Some(plugin().clone());
        cfg.clusters.insert(CLUSTER.to_string(), token_server);
        cfg.workers = workers;
        cfg.admin = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
        adjust(&mut cfg);
        let gateway = runtime.block_on(Host::start(cfg)).expect("gateway starts");
        Running {
            gateway: Some(gateway),
            runtime,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.gateway.as_ref().unwrap().local_addr()
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> (u16, Value) {
        let (status, _, body) = http(self.addr(), "GET", path, headers, b"");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    fn stats(&self) -> String {
        let admin = self.gateway.as_ref().unwrap().admin_addr().unwrap();
        let (status, _, body) = http(admin, "GET", "/stats", &[], b"");
        assert_eq!(status, 200);
        String::from_utf8(body).unwrap()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(gateway) = self.gateway.take() {
            self.runtime.block_on(gateway.shutdown());
        }
    }
}

/// Values of a header in the echo upstream's view of the request.
fn echoed(body: &Value, name: &str) -> Vec<String> {
    body["headers"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().unwrap_or_default().to_string())
        .collect()
}

#[test]
fn it_authenticates_through_real_sockets() {
    let server = TokenServer::start();
    let token = server.create(100);
    let gw = Running::start(config(json!({})), server.addr(), 2);

    let (status, body) = gw.get("/hello", &[("x-auth-user", "1")]);
    assert_eq!((status, body), (401, json!({"message": "missing token"})));

    let bearer = format!("Bearer {token}");
    let (status, body) = gw.get(
        "/hello",
        &[("authorization", &bearer), ("x-auth-user", "1")],
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["path"], "/hello");
    assert_eq!(echoed(&body, "x-auth-user"), vec!["100".to_string()]);

    let (status, body) = gw.get("/public/a", &[]);
    assert_eq!(
        (status, echoed(&body, "x-auth-user")),
        (200, vec!["0".to_string()])
    );

    let forged = format!("Bearer {}", forged_token(100));
    let (status, body) = gw.get("/hello", &[("authorization", &forged)]);
    assert_eq!(
        (status, body),
        (401, json!({"message": "token signature is invalid"}))
    );
}

#[test]
fn it_serves_many_concurrent_clients_with_their_own_uids() {
    let server = TokenServer::start();
    let gw = Running::start(config(json!({"cacheTtlSeconds": 0})), server.addr(), 2);
    let expires = token_server::now_unix() + 600;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..64)
            .map(|n| {
                let gw = &gw;
                scope.spawn(move || {
                    let token = token_server::mint(SECRET, 500 + n, expires);
                    let (status, body) =
                        gw.get("/api", &[("authorization", &format!("Bearer {token}"))]);
                    (status, echoed(&body, "x-auth-user"), 500 + n)
                })
            })
            .collect();
        for handle in handles {
            let (status, uids, expected) = handle.join().unwrap();
            assert_eq!((status, uids), (200, vec![expected.to_string()]));
        }
    });
}

#[test]
fn it_fails_closed_on_a_real_timeout_and_a_closed_port() {
    let hang = FakeServer::start(Behaviour::Hang);
    let gw = Running::start(config(json!({"tokenServerTimeoutMs": 200})), hang.addr(), 1);
    let (status, body) = gw.get("/api", &[("authorization", "Bearer t")]);
    assert_eq!(
        (status, body),
        (401, json!({"message": "token server timeout"}))
    );

    let gw = Running::start(config(json!({})), closed_port(), 1);
    let (status, body) = gw.get("/api", &[("authorization", "Bearer t")]);
    assert_eq!(
        (status, body),
        (401, json!({"message": "token server unavailable"}))
    );
}

#[test]
fn it_survives_a_client_that_leaves_while_paused() {
    let hang_then_answer = FakeServer::start(Behaviour::Hang);
    let gw = Running::start(
        config(json!({"tokenServerTimeoutMs": 300})),
        hang_then_answer.addr(),
        1,
    );
    {
        let mut stream = std::net::TcpStream::connect(gw.addr()).unwrap();
        use std::io::Write;
        stream
            .write_all(b"GET /api HTTP/1.1\r\nhost: x\r\nauthorization: Bearer t\r\n\r\n")
            .unwrap();
        std::thread::sleep(Duration::from_millis(50));
    } // dropped while the plugin waits for the token server
    std::thread::sleep(Duration::from_millis(400)); // the call times out and is delivered late
    let (status, body) = gw.get("/healthz", &[]);
    assert_eq!(status, 200, "the VM keeps serving: {body}");
}

#[test]
fn it_exposes_counters_after_a_known_traffic_mix() {
    let server = TokenServer::start();
    let token = server.create(1);
    let gw = Running::start(config(json!({})), server.addr(), 2);
    let bearer = format!("Bearer {token}");
    let mix: &[(&str, &[(&str, &str)])] = &[
        ("/healthz", &[]),
        ("/public/x", &[]),
        ("/api", &[]),
        ("/api", &[("authorization", "Basic x")]),
        ("/api", &[("authorization", "Bearer AnonymousToken")]),
        ("/api", &[("authorization", &bearer)]),
        ("/api", &[("authorization", &bearer)]),
        ("/api", &[("authorization", "Bearer forged")]),
    ];
    for (path, headers) in mix {
        gw.get(path, headers);
    }
    let stats = gw.stats();
    let value = |name: &str| -> i64 {
        stats
            .lines()
            .find_map(|line| line.strip_prefix(&format!("easy_jwt.{name}: ")))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0)
    };
    assert_eq!(value("ignored"), 2, "{stats}");
    assert_eq!(value("token_missing"), 2, "{stats}");
    assert_eq!(value("anonymous"), 1, "{stats}");
    assert_eq!(value("allowed"), 2, "{stats}");
    assert_eq!(value("denied"), 1, "{stats}");
    assert_eq!(value("token_server_failure"), 0, "{stats}");
    // The second request with the same token is answered by the cache: the local map if it ran
    // on the same worker, the shared slot if not.
    assert_eq!(value("cache_hit"), 1, "{stats}");
}

#[test]
fn it_applies_the_wasm_log_level_of_the_gateway() {
    let server = TokenServer::start();
    let token = server.create(6);
    let bearer = format!("Bearer {token}");
    for (level, expect_debug) in [(LogLevel::Info, false), (LogLevel::Debug, true)] {
        let lines: Arc<Mutex<Vec<(LogLevel, String)>>> = Arc::default();
        let sink = lines.clone();
        let gw = Running::start_with(config(json!({})), server.addr(), 1, move |cfg| {
            cfg.log_level = level;
            cfg.log_sink = Some(Arc::new(move |_, record| {
                sink.lock()
                    .unwrap()
                    .push((record.level, record.message.clone()));
            }));
        });
        let (status, _) = gw.get("/hello", &[("authorization", &bearer)]);
        assert_eq!(status, 200);
        let lines = lines.lock().unwrap();
        let debug = lines
            .iter()
            .any(|(lvl, msg)| *lvl == LogLevel::Debug && msg.contains("checking token"));
        assert_eq!(debug, expect_debug, "level {level:?}: {lines:?}");
        assert!(
            lines.iter().all(|(lvl, _)| *lvl >= level),
            "nothing below {level:?} reaches the log: {lines:?}"
        );
    }
}
