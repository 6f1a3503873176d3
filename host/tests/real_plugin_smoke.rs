//! Smoke check: the shipped plugin links against this host (every import it uses exists).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::PathBuf;

use easy_jwt_host::{HostEnv, Plugin, Vm, VmConfig};

#[test]
fn shipped_plugin_imports_are_provided_and_it_starts() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/wasm32-wasip1/wasm-release/easy_jwt.wasm");
    if !path.exists() {
        eprintln!("skipped: {} not built (make build)", path.display());
        return;
    }
    let plugin = Plugin::load(&path).unwrap();
    let imports = plugin.imports();
    let known_env = [
        "proxy_log",
        "proxy_get_log_level",
        "proxy_get_current_time_nanoseconds",
        "proxy_set_tick_period_milliseconds",
        "proxy_call_foreign_function",
        "proxy_get_header_map_pairs",
        "proxy_set_header_map_pairs",
        "proxy_get_header_map_size",
        "proxy_get_header_map_value",
        "proxy_add_header_map_value",
        "proxy_replace_header_map_value",
        "proxy_remove_header_map_value",
        "proxy_get_buffer_bytes",
        "proxy_set_buffer_bytes",
        "proxy_get_property",
        "proxy_set_property",
        "proxy_get_shared_data",
        "proxy_set_shared_data",
        "proxy_define_metric",
        "proxy_increment_metric",
        "proxy_record_metric",
        "proxy_get_metric",
        "proxy_http_call",
        "proxy_continue_stream",
        "proxy_send_local_response",
        "proxy_set_effective_context",
        "proxy_get_status",
        "proxy_done",
    ];
    let missing: Vec<_> = imports
        .iter()
        .filter(|(m, n)| m == "env" && !known_env.contains(&n.as_str()))
        .collect();
    // The SDK's trait defaults import grpc/queue/close_stream calls; they are stubs that trap
    // only if called, which easy-jwt never does.
    let unexpected: Vec<_> = missing
        .iter()
        .filter(|(_, n)| {
            !(n.contains("grpc") || n.contains("shared_queue") || n == "proxy_close_stream")
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "imports this host only stubs: {unexpected:?}"
    );
    let vm = Vm::start(&plugin, &HostEnv::new(), VmConfig::default()).unwrap();
    assert!(vm.failed().is_none());
}
