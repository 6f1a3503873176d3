//! Higress `matchRules`: the whole configuration document (global keys plus `_rules_`), and the
//! choice of the configuration that applies to a request.
//!
//! Higress delivers a WasmPlugin as `{<defaultConfig keys>, "_rules_": [{<rule keys>,
//! "_match_route_": [...]}, ...]}`. Here:
//! - a rule's keys override the global keys, so a rule need not repeat them;
//! - a rule holds one or more of `_match_route_` (route name equals), `_match_route_prefix_`
//!   (route name starts with), `_match_domain_` (`:authority` without port, lowercase: exact,
//!   `*.suffix`, `prefix*`, `*`) and `_match_service_` (`fqdn` or `fqdn:port` of the
//!   `outbound|port|subset|fqdn` cluster name); with several, all must match;
//! - rules are tried in order and the first match wins; then the global configuration; with no
//!   global configuration (no keys besides `_rules_`, or keys without a token server that serve as
//!   defaults for the rules) an unmatched request passes untouched.

use crate::core::config::{string_array, Config, ConfigError, Fields, Map, Problem};
use crate::core::request::{Attribute, RequestView};
use crate::core::strict;
use serde_json::Value;
use std::rc::Rc;

pub const RULES_KEY: &str = "_rules_";
const MATCH_ROUTE: &str = "_match_route_";
const MATCH_ROUTE_PREFIX: &str = "_match_route_prefix_";
const MATCH_DOMAIN: &str = "_match_domain_";
const MATCH_SERVICE: &str = "_match_service_";

/// One match condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Condition {
    Route(Vec<String>),
    RoutePrefix(Vec<String>),
    Domain(Vec<String>),
    Service(Vec<String>),
}

#[derive(Debug, Clone)]
struct Rule {
    conditions: Vec<Condition>,
    config: Rc<Config>,
}

/// Every configuration of the plugin and how to pick one per request.
#[derive(Debug, Clone)]
pub struct RuleSet {
    global: Option<Rc<Config>>,
    rules: Vec<Rule>,
}

/// A parsed document plus the warnings worth one log line each.
#[derive(Debug)]
pub struct Parsed {
    pub rules: RuleSet,
    pub warnings: Vec<String>,
}

impl RuleSet {
    /// Parses and validates the whole configuration document; nothing is half-applied. A member
    /// named twice anywhere in it is refused ([`strict`]).
    pub fn parse(bytes: &[u8]) -> Result<Parsed, ConfigError> {
        if bytes.is_empty() {
            return Err(ConfigError::Empty);
        }
        let document = strict::from_slice(bytes).map_err(|e| ConfigError::Syntax(e.to_string()))?;
        let Value::Object(top) = document else {
            return Err(ConfigError::NotAnObject);
        };
        let rule_objects = rule_objects(&top)?;
        let has_global = top.keys().any(|key| key != RULES_KEY);
        if !has_global && rule_objects.is_empty() {
            return Err(ConfigError::NothingConfigured);
        }
        let mut warnings = Fields::global(&top)
            .unknown_keys()
            .into_iter()
            .map(unknown_key_warning)
            .collect::<Vec<_>>();
        let global = parse_global(&top, has_global, !rule_objects.is_empty(), &mut warnings)?;
        let mut rules = Vec::with_capacity(rule_objects.len());
        for (index, object) in rule_objects.into_iter().enumerate() {
            let fields = Fields::rule(&top, index, object);
            warnings.extend(fields.unknown_keys().into_iter().map(unknown_key_warning));
            rules.push(Rule {
                conditions: parse_conditions(index, object)?,
                config: Rc::new(Config::parse(&fields)?),
            });
        }
        Ok(Parsed {
            rules: RuleSet { global, rules },
            warnings,
        })
    }

    /// The configuration for this request, or `None` when the plugin must stay out of it.
    pub fn select(&self, request: &impl RequestView) -> Option<&Rc<Config>> {
        self.rules
            .iter()
            .find(|rule| rule.conditions.iter().all(|c| c.matches(request)))
            .map(|rule| &rule.config)
            .or(self.global.as_ref())
    }

    /// Number of `_rules_` entries (for the configure log line).
    pub fn rule_count(&self) -> usize {
        self.rules.len()
    }

    /// Whether a global configuration applies to unmatched requests.
    pub fn has_global(&self) -> bool {
        self.global.is_some()
    }

    /// The rules that match on `attribute`, as `_rules_[i]` for a log line: they can never match
    /// on a gateway that does not serve it.
    pub fn rules_using(&self, attribute: Attribute) -> Vec<String> {
        self.rules
            .iter()
            .enumerate()
            .filter(|(_, rule)| {
                rule.conditions
                    .iter()
                    .any(|c| c.attribute() == Some(attribute))
            })
            .map(|(index, _)| format!("{RULES_KEY}[{index}]"))
            .collect()
    }

