//! Property hostcalls: plugin identity, route/cluster names and `request.*`
//! (docs/host-semantics.md §2 "Properties").

use wasmtime::Caller;

use super::{Fail, Status};
use crate::memory;
use crate::pairs;
use crate::state::{StreamData, VmState};
use crate::types::Flavor;

/// Splits a NUL-joined property path into a dotted name (no trailing NUL, §2).
fn dotted(raw: &[u8]) -> String {
    raw.split(|b| *b == 0)
        .map(String::from_utf8_lossy)
        .collect::<Vec<_>>()
        .join(".")
}

/// `proxy_get_property`: missing → NotFound; an empty value reaches the SDK as None (ptr=0).
pub fn get(
    c: &mut Caller<'_, VmState>,
    path_ptr: u32,
    path_len: u32,
    ret_ptr: u32,
    ret_size: u32,
) -> Result<(), Fail> {
    let path = dotted(&memory::read(c, path_ptr, path_len)?);
    let value = lookup(c.data(), &path).ok_or(Status::NotFound)?;
    memory::return_bytes(c, &value, ret_ptr, ret_size)
}

/// `proxy_set_property`: stored per stream (Envoy's filter state `wasm.<path>`); the root
/// context has no stream info → NotFound.
pub fn set(
    c: &mut Caller<'_, VmState>,
    path_ptr: u32,
    path_len: u32,
    value_ptr: u32,
    value_len: u32,
) -> Result<(), Fail> {
    let path = dotted(&memory::read(c, path_ptr, path_len)?);
    let value = memory::read(c, value_ptr, value_len)?;
    let stream = c
        .data_mut()
        .effective_stream_mut()
        .ok_or(Status::NotFound)?;
    stream.properties.insert(path, value);
    Ok(())
}

fn lookup(state: &VmState, path: &str) -> Option<Vec<u8>> {
    match path {
        "plugin_name" => return Some(state.cfg.plugin_name.clone().into_bytes()),
        "plugin_root_id" => return Some(state.cfg.root_id.clone().into_bytes()),
        "plugin_vm_id" => return Some(state.cfg.vm_id.clone().into_bytes()),
        _ => {}
    }
    let stream = state.effective_stream()?;
    if let Some(v) = stream.properties.get(path) {
        return Some(v.clone());
    }
    if let Some((_, v)) = stream.props.extra.iter().find(|(k, _)| k == path) {
        return Some(v.clone());
    }
    stream_property(stream, path, state.cfg.flavor)
}

fn stream_property(stream: &StreamData, path: &str, flavor: Flavor) -> Option<Vec<u8>> {
    let headers = &stream.request_headers;
    let header = |name: &str| headers.get(name).map(|v| v.as_bytes().to_vec());
    let raw_path = headers.get(":path").unwrap_or_default();
    let (url_path, query) = raw_path.split_once('?').unwrap_or((raw_path, ""));
    match path {
        "xds.route_name" => stream.props.route_name.clone().map(String::into_bytes),
        "xds.cluster_name" => stream.props.cluster_name.clone().map(String::into_bytes),
        // Removed from upstream Envoy in 1.33; Higress's gateway still serves them (§2).
        "route_name" if flavor == Flavor::Higress => {
            stream.props.route_name.clone().map(String::into_bytes)
        }
        "cluster_name" if flavor == Flavor::Higress => {
            stream.props.cluster_name.clone().map(String::into_bytes)
        }
        "request.path" => header(":path"),
        "request.url_path" => headers.get(":path").map(|_| url_path.as_bytes().to_vec()),
        "request.query" => headers.get(":path").map(|_| query.as_bytes().to_vec()),
        "request.host" => header(":authority"),
        "request.method" => header(":method"),
        "request.scheme" => header(":scheme"),
        "request.id" => header("x-request-id"),
        "request.referer" => header("referer"),
        "request.useragent" => header("user-agent"),
        "request.headers" => Some(pairs::encode(headers.entries())),
        "response.headers" => stream
            .response_headers
            .as_ref()
            .map(|h| pairs::encode(h.entries())),
        "response.code" => response_code(stream),
        _ => named_header(stream, path),
    }
}

/// `request.headers.<name>` / `response.headers.<name>`.
fn named_header(stream: &StreamData, path: &str) -> Option<Vec<u8>> {
    if let Some(name) = path.strip_prefix("request.headers.") {
        return stream
            .request_headers
            .get(name)
            .map(|v| v.as_bytes().to_vec());
    }
    let name = path.strip_prefix("response.headers.")?;
    let value = stream.response_headers.as_ref()?.get(name)?;
    Some(value.as_bytes().to_vec())
}

/// `response.code` as an int64, 8 bytes little-endian.
fn response_code(stream: &StreamData) -> Option<Vec<u8>> {
    let code: i64 = stream
        .response_headers
        .as_ref()?
        .get(":status")?
        .parse()
        .ok()?;
    Some(code.to_le_bytes().to_vec())
}
