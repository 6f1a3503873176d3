//! The testbed against a real Envoy (the newest of `envoy::binaries()`, 1.40.0 by default): the
//! bootstrap builder, the process harness, the HTTP client, the echo upstream and, when
//! `plugin.wasm` is built, the plugin itself behind a listener.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use easy_jwt_testbed::envoy::{binaries, newest, Bootstrap, Envoy, Listener, Opts};
use easy_jwt_testbed::http::{Conn, Request};
use easy_jwt_testbed::mock::MockTokenServer;
use easy_jwt_testbed::{plugin_wasm, workspace_root, EchoServer};

fn start(bootstrap: &Bootstrap) -> Envoy {
    Envoy::start(&newest(), bootstrap, Opts::default()).unwrap()
}

#[test]
fn direct_response_twice_on_one_keep_alive_connection() {
    let envoy = start(
        &Bootstrap::new().listener(Listener::new("direct").direct_response(
            "hello",
            "/",
            200,
            "hello from envoy",
        )),
    );
    let mut conn = Conn::open(envoy.listener_addr("direct"));
    let local = conn.local_addr();
    for _ in 0..2 {
        let resp = conn.send(&Request::get("/anything"));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), "hello from envoy");
    }
    assert_eq!(conn.connects(), 1);
    assert_eq!(conn.local_addr(), local);
    assert!(envoy.pid() > 0);
    assert_eq!(envoy.stat("http.direct.downstream_rq_2xx"), Some(2));
    assert_eq!(envoy.stat("http.direct.downstream_cx_total"), Some(1));
}

#[test]
fn every_configured_binary_starts() {
    for bin in binaries() {
        assert!(
            bin.version.starts_with("1."),
            "{bin}: unexpected version {}",
            bin.version
        );
        let envoy = Envoy::start(
            &bin,
            &Bootstrap::new().listener(Listener::new("l").direct_response("d", "/", 204, "")),
            Opts::default(),
        )
        .unwrap_or_else(|e| panic!("{bin}: {e}"));
        let resp = Conn::open(envoy.listener_addr("l")).send(&Request::get("/"));
        assert_eq!(resp.status, 204, "{bin}");
        let info = envoy.admin("/server_info").json();
        let version = info["version"].as_str().unwrap_or_default();
        assert!(
            version.contains(&bin.version),
            "{bin}: /server_info says {version}"
        );
    }
}

#[test]
fn routes_to_the_echo_server_with_the_request_headers() {
    let echo = EchoServer::start("127.0.0.1:0").unwrap();
    let envoy = start(
        &Bootstrap::new()
            .cluster("echo", echo.addr())
            .listener(Listener::new("main").route("all", "/", "echo")),
    );
    let mut conn = Conn::open(envoy.listener_addr("main"));
    let resp = conn.send(
        &Request::get("/a?b=1")
            .header("x-n", "1")
            .header("x-n", "2")
            .header("x-other", "v"),
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("application/json"));
    let v = resp.json();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/a?b=1");
    assert_eq!(resp.echoed_all("x-n"), ["1", "2"]);
    assert_eq!(resp.echoed("x-other").as_deref(), Some("v"));
    assert_eq!(resp.echoed("host").as_deref(), Some("testbed"));
    // Envoy adds its own request headers upstream.
    assert!(resp.echoed("x-request-id").is_some());
    assert_eq!(v["body_bytes"], 0);

    // An 8 MiB body streams through, and a 20 MB answer comes back, on the same connection.
    let resp = conn.send(&Request::post("/upload").body(vec![b'z'; 8 << 20]));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["body_bytes"], 8 << 20);
    let resp = conn.send(&Request::get("/big").header("x-echo-bytes", "20000000"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), 20_000_000);
    assert_eq!(conn.connects(), 1);
}

#[test]
fn a_bad_configuration_is_a_start_error_with_the_log() {
    let missing = workspace_root().join("target/testbed/does-not-exist.wasm");
    let err = Envoy::start(
        &newest(),
        &Bootstrap::new().listener(
            Listener::new("l")
                .wasm(&missing, "{}")
                .direct_response("d", "/", 200, ""),
        ),
        Opts::default(),
    )
    .err()
    .expect("Envoy must refuse a Wasm filter whose code file does not exist");
    assert!(
        err.status.is_some_and(|s| !s.success()),
        "exit status: {:?}",
        err.status
    );
    assert!(err.log.contains("does-not-exist.wasm"), "{err}");
    if std::env::var_os("SHOW_START_ERROR").is_some() {
        eprintln!("{err}");
    }
}

