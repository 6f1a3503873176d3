//! docs/host-semantics.md §4 local replies: deferred, passed through the plugin's response
//! callbacks, content rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use easy_jwt_host::StreamState;

fn reply_of(state: StreamState) -> easy_jwt_host::LocalReply {
    match state {
        StreamState::LocalReply(r) => r,
        other => panic!("expected a local reply, got {other:?}"),
    }
}

#[test]
fn local_reply_runs_after_the_callback_and_through_on_response_headers_and_body() {
    let mut vm = probe_vm();
    let (_, state) = send(&mut vm, "reply");
    let reply = reply_of(state);
    assert_eq!(reply.status, 403);
    assert_eq!(reply.body, b"denied");
    // Deferred: the callback finished before the response callbacks ran.
    assert!(position(&vm, "after_send") < position(&vm, "request_headers_return"));
    assert!(position(&vm, "request_headers_return") < position(&vm, "response_headers"));
    assert!(line(&vm, "response_headers").contains("status=403 n=4 eos=false"));
    assert!(line(&vm, "response_body").contains("size=6 eos=true body=\"denied\""));
    assert_eq!(
        reply.headers,
        vec![
            ("x-reply".to_string(), "1".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("content-length".to_string(), "6".to_string()),
            ("x-probe-response-seen".to_string(), "403".to_string()),
        ]
    );
}

#[test]
fn empty_body_reply_drops_content_type_and_length_and_skips_body_callback() {
    let mut vm = probe_vm();
    let (_, state) = send(&mut vm, "reply-empty");
    let reply = reply_of(state);
    assert!(reply.body.is_empty());
    assert!(!reply
        .headers
        .iter()
        .any(|(k, _)| k == "content-type" || k == "content-length"));
    assert!(line(&vm, "response_headers").contains("eos=true"));
    assert!(!probe_logs(&vm)
        .iter()
        .any(|l| l.starts_with("response_body")));
}

#[test]
fn second_local_reply_on_a_stream_is_bad_argument() {
    let mut vm = probe_vm();
    let (_, state) = send(&mut vm, "reply-twice");
    assert_eq!(line(&vm, "second_reply"), "second_reply 2");
    assert_eq!(reply_of(state).body, b"first");
}

#[test]
fn local_reply_from_the_reply_response_callback_is_bad_argument() {
    let mut vm = probe_vm();
    let (_, state) = send(&mut vm, "reply,reply-again-in-response");
    assert_eq!(line(&vm, "second_reply"), "second_reply 2");
    assert_eq!(reply_of(state).status, 403);
    assert!(vm.failed().is_none());
}

#[test]
fn local_reply_wins_over_a_later_resume() {
    let mut vm = probe_vm();
    let (id, state) = send(&mut vm, "reply-then-resume");
    assert_eq!(reply_of(state).status, 403);
    assert!(vm.take_events().is_empty());
    vm.end_stream(id);
    assert_eq!(vm.state(id), StreamState::Ended);
}

#[test]
fn local_reply_details_come_from_the_plugin() {
    let mut vm = probe_vm();
    let (_, state) = send(&mut vm, "reply");
    // rust-sdk 0.2.5 sends no details string.
    assert_eq!(reply_of(state).details, "");
}
