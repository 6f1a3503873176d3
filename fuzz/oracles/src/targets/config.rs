//! The oracle of fuzz target `config`: `RuleSet::parse` on arbitrary bytes (global keys and `_rules_`). A parsed
//! configuration must be within its documented ranges and usable for a request.

use crate::harness::FuzzRequest;
use easy_jwt::core::config::is_header_name;
use easy_jwt::core::route_rules::RuleSet;

pub fn check(data: &[u8]) {
    let parsed = match RuleSet::parse(data) {
        Ok(parsed) => parsed,
        Err(error) => {
            assert!(!error.to_string().is_empty());
            return;
        }
    };
    for config in parsed.rules.configs() {
        assert!((400..=599).contains(&config.deny_status));
        assert!((400..=599).contains(&config.failure_status));
        assert!(is_header_name(&config.uid_header));
        assert!(is_header_name(&config.sources.header));
        assert!(config.token_server.path.starts_with('/'));
        assert!(!config.token_server.cluster.is_empty());
        assert!(config.anonymous_uid.bytes().all(|b| b.is_ascii_digit()));
        let _ = config.error_body.render("probe \"message\"");
    }
    let mut request = FuzzRequest::default();
    request.add(":path", "/");
    request.add(":authority", "api.example.com:8080");
    request
        .properties
        .push(("route_name".into(), "ns/route".into()));
    request
        .properties
        .push(("cluster_name".into(), "outbound|80||svc.dns".into()));
    if parsed.rules.select(&request).is_none() {
        assert!(
            !parsed.rules.has_global(),
            "a global config applies to every request"
        );
    }
}
