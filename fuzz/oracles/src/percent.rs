//! Plain percent-decoding (RFC 3986 §2.1) for test oracles: every `%XX` with two hex digits
//! becomes its byte, anything else stays as is. Shared by `tests/properties.rs` and the `path`
//! fuzz target, which model what a lenient backend makes of a path.

/// Decodes every valid escape once; invalid UTF-8 is replaced.
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text)
        .decode_utf8_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_escapes_only() {
        assert_eq!(percent_decode("%41%2f%2F%4%zz%"), "A//%4%zz%");
        assert_eq!(percent_decode("%ff"), "\u{FFFD}");
        assert_eq!(percent_decode("%252F"), "%2F");
    }
}