    /// Every configuration, global first (for configure-time setup such as metrics).
    pub fn configs(&self) -> impl Iterator<Item = &Rc<Config>> {
        self.global
            .iter()
            .chain(self.rules.iter().map(|rule| &rule.config))
    }
}

fn unknown_key_warning(key: String) -> String {
    format!("configuration key `{key}` is unknown and ignored (check its spelling)")
}

fn rule_objects(top: &Map) -> Result<Vec<&Map>, ConfigError> {
    let Some(value) = top.get(RULES_KEY) else {
        return Ok(Vec::new());
    };
    let not_array = || ConfigError::Key {
        key: RULES_KEY.into(),
        problem: Problem::WrongType("an array of objects"),
    };
    let array = value.as_array().ok_or_else(not_array)?;
    array
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            rule.as_object().ok_or_else(|| ConfigError::Key {
                key: format!("{RULES_KEY}[{index}]"),
                problem: Problem::WrongType("an object"),
            })
        })
        .collect()
}

fn parse_global(
    top: &Map,
    has_global: bool,
    has_rules: bool,
    warnings: &mut Vec<String>,
) -> Result<Option<Rc<Config>>, ConfigError> {
    if !has_global {
        return Ok(None);
    }
    match Config::parse(&Fields::global(top)) {
        Ok(config) => Ok(Some(Rc::new(config))),
        Err(error) if has_rules && Config::is_missing_token_server(&error) => {
            warnings.push(
                "global keys have no token server: they are defaults for `_rules_`, and requests no rule matches pass untouched"
                    .into(),
            );
            Ok(None)
        }
        Err(error) => Err(error),
    }
}

fn parse_conditions(index: usize, rule: &Map) -> Result<Vec<Condition>, ConfigError> {
    let mut conditions = Vec::new();
    for (key, make) in [
        (
            MATCH_ROUTE,
            Condition::Route as fn(Vec<String>) -> Condition,
        ),
        (MATCH_ROUTE_PREFIX, Condition::RoutePrefix),
        (MATCH_DOMAIN, Condition::Domain),
        (MATCH_SERVICE, Condition::Service),
    ] {
        if let Some(value) = rule.get(key) {
            conditions.push(make(match_values(index, key, value)?));
        }
    }
    if conditions.is_empty() {
        return Err(ConfigError::Key {
            key: format!("{RULES_KEY}[{index}]"),
            problem: Problem::Invalid(format!(
                "needs one of `{MATCH_ROUTE}`, `{MATCH_ROUTE_PREFIX}`, `{MATCH_DOMAIN}`, `{MATCH_SERVICE}`"
            )),
        });
    }
    Ok(conditions)
}

fn match_values(index: usize, key: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
    let error = || ConfigError::Key {
        key: format!("{RULES_KEY}[{index}].{key}"),
        problem: Problem::WrongType("a non-empty array of non-empty strings"),
    };
    let values = string_array(value).ok_or_else(error)?;
    if values.is_empty() || values.iter().any(String::is_empty) {
        return Err(error());
    }
    if key == MATCH_DOMAIN {
        return Ok(values.iter().map(|v| v.to_ascii_lowercase()).collect());
    }
    Ok(values)
}

impl Condition {
    /// The stream attribute this condition reads (`None`: it reads a header).
    fn attribute(&self) -> Option<Attribute> {
        match self {
            Condition::Route(_) | Condition::RoutePrefix(_) => Some(Attribute::RouteName),
            Condition::Service(_) => Some(Attribute::ClusterName),
            Condition::Domain(_) => None,
        }
    }

