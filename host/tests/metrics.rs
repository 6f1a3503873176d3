//! docs/host-semantics.md §2 metrics: per-VM ids, one shared stat per name,
//! counter/gauge/histogram rules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use common::*;
use easy_jwt_host::metrics::MetricKind;
use easy_jwt_host::{HostEnv, Vm};

#[test]
fn metric_rules_as_envoy() {
    let env = HostEnv::new();
    let mut vm = Vm::start(probe(), &env, config("{}")).unwrap();
    send(&mut vm, "metrics");
    assert_eq!(line(&vm, "metric_ids"), "metric_ids Ok(4) Ok(5) Ok(6)");
    assert_eq!(line(&vm, "counter_inc0"), "counter_inc0 Err(BadArgument)");
    assert_eq!(line(&vm, "counter_inc2"), "counter_inc2 Ok(())");
    assert_eq!(line(&vm, "counter_record5"), "counter_record5 Ok(())");
    // record on a counter adds.
    assert_eq!(line(&vm, "counter_get"), "counter_get Ok(7)");
    assert_eq!(line(&vm, "gauge_get"), "gauge_get Ok(7)");
    assert_eq!(line(&vm, "hist_inc"), "hist_inc Err(BadArgument)");
    assert_eq!(line(&vm, "hist_get"), "hist_get Err(BadArgument)");
    assert_eq!(line(&vm, "unknown_get"), "unknown_get Err(NotFound)");
    assert_eq!(env.metrics.get("probe_counter"), Some(7));
    assert_eq!(env.metrics.histogram("probe_histogram"), Some(vec![7]));
    assert!(env
        .metrics
        .snapshot()
        .contains(&("probe_gauge".to_string(), MetricKind::Gauge, 7)));
}

#[test]
fn same_name_in_two_vms_is_one_stat() {
    let env = HostEnv::new();
    let mut one = Vm::start(probe(), &env, config("{}")).unwrap();
    let mut two = Vm::start(probe(), &env, config("{}")).unwrap();
    send(&mut one, "count");
    send(&mut two, "count");
    send(&mut two, "count");
    assert_eq!(env.metrics.get("probe_requests"), Some(3));
}
