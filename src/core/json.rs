//! JSON (RFC 8259) read into [`Value`]s and written back: the configuration, the token server's
//! answer and a JWT's claims in, call bodies and mapped fields out.
//!
//! Its own small reader instead of serde_json: serde_json with its map, float tables and error
//! machinery took 20 KB of the artifact (docs/architecture.md "Size"), for what is a few field
//! lookups. Differences from serde_json, all on purpose:
//! - numbers are kept as written ([`Number`]), so nothing here parses or prints floats;
//! - a member name that appears twice in one object is an error (serde_json keeps the last):
//!   two `uid`s in an answer, or two `tokenServerPort`s in a configuration, are ambiguous;
//! - objects keep their members in document order;
//! - nesting is limited to [`MAX_DEPTH`] levels (serde_json: 128).

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Deepest nesting of arrays and objects accepted (the reader recurses once per level).
pub const MAX_DEPTH: u32 = 64;

/// A JSON value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Bool(bool),
    Number(Number),
    String(String),
    Array(Vec<Value>),
    Object(Map),
}

/// A number as written in the document (valid RFC 8259 number syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Number(String);

/// An object's members in document order; names are unique.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Map(Vec<(String, Value)>);

/// Why a text is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    what: Cow<'static, str>,
    line: usize,
    column: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at line {} column {}",
            self.what, self.line, self.column
        )
    }
}

/// Parses a whole document: one value, surrounded by whitespace only.
pub fn parse(bytes: &[u8]) -> Result<Value, SyntaxError> {
    let mut reader = Reader {
        bytes,
        at: 0,
        depth: 0,
    };
    if let Err(bad) = core::str::from_utf8(bytes) {
        reader.at = bad.valid_up_to();
        return Err(reader.error("invalid UTF-8"));
    }
    let value = reader.value()?;
    reader.skip_whitespace();
    if reader.at < bytes.len() {
        return Err(reader.error("trailing characters"));
    }
    Ok(value)
}

/// The members of a JSON object; `None` when the text is not JSON or not an object.
pub fn json_fields(bytes: &[u8]) -> Option<Map> {
    match parse(bytes).ok()? {
        Value::Object(map) => Some(map),
        _ => None,
    }
}

/// A serde_json value as ours (tests build documents with `serde_json::json!`).
#[cfg(test)]
pub fn from_serde(value: &serde_json::Value) -> Value {
    parse(value.to_string().as_bytes()).expect("serde_json writes JSON")
}

/// The members of a serde_json object as our map (tests).
#[cfg(test)]
pub fn object_from_serde(value: &serde_json::Value) -> Map {
    match from_serde(value) {
        Value::Object(map) => map,
        other => panic!("not an object: {other:?}"),
    }
}

