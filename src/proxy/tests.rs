//! Unit tests of the adapter's own logic through the fake host: coalescing, the leader-gone
//! re-dispatch, cache glue (per VM and shared slots), fail-open marking, counting, and the
//! fail-closed paths (refused dispatch, refused header edit, no configuration).

use crate::proxy::counters::FLUSH_MS;
use crate::proxy::fake::{FakeHost, BAD_ARGUMENT};
use crate::proxy::filter::{Filter, Root};
use crate::proxy::host::Action;
use serde_json::{json, Value};
use std::rc::Rc;

pub(super) const CLUSTER: &str = "outbound|9090||token-server.dns";

/// A configured VM on `host` with the global keys of `extra` over a minimal configuration.
pub(super) fn vm(host: &Rc<FakeHost>, extra: Value) -> Root {
    let mut config = json!({
        "tokenServerFQDN": "token-server.dns",
        "tokenServerPort": 9090,
        "ignoreUrls": ["/public/*"],
        "anonymousToken": "anon",
    });
    for (key, value) in extra.as_object().unwrap() {
        config[key] = value.clone();
    }
    host.set_configuration(&config.to_string());
    let mut root = Root::new(1, Rc::clone(host) as Rc<dyn crate::proxy::host::Host>);
    assert!(root.on_configure(0), "configuration accepted");
    root
}

/// Stream `id` with `token` (as `Authorization: Bearer`), headers run; returns the stream.
pub(super) fn request(
    root: &Root,
    host: &FakeHost,
    id: u32,
    path: &str,
    token: Option<&str>,
) -> (Filter, Action) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![(":path", path), ("x-auth-user", "client")];
    if let Some(bearer) = &bearer {
        headers.push(("authorization", bearer));
    }
    host.stream(id, &headers);
    let mut stream = root.filter(id);
    let action = stream.on_http_request_headers(headers.len(), true);
    (stream, action)
}

/// Delivers the answer of call `token` to `stream` (effective context `id`).
pub(super) fn answer(
    host: &FakeHost,
    stream: &mut Filter,
    id: u32,
    token: u32,
    status: u16,
    body: &str,
) {
    host.enter(id);
    host.answer(Some(status), body);
    stream.on_http_call_response(token, 1, body.len(), 0);
}

pub(super) fn uid(host: &FakeHost, id: u32) -> Vec<String> {
    host.header_values(id, "x-auth-user")
}

#[test]
fn requests_with_one_token_share_one_call() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    let (mut leader, first) = request(&root, &host, 2, "/a", Some("tok"));
    let (_follower, second) = request(&root, &host, 3, "/b", Some("tok"));
    let (_other, third) = request(&root, &host, 4, "/c", Some("other"));
    assert_eq!(
        (first, second, third),
        (Action::Pause, Action::Pause, Action::Pause)
    );
    let calls = host.dispatched();
    assert_eq!(calls.len(), 2, "one call per distinct token: {calls:?}");
    assert_eq!(calls[0].cluster, CLUSTER);
    assert_eq!(calls[0].body, br#"{"token":"tok"}"#);
    answer(&host, &mut leader, 2, calls[0].token, 200, r#"{"uid":7}"#);
    assert_eq!(host.resumed(), [2, 3], "the leader, then its follower");
    assert_eq!(uid(&host, 2), ["7"]);
    assert_eq!(
        uid(&host, 3),
        ["7"],
        "the follower's own client uid replaced"
    );
    assert_eq!(uid(&host, 4), ["client"], "the other token still waits");
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.allowed"), 2);
}

#[test]
fn a_follower_that_leaves_is_not_resumed() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    let (mut follower, _) = request(&root, &host, 3, "/a", Some("tok"));
    host.enter(3);
    assert!(follower.on_done());
    let token = host.dispatched()[0].token;
    answer(&host, &mut leader, 2, token, 200, r#"{"uid":7}"#);
    assert_eq!(host.resumed(), [2]);
}

#[test]
fn when_the_leader_leaves_the_root_calls_again_for_its_followers() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    let (_follower, _) = request(&root, &host, 3, "/a", Some("tok"));
    host.enter(2);
    assert!(leader.on_done());
    assert_eq!(host.tick_ms(), 1, "the root is woken to re-dispatch");
    // The leader's answer is dropped (its context is gone); the root calls again.
    root.on_tick();
    assert_eq!(host.tick_ms(), 0, "the tick is disarmed");
    let calls = host.dispatched();
    assert_eq!(calls.len(), 2);
    host.answer(Some(200), r#"{"uid":8}"#);
    root.on_http_call_response(calls[1].token, 1, 9, 0);
    assert_eq!(host.resumed(), [3]);
    assert_eq!(uid(&host, 3), ["8"]);
    // The root's answer was cached: a new request needs no call.
    let (_later, action) = request(&root, &host, 4, "/a", Some("tok"));
    assert_eq!(action, Action::Continue);
    assert_eq!(host.dispatched().len(), 2);
}

#[test]
fn a_leader_without_followers_leaves_nothing_behind() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    host.enter(2);
    assert!(leader.on_done());
    assert_eq!(
        host.tick_ms(),
        FLUSH_MS,
        "no re-dispatch tick without followers (only the counts' and clock's)"
    );
    let (_again, action) = request(&root, &host, 3, "/a", Some("tok"));
    assert_eq!(action, Action::Pause);
    assert_eq!(host.dispatched().len(), 2, "a new leader calls");
}

