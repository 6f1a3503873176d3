//! `tokenServerRetries` in the adapter, over the fake host: which answers are sent again, the
//! budget each attempt gets, waiters kept until the final answer, only that answer cached, the
//! re-send made by whichever context received the failure.

use crate::proxy::fake::FakeHost;
use crate::proxy::host::Action;
use crate::proxy::tests::{answer, request, uid, vm};
use serde_json::json;

const UNAVAILABLE: &str = r#"{"message":"maintenance"}"#;

fn retrying(host: &std::rc::Rc<FakeHost>, retries: u8) -> crate::proxy::filter::Root {
    vm(
        host,
        json!({"tokenServerRetries": retries, "tokenServerTimeoutMs": 1000}),
    )
}

#[test]
fn a_503_is_sent_again_and_the_waiters_get_the_final_answer() {
    let host = FakeHost::new();
    let mut root = retrying(&host, 2);
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    let (_follower, _) = request(&root, &host, 3, "/b", Some("tok"));
    let first = host.dispatched()[0].token;
    answer(&host, &mut leader, 2, first, 503, UNAVAILABLE);
    assert!(
        host.resumed().is_empty() && host.replies().is_empty(),
        "both still wait"
    );
    let calls = host.dispatched();
    assert_eq!(calls.len(), 2, "sent again");
    assert_eq!(
        calls[1].context, 2,
        "by the context that received the failure"
    );
    assert_eq!(calls[1].body, calls[0].body);
    answer(&host, &mut leader, 2, calls[1].token, 200, r#"{"uid":4}"#);
    assert_eq!(host.resumed(), [2, 3]);
    assert_eq!(
        (uid(&host, 2), uid(&host, 3)),
        (vec!["4".into()], vec!["4".into()])
    );
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.token_server_retry"), 1);
    assert_eq!(host.counter("easy_jwt.allowed"), 2);
    assert_eq!(host.counter("easy_jwt.token_server_failure"), 0);
    // Only the final answer is cached: the next request is a hit.
    let (_later, action) = request(&root, &host, 4, "/c", Some("tok"));
    assert_eq!(action, Action::Continue);
    assert_eq!(host.dispatched().len(), 2);
}

#[test]
fn a_reset_a_502_and_a_504_are_sent_again_too() {
    for status in [None, Some(502), Some(504)] {
        let host = FakeHost::new();
        let root = retrying(&host, 1);
        let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
        let first = host.dispatched()[0].token;
        host.enter(2);
        host.answer(status, "");
        leader.on_http_call_response(first, 0, 0, 0);
        assert_eq!(host.dispatched().len(), 2, "{status:?}");
    }
}

#[test]
fn a_denial_a_500_and_a_bad_200_are_final() {
    for (status, body) in [
        (401, r#"{"message":"no"}"#),
        (403, r#"{"message":"no"}"#),
        (500, r#"{"message":"boom"}"#),
        (200, "not json"),
        (429, ""),
    ] {
        let host = FakeHost::new();
        let mut root = retrying(&host, 3);
        let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
        let first = host.dispatched()[0].token;
        answer(&host, &mut leader, 2, first, status, body);
        assert_eq!(host.dispatched().len(), 1, "{status} is never sent again");
        assert_eq!(host.replies().len(), 1, "{status} answered at once");
        root.on_tick();
        assert_eq!(host.counter("easy_jwt.token_server_retry"), 0);
    }
}

#[test]
fn retries_run_out_and_the_last_failure_is_the_answer() {
    let host = FakeHost::new();
    let mut root = retrying(&host, 2);
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    for attempt in 0..3 {
        let token = host.dispatched()[attempt].token;
        answer(&host, &mut leader, 2, token, 503, UNAVAILABLE);
    }
    assert_eq!(host.dispatched().len(), 3, "one attempt and two re-sends");
    let replies = host.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(
        (replies[0].status, replies[0].body.as_slice()),
        (401, UNAVAILABLE.as_bytes())
    );
    root.on_tick();
    assert_eq!(host.counter("easy_jwt.token_server_retry"), 2);
    assert_eq!(host.counter("easy_jwt.token_server_failure"), 1);
    // Failures are never cached: the next request calls.
    request(&root, &host, 3, "/a", Some("tok"));
    assert_eq!(host.dispatched().len(), 4);
}

#[test]
fn each_attempt_gets_what_is_left_of_the_budget() {
    let host = FakeHost::new();
    let root = retrying(&host, 3);
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    assert_eq!(host.dispatched()[0].timeout_ms, 1000);
    host.advance_ms(600);
    answer(&host, &mut leader, 2, host.dispatched()[0].token, 503, "");
    assert_eq!(
        host.dispatched()[1].timeout_ms,
        400,
        "the rest of the second"
    );
    host.advance_ms(250);
    answer(&host, &mut leader, 2, host.dispatched()[1].token, 503, "");
    assert_eq!(
        host.dispatched()[2].timeout_ms,
        150,
        "…and of what is left then"
    );
    host.advance_ms(60);
    // 90 ms left is under a tenth of the budget: not worth a fourth attempt.
    answer(&host, &mut leader, 2, host.dispatched()[2].token, 503, "");
    assert_eq!(host.dispatched().len(), 3);
    assert_eq!(host.replies()[0].status, 401);
}

#[test]
fn without_retries_the_clock_is_not_read_for_a_call() {
    let host = FakeHost::new();
    let root = vm(&host, json!({"cacheTtlSeconds": 0}));
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    answer(&host, &mut leader, 2, host.dispatched()[0].token, 503, "");
    assert_eq!(host.dispatched().len(), 1);
    assert_eq!(host.hostcalls().get("now_ms"), None);
}

#[test]
fn a_root_that_calls_again_for_orphans_also_retries() {
    let host = FakeHost::new();
    let mut root = retrying(&host, 1);
    let (mut leader, _) = request(&root, &host, 2, "/a", Some("tok"));
    let (_follower, _) = request(&root, &host, 3, "/a", Some("tok"));
    host.enter(2);
    leader.on_done();
    root.on_tick();
    let again = host.dispatched()[1].token;
    host.enter(1);
    host.answer(Some(503), "");
    root.on_http_call_response(again, 0, 0, 0);
    let calls = host.dispatched();
    assert_eq!(calls.len(), 3, "the root's call was sent again");
    host.answer(Some(200), r#"{"uid":9}"#);
    root.on_http_call_response(calls[2].token, 1, 9, 0);
    assert_eq!(host.resumed(), [3]);
    assert_eq!(uid(&host, 3), ["9"]);
}
