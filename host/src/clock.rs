//! Time sources: the real system clock and a manual clock for deterministic tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// A source of wall-clock and monotonic time, in nanoseconds.
pub trait Clock: Send + Sync {
    /// Wall-clock time since the Unix epoch (`proxy_get_current_time_nanoseconds`, WASI realtime).
    fn now_nanos(&self) -> u64;
    /// Monotonic time (WASI monotonic clock); only differences are meaningful.
    fn monotonic_nanos(&self) -> u64;
}

/// The operating system's clock.
#[derive(Debug)]
pub struct SystemClock {
    origin: Instant,
}

impl SystemClock {
    /// A system clock whose monotonic time starts at 0 now.
    pub fn new() -> SystemClock {
        SystemClock {
            origin: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

impl Clock for SystemClock {
    fn now_nanos(&self) -> u64 {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
    }

    fn monotonic_nanos(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that only moves when told to; wall and monotonic time advance together.
#[derive(Debug)]
pub struct ManualClock {
    wall: AtomicU64,
    mono: AtomicU64,
}

impl ManualClock {
    /// A clock reading `start_nanos` (since the Unix epoch).
    pub fn new(start_nanos: u64) -> ManualClock {
        ManualClock {
            wall: AtomicU64::new(start_nanos),
            mono: AtomicU64::new(0),
        }
    }

    /// Moves both clocks forward.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.wall.fetch_add(nanos, Ordering::SeqCst);
        self.mono.fetch_add(nanos, Ordering::SeqCst);
    }

    /// Sets the wall clock (the monotonic clock advances by the same amount if it moves forward).
    pub fn set(&self, nanos: u64) {
        let old = self.wall.swap(nanos, Ordering::SeqCst);
        if nanos > old {
            self.mono.fetch_add(nanos - old, Ordering::SeqCst);
        }
    }
}

impl Clock for ManualClock {
    fn now_nanos(&self) -> u64 {
        self.wall.load(Ordering::SeqCst)
    }

    fn monotonic_nanos(&self) -> u64 {
        self.mono.load(Ordering::SeqCst)
    }
}
