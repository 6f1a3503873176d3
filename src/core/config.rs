//! Plugin configuration: every key validated and compiled once, at `on_configure`, into the
//! [`Config`] the request path reads. Errors name the key (`_rules_[1].tokenServerPort`).
//!
//! The keys of the Go original keep their meaning; new keys are camelCase like them. See the
//! README's configuration reference for types and defaults.

use crate::core::cache::CacheSettings;
use crate::core::ignore::{IgnoreList, Pattern};
use crate::core::reply::ErrorBody;
use crate::core::token::TokenSources;
use crate::core::token_server::{Service, TokenServer};
use serde_json::Value;
use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

/// A JSON object of the configuration (member names unique: [`crate::core::strict`]).
pub type Map = serde_json::Map<String, Value>;

/// Configuration keys (one place, so messages and the README agree).
pub mod keys {
    pub const TOKEN_SERVER_FQDN: &str = "tokenServerFQDN";
    pub const TOKEN_SERVER_PORT: &str = "tokenServerPort";
    pub const TOKEN_SERVER_CLUSTER: &str = "tokenServerCluster";
    pub const TOKEN_SERVICE: &str = "tokenService";
    pub const TOKEN_SERVER_AUTHORITY: &str = "tokenServerAuthority";
    pub const TOKEN_SERVER_PATH: &str = "tokenServerPath";
    pub const TOKEN_SERVER_TIMEOUT_MS: &str = "tokenServerTimeoutMs";
    pub const TOKEN_SERVER_RETRIES: &str = "tokenServerRetries";
    pub const TOKEN_FROM_HEADER_NAME: &str = "tokenFromHeaderName";
    pub const TOKEN_FROM_HEADER_PREFIX: &str = "tokenFromHeaderPrefix";
    pub const TOKEN_FROM_QUERY: &str = "tokenFromQuery";
    pub const TOKEN_FROM_COOKIE: &str = "tokenFromCookie";
    pub const STRIP_TOKEN: &str = "stripToken";
    pub const IGNORE_URLS: &str = "ignoreUrls";
    pub const ANONYMOUS_TOKEN: &str = "anonymousToken";
    pub const ANONYMOUS_UID: &str = "anonymousUID";
    pub const UID_HEADER_NAME: &str = "uidHeaderName";
    pub const AUTH_RESPONSE_HEADERS: &str = "authResponseHeaders";
    pub const RESPONSE_ERROR_STATUS_CODE: &str = "responseErrorStatusCode";
    pub const RESPONSE_ERROR_BODY: &str = "responseErrorBody";
    pub const TOKEN_SERVER_FAILURE_STATUS_CODE: &str = "tokenServerFailureStatusCode";
    pub const FAIL_OPEN: &str = "failOpen";
    pub const CACHE_TTL_SECONDS: &str = "cacheTtlSeconds";
    pub const CACHE_MAX_ENTRIES: &str = "cacheMaxEntries";
    pub const CACHE_SHARED_SLOTS: &str = "cacheSharedSlots";
    pub const FORWARD_REQUEST_CONTEXT: &str = "forwardRequestContext";
    pub const FORWARD_HEADERS: &str = "forwardHeaders";
    /// The Go original read this misspelt key and then overwrote it; accepted and ignored.
    pub const LEGACY_ERROR_BODY_TYPO: &str = "responseErrorBoy";

    /// Every key a (global or rule) configuration object may hold.
    pub const ALL: &[&str] = &[
        TOKEN_SERVER_FQDN,
        TOKEN_SERVER_PORT,
        TOKEN_SERVER_CLUSTER,
        TOKEN_SERVICE,
        TOKEN_SERVER_AUTHORITY,
        TOKEN_SERVER_PATH,
        TOKEN_SERVER_TIMEOUT_MS,
        TOKEN_SERVER_RETRIES,
        TOKEN_FROM_HEADER_NAME,
        TOKEN_FROM_HEADER_PREFIX,
        TOKEN_FROM_QUERY,
        TOKEN_FROM_COOKIE,
        STRIP_TOKEN,
        IGNORE_URLS,
        ANONYMOUS_TOKEN,
        ANONYMOUS_UID,
        UID_HEADER_NAME,
        AUTH_RESPONSE_HEADERS,
        RESPONSE_ERROR_STATUS_CODE,
        RESPONSE_ERROR_BODY,
        TOKEN_SERVER_FAILURE_STATUS_CODE,
        FAIL_OPEN,
        CACHE_TTL_SECONDS,
        CACHE_MAX_ENTRIES,
        CACHE_SHARED_SLOTS,
        FORWARD_REQUEST_CONTEXT,
        FORWARD_HEADERS,
        LEGACY_ERROR_BODY_TYPO,
    ];

