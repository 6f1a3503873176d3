//! The auth-result cache of the real artifact: hit, miss, expiry by TTL and by the JWT `exp`
//! (on the host's controllable clock), eviction, sharing across worker VMs, never caching
//! failures, and the cache turned off.

mod common;

use common::*;
use easy_jwt_host::vm::CallOutcome;
use easy_jwt_host::HostEnv;
use serde_json::json;
use std::time::Duration;

fn cached(extra: serde_json::Value) -> Vec<u8> {
    let mut cfg = json!({"cacheTtlSeconds": 30});
    for (key, value) in extra.as_object().unwrap() {
        cfg[key] = value.clone();
    }
    config(cfg)
}

fn calls_for(gw: &mut Gateway, token: &str, times: usize) -> usize {
    let before = gw.calls.len();
    for _ in 0..times {
        gw.send(Req::get("/api").bearer(token)).uid();
    }
    gw.calls.len() - before
}

#[test]
fn it_answers_repeated_tokens_from_the_cache_until_the_ttl() {
    let server = TokenServer::start();
    let token = server.create(31);
    let mut gw = Gateway::with_token_server(&cached(json!({})), &server);
    assert_eq!(calls_for(&mut gw, &token, 5), 1, "one miss, then hits");
    assert_eq!(gw.counter("cache_hit"), 4);
    assert_eq!(gw.counter("allowed"), 5);
    gw.clock.advance(Duration::from_secs(29));
    assert_eq!(calls_for(&mut gw, &token, 1), 0, "still fresh at 29 s");
    gw.clock.advance(Duration::from_secs(2));
    assert_eq!(calls_for(&mut gw, &token, 1), 1, "expired after 30 s");
}

#[test]
fn it_never_serves_an_entry_past_the_jwt_exp() {
    let server = TokenServer::start();
    let token = token_server::mint(SECRET, 44, token_server::now_unix() + 5);
    let mut gw = Gateway::with_token_server(&cached(json!({"cacheTtlSeconds": 3600})), &server);
    assert_eq!(calls_for(&mut gw, &token, 2), 1);
    gw.clock.advance(Duration::from_secs(6));
    // Past exp the cache misses and the token server (whose clock is real) decides. Its clock
    // has not moved, so it still accepts: what matters is that a call was made.
    let before = gw.calls.len();
    gw.send(Req::get("/api").bearer(&token));
    assert_eq!(
        gw.calls.len() - before,
        1,
        "an entry is never used past exp"
    );
}

#[test]
fn it_keeps_different_tokens_apart_and_evicts_the_oldest() {
    let mut gw = Gateway::start(
        &cached(json!({"cacheMaxEntries": 2, "cacheSharedSlots": 0})),
        Answerer::Fixed(answer(200, r#"{"uid":1}"#)),
    );
    for token in ["a", "b", "c"] {
        assert_eq!(calls_for(&mut gw, token, 1), 1);
    }
    assert_eq!(calls_for(&mut gw, "c", 1), 0, "newest kept");
    assert_eq!(calls_for(&mut gw, "b", 1), 0, "second newest kept");
    assert_eq!(calls_for(&mut gw, "a", 1), 1, "oldest evicted at 2 entries");
}

#[test]
fn it_shares_answers_between_worker_vms() {
    let clock = manual_clock();
    let env = HostEnv::with_clock(clock.clone());
    let cfg = cached(json!({}));
    let mut first = Gateway::start_in(
        &env,
        clock.clone(),
        &cfg,
        Answerer::Fixed(answer(200, r#"{"uid":9,"role":"x"}"#)),
    );
    let mut second = Gateway::start_in(&env, clock, &cfg, Answerer::Fixed(CallOutcome::Reset));
    assert_eq!(
        first.send(Req::get("/api").bearer("shared-token")).uid(),
        "9"
    );
    let outcome = second.send(Req::get("/api").bearer("shared-token"));
    assert_eq!(
        outcome.uid(),
        "9",
        "the second VM reads the first one's answer"
    );
    assert!(second.calls.is_empty());
    // A different token in the same slot space is not served another's entry.
    let (status, _) = second.send(Req::get("/api").bearer("other-token")).error();
    assert_eq!(status, 401);
}

#[test]
fn it_never_caches_failures_denials_or_fail_open_passes() {
    for (answerer, extra) in [
        (
            Answerer::Fixed(answer(401, r#"{"message":"no"}"#)),
            json!({}),
        ),
        (Answerer::Fixed(answer(500, "oops")), json!({})),
        (
            Answerer::Fixed(CallOutcome::Timeout),
            json!({"failOpen": true}),
        ),
        (Answerer::Fixed(answer(200, r#"{"uid":"x"}"#)), json!({})),
    ] {
        let mut gw = Gateway::start(&cached(extra), answerer);
        gw.send(Req::get("/api").bearer("t"));
        gw.send(Req::get("/api").bearer("t"));
        assert_eq!(gw.calls.len(), 2, "every request asks again");
        assert_eq!(gw.counter("cache_hit"), 0);
    }
}

#[test]
fn it_calls_every_time_with_the_cache_off() {
    let mut gw = Gateway::start(
        &cached(json!({"cacheTtlSeconds": 0})),
        Answerer::Fixed(answer(200, r#"{"uid":2}"#)),
    );
    assert_eq!(calls_for(&mut gw, "t", 3), 3);
    assert_eq!(gw.counter("cache_hit"), 0);
}

#[test]
fn it_keeps_mapped_fields_in_cached_answers() {
    let mut gw = Gateway::start(
        &cached(json!({"authResponseHeaders": {"role": "x-role"}})),
        Answerer::Fixed(answer(200, r#"{"uid":3,"role":"admin"}"#)),
    );
    gw.send(Req::get("/api").bearer("t"));
    let outcome = gw.send(Req::get("/api").bearer("t").header("x-role", "root"));
    assert_eq!(outcome.values("x-role"), vec!["admin".to_string()]);
    assert_eq!(gw.calls.len(), 1);
}
