//! Shared helpers of the fuzz targets: a plain-data request, input splitting, and the invariants
//! every decision must keep (valid JSON error bodies, header values without control characters).

use easy_jwt::core::auth::Decision;
use easy_jwt::core::config::Config;
use easy_jwt::core::request::{Attribute, HeaderEdit, RequestView};

/// A request made of plain data (lowercase header names, first value wins like Envoy).
#[derive(Debug, Default, Clone)]
pub struct FuzzRequest {
    pub headers: Vec<(String, String)>,
    /// Stream attributes by their legacy property name (`route_name`, `cluster_name`).
    pub properties: Vec<(String, String)>,
}

impl FuzzRequest {
    pub fn add(&mut self, name: &str, value: &str) {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// Applies the edits the adapter would apply (Envoy `replace` / remove-all).
    pub fn apply(&mut self, edits: &[HeaderEdit]) {
        for edit in edits {
            match edit {
                HeaderEdit::Set(name, value) => {
                    self.headers.retain(|(key, _)| **key != **name);
                    self.headers.push((name.to_string(), value.to_string()));
                }
                HeaderEdit::Remove(name) => self.headers.retain(|(key, _)| **key != **name),
            }
        }
    }

    /// Every value of a header.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
            .collect()
    }
}

impl RequestView for FuzzRequest {
    fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.as_str())
    }

    fn attribute(&self, attribute: Attribute) -> Option<String> {
        let name = match attribute {
            Attribute::RouteName => "route_name",
            Attribute::ClusterName => "cluster_name",
        };
        self.properties
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

/// The input as text lines (lossy UTF-8: the adapter never hands the core invalid UTF-8).
pub fn lines(data: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(data)
        .split('\n')
        .map(str::to_string)
        .collect()
}

/// A compiled configuration from a JSON literal of the fuzz harness (always valid).
pub fn config(json: &str) -> Config {
    let parsed = easy_jwt::core::route_rules::RuleSet::parse(json.as_bytes())
        .expect("harness config is valid");
    let config = parsed.rules.configs().next().expect("one config");
    Config::clone(config)
}

/// Invariants of any decision: error bodies are JSON when `json_template`, refusals use a
/// configured status, every header value the plugin makes up is free of control characters.
pub fn check_decision(config: &Config, decision: &Decision, json_template: bool) {
    match decision {
        Decision::Reply { reply, .. } => {
            assert!(
                reply.status == config.deny_status || reply.status == config.failure_status,
                "status {} not configured",
                reply.status
            );
            if json_template {
                let body: serde_json::Value = serde_json::from_slice(&reply.body)
                    .unwrap_or_else(|e| panic!("reply body is not JSON: {e}: {:?}", reply.body));
                assert!(body.is_object(), "reply body is not an object");
            }
        }
        Decision::Continue { edits, .. } => {
            assert!(
                matches!(edits.first(), Some(HeaderEdit::Set(n, _) | HeaderEdit::Remove(n)) if **n == *config.uid_header),
                "the uid header is always replaced first: {edits:?}"
            );
            for edit in edits {
                // Strip edits (`:path`, `cookie`) carry the client's own bytes back.
                if let HeaderEdit::Set(name, value) = edit {
                    if &**name == ":path" || &**name == "cookie" {
                        continue;
                    }
                    assert!(
                        !value.chars().any(char::is_control),
                        "control character in {name}: {value:?}"
                    );
                }
            }
        }
    }
}
