//! docs/host-semantics.md §3 proxy_http_call: checks, tokens, outcomes and delivery to the root
//! context.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use easy_jwt_host::{CallOutcome, Event, StreamState};

fn ok_response() -> CallOutcome {
    CallOutcome::Response {
        headers: vec![
            (":status".into(), "200".into()),
            ("X-Up".into(), "1".into()),
        ],
        body: b"granted".to_vec(),
        trailers: vec![],
    }
}

#[test]
fn dispatch_records_the_call_with_tokens_4_8_12() {
    let mut vm = probe_vm();
    let (id, state) = send(&mut vm, "call-twice");
    assert_eq!(state, StreamState::Paused);
    let (_, _) = send(&mut vm, "call");
    let calls = vm.take_calls();
    assert_eq!(
        calls.iter().map(|c| c.token).collect::<Vec<_>>(),
        vec![4, 8, 12]
    );
    let call = &calls[0];
    assert_eq!(call.cluster, "auth");
    assert_eq!(call.timeout_ms, 1000);
    assert_eq!(call.from_context, id.0);
    assert!(call
        .headers
        .contains(&(":path".to_string(), "/check".to_string())));
    assert_eq!(vm.pending_calls(), 3);
    assert!(vm.take_calls().is_empty());
}

#[test]
fn non_empty_body_adds_content_length() {
    let mut vm = probe_vm();
    let id = vm.new_stream(Default::default());
    let mut h = request("call");
    h.push(("x-probe-call-body".into(), "abc".into()));
    vm.on_request_headers(id, h, true);
    let call = vm.take_calls().remove(0);
    assert_eq!(call.body, b"abc");
    assert!(call
        .headers
        .contains(&("content-length".to_string(), "3".to_string())));
}

#[test]
fn bad_dispatches_return_bad_argument() {
    for action in [
        "call-unknown-cluster",
        "call-missing-path",
        "call-missing-method",
        "call-missing-authority",
        "call-big-timeout",
    ] {
        let mut vm = probe_vm();
        let (_, state) = send(&mut vm, action);
        assert_eq!(
            line(&vm, "dispatch"),
            "dispatch Err(BadArgument)",
            "{action}"
        );
        assert_eq!(state, StreamState::Continued);
        assert!(vm.take_calls().is_empty());
    }
}

#[test]
fn response_is_delivered_to_the_root_and_resumes_the_stream() {
    let mut vm = probe_vm();
    let (id, _) = send(&mut vm, "call");
    let token = vm.take_calls()[0].token;
    let events = vm.deliver_call(token, ok_response());
    assert_eq!(events, vec![Event::Resumed(id)]);
    assert_eq!(vm.state(id), StreamState::Continued);
    assert_eq!(
        line(&vm, "call_response"),
        "call_response ctx=2 token=4 headers=2 body=7 trailers=0"
    );
    assert_eq!(
        line(&vm, "call_response_headers"),
        "call_response_headers [(\":status\", \"200\"), (\"x-up\", \"1\")]"
    );
    assert_eq!(
        line(&vm, "call_response_body"),
        "call_response_body \"granted\""
    );
    // No trailers: the trailer map is null → BadArgument (2).
    assert_eq!(
        line(&vm, "call_trailer_value"),
        "call_trailer_value (2, None)"
    );
    // Adding a request header while still paused is fine; it goes upstream.
    assert_eq!(line(&vm, "add_while_paused"), "add_while_paused 0");
    assert!(vm
        .request_headers(id)
        .contains(&("x-probe-auth".to_string(), "ok".to_string())));
    assert_eq!(vm.pending_calls(), 0);
}

#[test]
fn timeout_is_a_504_router_reply() {
    let mut vm = probe_vm();
    send(&mut vm, "call");
    vm.deliver_call(4, CallOutcome::Timeout);
    assert_eq!(
        line(&vm, "call_response_headers"),
        "call_response_headers [(\":status\", \"504\"), (\"content-length\", \"24\"), (\"content-type\", \"text/plain\")]"
    );
    assert_eq!(
        line(&vm, "call_response_body"),
        "call_response_body \"upstream request timeout\""
    );
}

#[test]
fn connect_failure_is_a_503_router_reply() {
    let mut vm = probe_vm();
    send(&mut vm, "call");
    vm.deliver_call(4, CallOutcome::ConnectFailure);
    assert!(line(&vm, "call_response_headers").contains("(\":status\", \"503\")"));
    assert_eq!(
        line(&vm, "call_response_body"),
        "call_response_body \"upstream connect error or disconnect/reset before headers. reset reason: connection failure\""
    );
}

#[test]
fn reset_is_the_failure_path_with_status_11() {
    let mut vm = probe_vm();
    send(&mut vm, "call");
    vm.deliver_call(4, CallOutcome::Reset);
    assert_eq!(
        line(&vm, "call_response"),
        "call_response ctx=2 token=4 headers=0 body=0 trailers=0"
    );
    assert_eq!(
        line(&vm, "call_response_headers"),
        "call_response_headers []"
    );
    assert_eq!(
        line(&vm, "call_status code"),
        "call_status code=11 message=Some(\"reset\")"
    );
    assert_eq!(
        line(&vm, "call_status_header"),
        "call_status_header (2, None)"
    );
    assert!(vm.failed().is_none());
}

#[test]
fn call_whose_stream_ended_is_still_delivered_and_dropped_by_the_sdk() {
    let mut vm = probe_vm();
    let (id, _) = send(&mut vm, "call");
    vm.end_stream(id);
    assert_eq!(vm.pending_calls(), 1);
    let events = vm.deliver_call(4, ok_response());
    assert!(events.is_empty());
    assert!(vm.failed().is_none(), "{:?}", vm.failed());
    assert!(!probe_logs(&vm)
        .iter()
        .any(|l| l.starts_with("call_response")));
    assert_eq!(vm.pending_calls(), 0);
}

#[test]
fn unknown_or_repeated_tokens_are_not_delivered() {
    let mut vm = probe_vm();
    send(&mut vm, "call");
    assert!(vm.deliver_call(400, ok_response()).is_empty());
    vm.deliver_call(4, ok_response());
    assert!(vm.deliver_call(4, ok_response()).is_empty());
    assert!(vm.failed().is_none());
}

#[test]
fn local_reply_from_call_response_is_an_event() {
    let mut vm = probe_vm();
    let id = vm.new_stream(Default::default());
    vm.on_request_headers(id, request("call,on-response-reply"), true);
    let events = vm.deliver_call(4, ok_response());
    let [Event::LocalReply(got, reply)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert_eq!(*got, id);
    assert_eq!(reply.status, 401);
    assert_eq!(reply.body, b"no");
}
