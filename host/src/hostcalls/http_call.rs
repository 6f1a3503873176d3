//! `proxy_http_call`: Envoy's checks, token allocation and recording for the driver
//! (docs/host-semantics.md §3).

use wasmtime::Caller;

use super::{Fail, Status};
use crate::headers::HeaderMap;
use crate::memory;
use crate::pairs;
use crate::state::VmState;
use crate::types::HttpCall;

/// Envoy casts the timeout to `int`: anything ≥ 2^31 ms is negative → BadArgument (§3).
const MAX_TIMEOUT_MS: u32 = i32::MAX as u32;

/// `proxy_http_call`: records the call; the result comes only through `Vm::deliver_call`.
#[allow(clippy::too_many_arguments)]
pub fn dispatch(
    c: &mut Caller<'_, VmState>,
    upstream_ptr: u32,
    upstream_len: u32,
    headers_ptr: u32,
    headers_len: u32,
    body_ptr: u32,
    body_len: u32,
    trailers_ptr: u32,
    trailers_len: u32,
    timeout_ms: u32,
    ret_token: u32,
) -> Result<(), Fail> {
    let cluster = memory::read_string(c, upstream_ptr, upstream_len)?;
    let mut headers = HeaderMap::from_pairs(pairs::decode_strings(&memory::read(
        c,
        headers_ptr,
        headers_len,
    )?));
    let body = memory::read(c, body_ptr, body_len)?;
    let trailers = HeaderMap::from_pairs(pairs::decode_strings(&memory::read(
        c,
        trailers_ptr,
        trailers_len,
    )?));
    check(c.data(), &cluster, &headers, timeout_ms)?;
    if !body.is_empty() {
        headers.replace("content-length", body.len().to_string());
    }
    let state = c.data_mut();
    let token = state.next_call_token();
    let call = HttpCall {
        token,
        cluster,
        headers: headers.to_vec(),
        body,
        trailers: trailers.to_vec(),
        timeout_ms,
        from_context: state.effective,
    };
    state.pending_tokens.insert(token, call.from_context);
    state.dispatched.push(call);
    memory::write_u32(c, ret_token, token)
}

fn check(
    state: &VmState,
    cluster: &str,
    headers: &HeaderMap,
    timeout_ms: u32,
) -> Result<(), Status> {
    if timeout_ms > MAX_TIMEOUT_MS {
        return Err(Status::BadArgument);
    }
    if !state.cfg.clusters.contains(cluster) {
        return Err(Status::BadArgument);
    }
    let required = [":method", ":path", ":authority"];
    if required
        .iter()
        .any(|h| headers.get(h).is_none_or(str::is_empty))
    {
        return Err(Status::BadArgument);
    }
    Ok(())
}
