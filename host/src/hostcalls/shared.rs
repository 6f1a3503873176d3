//! Shared-data hostcalls (docs/host-semantics.md §2 "Shared data"); queues are not implemented.

use wasmtime::Caller;

use super::{Fail, Status};
use crate::memory;
use crate::shared_data::SharedDataError;
use crate::state::VmState;

/// `proxy_get_shared_data`: value (ptr=0 when empty) and cas; NotFound for a missing key.
pub fn get(
    c: &mut Caller<'_, VmState>,
    key_ptr: u32,
    key_len: u32,
    ret_ptr: u32,
    ret_size: u32,
    ret_cas: u32,
) -> Result<(), Fail> {
    let key = memory::read_string(c, key_ptr, key_len)?;
    let state = c.data();
    let (value, cas) = state
        .env
        .shared_data
        .get(&state.cfg.vm_id, &key)
        .ok_or(Status::NotFound)?;
    memory::return_bytes(c, &value, ret_ptr, ret_size)?;
    memory::write_u32(c, ret_cas, cas)
}

/// `proxy_set_shared_data`: CAS as in cpp-host (ignored for a new key).
pub fn set(
    c: &mut Caller<'_, VmState>,
    key_ptr: u32,
    key_len: u32,
    value_ptr: u32,
    value_len: u32,
    cas: u32,
) -> Result<(), Fail> {
    let key = memory::read_string(c, key_ptr, key_len)?;
    let value = memory::read(c, value_ptr, value_len)?;
    let state = c.data();
    match state
        .env
        .shared_data
        .set(&state.cfg.vm_id, &key, &value, cas)
    {
        Ok(()) => Ok(()),
        Err(SharedDataError::CasMismatch) => Err(Status::CasMismatch.into()),
    }
}
