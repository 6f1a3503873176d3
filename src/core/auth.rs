//! The auth decision flow, host-free: a request becomes a [`Decision`]; a token-server answer
//! becomes a [`Decision`]. The adapter only carries decisions out.
//!
//! ```text
//! request ──ignored path──────────────▶ Continue(uid = anonymousUID)          [ignored]
//!    │────no usable token─────────────▶ Reply(responseErrorStatusCode)       [token_missing]
//!    │────anonymous token─────────────▶ Continue(uid = anonymousUID)          [anonymous]
//!    └────otherwise───────────────────▶ Call ─ pause ─▶ on_response:
//!            200 + integer uid ───────▶ Continue(uid, mapped fields)          [allowed]
//!            401 / 403 ───────────────▶ Reply(responseErrorStatusCode, msg)   [denied]
//!            anything else / reset ───▶ Reply(tokenServerFailureStatusCode)   [token_server_failure]
//!                                       or, with failOpen, Continue(no uid, marker) [fail_open]
//! ```
//! Every `Continue` replaces the uid header and the mapped headers (and, with `failOpen`, the
//! fail-open marker), so a client-sent copy never reaches the upstream.

use crate::core::config::Config;
use crate::core::identity::Identity;
use crate::core::reply::Reply;
use crate::core::request::{HeaderEdit, RequestView};
use crate::core::stats::Stat;
use crate::core::strict;
use crate::core::target::Target;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;

/// The final word on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Forward the request after applying `edits`.
    Continue { edits: Vec<HeaderEdit>, stat: Stat },
    /// Answer locally; the request never goes upstream.
    Reply { reply: Reply, stat: Stat },
}

/// What to do with request headers: decide now, or ask the token server first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Decided(Decision),
    /// Ask the token server (unless the cache or a call in flight answers), pause, and decide
    /// with [`on_response`]. The call's body is [`call_body`], built only when it is sent.
    Call(Pending),
}

/// State of a paused request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    pub token: String,
    /// Edits that remove the token (when `stripToken`), applied if the request continues.
    pub strip: Vec<HeaderEdit>,
    /// Headers sent with the auth call besides the token (`forwardRequestContext`,
    /// `forwardHeaders`); empty unless configured, so the call is the Go original's.
    pub context: Vec<(String, String)>,
    /// What the answer depends on when context is forwarded: the token and the context, JSON
    /// encoded (unambiguous). `None`: the token alone. The key of the cache and of coalescing.
    subject: Option<String>,
}

/// The token and the forwarded context as one JSON array, `["token",[["name","value"],…]]`
/// (serde_json's layout of this tuple, as before: cache keys in shared data keep their meaning).
fn subject_of(token: &str, context: &[(String, String)]) -> String {
    // Serialising strings and arrays of strings cannot fail; the fallback is never taken.
    serde_json::to_string(&(token, context)).unwrap_or_default()
}

impl Pending {
    /// A request waiting for the answer about `token`, with the `context` its call forwards
    /// (`forwards`: the configuration forwards context, even when none was present).
    pub fn new(
        token: String,
        strip: Vec<HeaderEdit>,
        context: Vec<(String, String)>,
        forwards: bool,
    ) -> Pending {
        let subject = forwards.then(|| subject_of(&token, &context));
        Pending {
            token,
            strip,
            context,
            subject,
        }
    }

    /// The cache and coalescing key: a cached answer for one forwarded context never
    /// authorises another.
    pub fn subject(&self) -> &str {
        self.subject.as_deref().unwrap_or(&self.token)
    }
}

/// The token server's answer as the adapter read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthResponse<'a> {
    /// `:status`; `None` when the call failed without headers (reset).
    pub status: Option<u16>,
    pub body: &'a [u8],
}

/// The meaning of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed(Identity),
    Denied(String),
    Failed(String),
}

