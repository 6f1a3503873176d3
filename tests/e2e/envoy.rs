//! The real `plugin.wasm` in real Envoy (every binary of `ENVOY_BINS`, by default the pinned
//! 1.40.0 and 1.36.2 from `make envoy`): the scenario table, the properties the plugin reads,
//! then what only a real gateway shows (large bodies, keep-alive, a client gone while paused,
//! the request context sent to the token server). A configuration Envoy refuses at startup:
//! `tests/e2e/config.rs`.

use crate::common::scenarios::{
    check, check_effects, mock_calls, request_of, token_of, Observed, Scenario, OUTCOMES,
};
use crate::common::*;
use easy_jwt_testbed::http::{self, Conn, Request, Response};
use easy_jwt_testbed::token_server::{self, Config as TokenConfig};
use serde_json::json;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const CONTEXT_CLUSTER: &str = "outbound|9093||token-server-ctx.dns";

fn worlds() -> &'static [World] {
    static WORLDS: OnceLock<Vec<World>> = OnceLock::new();
    WORLDS.get_or_init(|| start_worlds(sites, Setup::default()))
}

fn sites(backends: &mut Backends) -> Vec<Site> {
    backends.other_token_server(
        CONTEXT_CLUSTER,
        TokenConfig {
            secret: SECRET.into(),
            ttl: Duration::from_secs(3600),
            deny_path_prefix: Some("/admin".into()),
        },
    );
    let mut sites: Vec<Site> = crate::common::scenarios::sites()
        .into_iter()
        .map(|s| site(s.name, s.config))
        .collect();
    let forwarding = json!({"forwardRequestContext": true, "forwardHeaders": ["X-Tenant"]});
    let mut reference = forwarding.clone();
    reference["tokenServerFQDN"] = json!("token-server-ctx.dns");
    reference["tokenServerPort"] = json!(9093);
    reference["cacheTtlSeconds"] = json!(30);
    sites.push(site("ctx-plain", base_config(json!({}))));
    sites.push(site("ctx-mock", base_config(forwarding)));
    sites.push(site("ctx-reference", reference));
    sites.push(site(
        "keepalive",
        base_config(json!({"cacheTtlSeconds": 30})),
    ));
    sites.push(properties_site());
    sites
}

/// What Envoy did with a request: the echo upstream's picture of it, or a local reply.
fn observe(response: &Response) -> Observed {
    if is_upstream(response) {
        let body = response.json();
        return Observed::Upstream {
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
        };
    }
    Observed::Reply {
        status: response.status,
        content_type: response.header("content-type").map(str::to_string),
        body: response.body.clone(),
    }
}

