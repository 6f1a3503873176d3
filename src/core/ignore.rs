//! Request-path normalisation and the `ignoreUrls` matcher (exact, prefix and segment wildcards).
//!
//! The ignore list is the one place where a path decides *not* to authenticate, so matching runs on
//! a normalised path and every ambiguity fails closed: a path that cannot be normalised safely is
//! never ignored and must authenticate.
//!
//! Normalisation of the raw `:path` (RFC 3986 §6.2.2 and §5.2.4):
//! 1. drop the fragment (`#…`) and the query (`?…`);
//! 2. percent-decode the unreserved characters (`A-Z a-z 0-9 - . _ ~`), upper-case the hex digits
//!    of every other escape and keep it encoded;
//! 3. merge duplicate slashes and remove `.` / `..` segments.
//!
//! Unsafe (never ignored): a path not starting with `/`; invalid percent-encoding; an encoded `/`
//! (`%2F`), `\` (`%5C`) or `%` (`%25`, which a double-decoding backend would turn into any of the
//! above); a raw `\` or control character; `..` above the root; a `.`/`..` segment carrying
//! `;` parameters, raw or encoded (`/public/..;/admin`, `/public/..%3B/admin`, which Tomcat-like
//! backends read as `..`).
//!
//! Patterns (normalised the same way at configure time):
//! - `/health` — exact match;
//! - `/public/*` — `/public` itself and everything below it (segment boundary: not `/publicity`);
//! - `/v1/*/status` — `*` as a whole segment matches exactly one non-empty segment;
//! - `/*` — every path.

use crate::core::target::Target;
use std::borrow::Cow;
use std::fmt;

/// Why a path was not normalised; such a path is never ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unsafe {
    NotAbsolute,
    BadEscape,
    EncodedSeparator,
    ControlOrBackslash,
    AboveRoot,
    DotSegmentParams,
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Unsafe::NotAbsolute => "path does not start with '/'",
            Unsafe::BadEscape => "invalid percent-encoding",
            Unsafe::EncodedSeparator => "encoded '/', '\\' or '%'",
            Unsafe::ControlOrBackslash => "backslash or control character",
            Unsafe::AboveRoot => "'..' above the root",
            Unsafe::DotSegmentParams => "dot segment with ';' parameters",
        };
        f.write_str(text)
    }
}

/// Normalises a raw request target (`:path`) into a canonical absolute path.
pub fn normalize(raw: &str) -> Result<String, Unsafe> {
    normalize_path(Target::parse(raw).path).map(Cow::into_owned)
}

