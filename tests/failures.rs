//! Token-server failures over real sockets: every one fails closed with the failure status, and
//! with `failOpen` continues without a uid and with the marker header.

mod common;

use common::*;
use easy_jwt_host::vm::CallOutcome;
use serde_json::{json, Value};
use std::net::SocketAddr;

fn gateway_to(addr: SocketAddr, extra: Value) -> Gateway {
    let mut cfg: Value = serde_json::from_slice(&config(
        json!({"tokenServerTimeoutMs": 300, "cacheTtlSeconds": 0}),
    ))
    .unwrap();
    for (key, value) in extra.as_object().unwrap() {
        cfg[key] = value.clone();
    }
    Gateway::start(cfg.to_string().as_bytes(), http_answerer(addr))
}

fn failure_message(gw: &mut Gateway) -> (u16, String) {
    let (status, body) = gw.send(Req::get("/api").bearer("some-token")).error();
    (
        status,
        body["message"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn it_fails_closed_when_the_token_server_is_down() {
    let mut gw = gateway_to(closed_port(), json!({}));
    assert_eq!(
        failure_message(&mut gw),
        (401, "token server unavailable".into())
    );
    assert_eq!(gw.counter("token_server_failure"), 1);
}

#[test]
fn it_fails_closed_when_the_token_server_never_answers() {
    let hang = FakeServer::start(Behaviour::Hang);
    let mut gw = gateway_to(hang.addr(), json!({"tokenServerFailureStatusCode": 503}));
    assert_eq!(
        failure_message(&mut gw),
        (503, "token server timeout".into())
    );
}

#[test]
fn it_fails_closed_on_500_with_html() {
    let server = FakeServer::respond(
        500,
        "text/html",
        b"<html><body>Internal Server Error</body></html>",
    );
    let mut gw = gateway_to(server.addr(), json!({}));
    assert_eq!(failure_message(&mut gw), (401, "token server error".into()));
}

#[test]
fn it_passes_a_json_message_of_a_failure_through_escaped() {
    let server = FakeServer::respond(
        503,
        "application/json",
        br#"{"message":"maintenance \"window\""}"#,
    );
    let mut gw = gateway_to(server.addr(), json!({"tokenServerFailureStatusCode": 502}));
    assert_eq!(
        failure_message(&mut gw),
        (502, "maintenance \"window\"".into())
    );
}

#[test]
fn it_fails_closed_on_200_with_garbage_or_without_an_integer_uid() {
    for body in [
        &b"garbage"[..],
        b"",
        br#"{"uid":null}"#,
        br#"{"uid":1.5}"#,
        br#"{"uid":-1}"#,
        br#"{"uid":"abc"}"#,
        br#"{"uid":123456789012345678901234567890}"#,
        br#"{"user":1}"#,
    ] {
        let server = FakeServer::respond(200, "application/json", body);
        let mut gw = gateway_to(server.addr(), json!({}));
        assert_eq!(
            failure_message(&mut gw),
            (401, "invalid token server response".into()),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn it_fails_closed_when_the_connection_resets_mid_body() {
    let server = FakeServer::start(Behaviour::ResetMidBody);
    let mut gw = gateway_to(server.addr(), json!({}));
    let (status, message) = failure_message(&mut gw);
    assert_eq!(status, 401);
    assert!(
        message == "token server connection reset" || message == "invalid token server response",
        "{message}"
    );
}

#[test]
fn it_replies_instead_of_hanging_on_an_unknown_cluster() {
    let mut gw = Gateway::start(
        &config(json!({"tokenServerCluster": "no-such-cluster", "tokenServerFQDN": null})),
        Answerer::Fixed(CallOutcome::Reset),
    );
    let (status, body) = gw.send(Req::get("/api").bearer("t")).error();
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("token server call failed"))
    );
    assert!(gw.calls.is_empty());
    let logs = gw.log_text();
    assert!(
        logs.contains("no-such-cluster") && logs.contains("McpBridge"),
        "{logs}"
    );
}

#[test]
fn it_fails_open_only_on_failures_when_configured() {
    let mut gw = gateway_to(closed_port(), json!({"failOpen": true}));
    let outcome = gw.send(Req::get("/api").bearer("t").header("x-auth-user", "5"));
    assert!(
        outcome.values("x-auth-user").is_empty(),
        "no uid on fail-open"
    );
    assert_eq!(
        outcome.values("x-envoy-auth-failure-mode-allowed"),
        vec!["true".to_string()]
    );
    assert_eq!(gw.counter("fail_open"), 1);

    let mut gw = Gateway::start(
        &config(json!({"failOpen": true})),
        Answerer::Fixed(answer(401, r#"{"message":"no"}"#)),
    );
    let (status, _) = gw.send(Req::get("/api").bearer("t")).error();
    assert_eq!(status, 401, "denials are never failed open");
}

#[test]
fn it_delivers_envoy_failure_outcomes_as_failures() {
    for (outcome, message) in [
        (CallOutcome::Timeout, "token server timeout"),
        (CallOutcome::ConnectFailure, "token server unavailable"),
        (CallOutcome::Reset, "token server connection reset"),
    ] {
        let mut gw = Gateway::start(
            &config(json!({"cacheTtlSeconds": 0})),
            Answerer::Fixed(outcome),
        );
        assert_eq!(failure_message(&mut gw), (401, message.to_string()));
    }
}