    /// Keys that choose the token server; a rule setting one of them replaces all of them.
    pub const TOKEN_SERVER_CHOICE: &[&str] =
        &[TOKEN_SERVER_FQDN, TOKEN_SERVER_CLUSTER, TOKEN_SERVICE];
}

/// Defaults where the Go original had none.
pub mod defaults {
    pub const TOKEN_SERVER_PATH: &str = "/api/token/auth";
    pub const TIMEOUT_MS: u64 = 2000;
    pub const MAX_TIMEOUT_MS: u64 = 600_000;
    /// Re-sends of the auth call after a connection failure, reset or 502/503/504: none, as the
    /// Go original.
    pub const RETRIES: u8 = 0;
    pub const MAX_RETRIES: u64 = 3;
    pub const HEADER_NAME: &str = crate::core::token::DEFAULT_HEADER;
    pub const HEADER_PREFIX: &str = crate::core::token::DEFAULT_PREFIX;
    pub const UID_HEADER: &str = "x-auth-user";
    pub const ERROR_STATUS: u16 = 401;
    pub const ANONYMOUS_UID: u64 = 0;
}

/// The header added (value `true`) when a token-server failure is let through by `failOpen`.
pub const FAIL_OPEN_HEADER: &str = "x-envoy-auth-failure-mode-allowed";

/// The validated, compiled configuration of one scope (global or one `_rules_` entry).
/// `Default` is only the starting point of [`Config::parse`], not a usable configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    pub token_server: TokenServer,
    pub sources: TokenSources,
    pub ignore: IgnoreList,
    pub anonymous_token: Option<String>,
    /// `anonymousUID` pre-rendered as the header value.
    pub anonymous_uid: String,
    /// Lowercase identity header (`uidHeaderName`).
    pub uid_header: String,
    /// Auth-response fields copied to request headers: `(field, lowercase header)`.
    pub response_headers: Vec<(String, String)>,
    pub deny_status: u16,
    pub failure_status: u16,
    pub error_body: ErrorBody,
    pub fail_open: bool,
    /// Send the request's method, `:path` and `:authority` with the auth call
    /// (`forwardRequestContext`).
    pub forward_context: bool,
    /// Lowercase names of client headers copied to the auth call when present
    /// (`forwardHeaders`).
    pub forward_headers: Vec<String>,
    pub cache: CacheSettings,
    /// Fingerprint of what an auth answer depends on (token server, mapped fields): cache
    /// entries of one scope are never served to another.
    pub scope: String,
    /// The identity headers and the anonymous uid as shared strings, for header edits.
    pub shared: SharedNames,
}

/// The strings every `Continue` decision's edits name, built once per configuration: an edit
/// clones a reference to them instead of allocating per request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedNames {
    /// `uidHeaderName`.
    pub uid_header: Arc<str>,
    /// The headers of `responseHeaders`, in order.
    pub field_headers: Vec<Arc<str>>,
    /// [`FAIL_OPEN_HEADER`].
    pub fail_open_header: Arc<str>,
    /// `anonymousUID`, rendered.
    pub anonymous_uid: Arc<str>,
    /// The fail-open marker's value, `true`.
    pub marker: Arc<str>,
}

impl SharedNames {
    fn of(config: &Config) -> SharedNames {
        SharedNames {
            uid_header: Arc::from(config.uid_header.as_str()),
            field_headers: config
                .response_headers
                .iter()
                .map(|(_, header)| Arc::from(header.as_str()))
                .collect(),
            fail_open_header: Arc::from(FAIL_OPEN_HEADER),
            anonymous_uid: Arc::from(config.anonymous_uid.as_str()),
            marker: Arc::from("true"),
        }
    }
}

/// What is wrong with one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Missing,
    WrongType(&'static str),
    OutOfRange(&'static str),
    Invalid(String),
    Conflict(&'static str),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => f.write_str("is required"),
            Problem::WrongType(expected) => write!(f, "must be {expected}"),
            Problem::OutOfRange(range) => write!(f, "must be in {range}"),
            Problem::Invalid(why) => f.write_str(why),
            Problem::Conflict(other) => write!(f, "cannot be combined with `{other}`"),
        }
    }
}

/// Why a configuration was rejected; `on_configure` logs it as one line and returns false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// 0 bytes: Higress sends that when the WasmPlugin has no config at all.
    Empty,
    Syntax(String),
    NotAnObject,
    /// Neither global keys nor `_rules_`: the plugin would do nothing.
    NothingConfigured,
    Key {
        key: String,
        problem: Problem,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Empty => f.write_str("configuration is empty (0 bytes)"),
            ConfigError::Syntax(why) => write!(f, "configuration is not valid JSON: {why}"),
            ConfigError::NotAnObject => f.write_str("configuration must be a JSON object"),
            ConfigError::NothingConfigured => f.write_str(
                "configuration has neither global keys nor `_rules_`: set `tokenServerFQDN` and `tokenServerPort`",
            ),
            ConfigError::Key { key, problem } => write!(f, "configuration key `{key}` {problem}"),
        }
    }
}