/// Normalises the path part of a request target (no query, no fragment). Most paths are
/// already normal: they are returned as they are, without allocating.
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, Unsafe> {
    if !path.starts_with('/') {
        return Err(Unsafe::NotAbsolute);
    }
    if is_normal(path) {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(path)?;
    remove_dot_segments(&decoded).map(Cow::Owned)
}

/// An absolute path the steps below would return unchanged: no escape, backslash or control
/// character, no empty segment (`//`) and no segment starting with `.` (dot segments, with or
/// without parameters; a harmless `/.well-known` just takes the long way).
fn is_normal(path: &str) -> bool {
    // One pass: no `%`, `\` or control byte, and no `//` or `/.`.
    let mut previous = 0u8;
    for &byte in path.as_bytes() {
        if byte == b'%'
            || byte == b'\\'
            || byte.is_ascii_control()
            || (previous == b'/' && (byte == b'/' || byte == b'.'))
        {
            return false;
        }
        previous = byte;
    }
    true
}

fn is_unreserved(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~')
}

/// Step 2: decode unreserved escapes, canonicalise the others, reject the dangerous ones.
fn decode_unreserved(path: &str) -> Result<String, Unsafe> {
    let bytes = path.as_bytes();
    let hex_digit = |at: usize| {
        let digit = char::from(*bytes.get(at)?).to_digit(16)?;
        u8::try_from(digit).ok()
    };
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'\\' || byte.is_ascii_control() {
            return Err(Unsafe::ControlOrBackslash);
        }
        if byte != b'%' {
            out.push(byte);
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (hex_digit(i + 1), hex_digit(i + 2)) else {
            return Err(Unsafe::BadEscape);
        };
        let value = hi * 16 + lo;
        if matches!(value, b'/' | b'\\' | b'%') {
            return Err(Unsafe::EncodedSeparator);
        }
        if is_unreserved(value) {
            out.push(value);
        } else {
            out.extend_from_slice(format!("%{value:02X}").as_bytes());
        }
        i += 3;
    }
    // Literal bytes come from a `str` in order and escapes add ASCII only: always valid UTF-8.
    String::from_utf8(out).map_err(|_| Unsafe::BadEscape)
}

/// Step 3: merge `//`, drop `.`, resolve `..` (failing above the root).
fn remove_dot_segments(path: &str) -> Result<String, Unsafe> {
    let mut segments: Vec<&str> = Vec::new();
    let trailing_slash = path.len() > 1 && path.ends_with('/');
    for segment in path.split('/') {
        let bare = dot_segment_base(segment);
        match segment {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    return Err(Unsafe::AboveRoot);
                }
            }
            _ if bare == "." || bare == ".." => return Err(Unsafe::DotSegmentParams),
            _ => segments.push(segment),
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &segments {
        out.push('/');
        out.push_str(segment);
    }
    if out.is_empty() || trailing_slash {
        out.push('/');
    }
    Ok(out)
}

/// A segment without its `;` parameters, raw or encoded (`%3B`, upper-cased by step 2): a backend
/// that decodes `..%3B` reads the Tomcat-style `..;`, so both are dot segments with parameters.
fn dot_segment_base(segment: &str) -> &str {
    let bare = segment.split(';').next().unwrap_or(segment);
    bare.split_once("%3B").map_or(bare, |(base, _)| base)
}

/// One compiled `ignoreUrls` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    segments: Vec<Segment>,
    prefix: bool,
    /// `/a/b` when every segment is a literal (and there is at least one): such a pattern is
    /// matched by comparing strings, without splitting the path.
    literal: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Any,
}

/// Why an `ignoreUrls` entry was rejected at configure time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternError {
    NotAbsolute,
    QueryOrFragment,
    PartialWildcard,
    Path(Unsafe),
}

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PatternError::NotAbsolute => f.write_str("pattern must start with '/'"),
            PatternError::QueryOrFragment => f.write_str("pattern must not contain '?' or '#'"),
            PatternError::PartialWildcard => f.write_str("'*' must be a whole path segment"),
            PatternError::Path(why) => write!(f, "pattern is not a clean path: {why}"),
        }
    }
}

