//! Adapter unit tests of what only a host can stage, moved here from the retired in-process host
//! (docs/host-test-migration.md, "Host test → fake host"): call timeouts, the log level, exact
//! cache edges on a manual clock, shared data across VMs (slot collisions, a CAS mismatch), a
//! chosen answer order, streams deleted at a chosen moment, Higress's property names, Envoy's
//! call-failure outcomes delivered directly, repeated header entries, failing hostcalls, and the
//! hostcalls each request costs. One behaviour per test.

use crate::proxy::fake::{capture_logs, logged, FakeHost, Line, Replied, CAS_MISMATCH};
use crate::proxy::filter::Root;
use crate::proxy::host::{Action, Host};
use crate::proxy::tests::{answer, request, uid, vm, CLUSTER};
use log::{Level, LevelFilter};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::rc::Rc;

/// The fake clock's start (`FakeHost::in_process`).
const T0: u64 = 1_700_000_000;

/// A root of a VM on `host` given the whole configuration document `doc`; whether it was
/// accepted.
fn configure(host: &Rc<FakeHost>, doc: &str) -> (Root, bool) {
    host.set_configuration(doc);
    let mut root = Root::new(1, Rc::clone(host) as Rc<dyn Host>);
    let accepted = root.on_configure(doc.len());
    (root, accepted)
}

/// A reply's body as text.
fn body(reply: &Replied) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

/// An unsigned JWT-shaped token `header.payload.sig` (the cache's own test helper).
fn jwt(payload: &str) -> String {
    crate::core::cache::tests::jwt(payload)
}

// --- The call ---------------------------------------------------------------------------------

#[test]
fn the_call_goes_to_the_fqdn_cluster_with_the_default_2000_ms_timeout() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    request(&root, &host, 2, "/a", Some("tok"));
    let call = &host.dispatched()[0];
    assert_eq!((call.cluster.as_str(), call.timeout_ms), (CLUSTER, 2000));
}

#[test]
fn the_call_carries_token_server_timeout_ms() {
    let host = FakeHost::new();
    let root = vm(&host, json!({"tokenServerTimeoutMs": 150}));
    request(&root, &host, 2, "/a", Some("tok"));
    assert_eq!(host.dispatched()[0].timeout_ms, 150);
}

// --- The log level ----------------------------------------------------------------------------

