//! The request target (`:path`), split once per request into path, query and fragment; the
//! ignore matcher, token extraction and token stripping all read this one split, so they can
//! never disagree on where the query ends.
//!
//! `path` runs to the first `?` or `#`; `query` from that `?` to the next `#`; `fragment` is what
//! follows the first `#` that ends the path or the query. A `#` has no business in `:path`
//! (clients never send a fragment, and Envoy rejects such a request by default), but if a gateway
//! lets one through: the fragment is never read for a token (a `?` inside it does not start a
//! query), and whenever the plugin rewrites `:path` (stripping a query token) the fragment is
//! dropped, so no copy of the token can survive in the forwarded request.

use crate::core::bytes::hex_value;
use alloc::borrow::Cow;
use alloc::{string::String, string::ToString, vec::Vec};
/// A `:path` split into its parts (borrowed from the header value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// Up to the first `?` or `#`.
    pub path: &'a str,
    /// Between the `?` that ends the path and the next `#`, without either.
    pub query: Option<&'a str>,
    /// After the first `#`, without it.
    pub fragment: Option<&'a str>,
}

impl<'a> Target<'a> {
    pub fn parse(raw: &'a str) -> Target<'a> {
        // One byte scan for the first `?` or `#` (both ASCII: the cuts are char boundaries).
        let Some(cut) = raw.bytes().position(|b| b == b'?' || b == b'#') else {
            return Target {
                path: raw,
                query: None,
                fragment: None,
            };
        };
        let path = raw.get(..cut).unwrap_or(raw);
        let rest = raw.get(cut + 1..).unwrap_or("");
        if raw.as_bytes().get(cut) == Some(&b'#') {
            return Target {
                path,
                query: None,
                fragment: Some(rest),
            };
        }
        let (query, fragment) = match rest.split_once('#') {
            Some((query, fragment)) => (query, Some(fragment)),
            None => (rest, None),
        };
        Target {
            path,
            query: Some(query),
            fragment,
        }
    }

    /// The decoded value of the first query parameter whose decoded name is `name`.
    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query?
            .split('&')
            .filter(|pair| !pair.is_empty())
            .find(|pair| decoded_name(pair) == name)
            .map(|pair| match pair.split_once('=') {
                Some((_, value)) => form_decode(value).into_owned(),
                None => String::new(),
            })
    }

    /// The target without any `name` parameter (others keep their raw encoding) and without
    /// the fragment: what goes upstream once a query token is stripped.
    pub fn without_query_param(&self, name: &str) -> String {
        let mut out = self.path.to_string();
        let kept = self
            .query
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty() && decoded_name(pair) != name);
        for (index, pair) in kept.enumerate() {
            out.push(if index == 0 { '?' } else { '&' });
            out.push_str(pair);
        }
        out
    }
}

/// The decoded name of one `name=value` query pair.
fn decoded_name(pair: &str) -> Cow<'_, str> {
    form_decode(pair.split('=').next().unwrap_or(pair))
}

/// `application/x-www-form-urlencoded` decoding (WHATWG URL §5.1), as browsers and the `url`
/// crate do it: `+` is a space, `%XX` a byte (a `%` without two hex digits stays as it is).
/// Borrowed when there is nothing to decode. Where the decoded bytes are not UTF-8 the whole
/// result is one U+FFFD (the URL standard replaces each bad sequence): such a value is never a
/// token (tokens are printable ASCII) nor a configured parameter name, which is all that matters
/// here, and the plugin carries no lossy UTF-8 decoder for it.
fn form_decode(raw: &str) -> Cow<'_, str> {
    if !raw.bytes().any(|b| b == b'+' || b == b'%') {
        return Cow::Borrowed(raw);
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        let escaped = match byte {
            b'%' => bytes
                .get(i + 1)
                .copied()
                .and_then(hex_value)
                .zip(bytes.get(i + 2).copied().and_then(hex_value)),
            _ => None,
        };
        match (byte, escaped) {
            (_, Some((hi, lo))) => {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (other, None) => out.push(other),
        }
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(text) => Cow::Owned(text),
        Err(_) => Cow::Borrowed("\u{FFFD}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_agrees_with_the_url_crate() {
        for raw in [
            "plain",
            "a+b",
            "a%20b",
            "%41%42",
            "%4",
            "%zz",
            "100%",
            "%",
            "%e2%82%ac",
            "x%3D",
            "+%2B+",
            "é%C3%A9",
        ] {
            let theirs: String = url::form_urlencoded::parse(format!("{raw}=").as_bytes())
                .next()
                .map(|(name, _)| name.into_owned())
                .unwrap_or_default();
            assert_eq!(form_decode(raw), theirs, "{raw}");
        }
        for not_utf8 in ["%ff%fe", "a%E2%82", "%C3"] {
            assert_eq!(form_decode(not_utf8), "\u{FFFD}", "{not_utf8}");
        }
    }

    #[test]
    fn splits_path_query_and_fragment() {
        let parts = |raw| {
            let t = Target::parse(raw);
            (t.path, t.query, t.fragment)
        };
        assert_eq!(parts("/a"), ("/a", None, None));
        assert_eq!(parts("/a?b=1&c"), ("/a", Some("b=1&c"), None));
        assert_eq!(parts("/a?b#c?d"), ("/a", Some("b"), Some("c?d")));
        assert_eq!(parts("/a#b?c=1"), ("/a", None, Some("b?c=1")));
        assert_eq!(parts("/a?"), ("/a", Some(""), None));
        assert_eq!(parts(""), ("", None, None));
    }

    #[test]
    fn a_question_mark_in_the_fragment_starts_no_query() {
        let target = Target::parse("/a#x?access_token=q");
        assert_eq!(target.query_param("access_token"), None);
    }

    #[test]
    fn query_params_are_decoded() {
        let target = Target::parse("/a?x=1&access%5Ftoken=a%2Bb+c&access_token=second");
        assert_eq!(target.query_param("access_token").as_deref(), Some("a+b c"));
        assert_eq!(target.query_param("missing"), None);
    }

    #[test]
    fn stripping_removes_every_copy_and_the_fragment() {
        let target = Target::parse("/a?x=%41&access_token=q&access%5Ftoken=r&y#f?access_token=q");
        assert_eq!(target.without_query_param("access_token"), "/a?x=%41&y");
        assert_eq!(
            Target::parse("/a?access_token=q").without_query_param("access_token"),
            "/a"
        );
        assert_eq!(
            Target::parse("/a?b=1#frag").without_query_param("access_token"),
            "/a?b=1"
        );
    }

    /// `make fuzz` crash `fuzz/artifacts/token/crash-159851f6…`: extraction read the query up to
    /// the first `#`, stripping kept the fragment, and the fragment held another `?access_token=`.
    #[test]
    fn the_fragment_crash_leaves_no_token_behind() {
        let raw = "/a?access_token=q#x\0a?access_token=q#";
        let target = Target::parse(raw);
        assert_eq!(target.query_param("access_token").as_deref(), Some("q"));
        let stripped = target.without_query_param("access_token");
        assert_eq!(stripped, "/a");
        assert_eq!(Target::parse(&stripped).query_param("access_token"), None);
    }
}
