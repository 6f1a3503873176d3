//! The fault matrix in Envoy: every token-server and client fault against the real
//! `plugin.wasm`. Each case checks the reply (fail closed with the configured status, or fail
//! open when on), then that the VM still ignores, refuses and allows (every listener of the
//! binary shares one VM per worker, so the `main` listener's answer comes from the same VM).

use crate::common::*;
use easy_jwt_testbed::http::Request;
use serde_json::{json, Value};
use std::sync::OnceLock;
use std::time::Duration;

const FAILURE_STATUS: u16 = 503;

/// Server faults: (site, expected message).
const SERVER_FAULTS: [(&str, &str); 5] = [
    ("down", "token server unavailable"),
    ("hang", "token server timeout"),
    ("503", "token server unavailable"),
    ("500-html", "token server error"),
    ("200-garbage", "invalid token server response"),
];

const BAD_UIDS: [&str; 14] = [
    r#"{"uid":1.5}"#,
    r#"{"uid":1.0}"#,
    r#"{"uid":1e3}"#,
    r#"{"uid":-1}"#,
    r#"{"uid":18446744073709551616}"#,
    r#"{"uid":123456789012345678901234567890}"#,
    r#"{"uid":"abc"}"#,
    r#"{"uid":"-1"}"#,
    r#"{"uid":" 1"}"#,
    r#"{"uid":"1.5"}"#,
    r#"{"uid":[1]}"#,
    r#"{"uid":{"n":1}}"#,
    r#"{"uid":true}"#,
    r#"{"uid":null}"#,
];

fn worlds() -> &'static [World] {
    static WORLDS: OnceLock<Vec<World>> = OnceLock::new();
    WORLDS.get_or_init(|| start_worlds(sites, Setup::default()))
}

/// Calls `cluster`, 300 ms timeout, no cache, failure status 503.
fn to(cluster: &str, extra: Value) -> Value {
    let mut config = calling(
        cluster,
        json!({"tokenServerTimeoutMs": 300, "cacheTtlSeconds": 0,
               "tokenServerFailureStatusCode": FAILURE_STATUS}),
    );
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    config
}

