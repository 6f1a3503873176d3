//! docs/host-semantics.md §2 header maps: Envoy's rules and when the map pointers are null.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use easy_jwt_host::StreamState;

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

#[test]
fn add_appends_replace_removes_all_then_appends_remove_removes_all() {
    let mut vm = probe_vm();
    let id = vm.new_stream(Default::default());
    let mut h = request("mutate");
    h.push(("X-Replaced".into(), "old1".into()));
    h.push(("x-replaced".into(), "old2".into()));
    h.push(("x-removed".into(), "1".into()));
    h.push(("x-removed".into(), "2".into()));
    assert_eq!(vm.on_request_headers(id, h, true), StreamState::Continued);
    let out = vm.request_headers(id);
    assert_eq!(header(&out, "x-added"), vec!["a1", "a2"]);
    assert_eq!(header(&out, "x-replaced"), vec!["r"]);
    assert!(header(&out, "x-removed").is_empty());
    assert_eq!(
        out.last().unwrap(),
        &("x-replaced".to_string(), "r".to_string())
    );
    // get returns the first value; size is the byte size.
    let size: usize = out.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert_eq!(
        line(&vm, "mutate"),
        format!("mutate first=Some(\"a1\") size=(0, {size})")
    );
}

#[test]
fn headers_callback_sees_every_entry_and_lowercase_keys() {
    let mut vm = probe_vm();
    let id = vm.new_stream(Default::default());
    let mut h = request("log-headers");
    h.push(("X-Dup".into(), "1".into()));
    h.push(("x-dup".into(), "2".into()));
    vm.on_request_headers(id, h, false);
    assert!(line(&vm, "request_headers ctx=2").starts_with("request_headers ctx=2 n=8 eos=false"));
    assert!(line(&vm, "headers").contains("(\"x-dup\", \"1\"), (\"x-dup\", \"2\")"));
}

#[test]
fn request_map_is_null_after_continue_response_phase_sees_bad_argument() {
    let mut vm = probe_vm();
    let (id, _) = send(&mut vm, "");
    vm.on_response_headers(id, vec![(":status".into(), "200".into())], true);
    // get_value → BadArgument (2); get_pairs → Ok (0) with an empty map.
    assert_eq!(
        line(&vm, "response_phase_request_header"),
        "response_phase_request_header (2, None) pairs=(0, 0)"
    );
    assert_eq!(
        header(&vm.response_headers(id), "x-probe-response-seen"),
        vec!["200"]
    );
}

#[test]
fn request_map_is_null_right_after_resume() {
    let mut vm = probe_vm();
    let (id, state) = send(&mut vm, "resume-then-touch");
    assert_eq!(
        line(&vm, "after_resume"),
        "after_resume add=2 get=(2, None) pairs=(0, 0)"
    );
    // The resume was deferred until the callback returned Pause, then continued the stream.
    assert_eq!(state, StreamState::Continued);
    assert!(header(&vm.request_headers(id), "x-late").is_empty());
}

#[test]
fn call_response_maps_exist_only_inside_the_callback() {
    let mut vm = probe_vm();
    send(&mut vm, "buffers");
    assert_eq!(
        line(&vm, "request_body_in_headers"),
        "request_body_in_headers (1, 0)"
    );
    assert_eq!(line(&vm, "call_body_outside"), "call_body_outside (1, 0)");
    assert_eq!(
        line(&vm, "call_headers_outside"),
        "call_headers_outside (2, None)"
    );
}
