//! Configuration through the real artifact: every rejection names the key in one error line and
//! makes `on_configure` return false; Higress `_rules_` choose per route, domain and service;
//! each worker VM is configured on its own.

mod common;

use common::*;
use easy_jwt_host::vm::LogLevel;
use easy_jwt_host::{Flavor, HostEnv};
use serde_json::{json, Value};

fn rejection(config: &[u8]) -> String {
    let vm = try_configure(config);
    assert!(
        !vm.configured(),
        "accepted: {}",
        String::from_utf8_lossy(config)
    );
    let errors: Vec<_> = vm
        .logs()
        .iter()
        .filter(|r| r.level >= LogLevel::Error)
        .collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {errors:?}");
    errors[0].message.clone()
}

fn with(key: &str, value: Value) -> Vec<u8> {
    config(json!({ key: value }))
}

#[test]
fn it_rejects_bad_configurations_naming_the_key() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (Vec::new(), "empty"),
        (b"{not json".to_vec(), "not valid JSON"),
        (b"[1,2]".to_vec(), "JSON object"),
        (b"{}".to_vec(), "neither global keys nor `_rules_`"),
        (
            with("tokenServerFQDN", Value::Null),
            "`tokenServerFQDN` is required",
        ),
        (with("tokenServerPort", json!(0)), "`tokenServerPort`"),
        (with("tokenServerPort", json!(65536)), "`tokenServerPort`"),
        (with("tokenServerPort", json!("9090")), "`tokenServerPort`"),
        (
            with("responseErrorStatusCode", json!(200)),
            "`responseErrorStatusCode`",
        ),
        (
            with("responseErrorStatusCode", json!(600)),
            "`responseErrorStatusCode`",
        ),
        (
            with("tokenServerFailureStatusCode", json!(399)),
            "`tokenServerFailureStatusCode`",
        ),
        (
            with("responseErrorBody", json!("%s and %s")),
            "`responseErrorBody`",
        ),
        (
            with("ignoreUrls", json!(["/ok", "relative"])),
            "`ignoreUrls[1]`",
        ),
        (with("ignoreUrls", json!("/healthz")), "`ignoreUrls`"),
        (with("anonymousUID", json!("zero")), "`anonymousUID`"),
        (
            with("tokenFromHeaderName", json!("bad name")),
            "`tokenFromHeaderName`",
        ),
        (
            with("tokenServerTimeoutMs", json!(0)),
            "`tokenServerTimeoutMs`",
        ),
        (
            with(
                "tokenService",
                json!({"type": "eureka", "serviceName": "a", "port": 1}),
            ),
            "`tokenService`",
        ),
        (
            with("tokenServerCluster", json!("raw")),
            "`tokenServerCluster`",
        ),
        (with("failOpen", json!("yes")), "`failOpen`"),
        (with("cacheTtlSeconds", json!(-1)), "`cacheTtlSeconds`"),
        (config(json!({"_rules_": {}})), "`_rules_`"),
        (
            config(json!({"_rules_": [{"uidHeaderName": "x"}]})),
            "`_rules_[0]`",
        ),
        (
            config(
                json!({"_rules_": [{"_match_route_": ["a"]}, {"_match_domain_": ["b"], "tokenServerPort": -3}]}),
            ),
            "`_rules_[1].tokenServerPort`",
        ),
    ];
    for (config, expected) in cases {
        let line = rejection(&config);
        assert!(
            line.contains(expected),
            "{line:?} should mention {expected:?}"
        );
        assert!(line.starts_with("easy-jwt: "), "{line}");
    }
}

#[test]
fn it_warns_about_unknown_keys_but_accepts_the_config() {
    let vm = try_configure(&config(json!({"tokenServerFqdn": "typo"})));
    assert!(vm.configured());
    assert!(vm
        .logs()
        .iter()
        .any(|r| r.level == LogLevel::Warn && r.message.contains("`tokenServerFqdn`")));
}

fn rules_config() -> Vec<u8> {
    json!({
        "tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090, "uidHeaderName": "x-global",
        "cacheTtlSeconds": 0,
        "_rules_": [
            {"_match_route_": ["higress-course/ingress-foo"], "uidHeaderName": "x-route"},
            {"_match_domain_": ["*.example.org"], "uidHeaderName": "x-domain"},
            {"_match_service_": ["echo.dns:8080"], "uidHeaderName": "x-service"},
            {"_match_route_prefix_": ["open/"], "ignoreUrls": ["/*"]}
        ]
    })
    .to_string()
    .into_bytes()
}

