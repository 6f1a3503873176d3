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

/// Appends `text` escaped as JSON string contents (RFC 8259 §7), without the quotes: `"`, `\`
/// and control characters escaped, everything else as is.
pub fn push_escaped(out: &mut String, text: &str) {
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(text);
        return;
    }
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let code = u32::from(c) as usize;
                out.push_str("\\u00");
                for nibble in [code >> 4, code & 0xf] {
                    out.push(char::from(HEX.get(nibble).copied().unwrap_or(b'0')));
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips_through_a_json_parser() {
        for text in [
            "plain",
            "a\"b\\c",
            "line\nbreak\ttab\r",
            "\u{1}\u{1f}\u{7f}",
            "é€😀",
        ] {
            let mut quoted = String::from("\"");
            push_escaped(&mut quoted, text);
            quoted.push('"');
            let parsed: String = serde_json::from_str(&quoted).unwrap();
            assert_eq!(parsed, text, "{quoted}");
        }
    }
}
