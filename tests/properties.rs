//! Property tests of the host-free core (no wasm): path normalisation, the ignore list against
//! encoded traversal, the JSON error body and token extraction.

use easy_jwt::core::ignore::{normalize, IgnoreList, Pattern};
use easy_jwt::core::reply::ErrorBody;
use easy_jwt::core::request::{Attribute, RequestView};
use easy_jwt::core::target::Target;
use easy_jwt::core::token::TokenSources;
use easy_jwt_fuzz_oracles::percent::percent_decode;
use proptest::prelude::*;
use serde_json::Value;

/// Pieces of hostile paths: dot segments in every encoding, separators, parameters, escapes.
const PIECES: &[&str] = &[
    "/", "//", "a", "public", "admin", ".", "..", "%2e", "%2E", "%2e%2E", ".%2e", "..;", ";x",
    "%3b", "%3B", "%2f", "%2F", "%5c", "\\", "%252e", "%25", "%41", "%7e", "?q=/..", "#/..", "é",
    "%zz", "%", " ", "\t",
];

fn hostile_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..12).prop_map(|pieces| {
        let mut path = String::from("/");
        path.extend(pieces.iter().copied());
        path
    })
}

/// The `..` spellings a backend may decode: percent-encoded, mixed case, double-encoded, with
/// Tomcat-style `;` parameters (raw or encoded).
const DOT_DOTS: &[&str] = &[
    "..",
    "%2e%2e",
    "%2E%2E",
    "%2e%2E",
    "%2E.",
    ".%2e",
    "%252e%252e",
    "%252E.",
    "..;",
    "..;x=1",
    "%2e%2e;",
    "..%3b",
    "..%3B",
    ".%2E%3B",
];
/// Separators after a `..`: slash, doubled, encoded, backslash.
const SEPARATORS: &[&str] = &["/", "//", "/./", "\\", "%2f", "%2F", "%5c", "%5C", "%252f"];
/// Ways to spell the ignored prefix itself.
const PREFIXES: &[&str] = &[
    "/public/",
    "//public/",
    "/%70ublic/",
    "/public/./",
    "/public//",
];

fn traversal_out_of_public() -> impl Strategy<Value = String> {
    (
        prop::sample::select(PREFIXES),
        prop::bool::ANY,
        prop::collection::vec(
            (
                prop::sample::select(DOT_DOTS),
                prop::sample::select(SEPARATORS),
            ),
            1..4,
        ),
        prop::sample::select(&["admin", "admin/secret", "private/x", "publicity"][..]),
    )
        .prop_map(|(prefix, extra_segment, steps, target)| {
            let mut path = prefix.to_string();
            if extra_segment {
                path.push_str("x/../");
            }
            for (dots, separator) in &steps {
                path.push_str(dots);
                path.push_str(separator);
            }
            path.push_str(target);
            path
        })
}

fn public_only() -> IgnoreList {
    IgnoreList::new(vec![Pattern::parse("/public/*").unwrap()])
}

/// What a lenient backend serves: every escape decoded (twice), `\` read as `/`, `;` parameters
/// dropped, dot segments resolved. `None`: above the root.
fn backend_path(raw: &str) -> Option<String> {
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    let decoded = percent_decode(&percent_decode(path)).replace('\\', "/");
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        match segment.split(';').next().unwrap_or_default() {
            "" | "." => {}
            ".." => {
                segments.pop()?;
            }
            _ => segments.push(segment),
        }
    }
    Some(format!("/{}", segments.join("/")))
}

/// A request made of plain data for the token sources.
#[derive(Debug, Default)]
struct Request {
    headers: Vec<(String, String)>,
}

impl RequestView for Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    fn attribute(&self, _attribute: Attribute) -> Option<String> {
        None
    }
}

fn all_sources() -> TokenSources {
    TokenSources {
        query: Some("access_token".into()),
        cookie: Some("session".into()),
        strip: true,
        ..TokenSources::default()
    }
}