#[test]
fn a_refused_redispatch_fails_the_followers_closed() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    let (_follower, _) = request(&root, &host, 3, "/a", Some("tok"));
    host.enter(2);
    leader.on_done();
    host.refuse_dispatch(BAD_ARGUMENT);
    root.on_tick();
    let replies = host.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].context, 3);
    assert_eq!(replies[0].status, 401);
    assert_eq!(
        replies[0].body,
        br#"{"message":"token server call failed"}"#
    );
    assert!(host.resumed().is_empty());
}

#[test]
fn a_refused_dispatch_is_a_failure_reply() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({"tokenServerFailureStatusCode": 503}));
    host.refuse_dispatch(BAD_ARGUMENT);
    let (_stream, action) = request(&root, &host, 2, "/a", Some("tok"));
    assert_eq!(action, Action::Pause);
    let replies = host.replies();
    assert_eq!(replies[0].status, 503);
    assert_eq!(replies[0].details, "easy_jwt.token_server_failure");
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.token_server_failure"), 1);
}

#[test]
fn an_allowed_answer_is_cached_for_this_vm_and_shared_with_the_others() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({"cacheTtlSeconds": 10}));
    let (mut first, _) = request(&root, &host, 2, "/a", Some("tok"));
    answer(&host, &mut first, 2, 1, 200, r#"{"uid":9}"#);
    let (_hit, action) = request(&root, &host, 3, "/a", Some("tok"));
    assert_eq!(action, Action::Continue);
    assert_eq!(uid(&host, 3), ["9"]);
    assert_eq!(host.dispatched().len(), 1);
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.cache_hit"), 1);
    assert_eq!(host.counter("easy_jwt.allowed"), 2);
    // A second worker's VM finds it in shared data.
    let worker = FakeHost::in_process(host.process());
    let other = vm(&worker, json!({"cacheTtlSeconds": 10}));
    let (_shared, action) = request(&other, &worker, 2, "/a", Some("tok"));
    assert_eq!(action, Action::Continue);
    assert_eq!(uid(&worker, 2), ["9"]);
    assert!(worker.dispatched().is_empty());
    // After the TTL both ask again.
    host.advance(11);
    let (_expired, action) = request(&root, &host, 4, "/a", Some("tok"));
    assert_eq!(action, Action::Pause);
}

