//! Many paused requests at once in Envoy, coalesced calls, a leader that goes away, followers
//! denied each with their own reply.

use crate::common::*;
use easy_jwt_testbed::http::{Conn, Request};
use serde_json::json;
use std::sync::OnceLock;
use std::thread;
use std::time::Duration;

const SLOW_DENY: &str = "outbound|80||slow-deny.fake";

fn worlds() -> &'static [World] {
    static WORLDS: OnceLock<Vec<World>> = OnceLock::new();
    WORLDS.get_or_init(|| start_worlds(sites, Setup::default()))
}

fn sites(backends: &mut Backends) -> Vec<Site> {
    // A 401 that takes ~300 ms to arrive, so the requests after the first one wait for its call.
    backends.fake(
        SLOW_DENY,
        FakeServer::start(Behaviour::Drip(
            raw_answer(401, "application/json", br#"{"message":"revoked"}"#),
            Duration::from_millis(2),
        )),
    );
    vec![
        site("main", base_config(json!({}))),
        site("deny", calling(SLOW_DENY, json!({}))),
    ]
}

/// `n` keep-alive connections to `site`, each already used once (so the next requests arrive
/// together, while the first call is in flight).
fn warm_connections(world: &World, site: &str, n: usize) -> Vec<Conn> {
    (0..n)
        .map(|_| {
            let mut conn = Conn::open(world.addr(site));
            assert_eq!(conn.send(&Request::get("/public/warm")).status, 200);
            conn
        })
        .collect()
}

#[test]
fn it_makes_one_call_for_concurrent_requests_with_the_same_token() {
    each(worlds(), |world| {
        let conns = warm_connections(world, "main", 8);
        let responses: Vec<_> = thread::scope(|scope| {
            conns
                .into_iter()
                .map(|mut conn| {
                    scope.spawn(move || {
                        conn.send(&Request::get("/hello").bearer("slow-400-coalesce"))
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|h| h.join().unwrap())
                .collect()
        });
        for response in &responses {
            assert_eq!(uid(response), "7");
        }
        assert_eq!(
            world.backends.mock.calls_for("slow-400-coalesce"),
            1,
            "followers wait for the leader's call"
        );
    });
}

#[test]
fn it_gives_each_of_200_concurrent_requests_its_own_uid() {
    each_counting(worlds(), |world| {
        let allowed = world.counter("allowed");
        thread::scope(|scope| {
            for worker in 0..20 {
                scope.spawn(move || {
                    let mut conn = Conn::open(world.addr("main"));
                    for i in 0..10 {
                        let n = 10_000 + worker * 10 + i;
                        let response = conn.send(
                            &Request::get("/api")
                                .bearer(&format!("uid-{n}-many"))
                                .header("x-auth-user", "spoofed"),
                        );
                        assert_eq!(uid(&response), n.to_string());
                    }
                });
            }
        });
        assert_eq!(
            world.counter_reaching("allowed", allowed + 200),
            allowed + 200
        );
    });
}

#[test]
fn it_calls_again_for_a_follower_when_the_leader_goes_away() {
    each(worlds(), |world| {
        let mock = &world.backends.mock;
        let mut leader = Conn::open(world.addr("main"));
        leader.set_timeout(Duration::from_millis(150));
        let mut follower = warm_connections(world, "main", 1).pop().unwrap();
        thread::scope(|scope| {
            let leader = scope.spawn(move || {
                // Gives up (and closes) long before the 600 ms answer.
                let _ = leader.try_send(&Request::get("/hello").bearer("slow-600-leader"));
            });
            assert!(world.eventually(|| mock.calls_for("slow-600-leader") == 1));
            let answer = follower.send(&Request::get("/hello").bearer("slow-600-leader"));
            leader.join().unwrap();
            assert_eq!(uid(&answer), "7", "the follower is answered");
        });
        // Envoy cancels the call of a stream that ends: the root asks again for the follower.
        assert_eq!(mock.calls_for("slow-600-leader"), 2);
        assert_eq!(uid(&world.get("main", "/hello", "uid-8-after")), "8");
    });
}

#[test]
fn it_denies_every_follower_with_its_own_reply() {
    each_counting(worlds(), |world| {
        let server = world.fake_at(0);
        let (calls, denied) = (server.requests(), world.counter("denied"));
        let conns = warm_connections(world, "deny", 3);
        thread::scope(|scope| {
            let handles: Vec<_> = conns
                .into_iter()
                .map(|mut conn| scope.spawn(move || conn.send(&Request::get("/api").bearer("tok"))))
                .collect();
            for handle in handles {
                let response = handle.join().unwrap();
                assert_eq!(error(&response), (401, json!({"message": "revoked"})));
            }
        });
        assert_eq!(server.requests() - calls, 1, "one call for the three");
        assert_eq!(world.counter_reaching("denied", denied + 3), denied + 3);
    });
}
