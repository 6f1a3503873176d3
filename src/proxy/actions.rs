//! Carrying out decisions: the auth call, header edits, local replies and the counters, as
//! hostcalls on the effective context.

use crate::auth::{self, Decision};
use crate::config::Config;
use crate::hostio::{self, Map};
use crate::reply::Reply;
use crate::request::HeaderEdit;
use crate::shared::Counters;
use crate::stats::Stat;
use log::{debug, error, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Action;

/// Dispatches the auth call for `token`; the SDK routes the answer to the active context.
pub fn dispatch(config: &Config, token: &str) -> Result<u32, ()> {
    let server = &config.token_server;
    let headers = vec![
        (":method", "POST"),
        (":path", server.path.as_str()),
        (":authority", server.authority.as_str()),
        ("content-type", "application/json"),
    ];
    let body = auth::call_body(token);
    hostcalls::dispatch_http_call(
        &server.cluster,
        headers,
        Some(&body),
        vec![],
        server.timeout,
    )
    .map_err(|status| {
        let status = hostio::Status(status as u32);
        error!(
            "easy-jwt: cannot call the token server: Envoy refused cluster `{}` ({status}). \
             The cluster must exist in Envoy: on Higress register the service in the McpBridge \
             named `default` (or set global.onlyPushRouteCluster=false); on plain Envoy add it \
             to the clusters of envoy.yaml",
            server.cluster
        );
    })
}

/// Applies a final decision on the effective context; returns `Continue` when the request may
/// go on (the caller resumes it if it was paused).
pub fn carry_out(context_id: u32, counters: &Counters, decision: Decision) -> Action {
    match decision {
        Decision::Continue { edits, stat } => {
            if !apply_edits(context_id, &edits) {
                // The identity headers could not be set, so a client-sent copy might remain:
                // never let such a request through (fail closed).
                counters.count(Stat::TokenServerFailure);
                return local_reply(context_id, &edit_failed(), "easy_jwt.header_edit_failed");
            }
            counters.count(stat);
            Action::Continue
        }
        Decision::Reply { reply, stat } => {
            counters.count(stat);
            debug!(
                "#{context_id} easy-jwt: {}: replying {}",
                stat.name(),
                reply.status
            );
            local_reply(context_id, &reply, details(stat))
        }
    }
}

/// Applies every edit; false if the host refused one.
fn apply_edits(context_id: u32, edits: &[HeaderEdit]) -> bool {
    let mut all_applied = true;
    for edit in edits {
        let result = match edit {
            HeaderEdit::Set(name, value) => {
                hostio::replace_header(Map::RequestHeaders, name, value)
            }
            HeaderEdit::Remove(name) => hostio::remove_header(Map::RequestHeaders, name),
        };
        if let Err(status) = result {
            let name = match edit {
                HeaderEdit::Set(name, _) | HeaderEdit::Remove(name) => name,
            };
            warn!("#{context_id} easy-jwt: editing header {name} failed: {status}");
            all_applied = false;
        }
    }
    all_applied
}

fn edit_failed() -> Reply {
    Reply {
        status: 500,
        body: br#"{"message":"authentication failed"}"#.to_vec(),
    }
}

pub fn local_reply(context_id: u32, reply: &Reply, details: &str) -> Action {
    if let Err(status) =
        hostio::send_local_response(reply.status, details, &reply.body, &Reply::HEADERS)
    {
        warn!("#{context_id} easy-jwt: local reply failed: {status}");
    }
    Action::Pause
}

/// Envoy response-code details for each refusal.
fn details(stat: Stat) -> &'static str {
    match stat {
        Stat::TokenMissing => "easy_jwt.token_missing",
        Stat::Denied => "easy_jwt.denied",
        _ => "easy_jwt.token_server_failure",
    }
}
