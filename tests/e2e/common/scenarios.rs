//! One table of request scenarios, run in every pinned Envoy (`tests/e2e/envoy.rs`): the driver turns
//! what happened into an [`Observed`] and [`check`]s it against the scenario's [`Expect`].
//!
//! The world it builds: one listener per [`Site`], i.e. per plugin configuration; the [`ROUTES`]
//! of every listener; the mock token server
//! ([`MOCK_CLUSTER`], behaviour chosen by the token, see `tests/testbed/src/mock.rs`), the
//! reference token server ([`TOKEN_CLUSTER`], real HS256 JWTs) and the echo upstream.

use easy_jwt_testbed::mock::MockTokenServer;
use easy_jwt_testbed::token_server;
use serde_json::{json, Value};

/// Higress-style cluster of the mock token server.
pub const MOCK_CLUSTER: &str = "outbound|9091||mock-token-server.dns";
/// Higress-style cluster of the reference token server (`tokenServerFQDN` + `tokenServerPort`).
pub const TOKEN_CLUSTER: &str = super::CLUSTER;
/// The plain upstream cluster (the echo server).
pub const ECHO_CLUSTER: &str = "echo";
/// The same echo server under a Higress service name, for `_match_service_`.
pub const SERVICE_CLUSTER: &str = "outbound|3000||echo.dns";
/// A cluster whose only endpoint refuses connections.
pub const CLOSED_CLUSTER: &str = "outbound|1||closed.dns";
/// A cluster name no gateway defines.
pub const MISSING_CLUSTER: &str = "outbound|9||missing.dns";
/// Secret the reference token server signs with.
pub const SECRET: &str = "scenario-secret";

/// A route of every listener: requests whose path starts with `prefix` get route name `name`
/// and go to `cluster` (first match wins, as in Envoy's route table).
pub struct Route {
    pub name: &'static str,
    pub prefix: &'static str,
    pub cluster: &'static str,
}

pub const ROUTES: [Route; 3] = [
    Route {
        name: "svc-route",
        prefix: "/svc/",
        cluster: SERVICE_CLUSTER,
    },
    Route {
        name: "higress-course/protected",
        prefix: "/protected/",
        cluster: ECHO_CLUSTER,
    },
    Route {
        name: "echo-route",
        prefix: "/",
        cluster: ECHO_CLUSTER,
    },
];

/// The route Envoy picks for `path`.
pub fn route_for(path: &str) -> &'static Route {
    ROUTES
        .iter()
        .find(|route| path.starts_with(route.prefix))
        .unwrap_or(&ROUTES[2])
}

/// One plugin configuration: a listener in Envoy.
pub struct Site {
    pub name: &'static str,
    pub config: Value,
}

/// The configuration of `deploy/plugin-config.json` against the mock token server, without
/// cache (every scenario is one call), with `extra` keys merged over it.
pub fn base_config(extra: Value) -> Value {
    let mut config: Value =
        serde_json::from_str(include_str!("../../../deploy/plugin-config.json")).unwrap();
    let object = config.as_object_mut().unwrap();
    object.remove("tokenServerFQDN");
    object.remove("tokenServerPort");
    object.insert("tokenServerCluster".into(), json!(MOCK_CLUSTER));
    object.insert("cacheTtlSeconds".into(), json!(0));
    object.insert("tokenServerTimeoutMs".into(), json!(1000));
    for (key, value) in extra.as_object().unwrap() {
        object.insert(key.clone(), value.clone());
    }
    config
}

pub fn sites() -> Vec<Site> {
    let rule = |key: &str, value: &str, status: u16, tag: &str| {
        json!({
            key: [value],
            "tokenServerCluster": MOCK_CLUSTER,
            "responseErrorStatusCode": status,
            "responseErrorBody": format!("{{\"rule\":\"{tag}\",\"message\":\"%s\"}}"),
        })
    };
    vec![
        Site {
            name: "main",
            config: base_config(json!({})),
        },
        Site {
            name: "failopen",
            config: base_config(json!({"failOpen": true})),
        },
        Site {
            name: "sources",
            config: base_config(json!({
                "tokenFromQuery": "access_token",
                "tokenFromCookie": "session",
                "stripToken": true,
            })),
        },
        Site {
            // No global token server: the global keys are defaults for the rules, and a request
            // no rule matches passes untouched.
            name: "rules",
            config: json!({
                "cacheTtlSeconds": 0,
                "_rules_": [
                    rule("_match_route_", "higress-course/protected", 403, "route"),
                    rule("_match_domain_", "*.example.org", 401, "domain"),
                    rule("_match_service_", "echo.dns:3000", 451, "service"),
                ],
            }),
        },
        Site {
            name: "reference",
            config: json!({
                "tokenServerFQDN": "token-server.dns",
                "tokenServerPort": 9090,
                "cacheTtlSeconds": 0,
            }),
        },
        Site {
            name: "missing",
            config: base_config(json!({"tokenServerCluster": MISSING_CLUSTER})),
        },
        Site {
            name: "closed",
            config: base_config(json!({"tokenServerCluster": CLOSED_CLUSTER})),
        },
    ]
}

