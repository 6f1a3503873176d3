//! Configuration through the real artifact in Envoy: a rejected configuration stops Envoy with
//! one error line naming the key; unknown keys are warned about; Higress `_rules_` choose per
//! route, domain and service; without a global configuration unmatched requests pass untouched.
//! (Every rejection message of every key: `core::config`'s unit tests.)

use crate::common::*;
use easy_jwt_testbed::envoy::{self, Bootstrap, Envoy, Listener, Opts};
use easy_jwt_testbed::http::Request;
use easy_jwt_testbed::plugin_wasm;
use serde_json::json;
use std::sync::OnceLock;
use std::thread;

const PORT_80: &str = "outbound|80||echo.dns";

fn worlds() -> &'static [World] {
    static WORLDS: OnceLock<Vec<World>> = OnceLock::new();
    WORLDS.get_or_init(|| start_worlds(sites, Setup::default()))
}

fn rules_config() -> serde_json::Value {
    json!({
        "tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090, "uidHeaderName": "x-global",
        "cacheTtlSeconds": 0,
        "_rules_": [
            {"_match_route_": ["higress-course/ingress-foo"], "uidHeaderName": "x-route"},
            {"_match_domain_": ["*.example.org"], "uidHeaderName": "x-domain"},
            {"_match_service_": ["echo.dns:3000"], "uidHeaderName": "x-service"},
            {"_match_route_prefix_": ["open/"], "ignoreUrls": ["/*"]}
        ]
    })
}

fn sites(backends: &mut Backends) -> Vec<Site> {
    let echo = backends.echo.addr();
    backends.cluster(PORT_80, echo);
    vec![
        site("typo", config(json!({"tokenServerFqdn": "typo"}))),
        site("rules", rules_config())
            .route("higress-course/ingress-foo", "/foo/", ECHO_CLUSTER)
            .route("open/docs", "/open/", ECHO_CLUSTER)
            .route("port-80", "/svc80/", PORT_80),
        site(
            "rules-only",
            json!({"_rules_": [{"_match_route_": ["protected"], "tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090}]}),
        )
        .route("protected", "/guarded/", ECHO_CLUSTER),
    ]
}

/// The plugin's error lines when Envoy refuses `config` at startup (Envoy must refuse it).
fn rejection(bin: &envoy::EnvoyBin, config: &str) -> Vec<String> {
    let bootstrap = Bootstrap::new().listener(
        Listener::new("bad")
            .wasm(plugin_wasm(), config)
            .direct_response("all", "/", 200, "x"),
    );
    let error = match Envoy::start(bin, &bootstrap, Opts::default()) {
        Ok(_) => panic!("Envoy {} accepted {config:?}", bin.version),
        Err(error) => error,
    };
    error
        .log
        .lines()
        .filter(|line| line.contains("][error][wasm]") && line.contains("wasm log"))
        .map(str::to_string)
        .collect()
}

#[test]
fn it_stops_envoy_on_a_bad_configuration_with_one_line_naming_the_key() {
    // A few, each an Envoy start of its own; every key's message: `core::config`'s unit tests.
    let cases: Vec<(String, &str)> = vec![
        (String::new(), "empty"),
        (
            config(json!({"tokenServerPort": 70000})).to_string(),
            "configuration key `tokenServerPort` must be in 1..=65535",
        ),
        (
            json!({"_rules_": [
                {"_match_route_": ["a"], "tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090},
                {"_match_domain_": ["b"], "tokenServerFQDN": "token-server.dns", "tokenServerPort": -3},
            ]})
            .to_string(),
            "`_rules_[1].tokenServerPort`",
        ),
    ];
    let bins = envoy::binaries();
    // Each refused start is an Envoy of its own: all at once.
    let failures: Vec<String> = thread::scope(|scope| {
        let handles: Vec<_> = bins
            .iter()
            .flat_map(|bin| cases.iter().map(move |case| (bin, case)))
            .map(|(bin, (config, expected))| {
                scope.spawn(move || {
                    let lines = rejection(bin, config);
                    let ok = lines.len() == 1
                        && lines[0].contains("easy-jwt: ")
                        && lines[0].contains(expected);
                    (!ok).then(|| {
                        format!("Envoy {}: {config:?} should give one line with {expected:?}: {lines:#?}", bin.version)
                    })
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn it_warns_about_unknown_keys_but_accepts_the_config() {
    each(worlds(), |world| {
        let warnings: Vec<String> = world
            .plugin_log("typo")
            .into_iter()
            .filter(|line| line.contains("][warning][wasm]") && line.contains("`tokenServerFqdn`"))
            .collect();
        assert!(!warnings.is_empty(), "{:?}", world.plugin_log("typo"));
        assert_eq!(uid(&world.get("typo", "/api", &valid_token(3))), "3");
    });
}

#[test]
fn it_applies_rules_by_route_domain_and_service_first_match_first() {
    each(worlds(), |world| {
        let token = valid_token(5);
        let get = |path: &str, host: &str| {
            world.send(
                "rules",
                &Request::get(path).header("host", host).bearer(&token),
            )
        };
        let uid_header = |response: &easy_jwt_testbed::http::Response| {
            ["x-route", "x-domain", "x-service", "x-global"]
                .into_iter()
                .filter(|name| echoed(response, name) == ["5"])
                .collect::<Vec<_>>()
        };
        assert_eq!(
            uid_header(&get("/foo/x", "a.example.org")),
            ["x-route"],
            "the first matching rule wins"
        );
        assert_eq!(uid_header(&get("/d", "api.example.org:8443")), ["x-domain"]);
        assert_eq!(uid_header(&get("/svc/x", "testbed")), ["x-service"]);
        assert_eq!(uid_header(&get("/svc80/x", "testbed")), ["x-global"]);
        let open = world.send("rules", &Request::get("/open/anything"));
        assert_eq!(
            echoed(&open, "x-global"),
            ["0"],
            "rule inherits the global uid header"
        );
    });
}

#[test]
fn it_leaves_unmatched_requests_untouched_without_a_global_config() {
    each(worlds(), |world| {
        let response = world.send(
            "rules-only",
            &Request::get("/x").header("x-auth-user", "client"),
        );
        assert_eq!(
            echoed(&response, "x-auth-user"),
            ["client"],
            "the plugin is not active here"
        );
        let (status, _) = error(&world.send("rules-only", &Request::get("/guarded/x")));
        assert_eq!(status, 401);
    });
}
