//! `SharedData`: process-wide key/value store with compare-and-swap (docs/host-semantics.md §2).

use std::collections::HashMap;
use std::sync::Mutex;

/// Why a shared-data write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedDataError {
    /// The caller's non-zero cas differs from the stored one (Status 8).
    CasMismatch,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<(String, String), (Vec<u8>, u32)>,
    next_cas: u32,
}

/// Shared by every VM of one environment, keyed by (vm_id, key) like cpp-host.
#[derive(Default)]
pub struct SharedData {
    inner: Mutex<Inner>,
}

impl SharedData {
    /// An empty store whose first write gets cas 1.
    pub fn new() -> SharedData {
        SharedData {
            inner: Mutex::new(Inner {
                entries: HashMap::new(),
                next_cas: 1,
            }),
        }
    }

    /// The value and its cas, or None if the key was never written.
    pub fn get(&self, vm_id: &str, key: &str) -> Option<(Vec<u8>, u32)> {
        let inner = self.lock();
        inner
            .entries
            .get(&(vm_id.to_string(), key.to_string()))
            .cloned()
    }

    /// Writes `value`. A non-zero `cas` must match the stored cas; for a new key it is ignored.
    /// Every write takes the next value of one global counter (starting at 1, skipping 0).
    pub fn set(
        &self,
        vm_id: &str,
        key: &str,
        value: &[u8],
        cas: u32,
    ) -> Result<(), SharedDataError> {
        let mut inner = self.lock();
        let map_key = (vm_id.to_string(), key.to_string());
        if let Some((_, stored)) = inner.entries.get(&map_key) {
            if cas != 0 && cas != *stored {
                return Err(SharedDataError::CasMismatch);
            }
        }
        let new_cas = next_cas(&mut inner.next_cas);
        inner.entries.insert(map_key, (value.to_vec(), new_cas));
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn next_cas(counter: &mut u32) -> u32 {
    if *counter == 0 {
        *counter = 1;
    }
    let cas = *counter;
    *counter = counter.wrapping_add(1);
    cas
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_rules() {
        let data = SharedData::new();
        assert_eq!(data.get("", "k"), None);
        // cas is ignored for a new key
        assert_eq!(data.set("", "k", b"a", 77), Ok(()));
        assert_eq!(data.get("", "k"), Some((b"a".to_vec(), 1)));
        assert_eq!(
            data.set("", "k", b"b", 5),
            Err(SharedDataError::CasMismatch)
        );
        assert_eq!(data.set("", "k", b"b", 1), Ok(()));
        assert_eq!(data.set("", "other", b"x", 0), Ok(()));
        assert_eq!(data.get("", "other"), Some((b"x".to_vec(), 3)));
        assert_eq!(data.set("", "k", b"c", 0), Ok(()));
        assert_eq!(data.get("", "k"), Some((b"c".to_vec(), 4)));
        assert_eq!(data.get("vm2", "k"), None);
    }
}
