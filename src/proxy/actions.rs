//! Carrying out decisions: the auth call, header edits, local replies and the counters, as
//! hostcalls on the effective context.

use crate::core::auth::{self, Decision, Pending};
use crate::core::config::Config;
use crate::core::reply::Reply;
use crate::core::request::HeaderEdit;
use crate::core::stats::Stat;
use crate::proxy::counters::Counters;
use crate::proxy::host::Action;
use crate::proxy::host::{Call, Host, Status};
use log::{debug, error, warn};
use std::time::Duration;

/// Dispatches the auth call for a paused request (its token, and the context it forwards), to be
/// answered within `timeout`; the SDK delivers the answer to the context whose callback is
/// running.
pub fn dispatch(
    host: &dyn Host,
    config: &Config,
    pending: &Pending,
    timeout: Duration,
) -> Result<u32, Status> {
    let server = &config.token_server;
    let mut headers = vec![
        (":method", "POST"),
        (":path", server.path.as_str()),
        (":authority", server.authority.as_str()),
        ("content-type", "application/json"),
    ];
    headers.extend(
        pending
            .context
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    let body = auth::call_body(&pending.token);
    let call = Call {
        cluster: &server.cluster,
        headers: &headers,
        body: &body,
        timeout,
    };
    host.dispatch(&call).inspect_err(|status| {
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
pub fn carry_out(
    host: &dyn Host,
    context_id: u32,
    counters: &Counters,
    decision: Decision,
) -> Action {
    match decision {
        Decision::Continue { edits, stat } => {
            if !apply_edits(host, context_id, &edits) {
                // The identity headers could not be set, so a client-sent copy might remain:
                // never let such a request through (fail closed).
                counters.count(Stat::InternalError);
                return local_reply(
                    host,
                    context_id,
                    &edit_failed(),
                    "easy_jwt.header_edit_failed",
                );
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
            local_reply(host, context_id, &reply, details(stat))
        }
    }
}

/// Applies every edit; false if the host refused one.
fn apply_edits(host: &dyn Host, context_id: u32, edits: &[HeaderEdit]) -> bool {
    let mut all_applied = true;
    for edit in edits {
        let (name, result) = match edit {
            HeaderEdit::Set(name, value) => (name, host.set_request_header(name, value)),
            HeaderEdit::Remove(name) => (name, host.remove_request_header(name)),
        };
        if let Err(status) = result {
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

/// Answers locally; the request is never resumed afterwards (docs/host-semantics.md §4).
pub fn local_reply(host: &dyn Host, context_id: u32, reply: &Reply, details: &str) -> Action {
    if let Err(status) = host.send_local_reply(reply.status, details, &reply.body, &Reply::HEADERS)
    {
        warn!("#{context_id} easy-jwt: local reply failed: {status}");
    }
    Action::Pause
}

/// Envoy response-code details of a refusal.
fn details(stat: Stat) -> &'static str {
    match stat {
        Stat::TokenMissing => "easy_jwt.token_missing",
        Stat::Denied => "easy_jwt.denied",
        Stat::TokenServerFailure => "easy_jwt.token_server_failure",
        Stat::InternalError => "easy_jwt.header_edit_failed",
        // Outcomes that never reply; listed so a new counter must be placed here.
        Stat::Allowed
        | Stat::Ignored
        | Stat::Anonymous
        | Stat::FailOpen
        | Stat::CacheHit
        | Stat::TokenServerRetry => "easy_jwt.refused",
    }
}