#[test]
fn listener_addresses_of_two_listeners() {
    let envoy = start(
        &Bootstrap::new()
            .listener(Listener::new("one").direct_response("d1", "/", 200, "one"))
            .listener(Listener::new("two").direct_response("d2", "/", 200, "two")),
    );
    let one = envoy.listener_addr("one");
    let two = envoy.listener_addr("two");
    assert_ne!(one, two);
    assert!(one.ip().is_loopback() && one.port() != 0);
    assert_eq!(envoy.listener_addrs().len(), 2);
    assert_eq!(
        easy_jwt_testbed::http::send(one, &Request::get("/")).text(),
        "one"
    );
    assert_eq!(
        easy_jwt_testbed::http::send(two, &Request::get("/")).text(),
        "two"
    );
}

#[test]
fn virtual_hosts_and_route_order() {
    let envoy = start(
        &Bootstrap::new().listener(
            Listener::new("vh")
                .virtual_host("api", &["api.example", "api.example:*"])
                .direct_response("api-admin", "/admin", 403, "api admin")
                .direct_response("api-all", "/", 200, "api")
                .virtual_host("fallback", &["*"])
                .direct_response("other", "/", 200, "other"),
        ),
    );
    let addr = envoy.listener_addr("vh");
    let mut conn = Conn::open(addr);
    let r = conn.send(&Request::get("/admin/x").header("host", "api.example"));
    assert_eq!((r.status, r.text().as_str()), (403, "api admin"));
    let r = conn.send(&Request::get("/x").header("host", "api.example"));
    assert_eq!((r.status, r.text().as_str()), (200, "api"));
    let r = conn.send(&Request::get("/admin").header("host", "www.example"));
    assert_eq!((r.status, r.text().as_str()), (200, "other"));
}

#[test]
fn lua_filter_runs_before_the_router() {
    let echo = EchoServer::start("127.0.0.1:0").unwrap();
    let envoy = start(
        &Bootstrap::new().cluster("echo", echo.addr()).listener(
            Listener::new("lua")
                .lua(
                    r#"function envoy_on_request(h)
                         h:headers():add("x-from-lua", "yes")
                       end"#,
                )
                .route("all", "/", "echo"),
        ),
    );
    let resp = Conn::open(envoy.listener_addr("lua")).send(&Request::get("/"));
    assert_eq!(resp.echoed("x-from-lua").as_deref(), Some("yes"));
}

#[test]
fn several_envoys_run_in_parallel() {
    let bootstrap =
        Bootstrap::new().listener(Listener::new("p").direct_response("d", "/", 200, "p"));
    let envoys: Vec<Envoy> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..3).map(|_| s.spawn(|| start(&bootstrap))).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut pids: Vec<u32> = envoys.iter().map(Envoy::pid).collect();
    pids.dedup();
    assert_eq!(pids.len(), 3);
    for e in &envoys {
        assert_eq!(
            easy_jwt_testbed::http::send(e.listener_addr("p"), &Request::get("/")).status,
            200
        );
    }
}

