//! The oracle of fuzz target `path`: `ignore::normalize` and `IgnoreList::ignores`.
//!
//! Input: line 1 is the raw `:path`, later lines are `ignoreUrls` patterns (a default list when
//! none parses). Invariants: a normalised path starts with `/`, has no `//`, no `.`/`..` segment,
//! no query or fragment, and is stable under `normalize`; an ignored path stays under a pattern
//! even for a backend that percent-decodes it once and drops `;` parameters (no bypass).

use crate::harness::lines;
use crate::percent::percent_decode;
use easy_jwt::core::ignore::{normalize, IgnoreList, Pattern};
use easy_jwt::core::target::Target;

const DEFAULT_PATTERNS: [&str; 4] = ["/health", "/public/*", "/v1/*/status", "/"];

pub fn check(data: &[u8]) {
    let lines = lines(data);
    let Some((raw, rest)) = lines.split_first() else {
        return;
    };
    let mut patterns: Vec<Pattern> = rest.iter().filter_map(|p| Pattern::parse(p).ok()).collect();
    if patterns.is_empty() {
        patterns = DEFAULT_PATTERNS
            .iter()
            .filter_map(|p| Pattern::parse(p).ok())
            .collect();
    }
    let normalized = normalize(raw);
    if let Ok(path) = &normalized {
        check_normal_form(path);
    }
    let list = IgnoreList::new(patterns.clone());
    if list.ignores(&Target::parse(raw)) {
        let path = normalized.expect("an ignored path normalises");
        let seen = backend_view(&path).expect("an ignored path stays below the root for a backend");
        assert!(
            patterns.iter().any(|p| p.matches(&seen)),
            "bypass: {raw:?} is ignored but a decoding backend serves {seen:?}"
        );
    }
}

fn check_normal_form(path: &str) {
    assert!(path.starts_with('/'), "{path:?}");
    assert!(!path.contains("//"), "{path:?}");
    assert!(!path.contains(['?', '#', '\\']), "{path:?}");
    for segment in path.split('/') {
        assert!(segment != "." && segment != "..", "dot segment in {path:?}");
    }
    assert_eq!(
        normalize(path).as_deref(),
        Ok(path),
        "normalize is not stable"
    );
}

/// What a lenient backend makes of a normalised path: it decodes each segment once and drops
/// `;` parameters before resolving dot segments. Segments keep their normalised spelling so the
/// patterns (normalised the same way) can be compared. `None`: `..` above the root.
fn backend_view(path: &str) -> Option<String> {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        let decoded = percent_decode(segment);
        let bare = decoded.split(';').next().unwrap_or_default();
        match bare {
            "." => {}
            ".." => {
                segments.pop()?;
            }
            _ => segments.push(segment),
        }
    }
    let mut out: String = segments.iter().map(|s| format!("/{s}")).collect();
    if out.is_empty() || (path.len() > 1 && path.ends_with('/')) {
        out.push('/');
    }
    Some(out)
}