/// Runs one scenario; returns what went wrong.
fn run(world: &World, scenario: &Scenario) -> Result<(), String> {
    let mock = &world.backends.mock;
    let token = token_of(scenario);
    let (path, headers) = request_of(scenario, token.as_deref());
    let request = headers
        .iter()
        .fold(Request::get(&path), |r, (n, v)| r.header(n, v));
    let counters = || world.counters_of(&OUTCOMES);
    let (before, calls_before) = (counters(), mock_calls(scenario, token.as_deref(), mock));
    let response = world.send(scenario.site, &request);
    check(scenario, &observe(&response))?;
    let calls_after = mock_calls(scenario, token.as_deref(), mock);
    // Wait for the flushed counts: the expected one, or quiet long enough for a wrong one.
    let sent = Instant::now();
    loop {
        let verdict = check_effects(scenario, (calls_before, calls_after), &before, &counters());
        let settled =
            verdict.is_ok() && (scenario.counter.is_some() || sent.elapsed() >= COUNTS_QUIET);
        if settled || sent.elapsed() >= COUNTS_DUE {
            return verdict;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_scenario_table_holds_in_every_envoy() {
    each_counting(worlds(), |world| {
        let table = crate::common::scenarios::table();
        let failures: Vec<String> = table
            .iter()
            .filter_map(|scenario| {
                run(world, scenario)
                    .err()
                    .map(|e| format!("{}: {e}", scenario.name))
            })
            .collect();
        assert!(
            failures.is_empty(),
            "{} of {} scenarios failed:\n{}\n--- Envoy log (tail)\n{}",
            failures.len(),
            table.len(),
            failures.join("\n"),
            tail(&world.envoy.log(), 40)
        );
    });
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// `_rules_` on every stream attribute the plugin reads: the route name (`xds.route_name`, for
/// `_match_route_` and `_match_route_prefix_`), the cluster name (`xds.cluster_name`, for
/// `_match_service_`) and `:authority` (`_match_domain_`). Each rule names its own uid header.
fn properties_site() -> Site {
    let rule = |key: &str, value: &str, header: &str| json!({key: [value], "tokenServerCluster": MOCK_CLUSTER, "uidHeaderName": header});
    site(
        "properties",
        json!({
            "cacheTtlSeconds": 0,
            "_rules_": [
                rule("_match_route_", "probe/exact", "x-by-route"),
                rule("_match_route_prefix_", "probe/pre", "x-by-route-prefix"),
                rule("_match_service_", "echo.dns:3000", "x-by-service"),
                rule("_match_domain_", "*.example.org", "x-by-domain"),
            ],
        }),
    )
    .route("probe/exact", "/exact/", ECHO_CLUSTER)
    .route("probe/prefixed", "/prefixed/", ECHO_CLUSTER)
}

#[test]
fn the_route_cluster_and_authority_the_plugin_reads_are_served() {
    each(worlds(), |world| {
        let get = |path: &str, host: &str| {
            world.send(
                "properties",
                &Request::get(path)
                    .header("host", host)
                    .bearer("uid-5-properties"),
            )
        };
        let by = |response: &Response, header: &str| echoed(response, header);
        assert_eq!(
            by(&get("/exact/x", "testbed"), "x-by-route"),
            ["5"],
            "xds.route_name: the route's name"
        );
        assert_eq!(
            by(&get("/prefixed/x", "testbed"), "x-by-route-prefix"),
            ["5"],
            "xds.route_name, by prefix"
        );
        assert_eq!(
            by(&get("/svc/x", "testbed"), "x-by-service"),
            ["5"],
            "xds.cluster_name: outbound|3000||echo.dns"
        );
        assert_eq!(
            by(&get("/d", "api.example.org:8443"), "x-by-domain"),
            ["5"],
            ":authority without the port"
        );
        let untouched = world.send(
            "properties",
            &Request::get("/d").header("x-auth-user", "client"),
        );
        assert_eq!(echoed(&untouched, "x-auth-user"), ["client"]);
        let unserved: Vec<String> = world
            .plugin_log("properties")
            .into_iter()
            .filter(|line| line.contains("gave neither"))
            .collect();
        assert!(unserved.is_empty(), "{unserved:?}");
    });
}

#[test]
fn large_bodies_pass_both_ways() {
    const SIZE: usize = 8 * 1024 * 1024;
    each(worlds(), |world| {
        let mut conn = Conn::open(world.addr("main"));
        let upload = conn.send(
            &Request::post("/upload")
                .bearer("uid-95-upload")
                .body(vec![b'u'; SIZE]),
        );
        assert_eq!(uid(&upload), "95");
        assert_eq!(upload.json()["body_bytes"], SIZE);
        let download = conn.send(
            &Request::get("/download")
                .bearer("uid-95-upload")
                .header("x-echo-bytes", &SIZE.to_string()),
        );
        assert_eq!(download.status, 200);
        assert_eq!(download.body.len(), SIZE);
    });
}

#[test]
fn one_keep_alive_connection_carries_requests_with_different_tokens() {
    each_counting(worlds(), |world| {
        let before = world.counter("allowed");
        let denied = world.counter("denied");
        let mut conn = Conn::open(world.addr("keepalive"));
        let mut send = |token: Option<&str>| {
            let request = Request::get("/hello");
            conn.send(&match token {
                Some(token) => request.bearer(token),
                None => request,
            })
        };
        assert_eq!(uid(&send(Some("uid-61-ka"))), "61");
        assert_eq!(send(Some("deny-ka")).status, 401);
        assert_eq!(uid(&send(Some("uid-62-ka"))), "62");
        assert_eq!(send(None).status, 401);
        assert_eq!(uid(&send(Some("uid-61-ka"))), "61", "a cached uid");
        assert_eq!(uid(&send(Some("AnonymousToken"))), "0");
        assert_eq!(conn.connects(), 1, "one connection");
        // Counters as Envoy prints them (the README's Stats section).
        assert_eq!(world.counter_reaching("allowed", before + 3), before + 3);
        assert_eq!(world.counter_reaching("denied", denied + 1), denied + 1);
        let text = world.envoy.admin("/stats").text();
        assert!(
            text.contains(&format!("wasmcustom.easy_jwt.denied: {}", denied + 1)),
            "{text}"
        );
        let prometheus = world.envoy.admin("/stats/prometheus").text();
        let allowed = before + 3;
        assert!(
            prometheus.contains(&format!("easy_jwt_allowed{{}} {allowed}"))
                || prometheus.contains(&format!("easy_jwt_allowed {allowed}")),
            "{}",
            prometheus
                .lines()
                .filter(|l| l.contains("easy_jwt"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    });
}

#[test]
fn a_client_gone_while_paused_leaves_the_vm_serving() {
    each(worlds(), |world| {
        let mock = &world.backends.mock;
        {
            let mut conn = Conn::open(world.addr("main"));
            conn.set_timeout(Duration::from_millis(200));
            let _ = conn.try_send(&Request::get("/hello").bearer("slow-500-gone"));
        }
        // The call was made; the client is gone before its answer (500 ms later).
        assert!(world.eventually(|| mock.calls_for("slow-500-gone") == 1));
        let after = world.get("main", "/hello", "uid-96-after");
        assert_eq!(uid(&after), "96");
        assert_eq!(mock.calls_for("slow-500-gone"), 1);
    });
}

#[test]
fn request_context_reaches_the_token_server_only_when_asked() {
    each(worlds(), |world| {
        let request = |path: &str, token: &str| {
            Request::get(path)
                .bearer(token)
                .header("x-tenant", "acme")
                .header("cookie", "session=s; theme=dark")
        };
        world.send("ctx-plain", &request("/orders?id=1", "uid-70-plain"));
        world.send("ctx-mock", &request("/orders?id=1", "uid-71-ctx"));
        let calls = world.backends.mock.requests();
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
    });
}

#[test]
fn a_per_path_decision_is_never_short_circuited_by_the_cache() {
    each_counting(worlds(), |world| {
        let hits = world.counter("cache_hit");
        let token = token_server::mint(SECRET, 72, token_server::now_unix() + 3600);
        let request = |path: &str| Request::get(path).bearer(&token);
        let addr = world.addr("ctx-reference");
        assert_eq!(uid(&http::send(addr, &request("/hello"))), "72");
        let denied = http::send(addr, &request("/admin/users"));
        assert_eq!(failure(&denied), (401, "path denied".to_string()));
        assert_eq!(uid(&http::send(addr, &request("/hello"))), "72");
        assert_eq!(
            world.counter_reaching("cache_hit", hits + 1),
            hits + 1,
            "only the repeated /hello is a hit"
        );
    });
}
