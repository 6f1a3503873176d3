//! The fault matrix: every token-server and client fault against the real `plugin.wasm`. Each case
//! checks the reply (fail closed with the configured status, or fail open when on), that the VM
//! did not trap, and that the same VM serves the next request correctly.
//!
//! The host carries header values as `String`, so raw non-UTF-8 bytes cannot be sent through
//! `Vm::on_request_headers`; `it_reads_non_ascii_header_values_as_text` covers what can be sent
//! (multi-byte UTF-8, U+FFFD). The adapter reads headers as bytes and treats non-UTF-8 as absent.

mod common;

use common::*;
use easy_jwt_host::vm::{CallOutcome, StreamState};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::time::Duration;

const FAILURE_STATUS: u16 = 503;

/// A VM whose calls go to `addr` over real HTTP, 300 ms timeout, no cache.
fn gateway_to(addr: SocketAddr, extra: Value) -> Gateway {
    let mut cfg: Value = serde_json::from_slice(&config(json!({
        "tokenServerTimeoutMs": 300, "cacheTtlSeconds": 0,
        "tokenServerFailureStatusCode": FAILURE_STATUS
    })))
    .unwrap();
    for (key, value) in extra.as_object().unwrap() {
        cfg[key] = value.clone();
    }
    Gateway::start(cfg.to_string().as_bytes(), http_answerer(addr))
}

