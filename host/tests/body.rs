//! docs/host-semantics.md §4 bodies: cumulative size while buffering, body held during StopAll,
//! §2 set rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use easy_jwt_host::{CallOutcome, Event, StreamState};

#[test]
fn body_callback_gets_cumulative_size_while_paused() {
    let mut vm = probe_vm();
    let id = vm.new_stream(Default::default());
    assert_eq!(
        vm.on_request_headers(id, request("body-pause,body-read"), false),
        StreamState::Continued
    );
    assert_eq!(vm.on_request_body(id, b"abc", false), StreamState::Paused);
    assert_eq!(vm.on_request_body(id, b"de", true), StreamState::Continued);
    let logs = probe_logs(&vm);
    assert!(logs.contains(&"request_body ctx=2 size=3 eos=false".to_string()));
    assert!(logs.contains(&"request_body ctx=2 size=5 eos=true".to_string()));
    assert!(logs.contains(&"body \"abcde\"".to_string()));
    assert_eq!(vm.take_request_body(id), b"abcde");
}

#[test]
fn body_is_held_while_headers_are_stopped_and_delivered_after_resume() {
    let mut vm = probe_vm();
    let id = vm.new_stream(Default::default());
    assert_eq!(
        vm.on_request_headers(id, request("call,body-set"), false),
        StreamState::Paused
    );
    assert_eq!(
        vm.on_request_body(id, b"payload", true),
        StreamState::Paused
    );
    assert!(!probe_logs(&vm)
        .iter()
        .any(|l| l.starts_with("request_body")));
    let events = vm.deliver_call(4, CallOutcome::Timeout);
    assert_eq!(events, vec![Event::Resumed(id)]);
    assert!(probe_logs(&vm).contains(&"request_body ctx=2 size=7 eos=true".to_string()));
    assert_eq!(vm.take_request_body(id), b"replaced");
}

#[test]
fn set_buffer_in_the_middle_is_bad_argument() {
    let mut vm = probe_vm();
    let id = vm.new_stream(Default::default());
    vm.on_request_headers(id, request("body-bad-set"), false);
    vm.on_request_body(id, b"abc", true);
    assert_eq!(line(&vm, "body_bad_set"), "body_bad_set 2");
}

#[test]
fn response_body_can_be_rewritten() {
    let mut vm = probe_vm();
    let id = vm.new_stream(Default::default());
    vm.on_request_headers(id, request("resp-body-rewrite"), true);
    vm.on_response_headers(id, vec![(":status".into(), "200".into())], false);
    assert_eq!(
        vm.on_response_body(id, b"orig", true),
        StreamState::Continued
    );
    assert_eq!(vm.take_response_body(id), b"rewritten");
}