/// The keys visible to one scope: a rule's own keys first, then the global ones.
pub struct Fields<'a> {
    global: &'a Map,
    rule: Option<(usize, &'a Map)>,
}

impl<'a> Fields<'a> {
    pub fn global(global: &'a Map) -> Fields<'a> {
        Fields { global, rule: None }
    }

    pub fn rule(global: &'a Map, index: usize, rule: &'a Map) -> Fields<'a> {
        Fields {
            global,
            rule: Some((index, rule)),
        }
    }

    fn get(&self, key: &str) -> Option<&'a Value> {
        if let Some((_, rule)) = self.rule {
            if keys::TOKEN_SERVER_CHOICE.contains(&key) && rule_chooses_server(rule) {
                return rule.get(key);
            }
            if let Some(value) = rule.get(key) {
                return Some(value);
            }
        }
        self.global.get(key)
    }

    /// The key as the operator wrote it: `_rules_[i].key` when the rule holds it.
    fn name(&self, key: &str) -> String {
        match self.rule {
            Some((index, rule)) if rule.contains_key(key) => format!("_rules_[{index}].{key}"),
            _ => key.to_string(),
        }
    }

    fn error(&self, key: &str, problem: Problem) -> ConfigError {
        ConfigError::Key {
            key: self.name(key),
            problem,
        }
    }

    /// The value of `key` converted by `convert`; `null` or absent is `None`. Plain `Value`
    /// accessors, checked here.
    fn typed<'v, T>(
        &'v self,
        key: &str,
        expected: &'static str,
        convert: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => convert(value)
                .map(Some)
                .ok_or_else(|| self.error(key, Problem::WrongType(expected))),
        }
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        self.typed(key, "a string", |v| v.as_str().map(str::to_string))
    }

    fn flag(&self, key: &str) -> Result<bool, ConfigError> {
        Ok(self
            .typed(key, "true or false", Value::as_bool)?
            .unwrap_or(false))
    }

    fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ConfigError> {
        self.typed(key, "an array of strings", string_array)
    }

    fn object(&self, key: &str, expected: &'static str) -> Result<Option<&'a Map>, ConfigError> {
        self.typed(key, expected, Value::as_object)
    }

    fn integer(
        &self,
        key: &str,
        min: u64,
        max: u64,
        range: &'static str,
    ) -> Result<Option<u64>, ConfigError> {
        match self.typed(key, "a non-negative integer", Value::as_u64)? {
            Some(value) if value < min || value > max => {
                Err(self.error(key, Problem::OutOfRange(range)))
            }
            other => Ok(other),
        }
    }

    fn status(&self, key: &str) -> Result<Option<u16>, ConfigError> {
        let status = self.integer(key, 400, 599, "400..=599")?;
        Ok(status.and_then(|s| u16::try_from(s).ok()))
    }

    fn non_empty(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.string(key)? {
            Some(text) if text.chars().all(char::is_whitespace) => {
                Err(self.error(key, Problem::Invalid("must not be empty".into())))
            }
            Some(text) if text.chars().any(|c| c.is_whitespace() || c.is_control()) => {
                Err(self.error(key, Problem::Invalid("must not contain whitespace".into())))
            }
            other => Ok(other),
        }
    }

    fn header_name(&self, key: &str, default: &str) -> Result<String, ConfigError> {
        let name = self.string(key)?.unwrap_or_else(|| default.to_string());
        if is_header_name(&name) {
            Ok(name.to_ascii_lowercase())
        } else {
            Err(self.error(
                key,
                Problem::Invalid(format!("`{name}` is not a valid header name")),
            ))
        }
    }

    /// Keys this scope does not know (typos such as `tokenServerFqdn`), for a warning.
    pub fn unknown_keys(&self) -> Vec<String> {
        let own = match self.rule {
            Some((_, rule)) => rule,
            None => self.global,
        };
        own.keys()
            .filter(|key| !keys::ALL.contains(&key.as_str()) && !key.starts_with('_'))
            .map(|key| self.name(key))
            .collect()
    }
}

/// An array whose items are all strings.
pub fn string_array(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|item| item.as_str().map(String::from))
        .collect()
}

fn rule_chooses_server(rule: &Map) -> bool {
    keys::TOKEN_SERVER_CHOICE
        .iter()
        .any(|key| rule.contains_key(*key))
}

/// RFC 9110 `token`: the characters allowed in a header name (pseudo-headers excluded).
pub fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