#[test]
fn it_applies_rules_by_route_domain_and_service_first_match_first() {
    let mut gw = Gateway::start(
        &rules_config(),
        Answerer::Fixed(answer(200, r#"{"uid":5}"#)),
    );
    let uid_header = |outcome: &Outcome| {
        outcome
            .upstream_headers()
            .iter()
            .find(|(_, v)| v == "5")
            .map(|(k, _)| k.clone())
            .unwrap_or_default()
    };
    let route = gw.send(
        Req::get("/")
            .bearer("t")
            .route("higress-course/ingress-foo")
            .authority("a.example.org"),
    );
    assert_eq!(
        uid_header(&route),
        "x-route",
        "the first matching rule wins"
    );
    let domain = gw.send(Req::get("/").bearer("t").authority("api.example.org:8443"));
    assert_eq!(uid_header(&domain), "x-domain");
    let service = gw.send(Req::get("/").bearer("t").service("outbound|8080||echo.dns"));
    assert_eq!(uid_header(&service), "x-service");
    let global = gw.send(Req::get("/").bearer("t").service("outbound|80||echo.dns"));
    assert_eq!(uid_header(&global), "x-global");
    let open = gw.send(Req::get("/anything").route("open/docs"));
    assert_eq!(
        open.values("x-global"),
        vec!["0".to_string()],
        "rule inherits the global uid header"
    );
}

#[test]
fn it_matches_route_and_service_rules_on_every_gateway_flavor() {
    for flavor in [Flavor::Envoy, Flavor::Higress] {
        let mut gw = Gateway::tuned(
            &rules_config(),
            Answerer::Fixed(answer(200, r#"{"uid":5}"#)),
            |cfg| cfg.flavor = flavor,
        );
        let route = gw.send(
            Req::get("/")
                .bearer("t")
                .route("higress-course/ingress-foo"),
        );
        assert_eq!(route.values("x-route"), ["5"], "{flavor:?}");
        let service = gw.send(Req::get("/").bearer("t").service("outbound|8080||echo.dns"));
        assert_eq!(service.values("x-service"), ["5"], "{flavor:?}");
    }
}

#[test]
fn it_falls_back_to_the_legacy_route_name() {
    let mut gw = Gateway::start(
        &rules_config(),
        Answerer::Fixed(answer(200, r#"{"uid":5}"#)),
    );
    let route = gw.send(
        Req::get("/")
            .bearer("t")
            .legacy_route("higress-course/ingress-foo"),
    );
    assert_eq!(route.values("x-route"), ["5"]);
}

#[test]
fn it_warns_once_per_vm_when_the_host_serves_no_route_name() {
    let cfg = json!({"_rules_": [
        {"_match_domain_": ["never.example"], "tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090},
        {"_match_route_": ["protected"], "tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090}
    ]});
    let mut gw = Gateway::start(
        cfg.to_string().as_bytes(),
        Answerer::Fixed(answer(200, r#"{"uid":1}"#)),
    );
    for _ in 0..3 {
        let outcome = gw.send(Req::get("/x").header("x-auth-user", "client"));
        assert_eq!(outcome.values("x-auth-user"), ["client"]);
    }
    let warnings: Vec<_> = gw
        .vm
        .logs()
        .iter()
        .filter(|r| r.message.contains("gave neither"))
        .map(|r| r.message.clone())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].contains("`xds.route_name` nor `route_name` for a request (a gateway that serves neither, or a route without one): _rules_[1] cannot match"),
        "{warnings:?}"
    );
}

#[test]
fn it_leaves_unmatched_requests_untouched_without_a_global_config() {
    let cfg = json!({"_rules_": [{"_match_route_": ["protected"], "tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090}]});
    let mut gw = Gateway::start(
        cfg.to_string().as_bytes(),
        Answerer::Fixed(answer(200, r#"{"uid":1}"#)),
    );
    let outcome = gw.send(
        Req::get("/x")
            .route("public")
            .header("x-auth-user", "client"),
    );
    assert_eq!(
        outcome.values("x-auth-user"),
        vec!["client".to_string()],
        "the plugin is not active here"
    );
    let (status, _) = gw.send(Req::get("/x").route("protected")).error();
    assert_eq!(status, 401);
}

#[test]
fn it_configures_each_worker_vm_and_shares_counters() {
    let clock = manual_clock();
    let env = HostEnv::with_clock(clock.clone());
    let cfg = config(json!({"cacheTtlSeconds": 0}));
    let mut first = Gateway::start_in(
        &env,
        clock.clone(),
        &cfg,
        Answerer::Fixed(answer(200, r#"{"uid":1}"#)),
    );
    let mut second = Gateway::start_in(
        &env,
        clock,
        &cfg,
        Answerer::Fixed(answer(200, r#"{"uid":2}"#)),
    );
    for vm in [&first.vm, &second.vm] {
        assert!(vm.configured());
        assert!(vm
            .logs()
            .iter()
            .any(|r| r.message.contains("easy-jwt: configured")));
    }
    assert_eq!(first.send(Req::get("/api").bearer("t")).uid(), "1");
    assert_eq!(second.send(Req::get("/api").bearer("t")).uid(), "2");
    // Each VM hands its counts to the host on its own tick (reading a counter runs it).
    second.counter("allowed");
    assert_eq!(
        first.counter("allowed"),
        2,
        "Envoy sums a counter of every VM under one name"
    );
}
