//! Raw proxy-wasm 0.2.1 hostcalls that return the host's status instead of panicking.
//!
//! Every wrapper hands the host's status back instead of panicking (the SDK's wrappers panic on a
//! status they do not expect, and a panic aborts the VM: docs/host-semantics.md §2 lists
//! BadArgument after a resume, a second local reply on Higress's Envoy, a header map that is
//! gone). Values the host returns live in memory from [`crate::proxy::abi`]'s allocator.

use ::core::ptr::null_mut;
use alloc::vec::Vec;

/// proxy-wasm `Status::Ok`.
const OK: u32 = 0;

/// Header maps (ABI `MapType`).
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Map {
    RequestHeaders = 0,
    CallResponseHeaders = 6,
}

/// Buffers (ABI `BufferType`).
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Buffer {
    CallResponseBody = 4,
    PluginConfiguration = 7,
}

/// A host status other than Ok.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u32);

impl ::core::fmt::Display for Status {
    /// The ABI name (proxy-wasm `WasmResult`), so logs read like Envoy's.
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
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

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(
        map: u32,
        key: *const u8,
        key_len: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(map: u32, out: *mut *mut u8, out_len: *mut usize) -> u32;
    fn proxy_remove_header_map_value(map: u32, key: *const u8, key_len: usize) -> u32;
    fn proxy_get_buffer_bytes(
        buffer: u32,
        start: usize,
        max: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> u32;
    fn proxy_get_property(
        path: *const u8,
        path_len: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
    ) -> u32;
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
    #[allow(clippy::too_many_arguments)]
    fn proxy_http_call(
        upstream: *const u8,
        upstream_len: usize,
        headers: *const u8,
        headers_len: usize,
        body: *const u8,
        body_len: usize,
        trailers: *const u8,
        trailers_len: usize,
        timeout_ms: u32,
        token: *mut u32,
    ) -> u32;
    #[cfg(target_arch = "wasm32")]
    fn proxy_log(level: u32, message: *const u8, message_len: usize) -> u32;
    fn proxy_get_current_time_nanoseconds(out: *mut u64) -> u32;
    fn proxy_get_log_level(level: *mut u32) -> u32;
    fn proxy_set_effective_context(context_id: u32) -> u32;
    fn proxy_set_tick_period_milliseconds(period: u32) -> u32;
    fn proxy_get_shared_data(
        key: *const u8,
        key_len: usize,
        out: *mut *mut u8,
        out_len: *mut usize,
        cas: *mut u32,
    ) -> u32;
    fn proxy_set_shared_data(
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
        cas: u32,
    ) -> u32;
    fn proxy_define_metric(kind: u32, name: *const u8, name_len: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
}

fn check(status: u32) -> Result<(), Status> {
    if status == OK {
        Ok(())
    } else {
        Err(Status(status))
    }
}

/// Takes ownership of a host-returned allocation (made by the SDK's `proxy_on_memory_allocate`).
///
/// # Safety
/// `data`/`len` must come from a successful hostcall that returned a buffer.
unsafe fn take(data: *mut u8, len: usize) -> Vec<u8> {
    if data.is_null() {
        return Vec::new();
    }
    Vec::from_raw_parts(data, len, len)
}

/// First value of a header, raw bytes; `None` if absent or the map is unavailable.
pub fn header(map: Map, name: &str) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut len = 0;
    // SAFETY: pointers to live locals; the host writes an allocation it hands over to us.
    unsafe {
        let status =
            proxy_get_header_map_value(map as u32, name.as_ptr(), name.len(), &mut data, &mut len);
        (status == OK).then(|| take(data, len))
    }
}

/// Every entry of a header map in the map encoding ([`serialize_pairs`]); empty if the map is
/// unavailable. One allocation in the VM for the whole map: each value the host returns costs
/// Envoy a call into the VM's allocator, the dearest part of a read (docs/host-semantics.md §2).
pub fn header_pairs(map: Map) -> Vec<u8> {
    let mut data = null_mut();
    let mut len = 0;
    // SAFETY: as for `header`.
    unsafe {
        match proxy_get_header_map_pairs(map as u32, &mut data, &mut len) {
            OK => take(data, len),
            _ => Vec::new(),
        }
    }
}

/// Replaces every entry of a request header with one value.
pub fn replace_header(map: Map, name: &str, value: &str) -> Result<(), Status> {
    // SAFETY: the slices outlive the call; the host copies them.
    check(unsafe {
        proxy_replace_header_map_value(
            map as u32,
            name.as_ptr(),
            name.len(),
            value.as_ptr(),
            value.len(),
        )
    })
}

/// Removes every entry of a request header.
pub fn remove_header(map: Map, name: &str) -> Result<(), Status> {
    // SAFETY: as above.
    check(unsafe { proxy_remove_header_map_value(map as u32, name.as_ptr(), name.len()) })
}

/// Up to `max` bytes of a buffer; empty if absent.
pub fn buffer(buffer: Buffer, max: usize) -> Vec<u8> {
    let mut data = null_mut();
    let mut len = 0;
    // SAFETY: as for `header`.
    unsafe {
        match proxy_get_buffer_bytes(buffer as u32, 0, max, &mut data, &mut len) {
            OK => take(data, len),
            _ => Vec::new(),
        }
    }
}

/// A property by its path, segments joined by NUL as the ABI encodes them (`xds\0route_name`).
pub fn property(name: &str) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut len = 0;
    // SAFETY: as for `header`.
    unsafe {
        let status = proxy_get_property(name.as_ptr(), name.len(), &mut data, &mut len);
        (status == OK && !data.is_null()).then(|| take(data, len))
    }
}

/// Resumes the paused request (`proxy_continue_stream(Request)`).
pub fn resume_request() -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_continue_stream(0) })
}