#[test]
fn the_clock_is_read_once_per_tick() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({"cacheTtlSeconds": 10}));
    let (mut first, _) = request(&root, &host, 2, "/a", Some("tok"));
    answer(&host, &mut first, 2, 1, 200, r#"{"uid":9}"#);
    let reads = host.clock_reads();
    assert_eq!(reads, 1, "the answer's TTL read the clock");
    assert_eq!(
        host.tick_ms(),
        FLUSH_MS,
        "and armed the tick that forgets it"
    );
    let (_, hit) = request(&root, &host, 3, "/a", Some("tok"));
    assert_eq!(
        (hit, host.clock_reads()),
        (Action::Continue, 1),
        "a hit reuses the reading"
    );
    host.advance(11);
    root.on_tick();
    let (_, expired) = request(&root, &host, 4, "/a", Some("tok"));
    assert_eq!(
        expired,
        Action::Pause,
        "after the tick the clock is read again: expired"
    );
    assert_eq!(host.clock_reads(), 2);
}

#[test]
fn refusals_and_failures_are_never_cached() {
    let host = FakeHost::new();
    let root = vm(&host, json!({"cacheTtlSeconds": 10}));
    let (mut denied, _) = request(&root, &host, 2, "/a", Some("tok"));
    answer(&host, &mut denied, 2, 1, 401, r#"{"message":"no"}"#);
    let (mut failed, _) = request(&root, &host, 3, "/a", Some("tok"));
    answer(&host, &mut failed, 3, 2, 500, "");
    let (_again, action) = request(&root, &host, 4, "/a", Some("tok"));
    assert_eq!(action, Action::Pause);
    assert_eq!(host.dispatched().len(), 3);
    assert!(host.process().shared_data.borrow().is_empty());
}

#[test]
fn fail_open_marks_the_request_and_drops_the_client_uid() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({"failOpen": true}));
    let (mut stream, _) = request(&root, &host, 2, "/a", Some("tok"));
    answer(&host, &mut stream, 2, 1, 500, "");
    assert_eq!(host.resumed(), [2]);
    assert!(uid(&host, 2).is_empty());
    assert_eq!(
        host.header_values(2, "x-envoy-auth-failure-mode-allowed"),
        ["true"]
    );
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.fail_open"), 1);
    // Allowed requests carry no marker, whatever the client sent.
    host.stream(
        3,
        &[
            (":path", "/a"),
            ("authorization", "Bearer t2"),
            ("x-envoy-auth-failure-mode-allowed", "true"),
        ],
    );
    let mut allowed = root.filter(3);
    allowed.on_http_request_headers(3, true);
    answer(&host, &mut allowed, 3, 2, 200, r#"{"uid":1}"#);
    assert!(host
        .header_values(3, "x-envoy-auth-failure-mode-allowed")
        .is_empty());
}

#[test]
fn every_handled_request_is_counted_once() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    request(&root, &host, 2, "/public/x", None);
    request(&root, &host, 3, "/a", None);
    request(&root, &host, 4, "/a", Some("anon"));
    let (mut denied, _) = request(&root, &host, 5, "/a", Some("d"));
    answer(&host, &mut denied, 5, 1, 403, "{}");
    let (mut failed, _) = request(&root, &host, 6, "/a", Some("f"));
    answer(&host, &mut failed, 6, 2, 502, "");
    assert_eq!(host.counter("easy_jwt.ignored"), 0, "counts wait in the VM");
    assert_eq!(
        host.tick_ms(),
        FLUSH_MS,
        "the root's tick is armed to flush them"
    );
    root.on_tick();
    assert_eq!(host.tick_ms(), 0, "flushed: the tick is disarmed");
    let counts: Vec<i64> = [
        "ignored",
        "token_missing",
        "anonymous",
        "denied",
        "token_server_failure",
        "allowed",
        "fail_open",
        "cache_hit",
    ]
    .iter()
    .map(|name| host.counter(&format!("easy_jwt.{name}")))
    .collect();
    assert_eq!(counts, [1, 1, 1, 1, 1, 0, 0, 0]);
    assert_eq!(uid(&host, 2), ["0"], "ignored: the anonymous uid");
    assert_eq!(uid(&host, 4), ["0"]);
    let statuses: Vec<(u32, u16)> = host
        .replies()
        .iter()
        .map(|r| (r.context, r.status))
        .collect();
    assert_eq!(statuses, [(3, 401), (5, 401), (6, 401)]);
}