/// Decides what to do with a request, before any call.
pub fn on_request(config: &Config, request: &impl RequestView) -> Step {
    let raw_target = request.header(":path").unwrap_or_default();
    let target = Target::parse(raw_target);
    if config.ignore.ignores(&target) {
        return Step::Decided(anonymous(config, Stat::Ignored, Vec::new()));
    }
    let found = match config.sources.extract(request, &target) {
        Ok(found) => found,
        Err(error) => {
            let message = error.to_string();
            return Step::Decided(reply(
                config,
                config.deny_status,
                &message,
                Stat::TokenMissing,
            ));
        }
    };
    let strip = config.sources.strip_edits(found.source, request, &target);
    let is_anonymous = config
        .anonymous_token
        .as_deref()
        .is_some_and(|anonymous| anonymous == found.token);
    if is_anonymous {
        return Step::Decided(anonymous(config, Stat::Anonymous, strip));
    }
    let context = request_context(config, request);
    Step::Call(Pending::new(
        found.token.into_owned(),
        strip,
        context,
        config.forwards(),
    ))
}

/// Headers forwarded to the token server: the request's method, `:path` as received and
/// `:authority` (`forwardRequestContext`), then each `forwardHeaders` header present.
fn request_context(config: &Config, request: &impl RequestView) -> Vec<(String, String)> {
    if !config.forwards() {
        return Vec::new();
    }
    let mut context = Vec::new();
    if config.forward_context {
        for (name, from) in [
            ("x-original-method", ":method"),
            ("x-original-uri", ":path"),
            ("x-forwarded-host", ":authority"),
        ] {
            if let Some(value) = request.header(from) {
                context.push((name.to_string(), value.to_string()));
            }
        }
    }
    for name in &config.forward_headers {
        if let Some(value) = request.header(name) {
            context.push((name.clone(), value.to_string()));
        }
    }
    context
}

/// Decides what to do once the token server answered.
pub fn on_response(config: &Config, pending: Pending, response: AuthResponse) -> Decision {
    decide(config, judge(config, response), pending)
}

/// Turns a verdict into the decision for one paused request.
pub fn decide(config: &Config, verdict: Verdict, pending: Pending) -> Decision {
    match verdict {
        Verdict::Allowed(identity) => allow(config, &identity, pending.strip),
        Verdict::Denied(message) => reply(config, config.deny_status, &message, Stat::Denied),
        Verdict::Failed(message) => failure(config, &message, pending.strip),
    }
}

/// The call could not be dispatched (Envoy: unknown cluster, bad headers).
pub fn on_dispatch_error(config: &Config, pending: Pending) -> Decision {
    failure(config, "token server call failed", pending.strip)
}

/// An allowed request, for a uid known without a call (the auth cache).
pub fn allow(config: &Config, identity: &Identity, strip: Vec<HeaderEdit>) -> Decision {
    let uid: Arc<str> = Arc::from(identity.uid.as_str());
    let mut edits = identity_edits(config, Some(uid), &identity.fields, false);
    edits.extend(strip);
    Decision::Continue {
        edits,
        stat: Stat::Allowed,
    }
}

/// Whether an answer may be asked for again (`tokenServerRetries`): a connection failure or a
/// reset (Envoy's 503 or no answer at all) or a 502/503/504, from the token server or from Envoy
/// (a 504 is an attempt that ran out of time). Never a 200, a 401/403 or any other status: a
/// retry can only turn a failure into an answer, never a refusal into a pass.
pub fn retryable(response: AuthResponse) -> bool {
    matches!(response.status, None | Some(502..=504))
}

/// Classifies an answer: only 200 with an integer uid allows; 401/403 deny; the rest fail.
pub fn judge(config: &Config, response: AuthResponse) -> Verdict {
    let Some(status) = response.status else {
        return Verdict::Failed("token server connection reset".into());
    };
    // A member named twice, at any depth, makes the whole answer unreadable (fail closed).
    let fields = strict::object(response.body);
    let field = |name: &str| fields.as_ref().and_then(|map| map.get(name));
    match status {
        200 => match field("uid").and_then(parse_uid) {
            Some(uid) => Verdict::Allowed(Identity {
                uid,
                fields: config
                    .response_headers
                    .iter()
                    .map(|(name, _)| field(name).and_then(render_field))
                    .collect(),
            }),
            None => Verdict::Failed("invalid token server response".into()),
        },
        401 | 403 => {
            Verdict::Denied(message(field("message")).unwrap_or_else(|| "invalid token".into()))
        }
        _ => Verdict::Failed(
            message(field("message")).unwrap_or_else(|| failure_text(status).into()),
        ),
    }
}

