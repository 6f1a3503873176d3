//! Deferred actions (docs/host-semantics.md §4): local replies through the plugin's response
//! callbacks, resumes, and the fail-closed / fail-open handling of a failed VM (§1).

use super::flow::Side;
use super::{Event, LocalReply, Outcome, StreamId, StreamState, Vm};
use crate::headers::HeaderMap;
use crate::state::{Deferred, Flow, LocalReplyRequest};

/// Bound on action rounds (an action may run a callback that queues more actions).
const MAX_ROUNDS: usize = 64;

/// Envoy's details for a stream of a failed VM (§1).
pub const WASM_FAIL_STREAM: &str = "wasm_fail_stream";

impl Vm {
    /// Runs queued actions in call order until none is left. Returns events, except those of
    /// `driving` (the stream whose driver call is running: its state says it all).
    pub(super) fn after_call(&mut self, driving: Option<u32>) -> Vec<Event> {
        let mut events = Vec::new();
        for _ in 0..MAX_ROUNDS {
            let actions = std::mem::take(&mut self.store.data_mut().deferred);
            if actions.is_empty() {
                break;
            }
            for action in actions {
                if let Some(event) = self.run_action(action) {
                    events.push(event);
                }
            }
        }
        events.retain(|e| match e {
            Event::Resumed(id) | Event::LocalReply(id, _) => Some(id.0) != driving,
        });
        events
    }

    fn run_action(&mut self, action: Deferred) -> Option<Event> {
        match action {
            Deferred::LocalReply(ctx, request) => {
                let id = StreamId(ctx);
                self.send_local_reply(id, request)
                    .map(|reply| Event::LocalReply(id, reply))
            }
            Deferred::Continue(ctx, direction) => {
                let id = StreamId(ctx);
                let side = if direction == 0 {
                    Side::Request
                } else {
                    Side::Response
                };
                match self.resume(id, side)? {
                    StreamState::LocalReply(reply) => Some(Event::LocalReply(id, reply)),
                    _ => Some(Event::Resumed(id)),
                }
            }
        }
    }

    /// `continueDecoding`/`continueEncoding`: does nothing after a local reply (`canContinue()`
    /// is false) or when the side is not stopped (undefined in Envoy; ignored here).
    fn resume(&mut self, id: StreamId, side: Side) -> Option<StreamState> {
        let stream = self
            .stream(id)
            .filter(|s| !s.ended && s.local_reply.is_none())?;
        let (flow, held, eos) = match side {
            Side::Request => (
                stream.request_flow,
                !stream.request_body.is_empty(),
                stream.request_eos,
            ),
            Side::Response => (
                stream.response_flow,
                !stream.response_body.is_empty(),
                stream.response_eos,
            ),
        };
        match flow {
            Flow::StopAll if held || eos => {
                // The body that arrived while stopped is delivered now (§4).
                self.set_flow(id, side, Flow::Continued);
                if !self.run_body_callback(id, side, eos) {
                    return self.local_reply_state(id);
                }
            }
            Flow::StopAll | Flow::Buffering => self.release(id, side),
            Flow::Idle | Flow::Continued => return None,
        }
        Some(self.state(id))
    }

    fn local_reply_state(&self, id: StreamId) -> Option<StreamState> {
        match self.state(id) {
            s @ StreamState::LocalReply(_) => Some(s),
            _ => None,
        }
    }

    /// Envoy's `sendLocalReply`: build the response (§4 content rules), then — in the request
    /// phase — pass it through the plugin's own on_response_headers/on_response_body.
    fn send_local_reply(&mut self, id: StreamId, request: LocalReplyRequest) -> Option<LocalReply> {
        let stream = self
            .stream(id)
            .filter(|s| !s.ended && s.local_reply.is_none())?;
        let via_filter_chain = !stream.in_response;
        let status = u16::try_from(request.status).unwrap_or(500);
        let headers = reply_headers(status, &request.headers, &request.body);
        let mut reply = LocalReply {
            status,
            headers: Vec::new(),
            body: request.body,
            details: request.details,
        };
        if via_filter_chain {
            match self.encode_reply(id, headers, &mut reply) {
                Some(()) => {}
                None => return self.fail_closed_reply(id),
            }
        } else {
            reply.headers = without_status(&headers);
        }
        self.finish_reply(id, reply)
    }