/// Header values that often get past the scheme check: `Bearer ` plus any text.
fn authorization_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        any::<String>().prop_map(|s| format!("Bearer {s}")),
        "[Bb][Ee][Aa][Rr][Ee][Rr][ \t]{0,3}[\\PC\\s\u{0}-\u{1f}\u{7f}-\u{9f}\u{2028}\u{3000}]{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn a_normalised_path_has_no_dot_segments_nor_double_slashes(raw in hostile_path()) {
        if let Ok(path) = normalize(&raw) {
            prop_assert!(path.starts_with('/'));
            prop_assert!(!path.contains("//"), "{raw:?} -> {path:?}");
            prop_assert!(path.split('/').all(|s| s != "." && s != ".."), "{raw:?} -> {path:?}");
            prop_assert_eq!(normalize(&path), Ok(path.clone()));
        }
    }

    #[test]
    fn arbitrary_text_normalises_without_dot_segments(raw in any::<String>()) {
        let raw = format!("/{raw}");
        if let Ok(path) = normalize(&raw) {
            prop_assert!(!path.contains("//"));
            prop_assert!(path.split('/').all(|s| s != "." && s != ".."));
        }
    }

    #[test]
    fn traversal_out_of_an_ignored_prefix_is_never_ignored(raw in traversal_out_of_public()) {
        prop_assert!(!public_only().ignores(&Target::parse(&raw)), "{raw:?} is ignored");
    }

    #[test]
    fn an_ignored_path_is_inside_the_prefix_for_a_lenient_backend(raw in hostile_path()) {
        if public_only().ignores(&Target::parse(&raw)) {
            let served = backend_path(&raw);
            prop_assert!(
                served.as_deref().is_some_and(|p| p == "/public" || p.starts_with("/public/")),
                "{raw:?} is ignored but a backend serves {served:?}"
            );
        }
    }

    #[test]
    fn the_error_body_is_json_for_any_message(message in any::<String>(), template in prop::sample::select(&[
        "{\"message\":\"%s\"}",
        "{\"error\":{\"code\":401,\"detail\":\"%s\"}}",
        "[\"%s\", 100]",
        "{\"message\":\"%s\",\"hint\":\"100% sure %d\"}",
    ][..])) {
        let body = ErrorBody::parse(template).unwrap().render(&message);
        let parsed: Value = serde_json::from_slice(&body)
            .map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&body))))?;
        let found = match &parsed {
            Value::Object(map) => map.get("message").or_else(|| map.get("error").and_then(|e| e.get("detail"))),
            Value::Array(items) => items.first(),
            _ => None,
        };
        prop_assert_eq!(found.and_then(Value::as_str), Some(message.as_str()));
    }

    #[test]
    fn extracted_tokens_have_no_whitespace_or_control_characters(
        authorization in prop::option::of(authorization_value()),
        query in any::<String>(),
        cookie in any::<String>(),
    ) {
        let mut request = Request::default();
        request.headers.push((":path".into(), format!("/api?access_token={query}")));
        request.headers.push(("cookie".into(), format!("a=b; session={cookie}")));
        if let Some(value) = authorization {
            request.headers.push(("authorization".into(), value));
        }
        let raw = format!("/api?access_token={query}");
        if let Ok(found) = all_sources().extract(&request, &Target::parse(&raw)) {
            prop_assert!(!found.token.is_empty());
            prop_assert!(
                !found.token.chars().any(|c| c.is_whitespace() || c.is_control()),
                "{:?}", found.token
            );
        }
    }
}

#[test]
fn the_lenient_backend_model_sees_known_traversals() {
    assert_eq!(backend_path("/public/..;/admin").as_deref(), Some("/admin"));
    assert_eq!(
        backend_path("/public/%252e%252e/admin").as_deref(),
        Some("/admin")
    );
    assert_eq!(
        backend_path("/public/..%5cadmin").as_deref(),
        Some("/admin")
    );
    assert_eq!(
        backend_path("/public/a%3Fb").as_deref(),
        Some("/public/a?b")
    );
}
