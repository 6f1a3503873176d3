//! Raw hostcall imports for calls the SDK would turn into a panic on a non-Ok status;
//! each returns the host's status number so the probe can log it.
#![allow(clashing_extern_declarations)]

use std::ptr::null_mut;

use proxy_wasm::types::{BufferType, MapType};

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_log(level: u32, message_data: *const u8, message_size: usize) -> u32;
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_pairs(
        map_type: u32,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_get_header_map_size(map_type: u32, return_size: *mut usize) -> u32;
    fn proxy_add_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        value_data: *const u8,
        value_size: usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_data: *mut *mut u8,
        return_size: *mut usize,
    ) -> u32;
    fn proxy_set_buffer_bytes(
        buffer_type: u32,
        start: usize,
        size: usize,
        data: *const u8,
        data_size: usize,
    ) -> u32;
    fn proxy_send_local_response(
        status_code: u32,
        details_data: *const u8,
        details_size: usize,
        body_data: *const u8,
        body_size: usize,
        headers_data: *const u8,
        headers_size: usize,
        grpc_status: i32,
    ) -> u32;
}

/// Takes ownership of a host-allocated buffer (the host allocated it with our allocator).
fn take(ptr: *mut u8, size: usize) -> Vec<u8> {
    if ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: the host allocated `size` bytes through proxy_on_memory_allocate.
    unsafe { Vec::from_raw_parts(ptr, size, size) }
}

/// (status, value) of `proxy_get_header_map_value`.
pub fn get_map_value(map: MapType, key: &str) -> (u32, Option<String>) {
    let (mut ptr, mut size) = (null_mut(), 0usize);
    // SAFETY: valid pointers to locals; key is a live slice.
    let status = unsafe {
        proxy_get_header_map_value(map as u32, key.as_ptr(), key.len(), &mut ptr, &mut size)
    };
    let value = (status == 0).then(|| String::from_utf8_lossy(&take(ptr, size)).into_owned());
    (status, value)
}

/// (status, number of pairs) of `proxy_get_header_map_pairs`.
pub fn get_map_pairs_len(map: MapType) -> (u32, usize) {
    let (mut ptr, mut size) = (null_mut(), 0usize);
    // SAFETY: valid pointers to locals.
    let status = unsafe { proxy_get_header_map_pairs(map as u32, &mut ptr, &mut size) };
    let bytes = take(ptr, size);
    let count = bytes
        .get(..4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .unwrap_or(0);
    (status, count)
}

/// (status, byte size) of `proxy_get_header_map_size`.
pub fn get_map_size(map: MapType) -> (u32, usize) {
    let mut size = 0usize;
    // SAFETY: valid pointer to a local.
    let status = unsafe { proxy_get_header_map_size(map as u32, &mut size) };
    (status, size)
}

/// Status of `proxy_add_header_map_value`.
pub fn add_map_value(map: MapType, key: &str, value: &str) -> u32 {
    // SAFETY: live slices.
    unsafe {
        proxy_add_header_map_value(
            map as u32,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
        )
    }
}

/// (status, bytes) of reading a whole buffer.
pub fn get_buffer_status(buffer: BufferType) -> (u32, usize) {
    get_buffer_status_raw(buffer as u32)
}

/// Same with a raw buffer type number.
pub fn get_buffer_status_raw(buffer: u32) -> (u32, usize) {
    let (mut ptr, mut size) = (null_mut(), 0usize);
    // SAFETY: valid pointers to locals.
    let status = unsafe { proxy_get_buffer_bytes(buffer, 0, usize::MAX, &mut ptr, &mut size) };
    (status, take(ptr, size).len())
}

/// Status of `proxy_set_buffer_bytes`.
pub fn set_buffer(buffer: BufferType, start: usize, size: usize, data: &[u8]) -> u32 {
    // SAFETY: live slice.
    unsafe { proxy_set_buffer_bytes(buffer as u32, start, size, data.as_ptr(), data.len()) }
}

/// Status of a local reply sent without the SDK's panic on failure.
pub fn send_local_response(status: u32, body: &[u8]) -> u32 {
    // SAFETY: live slices; empty details and headers.
    unsafe {
        proxy_send_local_response(
            status,
            [].as_ptr(),
            0,
            body.as_ptr(),
            body.len(),
            [].as_ptr(),
            0,
            -1,
        )
    }
}

/// Status of `proxy_log` with an arbitrary level.
pub fn log_with_level(level: u32) -> u32 {
    let message = b"probe: level test";
    // SAFETY: live slice.
    unsafe { proxy_log(level, message.as_ptr(), message.len()) }
}

/// Status of `proxy_log` with a pointer far outside linear memory.
pub fn log_out_of_bounds() -> u32 {
    // SAFETY: the host must bounds-check; the pointer is never dereferenced by the guest.
    unsafe { proxy_log(2, 0xFFFF_FF00usize as *const u8, 0x1000) }
}
