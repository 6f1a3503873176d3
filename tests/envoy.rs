//! The real `plugin.wasm` in real Envoy (every binary of `ENVOY_BINS`, by default the pinned
//! 1.40.0 and 1.36.2 from `make envoy`): the scenario table, then what only a real gateway shows
//! (cache over real time, coalescing, two workers, startup refusal, large bodies, keep-alive).

mod common;

use common::scenarios::{
    base_config, check, check_effects, mock_calls, request_of, token_of, Observed, Scenario, Site,
    CLOSED_CLUSTER, ECHO_CLUSTER, MOCK_CLUSTER, OUTCOMES, ROUTES, SECRET, SERVICE_CLUSTER,
    TOKEN_CLUSTER,
};
use easy_jwt_testbed::envoy::{self, Bootstrap, Envoy, EnvoyBin, Listener, Opts};
use easy_jwt_testbed::http::{self, Conn, Request, Response};
use easy_jwt_testbed::mock::MockTokenServer;
use easy_jwt_testbed::token_server::{self, BackgroundServer, Config as TokenConfig};
use easy_jwt_testbed::{plugin_wasm, EchoServer};
use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

/// The servers around Envoy.
struct Backends {
    mock: MockTokenServer,
    echo: EchoServer,
    tokens: BackgroundServer,
    closed: SocketAddr,
}

impl Backends {
    fn start() -> Backends {
        let tokens = BackgroundServer::start(TokenConfig {
            secret: SECRET.into(),
            ttl: Duration::from_secs(3600),
            deny_path_prefix: None,
        })
        .expect("reference token server starts");
        Backends {
            mock: MockTokenServer::start(),
            echo: EchoServer::start("127.0.0.1:0").expect("echo server starts"),
            tokens,
            closed: closed_port(),
        }
    }

    /// Every cluster the sites and routes name (not `MISSING_CLUSTER`).
    fn bootstrap(&self) -> Bootstrap {
        Bootstrap::new()
            .cluster(ECHO_CLUSTER, self.echo.addr())
            .cluster(SERVICE_CLUSTER, self.echo.addr())
            .cluster(MOCK_CLUSTER, self.mock.addr())
            .cluster(TOKEN_CLUSTER, self.tokens.addr())
            .cluster(CLOSED_CLUSTER, self.closed)
    }
}

/// A port nothing listens on.
fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A listener for `site`: the plugin with the site's configuration in front of [`ROUTES`].
fn listener(name: &str, config: &Value) -> Listener {
    ROUTES.iter().fold(
        Listener::new(name).wasm(plugin_wasm(), &config.to_string()),
        |listener, route| listener.route(route.name, route.prefix, route.cluster),
    )
}

fn start(bin: &EnvoyBin, bootstrap: Bootstrap, concurrency: u32) -> Envoy {
    Envoy::start(
        bin,
        &bootstrap,
        Opts {
            concurrency,
            ..Opts::default()
        },
    )
    .unwrap_or_else(|e| panic!("Envoy {} did not start: {e}", bin.version))
}

/// What Envoy did with a request: the echo upstream's picture of it, or a local reply.
fn observe(response: &Response) -> Observed {
    let echoed = (response.status == 200)
        .then(|| serde_json::from_slice::<Value>(&response.body).ok())
        .flatten()
        .filter(|body| body["headers"].is_array() && body["path"].is_string());
    match echoed {
        Some(body) => Observed::Upstream {
            path: body["path"].as_str().unwrap().to_string(),
            headers: body["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|pair| {
                    (
                        pair[0].as_str().unwrap().to_string(),
                        pair[1].as_str().unwrap().to_string(),
                    )
                })
                .collect(),
        },
        None => Observed::Reply {
            status: response.status,
            content_type: response.header("content-type").map(str::to_string),
            body: response.body.clone(),
        },
    }
}

fn counter(envoy: &Envoy, name: &str) -> i64 {
    envoy
        .stat(&format!("wasmcustom.easy_jwt.{name}"))
        .unwrap_or(0)
}