/// What a scenario must produce.
#[derive(Debug, Clone)]
pub enum Expect {
    /// The request reaches the upstream.
    Upstream {
        /// Every `x-auth-user` value the upstream sees (client-sent copies must be gone).
        uid: &'static [&'static str],
        /// The `:path` the upstream sees, when it matters (token stripping).
        path: Option<&'static str>,
        /// Headers that must reach the upstream with exactly these values.
        headers: &'static [(&'static str, &'static str)],
        /// Headers that must not reach the upstream.
        absent: &'static [&'static str],
    },
    /// The plugin answers locally: this status and this JSON body, `content-type:
    /// application/json`.
    Reply { status: u16, body: Value },
}

/// Shorthand for the most common expectation: upstream with one uid.
pub fn upstream(uid: &'static [&'static str]) -> Expect {
    Expect::Upstream {
        uid,
        path: None,
        headers: &[],
        absent: &[],
    }
}

/// Shorthand for an error reply with the default body.
pub fn reply(status: u16, message: &str) -> Expect {
    Expect::Reply {
        status,
        body: json!({ "message": message }),
    }
}

/// Which token the scenario sends, so the drivers can count the token server's calls for it.
#[derive(Debug, Clone)]
pub enum Token {
    /// A literal token (the mock server's behaviour is chosen by it).
    Literal(&'static str),
    /// A JWT from the reference token server for this uid.
    Valid(i64),
    /// A JWT whose `exp` passed a minute ago.
    Expired(i64),
    /// A JWT signed with another secret.
    Forged(i64),
}

/// Where the scenario puts its token.
#[derive(Debug, Clone, Copy)]
pub enum Carrier {
    /// `Authorization: Bearer <token>`.
    Bearer,
    /// The query parameter `access_token` (appended to the path).
    Query,
    /// The cookie `session` (with another cookie around it).
    Cookie,
}

/// One request and what it must produce.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub site: &'static str,
    pub path: &'static str,
    /// Headers sent besides the token (lowercase names).
    pub headers: Vec<(&'static str, &'static str)>,
    pub token: Option<(Token, Carrier)>,
    pub expect: Expect,
    /// Calls the token server must receive for this request's token.
    pub calls: usize,
    /// The plugin counter this request increments (`wasmcustom.easy_jwt.<name>` in Envoy).
    pub counter: Option<&'static str>,
}

impl Scenario {
    fn new(name: &'static str, site: &'static str, path: &'static str, expect: Expect) -> Self {
        Scenario {
            name,
            site,
            path,
            headers: Vec::new(),
            token: None,
            expect,
            calls: 0,
            counter: None,
        }
    }

    fn bearer(mut self, token: &'static str) -> Self {
        self.token = Some((Token::Literal(token), Carrier::Bearer));
        self
    }

    fn token(mut self, token: Token, carrier: Carrier) -> Self {
        self.token = Some((token, carrier));
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.push((name, value));
        self
    }

    fn calls(mut self, calls: usize) -> Self {
        self.calls = calls;
        self
    }

    fn counts(mut self, counter: &'static str) -> Self {
        self.counter = Some(counter);
        self
    }
}

