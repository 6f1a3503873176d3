//! The floor of a plugin that reads the request and sets one header, in Envoy, written against
//! the raw ABI: only the exports such a plugin needs (context create, request headers, delete,
//! the allocator, vm start, configure), and per request one read of every request header
//! (`proxy_get_header_map_pairs`, which calls back into the allocator) and one replace of
//! `x-auth-user`. `make bench` measures it beside the SDK-built floor (`bench/plugins/sdk-floor`,
//! every export the SDK has): the difference is what the SDK itself costs per request.
#![allow(clippy::missing_safety_doc)]

use std::ptr::null_mut;

#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_pairs(map: u32, out: *mut *mut u8, out_len: *mut usize) -> u32;
    fn proxy_replace_header_map_value(
        map: u32,
        key: *const u8,
        key_len: usize,
        value: *const u8,
        value_len: usize,
    ) -> u32;
}

#[no_mangle]
pub extern "C" fn proxy_abi_version_0_2_1() {}

#[no_mangle]
pub extern "C" fn proxy_on_memory_allocate(size: usize) -> *mut u8 {
    let mut buffer: Vec<u8> = Vec::with_capacity(size);
    let pointer = buffer.as_mut_ptr();
    std::mem::forget(buffer);
    pointer
}

#[no_mangle]
pub extern "C" fn proxy_on_vm_start(_root_id: u32, _size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_configure(_root_id: u32, _size: usize) -> u32 {
    1
}

#[no_mangle]
pub extern "C" fn proxy_on_context_create(_context_id: u32, _root_id: u32) {}

#[no_mangle]
pub extern "C" fn proxy_on_request_headers(_context_id: u32, _headers: usize, _end: u32) -> u32 {
    let mut data = null_mut();
    let mut len = 0;
    let (key, value) = ("x-auth-user", "0");
    // SAFETY: pointers to live locals; the host hands over an allocation from
    // `proxy_on_memory_allocate`, freed here; the replace copies its slices.
    unsafe {
        if proxy_get_header_map_pairs(0, &mut data, &mut len) == 0 && !data.is_null() {
            drop(Vec::from_raw_parts(data, len, len));
        }
        proxy_replace_header_map_value(0, key.as_ptr(), key.len(), value.as_ptr(), value.len());
    }
    0
}

#[no_mangle]
pub extern "C" fn proxy_on_delete(_context_id: u32) {}
