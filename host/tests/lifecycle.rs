//! docs/host-semantics.md §1 lifecycle: start-up order, root id 1, lazy context creation,
//! log → done → delete.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use easy_jwt_host::{HostEnv, StreamProps, StreamState, Vm};

#[test]
fn startup_runs_initialize_then_main_then_root_context_one() {
    let vm = probe_vm();
    let logs = probe_logs(&vm);
    eprintln!("{logs:#?}");
    assert_eq!(logs[0], "init");
    assert_eq!(logs[1], "main initialized=1");
    assert_eq!(logs[2], "root_id=1");
    assert_eq!(logs[3], "vm_start size=0");
    assert_eq!(logs[4], "configure size=2 config=Some(2)");
    assert!(vm.configured());
    assert!(vm.failed().is_none());
}

#[test]
fn probe_imports_are_all_provided() {
    let imports = probe().imports();
    eprintln!("{imports:?}");
    assert!(imports
        .iter()
        .any(|(m, n)| m == "wasi_snapshot_preview1" && n == "fd_write"));
}

#[test]
fn context_creation_is_lazy_and_ids_are_never_reused() {
    let mut vm = probe_vm();
    let a = vm.new_stream(StreamProps::default());
    let b = vm.new_stream(StreamProps::default());
    assert_eq!((a.0, b.0), (2, 3));
    assert!(!probe_logs(&vm).iter().any(|l| l.starts_with("create")));
    vm.on_request_headers(b, request(""), true);
    assert_eq!(line(&vm, "create"), "create ctx=3");
    vm.end_stream(b);
    let c = vm.new_stream(StreamProps::default());
    assert_eq!(c.0, 4);
    assert_eq!(vm.state(b), StreamState::Ended);
}

#[test]
fn end_of_stream_runs_log_then_done_then_delete() {
    let mut vm = probe_vm();
    let (id, state) = send(&mut vm, "");
    assert_eq!(state, StreamState::Continued);
    vm.end_stream(id);
    let log = position(&vm, "log ctx=2");
    let done = position(&vm, "done ctx=2");
    let delete = position(&vm, "delete ctx=2");
    assert!(log < done && done < delete, "{:#?}", probe_logs(&vm));
    // §2: during on_log the access-log maps are readable; a missing map is NotFound (1).
    assert_eq!(
        line(&vm, "log ctx=2"),
        "log ctx=2 path=(0, Some(\"/p/a?x=1\")) trailer=(1, None)"
    );
}

#[test]
fn end_stream_creates_the_context_for_the_access_log() {
    let mut vm = probe_vm();
    let id = vm.new_stream(StreamProps::default());
    vm.end_stream(id);
    assert!(position(&vm, "create ctx=2") < position(&vm, "log ctx=2"));
}

#[test]
fn plugin_configuration_is_readable_only_during_configure() {
    let mut vm = probe_vm();
    send(&mut vm, "misc");
    // NotFound (1) at request time; the VM configuration is always readable (empty → None).
    assert_eq!(
        line(&vm, "plugin_config_at_request"),
        "plugin_config_at_request (1, 0)"
    );
    assert_eq!(line(&vm, "vm_config"), "vm_config Ok(None)");
}

#[test]
fn empty_plugin_configuration_arrives_as_zero_bytes() {
    let vm = Vm::start(probe(), &HostEnv::new(), config("")).unwrap();
    assert_eq!(line(&vm, "configure"), "configure size=0 config=None");
    assert!(vm.configured());
}

#[test]
fn configure_returning_false_is_reported_not_an_error() {
    let vm = Vm::start(probe(), &HostEnv::new(), config("fail_configure")).unwrap();
    assert!(!vm.configured());
}

#[test]
fn restricted_hostcall_during_startup_traps() {
    let mut cfg = config("{}");
    cfg.environment = vec![("PROBE_START".to_string(), "hostcall".to_string())];
    let err = Vm::start(probe(), &HostEnv::new(), cfg)
        .err()
        .expect("start must fail");
    assert!(err.to_string().contains("restricted_callback"), "{err}");
}

#[test]
fn panic_during_startup_is_a_start_error() {
    let mut cfg = config("{}");
    cfg.environment = vec![("PROBE_START".to_string(), "panic".to_string())];
    assert!(Vm::start(probe(), &HostEnv::new(), cfg).is_err());
}

#[test]
fn each_vm_has_its_own_globals() {
    let env = HostEnv::new();
    let mut one = Vm::start(probe(), &env, config("{}")).unwrap();
    let mut two = Vm::start(probe(), &env, config("{}")).unwrap();
    send(&mut one, "");
    send(&mut one, "");
    send(&mut two, "");
    assert!(line(&two, "request_headers").ends_with("vm_requests=1"));
    assert!(probe_logs(&one)
        .iter()
        .any(|l| l.ends_with("vm_requests=2")));
}

#[test]
fn tick_runs_on_the_root_context_when_a_period_is_set() {
    let mut vm = Vm::start(probe(), &HostEnv::new(), config("tick_ms=250")).unwrap();
    assert_eq!(
        vm.tick_period(),
        Some(std::time::Duration::from_millis(250))
    );
    vm.tick();
    vm.tick();
    assert_eq!(probe_logs(&vm).iter().filter(|l| *l == "tick").count(), 2);
    let mut quiet = probe_vm();
    quiet.tick();
    assert!(!probe_logs(&quiet).iter().any(|l| l == "tick"));
}

#[test]
fn noop_plugin_continues() {
    let mut vm = Vm::start(noop(), &HostEnv::new(), config("")).unwrap();
    let (id, state) = send(&mut vm, "");
    assert_eq!(state, StreamState::Continued);
    assert_eq!(
        vm.on_response_headers(id, vec![(":status".into(), "200".into())], true),
        StreamState::Continued
    );
    vm.end_stream(id);
    assert!(vm.failed().is_none());
}