#[test]
fn the_mock_token_server_answers_every_kind() {
    let mock = MockTokenServer::start();
    let mut conn = Conn::open(mock.addr());
    let call = |conn: &mut Conn, token: &str| {
        conn.send(
            &Request::post("/api/token/auth")
                .header("content-type", "application/json")
                .body(serde_json::json!({ "token": token }).to_string()),
        )
    };
    let expect = |conn: &mut Conn, token: &str, status: u16, body: &str| {
        let r = call(conn, token);
        assert_eq!(
            (r.status, r.text().as_str()),
            (status, body),
            "token {token}"
        );
    };
    expect(&mut conn, "uid-42", 200, r#"{"uid":42}"#);
    expect(&mut conn, "uid-7-extra", 200, r#"{"uid":7}"#);
    expect(&mut conn, "uid--3", 200, r#"{"uid":-3}"#);
    expect(&mut conn, "uidstr-9-x", 200, r#"{"uid":"9"}"#);
    expect(&mut conn, "deny-1", 401, r#"{"message":"mock denied"}"#);
    expect(&mut conn, "forbid", 403, r#"{"message":"mock forbidden"}"#);
    expect(&mut conn, "e500", 500, r#"{"message":"mock exploded"}"#);
    expect(&mut conn, "e502-x", 502, "");
    expect(&mut conn, "garbage", 200, "this is not json");
    expect(&mut conn, "nouid", 200, r#"{"name":"x"}"#);
    expect(
        &mut conn,
        "whatever",
        401,
        r#"{"message":"unknown mock token"}"#,
    );
    let big = call(&mut conn, "big");
    assert_eq!(big.status, 200);
    assert_eq!(big.body.len(), 100 * 1024);
    assert_eq!(big.json()["uid"], 1);
    let t0 = std::time::Instant::now();
    expect(&mut conn, "slow-300-a", 200, r#"{"uid":7}"#);
    assert!(t0.elapsed() >= std::time::Duration::from_millis(300));
    // All of the above on one keep-alive connection.
    assert_eq!(conn.connects(), 1);

    let reset = conn.try_send(&Request::post("/api/token/auth").body(r#"{"token":"reset-me"}"#));
    let err = reset.expect_err("reset must be a connection error");
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::UnexpectedEof
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("POST /api/token/auth"), "{err}");
    assert!(!conn.is_open());

    conn.set_timeout(std::time::Duration::from_millis(300));
    let hang = conn.try_send(&Request::post("/api/token/auth").body(r#"{"token":"hang"}"#));
    assert_eq!(
        hang.expect_err("hang never answers").kind(),
        std::io::ErrorKind::TimedOut
    );

    assert_eq!(mock.calls(), 15);
    assert_eq!(mock.calls_for("uid-42"), 1);
    assert_eq!(mock.calls_for("reset-me"), 1);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 15);
    assert_eq!(reqs[0].method, "POST");
    assert_eq!(reqs[0].path, "/api/token/auth");
    assert_eq!(reqs[0].header("content-type"), Some("application/json"));
    assert_eq!(reqs[0].token().as_deref(), Some("uid-42"));
    mock.reset_counts();
    assert_eq!(mock.calls(), 0);
    assert_eq!(mock.calls_for("uid-42"), 0);
    assert!(mock.requests().is_empty());
}

/// Waits (checking every minute, up to 30 minutes) for `make build` running elsewhere to
/// produce `plugin.wasm`.
fn wait_for_plugin() -> std::path::PathBuf {
    let path = workspace_root().join("plugin.wasm");
    for _ in 0..30 {
        if path.is_file() {
            break;
        }
        eprintln!("waiting for {} (make build)…", path.display());
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
    plugin_wasm()
}

#[test]
fn the_plugin_behind_a_listener() {
    let plugin = wait_for_plugin();
    let mock = MockTokenServer::start();
    let echo = EchoServer::start("127.0.0.1:0").unwrap();
    let envoy = start(
        &Bootstrap::new()
            .cluster("mock", mock.addr())
            .cluster("echo", echo.addr())
            .listener(
                Listener::new("gw")
                    .wasm(
                        &plugin,
                        r#"{"tokenServerCluster":"mock","ignoreUrls":["/public/*"]}"#,
                    )
                    .route("all", "/", "echo"),
            ),
    );
    let mut conn = Conn::open(envoy.listener_addr("gw"));

    let r = conn.send(&Request::get("/public/x"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.echoed("x-auth-user").as_deref(), Some("0"));

    let r = conn.send(&Request::get("/private"));
    assert_eq!(r.status, 401, "{}", r.text());

    let r = conn.send(&Request::get("/private").bearer("uid-42"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains(r#"["x-auth-user","42"]"#), "{}", r.text());

    let r = conn.send(&Request::get("/private").bearer("deny"));
    assert_eq!(r.status, 401, "{}", r.text());

    // An 8 MiB body waits (flow-controlled) while the plugin asks the token server, then streams.
    let r = conn.send(
        &Request::post("/upload")
            .bearer("uid-43")
            .body(vec![b'b'; 8 << 20]),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["body_bytes"], 8 << 20);
    assert_eq!(r.echoed("x-auth-user").as_deref(), Some("43"));

    // Refused before the body: the 401 is still read although Envoy stops reading the upload.
    for _ in 0..3 {
        let r = Conn::open(envoy.listener_addr("gw"))
            .send(&Request::post("/upload").body(vec![b'n'; 8 << 20]));
        assert_eq!(r.status, 401, "{}", r.text());
    }

    assert_eq!(mock.calls_for("uid-42"), 1);
    assert_eq!(mock.calls_for("deny"), 1);
    // The plugin hands its counts to Envoy on a 100 ms timer: wait until the last one is there.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut stats = envoy.stats();
    while stats.get("wasmcustom.easy_jwt.token_missing") != Some(&4)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(20));
        stats = envoy.stats();
    }
    assert_eq!(
        stats.get("wasmcustom.easy_jwt.allowed"),
        Some(&2),
        "{stats:?}"
    );
    assert_eq!(stats.get("wasmcustom.easy_jwt.ignored"), Some(&1));
    assert_eq!(stats.get("wasmcustom.easy_jwt.denied"), Some(&1));
    assert_eq!(stats.get("wasmcustom.easy_jwt.token_missing"), Some(&4));
}

#[test]
fn a_rejected_plugin_configuration_names_the_key() {
    let plugin = wait_for_plugin();
    let err = Envoy::start(
        &newest(),
        &Bootstrap::new().listener(
            Listener::new("l")
                .wasm(
                    &plugin,
                    r#"{"tokenServerCluster":"mock","cacheTtlSeconds":-1}"#,
                )
                .direct_response("d", "/", 200, ""),
        ),
        Opts::default(),
    )
    .err()
    .expect("Envoy must refuse to start with a bad plugin configuration");
    assert!(err.log.contains("cacheTtlSeconds"), "{err}");
    assert!(
        err.log.contains("Unable to create Wasm plugin easy-jwt"),
        "{err}"
    );
}