/// The plugin hands its counts to Envoy on its root's tick, at most 100 ms after they happen
/// (`proxy::counters::FLUSH_MS`): how long a test waits for a count before giving up, and how
/// long it watches for a count that must not come.
const COUNTS_DUE: Duration = Duration::from_secs(3);
const COUNTS_QUIET: Duration = Duration::from_millis(300);

/// Counter `name` once it reads `want` (or, after [`COUNTS_DUE`], whatever it reads).
fn counter_reaching(envoy: &Envoy, name: &str, want: i64) -> i64 {
    let deadline = Instant::now() + COUNTS_DUE;
    loop {
        let value = counter(envoy, name);
        if value == want || Instant::now() >= deadline {
            return value;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Runs one scenario through `envoy`; returns what went wrong.
fn run(envoy: &Envoy, backends: &Backends, scenario: &Scenario) -> Result<(), String> {
    let token = token_of(scenario);
    let (path, headers) = request_of(scenario, token.as_deref());
    let request = headers
        .iter()
        .fold(Request::get(&path), |r, (n, v)| r.header(n, v));
    let counters = || -> Vec<i64> { OUTCOMES.iter().map(|c| counter(envoy, c)).collect() };
    let (before, calls_before) = (
        counters(),
        mock_calls(scenario, token.as_deref(), &backends.mock),
    );
    let response = http::send(envoy.listener_addr(scenario.site), &request);
    check(scenario, &observe(&response))?;
    let calls_after = mock_calls(scenario, token.as_deref(), &backends.mock);
    // Wait for the flushed counts: the expected one, or quiet long enough for a wrong one.
    let sent = Instant::now();
    loop {
        let verdict = check_effects(scenario, (calls_before, calls_after), &before, &counters());
        let settled =
            verdict.is_ok() && (scenario.counter.is_some() || sent.elapsed() >= COUNTS_QUIET);
        if settled || sent.elapsed() >= COUNTS_DUE {
            return verdict;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_scenario_table_holds_in_every_envoy() {
    let sites = common::scenarios::sites();
    for bin in envoy::binaries() {
        let backends = Backends::start();
        let bootstrap = sites.iter().fold(backends.bootstrap(), |b, site: &Site| {
            b.listener(listener(site.name, &site.config))
        });
        let envoy = start(&bin, bootstrap, 1);
        let table = common::scenarios::table();
        let failures: Vec<String> = table
            .iter()
            .filter_map(|scenario| {
                run(&envoy, &backends, scenario)
                    .err()
                    .map(|e| format!("{}: {e}", scenario.name))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "Envoy {}: {} of {} scenarios failed:\n{}\n--- Envoy log (tail)\n{}",
            bin.version,
            failures.len(),
            table.len(),
            failures.join("\n"),
            tail(&envoy.log(), 40)
        );
        eprintln!("Envoy {}: {} scenarios passed", bin.version, table.len());
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn uid_of(response: &Response) -> Vec<String> {
    response.echoed_all("x-auth-user")
}

#[test]
fn the_cache_answers_repeats_expires_and_is_kept_per_token_server() {
    for bin in envoy::binaries() {
        let backends = Backends::start();
        let other = MockTokenServer::start();
        let cached = base_config(json!({"cacheTtlSeconds": 30}));
        let short = base_config(json!({"cacheTtlSeconds": 1}));
        let isolated = base_config(json!({
            "cacheTtlSeconds": 30,
            "tokenServerCluster": "outbound|9092||other-token-server.dns",
        }));
        let jwt = json!({"tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090, "cacheTtlSeconds": 30});
        let envoy = start(
            &bin,
            backends
                .bootstrap()
                .cluster("outbound|9092||other-token-server.dns", other.addr())
                .listener(listener("cached", &cached))
                .listener(listener("short", &short))
                .listener(listener("isolated", &isolated))
                .listener(listener("jwt", &jwt)),
            1,
        );
        let get = |site: &str, token: &str| {
            http::send(
                envoy.listener_addr(site),
                &Request::get("/hello").bearer(token),
            )
        };
        // Hit: one call for three requests.
        for _ in 0..3 {
            assert_eq!(uid_of(&get("cached", "uid-80-cache")), ["80"]);
        }
        assert_eq!(
            backends.mock.calls_for("uid-80-cache"),
            1,
            "{}",
            bin.version
        );
        assert_eq!(counter_reaching(&envoy, "cache_hit", 2), 2);
        // Isolation: the same token through another token server is asked there.
        assert_eq!(uid_of(&get("isolated", "uid-80-cache")), ["80"]);
        assert_eq!(other.calls_for("uid-80-cache"), 1);
        assert_eq!(backends.mock.calls_for("uid-80-cache"), 1);
        // TTL: after cacheTtlSeconds the token server is asked again.
        assert_eq!(uid_of(&get("short", "uid-81-ttl")), ["81"]);
        assert_eq!(uid_of(&get("short", "uid-81-ttl")), ["81"]);
        assert_eq!(backends.mock.calls_for("uid-81-ttl"), 1);
        thread::sleep(Duration::from_millis(2100));
        assert_eq!(uid_of(&get("short", "uid-81-ttl")), ["81"]);
        assert_eq!(backends.mock.calls_for("uid-81-ttl"), 2);
        // JWT exp: a cached answer never outlives the token.
        let exp = token_server::now_unix() + 2;
        let token = token_server::mint(SECRET, 82, exp);
        assert_eq!(uid_of(&get("jwt", &token)), ["82"]);
        assert_eq!(uid_of(&get("jwt", &token)), ["82"]);
        while token_server::now_unix() <= exp {
            thread::sleep(Duration::from_millis(200));
        }
        let expired = get("jwt", &token);
        assert_eq!(expired.status, 401, "{}", expired.text());
        assert_eq!(expired.json()["message"], "token is expired");
    }
}

#[test]
fn concurrent_requests_with_one_new_token_make_one_call() {
    for bin in envoy::binaries() {
        let backends = Backends::start();
        let envoy = start(
            &bin,
            backends
                .bootstrap()
                .listener(listener("main", &base_config(json!({})))),
            1,
        );
        let addr = envoy.listener_addr("main");
        let mut conns: Vec<Conn> = (0..8).map(|_| Conn::open(addr)).collect();
        // Open every connection first so the requests arrive while the first call is in flight.
        for conn in &mut conns {
            let warm = conn.send(&Request::get("/public/warm"));
            assert_eq!(warm.status, 200);
        }
        let handles: Vec<_> = conns
            .into_iter()
            .map(|mut conn| {
                thread::spawn(move || {
                    conn.send(&Request::get("/hello").bearer("slow-400-coalesce"))
                })
            })
            .collect();
        for handle in handles {
            assert_eq!(uid_of(&handle.join().unwrap()), ["7"], "{}", bin.version);
        }
        assert_eq!(
            backends.mock.calls_for("slow-400-coalesce"),
            1,
            "Envoy {}: followers wait for the leader's call",
            bin.version
        );
    }
}

#[test]
fn two_workers_share_the_cache() {
    for bin in envoy::binaries() {
        let backends = Backends::start();
        let shared = base_config(json!({"cacheTtlSeconds": 30}));
        let per_vm = base_config(json!({"cacheTtlSeconds": 30, "cacheSharedSlots": 0}));
        let envoy = start(
            &bin,
            backends
                .bootstrap()
                .listener(listener("shared", &shared))
                .listener(listener("pervm", &per_vm)),
            2,
        );
        // Fresh connections are spread over both workers by the kernel; each worker has its VM.
        for site in ["shared", "pervm"] {
            for _ in 0..16 {
                let response = http::send(
                    envoy.listener_addr(site),
                    &Request::get("/hello")
                        .bearer(&format!("uid-90-{site}"))
                        .header("connection", "close"),
                );
                assert_eq!(uid_of(&response), ["90"]);
            }
        }
        assert_eq!(
            backends.mock.calls_for("uid-90-pervm"),
            2,
            "Envoy {}: with per-VM caches each of the two workers asks once (proves both served)",
            bin.version
        );
        assert_eq!(
            backends.mock.calls_for("uid-90-shared"),
            1,
            "Envoy {}: the second worker finds the first worker's answer in shared data",
            bin.version
        );
    }
}

#[test]
fn a_bad_configuration_stops_envoy_at_startup_naming_the_key() {
    for bin in envoy::binaries() {
        let backends = Backends::start();
        let bad = json!({"tokenServerFQDN": "token-server.dns", "tokenServerPort": 70000});
        let refused = Envoy::start(
            &bin,
            &backends.bootstrap().listener(listener("bad", &bad)),
            Opts::default(),
        );
        let error = match refused {
            Ok(_) => panic!("Envoy {} accepted tokenServerPort 70000", bin.version),
            Err(error) => error,
        };
        assert!(
            error
                .log
                .contains("configuration key `tokenServerPort` must be in 1..=65535"),
            "Envoy {}: {error}",
            bin.version
        );
    }
}

#[test]
fn large_bodies_pass_both_ways() {
    const SIZE: usize = 8 * 1024 * 1024;
    for bin in envoy::binaries() {
        let backends = Backends::start();
        let envoy = start(
            &bin,
            backends
                .bootstrap()
                .listener(listener("main", &base_config(json!({})))),
            1,
        );
        let mut conn = Conn::open(envoy.listener_addr("main"));
        let upload = conn.send(
            &Request::post("/upload")
                .bearer("uid-95-upload")
                .body(vec![b'u'; SIZE]),
        );
        assert_eq!(uid_of(&upload), ["95"], "{}", bin.version);
        assert_eq!(upload.json()["body_bytes"], SIZE);
        let download = conn.send(
            &Request::get("/download")
                .bearer("uid-95-upload")
                .header("x-echo-bytes", &SIZE.to_string()),
        );
        assert_eq!(download.status, 200);
        assert_eq!(download.body.len(), SIZE, "{}", bin.version);
    }
}

#[test]
fn one_keep_alive_connection_carries_requests_with_different_tokens() {
    for bin in envoy::binaries() {
        let backends = Backends::start();
        let envoy = start(
            &bin,
            backends.bootstrap().listener(listener(
                "main",
                &base_config(json!({"cacheTtlSeconds": 30})),
            )),
            1,
        );
        let mut conn = Conn::open(envoy.listener_addr("main"));
        let mut send = |token: Option<&str>| {
            let request = Request::get("/hello");
            conn.send(&match token {
                Some(token) => request.bearer(token),
                None => request,
            })
        };
        assert_eq!(uid_of(&send(Some("uid-61-ka"))), ["61"]);
        assert_eq!(send(Some("deny-ka")).status, 401);
        assert_eq!(uid_of(&send(Some("uid-62-ka"))), ["62"]);
        assert_eq!(send(None).status, 401);
        assert_eq!(uid_of(&send(Some("uid-61-ka"))), ["61"], "a cached uid");
        assert_eq!(uid_of(&send(Some("AnonymousToken"))), ["0"]);
        assert_eq!(conn.connects(), 1, "Envoy {}: one connection", bin.version);
        // Counters as Envoy prints them (the README's Stats section).
        assert_eq!(counter_reaching(&envoy, "allowed", 3), 3);
        assert!(envoy
            .admin("/stats")
            .text()
            .contains("wasmcustom.easy_jwt.denied: 1"));
        let prometheus = envoy.admin("/stats/prometheus").text();
        assert!(
            prometheus.contains("easy_jwt_allowed{} 3")
                || prometheus.contains("easy_jwt_allowed 3"),
            "Envoy {}: {}",
            bin.version,
            prometheus
                .lines()
                .filter(|l| l.contains("easy_jwt"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

#[test]
fn a_client_gone_while_paused_leaves_the_vm_serving() {
    for bin in envoy::binaries() {
        let backends = Backends::start();
        let envoy = start(
            &bin,
            backends
                .bootstrap()
                .listener(listener("main", &base_config(json!({})))),
            1,
        );
        let addr = envoy.listener_addr("main");
        {
            let mut conn = Conn::open(addr);
            conn.set_timeout(Duration::from_millis(200));
            let _ = conn.try_send(&Request::get("/hello").bearer("slow-500-gone"));
        }
        thread::sleep(Duration::from_millis(700));
        let after = http::send(addr, &Request::get("/hello").bearer("uid-96-after"));
        assert_eq!(uid_of(&after), ["96"], "{}", bin.version);
        assert_eq!(backends.mock.calls_for("slow-500-gone"), 1);
    }
}

#[test]
fn request_context_reaches_the_token_server_and_decides_per_path() {
    const CONTEXT_CLUSTER: &str = "outbound|9093||token-server-ctx.dns";
    for bin in envoy::binaries() {
        let backends = Backends::start();
        let per_path = BackgroundServer::start(TokenConfig {
            secret: SECRET.into(),
            ttl: Duration::from_secs(3600),
            deny_path_prefix: Some("/admin".into()),
        })
        .expect("token server starts");
        let forwarding = json!({"forwardRequestContext": true, "forwardHeaders": ["X-Tenant"]});
        let mut reference = forwarding.clone();
        reference["tokenServerFQDN"] = json!("token-server-ctx.dns");
        reference["tokenServerPort"] = json!(9093);
        reference["cacheTtlSeconds"] = json!(30);
        let envoy = start(
            &bin,
            backends
                .bootstrap()
                .cluster(CONTEXT_CLUSTER, per_path.addr())
                .listener(listener("plain", &base_config(json!({}))))
                .listener(listener("mock", &base_config(forwarding)))
                .listener(listener("reference", &reference)),
            1,
        );
        let request = |path: &str, token: &str| {
            Request::get(path)
                .bearer(token)
                .header("x-tenant", "acme")
                .header("cookie", "session=s; theme=dark")
        };
        // What the token server receives.
        http::send(
            envoy.listener_addr("plain"),
            &request("/orders?id=1", "uid-70-plain"),
        );
        http::send(
            envoy.listener_addr("mock"),
            &request("/orders?id=1", "uid-71-ctx"),
        );
        let calls = backends.mock.requests();
        let call = |token: &str| {
            calls
                .iter()
                .find(|c| c.token().as_deref() == Some(token))
                .unwrap_or_else(|| panic!("no call for {token}: {calls:?}"))
                .clone()
        };
        let plain = call("uid-70-plain");
        for name in [
            "x-original-method",
            "x-original-uri",
            "x-forwarded-host",
            "x-tenant",
        ] {
            assert_eq!(plain.header(name), None, "off by default: {name}");
        }
        let forwarded = call("uid-71-ctx");
        assert_eq!(forwarded.header("x-original-method"), Some("GET"));
        assert_eq!(forwarded.header("x-original-uri"), Some("/orders?id=1"));
        assert_eq!(forwarded.header("x-forwarded-host"), Some("testbed"));
        assert_eq!(forwarded.header("x-tenant"), Some("acme"));
        assert_eq!(forwarded.header("cookie"), None, "cookies only if listed");
        assert_eq!(
            forwarded.header("authorization"),
            None,
            "the token travels in the body"
        );
        // A per-path decision, never short-circuited by the cache.
        let token = token_server::mint(SECRET, 72, token_server::now_unix() + 3600);
        let addr = envoy.listener_addr("reference");
        assert_eq!(
            uid_of(&http::send(addr, &request("/hello", &token))),
            ["72"]
        );
        let denied = http::send(addr, &request("/admin/users", &token));
        assert_eq!(
            denied.status,
            401,
            "Envoy {}: {}",
            bin.version,
            denied.text()
        );
        assert_eq!(denied.json()["message"], "path denied");
        assert_eq!(
            uid_of(&http::send(addr, &request("/hello", &token))),
            ["72"]
        );
        assert_eq!(
            counter_reaching(&envoy, "cache_hit", 1),
            1,
            "only the repeated /hello is a hit"
        );
    }
}
