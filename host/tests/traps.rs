//! docs/host-semantics.md §1 VM failure: a trap fails the VM; fail-closed 503 `wasm_fail_stream`,
//! fail-open skip.
//! Also: guest bugs never panic the host.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use easy_jwt_host::{CallOutcome, HostEnv, StreamState, Vm};

fn fail_stream_reply(state: &StreamState) {
    let StreamState::LocalReply(reply) = state else {
        panic!("expected 503 wasm_fail_stream, got {state:?}")
    };
    assert_eq!(reply.status, 503);
    assert_eq!(reply.details, "wasm_fail_stream");
    assert!(reply.body.is_empty());
}

#[test]
fn guest_panic_fails_the_vm_and_later_streams_get_503_without_entering_the_guest() {
    let mut vm = probe_vm();
    let (_, state) = send(&mut vm, "panic");
    fail_stream_reply(&state);
    let message = vm.failed().expect("vm failed").to_string();
    assert!(message.contains("unreachable"), "{message}");
    // The SDK's panic hook logged the panic at critical level.
    assert!(vm
        .logs()
        .iter()
        .any(|r| r.message.contains("probe panic on request")));
    let before = vm.logs().len();
    let (id, state) = send(&mut vm, "");
    fail_stream_reply(&state);
    vm.end_stream(id);
    assert_eq!(vm.logs().len(), before, "the guest must not be entered");
}

#[test]
fn fail_open_skips_the_filter() {
    let mut cfg = config("{}");
    cfg.fail_open = true;
    let mut vm = Vm::start(probe(), &HostEnv::new(), cfg).unwrap();
    let (_, state) = send(&mut vm, "panic");
    assert_eq!(state, StreamState::Continued);
    let (_, state) = send(&mut vm, "");
    assert_eq!(state, StreamState::Continued);
}

#[test]
fn failed_vm_drops_call_deliveries() {
    let mut vm = probe_vm();
    send(&mut vm, "call");
    send(&mut vm, "panic");
    assert!(vm.deliver_call(4, CallOutcome::Timeout).is_empty());
}

#[test]
fn out_of_bounds_pointer_is_invalid_memory_access_not_a_host_panic() {
    let mut vm = probe_vm();
    send(&mut vm, "oob");
    assert_eq!(line(&vm, "oob"), "oob 6");
    assert!(vm.failed().is_none());
}

#[test]
fn misc_hostcall_statuses() {
    let mut vm = probe_vm();
    send(&mut vm, "misc,effective-bad");
    assert_eq!(line(&vm, "log_level_6"), "log_level_6 2");
    assert_eq!(line(&vm, "log_level "), "log_level Ok(Trace)");
    assert_eq!(line(&vm, "foreign"), "foreign Err(NotFound)");
    assert_eq!(line(&vm, "buffer_type_99"), "buffer_type_99 (2, 0)");
    assert_eq!(line(&vm, "effective_self"), "effective_self Ok(())");
    assert_eq!(line(&vm, "effective_bad"), "effective_bad Err(BadArgument)");
    assert!(line(&vm, "time_nanos").starts_with("time_nanos Some("));
}

#[test]
fn stdout_is_info_and_stderr_is_error() {
    let mut vm = probe_vm();
    send(&mut vm, "stdout");
    let logs = vm.logs();
    let out = logs
        .iter()
        .find(|r| r.message == "probe stdout line")
        .unwrap();
    let err = logs
        .iter()
        .find(|r| r.message == "probe stderr line")
        .unwrap();
    assert_eq!(out.level, easy_jwt_host::LogLevel::Info);
    assert_eq!(err.level, easy_jwt_host::LogLevel::Error);
}

#[test]
fn time_comes_from_the_environment_clock() {
    use std::sync::Arc;
    let clock = Arc::new(easy_jwt_host::ManualClock::new(1_000_000_000_000));
    let mut vm = Vm::start(probe(), &HostEnv::with_clock(clock.clone()), config("{}")).unwrap();
    clock.advance(std::time::Duration::from_secs(5));
    send(&mut vm, "misc");
    assert_eq!(line(&vm, "time_nanos"), "time_nanos Some(1005000000000)");
}

#[test]
fn log_level_filters_records() {
    let mut cfg = config("{}");
    cfg.log_level = easy_jwt_host::LogLevel::Warn;
    let mut vm = Vm::start(probe(), &HostEnv::new(), cfg).unwrap();
    send(&mut vm, "misc");
    assert!(probe_logs(&vm).is_empty());
}