impl Config {
    /// Validates and compiles one scope. A missing token server is reported last, so that error
    /// means every other key was valid.
    pub fn parse(fields: &Fields) -> Result<Config, ConfigError> {
        // Filled in key by key, in the order errors are reported: a failing key then drops one
        // `Config` instead of whichever fields were already built (a drop path per `?`).
        let mut config = Config::default();
        config.deny_status = fields
            .status(keys::RESPONSE_ERROR_STATUS_CODE)?
            .unwrap_or(defaults::ERROR_STATUS);
        config.sources = parse_sources(fields)?;
        config.ignore = parse_ignore(fields)?;
        config.anonymous_token = fields
            .string(keys::ANONYMOUS_TOKEN)?
            .filter(|t| !t.is_empty());
        config.anonymous_uid = fields
            .integer(keys::ANONYMOUS_UID, 0, u64::MAX, "0..")?
            .unwrap_or(defaults::ANONYMOUS_UID)
            .to_string();
        config.uid_header = fields.header_name(keys::UID_HEADER_NAME, defaults::UID_HEADER)?;
        config.failure_status = fields
            .status(keys::TOKEN_SERVER_FAILURE_STATUS_CODE)?
            .unwrap_or(config.deny_status);
        config.error_body = parse_error_body(fields)?;
        config.fail_open = fields.flag(keys::FAIL_OPEN)?;
        config.forward_context = fields.flag(keys::FORWARD_REQUEST_CONTEXT)?;
        config.forward_headers = parse_forward_headers(fields)?;
        config.cache = parse_cache(fields)?;
        config.token_server = parse_call_settings(fields)?;
        config.response_headers = parse_response_headers(fields, &config)?;
        config.token_server.cluster_and_authority(fields)?;
        config.scope = config.fingerprint();
        config.shared = SharedNames::of(&config);
        Ok(config)
    }

    /// What an auth answer depends on, as one canonical JSON text: the token server (cluster,
    /// authority, path), the mapped fields and, when context is forwarded, what is forwarded.
    pub fn scope_text(&self) -> String {
        let server = &self.token_server;
        let fields: Vec<&str> = self
            .response_headers
            .iter()
            .map(|(f, _)| f.as_str())
            .collect();
        let forwarded = self
            .forwards()
            .then_some((self.forward_context, &self.forward_headers));
        let canonical = (
            &server.cluster,
            &server.authority,
            &server.path,
            fields,
            forwarded,
        );
        serde_json::to_string(&canonical).unwrap_or_default()
    }

    /// The scope key: a 64-bit digest of [`Config::scope_text`], as 16 hex digits. It names
    /// shared-data slots, which every VM of the process reads, so it must be the same in every
    /// VM: `DefaultHasher::new()` is SipHash under fixed keys, deterministic for one build of
    /// the plugin (std's per-map `RandomState` would differ per VM). Its input is the operator's
    /// configuration, not the client's, so nobody can steer two scopes onto one key; a digest
    /// rather than the text keeps every cache key short.
    fn fingerprint(&self) -> String {
        let mut hasher = DefaultHasher::new();
        self.scope_text().hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    /// Whether the auth call carries request context (`forwardRequestContext`, `forwardHeaders`).
    pub fn forwards(&self) -> bool {
        self.forward_context || !self.forward_headers.is_empty()
    }

    /// True when the error means only "no token server", i.e. the scope is a set of defaults.
    pub fn is_missing_token_server(error: &ConfigError) -> bool {
        matches!(error, ConfigError::Key { key, problem: Problem::Missing } if key == keys::TOKEN_SERVER_FQDN)
    }
}

fn parse_sources(fields: &Fields) -> Result<TokenSources, ConfigError> {
    let prefix = fields
        .string(keys::TOKEN_FROM_HEADER_PREFIX)?
        .unwrap_or_else(|| defaults::HEADER_PREFIX.to_string());
    if prefix.chars().any(char::is_control) {
        return Err(fields.error(
            keys::TOKEN_FROM_HEADER_PREFIX,
            Problem::Invalid("must not contain control characters".into()),
        ));
    }
    Ok(TokenSources {
        header: fields.header_name(keys::TOKEN_FROM_HEADER_NAME, defaults::HEADER_NAME)?,
        prefix,
        query: fields.non_empty(keys::TOKEN_FROM_QUERY)?,
        cookie: fields.non_empty(keys::TOKEN_FROM_COOKIE)?,
        strip: fields.flag(keys::STRIP_TOKEN)?,
    })
}

fn parse_forward_headers(fields: &Fields) -> Result<Vec<String>, ConfigError> {
    let names = fields.strings(keys::FORWARD_HEADERS)?.unwrap_or_default();
    let mut lower = Vec::with_capacity(names.len());
    for (index, name) in names.iter().enumerate() {
        if !is_header_name(name) {
            return Err(ConfigError::Key {
                key: format!("{}[{index}]", fields.name(keys::FORWARD_HEADERS)),
                problem: Problem::Invalid(format!("`{name}` is not a valid header name")),
            });
        }
        let name = name.to_ascii_lowercase();
        if !lower.contains(&name) {
            lower.push(name);
        }
    }
    Ok(lower)
}

fn parse_ignore(fields: &Fields) -> Result<IgnoreList, ConfigError> {
    let raw = fields.strings(keys::IGNORE_URLS)?.unwrap_or_default();
    let mut patterns = Vec::with_capacity(raw.len());
    for (index, text) in raw.iter().enumerate() {
        let pattern = Pattern::parse(text).map_err(|why| ConfigError::Key {
            key: format!("{}[{index}]", fields.name(keys::IGNORE_URLS)),
            problem: Problem::Invalid(format!("`{text}`: {why}")),
        })?;
        patterns.push(pattern);
    }
    Ok(IgnoreList::new(patterns))
}

fn parse_cache(fields: &Fields) -> Result<CacheSettings, ConfigError> {
    let ttl = fields.integer(keys::CACHE_TTL_SECONDS, 0, 86_400, "0..=86400")?;
    let entries = fields.integer(keys::CACHE_MAX_ENTRIES, 1, 1_000_000, "1..=1000000")?;
    let slots = fields.integer(keys::CACHE_SHARED_SLOTS, 0, 65_536, "0..=65536")?;
    let defaults = CacheSettings::default();
    Ok(CacheSettings {
        ttl_secs: ttl.unwrap_or(defaults.ttl_secs),
        max_entries: entries.map_or(defaults.max_entries, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        }),
        shared_slots: slots.map_or(defaults.shared_slots, |n| {
            u32::try_from(n).unwrap_or(u32::MAX)
        }),
    })
}

