//! The plugin's Envoy counters in one VM: ids defined once per VM, one hostcall per count.

use crate::core::stats::Stat;
use crate::proxy::host::Host;
use log::warn;

/// Per-VM counter ids (Envoy sums every VM's counter of one name).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    ids: [Option<u32>; Stat::ALL.len()],
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

    pub fn count(&self, host: &dyn Host, stat: Stat) {
        if let Some(Some(id)) = self.ids.get(stat.index()) {
            if let Err(status) = host.increment(*id) {
                warn!("easy-jwt: cannot count {}: {status}", stat.name());
            }
        }
    }
}
