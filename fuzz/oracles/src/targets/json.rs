//! The oracle of fuzz target `json`: the plugin's JSON reader (`core::json`) against serde_json on
//! arbitrary bytes. Both accept the same documents, except where `core::json` differs on purpose
//! (duplicate member names, nesting deeper than 64, numbers beyond f64 that serde_json refuses),
//! and read the same value: ours, written back, is what serde_json read.

use easy_jwt::core::json::{self, Value, MAX_DEPTH};

pub fn check(data: &[u8]) {
    let ours = json::parse(data);
    let theirs = serde_json::from_slice::<serde_json::Value>(data);
    match (ours, theirs) {
        (Ok(ours), Ok(theirs)) => {
            let mut written = String::new();
            ours.write(&mut written);
            let reread: serde_json::Value =
                serde_json::from_str(&written).expect("what core::json writes is JSON");
            assert_eq!(reread, theirs, "read differently: {written}");
            assert!(depth(&ours) <= MAX_DEPTH as usize);
            check_numbers(&ours);
        }
        (Ok(ours), Err(error)) => {
            // serde_json refuses numbers it cannot hold as f64 (1e400); we keep them as written.
            assert!(
                error.to_string().starts_with("number out of range"),
                "only we accept {:?}: {ours:?}, serde_json: {error}",
                String::from_utf8_lossy(data)
            );
        }
        (Err(error), Ok(theirs)) => {
            let why = error.to_string();
            assert!(
                why.starts_with("duplicate member") && has_duplicates(data)
                    || why.starts_with("nested more than")
                        && depth_serde(&theirs) > MAX_DEPTH as usize,
                "only serde_json accepts {:?}: {why}",
                String::from_utf8_lossy(data)
            );
        }
        (Err(error), Err(_)) => assert!(!error.to_string().is_empty()),
    }
}

/// Integers read exactly; a floor is at most the number itself.
fn check_numbers(value: &Value) {
    match value {
        Value::Number(number) => {
            let text = number.as_str();
            if let Some(exact) = number.as_u64() {
                // JSON integers have no leading zeros: the text is the canonical decimal.
                assert_eq!(exact.to_string(), text);
                assert_eq!(number.floor_u64(), Some(exact));
            }
            if let (Some(floor), Ok(float)) = (number.floor_u64(), text.parse::<f64>()) {
                // f64 rounding: compare within its precision.
                assert!(
                    (floor as f64) <= float * (1.0 + 1e-15) + 1.0,
                    "{text}: floor {floor}"
                );
            }
        }
        Value::Array(items) => items.iter().for_each(check_numbers),
        Value::Object(map) => map.iter().for_each(|(_, item)| check_numbers(item)),
        _ => {}
    }
}

fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.iter().map(|(_, item)| depth(item)).max().unwrap_or(0),
        _ => 0,
    }
}

fn depth_serde(value: &serde_json::Value) -> usize {
    match value {
        serde_json::Value::Array(items) => 1 + items.iter().map(depth_serde).max().unwrap_or(0),
        serde_json::Value::Object(map) => 1 + map.values().map(depth_serde).max().unwrap_or(0),
        _ => 0,
    }
}

/// Whether some object of the document names a member twice (serde_json keeps the last).
fn has_duplicates(data: &[u8]) -> bool {
    // Re-read with a serde visitor that sees every member, not the map serde_json builds.
    struct Detect(bool);
    impl<'de> serde::de::Visitor<'de> for &mut Detect {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("JSON")
        }
        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            while seq.next_element_seed(&mut *self)?.is_some() {}
            Ok(())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                self.0 |= !seen.insert(key);
                map.next_value_seed(&mut *self)?;
            }
            Ok(())
        }
    }
    impl<'de> serde::de::DeserializeSeed<'de> for &mut Detect {
        type Value = ();
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }
    let mut detect = Detect(false);
    let mut reader = serde_json::Deserializer::from_slice(data);
    serde::de::DeserializeSeed::deserialize(&mut detect, &mut reader).is_ok() && detect.0
}