    fn matches(&self, request: &impl RequestView) -> bool {
        match self {
            Condition::Route(names) => request
                .attribute(Attribute::RouteName)
                .is_some_and(|route| names.contains(&route)),
            Condition::RoutePrefix(prefixes) => request
                .attribute(Attribute::RouteName)
                .is_some_and(|route| prefixes.iter().any(|p| route.starts_with(p.as_str()))),
            Condition::Domain(patterns) => request.header(":authority").is_some_and(|authority| {
                let host = host_without_port(authority).to_ascii_lowercase();
                patterns
                    .iter()
                    .any(|pattern| domain_matches(pattern, &host))
            }),
            Condition::Service(services) => request
                .attribute(Attribute::ClusterName)
                .is_some_and(|cluster| services.iter().any(|s| service_matches(s, &cluster))),
        }
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` → the host part.
fn host_without_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority.split_inclusive(']').next().unwrap_or(authority);
    }
    match authority.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => authority,
    }
}

fn domain_matches(pattern: &str, host: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix('*') {
        return host.ends_with(suffix);
    }
    if let Some(prefix) = pattern.strip_suffix('*') {
        return host.starts_with(prefix);
    }
    pattern == host
}

/// `fqdn` or `fqdn:port` against `outbound|<port>|<subset>|<fqdn>`.
fn service_matches(service: &str, cluster_name: &str) -> bool {
    let parts: Vec<&str> = cluster_name.split('|').collect();
    let [_, port, _, fqdn] = parts.as_slice() else {
        return false;
    };
    match service.rsplit_once(':') {
        Some((name, wanted_port)) => name == *fqdn && wanted_port == *port,
        None => service == *fqdn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::request::fake::FakeRequest;
    use serde_json::{json, Value};

    fn parse(value: Value) -> Result<Parsed, ConfigError> {
        RuleSet::parse(value.to_string().as_bytes())
    }

    fn uid_header_for(rules: &RuleSet, request: &FakeRequest) -> Option<String> {
        rules
            .select(request)
            .map(|config| config.uid_header.clone())
    }

    #[test]
    fn empty_and_malformed_documents_are_rejected() {
        assert_eq!(RuleSet::parse(b"").unwrap_err(), ConfigError::Empty);
        assert!(matches!(
            RuleSet::parse(b"{").unwrap_err(),
            ConfigError::Syntax(_)
        ));
        assert_eq!(RuleSet::parse(b"[]").unwrap_err(), ConfigError::NotAnObject);
        let twice =
            b"{\"tokenServerFQDN\": \"a\",\n \"tokenServerPort\": 1,\n \"tokenServerPort\": 2}";
        assert_eq!(
            RuleSet::parse(twice).unwrap_err().to_string(),
            "configuration is not valid JSON: duplicate key `tokenServerPort` at line 3 column 18",
            "README's example"
        );
        assert_eq!(
            RuleSet::parse(b"{}").unwrap_err(),
            ConfigError::NothingConfigured
        );
        assert_eq!(
            parse(json!({"_rules_": []})).unwrap_err(),
            ConfigError::NothingConfigured
        );
    }

    fn syntax_error(text: &str) -> String {
        match RuleSet::parse(text.as_bytes()) {
            Err(ConfigError::Syntax(why)) => why,
            other => panic!("{text}: expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn a_key_named_twice_is_refused_with_its_path_line_and_column() {
        // Top level.
        assert_eq!(
            syntax_error(r#"{"tokenServerFQDN":"a","tokenServerPort":1,"tokenServerFQDN":"b"}"#),
            "duplicate key `tokenServerFQDN` at line 1 column 60"
        );
        // In a `_rules_` entry, on the second line.
        assert_eq!(
            syntax_error(
                "{\"_rules_\":[{\"_match_route_\":[\"r\"]},\n {\"_match_route_\":[\"s\"],\"tokenServerPort\":1,\"tokenServerPort\":2}]}"
            ),
            "duplicate key `_rules_[1].tokenServerPort` at line 2 column 61"
        );
        // In nested objects: `tokenService`, the `authResponseHeaders` map.
        assert_eq!(
            syntax_error(
                r#"{"tokenService":{"type":"static","serviceName":"a","port":1,"port":2}}"#
            ),
            "duplicate key `tokenService.port` at line 1 column 66"
        );
        assert_eq!(
            syntax_error(
                r#"{"tokenServerCluster":"c","authResponseHeaders":{"role":"x-a","role":"x-b"}}"#
            ),
            "duplicate key `authResponseHeaders.role` at line 1 column 68"
        );
        assert_eq!(
            syntax_error(
                r#"{"_rules_":[{"_match_route_":["r"],"tokenServerCluster":"c","authResponseHeaders":{"n":"x-a","n":"x-b"}}]}"#
            ),
            "duplicate key `_rules_[0].authResponseHeaders.n` at line 1 column 96"
        );
        // The same key in different scopes is no duplicate.
        assert!(RuleSet::parse(
            br#"{"tokenServerCluster":"c","_rules_":[{"_match_route_":["r"],"tokenServerCluster":"d"}]}"#
        )
        .is_ok());
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        assert_eq!(
            RuleSet::parse(b"{\"tokenServerCluster\": \"c\",\n \"uidHeaderName\": x}")
                .unwrap_err()
                .to_string(),
            "configuration is not valid JSON: expected value at line 2 column 19"
        );
        assert_eq!(
            syntax_error("{\"a\": 1} {"),
            "trailing characters at line 1 column 10"
        );
    }

    #[test]
    fn value_errors_name_the_key() {
        let message = |text: &str| RuleSet::parse(text.as_bytes()).unwrap_err().to_string();
        assert_eq!(
            message(
                r#"{"tokenServerCluster":"c","_rules_":[{"_match_route_":["r"]},{"_match_route_":["s"],"tokenServerTimeoutMs":0}]}"#
            ),
            "configuration key `_rules_[1].tokenServerTimeoutMs` must be in 1..=600000"
        );
        assert_eq!(
            message(r#"{"tokenServerCluster":"c","authResponseHeaders":{"role":7}}"#),
            "configuration key `authResponseHeaders.role` must be a header name string"
        );
        assert_eq!(
            message(r#"{"tokenServerFQDN":"a","tokenServerPort":1.0}"#),
            "configuration key `tokenServerPort` must be a non-negative integer"
        );
        assert_eq!(
            message(r#"{"tokenServerFQDN":"a","tokenServerPort":18446744073709551616}"#),
            "configuration key `tokenServerPort` must be a non-negative integer"
        );
    }

    #[test]
    fn unknown_keys_warn_and_underscore_keys_are_silent() {
        let parsed = RuleSet::parse(
            br#"{"tokenServerCluster":"c","tokenServerFqdn":"x","_comment":"ok",
                "_rules_":[{"_match_route_":["r"],"uidHeader":"x"}]}"#,
        )
        .unwrap();
        assert_eq!(
            parsed.warnings,
            [
                "configuration key `tokenServerFqdn` is unknown and ignored (check its spelling)",
                "configuration key `_rules_[0].uidHeader` is unknown and ignored (check its spelling)"
            ]
        );
    }

    #[test]
    fn global_only() {
        let parsed = parse(json!({"tokenServerFQDN": "a.dns", "tokenServerPort": 1})).unwrap();
        assert!(parsed.rules.has_global());
        assert!(parsed.rules.select(&FakeRequest::get("/")).is_some());
        assert!(parsed.warnings.is_empty());
    }

    #[test]
    fn rules_inherit_and_override_global_keys() {
        let parsed = parse(json!({
            "tokenServerFQDN": "a.dns", "tokenServerPort": 1, "uidHeaderName": "x-global",
            "_rules_": [
                {"_match_route_": ["ns/ing-a"], "uidHeaderName": "x-rule-a"},
                {"_match_domain_": ["*.example.com"], "tokenServerCluster": "raw"},
                {"_match_service_": ["svc.dns:8080"], "uidHeaderName": "x-svc"}
            ]
        }))
        .unwrap();
        let rules = parsed.rules;
        let route_a = FakeRequest::get("/").attr(Attribute::RouteName, "ns/ing-a");
        assert_eq!(
            uid_header_for(&rules, &route_a).as_deref(),
            Some("x-rule-a")
        );
        let domain = FakeRequest::get("/").with(":authority", "api.EXAMPLE.com:8443");
        let config = rules.select(&domain).unwrap();
        assert_eq!(config.uid_header, "x-global");
        assert_eq!(config.token_server.cluster, "raw");
        let service = FakeRequest::get("/").attr(Attribute::ClusterName, "outbound|8080||svc.dns");
        assert_eq!(uid_header_for(&rules, &service).as_deref(), Some("x-svc"));
        let other_port = FakeRequest::get("/").attr(Attribute::ClusterName, "outbound|80||svc.dns");
        assert_eq!(
            uid_header_for(&rules, &other_port).as_deref(),
            Some("x-global")
        );
    }

    #[test]
    fn rules_using_names_the_rules_an_attribute_decides() {
        let parsed = parse(json!({
            "tokenServerFQDN": "a.dns", "tokenServerPort": 1,
            "_rules_": [
                {"_match_domain_": ["*"]},
                {"_match_route_": ["r"]},
                {"_match_service_": ["s.dns"], "_match_route_prefix_": ["ns/"]}
            ]
        }))
        .unwrap();
        assert_eq!(
            parsed.rules.rules_using(Attribute::RouteName),
            ["_rules_[1]", "_rules_[2]"]
        );
        assert_eq!(
            parsed.rules.rules_using(Attribute::ClusterName),
            ["_rules_[2]"]
        );
    }

    #[test]
    fn first_matching_rule_wins() {
        let parsed = parse(json!({
            "tokenServerFQDN": "a.dns", "tokenServerPort": 1,
            "_rules_": [
                {"_match_domain_": ["*"], "uidHeaderName": "x-first"},
                {"_match_route_": ["r"], "uidHeaderName": "x-second"}
            ]
        }))
        .unwrap();
        let request = FakeRequest::get("/").attr(Attribute::RouteName, "r");
        assert_eq!(
            uid_header_for(&parsed.rules, &request).as_deref(),
            Some("x-first")
        );
    }

    #[test]
    fn no_global_and_no_match_passes_untouched() {
        let parsed = parse(json!({
            "_rules_": [{"_match_route_": ["r"], "tokenServerFQDN": "a.dns", "tokenServerPort": 1}]
        }))
        .unwrap();
        assert!(!parsed.rules.has_global());
        assert!(parsed
            .rules
            .select(&FakeRequest::get("/").attr(Attribute::RouteName, "other"))
            .is_none());
        assert!(parsed.rules.select(&FakeRequest::get("/")).is_none());
        assert!(parsed
            .rules
            .select(&FakeRequest::get("/").attr(Attribute::RouteName, "r"))
            .is_some());
    }

    #[test]
    fn global_without_token_server_is_defaults_only() {
        let parsed = parse(json!({
            "responseErrorStatusCode": 403,
            "_rules_": [{"_match_route_prefix_": ["ns/"], "tokenServerFQDN": "a.dns", "tokenServerPort": 1}]
        }))
        .unwrap();
        assert!(!parsed.rules.has_global());
        assert_eq!(parsed.warnings.len(), 1);
        let config = parsed
            .rules
            .select(&FakeRequest::get("/").attr(Attribute::RouteName, "ns/x"))
            .unwrap();
        assert_eq!(config.deny_status, 403);
    }

    #[test]
    fn several_conditions_must_all_match() {
        let parsed = parse(json!({
            "_rules_": [{"_match_route_": ["r"], "_match_domain_": ["a.com"],
                         "tokenServerFQDN": "a.dns", "tokenServerPort": 1}]
        }))
        .unwrap();
        let both = FakeRequest::get("/")
            .attr(Attribute::RouteName, "r")
            .with(":authority", "a.com");
        let one = FakeRequest::get("/")
            .attr(Attribute::RouteName, "r")
            .with(":authority", "b.com");
        assert!(parsed.rules.select(&both).is_some());
        assert!(parsed.rules.select(&one).is_none());
    }

    #[test]
    fn rule_errors_name_the_rule_key() {
        let base = json!({"tokenServerFQDN": "a.dns", "tokenServerPort": 1});
        let with_rules = |rules: Value| {
            let mut doc = base.clone();
            doc["_rules_"] = rules;
            match parse(doc) {
                Err(ConfigError::Key { key, .. }) => key,
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(with_rules(json!({})), "_rules_");
        assert_eq!(with_rules(json!([1])), "_rules_[0]");
        assert_eq!(with_rules(json!([{"uidHeaderName": "x"}])), "_rules_[0]");
        assert_eq!(
            with_rules(json!([{"_match_route_": []}])),
            "_rules_[0]._match_route_"
        );
        assert_eq!(
            with_rules(json!([{"_match_route_": "r"}])),
            "_rules_[0]._match_route_"
        );
        assert_eq!(
            with_rules(
                json!([{"_match_route_": ["r"]}, {"_match_route_": ["s"], "tokenServerPort": 0}])
            ),
            "_rules_[1].tokenServerPort"
        );
    }

    #[test]
    fn invalid_global_is_rejected_even_with_rules() {
        let doc = json!({"responseErrorStatusCode": 99, "_rules_": [{"_match_route_": ["r"],
            "tokenServerFQDN": "a.dns", "tokenServerPort": 1}]});
        assert!(
            matches!(parse(doc), Err(ConfigError::Key { key, .. }) if key == "responseErrorStatusCode")
        );
    }

    #[test]
    fn domain_patterns() {
        assert!(domain_matches("*.example.com", "a.example.com"));
        assert!(!domain_matches("*.example.com", "example.com"));
        assert!(domain_matches("api.*", "api.example.com"));
        assert!(domain_matches("a.com", "a.com"));
        assert!(!domain_matches("a.com", "b.a.com"));
        assert_eq!(host_without_port("a.com:80"), "a.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
        assert_eq!(host_without_port("[::1]"), "[::1]");
        assert_eq!(host_without_port("a.com"), "a.com");
    }

    #[test]
    fn service_names() {
        assert!(service_matches("svc.dns", "outbound|80||svc.dns"));
        assert!(service_matches("svc.dns:80", "outbound|80||svc.dns"));
        assert!(!service_matches("svc.dns:81", "outbound|80||svc.dns"));
        assert!(!service_matches("svc.dns", "svc.dns"));
    }
}
