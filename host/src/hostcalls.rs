//! The `env.proxy_*` imports: registration, statuses and the start-up restriction.
//!
//! Each submodule implements one family of hostcalls as plain functions
//! `fn(&mut Caller<VmState>, args…) -> Result<(), Fail>`; this module wires them into the linker.

mod buffers;
mod http_call;
mod logging;
mod maps;
mod metrics;
mod properties;
mod shared;
mod stream;

use wasmtime::{Caller, Linker};

use crate::state::{Phase, VmState};

/// proxy-wasm `WasmResult` values returned to the guest (the full table, not all used).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok = 0,
    NotFound = 1,
    BadArgument = 2,
    SerializationFailure = 3,
    ParseFailure = 4,
    InvalidMemoryAccess = 6,
    Empty = 7,
    CasMismatch = 8,
    InternalFailure = 10,
    BrokenConnection = 11,
    Unimplemented = 12,
}

/// Why a hostcall did not return Ok: a status for the guest, or a trap that fails the VM.
#[derive(Debug)]
pub enum Fail {
    Status(Status),
    Trap(wasmtime::Error),
}

impl From<Status> for Fail {
    fn from(s: Status) -> Fail {
        Fail::Status(s)
    }
}

/// The hostcalls allowed while `_initialize`/`main` run (docs/host-semantics.md §1); the rest trap.
const ALLOWED_AT_STARTUP: &[&str] = &["proxy_log"];

fn guard(caller: &Caller<'_, VmState>, name: &str) -> wasmtime::Result<()> {
    if caller.data().phase == Phase::Startup && !ALLOWED_AT_STARTUP.contains(&name) {
        return Err(wasmtime::format_err!(
            "restricted_callback: env.{name} called during start-up (_initialize/main)"
        ));
    }
    Ok(())
}

fn finish(result: Result<(), Fail>) -> wasmtime::Result<u32> {
    match result {
        Ok(()) => Ok(Status::Ok as u32),
        Err(Fail::Status(s)) => Ok(s as u32),
        Err(Fail::Trap(e)) => Err(e),
    }
}

/// Registers `name` with the restriction guard and the status mapping.
macro_rules! hostcall {
    ($linker:ident, $name:literal, $func:path, ($($arg:ident : $ty:ty),*)) => {
        $linker.func_wrap(
            "env",
            $name,
            |mut c: Caller<'_, VmState>, $($arg: $ty),*| -> wasmtime::Result<u32> {
                guard(&c, $name)?;
                finish($func(&mut c, $($arg),*))
            },
        )?;
    };
}

/// Adds every implemented `env.proxy_*` import to the linker.
pub fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    hostcall!(linker, "proxy_log", logging::log, (level: u32, ptr: u32, len: u32));
    hostcall!(linker, "proxy_get_log_level", logging::get_log_level, (ret: u32));
    hostcall!(linker, "proxy_get_current_time_nanoseconds", logging::current_time, (ret: u32));
    hostcall!(linker, "proxy_set_tick_period_milliseconds", logging::set_tick_period, (ms: u32));
    hostcall!(linker, "proxy_call_foreign_function", logging::foreign_function,
        (n: u32, nl: u32, a: u32, al: u32, rp: u32, rs: u32));

    hostcall!(linker, "proxy_get_header_map_pairs", maps::get_pairs, (ty: u32, rp: u32, rs: u32));
    hostcall!(linker, "proxy_set_header_map_pairs", maps::set_pairs, (ty: u32, p: u32, s: u32));
    hostcall!(linker, "proxy_get_header_map_size", maps::get_size, (ty: u32, rs: u32));
    hostcall!(linker, "proxy_get_header_map_value", maps::get_value,
        (ty: u32, kp: u32, kl: u32, rp: u32, rs: u32));
    hostcall!(linker, "proxy_add_header_map_value", maps::add_value,
        (ty: u32, kp: u32, kl: u32, vp: u32, vl: u32));
    hostcall!(linker, "proxy_replace_header_map_value", maps::replace_value,
        (ty: u32, kp: u32, kl: u32, vp: u32, vl: u32));
    hostcall!(linker, "proxy_remove_header_map_value", maps::remove_value, (ty: u32, kp: u32, kl: u32));

    hostcall!(linker, "proxy_get_buffer_bytes", buffers::get_bytes,
        (ty: u32, start: u32, max: u32, rp: u32, rs: u32));
    hostcall!(linker, "proxy_set_buffer_bytes", buffers::set_bytes,
        (ty: u32, start: u32, size: u32, p: u32, l: u32));

    hostcall!(linker, "proxy_get_property", properties::get, (pp: u32, pl: u32, rp: u32, rs: u32));
    hostcall!(linker, "proxy_set_property", properties::set, (pp: u32, pl: u32, vp: u32, vl: u32));

    hostcall!(linker, "proxy_get_shared_data", shared::get,
        (kp: u32, kl: u32, rp: u32, rs: u32, rc: u32));
    hostcall!(linker, "proxy_set_shared_data", shared::set, (kp: u32, kl: u32, vp: u32, vl: u32, cas: u32));

    hostcall!(linker, "proxy_define_metric", metrics::define, (ty: u32, np: u32, nl: u32, ri: u32));
    hostcall!(linker, "proxy_increment_metric", metrics::increment, (id: u32, offset: i64));
    hostcall!(linker, "proxy_record_metric", metrics::record, (id: u32, value: u64));
    hostcall!(linker, "proxy_get_metric", metrics::get, (id: u32, rv: u32));

    hostcall!(linker, "proxy_http_call", http_call::dispatch,
        (up: u32, ul: u32, hp: u32, hl: u32, bp: u32, bl: u32, tp: u32, tl: u32, timeout: u32, rt: u32));

    hostcall!(linker, "proxy_continue_stream", stream::continue_stream, (dir: u32));
    hostcall!(linker, "proxy_send_local_response", stream::send_local_response,
        (status: u32, dp: u32, dl: u32, bp: u32, bl: u32, hp: u32, hl: u32, grpc: i32));
    hostcall!(linker, "proxy_set_effective_context", stream::set_effective_context, (id: u32));
    hostcall!(linker, "proxy_get_status", stream::get_status, (rc: u32, rp: u32, rs: u32));
    hostcall!(linker, "proxy_done", stream::done, ());
    Ok(())
}
