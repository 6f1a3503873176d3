//! The few proxy-wasm imports whose status the plugin must see: the SDK's `hostcalls` wrappers
//! `panic!` on any status they do not expect, and a panic aborts the VM with every request of
//! the worker. Envoy legitimately answers these with other statuses (docs/host-semantics.md §2–4):
//!
//! - `proxy_get_header_map_value` on the call answer: BadArgument when the call failed without
//!   headers (a reset), where the SDK expects Ok or NotFound;
//! - `proxy_replace_header_map_value`, `proxy_remove_header_map_value`: BadArgument once the
//!   request headers are gone (a header edit Envoy refuses), where the SDK expects Ok;
//! - `proxy_send_local_response`: BadArgument for a second local reply on Higress's Envoy;
//! - `proxy_continue_stream`: NotFound or BadArgument for a stream that has gone;
//! - `proxy_set_effective_context`: a stream that has gone while its call was out.
//!
//! Everything else goes through `proxy_wasm::hostcalls`. This is the only `unsafe` in `src/`.

use proxy_wasm::types::{MapType, Status};
use std::ptr::null_mut;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(
        map: MapType,
        key: *const u8,
        key_len: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map: MapType,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> u32;
    fn proxy_remove_header_map_value(map: MapType, key: *const u8, key_len: usize) -> u32;
    fn proxy_continue_stream(stream: u32) -> u32;
    #[allow(clippy::too_many_arguments)]
    fn proxy_send_local_response(
        status: u32,
        details: *const u8,
        details_len: usize,
        body: *const u8,
        body_len: usize,
        headers: *const u8,
        headers_len: usize,
        grpc_status: i32,
    ) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
}

/// A status other than Ok, as the host answered it (ABI `WasmResult` number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused(pub u32);

impl std::fmt::Display for Refused {
    /// The ABI name, so logs read like Envoy's.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = match self.0 {
            1 => "NotFound",
            2 => "BadArgument",
            3 => "SerializationFailure",
            4 => "ParseFailure",
            6 => "InvalidMemoryAccess",
            7 => "Empty",
            8 => "CasMismatch",
            10 => "InternalFailure",
            11 => "BrokenConnection",
            12 => "Unimplemented",
            _ => return write!(f, "status {}", self.0),
        };
        f.write_str(name)
    }
}

impl From<Status> for Refused {
    fn from(status: Status) -> Refused {
        Refused(status as u32)
    }
}

fn check(status: u32) -> Result<(), Refused> {
    match status {
        0 => Ok(()),
        other => Err(Refused(other)),
    }
}

/// The first value of a header of `map`; `None` when absent or the map is unavailable.
pub fn header_value(map: MapType, name: &str) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut len = 0;
    // SAFETY: `name` outlives the call; `data`/`len` are live locals the host writes. On Ok the
    // host has put the value in memory it allocated through the SDK's `proxy_on_memory_allocate`
    // (a `Vec<u8>` of capacity `len`, forgotten), which `Vec::from_raw_parts` takes back, as
    // the SDK's own `get_map_value_bytes` does.
    unsafe {
        let status =
            proxy_get_header_map_value(map, name.as_ptr(), name.len(), &mut data, &mut len);
        if status != 0 {
            return None;
        }
        if data.is_null() {
            return Some(Vec::new());
        }
        Some(Vec::from_raw_parts(data, len, len))
    }
}

/// Replaces every entry of header `name` of `map` with `value`.
pub fn replace_header(map: MapType, name: &str, value: &str) -> Result<(), Refused> {
    // SAFETY: both slices outlive the call; the host copies them.
    check(unsafe {
        proxy_replace_header_map_value(map, name.as_ptr(), name.len(), value.as_ptr(), value.len())
    })
}

/// Removes every entry of header `name` of `map`.
pub fn remove_header(map: MapType, name: &str) -> Result<(), Refused> {
    // SAFETY: the slice outlives the call; the host copies it.
    check(unsafe { proxy_remove_header_map_value(map, name.as_ptr(), name.len()) })
}

/// Resumes the effective context's paused request (`proxy_continue_stream(Request)`).
pub fn resume_request() -> Result<(), Refused> {
    // SAFETY: no pointers.
    check(unsafe { proxy_continue_stream(0) })
}

/// Answers the effective context's request locally; `details` is Envoy's
/// `%RESPONSE_CODE_DETAILS%`. No grpc-status (-1).
pub fn send_local_response(
    status: u16,
    details: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<(), Refused> {
    let headers = serialize_pairs(headers);
    // SAFETY: every slice outlives the call; the host copies them.
    check(unsafe {
        proxy_send_local_response(
            u32::from(status),
            details.as_ptr(),
            details.len(),
            body.as_ptr(),
            body.len(),
            headers.as_ptr(),
            headers.len(),
            -1,
        )
    })
}

/// Makes later hostcalls act on context `context_id`.
pub fn set_effective_context(context_id: u32) -> Result<(), Refused> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_effective_context(context_id) })
}

/// The proxy-wasm map encoding: the pair count, each name and value length (u32, little
/// endian), then each name and value followed by a NUL.
pub fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut size = 4;
    for (name, value) in pairs {
        size += 8 + name.len() + value.len() + 2;
    }
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&len32(pairs.len()));
    for (name, value) in pairs {
        out.extend_from_slice(&len32(name.len()));
        out.extend_from_slice(&len32(value.len()));
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

fn len32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::serialize_pairs;

    #[test]
    fn pairs_are_encoded_as_the_abi_reads_them() {
        let encoded = serialize_pairs(&[("content-type", "application/json"), ("a", "")]);
        let mut expected = vec![2, 0, 0, 0, 12, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        expected.extend_from_slice(b"content-type\0application/json\0a\0\0");
        assert_eq!(encoded, expected);
        assert_eq!(serialize_pairs(&[]), [0, 0, 0, 0]);
    }
}