/// The table: every row of the README's request table, failures, fail-open, token sources and
/// stripping, and `_rules_` by route, domain and service.
pub fn table() -> Vec<Scenario> {
    use Carrier::{Cookie, Query};
    let s = Scenario::new;
    vec![
        // Ignored paths, after normalisation; what only looks ignored must authenticate.
        s(
            "ignored path",
            "main",
            "/public/index.html",
            upstream(&["0"]),
        )
        .counts("ignored"),
        s(
            "ignored exact path with query",
            "main",
            "/healthz?probe=1",
            upstream(&["0"]),
        )
        .counts("ignored"),
        s(
            "ignored path, client uid replaced",
            "main",
            "/public/a/../b.css",
            upstream(&["0"]),
        )
        .header("x-auth-user", "1")
        .counts("ignored"),
        s(
            "dot-dot out of an ignored prefix",
            "main",
            "/public/../admin",
            reply(401, "missing token"),
        )
        .counts("token_missing"),
        s(
            "encoded dot-dot",
            "main",
            "/public/%2e%2e/admin",
            reply(401, "missing token"),
        )
        .counts("token_missing"),
        s(
            "dot-dot with ;params",
            "main",
            "/public/..%3B/admin",
            reply(401, "missing token"),
        )
        .counts("token_missing"),
        s(
            "encoded slash",
            "main",
            "/public%2F..%2Fadmin",
            reply(401, "missing token"),
        )
        .counts("token_missing"),
        // Tokens the plugin refuses without a call.
        s(
            "missing token",
            "main",
            "/hello",
            reply(401, "missing token"),
        )
        .counts("token_missing"),
        s(
            "wrong scheme",
            "main",
            "/hello",
            reply(401, "invalid authorization scheme"),
        )
        .header("authorization", "Basic dXNlcjpwYXNz")
        .counts("token_missing"),
        s("anonymous token", "main", "/hello", upstream(&["0"]))
            .bearer("AnonymousToken")
            .header("x-auth-user", "1")
            .counts("anonymous"),
        // The token server decides.
        s(
            "valid token, client uid replaced",
            "main",
            "/hello",
            upstream(&["42"]),
        )
        .bearer("uid-42-valid")
        .header("x-auth-user", "1")
        .calls(1)
        .counts("allowed"),
        s(
            "uid as a numeric string",
            "main",
            "/hello",
            upstream(&["43"]),
        )
        .bearer("uidstr-43-valid")
        .calls(1)
        .counts("allowed"),
        s(
            "token server says 401",
            "main",
            "/hello",
            reply(401, "mock denied"),
        )
        .bearer("deny-401")
        .calls(1)
        .counts("denied"),
        s(
            "token server says 403",
            "main",
            "/hello",
            reply(401, "mock forbidden"),
        )
        .bearer("forbid-403")
        .calls(1)
        .counts("denied"),
        s(
            "token server fails with 500",
            "main",
            "/hello",
            reply(401, "mock exploded"),
        )
        .bearer("e500-fail")
        .calls(1)
        .counts("token_server_failure"),
        s(
            "token server fails with an empty 502",
            "main",
            "/hello",
            reply(401, "token server error"),
        )
        .bearer("e502-fail")
        .calls(1)
        .counts("token_server_failure"),
        s(
            "token server answers garbage",
            "main",
            "/hello",
            reply(401, "invalid token server response"),
        )
        .bearer("garbage-fail")
        .calls(1)
        .counts("token_server_failure"),
        s(
            "token server answers 200 without uid",
            "main",
            "/hello",
            reply(401, "invalid token server response"),
        )
        .bearer("nouid-fail")
        .calls(1)
        .counts("token_server_failure"),
        s(
            "token server answer over 64 KiB",
            "main",
            "/hello",
            reply(401, "invalid token server response"),
        )
        .bearer("big-fail")
        .calls(1)
        .counts("token_server_failure"),
        s(
            "token server resets the connection",
            "main",
            "/hello",
            reply(401, "token server unavailable"),
        )
        .bearer("reset-fail")
        .calls(1)
        .counts("token_server_failure"),
        s(
            "token server never answers",
            "main",
            "/hello",
            reply(401, "token server timeout"),
        )
        .bearer("hang-fail")
        .calls(1)
        .counts("token_server_failure"),
        s(
            "token server cluster refuses connections",
            "closed",
            "/hello",
            reply(401, "token server unavailable"),
        )
        .bearer("uid-1-closed")
        .counts("token_server_failure"),
        s(
            "token server cluster does not exist",
            "missing",
            "/hello",
            reply(401, "token server call failed"),
        )
        .bearer("uid-1-missing")
        .counts("token_server_failure"),
        // Fail-open lets failures through without a uid, never refusals.
        s(
            "fail-open on a 500",
            "failopen",
            "/hello",
            Expect::Upstream {
                uid: &[],
                path: None,
                headers: &[("x-envoy-auth-failure-mode-allowed", "true")],
                absent: &[],
            },
        )
        .bearer("e500-failopen")
        .header("x-auth-user", "1")
        .calls(1)
        .counts("fail_open"),
        s(
            "fail-open never lets a refusal through",
            "failopen",
            "/hello",
            reply(401, "mock denied"),
        )
        .bearer("deny-failopen")
        .calls(1)
        .counts("denied"),
        s(
            "fail-open marker is not trusted from the client",
            "failopen",
            "/hello",
            Expect::Upstream {
                uid: &["44"],
                path: None,
                headers: &[],
                absent: &["x-envoy-auth-failure-mode-allowed"],
            },
        )
        .bearer("uid-44-failopen")
        .header("x-envoy-auth-failure-mode-allowed", "true")
        .calls(1)
        .counts("allowed"),
        // Token sources and stripping.
        s(
            "header token stripped",
            "sources",
            "/hello",
            Expect::Upstream {
                uid: &["50"],
                path: Some("/hello"),
                headers: &[],
                absent: &["authorization"],
            },
        )
        .bearer("uid-50-header")
        .calls(1)
        .counts("allowed"),
        s(
            "query token stripped",
            "sources",
            "/q?a=1",
            Expect::Upstream {
                uid: &["51"],
                path: Some("/q?a=1"),
                headers: &[],
                absent: &[],
            },
        )
        .token(Token::Literal("uid-51-query"), Query)
        .calls(1)
        .counts("allowed"),
        s(
            "cookie token stripped",
            "sources",
            "/c",
            Expect::Upstream {
                uid: &["52"],
                path: None,
                headers: &[("cookie", "theme=dark")],
                absent: &[],
            },
        )
        .token(Token::Literal("uid-52-cookie"), Cookie)
        .calls(1)
        .counts("allowed"),
        // `_rules_` by route, domain and service; unmatched requests pass untouched.
        s(
            "route rule requires a token",
            "rules",
            "/protected/x",
            Expect::Reply {
                status: 403,
                body: json!({"rule": "route", "message": "missing token"}),
            },
        )
        .counts("token_missing"),
        s(
            "route rule with a valid token",
            "rules",
            "/protected/x",
            upstream(&["45"]),
        )
        .bearer("uid-45-route")
        .calls(1)
        .counts("allowed"),
        s(
            "domain rule requires a token",
            "rules",
            "/d",
            Expect::Reply {
                status: 401,
                body: json!({"rule": "domain", "message": "missing token"}),
            },
        )
        .header("host", "api.example.org")
        .counts("token_missing"),
        s(
            "service rule requires a token",
            "rules",
            "/svc/x",
            Expect::Reply {
                status: 451,
                body: json!({"rule": "service", "message": "missing token"}),
            },
        )
        .counts("token_missing"),
        s(
            "no rule matches: untouched",
            "rules",
            "/open",
            upstream(&["1"]),
        )
        .header("x-auth-user", "1"),
        // The reference token server: real JWTs.
        s("valid JWT", "reference", "/hello", upstream(&["100"]))
            .token(Token::Valid(100), Carrier::Bearer)
            .counts("allowed"),
        s(
            "expired JWT",
            "reference",
            "/hello",
            reply(401, "token is expired"),
        )
        .token(Token::Expired(100), Carrier::Bearer)
        .counts("denied"),
        s(
            "forged JWT",
            "reference",
            "/hello",
            reply(401, "token signature is invalid"),
        )
        .token(Token::Forged(100), Carrier::Bearer)
        .counts("denied"),
    ]
}