fn parse_error_body(fields: &Fields) -> Result<ErrorBody, ConfigError> {
    match fields.string(keys::RESPONSE_ERROR_BODY)? {
        None => Ok(ErrorBody::default()),
        Some(template) => ErrorBody::parse(&template).map_err(|_| {
            fields.error(
                keys::RESPONSE_ERROR_BODY,
                Problem::Invalid("must contain at most one `%s`".into()),
            )
        }),
    }
}

fn parse_response_headers(
    fields: &Fields,
    config: &Config,
) -> Result<Vec<(String, String)>, ConfigError> {
    let empty = Map::new();
    let map = fields
        .object(
            keys::AUTH_RESPONSE_HEADERS,
            "an object of field name to header name",
        )?
        .unwrap_or(&empty);
    let mut pairs = Vec::with_capacity(map.len());
    for (field, header) in map.iter() {
        let invalid = |why: String| ConfigError::Key {
            key: format!("{}.{field}", fields.name(keys::AUTH_RESPONSE_HEADERS)),
            problem: Problem::Invalid(why),
        };
        let header = header
            .as_str()
            .ok_or_else(|| invalid("must be a header name string".into()))?;
        let lower = header.to_ascii_lowercase();
        if !is_header_name(header) {
            return Err(invalid(format!("`{header}` is not a valid header name")));
        }
        if lower == config.uid_header || lower == config.sources.header || lower == FAIL_OPEN_HEADER
        {
            return Err(invalid(format!("`{header}` is reserved by the plugin")));
        }
        pairs.push((field.clone(), lower));
    }
    Ok(pairs)
}

/// Path and timeout; the cluster and authority are filled in by `cluster_and_authority`.
fn parse_call_settings(fields: &Fields) -> Result<TokenServer, ConfigError> {
    let path = fields
        .non_empty(keys::TOKEN_SERVER_PATH)?
        .unwrap_or_else(|| defaults::TOKEN_SERVER_PATH.to_string());
    if !path.starts_with('/') {
        return Err(fields.error(
            keys::TOKEN_SERVER_PATH,
            Problem::Invalid("must start with '/'".into()),
        ));
    }
    let timeout = fields
        .integer(
            keys::TOKEN_SERVER_TIMEOUT_MS,
            1,
            defaults::MAX_TIMEOUT_MS,
            "1..=600000",
        )?
        .unwrap_or(defaults::TIMEOUT_MS);
    let retries = fields
        .integer(
            keys::TOKEN_SERVER_RETRIES,
            0,
            defaults::MAX_RETRIES,
            "0..=3",
        )?
        .and_then(|n| u8::try_from(n).ok())
        .unwrap_or(defaults::RETRIES);
    Ok(TokenServer {
        cluster: String::new(),
        authority: String::new(),
        path,
        timeout: Duration::from_millis(timeout),
        retries,
    })
}

