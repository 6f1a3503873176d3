//! docs/host-semantics.md §2 properties: plugin identity, route/cluster names, request.* from the
//! current headers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use easy_jwt_host::{Flavor, HostEnv, StreamProps, Vm, VmConfig};

fn route_and_cluster() -> StreamProps {
    StreamProps {
        route_name: Some("default/my-route".into()),
        cluster_name: Some("outbound|80||svc.ns.svc.cluster.local".into()),
        extra: Vec::new(),
    }
}

#[test]
fn upstream_envoy_serves_only_the_xds_route_and_cluster_names() {
    let mut vm = probe_vm();
    let id = vm.new_stream(route_and_cluster());
    vm.on_request_headers(id, request("props"), true);
    let logs = probe_logs(&vm);
    for e in [
        "prop xds.route_name=Some(\"default/my-route\")",
        "prop xds.cluster_name=Some(\"outbound|80||svc.ns.svc.cluster.local\")",
        "prop route_name=None",
        "prop cluster_name=None",
    ] {
        assert!(logs.iter().any(|l| l == e), "missing {e:?} in {logs:#?}");
    }
}

#[test]
fn properties_as_higress_envoy() {
    let mut vm = Vm::start(
        probe(),
        &HostEnv::new(),
        VmConfig {
            flavor: Flavor::Higress,
            ..config("{}")
        },
    )
    .expect("probe starts");
    let props = StreamProps {
        route_name: Some("default/my-route".into()),
        cluster_name: Some("outbound|80||svc.ns.svc.cluster.local".into()),
        extra: vec![("custom.thing".into(), b"xyz".to_vec())],
    };
    let id = vm.new_stream(props);
    vm.on_request_headers(id, request("props"), true);
    let expect = [
        "prop plugin_name=Some(\"probe\")",
        "prop plugin_root_id=Some(\"probe-root\")",
        "prop plugin_vm_id=Some(\"probe-vm\")",
        "prop route_name=Some(\"default/my-route\")",
        "prop cluster_name=Some(\"outbound|80||svc.ns.svc.cluster.local\")",
        "prop xds.route_name=Some(\"default/my-route\")",
        "prop xds.cluster_name=Some(\"outbound|80||svc.ns.svc.cluster.local\")",
        "prop request.path=Some(\"/p/a?x=1\")",
        "prop request.url_path=Some(\"/p/a\")",
        "prop request.host=Some(\"example.com\")",
        "prop request.method=Some(\"GET\")",
        "prop request.scheme=Some(\"https\")",
        "prop request.id=Some(\"rid-1\")",
        "prop request.query=Some(\"x=1\")",
        "prop request.headers.x-probe=Some(\"props\")",
        "prop custom.thing=Some(\"xyz\")",
        "prop no.such=None",
        "prop probe.set=Some(\"v1\")",
    ];
    let logs = probe_logs(&vm);
    for e in expect {
        assert!(logs.iter().any(|l| l == e), "missing {e:?} in {logs:#?}");
    }
    assert!(
        line(&vm, "prop request.headers bytes=").starts_with("prop request.headers bytes=Some(")
    );
}

#[test]
fn missing_route_and_cluster_are_not_found() {
    let mut vm = probe_vm();
    send(&mut vm, "props");
    assert!(probe_logs(&vm).iter().any(|l| l == "prop route_name=None"));
    assert!(probe_logs(&vm)
        .iter()
        .any(|l| l == "prop cluster_name=None"));
    assert!(probe_logs(&vm)
        .iter()
        .any(|l| l == "prop xds.route_name=None"));
}