/// The request a scenario sends: path (with a query token appended) and headers.
pub fn request_of(scenario: &Scenario, token: Option<&str>) -> (String, Vec<(String, String)>) {
    let mut path = scenario.path.to_string();
    let mut headers: Vec<(String, String)> = scenario
        .headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    if let (Some((_, carrier)), Some(token)) = (&scenario.token, token) {
        match carrier {
            Carrier::Bearer => headers.push(("authorization".into(), format!("Bearer {token}"))),
            Carrier::Query => {
                let separator = if path.contains('?') { '&' } else { '?' };
                path = format!("{path}{separator}access_token={token}");
            }
            Carrier::Cookie => {
                headers.push(("cookie".into(), format!("session={token}; theme=dark")));
            }
        }
    }
    (path, headers)
}

/// The token a scenario sends, minted for the reference token server where needed.
pub fn token_of(scenario: &Scenario) -> Option<String> {
    let now = token_server::now_unix();
    scenario.token.as_ref().map(|(token, _)| match token {
        Token::Literal(literal) => literal.to_string(),
        Token::Valid(uid) => token_server::mint(SECRET, *uid, now + 3600),
        Token::Expired(uid) => token_server::mint(SECRET, *uid, now - 60),
        Token::Forged(uid) => token_server::mint("not-the-secret", *uid, now + 3600),
    })
}

