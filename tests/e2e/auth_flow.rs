//! The auth flow of the real artifact in Envoy against the real token server: ignore paths,
//! token extraction, anonymous token, valid / expired / forged tokens, header replacement, the
//! call the plugin makes, error bodies and what it logs.

use crate::common::*;
use easy_jwt_testbed::http::Request;
use serde_json::json;
use std::sync::OnceLock;

const RECORDER: &str = "outbound|9090||recorder.dns";
const TEMPLATE: &str = "outbound|80||template.fake";
const MAPPING: &str = "outbound|80||mapping.fake";

fn worlds() -> &'static [World] {
    static WORLDS: OnceLock<Vec<World>> = OnceLock::new();
    WORLDS.get_or_init(|| {
        start_worlds(
            sites,
            Setup {
                // The plugin's debug lines, for the log test.
                wasm_log_level: "debug",
                ..Setup::default()
            },
        )
    })
}

fn sites(backends: &mut Backends) -> Vec<Site> {
    backends.other_mock(RECORDER);
    backends.fake(
        TEMPLATE,
        FakeServer::respond(
            401,
            "application/json",
            br#"{"message":"bad \"token\"\n<script>"}"#,
        ),
    );
    backends.fake(
        MAPPING,
        FakeServer::respond(200, "application/json", br#"{"uid":"12","role":"admin"}"#),
    );
    vec![
        site("flow", config(json!({"cacheTtlSeconds": 0}))),
        site(
            "recorded",
            config(json!({"tokenServerFQDN": "recorder.dns", "cacheTtlSeconds": 0})),
        ),
        site(
            "template",
            calling(
                TEMPLATE,
                json!({"responseErrorStatusCode": 403, "responseErrorBody": "{\"code\":4031,\"error\":\"%s\"}"}),
            ),
        ),
        site(
            "sources",
            config(
                json!({"tokenFromQuery": "access_token", "tokenFromCookie": "session", "stripToken": true, "cacheTtlSeconds": 0}),
            ),
        ),
        site(
            "mapping",
            calling(
                MAPPING,
                json!({"authResponseHeaders": {"role": "x-auth-role", "tenant": "x-tenant"}, "uidHeaderName": "x-user-id", "failOpen": true}),
            ),
        ),
    ]
}

#[test]
fn it_ignores_exact_and_prefix_paths_with_the_anonymous_uid() {
    each_counting(worlds(), |world| {
        let before = world.counter("ignored");
        let calls = world.backends.mock.calls();
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
            let response = world.send("flow", &Request::get(path).header("x-auth-user", "999"));
            assert_eq!(uid(&response), "0", "{path}");
        }
        assert_eq!(
            world.backends.mock.calls(),
            calls,
            "ignored paths make no call"
        );
        assert_eq!(world.counter_reaching("ignored", before + 8), before + 8);
    });
}

#[test]
fn it_does_not_ignore_traversal_or_encoded_escapes() {
    each_counting(worlds(), |world| {
        let before = world.counters_of(&["token_missing", "ignored"]);
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
            let response = world.send("flow", &Request::get(path));
            assert_eq!(
                failure(&response),
                (401, "missing token".to_string()),
                "{path}"
            );
        }
        assert_eq!(
            world.counter_reaching("token_missing", before[0] + 12),
            before[0] + 12
        );
        assert_eq!(world.counter("ignored"), before[1]);
    });
}

#[test]
fn it_refuses_missing_wrong_scheme_and_empty_tokens_without_a_call() {
    // Alone: the recorder's total calls must not move.
    each_counting(worlds(), |world| {
        let recorder = world.mock_at(0);
        let calls = recorder.calls();
        let cases = [
            (Request::get("/api"), "missing token"),
            (
                Request::get("/api").header("authorization", "Basic dXNlcjpwYXNz"),
                "invalid authorization scheme",
            ),
            (
                Request::get("/api").header("authorization", "Bearer"),
                "empty token",
            ),
            (
                Request::get("/api").header("authorization", "Bearer    "),
                "empty token",
            ),
            (
                Request::get("/api").header("authorization", ""),
                "invalid authorization scheme",
            ),
        ];
        for (request, message) in cases {
            let (status, body) = error(&world.send("recorded", &request));
            assert_eq!(status, 401, "{request:?}");
            assert_eq!(body, json!({ "message": message }), "{request:?}");
        }
        assert_eq!(recorder.calls(), calls, "no call");
    });
}

#[test]
fn it_maps_the_anonymous_token_without_a_call() {
    each_counting(worlds(), |world| {
        let before = world.counter("anonymous");
        let calls = world.mock_at(0).calls();
        let response = world.send(
            "recorded",
            &Request::get("/api")
                .bearer("AnonymousToken")
                .header("x-auth-user", "7"),
        );
        assert_eq!(uid(&response), "0");
        assert_eq!(world.mock_at(0).calls(), calls);
        assert_eq!(world.counter_reaching("anonymous", before + 1), before + 1);
    });
}

