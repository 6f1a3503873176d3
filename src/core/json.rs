//! Reading JSON without typed serde: object members and string arrays (typed deserializers
//! would pull float formatting into the artifact).

use serde_json::{Map, Value};

/// The members of a JSON object. Parsed as a `Value`: serde's typed deserializers would pull
/// float formatting (their error messages) into the artifact, about 40 KB; the answers read here
/// are a few fields long.
pub fn json_fields(bytes: &[u8]) -> Option<Map<String, Value>> {
    match serde_json::from_slice(bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// An array whose items are all strings.
pub fn string_array(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(str::to_string))
        .collect()
}