impl Pattern {
    /// Compiles one pattern; the literal part is normalised like request paths.
    pub fn parse(raw: &str) -> Result<Pattern, PatternError> {
        if !raw.starts_with('/') {
            return Err(PatternError::NotAbsolute);
        }
        if raw.contains(['?', '#']) {
            return Err(PatternError::QueryOrFragment);
        }
        let (body, prefix) = match raw.strip_suffix("/*") {
            Some(body) => (body, true),
            None => (raw, false),
        };
        let mut segments = Vec::new();
        for part in body.split('/').filter(|part| !part.is_empty()) {
            if part == "*" {
                segments.push(Segment::Any);
            } else if part.contains('*') {
                return Err(PatternError::PartialWildcard);
            } else {
                segments.push(Segment::Literal(literal_segment(part)?));
            }
        }
        let literal = segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(text) => Some(format!("/{text}")),
                Segment::Any => None,
            })
            .collect::<Option<String>>()
            .filter(|literal| !literal.is_empty());
        Ok(Pattern {
            segments,
            prefix,
            literal,
        })
    }

    /// Matches an already normalised path.
    pub fn matches(&self, path: &str) -> bool {
        match &self.literal {
            Some(literal) => self.matches_literal(literal, path),
            None => self.matches_segments(path),
        }
    }

    /// `/a/b` matches exactly; `/a/b/*` also matches `/a/b` and anything below `/a/b/`.
    fn matches_literal(&self, literal: &str, path: &str) -> bool {
        match path.strip_prefix(literal) {
            Some("") => true,
            Some(rest) => self.prefix && rest.starts_with('/'),
            None => false,
        }
    }

    fn matches_segments(&self, path: &str) -> bool {
        let mut parts = path.split('/').skip(1);
        for segment in &self.segments {
            let Some(part) = parts.next() else {
                return false;
            };
            let ok = match segment {
                Segment::Any => !part.is_empty(),
                Segment::Literal(text) => part == text,
            };
            if !ok {
                return false;
            }
        }
        if self.prefix {
            return true;
        }
        match (parts.next(), self.segments.is_empty()) {
            (None, _) => true,
            // "/" is the exact pattern for the root: it matches the path "/" only.
            (Some(""), true) => parts.next().is_none(),
            _ => false,
        }
    }
}

fn literal_segment(part: &str) -> Result<String, PatternError> {
    let normalized = normalize(&format!("/{part}")).map_err(PatternError::Path)?;
    match normalized.strip_prefix('/') {
        Some(segment) if !segment.is_empty() && !segment.contains('/') => Ok(segment.to_string()),
        _ => Err(PatternError::Path(Unsafe::AboveRoot)),
    }
}

/// The compiled `ignoreUrls` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IgnoreList {
    patterns: Vec<Pattern>,
}