#[test]
fn it_sets_the_uid_of_a_valid_token_exactly_once() {
    each(worlds(), |world| {
        let token = format!("uid-100-once-{}", world.version());
        let response = world.send(
            "recorded",
            &Request::get("/api/orders?x=1")
                .header("x-auth-user", "1")
                .header("X-Auth-User", "2")
                .bearer(&token),
        );
        assert_eq!(uid(&response), "100");
        assert_eq!(
            echoed(&response, "authorization"),
            [format!("Bearer {token}")]
        );
    });
}

#[test]
fn it_calls_the_token_server_with_a_json_post() {
    each(worlds(), |world| {
        let token = format!("uid-101-call-{}", world.version());
        assert_eq!(uid(&world.get("recorded", "/api", &token)), "101");
        let calls = world.mock_at(0).requests();
        let call = calls
            .iter()
            .find(|c| c.token().as_deref() == Some(token.as_str()))
            .unwrap_or_else(|| panic!("no call for {token}: {calls:?}"));
        assert_eq!(call.method, "POST");
        assert_eq!(call.path, "/api/token/auth");
        assert_eq!(call.header("host"), Some("recorder.dns"));
        assert_eq!(call.header("content-type"), Some("application/json"));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&call.body).unwrap(),
            json!({ "token": token })
        );
    });
}

#[test]
fn it_accepts_any_case_of_the_scheme_and_surrounding_spaces() {
    each(worlds(), |world| {
        let token = valid_token(5);
        for value in [
            format!("bearer {token}"),
            format!("BEARER  {token}  "),
            format!("  Bearer\t{token}"),
        ] {
            let response = world.send(
                "flow",
                &Request::get("/api").header("authorization", &value),
            );
            assert_eq!(uid(&response), "5", "{value}");
        }
    });
}

#[test]
fn it_refuses_expired_and_forged_tokens_with_the_server_message() {
    each_counting(worlds(), |world| {
        let before = world.counter("denied");
        let cases = [
            (expired_token(1), "token is expired"),
            (forged_token(1), "token signature is invalid"),
            ("not-a-jwt".to_string(), "token is malformed"),
        ];
        for (token, message) in cases {
            let (status, body) = error(&world.get("flow", "/api", &token));
            assert_eq!((status, body), (401, json!({ "message": message })));
        }
        assert_eq!(world.counter_reaching("denied", before + 3), before + 3);
    });
}

#[test]
fn it_escapes_the_message_into_a_custom_body_template() {
    each(worlds(), |world| {
        let (status, body) = error(&world.get("template", "/api", "t"));
        assert_eq!(status, 403);
        assert_eq!(
            body,
            json!({"code": 4031, "error": "bad \"token\"\n<script>"})
        );
    });
}

#[test]
fn it_takes_tokens_from_query_and_cookie_and_strips_them() {
    each(worlds(), |world| {
        let token = valid_token(42);
        let response = world.send(
            "sources",
            &Request::get(&format!("/api?a=1&access_token={token}&b=2")),
        );
        assert_eq!(uid(&response), "42");
        assert_eq!(echoed_path(&response), "/api?a=1&b=2");

        let response = world.send(
            "sources",
            &Request::get("/api").header("cookie", &format!("theme=dark; session={token}")),
        );
        assert_eq!(uid(&response), "42");
        assert_eq!(echoed(&response, "cookie"), ["theme=dark"]);

        let response = world.get("sources", "/api", &token);
        assert_eq!(uid(&response), "42");
        assert!(
            echoed(&response, "authorization").is_empty(),
            "stripToken removes the header"
        );
    });
}

#[test]
fn it_maps_response_fields_and_replaces_client_copies() {
    each(worlds(), |world| {
        let response = world.send(
            "mapping",
            &Request::get("/api")
                .bearer("t")
                .header("x-auth-role", "root")
                .header("x-tenant", "other")
                .header("x-envoy-auth-failure-mode-allowed", "true"),
        );
        assert_eq!(echoed(&response, "x-user-id"), ["12"]);
        assert_eq!(echoed(&response, "x-auth-role"), ["admin"]);
        assert!(echoed(&response, "x-tenant").is_empty());
        assert!(echoed(&response, "x-envoy-auth-failure-mode-allowed").is_empty());
    });
}

#[test]
fn it_never_logs_a_whole_token() {
    each(worlds(), |world| {
        let token = valid_token(9);
        assert_eq!(uid(&world.get("flow", "/api", &token)), "9");
        assert_eq!(world.get("flow", "/api", &forged_token(9)).status, 401);
        let secret_part = token[20..].to_string();
        assert!(
            world.eventually(|| world
                .plugin_log("flow")
                .iter()
                .any(|line| line.contains("checking token"))),
            "the plugin's debug lines are in Envoy's log"
        );
        let leaked: Vec<String> = world
            .plugin_log("flow")
            .into_iter()
            .filter(|line| line.contains(&secret_part))
            .collect();
        assert!(leaked.is_empty(), "a token leaked into the log: {leaked:?}");
    });
}
