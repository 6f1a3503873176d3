//! Two Envoy workers, hence two plugin VMs: each is configured on its own, they share the
//! cache through shared data (unless `cacheSharedSlots` is 0) and add to the same counters.

use crate::common::*;
use easy_jwt_testbed::http::{self, Request};
use serde_json::json;
use std::sync::OnceLock;

fn worlds() -> &'static [World] {
    static WORLDS: OnceLock<Vec<World>> = OnceLock::new();
    WORLDS.get_or_init(|| {
        start_worlds(
            sites,
            Setup {
                concurrency: 2,
                ..Setup::default()
            },
        )
    })
}

fn sites(_: &mut Backends) -> Vec<Site> {
    vec![
        site("shared", base_config(json!({"cacheTtlSeconds": 30}))),
        site(
            "pervm",
            base_config(json!({"cacheTtlSeconds": 30, "cacheSharedSlots": 0})),
        ),
    ]
}

/// 16 requests on fresh connections (the kernel spreads them over both workers).
fn sixteen(world: &World, site: &str, token: &str) {
    for _ in 0..16 {
        let response = http::send(
            world.addr(site),
            &Request::get("/hello")
                .bearer(token)
                .header("connection", "close"),
        );
        assert_eq!(uid(&response), "90");
    }
}

#[test]
fn two_workers_share_the_cache() {
    each(worlds(), |world| {
        sixteen(world, "pervm", "uid-90-pervm");
        sixteen(world, "shared", "uid-90-shared");
        assert_eq!(
            world.backends.mock.calls_for("uid-90-pervm"),
            2,
            "with per-VM caches each of the two workers asks once (proves both served)"
        );
        assert_eq!(
            world.backends.mock.calls_for("uid-90-shared"),
            1,
            "the second worker finds the first worker's answer in shared data"
        );
    });
}

#[test]
fn it_configures_each_worker_vm_and_sums_their_counters() {
    each_counting(worlds(), |world| {
        // Log lines start `[time][thread id][level]`: the main thread and each worker configure
        // the plugin in their own VM.
        let threads: std::collections::BTreeSet<String> = world
            .plugin_log("pervm")
            .iter()
            .filter(|line| line.contains("easy-jwt: configured"))
            .filter_map(|line| line.split(['[', ']']).nth(3).map(str::to_string))
            .collect();
        assert_eq!(threads.len(), 3, "main thread and two workers: {threads:?}");
        let allowed = world.counter("allowed");
        sixteen(world, "pervm", "uid-90-sum");
        assert_eq!(
            world.backends.mock.calls_for("uid-90-sum"),
            2,
            "both workers served"
        );
        assert_eq!(
            world.counter_reaching("allowed", allowed + 16),
            allowed + 16,
            "Envoy sums a counter of every VM under one name"
        );
    });
}