fn failure_text(status: u16) -> &'static str {
    match status {
        504 => "token server timeout",
        503 => "token server unavailable",
        _ => "token server error",
    }
}

/// The auth call's body, `{"token":"…"}`, the token JSON-escaped by serde_json.
pub fn call_body(token: &str) -> Vec<u8> {
    #[derive(Serialize)]
    struct CallBody<'a> {
        token: &'a str,
    }
    // Serialising a string cannot fail; the fallback is never taken.
    serde_json::to_vec(&CallBody { token }).unwrap_or_default()
}

/// A uid is a non-negative integer that fits a `u64`: a JSON integer or a string of digits
/// (leading zeros allowed, `"0100"` is 100), written back as plain decimal. Fractions, exponents
/// (`1.0`, `1e2`), negative numbers and integers beyond `u64` are refused.
fn parse_uid(value: &Value) -> Option<String> {
    let number = match value {
        Value::Number(number) => number.as_u64()?,
        Value::String(digits)
            if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            digits.parse::<u64>().ok()?
        }
        _ => return None,
    };
    Some(number.to_string())
}

/// A mapped field as a header value: strings as they are, other JSON compact as serde_json
/// writes it (integers within `i64`/`u64` in decimal, other numbers as their `f64`: `1.50` →
/// `1.5`, `1e3` → `1000.0`, `1e30` → `1e+30`); `null`, absent, or values with control characters
/// (CR, LF, NUL…) give `None`: the header is removed.
fn render_field(value: &Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    (!text.chars().any(char::is_control)).then_some(text)
}

fn message(value: Option<&Value>) -> Option<String> {
    let text = value?.as_str()?;
    (!text.is_empty()).then(|| text.to_string())
}

fn anonymous(config: &Config, stat: Stat, strip: Vec<HeaderEdit>) -> Decision {
    let absent = vec![None; config.response_headers.len()];
    let uid = Arc::clone(&config.shared.anonymous_uid);
    let mut edits = identity_edits(config, Some(uid), &absent, false);
    edits.extend(strip);
    Decision::Continue { edits, stat }
}

fn failure(config: &Config, message: &str, strip: Vec<HeaderEdit>) -> Decision {
    if !config.fail_open {
        return reply(
            config,
            config.failure_status,
            message,
            Stat::TokenServerFailure,
        );
    }
    let absent = vec![None; config.response_headers.len()];
    let mut edits = identity_edits(config, None, &absent, true);
    edits.extend(strip);
    Decision::Continue {
        edits,
        stat: Stat::FailOpen,
    }
}

fn reply(config: &Config, status: u16, message: &str, stat: Stat) -> Decision {
    Decision::Reply {
        reply: Reply {
            status,
            body: config.error_body.render(message),
        },
        stat,
    }
}

/// Replaces (or removes) every header the plugin owns: uid, mapped fields, fail-open marker.
fn identity_edits(
    config: &Config,
    uid: Option<Arc<str>>,
    fields: &[Option<String>],
    fail_open: bool,
) -> Vec<HeaderEdit> {
    let names = &config.shared;
    let mut edits = Vec::with_capacity(2 + names.field_headers.len());
    edits.push(set_or_remove(&names.uid_header, uid));
    for (header, value) in names.field_headers.iter().zip(fields) {
        edits.push(set_or_remove(header, value.as_deref().map(Arc::from)));
    }
    // The marker only means something where failing open is possible; elsewhere the plugin
    // never sets it and leaves the header alone (one hostcall less per request).
    if config.fail_open {
        let marker = fail_open.then(|| Arc::clone(&names.marker));
        edits.push(set_or_remove(&names.fail_open_header, marker));
    }
    edits
}

