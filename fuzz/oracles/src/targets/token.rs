//! The oracle of fuzz target `token`: `TokenSources::extract` and `strip_edits` on arbitrary
//! header, query and cookie values.
//!
//! Input: byte 1 holds flags (bit 0 header present, 1 strip, 2 query source, 3 cookie source,
//! 4 custom prefix), then lines: header value, `:path`, `cookie` header, prefix. Invariants: a
//! token is non-empty, at most 8 KiB, without whitespace or control characters; after the strip
//! edits the same source no longer yields a token, and a rewritten `:path` carries no fragment
//! (where a second copy could hide); redaction never shows the whole token.

use crate::harness::{lines, FuzzRequest};
use easy_jwt::core::request::HeaderEdit;
use easy_jwt::core::request::RequestView;
use easy_jwt::core::target::Target;
use easy_jwt::core::token::{redact, Extracted, Source, TokenError, TokenSources, MAX_TOKEN_LEN};

/// Extraction as the auth flow does it: the request's `:path` parsed once.
fn extract<'a>(
    sources: &TokenSources,
    request: &'a FuzzRequest,
) -> Result<Extracted<'a>, TokenError> {
    let raw = request.header(":path").unwrap_or_default();
    sources.extract(request, &Target::parse(raw))
}

fn strip_edits(sources: &TokenSources, source: Source, request: &FuzzRequest) -> Vec<HeaderEdit> {
    let raw = request.header(":path").unwrap_or_default();
    sources.strip_edits(source, request, &Target::parse(raw))
}

pub fn check(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let lines = lines(rest);
    let line = |i: usize| lines.get(i).map(String::as_str).unwrap_or_default();
    let sources = TokenSources {
        header: "authorization".into(),
        prefix: if flags & 16 != 0 {
            line(3).to_string()
        } else {
            "Bearer ".into()
        },
        query: (flags & 4 != 0).then(|| "access_token".into()),
        cookie: (flags & 8 != 0).then(|| "session".into()),
        strip: flags & 2 != 0,
    };
    let mut request = FuzzRequest::default();
    request.add(":path", line(1));
    request.add("cookie", line(2));
    if flags & 1 != 0 {
        request.add("authorization", line(0));
    }
    let Ok(found) = extract(&sources, &request) else {
        return;
    };
    let (token, source) = (found.token.into_owned(), found.source);
    let token = &token;
    assert!(!token.is_empty() && token.len() <= MAX_TOKEN_LEN);
    assert!(
        !token.chars().any(|c| c.is_whitespace() || c.is_control()),
        "{token:?}"
    );
    if token.chars().count() > 6 {
        assert!(!redact(token).contains(token.as_str()));
    }
    let edits = strip_edits(&sources, source, &request);
    if !sources.strip {
        assert!(edits.is_empty());
        return;
    }
    request.apply(&edits);
    if source == Source::Header {
        assert!(request.all("authorization").is_empty());
    }
    if source == Source::Query {
        let path = request.header(":path").unwrap_or_default();
        assert!(
            !path.contains('#'),
            "the fragment survived stripping: {path:?}"
        );
    }
    if let Ok(again) = extract(&sources, &request) {
        assert_ne!(
            again.source, source,
            "token left in the request: {request:?}"
        );
    }
}
