//! The request as the core sees it: a read-only view (headers, properties) and the header edits the
//! core asks the adapter to apply.

use alloc::string::String;
use alloc::sync::Arc;

/// Read access to the request, implemented over hostcalls by the adapter and over plain data by
/// the tests. Names are lowercase; a missing or non-UTF-8 value is `None`.
pub trait RequestView {
    /// First value of a request header (Envoy returns the first of repeated headers).
    fn header(&self, name: &str) -> Option<&str>;
    /// What the gateway knows about the stream besides its headers. Gateways spell these
    /// differently (upstream Envoy `xds.route_name`, Higress also `route_name`): the adapter
    /// knows the spellings, the core only names the attribute.
    fn attribute(&self, attribute: Attribute) -> Option<String>;
}

/// A stream attribute `_rules_` match on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attribute {
    /// The name of the route the request matched (`_match_route_`, `_match_route_prefix_`).
    RouteName,
    /// The name of the upstream cluster the route picked (`_match_service_`).
    ClusterName,
}

impl Attribute {
    /// Every attribute, for diagnostics.
    pub const ALL: [Attribute; 2] = [Attribute::RouteName, Attribute::ClusterName];
}

/// One change to the request headers, applied before the request continues upstream. Names and
/// values are shared strings: an edit made from the configuration (the uid header, the
/// anonymous uid) costs a reference count, not an allocation per request (`Arc`, so a
/// configuration stays `Sync`; the wasm build has no threads, its counts are plain adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Replace every entry of the header with one value (Envoy `replace`).
    Set(Arc<str>, Arc<str>),
    /// Remove every entry of the header.
    Remove(Arc<str>),
}

#[cfg(test)]
pub mod fake {
    //! A request made of plain data, for unit tests of the core.
    use super::{Attribute, RequestView};

    #[derive(Debug, Default, Clone)]
    pub struct FakeRequest {
        pub headers: Vec<(String, String)>,
        pub attributes: Vec<(Attribute, String)>,
    }

    impl FakeRequest {
        pub fn get(path: &str) -> FakeRequest {
            FakeRequest::default()
                .with(":method", "GET")
                .with(":path", path)
                .with(":authority", "example.com")
        }

        /// Sets a header, replacing an earlier entry of the same name.
        pub fn with(mut self, name: &str, value: &str) -> FakeRequest {
            self.headers
                .retain(|(key, _)| !key.eq_ignore_ascii_case(name));
            self.headers.push((name.to_string(), value.to_string()));
            self
        }

        pub fn attr(mut self, attribute: Attribute, value: &str) -> FakeRequest {
            self.attributes.push((attribute, value.to_string()));
            self
        }
    }

    impl RequestView for FakeRequest {
        fn header(&self, name: &str) -> Option<&str> {
            self.headers
                .iter()
                .find(|(key, _)| key.eq_ignore_ascii_case(name))
                .map(|(_, value)| value.as_str())
        }

        fn attribute(&self, attribute: Attribute) -> Option<String> {
            self.attributes
                .iter()
                .find(|(key, _)| *key == attribute)
                .map(|(_, value)| value.clone())
        }
    }
}
