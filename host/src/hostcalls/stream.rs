//! Stream-control hostcalls: resume, local reply, effective context, status, done
//! (docs/host-semantics.md §4).

use wasmtime::Caller;

use super::{Fail, Status};
use crate::memory;
use crate::pairs;
use crate::state::{Deferred, LocalReplyRequest, VmState};

/// `proxy_continue_stream`: queued until the VM call returns; nulls the request-side
/// pointers at once, whatever the direction (§2, §4).
pub fn continue_stream(c: &mut Caller<'_, VmState>, direction: u32) -> Result<(), Fail> {
    if direction > 1 {
        return Err(Status::BadArgument.into());
    }
    let state = c.data_mut();
    let effective = state.effective;
    if let Some(stream) = state.effective_stream_mut() {
        stream.access.null_request_side();
        state
            .deferred
            .push(Deferred::Continue(effective, direction));
    }
    Ok(())
}

/// `proxy_send_local_response`: queued until the VM call returns; a second one on the same
/// stream is BadArgument (higress-envoy 1.27 `local_reply_hold_`). From the root context it
/// is accepted and does nothing (no decoder callbacks).
#[allow(clippy::too_many_arguments)]
pub fn send_local_response(
    c: &mut Caller<'_, VmState>,
    status: u32,
    details_ptr: u32,
    details_len: u32,
    body_ptr: u32,
    body_len: u32,
    headers_ptr: u32,
    headers_len: u32,
    _grpc_status: i32,
) -> Result<(), Fail> {
    let details = memory::read_string(c, details_ptr, details_len)?;
    let body = memory::read(c, body_ptr, body_len)?;
    let headers = pairs::decode_strings(&memory::read(c, headers_ptr, headers_len)?);
    let state = c.data_mut();
    let effective = state.effective;
    let Some(stream) = state.effective_stream_mut() else {
        return Ok(());
    };
    if stream.local_reply_requested || stream.local_reply.is_some() {
        return Err(Status::BadArgument.into());
    }
    stream.local_reply_requested = true;
    let request = LocalReplyRequest {
        status,
        details,
        body,
        headers,
    };
    state
        .deferred
        .push(Deferred::LocalReply(effective, request));
    Ok(())
}

/// `proxy_set_effective_context`: only existing contexts; BadArgument otherwise.
pub fn set_effective_context(c: &mut Caller<'_, VmState>, id: u32) -> Result<(), Fail> {
    let state = c.data_mut();
    if !state.context_exists(id) {
        return Err(Status::BadArgument.into());
    }
    state.effective = id;
    Ok(())
}

/// `proxy_get_status`: the status of the last HTTP-call delivery (11 "reset" on failure, §3).
pub fn get_status(
    c: &mut Caller<'_, VmState>,
    ret_code: u32,
    ret_ptr: u32,
    ret_size: u32,
) -> Result<(), Fail> {
    let (code, message) = c.data().status.clone();
    memory::write_u32(c, ret_code, code)?;
    memory::return_bytes(c, message.as_bytes(), ret_ptr, ret_size)
}

/// `proxy_done`: accepted; a root context that returned false from on_done is simply gone.
pub fn done(_c: &mut Caller<'_, VmState>) -> Result<(), Fail> {
    Ok(())
}