/// Sends a local reply; `details` shows in Envoy's `%RESPONSE_CODE_DETAILS%`.
pub fn send_local_response(
    status: u16,
    details: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> Result<(), Status> {
    let headers = serialize_pairs(headers);
    // SAFETY: every slice outlives the call; the host copies them. -1: no grpc-status.
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

/// Dispatches an HTTP call to `cluster` (`headers` in the map encoding, no trailers); returns its
/// token. The answer arrives at the root context (docs/host-semantics.md §3).
pub fn http_call(
    cluster: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    timeout_ms: u32,
) -> Result<u32, Status> {
    let headers = serialize_pairs(headers);
    let trailers = serialize_pairs(&[]);
    let mut token = 0;
    // SAFETY: every slice outlives the call and the host copies them; `token` is a live local.
    check(unsafe {
        proxy_http_call(
            cluster.as_ptr(),
            cluster.len(),
            headers.as_ptr(),
            headers.len(),
            body.as_ptr(),
            body.len(),
            trailers.as_ptr(),
            trailers.len(),
            timeout_ms,
            &mut token,
        )
    })?;
    Ok(token)
}

/// Writes one line to Envoy's log at `level` (0 trace … 5 critical).
#[cfg(target_arch = "wasm32")]
pub fn log(level: u32, message: &str) {
    // SAFETY: the slice outlives the call; the host copies it. Nothing to do if it refuses.
    unsafe {
        proxy_log(level, message.as_ptr(), message.len());
    }
}

// WASI's randomness, which Envoy and the test host serve to proxy-wasm modules too.
#[link(wasm_import_module = "wasi_snapshot_preview1")]
extern "C" {
    fn random_get(buf: *mut u8, len: usize) -> i32;
}

/// Sixteen random bytes as two keys; should the host refuse, the clock's nanoseconds (weaker,
/// but unknown to a remote client to the nanosecond).
pub fn random_keys() -> [u64; 2] {
    let mut bytes = [0u8; 16];
    // SAFETY: a live local buffer of the length given; the host writes at most that many bytes.
    let errno = unsafe { random_get(bytes.as_mut_ptr(), bytes.len()) };
    let (low, high) = bytes.split_at(8);
    let word = |half: &[u8]| {
        let mut buffer = [0u8; 8];
        buffer.copy_from_slice(half);
        u64::from_le_bytes(buffer)
    };
    if errno == 0 {
        return [word(low), word(high)];
    }
    let mut nanos = 0u64;
    // SAFETY: pointer to a live local.
    unsafe { proxy_get_current_time_nanoseconds(&mut nanos) };
    [nanos, nanos.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15]
}

/// Wall-clock time in whole seconds since the Unix epoch (0 if the host refuses).
pub fn now_secs() -> u64 {
    let mut nanos = 0u64;
    // SAFETY: pointer to a live local.
    match unsafe { proxy_get_current_time_nanoseconds(&mut nanos) } {
        OK => nanos / 1_000_000_000,
        _ => 0,
    }
}

/// The level of Envoy's `wasm` logger (0 trace … 5 critical), if the host tells.
pub fn log_level() -> Option<u32> {
    let mut level = 0u32;
    // SAFETY: pointer to a live local.
    (unsafe { proxy_get_log_level(&mut level) } == OK).then_some(level)
}

/// Makes later hostcalls act on another stream of this VM (docs/host-semantics.md §5).
pub fn set_effective_context(context_id: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_effective_context(context_id) })
}

/// Arms (or with 0 disarms) the root context's tick timer.
pub fn set_tick_period_ms(period: u32) -> Result<(), Status> {
    // SAFETY: no pointers.
    check(unsafe { proxy_set_tick_period_milliseconds(period) })
}