impl IgnoreList {
    pub fn new(patterns: Vec<Pattern>) -> IgnoreList {
        IgnoreList { patterns }
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// True when the request's path normalises safely and matches a pattern.
    pub fn ignores(&self, target: &Target) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        match normalize_path(target.path) {
            Ok(path) => self.patterns.iter().any(|pattern| pattern.matches(&path)),
            Err(_) => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fast_path_agrees_with_the_full_normalisation() {
        for path in [
            "/",
            "/a",
            "/a/b/",
            "/public/index.html",
            "/a;b/c",
            "/v1/x/status",
            "/.well-known/x",
            "/a/.b",
        ] {
            let full = decode_unreserved(path).and_then(|p| remove_dot_segments(&p));
            assert_eq!(normalize_path(path).map(Cow::into_owned), full, "{path}");
            assert_eq!(is_normal(path), !path.contains("/."), "{path}");
        }
        assert!(matches!(normalize_path("/public/x"), Ok(Cow::Borrowed(_))));
        assert!(matches!(normalize_path("/public//x"), Ok(Cow::Owned(_))));
    }

    #[test]
    fn literal_patterns_match_like_the_segment_matcher() {
        let paths = [
            "/",
            "/healthz",
            "/healthz/",
            "/healthzz",
            "/healthz/x",
            "/public",
            "/public/",
            "/public/x",
            "/public/x/y",
            "/publicx",
            "/pub",
            "/a/b",
            "/a/b/",
            "/a/bc",
            "/a/b/c",
            "/a",
            "/x/healthz",
        ];
        for raw in ["/healthz", "/public/*", "/a/b", "/a/b/*", "/a/b/"] {
            let pattern = Pattern::parse(raw).unwrap();
            assert!(pattern.literal.is_some(), "{raw} is literal");
            for path in paths {
                assert_eq!(
                    pattern.matches(path),
                    pattern.matches_segments(path),
                    "{raw} on {path}"
                );
            }
        }
        for raw in ["/", "/*", "/a/*/c"] {
            assert!(Pattern::parse(raw).unwrap().literal.is_none(), "{raw}");
        }
    }

    fn list(patterns: &[&str]) -> IgnoreList {
        IgnoreList::new(
            patterns
                .iter()
                .map(|p| Pattern::parse(p).unwrap())
                .collect(),
        )
    }

    #[test]
    fn normalize_strips_query_and_fragment() {
        assert_eq!(normalize("/a/b?x=1#f").unwrap(), "/a/b");
        assert_eq!(normalize("/a#f?x").unwrap(), "/a");
        assert_eq!(normalize("/").unwrap(), "/");
        assert_eq!(normalize("/?x").unwrap(), "/");
    }

    #[test]
    fn normalize_decodes_unreserved_only() {
        assert_eq!(normalize("/%61%62c").unwrap(), "/abc");
        assert_eq!(normalize("/a%7e%2D").unwrap(), "/a~-");
        assert_eq!(normalize("/a%3f").unwrap(), "/a%3F");
        assert_eq!(normalize("/a%2a%20b").unwrap(), "/a%2A%20b");
        assert_eq!(normalize("/caf\u{e9}/%41").unwrap(), "/caf\u{e9}/A");
    }

    #[test]
    fn normalize_resolves_dot_segments_and_slashes() {
        assert_eq!(normalize("/a/./b/../c").unwrap(), "/a/c");
        assert_eq!(normalize("//a///b").unwrap(), "/a/b");
        assert_eq!(normalize("/a/b/").unwrap(), "/a/b/");
        assert_eq!(normalize("/a/%2e%2E/b").unwrap(), "/b");
        assert_eq!(normalize("/a/.%2e/b").unwrap(), "/b");
        assert_eq!(normalize("/a/b/..").unwrap(), "/a");
        assert_eq!(normalize("/a/b/../").unwrap(), "/a/");
        assert_eq!(normalize("/a/..").unwrap(), "/");
    }

    #[test]
    fn normalize_rejects_unsafe_paths() {
        assert_eq!(normalize("/.."), Err(Unsafe::AboveRoot));
        assert_eq!(normalize("/a/../../b"), Err(Unsafe::AboveRoot));
        assert_eq!(normalize("/%2e%2e/x"), Err(Unsafe::AboveRoot));
        assert_eq!(normalize("/a%2fb"), Err(Unsafe::EncodedSeparator));
        assert_eq!(normalize("/a%5Cb"), Err(Unsafe::EncodedSeparator));
        assert_eq!(normalize("/a%252e"), Err(Unsafe::EncodedSeparator));
        assert_eq!(normalize("/a%zz"), Err(Unsafe::BadEscape));
        assert_eq!(normalize("/a%4"), Err(Unsafe::BadEscape));
        assert_eq!(normalize("/a\\b"), Err(Unsafe::ControlOrBackslash));
        assert_eq!(normalize("/a\u{0}b"), Err(Unsafe::ControlOrBackslash));
        assert_eq!(normalize("a/b"), Err(Unsafe::NotAbsolute));
        assert_eq!(normalize("*"), Err(Unsafe::NotAbsolute));
        assert_eq!(
            normalize("/public/..;/admin"),
            Err(Unsafe::DotSegmentParams)
        );
        assert_eq!(
            normalize("/public/..%3b/admin"),
            Err(Unsafe::DotSegmentParams)
        );
        assert_eq!(normalize("/a;b/c%3Bd").unwrap(), "/a;b/c%3Bd");
    }

    #[test]
    fn exact_pattern() {
        let ignore = list(&["/health"]);
        assert!(ignore.ignores(&Target::parse("/health")));
        assert!(ignore.ignores(&Target::parse("/health?full=1")));
        assert!(ignore.ignores(&Target::parse("//health")));
        assert!(ignore.ignores(&Target::parse("/%68ealth")));
        assert!(!ignore.ignores(&Target::parse("/health/")));
        assert!(!ignore.ignores(&Target::parse("/health/x")));
        assert!(!ignore.ignores(&Target::parse("/healthz")));
        assert!(!ignore.ignores(&Target::parse("/Health")));
    }

    #[test]
    fn prefix_pattern_respects_segment_boundary() {
        let ignore = list(&["/public/*"]);
        assert!(ignore.ignores(&Target::parse("/public")));
        assert!(ignore.ignores(&Target::parse("/public/")));
        assert!(ignore.ignores(&Target::parse("/public/a/b.css")));
        assert!(!ignore.ignores(&Target::parse("/publicity")));
        assert!(!ignore.ignores(&Target::parse("/private/x")));
    }

    #[test]
    fn traversal_out_of_an_ignored_prefix_is_not_ignored() {
        let ignore = list(&["/public/*"]);
        assert!(!ignore.ignores(&Target::parse("/public/../admin")));
        assert!(!ignore.ignores(&Target::parse("/public/%2e%2e/admin")));
        assert!(!ignore.ignores(&Target::parse("/public/%2E%2E%2Fadmin")));
        assert!(!ignore.ignores(&Target::parse("/public%2f../admin")));
        assert!(!ignore.ignores(&Target::parse("/public/..%5cadmin")));
        assert!(!ignore.ignores(&Target::parse("/public/..;/admin")));
        assert!(!ignore.ignores(&Target::parse("/public/%252e%252e/admin")));
        assert!(!ignore.ignores(&Target::parse("/public/../../etc")));
        // Regression (found for the `path` fuzz oracle): an encoded `;` after a dot segment stayed literal,
        // so `/public/..%3B/admin` was ignored although a decoding backend reads `/public/..;/admin`.
        assert!(!ignore.ignores(&Target::parse("/public/..%3B/admin")));
        assert!(!ignore.ignores(&Target::parse("/public/%2e%2e%3b/admin")));
        assert!(!ignore.ignores(&Target::parse("/public/.%3Bx/../../admin")));
        // Staying inside the prefix is still ignored.
        assert!(ignore.ignores(&Target::parse("/public/a/../b")));
    }

    #[test]
    fn segment_wildcard() {
        let ignore = list(&["/v1/*/status"]);
        assert!(ignore.ignores(&Target::parse("/v1/orders/status")));
        assert!(!ignore.ignores(&Target::parse("/v1//status")));
        assert!(!ignore.ignores(&Target::parse("/v1/a/b/status")));
        assert!(!ignore.ignores(&Target::parse("/v1/orders/status/x")));
        let both = list(&["/v1/*/files/*"]);
        assert!(both.ignores(&Target::parse("/v1/x/files/a/b")));
        assert!(!both.ignores(&Target::parse("/v1/x/other")));
    }

    #[test]
    fn root_patterns() {
        assert!(list(&["/*"]).ignores(&Target::parse("/anything/at/all")));
        assert!(list(&["/"]).ignores(&Target::parse("/")));
        assert!(!list(&["/"]).ignores(&Target::parse("/x")));
        assert!(!list(&["/*"]).ignores(&Target::parse("/../x")));
    }

    #[test]
    fn patterns_are_normalised_and_validated() {
        assert_eq!(Pattern::parse("/%68ealth"), Pattern::parse("/health"));
        assert_eq!(Pattern::parse("health"), Err(PatternError::NotAbsolute));
        assert_eq!(Pattern::parse("/a?b"), Err(PatternError::QueryOrFragment));
        assert_eq!(Pattern::parse("/a*"), Err(PatternError::PartialWildcard));
        assert!(matches!(
            Pattern::parse("/a/../b"),
            Err(PatternError::Path(_))
        ));
        assert!(matches!(
            Pattern::parse("/a%2fb"),
            Err(PatternError::Path(_))
        ));
    }

    #[test]
    fn empty_list_ignores_nothing() {
        assert!(!IgnoreList::default().ignores(&Target::parse("/health")));
    }
}