/// An array whose items are all strings.
pub fn string_array(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(String::from))
        .collect()
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(flag) => Some(*flag),
            _ => None,
        }
    }

    /// A non-negative integer written without fraction or exponent that fits a `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Number(number) => number.as_u64(),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&Vec<Value>> {
        match self {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Map> {
        match self {
            Value::Object(map) => Some(map),
            _ => None,
        }
    }

    /// Appends the value as compact JSON (no whitespace; numbers as written).
    pub fn write(&self, out: &mut String) {
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(true) => out.push_str("true"),
            Value::Bool(false) => out.push_str("false"),
            Value::Number(number) => out.push_str(&number.0),
            Value::String(text) => push_quoted(out, text),
            Value::Array(items) => {
                out.push('[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                out.push('{');
                for (index, (name, item)) in map.iter().enumerate() {
                    if index > 0 {
                        out.push(',');
                    }
                    push_quoted(out, name);
                    out.push(':');
                    item.write(out);
                }
                out.push('}');
            }
        }
    }
}

impl Number {
    /// The number as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The value when it is a non-negative integer written without fraction or exponent and
    /// fits a `u64` (what serde_json's `as_u64` accepts, minus `1.0`-style floats it never
    /// accepted either).
    pub fn as_u64(&self) -> Option<u64> {
        if self.0.bytes().all(|b| b.is_ascii_digit()) {
            self.0.parse().ok()
        } else {
            None
        }
    }

    /// The integer part of a non-negative number in any notation (`1754386348`,
    /// `1754386348.9`, `1.754386348e9`); `None` for a negative number or one beyond `u64`.
    pub fn floor_u64(&self) -> Option<u64> {
        if let Some(integer) = self.as_u64() {
            return Some(integer);
        }
        let text = self.0.as_bytes();
        if text.first() == Some(&b'-') {
            return None;
        }
        let (mantissa, exponent) = match text.iter().position(|b| matches!(b, b'e' | b'E')) {
            Some(at) => (text.get(..at)?, parse_exponent(text.get(at + 1..)?)),
            None => (text, 0),
        };
        let (whole, fraction) = match mantissa.iter().position(|&b| b == b'.') {
            Some(at) => (mantissa.get(..at)?, mantissa.get(at + 1..)?),
            None => (mantissa, &[][..]),
        };
        // value = digits × 10^shift, digits = whole followed by fraction.
        let shift = exponent.saturating_sub(i64::try_from(fraction.len()).ok()?);
        let digits = whole.iter().chain(fraction);
        let kept = if shift >= 0 {
            whole.len() + fraction.len()
        } else {
            (whole.len() + fraction.len()).saturating_sub(usize::try_from(-shift).ok()?)
        };
        let mut value: u64 = 0;
        for digit in digits.take(kept) {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
        }
        if shift > 0 {
            if value == 0 {
                return Some(0);
            }
            for _ in 0..shift {
                value = value.checked_mul(10)?;
            }
        }
        Some(value)
    }
}

/// A validated exponent (`[+-]digits`), clamped to ±100,000 (enough to overflow any `u64`).
fn parse_exponent(text: &[u8]) -> i64 {
    let (negative, digits) = match text.split_first() {
        Some((b'-', rest)) => (true, rest),
        Some((b'+', rest)) => (false, rest),
        _ => (false, text),
    };
    let mut value: i64 = 0;
    for digit in digits {
        value = (value * 10 + i64::from(digit - b'0')).min(100_000);
    }
    if negative {
        -value
    } else {
        value
    }
}

impl Map {
    pub fn new() -> Map {
        Map(Vec::new())
    }

    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    pub fn contains_key(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Members in document order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Value)> {
        self.0.iter().map(|(name, value)| (name, value))
    }

    pub fn keys(&self) -> impl Iterator<Item = &String> {
        self.0.iter().map(|(name, _)| name)
    }

    /// Adds a member; `false` (and no change) when the name is already there.
    pub fn insert(&mut self, name: String, value: Value) -> bool {
        if self.contains_key(&name) {
            return false;
        }
        self.0.push((name, value));
        true
    }
}

/// Appends `text` escaped as JSON string contents (RFC 8259 §7), without the quotes: `"`, `\`
/// and control characters escaped, everything else as is (as serde_json writes strings).
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
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
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

/// Appends `text` as a JSON string, quotes included.
pub fn push_quoted(out: &mut String, text: &str) {
    out.push('"');
    push_escaped(out, text);
    out.push('"');
}

/// A recursive-descent reader over valid UTF-8.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    depth: u32,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    #[cold]
    #[inline(never)]
    fn error(&self, what: impl Into<Cow<'static, str>>) -> SyntaxError {
        let before = self.bytes.get(..self.at).unwrap_or(self.bytes);
        let line_start = before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |at| at + 1);
        SyntaxError {
            what: what.into(),
            line: 1 + before.iter().filter(|&&b| b == b'\n').count(),
            column: 1 + before.len() - line_start,
        }
    }

    /// Consumes `byte` after optional whitespace, or fails with `what`.
    fn expect(&mut self, byte: u8, what: &'static str) -> Result<(), SyntaxError> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn value(&mut self) -> Result<Value, SyntaxError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b'{') => self.nested(Reader::object),
            Some(b'[') => self.nested(Reader::array),
            Some(b'"') => self.string().map(Value::String),
            Some(b't') => self.word("true", Value::Bool(true)),
            Some(b'f') => self.word("false", Value::Bool(false)),
            Some(b'n') => self.word("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("end of input where a value was expected")),
        }
    }

    /// Runs `read` (an object or array reader) one nesting level deeper.
    fn nested(
        &mut self,
        read: fn(&mut Self) -> Result<Value, SyntaxError>,
    ) -> Result<Value, SyntaxError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.error("nested more than 64 levels deep"));
        }
        self.depth += 1;
        self.at += 1; // `{` or `[`
        let value = read(self);
        self.depth -= 1;
        value
    }

    fn word(&mut self, word: &'static str, value: Value) -> Result<Value, SyntaxError> {
        let end = self.at + word.len();
        if self.bytes.get(self.at..end) == Some(word.as_bytes()) {
            self.at = end;
            Ok(value)
        } else {
            Err(self.error("expected a value"))
        }
    }

    fn object(&mut self) -> Result<Value, SyntaxError> {
        let mut map = Map::new();
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.at += 1;
            return Ok(Value::Object(map));
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.error("expected a member name (a string)"));
            }
            let name_at = self.at;
            let name = self.string()?;
            self.expect(b':', "expected `:`")?;
            let value = self.value()?;
            if map.contains_key(&name) {
                self.at = name_at;
                return Err(self.error(format!("duplicate member `{name}`")));
            }
            map.insert(name, value);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Object(map));
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn array(&mut self) -> Result<Value, SyntaxError> {
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Ok(Value::Array(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
    }

    /// A string, starting at its opening quote.
    fn string(&mut self) -> Result<String, SyntaxError> {
        self.at += 1;
        let mut out = String::new();
        loop {
            let start = self.at;
            while matches!(self.peek(), Some(b) if b != b'"' && b != b'\\' && b >= 0x20) {
                self.at += 1;
            }
            // Stops only at ASCII bytes, so both ends are character boundaries of valid UTF-8.
            let run = self.bytes.get(start..self.at).unwrap_or_default();
            out.push_str(core::str::from_utf8(run).unwrap_or_default());
            match self.peek() {
                Some(b'"') => {
                    self.at += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.at += 1;
                    let ch = self.escape()?;
                    out.push(ch);
                }
                Some(_) => return Err(self.error("control character in a string")),
                None => return Err(self.error("end of input inside a string")),
            }
        }
    }

    /// The character of an escape sequence, after its backslash.
    fn escape(&mut self) -> Result<char, SyntaxError> {
        let ch = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.at += 1;
                return self.unicode_escape();
            }
            _ => return Err(self.error("invalid escape")),
        };
        self.at += 1;
        Ok(ch)
    }

    /// `XXXX` after `\u`, with a following `\uXXXX` when it is a leading surrogate.
    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let first = self.hex4()?;
        let code = match first {
            0xD800..=0xDBFF => {
                if self.bytes.get(self.at..self.at + 2) != Some(b"\\u") {
                    return Err(self.error("lone leading surrogate in a \\u escape"));
                }
                self.at += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("invalid trailing surrogate in a \\u escape"));
                }
                0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00)
            }
            0xDC00..=0xDFFF => return Err(self.error("lone trailing surrogate in a \\u escape")),
            code => code,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = self
                .peek()
                .and_then(|b| char::from(b).to_digit(16))
                .ok_or_else(|| self.error("invalid \\u escape"))?;
            code = code * 16 + digit;
            self.at += 1;
        }
        Ok(code)
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`, kept as written.
    fn number(&mut self) -> Result<Value, SyntaxError> {
        let start = self.at;
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek() {
            Some(b'0') => self.at += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.at += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.at += 1;
            }
            self.required_digits()?;
        }
        let text = self.bytes.get(start..self.at).unwrap_or_default();
        let text = core::str::from_utf8(text).unwrap_or_default();
        Ok(Value::Number(Number(String::from(text))))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), SyntaxError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.error("invalid number"));
        }
        self.digits();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: &Value) -> String {
        let mut out = String::new();
        value.write(&mut out);
        out
    }

    #[test]
    fn reads_what_serde_json_reads_and_writes_it_back_compact() {
        for doc in [
            r#"{"a":1,"b":[true,false,null],"c":{"d":"e"}}"#,
            r#"[-0,0.5,1e3,-1.25E-7,12345678901234567890123]"#,
            r#""é€😀 \" \\ \/ \b\f\n\r\t \u0001 \ud83d\ude00""#,
            "  {\n \"spaced\" : [ 1 , 2 ] }\t",
            r#"[[[[]]],{}]"#,
        ] {
            let ours = parse(doc.as_bytes()).unwrap();
            let theirs: serde_json::Value = serde_json::from_str(doc).unwrap();
            let written = text(&ours);
            let reread: serde_json::Value = serde_json::from_str(&written).unwrap();
            assert_eq!(reread, theirs, "{doc} → {written}");
        }
    }

    #[test]
    fn rejects_what_is_not_json_with_the_place() {
        for (doc, what) in [
            (
                "",
                "end of input where a value was expected at line 1 column 1",
            ),
            (
                "{\"a\":1,}",
                "expected a member name (a string) at line 1 column 8",
            ),
            ("[1,]", "expected a value at line 1 column 4"),
            ("{\"a\" 1}", "expected `:` at line 1 column 6"),
            ("[1 2]", "expected `,` or `]` at line 1 column 4"),
            (
                "{\"a\":1\n\"b\":2}",
                "expected `,` or `}` at line 2 column 1",
            ),
            ("01", "trailing characters at line 1 column 2"),
            ("1.", "invalid number at line 1 column 3"),
            ("-", "invalid number at line 1 column 2"),
            ("1e+", "invalid number at line 1 column 4"),
            (
                "\"a\tb\"",
                "control character in a string at line 1 column 3",
            ),
            ("\"\\x\"", "invalid escape at line 1 column 3"),
            (
                "\"\\ud800\"",
                "lone leading surrogate in a \\u escape at line 1 column 8",
            ),
            (
                "\"\\udc00\"",
                "lone trailing surrogate in a \\u escape at line 1 column 8",
            ),
            ("\"\\u12\"", "invalid \\u escape at line 1 column 6"),
            ("\"abc", "end of input inside a string at line 1 column 5"),
            ("tru", "expected a value at line 1 column 1"),
            ("nul1", "expected a value at line 1 column 1"),
            (
                "{\"a\":1,\"a\":2}",
                "duplicate member `a` at line 1 column 8",
            ),
            ("[1] x", "trailing characters at line 1 column 5"),
        ] {
            assert_eq!(
                parse(doc.as_bytes()).unwrap_err().to_string(),
                what,
                "{doc:?}"
            );
            assert!(
                serde_json::from_str::<serde_json::Value>(doc).is_err() || doc.contains("\"a\":2")
            );
        }
        assert_eq!(
            parse(b"[\"\xff\"]").unwrap_err().to_string(),
            "invalid UTF-8 at line 1 column 3"
        );
    }

    #[test]
    fn nesting_is_limited() {
        let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
        assert!(parse(deep(64).as_bytes()).is_ok());
        let error = parse(deep(65).as_bytes()).unwrap_err().to_string();
        assert_eq!(error, "nested more than 64 levels deep at line 1 column 65");
        assert!(
            parse(deep(100_000).as_bytes()).is_err(),
            "no stack overflow"
        );
    }

    #[test]
    fn members_keep_document_order() {
        let Value::Object(map) = parse(br#"{"z":1,"a":2,"m":3}"#).unwrap() else {
            panic!()
        };
        assert_eq!(map.keys().collect::<Vec<_>>(), ["z", "a", "m"]);
        assert_eq!(map.get("a").and_then(Value::as_u64), Some(2));
        assert_eq!(map.get("b"), None);
    }

    #[test]
    fn integers_are_exact_and_floors_cover_every_notation() {
        let number = |text: &str| match parse(text.as_bytes()).unwrap() {
            Value::Number(number) => number,
            other => panic!("{other:?}"),
        };
        assert_eq!(number("18446744073709551615").as_u64(), Some(u64::MAX));
        assert_eq!(number("18446744073709551616").as_u64(), None);
        for not_u64 in ["-1", "-0", "1.0", "1e3"] {
            assert_eq!(number(not_u64).as_u64(), None, "{not_u64}");
        }
        for (text, floor) in [
            ("1754386348", Some(1754386348)),
            ("1754386348.9", Some(1754386348)),
            ("1.754386348e9", Some(1754386348)),
            ("17543863489E-1", Some(1754386348)),
            ("0.5", Some(0)),
            ("0e999999999", Some(0)),
            ("5e-99999999", Some(0)),
            ("1e19", Some(10_000_000_000_000_000_000)),
            ("1e20", None),
            ("1e400", None),
            ("-5", None),
            ("18446744073709551615.99", Some(u64::MAX)),
        ] {
            assert_eq!(number(text).floor_u64(), floor, "{text}");
        }
    }

    #[test]
    fn escaping_round_trips_through_a_json_parser() {
        for text in [
            "plain",
            "a\"b\\c",
            "line\nbreak\ttab\r",
            "\u{1}\u{8}\u{c}\u{1f}\u{7f}",
            "é€😀",
        ] {
            let mut quoted = String::new();
            push_quoted(&mut quoted, text);
            assert_eq!(
                parse(quoted.as_bytes()).unwrap(),
                Value::String(text.into())
            );
            let theirs: String = serde_json::from_str(&quoted).unwrap();
            assert_eq!(theirs, text, "{quoted}");
            assert_eq!(
                quoted,
                serde_json::to_string(text).unwrap(),
                "as serde_json writes it"
            );
        }
    }
}
