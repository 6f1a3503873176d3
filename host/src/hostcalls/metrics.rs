//! Metric hostcalls: per-VM ids over one shared stat per name
//! (docs/host-semantics.md §2 "Metrics").

use wasmtime::Caller;

use super::{Fail, Status};
use crate::memory;
use crate::metrics::{MetricError, MetricKind};
use crate::state::VmState;

fn status(e: MetricError) -> Fail {
    match e {
        MetricError::NotFound => Status::NotFound.into(),
        MetricError::BadArgument => Status::BadArgument.into(),
    }
}

fn resolve(state: &VmState, id: u32) -> Result<(MetricKind, String), Fail> {
    state
        .metric_ids
        .lookup(id)
        .map(|(k, n)| (k, n.to_string()))
        .ok_or(Status::NotFound.into())
}

/// `proxy_define_metric`.
pub fn define(
    c: &mut Caller<'_, VmState>,
    ty: u32,
    name_ptr: u32,
    name_len: u32,
    ret_id: u32,
) -> Result<(), Fail> {
    let kind = MetricKind::from_u32(ty).ok_or(Status::BadArgument)?;
    let name = memory::read_string(c, name_ptr, name_len)?;
    let state = c.data_mut();
    state.env.metrics.define(kind, &name);
    let id = state.metric_ids.define(kind, &name);
    memory::write_u32(c, ret_id, id)
}

/// `proxy_increment_metric`: counter offset must be > 0.
pub fn increment(c: &mut Caller<'_, VmState>, id: u32, offset: i64) -> Result<(), Fail> {
    let (kind, name) = resolve(c.data(), id)?;
    c.data()
        .env
        .metrics
        .increment(kind, &name, offset)
        .map_err(status)
}

/// `proxy_record_metric`: a counter adds.
pub fn record(c: &mut Caller<'_, VmState>, id: u32, value: u64) -> Result<(), Fail> {
    let (kind, name) = resolve(c.data(), id)?;
    c.data()
        .env
        .metrics
        .record(kind, &name, value)
        .map_err(status)
}

/// `proxy_get_metric`: counters and gauges; histograms BadArgument.
pub fn get(c: &mut Caller<'_, VmState>, id: u32, ret_value: u32) -> Result<(), Fail> {
    let (kind, name) = resolve(c.data(), id)?;
    let value = c.data().env.metrics.read(kind, &name).map_err(status)?;
    memory::write_u64(c, ret_value, value)
}
