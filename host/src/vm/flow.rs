//! The HTTP stream callbacks: lazy creation, headers/body in both directions, end of stream.
//!
//! A bare `§N` in this module is a section of docs/host-semantics.md.

use super::{Outcome, StreamId, StreamState, Vm};
use crate::headers::HeaderMap;
use crate::state::{Flow, ROOT_CONTEXT_ID};

/// Which side of the stream a callback is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    Request,
    Response,
}

/// Envoy's view of a headers/body callback result (§4): 0 Continue, anything else stops
/// (Pause from headers = StopAllIterationAndWatermark, from body = StopIterationAndBuffer).
fn stops(outcome: &Outcome<u32>) -> bool {
    matches!(outcome, Outcome::Done(r) if *r != 0)
}

impl Vm {
    /// Runs proxy_on_context_create (first time) and proxy_on_request_headers, then the deferred
    /// actions (http calls recorded, local reply, continue). Returns the stream state afterwards.
    pub fn on_request_headers(
        &mut self,
        id: StreamId,
        headers: Vec<(String, String)>,
        end_of_stream: bool,
    ) -> StreamState {
        self.on_headers(
            id,
            Side::Request,
            HeaderMap::from_pairs(headers),
            end_of_stream,
        )
    }

    /// Request body chunk; the callback sees the cumulative buffered size (§4).
    pub fn on_request_body(
        &mut self,
        id: StreamId,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> StreamState {
        self.on_body(id, Side::Request, chunk, end_of_stream)
    }

    /// Response headers from the upstream.
    pub fn on_response_headers(
        &mut self,
        id: StreamId,
        headers: Vec<(String, String)>,
        end_of_stream: bool,
    ) -> StreamState {
        self.on_headers(
            id,
            Side::Response,
            HeaderMap::from_pairs(headers),
            end_of_stream,
        )
    }

    /// Response body chunk from the upstream.
    pub fn on_response_body(
        &mut self,
        id: StreamId,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> StreamState {
        self.on_body(id, Side::Response, chunk, end_of_stream)
    }

    /// on_log, on_done, on_delete (Envoy order, §1); creates the context first if the request
    /// never reached the filter. Calls still in flight are not cancelled (§3).
    pub fn end_stream(&mut self, id: StreamId) {
        if !self.store.data().streams.contains_key(&id.0) {
            return;
        }
        if self.failed.is_none() {
            self.ensure_created(id.0);
            let (on_log, on_done, on_delete) = (
                self.guest.on_log.clone(),
                self.guest.on_done.clone(),
                self.guest.on_delete.clone(),
            );
            self.store.data_mut().access_log = true;
            self.invoke(on_log, id.0, id.0);
            self.store.data_mut().access_log = false;
            self.invoke(on_done, id.0, id.0);
            self.invoke(on_delete, id.0, id.0);
        }
        if let Some(stream) = self.stream_mut(id) {
            stream.ended = true;
        }
        let events = self.after_call(Some(id.0));
        self.events.extend(events);
        self.store.data_mut().streams.remove(&id.0);
    }

    /// Creates the HTTP context on first use (§1 lazy creation).
    pub(super) fn ensure_created(&mut self, id: u32) {
        let Some(stream) = self.store.data_mut().streams.get_mut(&id) else {
            return;
        };
        if stream.created {
            return;
        }
        stream.created = true;
        let create = self.guest.on_context_create.clone();
        self.invoke(create, id, (id, ROOT_CONTEXT_ID));
    }

    fn on_headers(
        &mut self,
        id: StreamId,
        side: Side,
        headers: HeaderMap,
        eos: bool,
    ) -> StreamState {
        let Some(stream) = self.stream_mut(id) else {
            return StreamState::Ended;
        };
        if stream.local_reply.is_some() {
            return self.state(id);
        }
        let count = u32::try_from(headers.len()).unwrap_or(u32::MAX);
        match side {
            Side::Request => {
                stream.request_headers = headers;
                stream.access.request_headers = true;
            }
            Side::Response => {
                stream.in_response = true;
                stream.response_headers = Some(headers);
                stream.access.response_headers = true;
            }
        }
        if self.failed.is_some() {
            return self.fail_stream(id, side);
        }
        self.ensure_created(id.0);
        let func = match side {
            Side::Request => self.guest.on_request_headers.clone(),
            Side::Response => self.guest.on_response_headers.clone(),
        };
        let outcome = self.invoke(func, id.0, (id.0, count, u32::from(eos)));
        if matches!(outcome, Outcome::Trapped) {
            return self.fail_stream(id, side);
        }
        let stop = stops(&outcome);
        if let Some(stream) = self.stream_mut(id) {
            match side {
                Side::Request => {
                    stream.request_flow = if stop { Flow::StopAll } else { Flow::Continued };
                    stream.access.request_headers &= stop;
                }
                Side::Response => {
                    stream.response_flow = if stop { Flow::StopAll } else { Flow::Continued };
                    stream.access.response_headers &= stop;
                }
            }
        }
        self.finish_driver_call(id)
    }

    fn on_body(&mut self, id: StreamId, side: Side, chunk: &[u8], eos: bool) -> StreamState {
        let failed = self.failed.is_some();
        let Some(stream) = self.stream_mut(id) else {
            return StreamState::Ended;
        };
        if stream.local_reply.is_some() {
            return self.state(id);
        }
        let (body, flow, seen_eos) = match side {
            Side::Request => (
                &mut stream.request_body,
                stream.request_flow,
                &mut stream.request_eos,
            ),
            Side::Response => (
                &mut stream.response_body,
                stream.response_flow,
                &mut stream.response_eos,
            ),
        };
        body.extend_from_slice(chunk);
        *seen_eos |= eos;
        if failed {
            return self.fail_stream(id, side);
        }
        if flow == Flow::StopAll {
            // §4: while headers are stopped with StopAll the body callback is not called;
            // the buffered body is delivered after resume.
            return self.state(id);
        }
        self.ensure_created(id.0);
        self.run_body_callback(id, side, eos);
        self.finish_driver_call(id)
    }

    /// Calls the body callback with the cumulative size; Continue releases the buffered body.
    pub(super) fn run_body_callback(&mut self, id: StreamId, side: Side, eos: bool) -> bool {
        let Some(stream) = self.stream_mut(id) else {
            return false;
        };
        let size = match side {
            Side::Request => {
                stream.access.request_body = true;
                stream.request_body.len()
            }
            Side::Response => {
                stream.access.response_body = true;
                stream.response_body.len()
            }
        };
        let size = u32::try_from(size).unwrap_or(u32::MAX);
        let func = match side {
            Side::Request => self.guest.on_request_body.clone(),
            Side::Response => self.guest.on_response_body.clone(),
        };
        let outcome = self.invoke(func, id.0, (id.0, size, u32::from(eos)));
        if matches!(outcome, Outcome::Trapped) {
            self.fail_stream(id, side);
            return false;
        }
        let stop = stops(&outcome);
        if stop {
            self.set_flow(id, side, Flow::Buffering);
        } else {
            self.release(id, side);
        }
        !stop
    }

    /// Data flows on: the held body is released and the side's pointers are nulled.
    pub(super) fn release(&mut self, id: StreamId, side: Side) {
        let Some(stream) = self.stream_mut(id) else {
            return;
        };
        match side {
            Side::Request => {
                let body = std::mem::take(&mut stream.request_body);
                stream.request_body_out.extend(body);
                stream.access.request_body = false;
            }
            Side::Response => {
                let body = std::mem::take(&mut stream.response_body);
                stream.response_body_out.extend(body);
                stream.access.response_body = false;
            }
        }
        self.set_flow(id, side, Flow::Continued);
    }

    pub(super) fn set_flow(&mut self, id: StreamId, side: Side, flow: Flow) {
        if let Some(stream) = self.stream_mut(id) {
            match side {
                Side::Request => stream.request_flow = flow,
                Side::Response => stream.response_flow = flow,
            }
        }
    }

    /// Runs the deferred actions; events for the driven stream are reflected in its state.
    fn finish_driver_call(&mut self, id: StreamId) -> StreamState {
        let events = self.after_call(Some(id.0));
        self.events.extend(events);
        self.state(id)
    }
}