impl TokenServer {
    /// Resolves exactly one of `tokenServerFQDN` (+ `tokenServerPort`), `tokenServerCluster` or
    /// `tokenService` into the cluster name and authority.
    fn cluster_and_authority(&mut self, fields: &Fields) -> Result<(), ConfigError> {
        let fqdn = fields.non_empty(keys::TOKEN_SERVER_FQDN)?;
        let raw = fields.non_empty(keys::TOKEN_SERVER_CLUSTER)?;
        let service = parse_service(fields)?;
        let port = fields.integer(keys::TOKEN_SERVER_PORT, 1, 65535, "1..=65535")?;
        let (cluster, host) = match (fqdn, raw, service) {
            (Some(fqdn), None, None) => {
                let port =
                    port.ok_or_else(|| fields.error(keys::TOKEN_SERVER_PORT, Problem::Missing))?;
                let port = u16::try_from(port).unwrap_or(u16::MAX);
                let service = Service::Fqdn { fqdn, port };
                (service.cluster_name(), service.host_name())
            }
            (None, Some(raw), None) => (raw.clone(), raw),
            (None, None, Some(service)) => (service.cluster_name(), service.host_name()),
            (None, None, None) => {
                return Err(fields.error(keys::TOKEN_SERVER_FQDN, Problem::Missing))
            }
            (Some(_), Some(_), _) => {
                return Err(fields.error(
                    keys::TOKEN_SERVER_CLUSTER,
                    Problem::Conflict(keys::TOKEN_SERVER_FQDN),
                ))
            }
            (_, _, Some(_)) => {
                let other = if fields.get(keys::TOKEN_SERVER_FQDN).is_some() {
                    keys::TOKEN_SERVER_FQDN
                } else {
                    keys::TOKEN_SERVER_CLUSTER
                };
                return Err(fields.error(keys::TOKEN_SERVICE, Problem::Conflict(other)));
            }
        };
        self.cluster = cluster;
        self.authority = fields
            .non_empty(keys::TOKEN_SERVER_AUTHORITY)?
            .unwrap_or(host);
        Ok(())
    }
}

