//! The minimal WASI preview1 imports a Rust wasm32-wasip1 proxy-wasm module needs.
//!
//! stdout → info log, stderr → error log (trailing newline stripped, docs/host-semantics.md §2);
//! env from `VmConfig::environment`; clocks from the `HostEnv` clock; no files, no preopens.

use wasmtime::{Caller, Linker};

use crate::hostcalls::Fail;
use crate::memory;
use crate::state::VmState;
use crate::types::LogLevel;

const MODULE: &str = "wasi_snapshot_preview1";
const ESUCCESS: u32 = 0;
const EBADF: u32 = 8;
const EFAULT: u32 = 21;
const ENOSYS: u32 = 52;
const ESPIPE: u32 = 70;
/// Largest single `fd_write` / `random_get` the host serves (guards against guest bugs).
const MAX_WRITE: usize = 16 << 20;

fn errno(result: Result<(), Fail>) -> wasmtime::Result<u32> {
    match result {
        Ok(()) => Ok(ESUCCESS),
        Err(Fail::Status(_)) => Ok(EFAULT),
        Err(Fail::Trap(e)) => Err(e),
    }
}

/// Adds the WASI functions to the linker.
pub fn add_to_linker(linker: &mut Linker<VmState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        MODULE,
        "fd_write",
        |mut c: Caller<'_, VmState>, fd: u32, iovs: u32, n: u32, written: u32| {
            fd_write(&mut c, fd, iovs, n, written)
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_read",
        |_: Caller<'_, VmState>, _: u32, _: u32, _: u32, _: u32| EBADF,
    )?;
    linker.func_wrap(MODULE, "fd_close", |_: Caller<'_, VmState>, _: u32| EBADF)?;
    linker.func_wrap(
        MODULE,
        "fd_seek",
        |_: Caller<'_, VmState>, fd: u32, _: i64, _: u32, _: u32| {
            if fd <= 2 {
                ESPIPE
            } else {
                EBADF
            }
        },
    )?;
    linker.func_wrap(
        MODULE,
        "fd_fdstat_get",
        |mut c: Caller<'_, VmState>, fd: u32, buf: u32| fd_fdstat_get(&mut c, fd, buf),
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_get",
        |_: Caller<'_, VmState>, _: u32, _: u32| EBADF,
    )?;
    linker.func_wrap(
        MODULE,
        "fd_prestat_dir_name",
        |_: Caller<'_, VmState>, _: u32, _: u32, _: u32| EBADF,
    )?;
    linker.func_wrap(
        MODULE,
        "environ_sizes_get",
        |mut c: Caller<'_, VmState>, count: u32, size: u32| {
            let env = environment(&c);
            errno(sizes_get(&mut c, &env, count, size))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "environ_get",
        |mut c: Caller<'_, VmState>, ptrs: u32, buf: u32| {
            let env = environment(&c);
            errno(strings_get(&mut c, &env, ptrs, buf))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "args_sizes_get",
        |mut c: Caller<'_, VmState>, count: u32, size: u32| {
            errno(sizes_get(&mut c, &[], count, size))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "args_get",
        |_: Caller<'_, VmState>, _: u32, _: u32| ESUCCESS,
    )?;
    linker.func_wrap(
        MODULE,
        "clock_time_get",
        |mut c: Caller<'_, VmState>, id: u32, _precision: u64, ret: u32| {
            let clock = c.data().env.clock.clone();
            let now = if id == 1 || id == 2 || id == 3 {
                clock.monotonic_nanos()
            } else {
                clock.now_nanos()
            };
            errno(memory::write_u64(&mut c, ret, now))
        },
    )?;
    linker.func_wrap(
        MODULE,
        "clock_res_get",
        |mut c: Caller<'_, VmState>, _id: u32, ret: u32| errno(memory::write_u64(&mut c, ret, 1)),
    )?;
    linker.func_wrap(
        MODULE,
        "random_get",
        |mut c: Caller<'_, VmState>, buf: u32, len: u32| errno(random_get(&mut c, buf, len)),
    )?;
    linker.func_wrap(
        MODULE,
        "proc_exit",
        |_: Caller<'_, VmState>, code: u32| -> wasmtime::Result<()> {
            Err(wasmtime::format_err!("proc_exit({code})"))
        },
    )?;
    linker.func_wrap(MODULE, "sched_yield", |_: Caller<'_, VmState>| ESUCCESS)?;
    linker.func_wrap(
        MODULE,
        "poll_oneoff",
        |_: Caller<'_, VmState>, _: u32, _: u32, _: u32, _: u32| ENOSYS,
    )?;
    Ok(())
}