fn sites(backends: &mut Backends) -> Vec<Site> {
    let mut fake = |name: &str, server: FakeServer| {
        let cluster = fake_cluster(name);
        backends.fake(&cluster, server);
        cluster
    };
    let mut clusters = vec![("down".to_string(), CLOSED_CLUSTER.to_string())];
    clusters.push((
        "hang".into(),
        fake("hang", FakeServer::start(Behaviour::Hang)),
    ));
    clusters.push((
        "503".into(),
        fake(
            "503",
            FakeServer::respond(503, "text/plain", b"unavailable"),
        ),
    ));
    clusters.push((
        "500-html".into(),
        fake(
            "500-html",
            FakeServer::respond(500, "text/html", b"<html>oops</html>"),
        ),
    ));
    clusters.push((
        "200-garbage".into(),
        fake(
            "200-garbage",
            FakeServer::respond(200, "application/json", b"\x00garbage{"),
        ),
    ));
    for (i, body) in BAD_UIDS.iter().enumerate() {
        let name = format!("uid{i}");
        let cluster = fake(
            &name,
            FakeServer::respond(200, "application/json", body.as_bytes()),
        );
        clusters.push((name, cluster));
    }
    clusters.push((
        "uid-max".into(),
        fake(
            "uid-max",
            FakeServer::respond(200, "application/json", br#"{"uid":18446744073709551615}"#),
        ),
    ));
    let mut big = br#"{"uid":1,"pad":""#.to_vec();
    big.resize(16 * 1024 * 1024, b'x');
    big.extend_from_slice(br#""}"#);
    let big = fake(
        "big",
        FakeServer::start(Behaviour::Raw(raw_answer(200, "application/json", &big))),
    );
    let reset = fake("reset", FakeServer::start(Behaviour::ResetMidBody));
    let drip = fake(
        "drip",
        FakeServer::start(Behaviour::Drip(
            raw_answer(200, "application/json", br#"{"uid":1}"#),
            Duration::from_millis(20),
        )),
    );
    let mut sites: Vec<Site> = Vec::new();
    for (name, cluster) in &clusters {
        sites.push(site(name, to(cluster, json!({}))));
        sites.push(site(
            &format!("{name}-open"),
            to(cluster, json!({"failOpen": true})),
        ));
    }
    sites.push(site(
        "big",
        to(&big, json!({"tokenServerTimeoutMs": 10_000})),
    ));
    sites.push(site("reset", to(&reset, json!({}))));
    sites.push(site("drip", to(&drip, json!({}))));
    let control = fake(
        "control-chars",
        FakeServer::respond(
            200,
            "application/json",
            br#"{"uid":5,"note":"a\r\nx-injected: 1","nul":"a\u0000b","lf":"a\nb","ok":"fine"}"#,
        ),
    );
    sites.push(site(
        "control-chars",
        to(
            &control,
            json!({"authResponseHeaders": {"note": "x-note", "nul": "x-nul", "lf": "x-lf", "ok": "x-ok"}}),
        ),
    ));
    sites.push(site("main", base_config(json!({}))));
    sites.push(site("strip", base_config(json!({"stripToken": true}))));
    sites
}

/// The VM still ignores and refuses on `site`, and allows (through `main`, the same VM).
fn next_request_is_served(world: &World, site: &str) {
    assert_eq!(
        uid(&world.send(site, &Request::get("/public/next"))),
        "0",
        "{site}"
    );
    assert_eq!(
        world.send(site, &Request::get("/api")).status,
        401,
        "{site}"
    );
    assert_eq!(uid(&world.get("main", "/api", "uid-7-next")), "7", "{site}");
}

fn fails_closed(world: &World, site: &str) -> (u16, String) {
    failure(&world.get(site, "/api", "some-token"))
}

#[test]
fn it_fails_closed_on_every_server_fault() {
    each(worlds(), |world| {
        for (site, message) in SERVER_FAULTS {
            assert_eq!(
                fails_closed(world, site),
                (FAILURE_STATUS, message.to_string()),
                "{site}"
            );
            next_request_is_served(world, site);
        }
    });
}

#[test]
fn it_counts_each_server_fault_as_a_token_server_failure() {
    each_counting(worlds(), |world| {
        let before = world.counter("token_server_failure");
        for (site, _) in SERVER_FAULTS {
            fails_closed(world, site);
        }
        assert_eq!(
            world.counter_reaching("token_server_failure", before + 5),
            before + 5
        );
    });
}

#[test]
fn it_fails_open_on_every_server_fault_when_configured() {
    each(worlds(), |world| {
        for (site, _) in SERVER_FAULTS {
            let site = format!("{site}-open");
            let response = world.send(
                &site,
                &Request::get("/api").bearer("t").header("x-auth-user", "5"),
            );
            assert!(
                echoed(&response, "x-auth-user").is_empty(),
                "{site}: no uid on fail-open"
            );
            assert_eq!(
                echoed(&response, "x-envoy-auth-failure-mode-allowed"),
                ["true"],
                "{site}"
            );
            next_request_is_served(world, &site);
        }
    });
}

#[test]
fn it_fails_closed_on_uids_that_are_not_non_negative_integers() {
    each(worlds(), |world| {
        for (i, body) in BAD_UIDS.iter().enumerate() {
            let site = format!("uid{i}");
            assert_eq!(
                fails_closed(world, &site),
                (FAILURE_STATUS, "invalid token server response".into()),
                "{body}"
            );
            next_request_is_served(world, &site);
        }
        assert_eq!(
            uid(&world.get("uid-max", "/api", "t")),
            "18446744073709551615"
        );
    });
}

#[test]
fn it_fails_closed_on_a_16_mib_answer() {
    each(worlds(), |world| {
        assert_eq!(
            fails_closed(world, "big"),
            (FAILURE_STATUS, "invalid token server response".into())
        );
        next_request_is_served(world, "big");
    });
}

#[test]
fn it_fails_closed_when_the_connection_resets_mid_body() {
    // Headers, then the connection closes short of the content-length: the call ends in a
    // reset in Envoy 1.40.0 and 1.36.2 alike (tests/e2e/failures.rs holds the same case).
    each(worlds(), |world| {
        assert_eq!(
            fails_closed(world, "reset"),
            (FAILURE_STATUS, "token server connection reset".into())
        );
        next_request_is_served(world, "reset");
    });
}

#[test]
fn it_times_out_on_a_slow_drip_answer() {
    // 150 bytes at 20 ms each against a 300 ms timeout: Envoy's timeout ends the call.
    each(worlds(), |world| {
        assert_eq!(
            fails_closed(world, "drip"),
            (FAILURE_STATUS, "token server timeout".into())
        );
        next_request_is_served(world, "drip");
    });
}

#[test]
fn it_refuses_a_60_kib_token_and_accepts_a_60_kib_other_header() {
    each(worlds(), |world| {
        let mock = &world.backends.mock;
        let huge = "a".repeat(60 * 1024);
        assert_eq!(
            failure(&world.get("main", "/api", &huge)),
            (401, "token too long".into())
        );
        assert_eq!(mock.calls_for(&huge), 0, "no call for a refused token");
        // One 60 KiB header at a time: the listener allows 96 KiB of headers in all
        // (`max_request_headers_kb`), above that Envoy answers 431 before any filter runs.
        for name in ["x-big", "cookie"] {
            let response = world.send(
                "main",
                &Request::get("/api")
                    .bearer("uid-4-big-header")
                    .header(name, &huge),
            );
            assert_eq!(uid(&response), "4", "{name}");
        }
        next_request_is_served(world, "main");
    });
}

#[test]
fn it_refuses_repeated_authorization_headers_which_envoy_joins_into_one() {
    // Envoy's HTTP/1 codec folds repeated `authorization` lines into one value joined by `,`
    // (1.40.0 and 1.36.2 alike): the plugin sees `Bearer uid-5-first,Bearer other-0,…`, whose
    // token holds a space, and refuses it without a call. (Picking the first of separate
    // entries is the adapter's, tested through its fake host.)
    each(worlds(), |world| {
        let mut request = Request::get("/api").bearer("uid-5-first");
        for i in 0..100 {
            request = request.bearer(&format!("other-{i}"));
        }
        assert_eq!(
            failure(&world.send("strip", &request)),
            (401, "malformed token".into())
        );
        assert_eq!(world.backends.mock.calls_for("uid-5-first"), 0);
        let request = Request::get("/api")
            .header("authorization", "Basic x")
            .bearer("uid-5-second");
        assert_eq!(
            failure(&world.send("strip", &request)),
            (401, "invalid authorization scheme".into())
        );
        next_request_is_served(world, "strip");
    });
}

#[test]
fn it_reads_non_ascii_header_values_as_text() {
    each(worlds(), |world| {
        let mock = &world.backends.mock;
        for token in [
            "uid-6-tök€n",
            "uid-6-\u{FFFD}\u{FFFD}",
            "uid-6-a\u{10FFFF}b",
        ] {
            assert_eq!(uid(&world.get("main", "/api", token)), "6", "{token}");
            assert_eq!(mock.calls_for(token), 1, "{token} sent as is");
        }
        assert_eq!(
            failure(&world.get("main", "/api", "a\u{85}b")),
            (401, "malformed token".into())
        );
        next_request_is_served(world, "main");
    });
}

#[test]
fn a_header_value_that_is_not_utf8_gets_a_normal_answer_and_the_vm_serves_on() {
    each(worlds(), |world| {
        // A Latin-1 byte in the token's header: no readable token, the configured refusal.
        let latin1 = Request::get("/api").header_bytes("authorization", b"Bearer uid-6-caf\xe9");
        assert_eq!(
            failure(&world.send("main", &latin1)),
            (401, "missing token".into())
        );
        // In any other header it changes nothing: the token is checked and the uid set.
        let other = Request::get("/api")
            .bearer("uid-6-latin1")
            .header_bytes("x-note", b"caf\xe9 \xff");
        assert_eq!(uid(&world.send("main", &other)), "6");
        next_request_is_served(world, "main");
    });
}

#[test]
fn mapped_fields_with_cr_lf_or_nul_are_never_written_into_a_header() {
    each(worlds(), |world| {
        let request = Request::get("/api")
            .bearer("some-token")
            .header("x-note", "client copy")
            .header("x-nul", "client copy");
        let response = world.send("control-chars", &request);
        assert_eq!(uid(&response), "5");
        assert_eq!(echoed(&response, "x-ok"), ["fine"]);
        for name in ["x-note", "x-nul", "x-lf", "x-injected"] {
            assert!(
                echoed(&response, name).is_empty(),
                "{name}: {:?}",
                echoed(&response, name)
            );
        }
        next_request_is_served(world, "control-chars");
    });
}
