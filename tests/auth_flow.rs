//! The auth flow of the real artifact against the real token server: ignore paths, token
//! extraction, anonymous token, valid / expired / forged tokens, header replacement.

mod common;

use common::*;
use serde_json::json;

fn gateway(server: &TokenServer) -> Gateway {
    Gateway::with_token_server(&config(json!({"cacheTtlSeconds": 0})), server)
}

#[test]
fn it_ignores_exact_and_prefix_paths_with_the_anonymous_uid() {
    let server = TokenServer::start();
    let mut gw = gateway(&server);
    for path in [
        "/healthz",
        "/healthz?probe=1",
        "/public",
        "/public/",
        "/public/css/site.css",
        "//public//a",
        "/%70ublic/a",
        "/public/a/../b",
    ] {
        let outcome = gw.send(Req::get(path).header("x-auth-user", "999"));
        assert_eq!(outcome.uid(), "0", "{path}");
    }
    assert!(gw.calls.is_empty(), "ignored paths make no call");
    assert_eq!(gw.counter("ignored"), 8);
}

#[test]
fn it_does_not_ignore_traversal_or_encoded_escapes() {
    let server = TokenServer::start();
    let mut gw = gateway(&server);
    for path in [
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E%2Fadmin",
        "/public%2f..%2fadmin",
        "/public/..%5cadmin",
        "/public/..;/admin",
        "/public/%252e%252e/admin",
        "/public/../../etc/passwd",
        "/healthz/",
        "/healthzz",
        "/publicity",
        "/api/x?next=/public/a",
    ] {
        let (status, body) = gw.send(Req::get(path)).error();
        assert_eq!(
            (status, body["message"].as_str()),
            (401, Some("missing token")),
            "{path}"
        );
    }
    assert_eq!(gw.counter("token_missing"), 12);
    assert_eq!(gw.counter("ignored"), 0);
}

#[test]
fn it_refuses_missing_wrong_scheme_and_empty_tokens_without_a_call() {
    let server = TokenServer::start();
    let mut gw = gateway(&server);
    let cases = [
        (Req::get("/api"), "missing token"),
        (
            Req::get("/api").header("authorization", "Basic dXNlcjpwYXNz"),
            "invalid authorization scheme",
        ),
        (
            Req::get("/api").header("authorization", "Bearer"),
            "empty token",
        ),
        (
            Req::get("/api").header("authorization", "Bearer    "),
            "empty token",
        ),
        (
            Req::get("/api").header("authorization", ""),
            "invalid authorization scheme",
        ),
    ];
    for (req, message) in cases {
        let (status, body) = gw.send(req).error();
        assert_eq!(status, 401);
        assert_eq!(body, json!({ "message": message }));
    }
    assert!(gw.calls.is_empty());
}

#[test]
fn it_maps_the_anonymous_token_without_a_call() {
    let server = TokenServer::start();
    let mut gw = gateway(&server);
    let outcome = gw.send(
        Req::get("/api")
            .bearer("AnonymousToken")
            .header("x-auth-user", "7"),
    );
    assert_eq!(outcome.uid(), "0");
    assert!(gw.calls.is_empty());
    assert_eq!(gw.counter("anonymous"), 1);
}

#[test]
fn it_sets_the_uid_of_a_valid_token_exactly_once() {
    let server = TokenServer::start();
    let token = server.create(100);
    let mut gw = gateway(&server);
    let outcome = gw.send(
        Req::get("/api/orders?x=1")
            .header("x-auth-user", "1")
            .header("X-Auth-User", "2")
            .bearer(&token),
    );
    assert_eq!(outcome.uid(), "100");
    assert_eq!(
        outcome.values("authorization"),
        vec![format!("Bearer {token}")]
    );
    // The call Envoy would send.
    let call = &gw.calls[0];
    assert_eq!(call.cluster, CLUSTER);
    let header = |name: &str| {
        call.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header(":method"), Some("POST"));
    assert_eq!(header(":path"), Some("/api/token/auth"));
    assert_eq!(header(":authority"), Some("token-server.dns"));
    assert_eq!(header("content-type"), Some("application/json"));
    assert_eq!(call.timeout_ms, 2000);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&call.body).unwrap(),
        json!({ "token": token })
    );
    assert_eq!(gw.counter("allowed"), 1);
}

#[test]
fn it_accepts_any_case_of_the_scheme_and_surrounding_spaces() {
    let server = TokenServer::start();
    let token = server.create(5);
    let mut gw = gateway(&server);
    for value in [
        format!("bearer {token}"),
        format!("BEARER  {token}  "),
        format!("  Bearer\t{token}"),
    ] {
        assert_eq!(
            gw.send(Req::get("/api").header("authorization", &value))
                .uid(),
            "5",
            "{value}"
        );
    }
}