fn set_or_remove(header: &Arc<str>, value: Option<Arc<str>>) -> HeaderEdit {
    match value {
        Some(value) => HeaderEdit::Set(Arc::clone(header), value),
        None => HeaderEdit::Remove(Arc::clone(header)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::config::{Fields, FAIL_OPEN_HEADER};
    use crate::core::request::fake::FakeRequest;
    use serde_json::{json, Value};

    fn status_only(status: Option<u16>) -> AuthResponse<'static> {
        AuthResponse { status, body: b"" }
    }

    #[test]
    fn only_failures_of_the_connection_or_the_gateway_are_retried() {
        for status in [None, Some(502), Some(503), Some(504)] {
            assert!(retryable(status_only(status)), "{status:?}");
        }
        for status in [200, 201, 204, 400, 401, 403, 404, 429, 500, 501, 505] {
            assert!(!retryable(status_only(Some(status))), "{status}");
        }
    }

    fn config(extra: Value) -> Config {
        let mut doc = json!({
            "tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090,
            "ignoreUrls": ["/health", "/public/*"], "anonymousToken": "AnonymousToken",
            "anonymousUID": 0
        });
        for (key, value) in extra.as_object().unwrap() {
            doc[key] = value.clone();
        }
        Config::parse(&Fields::global(doc.as_object().unwrap())).unwrap()
    }

    fn bearer(path: &str, token: &str) -> FakeRequest {
        FakeRequest::get(path).with("authorization", &format!("Bearer {token}"))
    }

    fn set(name: &str, value: &str) -> HeaderEdit {
        HeaderEdit::Set(name.into(), value.into())
    }

    fn remove(name: &str) -> HeaderEdit {
        HeaderEdit::Remove(name.into())
    }

    fn reply_of(decision: impl Into<Step>) -> (u16, Value, Stat) {
        match decision.into() {
            Step::Decided(Decision::Reply { reply, stat }) => (
                reply.status,
                serde_json::from_slice(&reply.body).unwrap(),
                stat,
            ),
            other => panic!("expected a reply, got {other:?}"),
        }
    }

    impl From<Decision> for Step {
        fn from(decision: Decision) -> Step {
            Step::Decided(decision)
        }
    }

    #[test]
    fn the_call_forwards_context_only_when_configured() {
        let request = FakeRequest::get("/orders?id=1")
            .with("authorization", "Bearer tok")
            .with("x-tenant", "acme");
        let call = |extra: Value| match on_request(&config(extra), &request) {
            Step::Call(pending) => pending,
            other => panic!("{other:?}"),
        };
        let plain = call(json!({}));
        assert!(plain.context.is_empty());
        assert_eq!(plain.subject(), "tok");
        let forwarded = call(
            json!({"forwardRequestContext": true, "forwardHeaders": ["X-Tenant", "x-absent"]}),
        );
        let names: Vec<&str> = forwarded.context.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-original-method",
                "x-original-uri",
                "x-forwarded-host",
                "x-tenant"
            ]
        );
        assert_eq!(forwarded.context[1].1, "/orders?id=1");
        assert_ne!(forwarded.subject(), "tok");
        let other_path = match on_request(
            &config(json!({"forwardRequestContext": true, "forwardHeaders": ["x-tenant"]})),
            &request.clone().with(":path", "/admin"),
        ) {
            Step::Call(pending) => pending,
            other => panic!("{other:?}"),
        };
        assert_ne!(other_path.subject(), forwarded.subject());
        // Headers only: a request without them still gets a subject of its own kind.
        let headers_only = call(json!({"forwardHeaders": ["x-absent"]}));
        assert!(headers_only.context.is_empty());
        assert_ne!(headers_only.subject(), "tok");
    }

    fn pending() -> Pending {
        Pending::new("t".into(), Vec::new(), Vec::new(), false)
    }

    fn answer(config: &Config, status: Option<u16>, body: &str) -> Decision {
        on_response(
            config,
            pending(),
            AuthResponse {
                status,
                body: body.as_bytes(),
            },
        )
    }

    #[test]
    fn ignored_paths_get_the_anonymous_uid_replaced() {
        let decision = on_request(
            &config(json!({})),
            &FakeRequest::get("/public/x?y=1").with("x-auth-user", "1"),
        );
        assert_eq!(
            decision,
            Step::Decided(Decision::Continue {
                edits: vec![set("x-auth-user", "0")],
                stat: Stat::Ignored
            })
        );
    }

    #[test]
    fn traversal_out_of_an_ignored_path_must_authenticate() {
        let decision = on_request(&config(json!({})), &FakeRequest::get("/public/../admin"));
        assert_eq!(reply_of(decision).2, Stat::TokenMissing);
    }

    #[test]
    fn missing_token_replies_without_a_call() {
        let (status, body, stat) =
            reply_of(on_request(&config(json!({})), &FakeRequest::get("/api")));
        assert_eq!((status, stat), (401, Stat::TokenMissing));
        assert_eq!(body, json!({"message": "missing token"}));
        let (_, body, _) = reply_of(on_request(
            &config(json!({})),
            &FakeRequest::get("/api").with("authorization", "Basic x"),
        ));
        assert_eq!(body, json!({"message": "invalid authorization scheme"}));
    }

    #[test]
    fn anonymous_token_needs_no_call() {
        let decision = on_request(
            &config(json!({"anonymousUID": 42})),
            &bearer("/api", "AnonymousToken"),
        );
        assert_eq!(
            decision,
            Step::Decided(Decision::Continue {
                edits: vec![set("x-auth-user", "42")],
                stat: Stat::Anonymous
            })
        );
    }

    #[test]
    fn other_tokens_are_sent_escaped() {
        let Step::Call(pending) = on_request(&config(json!({})), &bearer("/api", "a\"b\\c")) else {
            panic!("expected a call");
        };
        let body: Value = serde_json::from_slice(&call_body(&pending.token)).unwrap();
        assert_eq!(body, json!({"token": "a\"b\\c"}));
        assert_eq!(pending.token, "a\"b\\c");
        assert_eq!(
            call_body("t"),
            br#"{"token":"t"}"#,
            "the Go original's bytes"
        );
    }

    #[test]
    fn uid_from_number_or_numeric_string() {
        let config = config(json!({}));
        for body in [
            r#"{"uid":100}"#,
            r#"{"uid":"100"}"#,
            r#"{"uid":"0100","x":[1]}"#,
        ] {
            let Decision::Continue { edits, stat } = answer(&config, Some(200), body) else {
                panic!("{body}");
            };
            assert_eq!(stat, Stat::Allowed);
            assert_eq!(edits.first(), Some(&set("x-auth-user", "100")), "{body}");
        }
    }

    #[test]
    fn bad_uid_fails_closed() {
        let config = config(json!({}));
        for body in [
            r#"{}"#,
            r#"{"uid":null}"#,
            r#"{"uid":1.5}"#,
            r#"{"uid":-3}"#,
            r#"{"uid":"abc"}"#,
            r#"{"uid":""}"#,
            r#"{"uid":99999999999999999999999}"#,
            r#"{"uid":true}"#,
            // Ambiguous: serde_json would take the last uid, another reader the first.
            r#"{"uid":1,"uid":0}"#,
            r#"{"uid":7,"fields":{"role":"a","role":"b"}}"#,
            "not json",
            "[1]",
            "",
        ] {
            let (status, body, stat) = reply_of(answer(&config, Some(200), body));
            assert_eq!((status, stat), (401, Stat::TokenServerFailure));
            assert_eq!(body["message"], "invalid token server response");
        }
    }

    #[test]
    fn denial_carries_the_server_message_escaped() {
        let config = config(json!({}));
        let (status, body, stat) = answer_reply(&config, 401, r#"{"message":"token \"expired\""}"#);
        assert_eq!((status, stat), (401, Stat::Denied));
        assert_eq!(body["message"], "token \"expired\"");
        let (_, body, _) = answer_reply(&config, 403, "plain text");
        assert_eq!(body["message"], "invalid token");
    }

    fn answer_reply(config: &Config, status: u16, body: &str) -> (u16, Value, Stat) {
        reply_of(answer(config, Some(status), body))
    }

    #[test]
    fn failures_use_the_failure_status_and_generic_text() {
        let config = config(json!({"tokenServerFailureStatusCode": 503}));
        let cases = [
            (
                Some(504),
                "upstream request timeout",
                "token server timeout",
            ),
            (
                Some(503),
                "upstream connect error or disconnect/reset before headers",
                "token server unavailable",
            ),
            (Some(500), "<html>oops</html>", "token server error"),
            (Some(500), r#"{"message":"db down"}"#, "db down"),
            (Some(302), "", "token server error"),
            (None, "", "token server connection reset"),
        ];
        for (status, body, text) in cases {
            let (reply_status, reply_body, stat) = reply_of(answer(&config, status, body));
            assert_eq!(
                (reply_status, stat),
                (503, Stat::TokenServerFailure),
                "{body}"
            );
            assert_eq!(reply_body["message"], text);
        }
        let (_, body, _) = reply_of(on_dispatch_error(&config, pending()));
        assert_eq!(body["message"], "token server call failed");
    }

    #[test]
    fn fail_open_continues_without_uid_and_with_marker() {
        let config = config(json!({"failOpen": true, "authResponseHeaders": {"role": "x-role"}}));
        let expected = Decision::Continue {
            edits: vec![
                remove("x-auth-user"),
                remove("x-role"),
                set(FAIL_OPEN_HEADER, "true"),
            ],
            stat: Stat::FailOpen,
        };
        assert_eq!(answer(&config, None, ""), expected);
        assert_eq!(on_dispatch_error(&config, pending()), expected);
        // Denials are never failed open.
        assert_eq!(reply_of(answer(&config, Some(401), "{}")).2, Stat::Denied);
    }

    #[test]
    fn mapped_fields_become_headers() {
        let config = config(
            json!({"authResponseHeaders": {"role": "x-role", "tenant": "x-tenant", "n": "x-n", "bad": "x-bad"}}),
        );
        let decision = answer(
            &config,
            Some(200),
            r#"{"uid":1,"role":"admin","n":5,"bad":"a\nb"}"#,
        );
        let Decision::Continue { edits, .. } = decision else {
            panic!("expected continue");
        };
        assert!(edits.contains(&set("x-role", "admin")));
        assert!(edits.contains(&set("x-n", "5")));
        assert!(edits.contains(&remove("x-tenant")));
        assert!(edits.contains(&remove("x-bad")));
    }

    /// The header value (or `None`: removed) a mapped field `n` of the answer gives.
    fn mapped_n(value: &str) -> Option<String> {
        let config = config(json!({"authResponseHeaders": {"n": "x-n"}}));
        let body = format!(r#"{{"uid":1,"n":{value}}}"#);
        let Decision::Continue { edits, .. } = answer(&config, Some(200), &body) else {
            panic!("{body}");
        };
        match edits.get(1) {
            Some(HeaderEdit::Set(name, value)) if &**name == "x-n" => Some(value.to_string()),
            Some(HeaderEdit::Remove(name)) if &**name == "x-n" => None,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn mapped_numbers_are_written_as_serde_json_prints_them() {
        let cases = [
            ("5", "5"),
            ("-7", "-7"),
            ("0", "0"),
            ("18446744073709551615", "18446744073709551615"),
            ("-9223372036854775808", "-9223372036854775808"),
            // Beyond u64/i64, or with a fraction or an exponent: an f64.
            ("18446744073709551616", "1.8446744073709552e+19"),
            ("1.50", "1.5"),
            ("1.0", "1.0"),
            ("1e3", "1000.0"),
            ("2.5E-3", "0.0025"),
            ("1e30", "1e+30"),
            // Other JSON, compact; strings as they are.
            ("true", "true"),
            (r#"[1, "a"]"#, r#"[1,"a"]"#),
            (r#"{"k": "v\n"}"#, r#"{"k":"v\n"}"#),
            (r#""tenant é""#, "tenant é"),
        ];
        for (written, header) in cases {
            assert_eq!(mapped_n(written).as_deref(), Some(header), "{written}");
        }
    }

    #[test]
    fn mapped_values_with_cr_lf_or_nul_are_never_written() {
        for value in [
            r#""a\nb""#,
            r#""a\rb""#,
            r#""a\u0000b""#,
            r#""\u007f""#,
            "null",
        ] {
            assert_eq!(mapped_n(value), None, "{value}");
        }
    }

    #[test]
    fn uid_forms() {
        let config = config(json!({}));
        let uid = |value: &str| match answer(&config, Some(200), &format!(r#"{{"uid":{value}}}"#)) {
            Decision::Continue { edits, .. } => match edits.first() {
                Some(HeaderEdit::Set(_, uid)) => Some(uid.to_string()),
                other => panic!("{other:?}"),
            },
            Decision::Reply { .. } => None,
        };
        for (written, accepted) in [
            ("0", Some("0")),
            ("18446744073709551615", Some("18446744073709551615")),
            (r#""18446744073709551615""#, Some("18446744073709551615")),
            (r#""007""#, Some("7")),
            ("18446744073709551616", None),
            (r#""18446744073709551616""#, None),
            ("1.0", None),
            ("1e2", None),
            ("-0", None),
            ("-1", None),
            (r#""-1""#, None),
            (r#"" 1""#, None),
            (r#""1.0""#, None),
            ("[1]", None),
        ] {
            assert_eq!(uid(written).as_deref(), accepted, "{written}");
        }
    }

    #[test]
    fn a_member_named_twice_in_the_answer_fails_closed() {
        let config = config(json!({"authResponseHeaders": {"role": "x-role"}}));
        for body in [
            r#"{"uid":1,"uid":0}"#,
            r#"{"uid":1,"role":"a","role":"admin"}"#,
            r#"{"uid":1,"other":{"x":1,"x":2}}"#,
        ] {
            assert_eq!(
                judge(
                    &config,
                    AuthResponse {
                        status: Some(200),
                        body: body.as_bytes()
                    }
                ),
                Verdict::Failed("invalid token server response".into()),
                "{body}"
            );
        }
        // A denial with two messages: no message is trusted, the generic text is used.
        let (_, body, stat) = answer_reply(&config, 401, r#"{"message":"a","message":"b"}"#);
        assert_eq!(
            (body["message"].as_str(), stat),
            (Some("invalid token"), Stat::Denied)
        );
    }

    #[test]
    fn the_call_body_escapes_like_serde_json() {
        let token = "q\"b\\s/\n\r\t\u{0}\u{1f}\u{7f}é€😀";
        let body = String::from_utf8(call_body(token)).unwrap();
        assert_eq!(
            body,
            "{\"token\":\"q\\\"b\\\\s/\\n\\r\\t\\u0000\\u001f\u{7f}é€😀\"}"
        );
        let read: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(read, json!({ "token": token }));
    }

    #[test]
    fn the_coalescing_subject_is_serde_jsons_tuple() {
        let pending = Pending::new(
            "t\"".into(),
            Vec::new(),
            vec![("x-original-uri".into(), "/a\n".into())],
            true,
        );
        assert_eq!(pending.subject(), r#"["t\"",[["x-original-uri","/a\n"]]]"#);
        let none = Pending::new("t".into(), Vec::new(), Vec::new(), true);
        assert_eq!(none.subject(), r#"["t",[]]"#);
    }

    #[test]
    fn strip_edits_apply_when_the_request_continues() {
        let config = config(json!({"stripToken": true}));
        let Step::Call(pending) = on_request(&config, &bearer("/api", "tok")) else {
            panic!("expected a call");
        };
        let Decision::Continue { edits, .. } = on_response(
            &config,
            pending,
            AuthResponse {
                status: Some(200),
                body: br#"{"uid":3}"#,
            },
        ) else {
            panic!("expected continue");
        };
        assert_eq!(edits.last(), Some(&remove("authorization")));
    }
}