    /// Runs on_response_headers (and on_response_body when there is a body) on the reply.
    fn encode_reply(
        &mut self,
        id: StreamId,
        headers: HeaderMap,
        reply: &mut LocalReply,
    ) -> Option<()> {
        let count = u32::try_from(headers.len()).unwrap_or(u32::MAX);
        let has_body = !reply.body.is_empty();
        let stream = self.stream_mut(id)?;
        stream.in_response = true;
        stream.response_headers = Some(headers);
        stream.access.response_headers = true;
        let func = self.guest.on_response_headers.clone();
        let outcome = self.invoke(func, id.0, (id.0, count, u32::from(!has_body)));
        if matches!(outcome, Outcome::Trapped) {
            return None;
        }
        if has_body {
            let stream = self.stream_mut(id)?;
            stream.access.response_headers = false;
            stream.response_body = std::mem::take(&mut reply.body);
            stream.access.response_body = true;
            let len = u32::try_from(stream.response_body.len()).unwrap_or(u32::MAX);
            let func = self.guest.on_response_body.clone();
            if matches!(self.invoke(func, id.0, (id.0, len, 1)), Outcome::Trapped) {
                return None;
            }
        }
        let stream = self.stream_mut(id)?;
        stream.access.response_headers = false;
        stream.access.response_body = false;
        if has_body {
            reply.body = std::mem::take(&mut stream.response_body);
        }
        let final_headers = stream.response_headers.clone().unwrap_or_default();
        if let Some(code) = final_headers.get(":status").and_then(|s| s.parse().ok()) {
            reply.status = code;
        }
        reply.headers = without_status(&final_headers);
        Some(())
    }

    fn finish_reply(&mut self, id: StreamId, reply: LocalReply) -> Option<LocalReply> {
        let stream = self.stream_mut(id)?;
        stream.local_reply = Some(reply.clone());
        stream.access = Default::default();
        Some(reply)
    }

    /// A stream of a failed VM (§1): fail-closed → local 503 `wasm_fail_stream` without
    /// entering the guest; fail-open → the filter is skipped and data flows on.
    pub(super) fn fail_stream(&mut self, id: StreamId, side: Side) -> StreamState {
        if self.store.data().cfg.fail_open {
            self.release(id, side);
            if let Some(stream) = self.stream_mut(id) {
                stream.access = Default::default();
            }
        } else {
            self.fail_closed_reply(id);
        }
        self.state(id)
    }

    fn fail_closed_reply(&mut self, id: StreamId) -> Option<LocalReply> {
        if self.stream(id)?.local_reply.is_some() {
            return None;
        }
        let reply = LocalReply {
            status: 503,
            headers: Vec::new(),
            body: Vec::new(),
            details: WASM_FAIL_STREAM.to_string(),
        };
        self.finish_reply(id, reply)
    }
}

/// `:status`, the plugin's headers (`addCopy`), then Envoy's body rules: an empty body removes
/// content-type/content-length; a body sets content-length and text/plain if no content-type.
fn reply_headers(status: u16, extra: &[(String, String)], body: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.add(":status", status.to_string());
    for (k, v) in extra {
        headers.add(k, v.clone());
    }
    if body.is_empty() {
        headers.remove("content-length");
        headers.remove("content-type");
    } else {
        headers.replace("content-length", body.len().to_string());
        if headers.get("content-type").is_none() {
            headers.add("content-type", "text/plain");
        }
    }
    headers
}

fn without_status(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .entries()
        .iter()
        .filter(|(k, _)| k != ":status")
        .cloned()
        .collect()
}
