//! Token extraction from the configured sources (header with a scheme prefix, query parameter,
//! cookie), the edits that strip it before the request goes upstream, and log-safe redaction.
//!
//! Sources are tried in order header → query → cookie; the first source *present* decides, so a
//! malformed `Authorization` header is an error even when a cookie also carries a token.

use crate::core::request::{HeaderEdit, RequestView};
use crate::core::target::Target;
use ::core::fmt;
use alloc::borrow::Cow;
use alloc::{format, string::String, string::ToString, vec, vec::Vec};

/// The header the token comes from unless `tokenFromHeaderName` says otherwise (lowercase).
pub const DEFAULT_HEADER: &str = "authorization";
/// The scheme prefix unless `tokenFromHeaderPrefix` says otherwise.
pub const DEFAULT_PREFIX: &str = "Bearer ";

/// Longest token accepted; longer ones are refused without a call.
pub const MAX_TOKEN_LEN: usize = 8192;

/// Where the plugin looks for the token (compiled from the `tokenFrom*` keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSources {
    /// Lowercase header name (`tokenFromHeaderName`, default `authorization`).
    pub header: String,
    /// Value prefix (`tokenFromHeaderPrefix`, default `Bearer `), compared case-insensitively.
    pub prefix: String,
    /// Query parameter name (`tokenFromQuery`).
    pub query: Option<String>,
    /// Cookie name (`tokenFromCookie`).
    pub cookie: Option<String>,
    /// Remove the token from the request before it goes upstream (`stripToken`).
    pub strip: bool,
}

impl Default for TokenSources {
    fn default() -> Self {
        TokenSources {
            header: DEFAULT_HEADER.to_string(),
            prefix: DEFAULT_PREFIX.to_string(),
            query: None,
            cookie: None,
            strip: false,
        }
    }
}

/// Which source the token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Header,
    Query,
    Cookie,
}

/// Why no usable token was found; the message goes into the error reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    Missing,
    WrongScheme,
    Empty,
    Malformed,
    TooLong,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            TokenError::Missing => "missing token",
            TokenError::WrongScheme => "invalid authorization scheme",
            TokenError::Empty => "empty token",
            TokenError::Malformed => "malformed token",
            TokenError::TooLong => "token too long",
        };
        f.write_str(text)
    }
}

/// A token found in the request: borrowed from the request where it appears verbatim (header,
/// cookie), owned where it had to be decoded (query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extracted<'a> {
    pub token: Cow<'a, str>,
    pub source: Source,
}

impl TokenSources {
    /// Finds the token in the request (`target`: its `:path`, parsed once).
    pub fn extract<'a>(
        &self,
        request: &'a impl RequestView,
        target: &Target,
    ) -> Result<Extracted<'a>, TokenError> {
        if let Some(value) = request.header(&self.header) {
            let token = self.parse_header_value(value)?;
            return found(Cow::Borrowed(token), Source::Header);
        }
        if let Some(name) = &self.query {
            if let Some(token) = target.query_param(name) {
                return found(Cow::Owned(token), Source::Query);
            }
        }
        if let Some(name) = &self.cookie {
            let cookies = request.header("cookie").unwrap_or_default();
            if let Some(token) = cookie_value(cookies, name) {
                return found(Cow::Borrowed(token), Source::Cookie);
            }
        }
        Err(TokenError::Missing)
    }

    /// Applies the prefix rule to a header value: `bearer  x` and `Bearer x` both give `x`.
    fn parse_header_value<'a>(&self, value: &'a str) -> Result<&'a str, TokenError> {
        let value = trim_ows(value);
        let scheme = trim_end_ows(&self.prefix);
        let needs_separator = scheme.len() < self.prefix.len();
        let head = value.get(..scheme.len()).unwrap_or("");
        if !head.eq_ignore_ascii_case(scheme) {
            return Err(TokenError::WrongScheme);
        }
        let rest = value.get(scheme.len()..).unwrap_or("");
        if needs_separator && !rest.is_empty() && !rest.as_bytes().first().is_some_and(is_ows_byte)
        {
            return Err(TokenError::WrongScheme);
        }
        Ok(trim_ows(rest))
    }

    /// The edits that remove the token from the request (empty unless `stripToken`).
    pub fn strip_edits(
        &self,
        source: Source,
        request: &impl RequestView,
        target: &Target,
    ) -> Vec<HeaderEdit> {
        if !self.strip {
            return Vec::new();
        }
        match source {
            Source::Header => vec![HeaderEdit::Remove(self.header.as_str().into())],
            Source::Query => {
                let name = self.query.as_deref().unwrap_or_default();
                vec![HeaderEdit::Set(
                    ":path".into(),
                    target.without_query_param(name).into(),
                )]
            }
            Source::Cookie => {
                let cookies = request.header("cookie").unwrap_or_default();
                let name = self.cookie.as_deref().unwrap_or_default();
                let rest = without_cookie(cookies, name);
                if rest.is_empty() {
                    vec![HeaderEdit::Remove("cookie".into())]
                } else {
                    vec![HeaderEdit::Set("cookie".into(), rest.into())]
                }
            }
        }
    }
}

