//! Buffer hostcalls: bodies, HTTP-call body, VM and plugin configuration
//! (docs/host-semantics.md §2 "Buffers").

use wasmtime::Caller;

use super::{Fail, Status};
use crate::memory;
use crate::state::{Phase, VmState};

const REQUEST_BODY: u32 = 0;
const RESPONSE_BODY: u32 = 1;
const CALL_RESPONSE_BODY: u32 = 4;
const VM_CONFIGURATION: u32 = 6;
const PLUGIN_CONFIGURATION: u32 = 7;
const MAX_BUFFER_TYPE: u32 = 8;

/// A copy of the buffer of type `ty`, or None (→ NotFound) when Envoy has no buffer.
fn buffer(state: &VmState, ty: u32) -> Option<&[u8]> {
    let stream = state.effective_stream();
    match ty {
        REQUEST_BODY => stream
            .filter(|s| s.access.request_body)
            .map(|s| s.request_body.as_slice()),
        RESPONSE_BODY => stream
            .filter(|s| s.access.response_body)
            .map(|s| s.response_body.as_slice()),
        CALL_RESPONSE_BODY => state.call_response.as_ref().map(|r| r.body.as_slice()),
        VM_CONFIGURATION => Some(state.cfg.vm_configuration.as_slice()),
        // §1: `temp_plugin_` is set only during on_configure.
        PLUGIN_CONFIGURATION if state.phase == Phase::Configure => {
            Some(state.cfg.plugin_configuration.as_slice())
        }
        _ => None,
    }
}

/// `proxy_get_buffer_bytes`: reads are clamped; an empty read writes nothing (SDK → None).
pub fn get_bytes(
    c: &mut Caller<'_, VmState>,
    ty: u32,
    start: u32,
    max: u32,
    ret_ptr: u32,
    ret_size: u32,
) -> Result<(), Fail> {
    if ty > MAX_BUFFER_TYPE {
        return Err(Status::BadArgument.into());
    }
    let data = buffer(c.data(), ty).ok_or(Status::NotFound)?;
    let start = start as usize;
    let end = start.saturating_add(max as usize).min(data.len());
    let chunk = data.get(start..end).unwrap_or_default().to_vec();
    if chunk.is_empty() {
        // cpp-host returns Ok without touching the out-pointers when length is 0.
        return Ok(());
    }
    memory::return_bytes(c, &chunk, ret_ptr, ret_size)
}

/// `proxy_set_buffer_bytes` (higress-envoy 1.27): start==0 drains `size` then prepends;
/// start>=len appends; anything else is BadArgument.
pub fn set_bytes(
    c: &mut Caller<'_, VmState>,
    ty: u32,
    start: u32,
    size: u32,
    ptr: u32,
    len: u32,
) -> Result<(), Fail> {
    let data = memory::read(c, ptr, len)?;
    let state = c.data_mut();
    let stream = state.effective_stream_mut();
    let body = match ty {
        REQUEST_BODY => stream
            .filter(|s| s.access.request_body)
            .map(|s| &mut s.request_body),
        RESPONSE_BODY => stream
            .filter(|s| s.access.response_body)
            .map(|s| &mut s.response_body),
        _ if ty > MAX_BUFFER_TYPE => return Err(Status::BadArgument.into()),
        _ => None,
    }
    .ok_or(Status::NotFound)?;
    splice(body, start as usize, size as usize, &data).ok_or(Status::BadArgument)?;
    Ok(())
}

fn splice(body: &mut Vec<u8>, start: usize, size: usize, data: &[u8]) -> Option<()> {
    if start == 0 {
        let drained = size.min(body.len());
        body.drain(..drained);
        body.splice(0..0, data.iter().copied());
        Some(())
    } else if start >= body.len() {
        body.extend_from_slice(data);
        Some(())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::splice;

    #[test]
    fn set_rules() {
        let mut b = b"hello".to_vec();
        assert_eq!(splice(&mut b, 0, 0, b">"), Some(()));
        assert_eq!(b, b">hello");
        assert_eq!(splice(&mut b, 0, 6, b"new"), Some(()));
        assert_eq!(b, b"new");
        assert_eq!(splice(&mut b, 3, 0, b"!"), Some(()));
        assert_eq!(b, b"new!");
        assert_eq!(splice(&mut b, 1, 0, b"x"), None);
        assert_eq!(splice(&mut b, 0, 2, b"N"), Some(()));
        assert_eq!(b, b"Nw!");
    }
}