#[test]
fn a_refused_header_edit_never_lets_the_request_through() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    let (mut stream, _) = request(&root, &host, 2, "/a", Some("tok"));
    host.refuse_edits();
    answer(&host, &mut stream, 2, 1, 200, r#"{"uid":1}"#);
    assert!(host.resumed().is_empty());
    let replies = host.replies();
    assert_eq!(replies[0].status, 500);
    assert_eq!(replies[0].details, "easy_jwt.header_edit_failed");
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.internal_error"), 1);
    assert_eq!(host.counter("easy_jwt.token_server_failure"), 0);
    assert_eq!(host.counter("easy_jwt.allowed"), 0);
}

#[test]
fn an_unconfigured_vm_refuses_every_request() {
    let host = FakeHost::new();
    host.set_configuration("{not json");
    let mut root = Root::new(1, Rc::clone(&host) as Rc<dyn crate::proxy::host::Host>);
    assert!(!root.on_configure(0));
    let (_stream, action) = request(&root, &host, 2, "/public/x", None);
    assert_eq!(action, Action::Pause);
    assert_eq!(host.replies()[0].status, 503);
}

#[test]
fn route_rules_read_the_xds_name_then_the_legacy_one() {
    let host = FakeHost::new();
    host.set_configuration(
        &json!({"_rules_": [{"_match_route_": ["r"], "tokenServerCluster": "c"}]}).to_string(),
    );
    let mut root = Root::new(1, Rc::clone(&host) as Rc<dyn crate::proxy::host::Host>);
    assert!(root.on_configure(0));
    for (id, path) in [(2, "xds.route_name"), (3, "route_name")] {
        host.stream(id, &[(":path", "/a")]);
        host.property(id, path, "r");
        let mut stream = root.filter(id);
        host.enter(id);
        stream.on_http_request_headers(1, true);
    }
    host.stream(4, &[(":path", "/a")]);
    let mut unmatched = root.filter(4);
    assert_eq!(unmatched.on_http_request_headers(1, true), Action::Continue);
    let statuses: Vec<u32> = host.replies().iter().map(|r| r.context).collect();
    assert_eq!(
        statuses,
        [2, 3],
        "both spellings select the rule (missing token)"
    );
}

#[test]
fn the_call_is_the_go_originals_unless_context_is_forwarded() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    request(&root, &host, 2, "/a?b=1", Some("tok"));
    let names: Vec<String> = host.dispatched()[0]
        .headers
        .iter()
        .map(|(n, _)| n.clone())
        .collect();
    assert_eq!(names, [":method", ":path", ":authority", "content-type"]);
}

#[test]
fn forwarded_context_goes_with_the_call_and_keys_the_cache() {
    let host = FakeHost::new();
    let root = vm(
        &host,
        json!({"forwardRequestContext": true, "forwardHeaders": ["X-Tenant"], "cacheTtlSeconds": 30}),
    );
    host.stream(
        2,
        &[
            (":method", "GET"),
            (":path", "/orders?id=1"),
            (":authority", "api.example.com"),
            ("authorization", "Bearer tok"),
            ("x-tenant", "acme"),
            ("cookie", "session=s"),
        ],
    );
    let mut first = root.filter(2);
    assert_eq!(first.on_http_request_headers(6, true), Action::Pause);
    let call = host.dispatched()[0].clone();
    let forwarded: Vec<(&str, &str)> = call
        .headers
        .iter()
        .skip(4)
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        forwarded,
        [
            ("x-original-method", "GET"),
            ("x-original-uri", "/orders?id=1"),
            ("x-forwarded-host", "api.example.com"),
            ("x-tenant", "acme"),
        ],
        "never the token header nor cookies unless listed"
    );
    answer(&host, &mut first, 2, call.token, 200, r#"{"uid":3}"#);
    // The same request again: a cache hit.
    let (_same, action) = request_with(&root, &host, 3, "/orders?id=1", "acme");
    assert_eq!(action, Action::Continue);
    // Another path, another tenant: the token server must decide again.
    let (_path, action) = request_with(&root, &host, 4, "/admin", "acme");
    assert_eq!(action, Action::Pause);
    let (_tenant, action) = request_with(&root, &host, 5, "/orders?id=1", "other");
    assert_eq!(action, Action::Pause);
    assert_eq!(host.dispatched().len(), 3);
}

