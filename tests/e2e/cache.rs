//! The auth-result cache of the real artifact in Envoy: hits, expiry by `cacheTtlSeconds` and by
//! the JWT `exp` over real time, one cache per token server, eviction, never caching failures,
//! mapped fields kept, and the cache turned off. (Sharing across workers: `tests/e2e/workers.rs`.)

use crate::common::*;
use easy_jwt_testbed::http::Request;
use easy_jwt_testbed::token_server;
use serde_json::json;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const OTHER_MOCK: &str = "outbound|9092||other-token-server.dns";
const MAPPED: &str = "outbound|80||mapped.fake";

fn worlds() -> &'static [World] {
    static WORLDS: OnceLock<Vec<World>> = OnceLock::new();
    WORLDS.get_or_init(|| start_worlds(sites, Setup::default()))
}

fn sites(backends: &mut Backends) -> Vec<Site> {
    backends.other_mock(OTHER_MOCK);
    backends.fake(
        MAPPED,
        FakeServer::respond(200, "application/json", br#"{"uid":3,"role":"admin"}"#),
    );
    let cached = |extra: serde_json::Value| {
        let mut config = base_config(json!({"cacheTtlSeconds": 30, "tokenServerTimeoutMs": 300}));
        for (key, value) in extra.as_object().unwrap() {
            config[key] = value.clone();
        }
        config
    };
    vec![
        site("cached", cached(json!({}))),
        site("short", cached(json!({"cacheTtlSeconds": 2}))),
        site(
            "isolated",
            cached(json!({"tokenServerCluster": OTHER_MOCK})),
        ),
        site(
            "jwt",
            json!({"tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090, "cacheTtlSeconds": 30}),
        ),
        // A VM of its own: the per-VM map holds only this site's entries.
        site(
            "evict",
            cached(json!({"cacheMaxEntries": 2, "cacheSharedSlots": 0})),
        )
        .own_vm(),
        site("failopen", cached(json!({"failOpen": true}))),
        site("off", cached(json!({"cacheTtlSeconds": 0}))),
        site(
            "mapped",
            cached(
                json!({"tokenServerCluster": MAPPED, "authResponseHeaders": {"role": "x-role"}}),
            ),
        ),
    ]
}

#[test]
fn it_answers_repeated_tokens_from_the_cache() {
    each_counting(worlds(), |world| {
        let before = world.counters_of(&["cache_hit", "allowed"]);
        for _ in 0..5 {
            assert_eq!(uid(&world.get("cached", "/api", "uid-31-repeat")), "31");
        }
        assert_eq!(
            world.backends.mock.calls_for("uid-31-repeat"),
            1,
            "one miss, then hits"
        );
        assert_eq!(
            world.counter_reaching("cache_hit", before[0] + 4),
            before[0] + 4
        );
        assert_eq!(
            world.counter_reaching("allowed", before[1] + 5),
            before[1] + 5
        );
    });
}

#[test]
fn it_asks_again_once_cache_ttl_seconds_have_passed() {
    each(worlds(), |world| {
        let mock = &world.backends.mock;
        let first = Instant::now();
        assert_eq!(uid(&world.get("short", "/api", "uid-81-ttl")), "81");
        assert_eq!(uid(&world.get("short", "/api", "uid-81-ttl")), "81");
        assert_eq!(mock.calls_for("uid-81-ttl"), 1, "the repeat is a hit");
        // Ask until the token server is asked again: the entry lives 2 s on the plugin's
        // whole-second clock, so between 1 and 2 s (plus one tick of the plugin's clock).
        let deadline = first + Duration::from_secs(5);
        while mock.calls_for("uid-81-ttl") == 1 && Instant::now() < deadline {
            assert_eq!(uid(&world.get("short", "/api", "uid-81-ttl")), "81");
            std::thread::sleep(Duration::from_millis(50));
        }
        let expired_after = first.elapsed();
        assert_eq!(mock.calls_for("uid-81-ttl"), 2, "asked again within 5 s");
        assert!(
            expired_after >= Duration::from_millis(950),
            "served from the cache for {expired_after:?} only"
        );
    });
}

#[test]
fn it_never_serves_an_entry_past_the_jwt_exp() {
    each(worlds(), |world| {
        let exp = token_server::now_unix() + 2;
        let token = token_server::mint(SECRET, 82, exp);
        assert_eq!(uid(&world.get("jwt", "/hello", &token)), "82");
        // Until exp the (cached) answer stands; from exp on the token server says it expired.
        let deadline = Instant::now() + Duration::from_secs(6);
        let expired = loop {
            let response = world.get("jwt", "/hello", &token);
            if !is_upstream(&response) {
                break response;
            }
            assert!(
                token_server::now_unix() <= exp,
                "served past exp {exp}: {}",
                response.text()
            );
            assert!(Instant::now() < deadline, "still served after exp");
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(token_server::now_unix() >= exp);
        assert_eq!(failure(&expired), (401, "token is expired".to_string()));
    });
}

#[test]
fn it_keeps_a_cache_per_token_server() {
    each(worlds(), |world| {
        let other = world.mock_at(0);
        assert_eq!(uid(&world.get("cached", "/api", "uid-80-isolated")), "80");
        assert_eq!(uid(&world.get("isolated", "/api", "uid-80-isolated")), "80");
        assert_eq!(
            other.calls_for("uid-80-isolated"),
            1,
            "asked at its own token server"
        );
        assert_eq!(world.backends.mock.calls_for("uid-80-isolated"), 1);
    });
}

#[test]
fn it_keeps_different_tokens_apart_and_evicts_the_oldest() {
    each(worlds(), |world| {
        let mock = &world.backends.mock;
        let calls = |token: &str| {
            let before = mock.calls_for(token);
            assert_eq!(uid(&world.get("evict", "/api", token)), "1");
            mock.calls_for(token) - before
        };
        for token in ["uid-1-a", "uid-1-b", "uid-1-c"] {
            assert_eq!(calls(token), 1, "{token}");
        }
        assert_eq!(calls("uid-1-c"), 0, "newest kept");
        assert_eq!(calls("uid-1-b"), 0, "second newest kept");
        assert_eq!(calls("uid-1-a"), 1, "oldest evicted at 2 entries");
    });
}

#[test]
fn it_never_caches_failures_denials_or_fail_open_passes() {
    each_counting(worlds(), |world| {
        let before =
            world.counters_of(&["cache_hit", "denied", "token_server_failure", "fail_open"]);
        let mock = &world.backends.mock;
        for (site, token) in [
            ("cached", "deny-nocache"),
            ("cached", "e500-nocache"),
            ("failopen", "hang-nocache"),
            ("cached", "uidstr-x-nocache"),
        ] {
            world.get(site, "/api", token);
            world.get(site, "/api", token);
            assert_eq!(
                mock.calls_for(token),
                2,
                "{token}: every request asks again"
            );
        }
        // Once the outcomes are counted, no hit was.
        assert_eq!(
            world.counter_reaching("denied", before[1] + 2),
            before[1] + 2
        );
        assert_eq!(
            world.counter_reaching("token_server_failure", before[2] + 4),
            before[2] + 4
        );
        assert_eq!(
            world.counter_reaching("fail_open", before[3] + 2),
            before[3] + 2
        );
        assert_eq!(world.counter("cache_hit"), before[0]);
    });
}

#[test]
fn it_calls_every_time_with_the_cache_off() {
    each_counting(worlds(), |world| {
        let [hits, allowed] = world.counters_of(&["cache_hit", "allowed"])[..] else {
            unreachable!()
        };
        for _ in 0..3 {
            assert_eq!(uid(&world.get("off", "/api", "uid-2-off")), "2");
        }
        assert_eq!(world.backends.mock.calls_for("uid-2-off"), 3);
        assert_eq!(world.counter_reaching("allowed", allowed + 3), allowed + 3);
        assert_eq!(world.counter("cache_hit"), hits);
    });
}

#[test]
fn it_keeps_mapped_fields_in_cached_answers() {
    each(worlds(), |world| {
        let server = world.fake_at(0);
        world.get("mapped", "/api", "mapped-token");
        let response = world.send(
            "mapped",
            &Request::get("/api")
                .bearer("mapped-token")
                .header("x-role", "root"),
        );
        assert_eq!(echoed(&response, "x-role"), ["admin"]);
        assert_eq!(
            server.requests(),
            1,
            "the second answer came from the cache"
        );
    });
}