/// A shared-data value (process-wide, every worker VM sees it).
pub fn shared_data(key: &str) -> Option<Vec<u8>> {
    let mut data = null_mut();
    let mut len = 0;
    let mut cas = 0;
    // SAFETY: as for `header`.
    unsafe {
        let status = proxy_get_shared_data(key.as_ptr(), key.len(), &mut data, &mut len, &mut cas);
        (status == OK).then(|| take(data, len))
    }
}

/// Stores a shared-data value unconditionally (cas 0).
pub fn set_shared_data(key: &str, value: &[u8]) -> Result<(), Status> {
    // SAFETY: the slices outlive the call; the host copies them.
    check(unsafe { proxy_set_shared_data(key.as_ptr(), key.len(), value.as_ptr(), value.len(), 0) })
}

/// Defines a counter; its id is per VM.
pub fn define_counter(name: &str) -> Result<u32, Status> {
    let mut id = 0;
    // SAFETY: pointer to a live local.
    check(unsafe { proxy_define_metric(0, name.as_ptr(), name.len(), &mut id) })?;
    Ok(id)
}

/// Adds `offset` to a counter.
pub fn increment(id: u32, offset: u64) -> Result<(), Status> {
    let offset = i64::try_from(offset).unwrap_or(i64::MAX);
    // SAFETY: no pointers.
    check(unsafe { proxy_increment_metric(id, offset) })
}

/// The proxy-wasm map encoding (docs/host-semantics.md §2): count, (key len, value len)*, then
/// each key and value followed by a NUL, all lengths u32 little-endian.
pub fn serialize_pairs(pairs: &[(&str, &str)]) -> Vec<u8> {
    let payload: usize = pairs.iter().map(|(k, v)| k.len() + v.len() + 2).sum();
    let mut out = Vec::with_capacity(4 + pairs.len() * 8 + payload);
    out.extend_from_slice(&len_u32(pairs.len()));
    for (key, value) in pairs {
        out.extend_from_slice(&len_u32(key.len()));
        out.extend_from_slice(&len_u32(value.len()));
    }
    for (key, value) in pairs {
        out.extend_from_slice(key.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// The first value of `name` in a map in the map encoding; `None` when absent or when the bytes
/// are not a well-formed map. Keys are compared byte for byte (Envoy's are lowercase).
pub fn first_value<'a>(map: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let count = usize::try_from(u32_at(map, 0)?).ok()?;
    let sizes = map.get(4..4 + count.checked_mul(8)?)?;
    let mut data = map.get(4 + sizes.len()..)?;
    for pair in sizes.chunks_exact(8) {
        let key_len = usize::try_from(u32_at(pair, 0)?).ok()?;
        let value_len = usize::try_from(u32_at(pair, 4)?).ok()?;
        let value_start = key_len.checked_add(1)?;
        let value_end = value_start.checked_add(value_len)?;
        if data.get(..key_len)? == name.as_bytes() {
            return data.get(value_start..value_end);
        }
        data = data.get(value_end.checked_add(1)?..)?;
    }
    None
}

/// The little-endian u32 at `offset`.
fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let word = bytes.get(offset..offset.checked_add(4)?)?;
    Some(u32::from_le_bytes(word.try_into().ok()?))
}

fn len_u32(len: usize) -> [u8; 4] {
    u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_encoding_matches_the_abi() {
        let bytes = serialize_pairs(&[("a", "1"), ("bc", "")]);
        let expected: Vec<u8> = [
            &2u32.to_le_bytes()[..],
            &1u32.to_le_bytes(),
            &1u32.to_le_bytes(),
            &2u32.to_le_bytes(),
            &0u32.to_le_bytes(),
            b"a\x001\x00bc\x00\x00",
        ]
        .concat();
        assert_eq!(bytes, expected);
        assert_eq!(serialize_pairs(&[]), 0u32.to_le_bytes());
    }

    #[test]
    fn first_value_finds_the_first_entry_of_a_name() {
        let map = serialize_pairs(&[(":path", "/a"), ("x", ""), ("cookie", "1"), ("cookie", "2")]);
        assert_eq!(first_value(&map, ":path"), Some(&b"/a"[..]));
        assert_eq!(first_value(&map, "x"), Some(&b""[..]));
        assert_eq!(first_value(&map, "cookie"), Some(&b"1"[..]));
        assert_eq!(first_value(&map, "authorization"), None);
        assert_eq!(first_value(&[], ":path"), None);
    }

    #[test]
    fn first_value_never_reads_past_a_malformed_map() {
        let map = serialize_pairs(&[(":path", "/a"), ("authorization", "Bearer t")]);
        // Every cut before the value's last byte (only its closing NUL may go missing).
        for cut in 0..map.len() - 1 {
            let truncated = map.get(..cut).unwrap();
            assert_ne!(
                first_value(truncated, "authorization"),
                Some(&b"Bearer t"[..])
            );
        }
        let mut huge = map.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(first_value(&huge, "authorization"), None);
        let mut many = map;
        many[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(first_value(&many, ":path"), None);
    }
}