#[test]
fn it_refuses_expired_and_forged_tokens_with_the_server_message() {
    let server = TokenServer::start();
    let mut gw = gateway(&server);
    let (status, body) = gw.send(Req::get("/api").bearer(&expired_token(1))).error();
    assert_eq!(
        (status, body),
        (401, json!({"message": "token is expired"}))
    );
    let (status, body) = gw.send(Req::get("/api").bearer(&forged_token(1))).error();
    assert_eq!(
        (status, body),
        (401, json!({"message": "token signature is invalid"}))
    );
    let (status, body) = gw.send(Req::get("/api").bearer("not-a-jwt")).error();
    assert_eq!(
        (status, body),
        (401, json!({"message": "token is malformed"}))
    );
    assert_eq!(gw.counter("denied"), 3);
}

#[test]
fn it_escapes_the_message_into_a_custom_body_template() {
    let mut gw = Gateway::start(
        &config(
            json!({"responseErrorStatusCode": 403, "responseErrorBody": "{\"code\":4031,\"error\":\"%s\"}"}),
        ),
        Answerer::Fixed(answer(401, r#"{"message":"bad \"token\"\n<script>"}"#)),
    );
    let (status, body) = gw.send(Req::get("/api").bearer("t")).error();
    assert_eq!(status, 403);
    assert_eq!(
        body,
        json!({"code": 4031, "error": "bad \"token\"\n<script>"})
    );
}

#[test]
fn it_takes_tokens_from_query_and_cookie_and_strips_them() {
    let server = TokenServer::start();
    let token = server.create(42);
    let cfg = config(
        json!({"tokenFromQuery": "access_token", "tokenFromCookie": "session", "stripToken": true, "cacheTtlSeconds": 0}),
    );
    let mut gw = Gateway::with_token_server(&cfg, &server);

    let outcome = gw.send(Req::get(&format!("/api?a=1&access_token={token}&b=2")));
    assert_eq!(outcome.uid(), "42");
    assert_eq!(outcome.values(":path"), vec!["/api?a=1&b=2".to_string()]);

    let outcome =
        gw.send(Req::get("/api").header("cookie", &format!("theme=dark; session={token}")));
    assert_eq!(outcome.uid(), "42");
    assert_eq!(outcome.values("cookie"), vec!["theme=dark".to_string()]);

    let outcome = gw.send(Req::get("/api").bearer(&token));
    assert_eq!(outcome.uid(), "42");
    assert!(
        outcome.values("authorization").is_empty(),
        "stripToken removes the header"
    );
}

#[test]
fn it_maps_response_fields_and_replaces_client_copies() {
    let mut gw = Gateway::start(
        &config(
            json!({"authResponseHeaders": {"role": "x-auth-role", "tenant": "x-tenant"}, "uidHeaderName": "x-user-id", "failOpen": true}),
        ),
        Answerer::Fixed(answer(200, r#"{"uid":"12","role":"admin"}"#)),
    );
    let outcome = gw.send(
        Req::get("/api")
            .bearer("t")
            .header("x-auth-role", "root")
            .header("x-tenant", "other")
            .header("x-envoy-auth-failure-mode-allowed", "true"),
    );
    assert_eq!(outcome.values("x-user-id"), vec!["12".to_string()]);
    assert_eq!(outcome.values("x-auth-role"), vec!["admin".to_string()]);
    assert!(outcome.values("x-tenant").is_empty());
    assert!(outcome
        .values("x-envoy-auth-failure-mode-allowed")
        .is_empty());
}

#[test]
fn it_never_logs_a_whole_token() {
    let server = TokenServer::start();
    let token = server.create(9);
    let mut gw = gateway(&server);
    gw.send(Req::get("/api").bearer(&token));
    gw.send(Req::get("/api").bearer(&forged_token(9)));
    let logs = gw.log_text();
    assert!(logs.contains("checking token"), "debug logs are on: {logs}");
    let secret_part = &token[20..];
    assert!(
        !logs.contains(secret_part),
        "a token leaked into the logs: {logs}"
    );
}

#[test]
fn it_formats_no_log_line_below_envoys_wasm_level() {
    use easy_jwt_host::vm::LogLevel;
    let server = TokenServer::start();
    let token = server.create(12);
    for (level, quiet) in [(LogLevel::Info, true), (LogLevel::Trace, false)] {
        let cfg = config(json!({"cacheTtlSeconds": 0}));
        let mut gw = Gateway::at_log_level(&cfg, http_answerer(server.addr()), level);
        assert_eq!(gw.send(Req::get("/api").bearer(&token)).uid(), "12");
        assert_eq!(gw.send(Req::get("/api")).error().0, 401);
        if quiet {
            assert_eq!(
                gw.vm.dropped_logs(),
                0,
                "debug lines were sent although Envoy drops them"
            );
        } else {
            assert!(
                gw.log_text().contains("checking token"),
                "{}",
                gw.log_text()
            );
        }
    }
}