fn parse_service(fields: &Fields) -> Result<Option<Service>, ConfigError> {
    let Some(value) = fields.get(keys::TOKEN_SERVICE) else {
        return Ok(None);
    };
    let service = Service::from_json(value).map_err(|why| {
        fields.error(
            keys::TOKEN_SERVICE,
            Problem::Invalid(format!("is not a valid service source ({why})")),
        )
    })?;
    Ok(Some(service))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn parse(value: Value) -> Result<Config, ConfigError> {
        let map = value.as_object().unwrap().clone();
        Config::parse(&Fields::global(&map))
    }

    fn base() -> Value {
        json!({"tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut config = base();
        config[key] = value;
        config
    }

    fn key_error(value: Value) -> (String, Problem) {
        match parse(value) {
            Err(ConfigError::Key { key, problem }) => (key, problem),
            other => panic!("expected a key error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_where_the_original_had_none() {
        let config = parse(base()).unwrap();
        assert_eq!(
            config.token_server.cluster,
            "outbound|9090||token-server.dns"
        );
        assert_eq!(config.token_server.authority, "token-server.dns");
        assert_eq!(config.token_server.path, "/api/token/auth");
        assert_eq!(config.token_server.timeout, Duration::from_millis(2000));
        assert_eq!(
            config.token_server.retries, 0,
            "one attempt, as the Go original"
        );
        assert_eq!(config.sources, TokenSources::default());
        assert_eq!(config.uid_header, "x-auth-user");
        assert_eq!(config.anonymous_uid, "0");
        assert_eq!(config.anonymous_token, None);
        assert_eq!((config.deny_status, config.failure_status), (401, 401));
        assert_eq!(config.error_body, ErrorBody::default());
        assert!(config.ignore.is_empty());
        assert!(!config.fail_open);
        assert_eq!(config.cache, CacheSettings::default());
    }

    #[test]
    fn cache_keys_and_scope() {
        let config = parse(
            json!({"tokenServerFQDN": "a", "tokenServerPort": 1, "cacheTtlSeconds": 0,
            "cacheMaxEntries": 5, "cacheSharedSlots": 0}),
        )
        .unwrap();
        assert!(!config.cache.enabled());
        assert_eq!(
            (config.cache.max_entries, config.cache.shared_slots),
            (5, 0)
        );
        let other = parse(json!({"tokenServerFQDN": "b", "tokenServerPort": 1})).unwrap();
        assert_eq!(
            other.scope_text(),
            r#"["outbound|1||b","b","/api/token/auth",[],null]"#
        );
        assert_eq!(other.scope.len(), 16);
        let forwarding = parse(json!({"tokenServerFQDN": "b", "tokenServerPort": 1,
            "forwardHeaders": ["x-t"], "authResponseHeaders": {"role": "x-role"}}))
        .unwrap();
        assert_eq!(
            forwarding.scope_text(),
            r#"["outbound|1||b","b","/api/token/auth",["role"],[false,["x-t"]]]"#
        );
        assert_ne!(forwarding.scope, other.scope);
        assert_ne!(config.scope, other.scope);
        assert_eq!(
            other.scope,
            parse(json!({"tokenServerFQDN": "b", "tokenServerPort": 1}))
                .unwrap()
                .scope
        );
    }

    #[test]
    fn original_keys_keep_working() {
        let config = parse(json!({
            "tokenServerFQDN": "token-server.dns", "tokenServerPort": 9090,
            "tokenFromHeaderName": "X-Token", "tokenFromHeaderPrefix": "Token ",
            "ignoreUrls": ["/health", "/public/*"], "anonymousToken": "AnonymousToken",
            "anonymousUID": 7, "responseErrorStatusCode": 403,
            "responseErrorBody": "{\"error\":\"%s\"}", "responseErrorBoy": "legacy"
        }))
        .unwrap();
        assert_eq!(config.sources.header, "x-token");
        assert_eq!(config.sources.prefix, "Token ");
        assert!(config
            .ignore
            .ignores(&crate::core::target::Target::parse("/public/x")));
        assert_eq!(config.anonymous_token.as_deref(), Some("AnonymousToken"));
        assert_eq!(config.anonymous_uid, "7");
        assert_eq!((config.deny_status, config.failure_status), (403, 403));
        assert_eq!(config.error_body.render("m"), b"{\"error\":\"m\"}");
    }

    #[test]
    fn new_keys() {
        let config = parse(json!({
            "tokenServerCluster": "token_cluster", "tokenServerAuthority": "auth.internal",
            "tokenServerPath": "/v2/auth", "tokenServerTimeoutMs": 150,
            "tokenFromQuery": "access_token", "tokenFromCookie": "session", "stripToken": true,
            "uidHeaderName": "X-User-Id", "authResponseHeaders": {"role": "X-Role"},
            "tokenServerFailureStatusCode": 503, "failOpen": true
        }))
        .unwrap();
        assert_eq!(config.token_server.cluster, "token_cluster");
        assert_eq!(config.token_server.authority, "auth.internal");
        assert_eq!(config.token_server.path, "/v2/auth");
        assert_eq!(config.token_server.timeout, Duration::from_millis(150));
        assert_eq!(config.sources.query.as_deref(), Some("access_token"));
        assert_eq!(config.sources.cookie.as_deref(), Some("session"));
        assert!(config.sources.strip);
        assert_eq!(config.uid_header, "x-user-id");
        assert_eq!(
            config.response_headers,
            vec![("role".to_string(), "x-role".to_string())]
        );
        assert_eq!((config.deny_status, config.failure_status), (401, 503));
        assert!(config.fail_open);
    }

    #[test]
    fn typed_higress_service() {
        let config = parse(json!({
            "tokenService": {"type": "k8s", "serviceName": "auth", "namespace": "sec", "port": 8080}
        }))
        .unwrap();
        assert_eq!(
            config.token_server.cluster,
            "outbound|8080||auth.sec.svc.cluster.local"
        );
        assert_eq!(config.token_server.authority, "auth.sec.svc.cluster.local");
    }

    #[test]
    fn token_server_is_required_and_unique() {
        assert_eq!(
            key_error(json!({})),
            ("tokenServerFQDN".into(), Problem::Missing)
        );
        assert_eq!(
            key_error(json!({"tokenServerFQDN": "a"})),
            ("tokenServerPort".into(), Problem::Missing)
        );
        assert_eq!(
            key_error(with("tokenServerCluster", json!("c"))),
            (
                "tokenServerCluster".into(),
                Problem::Conflict("tokenServerFQDN")
            )
        );
        let (key, _) = key_error(with(
            "tokenService",
            json!({"type": "static", "serviceName": "a", "port": 1}),
        ));
        assert_eq!(key, "tokenService");
        let (key, _) = key_error(json!({"tokenService": {"type": "eureka"}}));
        assert_eq!(key, "tokenService");
        assert!(Config::is_missing_token_server(
            &parse(json!({})).unwrap_err()
        ));
    }

    #[test]
    fn retries_are_zero_to_three_and_do_not_change_the_scope() {
        for n in 0..=3u8 {
            let config = parse(with("tokenServerRetries", json!(n))).unwrap();
            assert_eq!(config.token_server.retries, n);
            assert_eq!(
                config.scope,
                parse(base()).unwrap().scope,
                "same answers, same cache"
            );
        }
        for bad in [json!(4), json!(-1), json!("1"), json!(1.5), json!(true)] {
            let (key, _) = key_error(with("tokenServerRetries", bad.clone()));
            assert_eq!(key, "tokenServerRetries", "{bad}");
        }
        assert_eq!(
            key_error(with("tokenServerRetries", json!(4))).1,
            Problem::OutOfRange("0..=3")
        );
    }

    #[test]
    fn rejections_name_the_key() {
        let cases = [
            (with("tokenServerPort", json!(0)), "tokenServerPort"),
            (with("tokenServerPort", json!(70000)), "tokenServerPort"),
            (with("tokenServerPort", json!("9090")), "tokenServerPort"),
            (with("tokenServerPort", json!(-1)), "tokenServerPort"),
            (with("tokenServerFQDN", json!("")), "tokenServerFQDN"),
            (with("tokenServerFQDN", json!(12)), "tokenServerFQDN"),
            (
                with("responseErrorStatusCode", json!(200)),
                "responseErrorStatusCode",
            ),
            (
                with("responseErrorStatusCode", json!(600)),
                "responseErrorStatusCode",
            ),
            (
                with("responseErrorStatusCode", json!("401")),
                "responseErrorStatusCode",
            ),
            (
                with("tokenServerFailureStatusCode", json!(302)),
                "tokenServerFailureStatusCode",
            ),
            (
                with("responseErrorBody", json!("%s %s")),
                "responseErrorBody",
            ),
            (
                with("responseErrorBody", json!({"a": 1})),
                "responseErrorBody",
            ),
            (with("ignoreUrls", json!("/health")), "ignoreUrls"),
            (
                with("forwardRequestContext", json!("yes")),
                "forwardRequestContext",
            ),
            (with("forwardHeaders", json!("x-tenant")), "forwardHeaders"),
            (
                with("forwardHeaders", json!(["x-tenant", "bad header"])),
                "forwardHeaders[1]",
            ),
            (
                with("forwardHeaders", json!([":path"])),
                "forwardHeaders[0]",
            ),
            (
                with("ignoreUrls", json!(["/ok", "no-slash"])),
                "ignoreUrls[1]",
            ),
            (with("ignoreUrls", json!(["/a*"])), "ignoreUrls[0]"),
            (with("anonymousUID", json!(-5)), "anonymousUID"),
            (with("anonymousUID", json!(1.5)), "anonymousUID"),
            (
                with("tokenFromHeaderName", json!("bad header")),
                "tokenFromHeaderName",
            ),
            (
                with("tokenFromHeaderName", json!(":path")),
                "tokenFromHeaderName",
            ),
            (with("uidHeaderName", json!("")), "uidHeaderName"),
            (
                with("tokenServerTimeoutMs", json!(0)),
                "tokenServerTimeoutMs",
            ),
            (
                with("tokenServerTimeoutMs", json!(600_001)),
                "tokenServerTimeoutMs",
            ),
            (with("tokenServerPath", json!("api")), "tokenServerPath"),
            (with("failOpen", json!("yes")), "failOpen"),
            (with("stripToken", json!(1)), "stripToken"),
            (
                with("authResponseHeaders", json!({"role": "x-auth-user"})),
                "authResponseHeaders.role",
            ),
            (
                with("authResponseHeaders", json!({"role": 5})),
                "authResponseHeaders.role",
            ),
            (
                with("authResponseHeaders", json!(["x"])),
                "authResponseHeaders",
            ),
            (with("tokenFromQuery", json!("")), "tokenFromQuery"),
            (with("cacheTtlSeconds", json!(-1)), "cacheTtlSeconds"),
            (with("cacheTtlSeconds", json!(86_401)), "cacheTtlSeconds"),
            (with("cacheMaxEntries", json!(0)), "cacheMaxEntries"),
            (with("cacheSharedSlots", json!(70_000)), "cacheSharedSlots"),
        ];
        for (value, expected_key) in cases {
            let (key, problem) = key_error(value.clone());
            assert_eq!(key, expected_key, "{value}");
            let message = ConfigError::Key { key, problem }.to_string();
            assert!(message.contains(expected_key), "{message}");
        }
    }

    #[test]
    fn null_means_default() {
        let config = parse(with("responseErrorStatusCode", Value::Null)).unwrap();
        assert_eq!(config.deny_status, 401);
    }

    #[test]
    fn unknown_keys_are_reported() {
        let map = json!({"tokenServerFqdn": "x", "tokenServerPort": 1, "_rules_": []});
        let map = map.as_object().unwrap().clone();
        assert_eq!(
            Fields::global(&map).unknown_keys(),
            vec!["tokenServerFqdn".to_string()]
        );
    }
}
