//! The plugin's Envoy counters in one VM: ids defined once per VM; counts kept in the VM and
//! handed to Envoy in one batch per tick (docs/host-semantics.md §2), not one hostcall per count.

use crate::core::stats::Stat;
use crate::proxy::host::Host;
use ::core::cell::Cell;
use log::warn;

/// How long a count may wait in the VM before the root's tick hands it to Envoy.
pub const FLUSH_MS: u32 = 100;

/// Per-VM counter ids (Envoy sums every VM's counter of one name) and the counts not flushed yet.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Counters {
    ids: [Option<u32>; Stat::ALL.len()],
    pending: Cell<[u32; Stat::ALL.len()]>,
}

impl Counters {
    /// Defines every counter; one the host refuses is logged and never counted.
    pub fn define(host: &dyn Host) -> Counters {
        let mut counters = Counters::default();
        for stat in Stat::ALL {
            match host.define_counter(stat.name()) {
                Ok(id) => {
                    if let Some(slot) = counters.ids.get_mut(stat.index()) {
                        *slot = Some(id);
                    }
                }
                Err(status) => warn!("easy-jwt: cannot define counter {}: {status}", stat.name()),
            }
        }
        counters
    }

    /// Whether any counter has been defined.
    pub fn is_defined(&self) -> bool {
        self.ids.iter().any(Option::is_some)
    }

    /// The same counter ids, nothing pending.
    pub fn ids_only(&self) -> Counters {
        Counters {
            ids: self.ids,
            pending: Cell::default(),
        }
    }

    /// Counts one `stat` in the VM; [`Counters::flush`] hands it to Envoy.
    pub fn count(&self, stat: Stat) {
        let mut pending = self.pending.get();
        if let Some(slot) = pending.get_mut(stat.index()) {
            *slot = slot.saturating_add(1);
        }
        self.pending.set(pending);
    }

    /// Adds every pending count to its Envoy counter: one hostcall per counter that moved.
    pub fn flush(&self, host: &dyn Host) {
        let pending = self.pending.take();
        for ((stat, id), count) in Stat::ALL.iter().zip(self.ids).zip(pending) {
            let Some(id) = id else { continue };
            if count == 0 {
                continue;
            }
            if let Err(status) = host.increment(id, u64::from(count)) {
                warn!("easy-jwt: cannot count {} ({count}): {status}", stat.name());
            }
        }
    }
}
