//! Many paused requests at once, answers out of order, clients that go away, coalesced calls.

mod common;

use common::*;
use easy_jwt_host::vm::{Event, StreamState};
use serde_json::json;

#[test]
fn it_gives_each_of_1000_paused_requests_its_own_uid_whatever_the_answer_order() {
    let server = TokenServer::start();
    let mut gw = Gateway::with_token_server(&config(json!({"cacheTtlSeconds": 0})), &server);
    let expires = token_server::now_unix() + 600;
    let mut streams = Vec::new();
    for uid in 0..1000i64 {
        let token = token_server::mint(SECRET, 10_000 + uid, expires);
        let (id, state) = gw.begin(
            Req::get("/api")
                .bearer(&token)
                .header("x-auth-user", "spoofed"),
        );
        assert_eq!(state, StreamState::Paused);
        streams.push((id, 10_000 + uid));
    }
    let mut calls = gw.vm.take_calls();
    assert_eq!(calls.len(), 1000, "one call per distinct token");
    // Answer in an order unrelated to the dispatch order: odd tokens first, each half reversed.
    calls.sort_by_key(|call| (call.token % 8 == 4, std::cmp::Reverse(call.token)));
    for call in calls {
        let outcome = gw.perform(&call);
        gw.vm.deliver_call(call.token, outcome);
    }
    for (id, uid) in streams {
        let outcome = gw.outcome_of(id, gw.vm.state(id));
        assert_eq!(outcome.uid(), uid.to_string());
        gw.vm.end_stream(id);
    }
    assert_eq!(gw.counter("allowed"), 1000);
    assert!(gw.vm.failed().is_none());
}

#[test]
fn it_ignores_a_late_answer_for_a_client_that_went_away() {
    let server = TokenServer::start();
    let token = server.create(3);
    let mut gw = Gateway::with_token_server(&config(json!({"cacheTtlSeconds": 0})), &server);
    let (id, state) = gw.begin(Req::get("/api").bearer(&token));
    assert_eq!(state, StreamState::Paused);
    let calls = gw.vm.take_calls();
    gw.vm.end_stream(id); // client gone: on_log, on_done, on_delete while the call is in flight
    for call in calls {
        let outcome = gw.perform(&call);
        let events = gw.vm.deliver_call(call.token, outcome);
        assert!(
            events.is_empty(),
            "nothing happens to a dead stream: {events:?}"
        );
    }
    assert!(
        gw.vm.failed().is_none(),
        "late answer trapped the VM: {}",
        gw.log_text()
    );
    assert_eq!(
        gw.send(Req::get("/api").bearer(&token)).uid(),
        "3",
        "the VM keeps serving"
    );
}

#[test]
fn it_makes_one_call_for_concurrent_requests_with_the_same_token() {
    let server = TokenServer::start();
    let token = server.create(77);
    let mut gw = Gateway::with_token_server(&config(json!({"cacheTtlSeconds": 0})), &server);
    let ids: Vec<_> = (0..5)
        .map(|_| gw.begin(Req::get("/api").bearer(&token)).0)
        .collect();
    let calls = gw.vm.take_calls();
    assert_eq!(calls.len(), 1, "one call in flight per token");
    let outcome = gw.perform(&calls[0]);
    let events = gw.vm.deliver_call(calls[0].token, outcome);
    assert_eq!(events.len(), 5, "every waiting request resumes: {events:?}");
    for id in ids {
        assert_eq!(gw.outcome_of(id, gw.vm.state(id)).uid(), "77");
    }
}

#[test]
fn it_redispatches_for_followers_when_the_leader_goes_away() {
    let server = TokenServer::start();
    let token = server.create(8);
    let mut gw = Gateway::with_token_server(&config(json!({"cacheTtlSeconds": 0})), &server);
    let (leader, _) = gw.begin(Req::get("/api").bearer(&token));
    let (follower, _) = gw.begin(Req::get("/api").bearer(&token));
    let first = gw.vm.take_calls();
    assert_eq!(first.len(), 1);
    gw.vm.end_stream(leader);
    assert!(
        gw.vm.tick_period().is_some(),
        "the root arms its timer for the orphaned follower"
    );
    gw.vm.tick();
    let second = gw.vm.take_calls();
    assert_eq!(second.len(), 1, "the root calls again for the follower");
    // The leader's late answer is harmless; the root's answer resolves the follower.
    for call in first.into_iter().chain(second) {
        let outcome = gw.perform(&call);
        gw.vm.deliver_call(call.token, outcome);
    }
    assert_eq!(gw.outcome_of(follower, gw.vm.state(follower)).uid(), "8");
    assert!(gw.vm.failed().is_none());
}

#[test]
fn it_denies_every_follower_with_its_own_reply() {
    let mut gw = Gateway::start(
        &config(json!({"cacheTtlSeconds": 0})),
        Answerer::Fixed(answer(401, r#"{"message":"revoked"}"#)),
    );
    let a = gw.begin(Req::get("/api").bearer("tok")).0;
    let b = gw.begin(Req::get("/api").bearer("tok")).0;
    let calls = gw.vm.take_calls();
    assert_eq!(calls.len(), 1);
    let events = gw
        .vm
        .deliver_call(calls[0].token, answer(401, r#"{"message":"revoked"}"#));
    let replies = events
        .iter()
        .filter(|e| matches!(e, Event::LocalReply(..)))
        .count();
    assert_eq!(replies, 2);
    for id in [a, b] {
        let (status, body) = gw.outcome_of(id, gw.vm.state(id)).error();
        assert_eq!((status, body), (401, json!({"message": "revoked"})));
    }
    assert_eq!(gw.counter("denied"), 2);
}