/// A `GET` with token `tok`, tenant header `tenant`, on `path`.
fn request_with(
    root: &Root,
    host: &FakeHost,
    id: u32,
    path: &str,
    tenant: &str,
) -> (Filter, Action) {
    host.stream(
        id,
        &[
            (":method", "GET"),
            (":path", path),
            (":authority", "api.example.com"),
            ("authorization", "Bearer tok"),
            ("x-tenant", tenant),
        ],
    );
    let mut stream = root.filter(id);
    let action = stream.on_http_request_headers(5, true);
    (stream, action)
}

#[test]
fn a_header_value_that_is_not_utf8_is_an_absent_header_not_a_crash() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    // Latin-1 bytes in the token header: no usable token, the configured error reply.
    host.stream_bytes(2, &[(":path", b"/a"), ("authorization", b"Bearer caf\xe9")]);
    let mut stream = root.filter(2);
    assert_eq!(stream.on_http_request_headers(2, true), Action::Pause);
    assert_eq!(host.replies()[0].status, 401);
    assert_eq!(host.replies()[0].details, "easy_jwt.token_missing");
    // Elsewhere such a byte changes nothing: the token is read and checked.
    host.stream_bytes(
        3,
        &[
            (":path", b"/a"),
            ("x-note", b"\xff"),
            ("authorization", b"Bearer tok"),
        ],
    );
    let mut other = root.filter(3);
    assert_eq!(other.on_http_request_headers(3, true), Action::Pause);
    assert_eq!(host.dispatched().len(), 1);
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.token_missing"), 1);
}

#[test]
fn header_names_are_looked_up_in_any_case() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    // Envoy hands names lowercased; the plugin's own lookup must not depend on it.
    host.stream(2, &[(":path", "/a"), ("Authorization", "Bearer tok")]);
    let mut stream = root.filter(2);
    assert_eq!(stream.on_http_request_headers(2, true), Action::Pause);
    assert_eq!(host.dispatched()[0].body, br#"{"token":"tok"}"#);
}

#[test]
fn a_waiter_gone_when_the_answer_lands_is_skipped_and_the_others_resolved() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    let (_gone, _) = request(&root, &host, 3, "/a", Some("tok"));
    let (_waiting, _) = request(&root, &host, 4, "/a", Some("tok"));
    // Stream 3 is gone from Envoy without its on_done having run yet.
    host.end(3);
    let token = host.dispatched()[0].token;
    answer(&host, &mut leader, 2, token, 200, r#"{"uid":5}"#);
    assert_eq!(host.resumed(), [2, 4]);
    assert_eq!(uid(&host, 4), ["5"]);
}

#[test]
fn a_reset_call_fails_every_waiter_closed() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    let (_follower, _) = request(&root, &host, 3, "/a", Some("tok"));
    let token = host.dispatched()[0].token;
    host.enter(2);
    host.answer(None, "");
    leader.on_http_call_response(token, 0, 0, 0);
    let statuses: Vec<(u32, u16)> = host
        .replies()
        .iter()
        .map(|r| (r.context, r.status))
        .collect();
    assert_eq!(statuses, [(2, 401), (3, 401)]);
    assert!(host.resumed().is_empty());
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.token_server_failure"), 2);
}

#[test]
fn an_answer_nobody_waits_for_is_ignored() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    host.answer(Some(200), r#"{"uid":1}"#);
    root.on_http_call_response(99, 1, 9, 0);
    assert!(host.resumed().is_empty());
    assert!(host.replies().is_empty());
}
