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

use std::borrow::Cow;
use url::form_urlencoded;

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

    /// The decoded value of the first query parameter whose decoded name is `name`
    /// (`application/x-www-form-urlencoded`, WHATWG URL §5.1: `+` is a space, `%XX` a byte, a
    /// `%` without two hex digits stays as it is, bytes that are not UTF-8 become U+FFFD).
    pub fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query?.as_bytes())
            .find(|(decoded, _)| decoded == name)
            .map(|(_, value)| value.into_owned())
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

/// The decoded name of one non-empty `name=value` query pair, decoded as in
/// [`Target::query_param`].
fn decoded_name(pair: &str) -> Cow<'_, str> {
    form_urlencoded::parse(pair.as_bytes())
        .next()
        .map(|(name, _)| name)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_form_decoded() {
        for (raw, decoded) in [
            ("plain", "plain"),
            ("a+b", "a b"),
            ("a%20b", "a b"),
            ("%41%42", "AB"),
            ("%4", "%4"),
            ("%zz", "%zz"),
            ("100%", "100%"),
            ("%e2%82%ac", "€"),
            ("x%3D", "x="),
            ("+%2B+", " + "),
            ("%ff", "\u{FFFD}"),
        ] {
            let query = format!("/p?{raw}={raw}");
            let target = Target::parse(&query);
            assert_eq!(
                target.query_param(decoded).as_deref(),
                Some(decoded),
                "{raw}"
            );
            assert_eq!(decoded_name(&format!("{raw}=v")), decoded, "{raw}");
            assert_eq!(target.without_query_param(decoded), "/p", "{raw}");
        }
        assert_eq!(
            Target::parse("/p?&&t&t=2").query_param("t").as_deref(),
            Some(""),
            "a name without `=` has the empty value; empty pairs are skipped"
        );
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
