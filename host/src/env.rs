//! `HostEnv`: the process-wide state of one emulated "Envoy" shared by all of its VMs.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};
use crate::metrics::Metrics;
use crate::shared_data::SharedData;

/// Shared data, metrics and the clock, shared by every VM (worker) of one gateway
/// (docs/host-semantics.md §1, §2).
#[derive(Clone)]
pub struct HostEnv {
    pub shared_data: Arc<SharedData>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn Clock>,
}

impl HostEnv {
    /// An environment on the system clock.
    pub fn new() -> HostEnv {
        HostEnv::with_clock(Arc::new(SystemClock::new()))
    }

    /// An environment on the given clock (e.g. a `ManualClock` in tests).
    pub fn with_clock(clock: Arc<dyn Clock>) -> HostEnv {
        HostEnv {
            shared_data: Arc::new(SharedData::new()),
            metrics: Arc::new(Metrics::new()),
            clock,
        }
    }
}

impl Default for HostEnv {
    fn default() -> Self {
        HostEnv::new()
    }
}