fn fd_write(
    c: &mut Caller<'_, VmState>,
    fd: u32,
    iovs: u32,
    count: u32,
    written: u32,
) -> wasmtime::Result<u32> {
    if fd != 1 && fd != 2 {
        return Ok(EBADF);
    }
    let text = match gather(c, iovs, count) {
        Ok(t) => t,
        Err(Fail::Status(_)) => return Ok(EFAULT),
        Err(Fail::Trap(e)) => return Err(e),
    };
    let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
    let message = String::from_utf8_lossy(&text);
    let message = message.strip_suffix('\n').unwrap_or(&message).to_string();
    let level = if fd == 1 {
        LogLevel::Info
    } else {
        LogLevel::Error
    };
    c.data_mut().log(level, message);
    errno(memory::write_u32(c, written, len))
}

fn gather(c: &Caller<'_, VmState>, iovs: u32, count: u32) -> Result<Vec<u8>, Fail> {
    let mut out = Vec::new();
    for i in 0..count {
        let at = iovs
            .checked_add(i.saturating_mul(8))
            .ok_or(crate::hostcalls::Status::InvalidMemoryAccess)?;
        let iov = memory::read(c, at, 8)?;
        let (ptr, len) = iov.split_at(4);
        let ptr = u32::from_le_bytes(ptr.try_into().unwrap_or_default());
        let len = u32::from_le_bytes(len.try_into().unwrap_or_default());
        if out.len().saturating_add(len as usize) > MAX_WRITE {
            return Err(Fail::Status(crate::hostcalls::Status::InvalidMemoryAccess));
        }
        out.extend(memory::read(c, ptr, len)?);
    }
    Ok(out)
}

fn fd_fdstat_get(c: &mut Caller<'_, VmState>, fd: u32, buf: u32) -> wasmtime::Result<u32> {
    if fd > 2 {
        return Ok(EBADF);
    }
    // filetype CHARACTER_DEVICE (2), flags 0, rights: fd_write (bit 6) for stdout/stderr.
    let mut stat = [0u8; 24];
    if let Some(b) = stat.get_mut(0) {
        *b = 2;
    }
    if let Some(r) = stat.get_mut(8..16) {
        r.copy_from_slice(&(1u64 << 6).to_le_bytes());
    }
    errno(memory::write(c, buf, &stat))
}

fn environment(c: &Caller<'_, VmState>) -> Vec<Vec<u8>> {
    c.data()
        .cfg
        .environment
        .iter()
        .map(|(k, v)| format!("{k}={v}\0").into_bytes())
        .collect()
}

fn sizes_get(
    c: &mut Caller<'_, VmState>,
    strings: &[Vec<u8>],
    count: u32,
    size: u32,
) -> Result<(), Fail> {
    let total: usize = strings.iter().map(Vec::len).sum();
    memory::write_u32(c, count, u32::try_from(strings.len()).unwrap_or(u32::MAX))?;
    memory::write_u32(c, size, u32::try_from(total).unwrap_or(u32::MAX))
}

fn strings_get(
    c: &mut Caller<'_, VmState>,
    strings: &[Vec<u8>],
    ptrs: u32,
    buf: u32,
) -> Result<(), Fail> {
    let mut at = buf;
    for (i, s) in strings.iter().enumerate() {
        let slot = ptrs.wrapping_add(u32::try_from(i * 4).unwrap_or(u32::MAX));
        memory::write_u32(c, slot, at)?;
        memory::write(c, at, s)?;
        at = at.wrapping_add(u32::try_from(s.len()).unwrap_or(u32::MAX));
    }
    Ok(())
}

fn random_get(c: &mut Caller<'_, VmState>, buf: u32, len: u32) -> Result<(), Fail> {
    if len as usize > MAX_WRITE {
        return Err(Fail::Status(crate::hostcalls::Status::InvalidMemoryAccess));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    while bytes.len() < len as usize {
        bytes.extend_from_slice(&c.data_mut().next_random().to_le_bytes());
    }
    bytes.truncate(len as usize);
    memory::write(c, buf, &bytes)
}