/// A call answered 200, then a request without a token, on a VM whose host log level is `level`;
/// the lines sent.
fn lines_of_a_request_at(level: LevelFilter) -> Vec<Line> {
    capture_logs();
    let host = FakeHost::new();
    host.set_log_level(level);
    let root = vm(&host, json!({}));
    let (mut stream, _) = request(&root, &host, 2, "/a", Some("tok"));
    answer(&host, &mut stream, 2, 1, 200, r#"{"uid":1}"#);
    request(&root, &host, 3, "/a", None);
    logged()
}

#[test]
fn below_the_hosts_log_level_no_line_is_sent() {
    let lines = lines_of_a_request_at(LevelFilter::Info);
    let texts: Vec<(Level, &str)> = lines.iter().map(|l| (l.level, l.text.as_str())).collect();
    assert_eq!(
        texts,
        [(
            Level::Info,
            "easy-jwt: configured (0 rules, global config on)"
        )],
        "only the configure line: the request path's debug lines are not sent"
    );
}

#[test]
fn at_trace_the_request_path_sends_its_debug_lines() {
    let lines = lines_of_a_request_at(LevelFilter::Trace);
    let debug: Vec<&str> = lines
        .iter()
        .filter(|l| l.level == Level::Debug)
        .map(|l| l.text.as_str())
        .collect();
    assert_eq!(
        debug,
        [
            "#2 easy-jwt: checking token …(3 bytes) with cluster outbound|9090||token-server.dns",
            "easy-jwt: token server answered 200 for 1 request(s)",
            "#3 easy-jwt: easy_jwt.token_missing: replying 401",
        ]
    );
}

#[test]
fn no_log_line_holds_a_whole_token() {
    capture_logs();
    let secret = "s3cr3t-t0ken-0123456789abcdef";
    let other = "an0ther-s3cr3t-t0ken-fedcba9876";
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    // Allowed, then a cache hit, then denied, then a failure, then a refused dispatch.
    let (mut allowed, _) = request(&root, &host, 2, "/a", Some(secret));
    answer(&host, &mut allowed, 2, 1, 200, r#"{"uid":1}"#);
    request(&root, &host, 3, "/a", Some(secret));
    let (mut denied, _) = request(&root, &host, 4, "/a", Some(other));
    answer(&host, &mut denied, 4, 2, 401, r#"{"message":"no"}"#);
    let (mut failed, _) = request(&root, &host, 5, "/a", Some(other));
    answer(&host, &mut failed, 5, 3, 500, "");
    host.refuse_dispatch(crate::proxy::fake::BAD_ARGUMENT);
    request(&root, &host, 6, "/a", Some(other));
    root.on_tick();
    let lines = logged();
    assert!(lines.len() >= 5, "the flow was logged: {lines:?}");
    let leaks: Vec<&Line> = lines
        .iter()
        .filter(|l| l.text.contains(secret) || l.text.contains(other))
        .collect();
    assert!(leaks.is_empty(), "{leaks:?}");
}

// --- Cache edges on the manual clock ----------------------------------------------------------

/// `token` answered 200 (uid 9) at T0 on a VM with `extra`; then, `seconds` later (after a tick,
/// so the clock is read again), the same token: the action and the number of calls made.
fn again_after(extra: Value, token: &str, seconds: u64) -> (Action, usize) {
    let host = FakeHost::new();
    let mut root = vm(&host, extra);
    let (mut first, _) = request(&root, &host, 2, "/a", Some(token));
    answer(&host, &mut first, 2, 1, 200, r#"{"uid":9}"#);
    root.on_tick();
    host.advance(seconds);
    let (_again, action) = request(&root, &host, 3, "/a", Some(token));
    (action, host.dispatched().len())
}

#[test]
fn with_a_30_s_ttl_an_answer_is_a_hit_at_29_s() {
    let hit = again_after(json!({"cacheTtlSeconds": 30}), "tok", 29);
    assert_eq!(hit, (Action::Continue, 1));
}

#[test]
fn with_a_30_s_ttl_an_answer_is_called_again_at_30_s() {
    // An entry expires at answer time + TTL and is served only while `expires_at > now`.
    let call = again_after(json!({"cacheTtlSeconds": 30}), "tok", 30);
    assert_eq!(call, (Action::Pause, 2));
}

#[test]
fn with_a_30_s_ttl_an_answer_is_called_again_after_31_s() {
    let call = again_after(json!({"cacheTtlSeconds": 30}), "tok", 31);
    assert_eq!(call, (Action::Pause, 2));
}

/// A JWT whose `exp` is 10 s after T0, cached with a TTL far beyond it.
fn expiring_jwt() -> String {
    jwt(&format!(r#"{{"sub":"u","exp":{}}}"#, T0 + 10))
}

#[test]
fn a_jwt_is_a_hit_one_second_before_its_exp() {
    let hit = again_after(json!({"cacheTtlSeconds": 3600}), &expiring_jwt(), 9);
    assert_eq!(hit, (Action::Continue, 1));
}

#[test]
fn a_jwt_is_called_again_at_its_exp() {
    let call = again_after(json!({"cacheTtlSeconds": 3600}), &expiring_jwt(), 10);
    assert_eq!(call, (Action::Pause, 2));
}

#[test]
fn a_jwt_is_called_again_one_second_after_its_exp() {
    let call = again_after(json!({"cacheTtlSeconds": 3600}), &expiring_jwt(), 11);
    assert_eq!(call, (Action::Pause, 2));
}

#[test]
fn an_answer_for_a_jwt_already_at_its_exp_is_not_cached() {
    let token = jwt(&format!(r#"{{"exp":{T0}}}"#));
    let call = again_after(json!({"cacheTtlSeconds": 3600}), &token, 0);
    assert_eq!(call, (Action::Pause, 2));
}

// --- Shared data across VMs -------------------------------------------------------------------

#[test]
fn a_token_sharing_the_slot_is_not_served_another_tokens_entry() {
    // One shared slot: every token maps to it.
    let extra = json!({"cacheTtlSeconds": 30, "cacheSharedSlots": 1});
    let host = FakeHost::new();
    let first = vm(&host, extra.clone());
    let (mut stream, _) = request(&first, &host, 2, "/a", Some("tok-a"));
    answer(&host, &mut stream, 2, 1, 200, r#"{"uid":1}"#);
    assert_eq!(host.process().shared_data.borrow().len(), 1);
    let worker = FakeHost::in_process(host.process());
    let second = vm(&worker, extra);
    let (_other, action) = request(&second, &worker, 2, "/a", Some("tok-b"));
    assert_eq!(
        (action, uid(&worker, 2), worker.dispatched()[0].body.clone()),
        (
            Action::Pause,
            vec!["client".to_string()],
            br#"{"token":"tok-b"}"#.to_vec()
        ),
        "tok-b is called for, its client uid untouched"
    );
}

#[test]
fn a_cas_mismatch_on_the_shared_slot_still_serves_the_answer_and_keeps_the_other_vms_value() {
    capture_logs();
    let extra = json!({"cacheTtlSeconds": 30});
    let host = FakeHost::new();
    let first = vm(&host, extra.clone());
    let worker = FakeHost::in_process(host.process());
    let second = vm(&worker, extra);
    // Both VMs miss and call; the second one's answer lands first and fills the slot.
    let (mut mine, _) = request(&first, &host, 2, "/a", Some("tok"));
    let (mut theirs, _) = request(&second, &worker, 2, "/a", Some("tok"));
    answer(&worker, &mut theirs, 2, 1, 200, r#"{"uid":5}"#);
    let slot_before = host.process().shared_data.borrow().clone();
    host.refuse_shared_writes(CAS_MISMATCH);
    host.reset_hostcalls();
    answer(&host, &mut mine, 2, 1, 200, r#"{"uid":6}"#);
    assert_eq!(host.resumed(), [2]);
    assert_eq!(uid(&host, 2), ["6"], "served its own answer");
    assert_eq!(
        *host.process().shared_data.borrow(),
        slot_before,
        "the slot keeps the other VM's value"
    );
    assert_eq!(
        host.hostcalls().get("set_shared_data"),
        Some(&1),
        "no retry loop"
    );
    let warnings: Vec<String> = logged()
        .into_iter()
        .filter(|l| l.level == Level::Warn)
        .map(|l| l.text)
        .collect();
    assert_eq!(
        warnings,
        ["easy-jwt: cannot write shared cache slot: CasMismatch"]
    );
}

// --- Many streams, a chosen answer order ------------------------------------------------------

/// A deterministic permutation of `0..n` (Fisher-Yates over a 64-bit LCG, Knuth's MMIX
/// constants).
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut state = seed;
    let mut order: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let j = usize::try_from((state >> 33) % (i as u64 + 1)).unwrap();
        order.swap(i, j);
    }
    order
}

#[test]
fn each_of_1000_paused_streams_gets_its_own_uid_whatever_the_answer_order() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    let mut streams = Vec::new();
    for n in 0..1000u32 {
        let id = n + 2;
        let (stream, action) = request(&root, &host, id, "/a", Some(&format!("tok-{n}")));
        assert_eq!(action, Action::Pause);
        streams.push((id, stream));
    }
    let calls = host.dispatched();
    assert_eq!(calls.len(), 1000, "one call per stream");
    let order = shuffled(1000, 0x5eed);
    assert_ne!(order[..10], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], "shuffled");
    for index in order {
        let (id, stream) = &mut streams[index];
        let call = &calls[index];
        assert_eq!(call.context, *id);
        let body = format!(r#"{{"uid":{}}}"#, 10_000 + *id);
        answer(&host, stream, *id, call.token, 200, &body);
    }
    let mut resumed = host.resumed();
    resumed.sort_unstable();
    assert_eq!(resumed, (2..1002).collect::<Vec<u32>>(), "each once");
    let wrong: Vec<u32> = (2..1002u32)
        .filter(|id| uid(&host, *id) != [(10_000 + id).to_string()])
        .collect();
    assert!(wrong.is_empty(), "streams with another uid: {wrong:?}");
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.allowed"), 1000);
}

// --- Streams deleted at a chosen moment -------------------------------------------------------

#[test]
fn an_answer_delivered_after_its_stream_ended_is_ignored_and_the_vm_serves_on() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    let (mut gone, _) = request(&root, &host, 2, "/a", Some("tok"));
    let token = host.dispatched()[0].token;
    host.enter(2);
    assert!(gone.on_done());
    host.end(2);
    // The SDK drops such an answer; delivered anyway, it changes nothing.
    answer(&host, &mut gone, 2, token, 200, r#"{"uid":7}"#);
    assert!(host.resumed().is_empty() && host.replies().is_empty());
    let (mut next, action) = request(&root, &host, 3, "/a", Some("tok"));
    assert_eq!(action, Action::Pause, "nothing was cached: a new call");
    answer(
        &host,
        &mut next,
        3,
        host.dispatched()[1].token,
        200,
        r#"{"uid":8}"#,
    );
    assert_eq!((host.resumed(), uid(&host, 3)), (vec![3], vec!["8".into()]));
}

#[test]
fn a_leaders_answer_landing_after_it_left_is_harmless_and_the_root_answers_the_follower() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    let (_follower, _) = request(&root, &host, 3, "/a", Some("tok"));
    let first = host.dispatched()[0].token;
    host.enter(2);
    leader.on_done();
    host.end(2);
    // The leader's answer arrives before the root's tick: to the ended stream, or to the root.
    answer(&host, &mut leader, 2, first, 200, r#"{"uid":99}"#);
    root.on_http_call_response(first, 1, 10, 0);
    assert!(host.resumed().is_empty() && host.replies().is_empty());
    root.on_tick();
    let calls = host.dispatched();
    assert_eq!(calls.len(), 2, "the root called again");
    host.answer(Some(200), r#"{"uid":3}"#);
    root.on_http_call_response(calls[1].token, 1, 9, 0);
    assert_eq!((host.resumed(), uid(&host, 3)), (vec![3], vec!["3".into()]));
    let (_next, action) = request(&root, &host, 4, "/a", Some("tok"));
    assert_eq!(
        (action, uid(&host, 4)),
        (Action::Continue, vec!["3".into()])
    );
}

// --- Configuration errors ---------------------------------------------------------------------

/// The lines `on_configure` sends for `doc`, which it must refuse.
fn refusal_lines(doc: &str) -> Vec<Line> {
    capture_logs();
    let host = FakeHost::new();
    let (_root, accepted) = configure(&host, doc);
    assert!(!accepted, "accepted: {doc}");
    logged()
}

/// The one error line `on_configure` sends for `doc`.
fn refusal(doc: &str) -> String {
    let lines = refusal_lines(doc);
    match lines.as_slice() {
        [Line {
            level: Level::Error,
            text,
        }] => text.clone(),
        other => panic!("{doc}: expected exactly one error line, got {other:?}"),
    }
}

/// `extra` over a valid global token server.
fn global(extra: Value) -> String {
    let mut doc = json!({"tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090});
    for (key, value) in extra.as_object().unwrap() {
        doc[key] = value.clone();
    }
    doc.to_string()
}

/// A valid global token server with `_rules_` = `rules`.
fn with_rules(rules: Value) -> String {
    global(json!({ "_rules_": rules }))
}

#[test]
fn every_bad_configuration_is_refused_with_one_error_line_naming_the_key() {
    let static_service = json!({"type": "static", "serviceName": "a", "port": 1});
    let cases: Vec<(String, &str)> = vec![
        // Token server choice and port.
        (
            json!({"tokenServerFQDN": "a"}).to_string(),
            "tokenServerPort",
        ),
        (global(json!({"tokenServerPort": 0})), "tokenServerPort"),
        (global(json!({"tokenServerPort": 70000})), "tokenServerPort"),
        (
            global(json!({"tokenServerPort": "9090"})),
            "tokenServerPort",
        ),
        (global(json!({"tokenServerPort": -1})), "tokenServerPort"),
        (global(json!({"tokenServerPort": 1.0})), "tokenServerPort"),
        (global(json!({"tokenServerFQDN": ""})), "tokenServerFQDN"),
        (global(json!({"tokenServerFQDN": 12})), "tokenServerFQDN"),
        (global(json!({"tokenServerFQDN": "a b"})), "tokenServerFQDN"),
        (
            json!({"uidHeaderName": "x-u"}).to_string(),
            "tokenServerFQDN",
        ),
        (
            global(json!({"tokenServerCluster": "c"})),
            "tokenServerCluster",
        ),
        (
            json!({"tokenServerCluster": ""}).to_string(),
            "tokenServerCluster",
        ),
        (
            global(json!({"tokenService": static_service})),
            "tokenService",
        ),
        (
            json!({"tokenServerCluster": "c", "tokenService": static_service}).to_string(),
            "tokenService",
        ),
        (
            json!({"tokenService": {"type": "eureka"}}).to_string(),
            "tokenService",
        ),
        (
            json!({"tokenService": {"type": "dns", "serviceName": "a", "port": 1}}).to_string(),
            "tokenService",
        ),
        (
            json!({"tokenService": {"type": "static", "serviceName": "a", "port": 0}}).to_string(),
            "tokenService",
        ),
        (
            json!({"tokenService": {"type": "static", "serviceName": "a", "port": "80"}})
                .to_string(),
            "tokenService",
        ),
        (json!({"tokenService": [1]}).to_string(), "tokenService"),
        (
            global(json!({"tokenServerAuthority": ""})),
            "tokenServerAuthority",
        ),
        (global(json!({"tokenServerPath": "api"})), "tokenServerPath"),
        (
            global(json!({"tokenServerPath": "/a b"})),
            "tokenServerPath",
        ),
        (
            global(json!({"tokenServerTimeoutMs": 0})),
            "tokenServerTimeoutMs",
        ),
        (
            global(json!({"tokenServerTimeoutMs": 600_001})),
            "tokenServerTimeoutMs",
        ),
        // Statuses and the error body.
        (
            global(json!({"responseErrorStatusCode": 200})),
            "responseErrorStatusCode",
        ),
        (
            global(json!({"responseErrorStatusCode": 600})),
            "responseErrorStatusCode",
        ),
        (
            global(json!({"responseErrorStatusCode": "401"})),
            "responseErrorStatusCode",
        ),
        (
            global(json!({"tokenServerFailureStatusCode": 302})),
            "tokenServerFailureStatusCode",
        ),
        (
            global(json!({"responseErrorBody": "%s %s"})),
            "responseErrorBody",
        ),
        (
            global(json!({"responseErrorBody": {"a": 1}})),
            "responseErrorBody",
        ),
        // Token sources.
        (
            global(json!({"tokenFromHeaderName": "bad header"})),
            "tokenFromHeaderName",
        ),
        (
            global(json!({"tokenFromHeaderName": ":path"})),
            "tokenFromHeaderName",
        ),
        (
            global(json!({"tokenFromHeaderPrefix": "Bearer\n"})),
            "tokenFromHeaderPrefix",
        ),
        (
            global(json!({"tokenFromHeaderPrefix": 5})),
            "tokenFromHeaderPrefix",
        ),
        (global(json!({"tokenFromQuery": ""})), "tokenFromQuery"),
        (global(json!({"tokenFromCookie": "a b"})), "tokenFromCookie"),
        (global(json!({"stripToken": 1})), "stripToken"),
        // Ignored paths.
        (global(json!({"ignoreUrls": "/health"})), "ignoreUrls"),
        (global(json!({"ignoreUrls": [1]})), "ignoreUrls"),
        (
            global(json!({"ignoreUrls": ["/ok", "no-slash"]})),
            "ignoreUrls[1]",
        ),
        (global(json!({"ignoreUrls": ["/a*"]})), "ignoreUrls[0]"),
        (global(json!({"ignoreUrls": ["/a?b"]})), "ignoreUrls[0]"),
        (global(json!({"ignoreUrls": ["/../x"]})), "ignoreUrls[0]"),
        // Anonymous token and identity headers.
        (global(json!({"anonymousToken": 5})), "anonymousToken"),
        (global(json!({"anonymousUID": -5})), "anonymousUID"),
        (global(json!({"anonymousUID": 1.5})), "anonymousUID"),
        (global(json!({"uidHeaderName": ""})), "uidHeaderName"),
        (
            global(json!({"authResponseHeaders": {"role": "x-auth-user"}})),
            "authResponseHeaders.role",
        ),
        (
            global(json!({"authResponseHeaders": {"role": "authorization"}})),
            "authResponseHeaders.role",
        ),
        (
            global(json!({"authResponseHeaders": {"role": "x-envoy-auth-failure-mode-allowed"}})),
            "authResponseHeaders.role",
        ),
        (
            global(json!({"authResponseHeaders": {"role": "bad header"}})),
            "authResponseHeaders.role",
        ),
        (
            global(json!({"authResponseHeaders": {"role": 5}})),
            "authResponseHeaders.role",
        ),
        (
            global(json!({"authResponseHeaders": ["x"]})),
            "authResponseHeaders",
        ),
        // Failing open, forwarding, the cache.
        (global(json!({"failOpen": "yes"})), "failOpen"),
        (
            global(json!({"forwardRequestContext": "yes"})),
            "forwardRequestContext",
        ),
        (
            global(json!({"forwardHeaders": "x-tenant"})),
            "forwardHeaders",
        ),
        (
            global(json!({"forwardHeaders": ["x-tenant", "bad header"]})),
            "forwardHeaders[1]",
        ),
        (
            global(json!({"forwardHeaders": [":path"]})),
            "forwardHeaders[0]",
        ),
        (global(json!({"cacheTtlSeconds": -1})), "cacheTtlSeconds"),
        (
            global(json!({"cacheTtlSeconds": 86_401})),
            "cacheTtlSeconds",
        ),
        (global(json!({"cacheMaxEntries": 0})), "cacheMaxEntries"),
        (
            global(json!({"cacheMaxEntries": 1_000_001})),
            "cacheMaxEntries",
        ),
        (
            global(json!({"cacheSharedSlots": 70_000})),
            "cacheSharedSlots",
        ),
        (global(json!({"cacheSharedSlots": "8"})), "cacheSharedSlots"),
        // `_rules_`.
        (with_rules(json!({})), "_rules_"),
        (with_rules(json!([1])), "_rules_[0]"),
        (with_rules(json!([{"uidHeaderName": "x"}])), "_rules_[0]"),
        (
            with_rules(json!([{"_match_route_": []}])),
            "_rules_[0]._match_route_",
        ),
        (
            with_rules(json!([{"_match_route_": "r"}])),
            "_rules_[0]._match_route_",
        ),
        (
            with_rules(json!([{"_match_route_prefix_": [""]}])),
            "_rules_[0]._match_route_prefix_",
        ),
        (
            with_rules(json!([{"_match_domain_": [1]}])),
            "_rules_[0]._match_domain_",
        ),
        (
            with_rules(json!([{"_match_service_": null}])),
            "_rules_[0]._match_service_",
        ),
        (
            with_rules(
                json!([{"_match_route_": ["r"]}, {"_match_route_": ["s"], "tokenServerPort": 0}]),
            ),
            "_rules_[1].tokenServerPort",
        ),
        (
            with_rules(
                json!([{"_match_route_": ["r"], "tokenServerCluster": "c", "tokenServerTimeoutMs": 0}]),
            ),
            "_rules_[0].tokenServerTimeoutMs",
        ),
        (
            json!({"responseErrorStatusCode": 99, "_rules_": [{"_match_route_": ["r"],
                "tokenServerFQDN": "a.dns", "tokenServerPort": 1}]})
            .to_string(),
            "responseErrorStatusCode",
        ),
        // A rule without any token server (none global either): the key is named unprefixed.
        (
            json!({"_rules_": [{"_match_route_": ["r"]}]}).to_string(),
            "tokenServerFQDN",
        ),
    ];
    let mut wrong = Vec::new();
    for (doc, key) in &cases {
        let line = refusal(doc);
        if !line.starts_with(&format!("easy-jwt: configuration key `{key}` ")) {
            wrong.push(format!("{doc}\n  → {line}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "lines not naming the key:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn every_bad_document_is_refused_with_one_error_line_saying_why() {
    let cases = [
        ("", "easy-jwt: configuration is empty (0 bytes)"),
        ("[]", "easy-jwt: configuration must be a JSON object"),
        (
            "{}",
            "easy-jwt: configuration has neither global keys nor `_rules_`: set `tokenServerFQDN` and `tokenServerPort`",
        ),
        (
            r#"{"_rules_": []}"#,
            "easy-jwt: configuration has neither global keys nor `_rules_`: set `tokenServerFQDN` and `tokenServerPort`",
        ),
        (
            "{\"tokenServerFQDN\": \"a\",\n \"tokenServerPort\": 1,\n \"tokenServerPort\": 2}",
            "easy-jwt: configuration is not valid JSON: duplicate key `tokenServerPort` at line 3 column 18",
        ),
        (
            "{\"_rules_\":[{\"_match_route_\":[\"r\"]},\n {\"_match_route_\":[\"s\"],\"tokenServerPort\":1,\"tokenServerPort\":2}]}",
            "easy-jwt: configuration is not valid JSON: duplicate key `_rules_[1].tokenServerPort` at line 2 column 61",
        ),
        (
            "{\"tokenServerCluster\": \"c\",\n \"uidHeaderName\": x}",
            "easy-jwt: configuration is not valid JSON: expected value at line 2 column 19",
        ),
        (
            "{\"a\": 1} {",
            "easy-jwt: configuration is not valid JSON: trailing characters at line 1 column 10",
        ),
    ];
    for (doc, expected) in cases {
        assert_eq!(refusal(doc), expected, "{doc}");
    }
}

// --- Route names on each gateway flavor -------------------------------------------------------

/// Rule 0 matches route `ns/r`, rule 1 service `svc.dns:8080`; each maps the anonymous token to
/// its own uid (1, 2), the global configuration to 0.
fn flavor_rules() -> String {
    global(json!({
        "anonymousToken": "anon",
        "_rules_": [
            {"_match_route_": ["ns/r"], "anonymousUID": 1},
            {"_match_service_": ["svc.dns:8080"], "anonymousUID": 2}
        ]
    }))
}

/// The anonymous request on a stream served `route` and `cluster` under both Higress's names
/// (`xds.*` and the top-level ones): the uid it got.
fn uid_on_higress(route: &str, cluster: &str) -> Vec<String> {
    let host = FakeHost::new();
    let (root, accepted) = configure(&host, &flavor_rules());
    assert!(accepted);
    host.stream(2, &[(":path", "/a"), ("authorization", "Bearer anon")]);
    for (path, value) in [
        ("xds.route_name", route),
        ("route_name", route),
        ("xds.cluster_name", cluster),
        ("cluster_name", cluster),
    ] {
        host.property(2, path, value);
    }
    let mut stream = root.filter(2);
    assert_eq!(stream.on_http_request_headers(2, true), Action::Continue);
    uid(&host, 2)
}

#[test]
fn on_higress_a_route_rule_matches_with_both_route_names_served() {
    assert_eq!(uid_on_higress("ns/r", "outbound|8080||svc.dns"), ["1"]);
}

#[test]
fn on_higress_a_service_rule_matches_with_both_cluster_names_served() {
    assert_eq!(uid_on_higress("ns/other", "outbound|8080||svc.dns"), ["2"]);
}

/// Rule 0 matches a domain (no property read), rule 1 a route name; no global configuration.
fn route_rule_without_global() -> String {
    json!({"_rules_": [
        {"_match_domain_": ["a.example.com"], "tokenServerCluster": "c"},
        {"_match_route_": ["r"], "tokenServerCluster": "c"}
    ]})
    .to_string()
}

#[test]
fn with_no_route_name_served_a_route_rule_does_not_match_and_the_request_passes_untouched() {
    let host = FakeHost::new();
    let (root, accepted) = configure(&host, &route_rule_without_global());
    assert!(accepted);
    let (_stream, action) = request(&root, &host, 2, "/a", None);
    assert_eq!(
        (action, uid(&host, 2), host.replies().len()),
        (Action::Continue, vec!["client".to_string()], 0)
    );
}

#[test]
fn with_no_route_name_served_each_vm_warns_once_naming_the_rule() {
    capture_logs();
    let host = FakeHost::new();
    let worker = FakeHost::in_process(host.process());
    for vm_host in [&host, &worker] {
        let (root, accepted) = configure(vm_host, &route_rule_without_global());
        assert!(accepted);
        for id in 2..5 {
            request(&root, vm_host, id, "/a", Some("tok"));
        }
    }
    let warnings: Vec<String> = logged()
        .into_iter()
        .filter(|l| l.level == Level::Warn)
        .map(|l| l.text)
        .collect();
    let expected =
        "easy-jwt: the host gave neither `xds.route_name` nor `route_name` for a request \
         (a gateway that serves neither, or a route without one): _rules_[1] cannot match such \
         requests (said once per VM)";
    assert_eq!(
        warnings,
        [expected, expected],
        "one per VM, three requests each"
    );
}

// --- Envoy's call-failure outcomes, delivered directly ----------------------------------------

/// The reply to a request whose call Envoy completed with `status` and `body` (`None`: reset,
/// delivered as `(token, 0, 0, 0)`).
fn reply_to_outcome(status: Option<u16>, body: &str) -> Replied {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    let (mut stream, _) = request(&root, &host, 2, "/a", Some("tok"));
    let token = host.dispatched()[0].token;
    host.enter(2);
    host.answer(status, body);
    let headers = usize::from(status.is_some());
    stream.on_http_call_response(token, headers, body.len(), 0);
    assert!(host.resumed().is_empty(), "fail closed");
    host.replies()[0].clone()
}

#[test]
fn envoys_504_timeout_reply_fails_closed_as_token_server_timeout() {
    let reply = reply_to_outcome(Some(504), "upstream request timeout");
    assert_eq!(
        (reply.status, body(&reply), reply.details.as_str()),
        (
            401,
            r#"{"message":"token server timeout"}"#.into(),
            "easy_jwt.token_server_failure"
        )
    );
}

#[test]
fn envoys_503_connect_failure_reply_fails_closed_as_token_server_unavailable() {
    let reply = reply_to_outcome(
        Some(503),
        "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
    );
    assert_eq!(
        (reply.status, body(&reply)),
        (401, r#"{"message":"token server unavailable"}"#.into())
    );
}

#[test]
fn a_reset_delivered_without_headers_fails_closed_as_token_server_connection_reset() {
    let reply = reply_to_outcome(None, "");
    assert_eq!(
        (reply.status, body(&reply)),
        (401, r#"{"message":"token server connection reset"}"#.into())
    );
}

#[test]
fn after_each_envoy_failure_outcome_the_vm_serves_the_next_request() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    let outcomes: [(Option<u16>, &str); 3] = [
        (Some(504), "upstream request timeout"),
        (
            Some(503),
            "upstream connect error or disconnect/reset before headers",
        ),
        (None, ""),
    ];
    let mut id = 2;
    for (status, failure) in outcomes {
        let (mut failed, _) = request(&root, &host, id, "/a", Some("bad"));
        let token = host.dispatched().last().unwrap().token;
        host.enter(id);
        host.answer(status, failure);
        failed.on_http_call_response(token, usize::from(status.is_some()), failure.len(), 0);
        let (mut next, _) = request(&root, &host, id + 1, "/a", Some(&format!("good-{id}")));
        let token = host.dispatched().last().unwrap().token;
        answer(&host, &mut next, id + 1, token, 200, r#"{"uid":4}"#);
        assert_eq!(uid(&host, id + 1), ["4"], "after {status:?}");
        id += 2;
    }
    assert_eq!(host.resumed(), [3, 5, 7]);
    root.on_tick();
    assert_eq!(
        (
            host.counter("easy_jwt.token_server_failure"),
            host.counter("easy_jwt.allowed")
        ),
        (3, 3)
    );
}

// --- Separate `authorization` entries ---------------------------------------------------------

/// Stream 2 on `root` with 100 separate `authorization` entries, `first` then `Bearer t1`…
fn hundred_authorizations(root: &Root, host: &FakeHost, first: &str) -> Action {
    let mut values = vec![first.to_string()];
    values.extend((1..100).map(|n| format!("Bearer t{n}")));
    let mut headers = vec![(":path", "/a")];
    headers.extend(values.iter().map(|v| ("authorization", v.as_str())));
    host.stream(2, &headers);
    root.filter(2).on_http_request_headers(headers.len(), true)
}

#[test]
fn of_100_authorization_entries_the_first_is_judged() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    hundred_authorizations(&root, &host, "Bearer t0");
    let bodies: Vec<Vec<u8>> = host.dispatched().into_iter().map(|c| c.body).collect();
    assert_eq!(bodies, [br#"{"token":"t0"}"#.to_vec()]);
}

#[test]
fn strip_token_removes_every_one_of_100_authorization_entries() {
    let host = FakeHost::new();
    let root = vm(&host, json!({"stripToken": true}));
    hundred_authorizations(&root, &host, "Bearer t0");
    let mut stream = root.filter(2);
    answer(&host, &mut stream, 2, 1, 200, r#"{"uid":1}"#);
    assert_eq!(host.resumed(), [2]);
    assert!(host.header_values(2, "authorization").is_empty());
}

#[test]
fn a_basic_first_of_100_authorization_entries_is_an_invalid_scheme() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    let action = hundred_authorizations(&root, &host, "Basic x");
    let reply = &host.replies()[0];
    assert_eq!(
        (action, reply.status, body(reply), host.dispatched().len()),
        (
            Action::Pause,
            401,
            r#"{"message":"invalid authorization scheme"}"#.into(),
            0
        )
    );
}

// --- A non-ASCII path -------------------------------------------------------------------------

#[test]
fn a_non_ascii_path_with_a_dot_segment_normalises_and_is_ignored() {
    let host = FakeHost::new();
    let root = vm(&host, json!({"ignoreUrls": ["/"]}));
    // `/café/..` is `/`: the ignored root, passed on with the anonymous uid, as sent.
    let (_stream, action) = request(&root, &host, 2, "/caf\u{e9}/..", None);
    assert_eq!(
        (action, uid(&host, 2), host.header_values(2, ":path")),
        (
            Action::Continue,
            vec!["0".to_string()],
            vec!["/caf\u{e9}/..".to_string()]
        )
    );
}

// --- Failing hostcalls ------------------------------------------------------------------------

#[test]
fn a_refused_counter_is_logged_once_and_never_counted() {
    capture_logs();
    let host = FakeHost::new();
    host.refuse_counter("easy_jwt.ignored");
    let mut root = vm(&host, json!({}));
    // Configured again: the counters defined the first time are kept, not defined again.
    assert!(root.on_configure(0));
    request(&root, &host, 2, "/public/x", None);
    request(&root, &host, 3, "/a", Some("anon"));
    root.on_tick();
    let refused: Vec<String> = logged()
        .into_iter()
        .filter(|l| l.text.contains("easy_jwt.ignored"))
        .map(|l| format!("{}: {}", l.level, l.text))
        .collect();
    assert_eq!(
        refused,
        ["WARN: easy-jwt: cannot define counter easy_jwt.ignored: BadArgument"]
    );
    let counters = host.process().counters.borrow().clone();
    assert_eq!(
        counters.into_iter().collect::<Vec<_>>(),
        [("easy_jwt.anonymous".to_string(), 1)],
        "the ignored request is not counted; the others are"
    );
}

#[test]
fn a_failed_header_read_refuses_the_request_as_missing_token() {
    let host = FakeHost::new();
    let root = vm(&host, json!({}));
    host.fail_header_reads();
    let (_stream, action) = request(&root, &host, 2, "/a", Some("tok"));
    let reply = &host.replies()[0];
    assert_eq!(
        (action, reply.status, body(reply), host.dispatched().len()),
        (
            Action::Pause,
            401,
            r#"{"message":"missing token"}"#.into(),
            0
        )
    );
}

// --- Hostcalls per request --------------------------------------------------------------------
//
// A regression pin of what each path costs today (each `Host` method is one hostcall in Envoy):
// `request_headers` (proxy_get_header_map_pairs, read once per request), `property`
// (proxy_get_property), `now_secs` (proxy_get_current_time_nanoseconds, once per tick period),
// `set_tick_period_ms` (arms the root's tick: the first counted request of a period),
// `set_request_header` / `remove_request_header` (proxy_replace / proxy_remove_header_map_value),
// `send_local_reply`, `dispatch` (proxy_http_call), `shared_data` / `set_shared_data`,
// `call_status` (proxy_get_header_map_value `:status`), `call_body` (proxy_get_buffer_bytes),
// `set_effective_context`, `resume_request` (proxy_continue_stream). Each VM starts right after
// a tick (nothing armed, no clock reading), as the first request of a tick period does.

/// A fresh VM on the default test configuration, its tick just run and its counts reset.
fn quiet_vm(host: &Rc<FakeHost>, extra: Value) -> Root {
    let mut root = vm(host, extra);
    root.on_tick();
    host.reset_hostcalls();
    root
}

fn costs(pairs: &[(&'static str, usize)]) -> BTreeMap<&'static str, usize> {
    pairs.iter().copied().collect()
}

#[test]
fn an_ignored_request_costs_three_hostcalls() {
    let host = FakeHost::new();
    let root = quiet_vm(&host, json!({}));
    request(&root, &host, 2, "/public/x", None);
    assert_eq!(
        host.hostcalls(),
        costs(&[
            ("request_headers", 1),
            ("set_request_header", 1), // the anonymous uid
            ("set_tick_period_ms", 1), // the count's flush
        ])
    );
}

#[test]
fn a_request_without_a_token_costs_three_hostcalls() {
    let host = FakeHost::new();
    let root = quiet_vm(&host, json!({}));
    request(&root, &host, 2, "/a", None);
    assert_eq!(
        host.hostcalls(),
        costs(&[
            ("request_headers", 1),
            ("send_local_reply", 1),
            ("set_tick_period_ms", 1),
        ])
    );
}

#[test]
fn an_anonymous_request_costs_three_hostcalls() {
    let host = FakeHost::new();
    let root = quiet_vm(&host, json!({}));
    request(&root, &host, 2, "/a", Some("anon"));
    assert_eq!(
        host.hostcalls(),
        costs(&[
            ("request_headers", 1),
            ("set_request_header", 1),
            ("set_tick_period_ms", 1),
        ])
    );
}

#[test]
fn a_cache_hit_costs_four_hostcalls() {
    let host = FakeHost::new();
    let mut root = vm(&host, json!({}));
    let (mut first, _) = request(&root, &host, 2, "/a", Some("tok"));
    answer(&host, &mut first, 2, 1, 200, r#"{"uid":1}"#);
    root.on_tick();
    host.reset_hostcalls();
    request(&root, &host, 3, "/a", Some("tok"));
    assert_eq!(
        host.hostcalls(),
        costs(&[
            ("request_headers", 1),
            ("now_secs", 1),           // the tick period's clock reading
            ("set_tick_period_ms", 1), // armed by the reading
            ("set_request_header", 1), // the uid
        ])
    );
}

#[test]
fn a_token_call_costs_five_hostcalls_then_six_for_its_answer() {
    let host = FakeHost::new();
    let root = quiet_vm(&host, json!({}));
    let (mut stream, _) = request(&root, &host, 2, "/a", Some("tok"));
    let headers = host.hostcalls();
    host.reset_hostcalls();
    answer(&host, &mut stream, 2, 1, 200, r#"{"uid":1}"#);
    assert_eq!(
        (headers, host.hostcalls()),
        (
            costs(&[
                ("request_headers", 1),
                ("now_secs", 1),           // the cache lookup's clock reading
                ("set_tick_period_ms", 1), // armed by the reading
                ("shared_data", 1),        // the shared slot, after this VM's map missed
                ("dispatch", 1),
            ]),
            costs(&[
                ("call_status", 1),
                ("call_body", 1),
                ("set_shared_data", 1),    // the answer, into the shared slot
                ("set_request_header", 1), // the uid (on the receiving stream: no context switch)
                ("resume_request", 1),
            ])
        )
    );
}
