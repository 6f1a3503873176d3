//! The oracle of fuzz target `request`: the whole core flow — `RuleSet::select`, `auth::on_request`, then
//! `auth::on_response` with an arbitrary token-server answer — on arbitrary headers and properties.
//!
//! Input: byte 1 picks a configuration, bytes 2–3 the answer status, byte 4 flags (bit 0 reset),
//! then lines `name:value` (headers) or `@name=value` (stream properties) up to an empty line,
//! then the answer body. Invariants: only ignored paths, the anonymous token or an allowing
//! answer let a request through with a uid, and then with exactly one uid header; refusals are
//! JSON; the auth call body is `{"token": <the token>}`.

use crate::harness::{check_decision, FuzzRequest};
use easy_jwt::core::auth::{self, AuthResponse, Decision, Step};
use easy_jwt::core::config::Config;
use easy_jwt::core::config::FAIL_OPEN_HEADER;
use easy_jwt::core::route_rules::RuleSet;
use easy_jwt::core::stats::Stat;
use easy_jwt::core::target::Target;

const CONFIGS: [&str; 4] = [
    include_str!("../../../../deploy/plugin-config.json"),
    r#"{"tokenServerCluster":"auth","tokenFromQuery":"access_token","tokenFromCookie":"session",
        "stripToken":true,"failOpen":true,"authResponseHeaders":{"role":"x-role"},
        "ignoreUrls":["/v1/*/status","/"],"anonymousToken":"anon","anonymousUID":7}"#,
    r#"{"responseErrorStatusCode":403,"_rules_":[
        {"_match_route_":["ns/a"],"tokenServerFQDN":"a.dns","tokenServerPort":80,"uidHeaderName":"x-a"},
        {"_match_domain_":["*.example.com"],"_match_service_":["svc.dns:8080"],
         "tokenServerCluster":"b","ignoreUrls":["/public/*"]}]}"#,
    r#"{"tokenServerCluster":"c","tokenFromHeaderName":"x-token","tokenFromHeaderPrefix":"",
        "responseErrorBody":"{\"error\":{\"text\":\"%s\"}}","tokenServerFailureStatusCode":599}"#,
];

thread_local! {
    /// `RuleSet` holds `Rc`s: one compiled copy per fuzzing thread.
    static RULE_SETS: Vec<RuleSet> = CONFIGS
        .iter()
        .map(|json| RuleSet::parse(json.as_bytes()).expect("valid").rules)
        .collect();
}

pub fn check(data: &[u8]) {
    let [choice, hi, lo, flags, rest @ ..] = data else {
        return;
    };
    RULE_SETS.with(|sets| {
        if let Some(rules) = sets.get(usize::from(*choice) % CONFIGS.len()) {
            one_request(rules, u16::from_be_bytes([*hi, *lo]), *flags, rest);
        }
    });
}

fn one_request(rules: &RuleSet, status: u16, flags: u8, rest: &[u8]) {
    let text = String::from_utf8_lossy(rest);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let request = parse_request(head);
    let Some(config) = rules.select(&request) else {
        assert!(!rules.has_global());
        return;
    };
    let status = (flags & 1 == 0).then_some(status);
    let answer = AuthResponse {
        status,
        body: body.as_bytes(),
    };
    run(config, request, answer);
}

fn parse_request(head: &str) -> FuzzRequest {
    let mut request = FuzzRequest::default();
    for line in head.split('\n') {
        if let Some(property) = line.strip_prefix('@') {
            let (name, value) = property.split_once('=').unwrap_or((property, ""));
            request.properties.push((name.into(), value.into()));
        } else if let Some((name, value)) = line.split_once(':').filter(|(n, _)| !n.is_empty()) {
            request.add(name, value);
        } else if let Some(pseudo) = line.strip_prefix(':').and_then(|l| l.split_once(':')) {
            request.add(&format!(":{}", pseudo.0), pseudo.1);
        }
    }
    request
}

fn run(config: &Config, mut request: FuzzRequest, answer: AuthResponse<'_>) {
    let raw = easy_jwt::core::request::RequestView::header(&request, ":path").unwrap_or_default();
    let path = Target::parse(raw);
    let token = config.sources.extract(&request, &path);
    let decision = match auth::on_request(config, &request) {
        Step::Decided(decision) => {
            match &decision {
                Decision::Continue {
                    stat: Stat::Ignored,
                    ..
                } => {
                    assert!(config.ignore.ignores(&path));
                }
                Decision::Continue {
                    stat: Stat::Anonymous,
                    ..
                } => {
                    let token = token.expect("anonymous needs a token").token;
                    assert_eq!(config.anonymous_token.as_deref(), Some(&*token));
                }
                Decision::Reply {
                    stat: Stat::TokenMissing,
                    reply,
                } => {
                    assert!(token.is_err());
                    assert_eq!(reply.status, config.deny_status);
                }
                other => panic!("unexpected decision before a call: {other:?}"),
            }
            decision
        }
        Step::Call(pending) => {
            assert!(!config.ignore.ignores(&path));
            let found = token.expect("a call needs a token");
            assert_eq!(found.token, pending.token);
            let body = auth::call_body(&pending.token);
            let sent: serde_json::Value = serde_json::from_slice(&body).expect("JSON call");
            assert_eq!(sent, serde_json::json!({ "token": found.token }));
            auth::on_response(config, pending, answer)
        }
    };
    check_decision(config, &decision, true);
    let Decision::Continue { edits, stat } = decision else {
        return;
    };
    request.apply(&edits);
    let uids = request.all(&config.uid_header);
    let markers = request.all(FAIL_OPEN_HEADER);
    if stat == Stat::FailOpen {
        assert!(uids.is_empty() && markers == ["true"], "{request:?}");
    } else {
        assert_eq!(uids.len(), 1, "{request:?}");
        assert!(uids
            .iter()
            .all(|uid| uid.bytes().all(|b| b.is_ascii_digit())));
        assert!(markers.is_empty());
    }
}
