//! The in-process host's metering (`Plugin::load_metered`, `Vm::fuel_consumed`,
//! `Vm::hostcalls`) on the no-op and call-floor plugins (`make build-test-plugins` builds them).
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

use easy_jwt_host::vm::{CallOutcome, StreamProps, StreamState, VmConfig};
use easy_jwt_host::{HostEnv, Plugin, Vm};

fn wasm(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip1/wasm-release")
        .join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "{} is missing: run `make build-test-plugins`",
        path.display()
    );
    path
}

fn get(path: &str) -> Vec<(String, String)> {
    vec![
        (":method".into(), "GET".into()),
        (":path".into(), path.into()),
        (":authority".into(), "x".into()),
        ("authorization".into(), "Bearer abc".into()),
    ]
}

#[test]
fn unmetered_vms_report_nothing() {
    let plugin = Plugin::load(wasm("noop_plugin")).unwrap();
    assert!(!plugin.metered());
    let vm = Vm::start(&plugin, &HostEnv::new(), VmConfig::default()).unwrap();
    assert_eq!(vm.fuel_consumed(), None);
    assert_eq!(vm.hostcalls(), None);
}

#[test]
fn noop_request_burns_fuel_and_makes_no_hostcall() {
    let plugin = Plugin::load_metered(wasm("noop_plugin")).unwrap();
    assert!(plugin.metered());
    let mut vm = Vm::start(&plugin, &HostEnv::new(), VmConfig::default()).unwrap();
    let (fuel0, calls0) = (vm.fuel_consumed().unwrap(), vm.hostcalls().unwrap());
    assert!(fuel0 > 0, "start-up runs guest code");
    let id = vm.new_stream(StreamProps::default());
    assert_eq!(
        vm.on_request_headers(id, get("/"), true),
        StreamState::Continued
    );
    vm.end_stream(id);
    let fuel = vm.fuel_consumed().unwrap() - fuel0;
    assert!((100..100_000).contains(&fuel), "{fuel} wasm instructions");
    assert_eq!(vm.hostcalls().unwrap() - calls0, 0);
}

#[test]
fn call_floor_counts_its_five_hostcalls() {
    let plugin = Plugin::load_metered(wasm("call_floor_plugin")).unwrap();
    let cfg = VmConfig {
        plugin_configuration: b"token-server".to_vec(),
        clusters: ["token-server".to_string()].into(),
        ..VmConfig::default()
    };
    let mut vm = Vm::start(&plugin, &HostEnv::new(), cfg).unwrap();
    let calls0 = vm.hostcalls().unwrap();
    let id = vm.new_stream(StreamProps::default());
    assert_eq!(
        vm.on_request_headers(id, get("/"), true),
        StreamState::Paused
    );
    let calls = vm.take_calls();
    assert_eq!(calls.len(), 1);
    let call = calls.first().unwrap();
    assert_eq!(call.body, br#"{"token":"abc"}"#);
    let answer = CallOutcome::Response {
        headers: vec![(":status".into(), "200".into())],
        body: br#"{"uid":7}"#.to_vec(),
        trailers: vec![],
    };
    vm.deliver_call(call.token, answer);
    assert_eq!(vm.state(id), StreamState::Continued);
    assert!(vm
        .request_headers(id)
        .contains(&("x-auth-user".to_string(), "1".to_string())));
    vm.end_stream(id);
    // get header, http call, set effective context, set header, continue
    assert_eq!(vm.hostcalls().unwrap() - calls0, 5);
}
