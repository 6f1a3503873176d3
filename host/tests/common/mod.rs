//! Shared helpers for the host tests: locate the test plugins, start VMs, read probe logs.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::OnceLock;

use easy_jwt_host::{HostEnv, Plugin, StreamId, StreamProps, StreamState, Vm, VmConfig};

/// Path of a test plugin built by `make build-test-plugins`.
pub fn wasm_path(name: &str) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root
        .join("target/wasm32-wasip1/wasm-release")
        .join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make build-test-plugins` first \
         (cargo build --target wasm32-wasip1 --profile wasm-release -p probe-plugin -p noop-plugin)",
        path.display()
    );
    path
}

/// The compiled probe plugin (compiled once per test binary).
pub fn probe() -> &'static Plugin {
    static PROBE: OnceLock<Plugin> = OnceLock::new();
    PROBE.get_or_init(|| Plugin::load(wasm_path("probe_plugin")).expect("probe plugin compiles"))
}

/// The compiled noop plugin.
pub fn noop() -> &'static Plugin {
    static NOOP: OnceLock<Plugin> = OnceLock::new();
    NOOP.get_or_init(|| Plugin::load(wasm_path("noop_plugin")).expect("noop plugin compiles"))
}

/// A configuration with the `auth` cluster known and `config` as plugin configuration.
pub fn config(plugin_config: &str) -> VmConfig {
    VmConfig {
        plugin_name: "probe".to_string(),
        root_id: "probe-root".to_string(),
        vm_id: "probe-vm".to_string(),
        plugin_configuration: plugin_config.as_bytes().to_vec(),
        clusters: BTreeSet::from(["auth".to_string()]),
        ..VmConfig::default()
    }
}

/// A started probe VM on a fresh environment.
pub fn probe_vm() -> Vm {
    Vm::start(probe(), &HostEnv::new(), config("{}")).expect("probe starts")
}

/// Request headers for `GET /path` with the given probe actions.
pub fn request(actions: &str) -> Vec<(String, String)> {
    let mut h = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), "/p/a?x=1".to_string()),
        (":authority".to_string(), "example.com".to_string()),
        (":scheme".to_string(), "https".to_string()),
        ("x-request-id".to_string(), "rid-1".to_string()),
    ];
    if !actions.is_empty() {
        h.push(("x-probe".to_string(), actions.to_string()));
    }
    h
}

/// New stream + request headers (end of stream) with the given actions.
pub fn send(vm: &mut Vm, actions: &str) -> (StreamId, StreamState) {
    let id = vm.new_stream(StreamProps::default());
    let state = vm.on_request_headers(id, request(actions), true);
    (id, state)
}

/// The probe's log lines (`probe: ` prefix removed), in order.
pub fn probe_logs(vm: &Vm) -> Vec<String> {
    vm.logs()
        .iter()
        .filter_map(|r| r.message.strip_prefix("probe: ").map(str::to_string))
        .collect()
}

/// The first probe log line starting with `prefix` (panics with all logs if none).
pub fn line(vm: &Vm, prefix: &str) -> String {
    let logs = probe_logs(vm);
    logs.iter()
        .find(|l| l.starts_with(prefix))
        .cloned()
        .unwrap_or_else(|| panic!("no probe log starting with {prefix:?}; logs: {logs:#?}"))
}

/// Index of the first probe log line starting with `prefix`.
pub fn position(vm: &Vm, prefix: &str) -> usize {
    probe_logs(vm)
        .iter()
        .position(|l| l.starts_with(prefix))
        .unwrap_or_else(|| {
            panic!(
                "no probe log starting with {prefix:?}; logs: {:#?}",
                probe_logs(vm)
            )
        })
}
