//! Bounds-checked access to the guest's linear memory and the guest allocator.
//!
//! Every guest pointer and length goes through here: a bad one becomes
//! `Status::InvalidMemoryAccess` (as in cpp-host), never a host panic.

use wasmtime::Caller;

use crate::hostcalls::{Fail, Status};
use crate::state::VmState;

fn memory(caller: &Caller<'_, VmState>) -> Result<wasmtime::Memory, Fail> {
    caller
        .data()
        .memory
        .ok_or(Fail::Status(Status::InvalidMemoryAccess))
}

fn range(ptr: u32, len: u32, size: usize) -> Result<std::ops::Range<usize>, Fail> {
    let start = ptr as usize;
    let end = start
        .checked_add(len as usize)
        .ok_or(Fail::Status(Status::InvalidMemoryAccess))?;
    if end > size {
        return Err(Fail::Status(Status::InvalidMemoryAccess));
    }
    Ok(start..end)
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub fn read(caller: &Caller<'_, VmState>, ptr: u32, len: u32) -> Result<Vec<u8>, Fail> {
    let mem = memory(caller)?;
    let data = mem.data(caller);
    let r = range(ptr, len, data.len())?;
    data.get(r)
        .map(<[u8]>::to_vec)
        .ok_or(Fail::Status(Status::InvalidMemoryAccess))
}

/// Reads guest bytes as a string (invalid UTF-8 is replaced).
pub fn read_string(caller: &Caller<'_, VmState>, ptr: u32, len: u32) -> Result<String, Fail> {
    Ok(String::from_utf8_lossy(&read(caller, ptr, len)?).into_owned())
}

/// Writes `bytes` at `ptr`.
pub fn write(caller: &mut Caller<'_, VmState>, ptr: u32, bytes: &[u8]) -> Result<(), Fail> {
    let mem = memory(caller)?;
    let data = mem.data_mut(caller);
    let r = range(
        ptr,
        u32::try_from(bytes.len()).unwrap_or(u32::MAX),
        data.len(),
    )?;
    data.get_mut(r)
        .ok_or(Fail::Status(Status::InvalidMemoryAccess))?
        .copy_from_slice(bytes);
    Ok(())
}

/// Writes a little-endian u32 (also the guest's `usize`).
pub fn write_u32(caller: &mut Caller<'_, VmState>, ptr: u32, value: u32) -> Result<(), Fail> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Writes a little-endian u64.
pub fn write_u64(caller: &mut Caller<'_, VmState>, ptr: u32, value: u64) -> Result<(), Fail> {
    write(caller, ptr, &value.to_le_bytes())
}

/// Copies `bytes` into freshly guest-allocated memory and returns the guest pointer.
pub fn alloc_copy(caller: &mut Caller<'_, VmState>, bytes: &[u8]) -> Result<u32, Fail> {
    let alloc = caller
        .data()
        .alloc
        .clone()
        .ok_or(Fail::Status(Status::InvalidMemoryAccess))?;
    let len = u32::try_from(bytes.len()).map_err(|_| Fail::Status(Status::InvalidMemoryAccess))?;
    let ptr = alloc.call(&mut *caller, len).map_err(Fail::Trap)?;
    if ptr == 0 {
        return Err(Fail::Status(Status::InvalidMemoryAccess));
    }
    write(caller, ptr, bytes)?;
    Ok(ptr)
}

/// Returns a value to the guest the way cpp-host's `copyToPointerSize` does: an empty value is
/// written as ptr=0, size=0 (the SDK then sees `None`); anything else is allocated and copied.
pub fn return_bytes(
    caller: &mut Caller<'_, VmState>,
    bytes: &[u8],
    ptr_ptr: u32,
    size_ptr: u32,
) -> Result<(), Fail> {
    let ptr = if bytes.is_empty() {
        0
    } else {
        alloc_copy(caller, bytes)?
    };
    write_u32(caller, ptr_ptr, ptr)?;
    write_u32(
        caller,
        size_ptr,
        u32::try_from(bytes.len()).unwrap_or(u32::MAX),
    )
}
