//! `tokenServerRetries` in Envoy: the auth call is sent again after a connection failure, a reset
//! or a 502/503/504, never after a 200, a 401/403 or another status; every attempt fits in
//! `tokenServerTimeoutMs`; waiters of a coalesced call get the final answer; only the final answer
//! is cached; each re-send counts `token_server_retry`.
//!
//! The mock token server's `flaky-<N>-<fault>-…` tokens fail their first N calls with `<fault>`
//! and answer `200 {"uid":7}` after that (`tests/testbed/src/mock.rs`).

use crate::common::*;
use easy_jwt_testbed::http::{Conn, Request};
use serde_json::json;
use std::sync::OnceLock;
use std::thread;

fn worlds() -> &'static [World] {
    static WORLDS: OnceLock<Vec<World>> = OnceLock::new();
    WORLDS.get_or_init(|| start_worlds(sites, Setup::default()))
}

/// A mock of its own for the budget test: no connection shared with the faults of the others.
const SLOW_MOCK: &str = "outbound|9092||slow-mock.dns";

fn sites(backends: &mut Backends) -> Vec<Site> {
    backends.other_mock(SLOW_MOCK);
    vec![
        site(
            "budget",
            calling(
                SLOW_MOCK,
                json!({"tokenServerRetries": 3, "tokenServerTimeoutMs": 1000, "cacheTtlSeconds": 0}),
            ),
        ),
        // Two re-sends in a one-second budget, the cache on (an hour).
        site(
            "retry",
            base_config(json!({"tokenServerRetries": 2, "cacheTtlSeconds": 3600})),
        ),
        site(
            "once",
            base_config(json!({"tokenServerRetries": 0, "cacheTtlSeconds": 3600})),
        ),
        site(
            "down",
            calling(
                CLOSED_CLUSTER,
                json!({"tokenServerRetries": 2, "tokenServerTimeoutMs": 1000, "cacheTtlSeconds": 0}),
            ),
        ),
    ]
}

/// A token unique to this test and Envoy version.
fn token(world: &World, base: &str) -> String {
    format!("{base}-{}", world.version())
}

fn calls(world: &World, token: &str) -> usize {
    world.backends.mock.calls_for(token)
}

#[test]
fn it_retries_a_503_a_502_a_504_and_a_reset_until_the_token_server_answers() {
    each_counting(worlds(), |world| {
        let before = world.counter("token_server_retry");
        for (fault, failures) in [("e503", 1), ("e502", 2), ("e504", 1), ("reset", 2)] {
            let token = token(world, &format!("flaky-{failures}-{fault}"));
            let response = world.get("retry", "/api", &token);
            assert_eq!(response.status, 200, "{fault}: {}", response.text());
            assert_eq!(uid(&response), "7", "{fault}");
            assert_eq!(
                calls(world, &token),
                failures + 1,
                "{fault}: one call per attempt"
            );
        }
        assert_eq!(
            world.counter_reaching("token_server_retry", before + 6),
            before + 6,
            "one count per re-send"
        );
    });
}

#[test]
fn it_gives_up_after_the_configured_retries_with_the_last_failure() {
    each_counting(worlds(), |world| {
        let before = world.counter("token_server_retry");
        let token = token(world, "flaky-3-e503");
        assert_eq!(
            failure(&world.get("retry", "/api", &token)),
            (401, "mock unavailable".into())
        );
        assert_eq!(
            calls(world, &token),
            3,
            "the first attempt and two re-sends"
        );
        assert_eq!(
            world.counter_reaching("token_server_retry", before + 2),
            before + 2
        );
    });
}

#[test]
fn it_retries_a_connection_failure_and_then_fails_closed() {
    each_counting(worlds(), |world| {
        let before = world.counter("token_server_retry");
        assert_eq!(
            failure(&world.get("down", "/api", "any-token")),
            (401, "token server unavailable".into())
        );
        assert_eq!(
            world.counter_reaching("token_server_retry", before + 2),
            before + 2
        );
    });
}

#[test]
fn it_never_retries_a_denial_a_500_or_a_200() {
    each_counting(worlds(), |world| {
        let before = world.counter("token_server_retry");
        let denied = token(world, "deny");
        assert_eq!(
            failure(&world.get("retry", "/api", &denied)),
            (401, "mock denied".into())
        );
        let forbidden = token(world, "forbid");
        assert_eq!(
            failure(&world.get("retry", "/api", &forbidden)),
            (401, "mock forbidden".into())
        );
        let exploded = token(world, "e500");
        assert_eq!(
            failure(&world.get("retry", "/api", &exploded)),
            (401, "mock exploded".into())
        );
        let garbage = token(world, "garbage");
        assert_eq!(
            failure(&world.get("retry", "/api", &garbage)),
            (401, "invalid token server response".into())
        );
        for token in [denied, forbidden, exploded, garbage] {
            assert_eq!(calls(world, &token), 1, "{token}");
        }
        // Nothing else counts while this test runs (counting tests run alone).
        thread::sleep(COUNTS_QUIET);
        assert_eq!(world.counter("token_server_retry"), before);
    });
}

#[test]
fn every_attempt_fits_in_the_timeout_budget() {
    each_counting(worlds(), |world| {
        // The first attempt takes the whole second (the mock answers after 1.5 s): Envoy ends it
        // with a 504 at the budget's end, and no time is left for a re-send.
        let before = world.counter("token_server_retry");
        let token = token(world, "flaky-3-slow1500");
        assert_eq!(
            failure(&world.get("budget", "/api", &token)),
            (401, "token server timeout".into())
        );
        assert_eq!(world.mock_at(0).calls_for(&token), 1);
        thread::sleep(COUNTS_QUIET);
        assert_eq!(
            world.counter("token_server_retry"),
            before,
            "no re-send once the budget is spent"
        );
    });
}

#[test]
fn without_retries_the_call_is_made_once() {
    each(worlds(), |world| {
        let token = token(world, "flaky-1-e503-once");
        assert_eq!(
            failure(&world.get("once", "/api", &token)),
            (401, "mock unavailable".into())
        );
        assert_eq!(calls(world, &token), 1);
    });
}

#[test]
fn coalesced_requests_wait_for_the_final_answer_which_alone_is_cached() {
    each(worlds(), |world| {
        let token = token(world, "flaky-2-e503-coalesced");
        let conns: Vec<Conn> = (0..6)
            .map(|_| {
                let mut conn = Conn::open(world.addr("retry"));
                assert_eq!(conn.send(&Request::get("/public/warm")).status, 200);
                conn
            })
            .collect();
        let responses: Vec<_> = thread::scope(|scope| {
            let handles: Vec<_> = conns
                .into_iter()
                .map(|mut conn| {
                    let token = token.clone();
                    scope.spawn(move || conn.send(&Request::get("/api").bearer(&token)))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for response in &responses {
            assert_eq!(response.status, 200, "{}", response.text());
            assert_eq!(uid(response), "7");
        }
        let made = calls(world, &token);
        assert!(
            (3..=6).contains(&made),
            "the failures are retried, not answered: {made} calls"
        );
        // The final answer was cached: no further call.
        assert_eq!(uid(&world.get("retry", "/api", &token)), "7");
        assert_eq!(calls(world, &token), made);
    });
}
