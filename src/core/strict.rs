//! Strict JSON on serde_json: a document read into a [`serde_json::Value`], except that a member
//! name that appears twice in one object, at any depth, is an error. serde_json keeps the last of
//! them; here two `uid`s in an answer, or two `tokenServerPort`s in a configuration, are
//! ambiguous (another reader would take the first) and refused.
//!
//! This is serde's ordinary extension point, not a JSON reader: serde_json tokenises and checks
//! the syntax, nesting (its recursion limit, 128) and UTF-8; the [`Seed`] here only builds the
//! value and rejects a repeated name. Its error names the member by its path in the document
//! (`_rules_[1].tokenServerPort`), and serde_json adds the line and column.
//!
//! Numbers are serde_json's (default features): integers that fit `u64` or `i64` stay exact,
//! every other number becomes an `f64`.

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// Parses a whole document strictly (see the module documentation).
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    let value = Seed { path: &Path::Root }.deserialize(&mut reader)?;
    reader.end()?;
    Ok(value)
}

/// The members of a strict JSON object; `None` when the text is not strict JSON or not an object.
pub fn object(bytes: &[u8]) -> Option<Map<String, Value>> {
    match from_slice(bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// Where a value sits in the document, built as the reader descends and spelt out only for an
/// error.
enum Path<'a> {
    Root,
    Member(&'a Path<'a>, &'a str),
    Item(&'a Path<'a>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Member(Path::Root, name) => f.write_str(name),
            Path::Member(parent, name) => write!(f, "{parent}.{name}"),
            Path::Item(parent, index) => write!(f, "{parent}[{index}]"),
        }
    }
}

/// Deserialises one value at `path`.
struct Seed<'a> {
    path: &'a Path<'a>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: Error>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: Error>(self, value: f64) -> Result<Value, E> {
        // serde_json never produces a non-finite number (`1e400` is its own error).
        Number::from_f64(value)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: Error>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E: Error>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Seed {
            path: &Path::Item(self.path, items.len()),
        })? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                let path = Path::Member(self.path, &name);
                return Err(A::Error::custom(format_args!("duplicate key `{path}`")));
            }
            let value = map.next_value_seed(Seed {
                path: &Path::Member(self.path, &name),
            })?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        from_slice(text.as_bytes()).unwrap_err().to_string()
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for text in [
            r#"{"a":[1,-2,3.5,"x\u00e9\n",true,false,null,{}],"b":{"c":[]}}"#,
            "  [ 18446744073709551615 , -9223372036854775808 , 1e300 ]  ",
            r#""just a string""#,
        ] {
            let theirs: Value = serde_json::from_str(text).unwrap();
            assert_eq!(from_slice(text.as_bytes()).unwrap(), theirs, "{text}");
        }
    }

    #[test]
    fn a_repeated_member_is_an_error_at_any_depth_with_its_path_and_position() {
        assert_eq!(
            error("{\"a\":1,\n\"a\":2}"),
            "duplicate key `a` at line 2 column 3"
        );
        assert_eq!(
            error(r#"{"_rules_":[{},{"x":{"y":1,"y":2}}]}"#),
            "duplicate key `_rules_[1].x.y` at line 1 column 30"
        );
        assert!(error(r#"[[{"k":1,"k":1}]]"#).starts_with("duplicate key `[0][0].k`"));
        // Same name in different objects is fine.
        assert!(from_slice(br#"{"a":{"a":1},"b":[{"a":1},{"a":2}]}"#).is_ok());
    }

    #[test]
    fn syntax_errors_are_serde_jsons() {
        assert_eq!(error("{"), "EOF while parsing an object at line 1 column 1");
        assert!(error("{} x").starts_with("trailing characters"));
        assert!(error("[1e400]").starts_with("number out of range"));
        assert!(from_slice(b"\"\xff\"").is_err());
        let deep = "[".repeat(200) + &"]".repeat(200);
        assert!(error(&deep).starts_with("recursion limit exceeded"));
    }

    #[test]
    fn object_is_none_for_anything_else() {
        assert!(object(br#"{"uid":1}"#).is_some());
        assert_eq!(object(b"[1]"), None);
        assert_eq!(object(b"not json"), None);
        assert_eq!(object(br#"{"uid":1,"uid":0}"#), None);
    }
}
