//! HTTP-call delivery: the outcomes of docs/host-semantics.md §3 handed to
//! `proxy_on_http_call_response(root, …)`.

use super::{CallOutcome, Event, Vm};
use crate::headers::HeaderMap;
use crate::state::{CallResponse, ROOT_CONTEXT_ID};

/// Body of the router's local reply on an upstream timeout.
pub const TIMEOUT_BODY: &str = "upstream request timeout";
/// Body of the router's local reply when the connection to the cluster fails.
pub const CONNECT_FAILURE_BODY: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection failure";
/// `proxy_get_status` after a failed call: BrokenConnection (11), "reset" (§3).
const BROKEN_CONNECTION: u32 = 11;

impl Vm {
    /// proxy_on_http_call_response(root_id, token, …) then deferred actions; returns events.
    ///
    /// Always delivered to the root context, even if the stream that made the call has ended
    /// (the SDK drops it). Unknown tokens and failed VMs deliver nothing.
    pub fn deliver_call(&mut self, token: u32, outcome: CallOutcome) -> Vec<Event> {
        if self.failed.is_some()
            || self
                .store
                .data_mut()
                .pending_tokens
                .remove(&token)
                .is_none()
        {
            return Vec::new();
        }
        let response = response_for(outcome);
        let (headers, body, trailers) = match &response {
            Some(r) => (r.headers.len(), r.body.len(), r.trailers.len()),
            None => (0, 0, 0),
        };
        let state = self.store.data_mut();
        state.status = match response {
            Some(_) => (0, String::new()),
            None => (BROKEN_CONNECTION, "reset".to_string()),
        };
        state.call_response = response;
        let func = self.guest.on_http_call_response.clone();
        let params = (
            ROOT_CONTEXT_ID,
            token,
            to_u32(headers),
            to_u32(body),
            to_u32(trailers),
        );
        self.invoke(func, ROOT_CONTEXT_ID, params);
        self.store.data_mut().call_response = None;
        self.after_call(None)
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The response the plugin sees, or None for the failure path.
fn response_for(outcome: CallOutcome) -> Option<CallResponse> {
    match outcome {
        CallOutcome::Response {
            headers,
            body,
            trailers,
        } => Some(CallResponse {
            headers: HeaderMap::from_pairs(headers),
            body,
            trailers: HeaderMap::from_pairs(trailers),
        }),
        CallOutcome::Timeout => Some(router_reply(504, TIMEOUT_BODY)),
        CallOutcome::ConnectFailure => Some(router_reply(503, CONNECT_FAILURE_BODY)),
        CallOutcome::Reset => None,
    }
}

/// The router's local reply as the async client receives it.
fn router_reply(status: u16, body: &str) -> CallResponse {
    let headers = HeaderMap::from_pairs([
        (":status", status.to_string()),
        ("content-length", body.len().to_string()),
        ("content-type", "text/plain".to_string()),
    ]);
    CallResponse {
        headers,
        body: body.as_bytes().to_vec(),
        trailers: HeaderMap::new(),
    }
}
