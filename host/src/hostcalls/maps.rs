//! Header-map hostcalls with Envoy's availability rules
//! (docs/host-semantics.md §2 "When maps are available").

use wasmtime::Caller;

use super::{Fail, Status};
use crate::headers::HeaderMap;
use crate::memory;
use crate::pairs;
use crate::state::VmState;

const REQUEST_HEADERS: u32 = 0;
const RESPONSE_HEADERS: u32 = 2;
const CALL_RESPONSE_HEADERS: u32 = 6;
const CALL_RESPONSE_TRAILERS: u32 = 7;
const MAX_MAP_TYPE: u32 = 7;

/// The readable map of type `ty`, or None when Envoy's pointer is null.
fn const_map(state: &VmState, ty: u32) -> Result<Option<&HeaderMap>, Status> {
    if ty > MAX_MAP_TYPE {
        return Err(Status::BadArgument);
    }
    let stream = state.effective_stream();
    Ok(match ty {
        REQUEST_HEADERS => stream
            .filter(|s| state.access_log || s.access.request_headers)
            .map(|s| &s.request_headers),
        RESPONSE_HEADERS => stream
            .filter(|s| state.access_log || s.access.response_headers)
            .and_then(|s| s.response_headers.as_ref()),
        CALL_RESPONSE_HEADERS => state.call_response.as_ref().map(|r| &r.headers),
        // A response without trailers has a null trailer map (§2: get value → BadArgument).
        CALL_RESPONSE_TRAILERS => state
            .call_response
            .as_ref()
            .map(|r| &r.trailers)
            .filter(|t| !t.is_empty()),
        _ => None,
    })
}

/// The writable map of type `ty`; a null pointer (or the access-log phase) is BadArgument.
fn mut_map(state: &mut VmState, ty: u32) -> Result<&mut HeaderMap, Status> {
    if state.access_log {
        return Err(Status::BadArgument);
    }
    let effective = state.effective;
    let stream = state.streams.get_mut(&effective).filter(|s| !s.ended);
    let map = match ty {
        REQUEST_HEADERS => stream
            .filter(|s| s.access.request_headers)
            .map(|s| &mut s.request_headers),
        RESPONSE_HEADERS => stream
            .filter(|s| s.access.response_headers)
            .and_then(|s| s.response_headers.as_mut()),
        CALL_RESPONSE_HEADERS => state.call_response.as_mut().map(|r| &mut r.headers),
        _ => None,
    };
    map.ok_or(Status::BadArgument)
}

/// `proxy_get_header_map_pairs`: a null map is Ok with an empty map (ptr=0).
pub fn get_pairs(
    c: &mut Caller<'_, VmState>,
    ty: u32,
    ret_ptr: u32,
    ret_size: u32,
) -> Result<(), Fail> {
    let bytes = const_map(c.data(), ty)?
        .map(|m| pairs::encode(m.entries()))
        .unwrap_or_default();
    memory::return_bytes(c, &bytes, ret_ptr, ret_size)
}

/// `proxy_set_header_map_pairs`: replaces the whole map (bad input → empty map, §2).
pub fn set_pairs(c: &mut Caller<'_, VmState>, ty: u32, ptr: u32, len: u32) -> Result<(), Fail> {
    let new = pairs::decode_strings(&memory::read(c, ptr, len)?);
    mut_map(c.data_mut(), ty)?.set_all(new);
    Ok(())
}

/// `proxy_get_header_map_size`: the map's byte size, not its entry count (§2).
pub fn get_size(c: &mut Caller<'_, VmState>, ty: u32, ret_size: u32) -> Result<(), Fail> {
    let size = const_map(c.data(), ty)?
        .ok_or(Status::BadArgument)?
        .byte_size();
    memory::write_u32(c, ret_size, u32::try_from(size).unwrap_or(u32::MAX))
}

/// `proxy_get_header_map_value`: first value; missing key NotFound; null map BadArgument
/// (NotFound during on_log, envoy PR #15224).
pub fn get_value(
    c: &mut Caller<'_, VmState>,
    ty: u32,
    key_ptr: u32,
    key_len: u32,
    ret_ptr: u32,
    ret_size: u32,
) -> Result<(), Fail> {
    let key = memory::read_string(c, key_ptr, key_len)?;
    let state = c.data();
    let value = match const_map(state, ty)? {
        Some(map) => map.get(&key).map(str::to_owned).ok_or(Status::NotFound)?,
        None if state.access_log => return Err(Status::NotFound.into()),
        None => return Err(Status::BadArgument.into()),
    };
    memory::return_bytes(c, value.as_bytes(), ret_ptr, ret_size)
}

/// `proxy_add_header_map_value`: appends a separate entry.
pub fn add_value(
    c: &mut Caller<'_, VmState>,
    ty: u32,
    key_ptr: u32,
    key_len: u32,
    value_ptr: u32,
    value_len: u32,
) -> Result<(), Fail> {
    let key = memory::read_string(c, key_ptr, key_len)?;
    let value = memory::read_string(c, value_ptr, value_len)?;
    mut_map(c.data_mut(), ty)?.add(&key, value);
    Ok(())
}

/// `proxy_replace_header_map_value`: remove all, append one (higress-envoy 1.27 `setCopy`).
pub fn replace_value(
    c: &mut Caller<'_, VmState>,
    ty: u32,
    key_ptr: u32,
    key_len: u32,
    value_ptr: u32,
    value_len: u32,
) -> Result<(), Fail> {
    let key = memory::read_string(c, key_ptr, key_len)?;
    let value = memory::read_string(c, value_ptr, value_len)?;
    mut_map(c.data_mut(), ty)?.replace(&key, value);
    Ok(())
}

/// `proxy_remove_header_map_value`: removes every entry (Ok if none).
pub fn remove_value(
    c: &mut Caller<'_, VmState>,
    ty: u32,
    key_ptr: u32,
    key_len: u32,
) -> Result<(), Fail> {
    let key = memory::read_string(c, key_ptr, key_len)?;
    mut_map(c.data_mut(), ty)?.remove(&key);
    Ok(())
}
