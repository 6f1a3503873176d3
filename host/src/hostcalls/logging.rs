//! Logging, time, timer and foreign-function hostcalls (docs/host-semantics.md §2).

use wasmtime::Caller;

use super::{Fail, Status};
use crate::memory;
use crate::state::VmState;
use crate::types::LogLevel;

/// `proxy_log`: levels 0–5; a higher level is BadArgument.
pub fn log(c: &mut Caller<'_, VmState>, level: u32, ptr: u32, len: u32) -> Result<(), Fail> {
    let level = LogLevel::from_u32(level).ok_or(Status::BadArgument)?;
    let message = memory::read_string(c, ptr, len)?;
    c.data_mut().log(level, message);
    Ok(())
}

/// `proxy_get_log_level`: the host logger's level.
pub fn get_log_level(c: &mut Caller<'_, VmState>, ret: u32) -> Result<(), Fail> {
    let level = c.data().cfg.log_level as u32;
    memory::write_u32(c, ret, level)
}

/// `proxy_get_current_time_nanoseconds`: wall clock of the environment (not frozen per call).
pub fn current_time(c: &mut Caller<'_, VmState>, ret: u32) -> Result<(), Fail> {
    let now = c.data().env.clock.now_nanos();
    memory::write_u64(c, ret, now)
}

/// `proxy_set_tick_period_milliseconds`: 0 disables the root context's timer.
pub fn set_tick_period(c: &mut Caller<'_, VmState>, ms: u32) -> Result<(), Fail> {
    c.data_mut().tick_period_ms = ms;
    Ok(())
}

/// `proxy_call_foreign_function`: no foreign functions are registered → NotFound.
pub fn foreign_function(
    c: &mut Caller<'_, VmState>,
    name_ptr: u32,
    name_len: u32,
    _args_ptr: u32,
    _args_len: u32,
    _ret_ptr: u32,
    _ret_size: u32,
) -> Result<(), Fail> {
    memory::read(c, name_ptr, name_len)?;
    Err(Status::NotFound.into())
}