/// No trap, and the VM still ignores, refuses and allows as it should.
fn next_request_is_served(gw: &mut Gateway) {
    assert!(gw.vm.failed().is_none(), "trap: {:?}", gw.vm.failed());
    assert_eq!(gw.send(Req::get("/public/next")).uid(), "0");
    assert_eq!(gw.send(Req::get("/api")).error().0, 401);
    gw.answerer = Answerer::Fixed(answer(200, r#"{"uid":7}"#));
    assert_eq!(gw.send(Req::get("/api").bearer("next-token")).uid(), "7");
    assert!(gw.vm.failed().is_none());
}

/// The failure reply and its message for a request with a token.
fn fails_closed(gw: &mut Gateway) -> (u16, String) {
    let (status, body) = gw.send(Req::get("/api").bearer("some-token")).error();
    (
        status,
        body["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// Server-side faults: (name, server, expected message).
fn server_faults() -> Vec<(&'static str, Option<FakeServer>, &'static str)> {
    vec![
        ("down", None, "token server unavailable"),
        (
            "hang",
            Some(FakeServer::start(Behaviour::Hang)),
            "token server timeout",
        ),
        (
            "503",
            Some(FakeServer::respond(503, "text/plain", b"unavailable")),
            "token server unavailable",
        ),
        (
            "500 html",
            Some(FakeServer::respond(500, "text/html", b"<html>oops</html>")),
            "token server error",
        ),
        (
            "200 garbage",
            Some(FakeServer::respond(
                200,
                "application/json",
                b"\x00garbage{",
            )),
            "invalid token server response",
        ),
    ]
}

fn addr_of(server: &Option<FakeServer>) -> SocketAddr {
    server.as_ref().map_or_else(closed_port, FakeServer::addr)
}

#[test]
fn it_fails_closed_on_every_server_fault() {
    for (name, server, message) in server_faults() {
        let mut gw = gateway_to(addr_of(&server), json!({}));
        assert_eq!(
            fails_closed(&mut gw),
            (FAILURE_STATUS, message.to_string()),
            "{name}"
        );
        assert_eq!(gw.counter("token_server_failure"), 1, "{name}");
        next_request_is_served(&mut gw);
    }
}

#[test]
fn it_fails_open_on_every_server_fault_when_configured() {
    for (name, server, _) in server_faults() {
        let mut gw = gateway_to(addr_of(&server), json!({"failOpen": true}));
        let outcome = gw.send(Req::get("/api").bearer("t").header("x-auth-user", "5"));
        assert!(
            outcome.values("x-auth-user").is_empty(),
            "{name}: no uid on fail-open"
        );
        assert_eq!(
            outcome.values("x-envoy-auth-failure-mode-allowed"),
            ["true"],
            "{name}"
        );
        next_request_is_served(&mut gw);
    }
}

#[test]
fn it_fails_closed_on_uids_that_are_not_non_negative_integers() {
    let server_with = |body: &str| FakeServer::respond(200, "application/json", body.as_bytes());
    for body in [
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
    ] {
        let server = server_with(body);
        let mut gw = gateway_to(server.addr(), json!({}));
        assert_eq!(
            fails_closed(&mut gw),
            (FAILURE_STATUS, "invalid token server response".into()),
            "{body}"
        );
        next_request_is_served(&mut gw);
    }
    let server = server_with(r#"{"uid":18446744073709551615}"#);
    let mut gw = gateway_to(server.addr(), json!({}));
    assert_eq!(
        gw.send(Req::get("/api").bearer("t")).uid(),
        "18446744073709551615"
    );
}

#[test]
fn it_fails_closed_on_a_16_mib_answer() {
    let mut body = br#"{"uid":1,"pad":""#.to_vec();
    body.resize(16 * 1024 * 1024, b'x');
    body.extend_from_slice(br#""}"#);
    let server = FakeServer::start(Behaviour::Raw(raw_answer(200, "application/json", &body)));
    let mut gw = gateway_to(server.addr(), json!({"tokenServerTimeoutMs": 10_000}));
    assert_eq!(
        fails_closed(&mut gw),
        (FAILURE_STATUS, "invalid token server response".into())
    );
    next_request_is_served(&mut gw);
}

#[test]
fn it_fails_closed_when_the_connection_resets_mid_body() {
    let server = FakeServer::start(Behaviour::ResetMidBody);
    let mut gw = gateway_to(server.addr(), json!({}));
    let (status, message) = fails_closed(&mut gw);
    assert_eq!(status, FAILURE_STATUS);
    assert!(
        [
            "token server connection reset",
            "invalid token server response"
        ]
        .contains(&message.as_str()),
        "{message}"
    );
    next_request_is_served(&mut gw);
}

#[test]
fn it_times_out_on_a_slow_drip_answer() {
    let raw = raw_answer(200, "application/json", br#"{"uid":1}"#);
    let server = drip_server(raw, Duration::from_millis(20));
    let mut gw = gateway_to(server.addr(), json!({}));
    let (status, message) = fails_closed(&mut gw);
    assert_eq!(status, FAILURE_STATUS);
    assert!(
        ["token server timeout", "token server connection reset"].contains(&message.as_str()),
        "{message}"
    );
    next_request_is_served(&mut gw);
}

#[test]
fn it_survives_a_client_that_leaves_while_paused() {
    let mut gw = Gateway::start(
        &config(json!({"cacheTtlSeconds": 0})),
        Answerer::Fixed(answer(200, r#"{"uid":3}"#)),
    );
    let (id, state) = gw.begin(Req::get("/api").bearer("leaver"));
    assert_eq!(state, StreamState::Paused);
    let (follower, _) = gw.begin(Req::get("/api").bearer("leaver"));
    gw.vm.end_stream(id);
    for call in gw.vm.take_calls() {
        gw.vm.deliver_call(call.token, answer(200, r#"{"uid":3}"#));
    }
    gw.vm.tick();
    for call in gw.vm.take_calls() {
        gw.vm.deliver_call(call.token, answer(200, r#"{"uid":3}"#));
    }
    gw.vm.take_events();
    assert_eq!(
        gw.outcome_of(follower, gw.vm.state(follower)).uid(),
        "3",
        "the follower is answered"
    );
    gw.vm.end_stream(follower);
    next_request_is_served(&mut gw);
}

#[test]
fn it_refuses_a_60_kib_token_and_accepts_a_60_kib_other_header() {
    let mut gw = Gateway::start(
        &config(json!({})),
        Answerer::Fixed(answer(200, r#"{"uid":4}"#)),
    );
    let huge = "a".repeat(60 * 1024);
    let (status, body) = gw.send(Req::get("/api").bearer(&huge)).error();
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("token too long"))
    );
    assert!(gw.calls.is_empty(), "no call for a refused token");
    let outcome = gw.send(
        Req::get("/api")
            .bearer("t")
            .header("x-big", &huge)
            .header("cookie", &huge),
    );
    assert_eq!(outcome.uid(), "4");
    next_request_is_served(&mut gw);
}

#[test]
fn it_judges_the_first_of_many_authorization_headers() {
    let mut gw = Gateway::start(
        &config(json!({"stripToken": true})),
        Answerer::Fixed(answer(200, r#"{"uid":5}"#)),
    );
    let mut req = Req::get("/api").bearer("first");
    for i in 0..100 {
        req = req.bearer(&format!("other-{i}"));
    }
    let outcome = gw.send(req);
    assert_eq!(outcome.uid(), "5");
    assert!(
        outcome.values("authorization").is_empty(),
        "stripToken removes every copy"
    );
    let sent: Value = serde_json::from_slice(&gw.calls[0].body).unwrap();
    assert_eq!(sent, json!({"token": "first"}));

    let req = Req::get("/api")
        .header("authorization", "Basic x")
        .bearer("valid");
    let (status, body) = gw.send(req).error();
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("invalid authorization scheme"))
    );
    next_request_is_served(&mut gw);
}

#[test]
fn it_reads_non_ascii_header_values_as_text() {
    let mut gw = Gateway::start(
        &config(json!({})),
        Answerer::Fixed(answer(200, r#"{"uid":6}"#)),
    );
    for token in ["tök€n", "\u{FFFD}\u{FFFD}", "a\u{10FFFF}b"] {
        let calls = gw.calls.len();
        assert_eq!(
            gw.send(Req::get("/api").bearer(token)).uid(),
            "6",
            "{token}"
        );
        let sent: Value = serde_json::from_slice(&gw.calls[calls].body).unwrap();
        assert_eq!(sent["token"], token);
    }
    let (status, body) = gw.send(Req::get("/api").bearer("a\u{85}b")).error();
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("malformed token"))
    );
    assert_eq!(gw.send(Req::get("/caf\u{e9}/..").bearer("x")).uid(), "6");
    next_request_is_served(&mut gw);
}

#[test]
fn it_never_traps_on_delivered_envoy_failures() {
    for outcome in [
        CallOutcome::Timeout,
        CallOutcome::ConnectFailure,
        CallOutcome::Reset,
    ] {
        let mut gw = Gateway::start(
            &config(json!({"cacheTtlSeconds": 0})),
            Answerer::Fixed(outcome),
        );
        assert_eq!(fails_closed(&mut gw).0, 401);
        next_request_is_served(&mut gw);
    }
}
