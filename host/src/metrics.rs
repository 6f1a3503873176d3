//! Metrics: one shared stat per name (`wasmcustom.<name>`) and per-VM metric ids
//! (docs/host-semantics.md §2).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

/// The three proxy-wasm metric types (`proxy_define_metric` type argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    Counter = 0,
    Gauge = 1,
    Histogram = 2,
}

impl MetricKind {
    /// The kind for a guest-provided type number.
    pub fn from_u32(n: u32) -> Option<MetricKind> {
        match n {
            0 => Some(MetricKind::Counter),
            1 => Some(MetricKind::Gauge),
            2 => Some(MetricKind::Histogram),
            _ => None,
        }
    }
}

/// Why a metric operation was refused; maps onto proxy-wasm statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricError {
    /// Unknown metric id (Status 1).
    NotFound,
    /// Operation not allowed for this kind (Status 2).
    BadArgument,
}

#[derive(Debug, Clone, Default)]
struct Stat {
    value: i64,
    samples: Vec<u64>,
}

/// The shared stats store. Names are kept without the `wasmcustom.` prefix.
#[derive(Default)]
pub struct Metrics {
    stats: Mutex<BTreeMap<String, (MetricKind, Stat)>>,
}

impl Metrics {
    /// An empty store.
    pub fn new() -> Metrics {
        Metrics::default()
    }

    /// Defines (or finds) the stat `name`. A name defined first with one kind keeps that kind.
    pub fn define(&self, kind: MetricKind, name: &str) {
        self.lock()
            .entry(name.to_string())
            .or_insert((kind, Stat::default()));
    }

    /// The value of a counter or gauge (`name` without `wasmcustom.`); None for histograms.
    pub fn get(&self, name: &str) -> Option<i64> {
        match self.lock().get(name) {
            Some((MetricKind::Histogram, _)) | None => None,
            Some((_, stat)) => Some(stat.value),
        }
    }

    /// The recorded samples of a histogram.
    pub fn histogram(&self, name: &str) -> Option<Vec<u64>> {
        match self.lock().get(name) {
            Some((MetricKind::Histogram, stat)) => Some(stat.samples.clone()),
            _ => None,
        }
    }

    /// Every stat as (name, kind, value); a histogram's value is its sample count.
    pub fn snapshot(&self) -> Vec<(String, MetricKind, i64)> {
        self.lock()
            .iter()
            .map(|(name, (kind, stat))| {
                let value = match kind {
                    MetricKind::Histogram => i64::try_from(stat.samples.len()).unwrap_or(i64::MAX),
                    _ => stat.value,
                };
                (name.clone(), *kind, value)
            })
            .collect()
    }

    /// `proxy_increment_metric`: counters need a positive offset (0 → BadArgument), gauges add
    /// or subtract, histograms refuse.
    pub fn increment(&self, kind: MetricKind, name: &str, offset: i64) -> Result<(), MetricError> {
        match kind {
            MetricKind::Counter if offset <= 0 => Err(MetricError::BadArgument),
            MetricKind::Histogram => Err(MetricError::BadArgument),
            _ => self.update(name, |stat| stat.value = stat.value.wrapping_add(offset)),
        }
    }

    /// `proxy_record_metric`: a counter **adds**, a gauge sets, a histogram records a sample.
    pub fn record(&self, kind: MetricKind, name: &str, value: u64) -> Result<(), MetricError> {
        let as_i64 = value as i64; // Envoy stores u64; the wrap mirrors its arithmetic
        match kind {
            MetricKind::Counter => self.update(name, |s| s.value = s.value.wrapping_add(as_i64)),
            MetricKind::Gauge => self.update(name, |s| s.value = as_i64),
            MetricKind::Histogram => self.update(name, |s| s.samples.push(value)),
        }
    }

    /// `proxy_get_metric`: counters and gauges only.
    pub fn read(&self, kind: MetricKind, name: &str) -> Result<u64, MetricError> {
        if kind == MetricKind::Histogram {
            return Err(MetricError::BadArgument);
        }
        self.get(name)
            .map(|v| v as u64)
            .ok_or(MetricError::NotFound)
    }

    fn update(&self, name: &str, f: impl FnOnce(&mut Stat)) -> Result<(), MetricError> {
        let mut stats = self.lock();
        let (_, stat) = stats.get_mut(name).ok_or(MetricError::NotFound)?;
        f(stat);
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (MetricKind, Stat)>> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One VM's metric ids: counters 4, 8, …; gauges 5, 9, …; histograms 6, 10, … (§2).
#[derive(Debug, Default)]
pub struct MetricIds {
    by_id: HashMap<u32, (MetricKind, String)>,
    by_name: HashMap<(MetricKind, String), u32>,
    next: [u32; 3],
}

impl MetricIds {
    /// An empty table.
    pub fn new() -> MetricIds {
        MetricIds {
            next: [0, 1, 2],
            ..MetricIds::default()
        }
    }

    /// The id for (kind, name), allocating the next id of that kind on first definition.
    pub fn define(&mut self, kind: MetricKind, name: &str) -> u32 {
        let key = (kind, name.to_string());
        if let Some(id) = self.by_name.get(&key) {
            return *id;
        }
        let slot = match kind {
            MetricKind::Counter => &mut self.next[0],
            MetricKind::Gauge => &mut self.next[1],
            MetricKind::Histogram => &mut self.next[2],
        };
        *slot = slot.wrapping_add(4);
        let id = *slot;
        self.by_id.insert(id, (kind, name.to_string()));
        self.by_name.insert(key, id);
        id
    }

    /// The kind and name of an id.
    pub fn lookup(&self, id: u32) -> Option<(MetricKind, &str)> {
        self.by_id.get(&id).map(|(k, n)| (*k, n.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_per_kind() {
        let mut ids = MetricIds::new();
        assert_eq!(ids.define(MetricKind::Counter, "a"), 4);
        assert_eq!(ids.define(MetricKind::Gauge, "b"), 5);
        assert_eq!(ids.define(MetricKind::Histogram, "c"), 6);
        assert_eq!(ids.define(MetricKind::Counter, "d"), 8);
        assert_eq!(ids.define(MetricKind::Counter, "a"), 4);
        assert_eq!(ids.lookup(8), Some((MetricKind::Counter, "d")));
    }

    #[test]
    fn counter_rules() {
        let m = Metrics::new();
        m.define(MetricKind::Counter, "c");
        assert_eq!(
            m.increment(MetricKind::Counter, "c", 0),
            Err(MetricError::BadArgument)
        );
        assert_eq!(m.increment(MetricKind::Counter, "c", 2), Ok(()));
        assert_eq!(m.record(MetricKind::Counter, "c", 5), Ok(()));
        assert_eq!(m.get("c"), Some(7));
        m.define(MetricKind::Gauge, "g");
        assert_eq!(m.increment(MetricKind::Gauge, "g", -3), Ok(()));
        assert_eq!(m.record(MetricKind::Gauge, "g", 9), Ok(()));
        assert_eq!(m.get("g"), Some(9));
        m.define(MetricKind::Histogram, "h");
        assert_eq!(
            m.increment(MetricKind::Histogram, "h", 1),
            Err(MetricError::BadArgument)
        );
        assert_eq!(
            m.read(MetricKind::Histogram, "h"),
            Err(MetricError::BadArgument)
        );
        assert_eq!(m.record(MetricKind::Histogram, "h", 3), Ok(()));
        assert_eq!(m.histogram("h"), Some(vec![3]));
    }
}
