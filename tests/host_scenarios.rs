//! The scenario table of `tests/envoy.rs`, in the in-process host: one VM per site, calls
//! answered by the same real servers (mock and reference token server). The host must agree with
//! Envoy on every row; where they disagree, Envoy is right.

mod common;

use common::scenarios::{
    check, check_effects, mock_calls, request_of, route_for, token_of, Observed, Scenario,
    CLOSED_CLUSTER, MOCK_CLUSTER, OUTCOMES, SECRET, TOKEN_CLUSTER,
};
use common::{closed_port, Answerer, Gateway, Outcome, Req};
use easy_jwt_testbed::mock::MockTokenServer;
use easy_jwt_testbed::token_server::{BackgroundServer, Config as TokenConfig};
use std::collections::BTreeMap;
use std::time::Duration;

/// The request as Envoy hands it to the filter: pseudo headers, the route's name and cluster.
fn host_request(scenario: &Scenario, token: Option<&str>) -> Req {
    let (path, headers) = request_of(scenario, token);
    let route = route_for(&path);
    let mut req = Req::get(&path).route(route.name).service(route.cluster);
    for (name, value) in headers {
        req = if name == "host" {
            req.authority(&value)
        } else {
            req.header(&name, &value)
        };
    }
    req
}

fn observe(outcome: &Outcome) -> Observed {
    match outcome {
        Outcome::Upstream(headers) => Observed::Upstream {
            path: headers
                .iter()
                .find(|(k, _)| k == ":path")
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            headers: headers
                .iter()
                .filter(|(k, _)| !k.starts_with(':'))
                .cloned()
                .collect(),
        },
        Outcome::Reply(reply) => Observed::Reply {
            status: reply.status,
            content_type: reply
                .headers
                .iter()
                .find(|(k, _)| k == "content-type")
                .map(|(_, v)| v.clone()),
            body: reply.body.clone(),
        },
        Outcome::Paused => panic!("the stream stayed paused"),
    }
}

fn run(gw: &mut Gateway, mock: &MockTokenServer, scenario: &Scenario) -> Result<(), String> {
    let token = token_of(scenario);
    let counters =
        |gw: &mut Gateway| -> Vec<i64> { OUTCOMES.iter().map(|c| gw.counter(c)).collect() };
    let (before, calls_before) = (counters(gw), mock_calls(scenario, token.as_deref(), mock));
    let outcome = gw.send(host_request(scenario, token.as_deref()));
    check(scenario, &observe(&outcome))?;
    let calls_after = mock_calls(scenario, token.as_deref(), mock);
    check_effects(
        scenario,
        (calls_before, calls_after),
        &before,
        &counters(gw),
    )
}

#[test]
fn the_scenario_table_holds_in_the_host() {
    let mock = MockTokenServer::start();
    let tokens = BackgroundServer::start(TokenConfig {
        secret: SECRET.into(),
        ttl: Duration::from_secs(3600),
        deny_path_prefix: None,
    })
    .unwrap();
    let clusters = BTreeMap::from([
        (MOCK_CLUSTER.to_string(), mock.addr()),
        (TOKEN_CLUSTER.to_string(), tokens.addr()),
        (CLOSED_CLUSTER.to_string(), closed_port()),
    ]);
    let mut gateways: BTreeMap<&str, Gateway> = common::scenarios::sites()
        .into_iter()
        .map(|site| {
            let config = site.config.to_string().into_bytes();
            (
                site.name,
                Gateway::start(&config, Answerer::Http(clusters.clone())),
            )
        })
        .collect();
    let table = common::scenarios::table();
    let failures: Vec<String> = table
        .iter()
        .filter_map(|scenario| {
            let gw = gateways.get_mut(scenario.site).unwrap();
            run(gw, &mock, scenario)
                .err()
                .map(|e| format!("{}: {e}", scenario.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} scenarios failed in the host:\n{}",
        failures.len(),
        table.len(),
        failures.join("\n")
    );
}