fn is_ows_byte(byte: &u8) -> bool {
    *byte == b' ' || *byte == b'\t'
}

/// `text` without leading and trailing spaces and tabs, found byte by byte (both are ASCII, so
/// the cuts fall on character boundaries).
fn trim_ows(text: &str) -> &str {
    let bytes = text.as_bytes();
    let start = bytes
        .iter()
        .position(|b| !is_ows_byte(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows_byte(b))
        .map_or(start, |last| last + 1);
    text.get(start..end).unwrap_or("")
}

/// `text` without trailing spaces and tabs.
fn trim_end_ows(text: &str) -> &str {
    let end = text
        .as_bytes()
        .iter()
        .rposition(|b| !is_ows_byte(b))
        .map_or(0, |last| last + 1);
    text.get(..end).unwrap_or("")
}

fn found(token: Cow<'_, str>, source: Source) -> Result<Extracted<'_>, TokenError> {
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLong);
    }
    if has_space_or_control(&token) {
        return Err(TokenError::Malformed);
    }
    Ok(Extracted { token, source })
}

/// Whitespace or a control character anywhere in `token`. Tokens are printable ASCII in
/// practice: eight bytes at a time decide them ([`all_printable_ascii`]); only a token with some
/// other byte takes the byte-by-byte (and, for non-ASCII, the Unicode) check.
fn has_space_or_control(token: &str) -> bool {
    if all_printable_ascii(token.as_bytes()) {
        return false;
    }
    // Space, ASCII controls (DEL included) and any non-ASCII byte stop the scan; only a
    // non-ASCII token takes the Unicode check.
    match token.bytes().find(|&b| b <= b' ' || b >= 0x7f) {
        None => false,
        Some(b) if b < 0x80 => true,
        Some(_) => token
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control()),
    }
}

/// Every byte in `0x21..=0x7e`, checked a 64-bit word at a time (the wasm VM has no SIMD): a
/// byte below 0x21 borrows in `word - 0x21…` where its own top bit was clear; a byte of 0x7f or
/// more has its top bit set in `word` or in `word + 0x01…`.
fn all_printable_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const TOPS: u64 = 0x8080_8080_8080_8080;
    let outside = |word: u64| {
        let below = word.wrapping_sub(ONES * 0x21) & !word & TOPS;
        let above = (word | word.wrapping_add(ONES)) & TOPS;
        below | above != 0
    };
    let mut words = bytes.chunks_exact(8);
    for chunk in &mut words {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        if outside(u64::from_le_bytes(word)) {
            return false;
        }
    }
    words
        .remainder()
        .iter()
        .all(|&b| (0x21..=0x7e).contains(&b))
}

/// Splits a `cookie` header into `(name, value)` pairs (RFC 6265 §5.4: pairs separated by `;`
/// and optional spaces or tabs), unquoting values. Extraction and [`without_cookie`] trim alike,
/// so a cookie is stripped exactly when it is read.
fn cookies(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split(';').filter_map(|pair| {
        let (name, value) = trim_ows(pair).split_once('=')?;
        let value = trim_ows(value);
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        Some((trim_ows(name), value))
    })
}

fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    cookies(header)
        .find(|(key, _)| *key == name)
        .map(|(_, v)| v)
}

fn without_cookie(header: &str, name: &str) -> String {
    header
        .split(';')
        .map(trim_ows)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split('=').next().map(trim_ows) != Some(name))
        .collect::<Vec<_>>()
        .join("; ")
}

/// A log-safe rendering of a token: never more than its first 4 characters.
pub fn redact(token: &str) -> String {
    let shown: String = if token.chars().count() >= 16 {
        token.chars().take(4).collect()
    } else {
        String::new()
    };
    format!("{shown}…({} bytes)", token.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::request::fake::FakeRequest;

    /// Extraction as the auth flow does it: the request's `:path` parsed once.
    fn extract<'a>(
        sources: &TokenSources,
        req: &'a FakeRequest,
    ) -> Result<Extracted<'a>, TokenError> {
        let raw = req.header(":path").unwrap_or_default();
        sources.extract(req, &Target::parse(raw))
    }

    fn strip(sources: &TokenSources, source: Source, req: &FakeRequest) -> Vec<HeaderEdit> {
        let raw = req.header(":path").unwrap_or_default();
        sources.strip_edits(source, req, &Target::parse(raw))
    }

    fn bearer() -> TokenSources {
        TokenSources::default()
    }

    fn all_sources() -> TokenSources {
        TokenSources {
            query: Some("access_token".into()),
            cookie: Some("session".into()),
            ..TokenSources::default()
        }
    }

    fn header(value: &str) -> Result<String, TokenError> {
        let req = FakeRequest::get("/").with("Authorization", value);
        extract(&bearer(), &req).map(|e| e.token.into_owned())
    }

    #[test]
    fn header_with_bearer_prefix() {
        assert_eq!(header("Bearer abc.def").unwrap(), "abc.def");
        assert_eq!(header("bearer abc").unwrap(), "abc");
        assert_eq!(header("BEARER   abc  ").unwrap(), "abc");
        assert_eq!(header("  Bearer\tabc").unwrap(), "abc");
    }

    #[test]
    fn header_lookup_is_case_insensitive() {
        let req = FakeRequest::get("/").with("AUTHORIZATION", "Bearer t");
        assert_eq!(extract(&bearer(), &req).unwrap().token, "t");
    }

    #[test]
    fn header_errors() {
        assert_eq!(header("Basic abc"), Err(TokenError::WrongScheme));
        assert_eq!(header("Bearerabc"), Err(TokenError::WrongScheme));
        assert_eq!(header("Bear"), Err(TokenError::WrongScheme));
        assert_eq!(header("Bearer"), Err(TokenError::Empty));
        assert_eq!(header("Bearer    "), Err(TokenError::Empty));
        assert_eq!(header(""), Err(TokenError::WrongScheme));
        assert_eq!(header("Bearer a b"), Err(TokenError::Malformed));
        let long = format!("Bearer {}", "a".repeat(MAX_TOKEN_LEN + 1));
        assert_eq!(header(&long), Err(TokenError::TooLong));
    }

    #[test]
    fn missing_everywhere() {
        let req = FakeRequest::get("/x?other=1").with("cookie", "a=b");
        assert_eq!(extract(&all_sources(), &req), Err(TokenError::Missing));
        assert_eq!(
            extract(&bearer(), &FakeRequest::get("/")),
            Err(TokenError::Missing)
        );
    }

    #[test]
    fn empty_prefix_takes_whole_value() {
        let sources = TokenSources {
            header: "x-token".into(),
            prefix: String::new(),
            ..TokenSources::default()
        };
        let req = FakeRequest::get("/").with("x-token", " tok ");
        assert_eq!(extract(&sources, &req).unwrap().token, "tok");
    }

    #[test]
    fn query_and_cookie_sources() {
        let req = FakeRequest::get("/a?x=1&access_token=q%2Bv#frag");
        let got = extract(&all_sources(), &req).unwrap();
        assert_eq!((&*got.token, got.source), ("q+v", Source::Query));

        let req = FakeRequest::get("/a").with("cookie", "theme=dark; session=\"c1\"");
        let got = extract(&all_sources(), &req).unwrap();
        assert_eq!((&*got.token, got.source), ("c1", Source::Cookie));
    }

    #[test]
    fn header_wins_and_decides() {
        let req = FakeRequest::get("/a?access_token=q").with("authorization", "Basic x");
        assert_eq!(extract(&all_sources(), &req), Err(TokenError::WrongScheme));
    }

    #[test]
    fn sources_not_configured_are_not_read() {
        let req = FakeRequest::get("/a?access_token=q").with("cookie", "session=c");
        assert_eq!(extract(&bearer(), &req), Err(TokenError::Missing));
    }

    #[test]
    fn strip_edits_per_source() {
        let mut sources = all_sources();
        let req =
            FakeRequest::get("/a?x=%20&access_token=q&y=2#f").with("cookie", "a=1; session=c");
        assert!(strip(&sources, Source::Header, &req).is_empty());
        sources.strip = true;
        assert_eq!(
            strip(&sources, Source::Header, &req),
            vec![HeaderEdit::Remove("authorization".into())]
        );
        assert_eq!(
            strip(&sources, Source::Query, &req),
            vec![HeaderEdit::Set(":path".into(), "/a?x=%20&y=2".into())],
            "the fragment is dropped with the token (see core::target)"
        );
        assert_eq!(
            strip(&sources, Source::Cookie, &req),
            vec![HeaderEdit::Set("cookie".into(), "a=1".into())]
        );
        let only = FakeRequest::get("/a?access_token=q").with("cookie", "session=c");
        assert_eq!(
            strip(&sources, Source::Query, &only),
            vec![HeaderEdit::Set(":path".into(), "/a".into())]
        );
        assert_eq!(
            strip(&sources, Source::Cookie, &only),
            vec![HeaderEdit::Remove("cookie".into())]
        );
    }

    #[test]
    fn spaces_and_controls_are_found_in_ascii_and_unicode_tokens() {
        for bad in [
            "a b",
            "a\tb",
            "a\u{7f}",
            "\u{1}",
            "é\u{3000}x",
            "é\u{85}",
            "éa\u{1}",
        ] {
            assert!(has_space_or_control(bad), "{bad:?}");
        }
        for good in ["abc.DEF-_~+/=", "é", "日本語"] {
            assert!(!has_space_or_control(good), "{good:?}");
        }
    }

    #[test]
    fn trimming_by_bytes_agrees_with_trimming_by_chars() {
        let ows = |ch: char| ch == ' ' || ch == '\t';
        for text in [
            "",
            " ",
            "\t \t",
            "a",
            " a ",
            "\tBearer  x\t",
            "é ",
            " é",
            "  ü x é  ",
            "a b",
        ] {
            assert_eq!(trim_ows(text), text.trim_matches(ows), "{text:?}");
            assert_eq!(trim_end_ows(text), text.trim_end_matches(ows), "{text:?}");
        }
    }

    #[test]
    fn the_word_scan_agrees_with_the_byte_scan_for_every_byte_at_every_position() {
        let naive = |bytes: &[u8]| bytes.iter().all(|&b| (0x21..=0x7e).contains(&b));
        for len in [1usize, 7, 8, 9, 16, 23] {
            for position in 0..len {
                for byte in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[position] = byte;
                    assert_eq!(
                        all_printable_ascii(&bytes),
                        naive(&bytes),
                        "byte {byte:#04x} at {position} of {len}"
                    );
                }
            }
        }
        assert!(all_printable_ascii(b""));
    }

    #[test]
    fn redaction_never_shows_the_token() {
        let token = "eyJhbGciOiJIUzI1NiJ9.payload.signature";
        let shown = redact(token);
        assert!(shown.starts_with("eyJh…"));
        assert!(!shown.contains("payload"));
        assert_eq!(redact("short"), "…(5 bytes)");
    }
}
