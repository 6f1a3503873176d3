//! `HeaderMap`: an ordered multimap with Envoy's header rules (docs/host-semantics.md §2).

/// Header entries in order; keys are stored lowercase.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeaderMap {
    entries: Vec<(String, String)>,
}

impl HeaderMap {
    /// An empty map.
    pub fn new() -> HeaderMap {
        HeaderMap::default()
    }

    /// A map from pairs (keys are lowercased, order and repeats kept).
    pub fn from_pairs<K: AsRef<str>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.add(k.as_ref(), v);
        }
        map
    }

    /// The first value of `key` (Envoy's `get_header_map_value` returns only the first).
    pub fn get(&self, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`, in order.
    pub fn get_all(&self, key: &str) -> Vec<&str> {
        let key = key.to_ascii_lowercase();
        self.entries
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Appends a separate entry (`addCopy`); never merges values.
    pub fn add(&mut self, key: &str, value: impl Into<String>) {
        self.entries.push((key.to_ascii_lowercase(), value.into()));
    }

    /// `setCopy` as in higress-envoy 1.27: removes every entry named `key`, then appends one.
    pub fn replace(&mut self, key: &str, value: impl Into<String>) {
        self.remove(key);
        self.add(key, value);
    }

    /// Removes every entry named `key` (Ok even if there was none).
    pub fn remove(&mut self, key: &str) {
        let key = key.to_ascii_lowercase();
        self.entries.retain(|(k, _)| *k != key);
    }

    /// Replaces the whole map (`set_header_map_pairs`).
    pub fn set_all<K: AsRef<str>, V: Into<String>>(
        &mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) {
        *self = HeaderMap::from_pairs(pairs);
    }

    /// Number of entries (repeated names count separately), as passed to the headers callbacks.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the map has no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Envoy's `byteSize()`: the sum of all key and value lengths (`get_header_map_size`).
    pub fn byte_size(&self) -> usize {
        self.entries.iter().map(|(k, v)| k.len() + v.len()).sum()
    }

    /// The entries in order.
    pub fn entries(&self) -> &[(String, String)] {
        &self.entries
    }

    /// The entries as owned pairs.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.entries.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_rules() {
        let mut map = HeaderMap::from_pairs([("X-A", "1"), ("x-a", "2"), ("b", "3")]);
        assert_eq!(map.get("X-a"), Some("1"));
        map.add("x-A", "4");
        assert_eq!(map.get_all("x-a"), vec!["1", "2", "4"]);
        map.replace("X-A", "5");
        assert_eq!(
            map.entries(),
            &[("b".into(), "3".into()), ("x-a".into(), "5".into())]
        );
        assert_eq!(map.byte_size(), 1 + 1 + 3 + 1);
        map.remove("missing");
        map.remove("B");
        assert_eq!(map.len(), 1);
    }
}