/// The plugin's outcome counters: each handled request lands in exactly one.
pub const OUTCOMES: [&str; 8] = [
    "allowed",
    "denied",
    "token_missing",
    "ignored",
    "anonymous",
    "token_server_failure",
    "fail_open",
    "internal_error",
];

/// The mock token server's calls for the scenario's token, if it sends a mock token (the
/// reference token server does not count).
pub fn mock_calls(
    scenario: &Scenario,
    token: Option<&str>,
    mock: &MockTokenServer,
) -> Option<usize> {
    match (&scenario.token, token) {
        (Some((Token::Literal(_), _)), Some(token)) => Some(mock.calls_for(token)),
        _ => None,
    }
}

/// Checks what a run changed besides the answer: the token server's calls (`calls`: before and
/// after, for mock tokens) and the outcome counters ([`OUTCOMES`] before and after).
pub fn check_effects(
    scenario: &Scenario,
    calls: (Option<usize>, Option<usize>),
    before: &[i64],
    after: &[i64],
) -> Result<(), String> {
    if let (Some(before), Some(after)) = calls {
        if after - before != scenario.calls {
            return Err(format!(
                "{} token-server calls, want {}",
                after - before,
                scenario.calls
            ));
        }
    }
    let counted: Vec<&str> = OUTCOMES
        .iter()
        .zip(before.iter().zip(after))
        .filter(|(_, (before, after))| before != after)
        .map(|(name, _)| *name)
        .collect();
    let want: Vec<&str> = scenario.counter.into_iter().collect();
    if counted != want {
        return Err(format!("counted {counted:?}, want {want:?}"));
    }
    Ok(())
}

/// What a driver saw.
#[derive(Debug, Clone)]
pub enum Observed {
    /// The upstream received the request with this path and these headers.
    Upstream {
        path: String,
        headers: Vec<(String, String)>,
    },
    /// A local reply.
    Reply {
        status: u16,
        content_type: Option<String>,
        body: Vec<u8>,
    },
}

/// Compares what a driver saw with what the scenario expects.
pub fn check(scenario: &Scenario, observed: &Observed) -> Result<(), String> {
    match (&scenario.expect, observed) {
        (
            Expect::Upstream {
                uid,
                path,
                headers: wanted,
                absent,
            },
            Observed::Upstream {
                path: seen_path,
                headers,
            },
        ) => {
            let values = |name: &str| -> Vec<&str> {
                headers
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())
                    .collect()
            };
            if values("x-auth-user") != *uid {
                return Err(format!(
                    "x-auth-user {:?}, want {uid:?}",
                    values("x-auth-user")
                ));
            }
            if let Some(path) = path {
                if seen_path != path {
                    return Err(format!("upstream path {seen_path:?}, want {path:?}"));
                }
            }
            for (name, value) in *wanted {
                if values(name) != [*value] {
                    return Err(format!("{name}: {:?}, want [{value:?}]", values(name)));
                }
            }
            for name in *absent {
                if !values(name).is_empty() {
                    return Err(format!("{name} reached the upstream: {:?}", values(name)));
                }
            }
            Ok(())
        }
        (
            Expect::Reply { status, body },
            Observed::Reply {
                status: seen,
                content_type,
                body: seen_body,
            },
        ) => {
            let parsed: Option<Value> = serde_json::from_slice(seen_body).ok();
            if seen != status || parsed.as_ref() != Some(body) {
                return Err(format!(
                    "reply {seen} {:?}, want {status} {body}",
                    String::from_utf8_lossy(seen_body)
                ));
            }
            if content_type.as_deref() != Some("application/json") {
                return Err(format!("reply content-type {content_type:?}"));
            }
            Ok(())
        }
        (expect, observed) => Err(format!("got {observed:?}, want {expect:?}")),
    }
}
