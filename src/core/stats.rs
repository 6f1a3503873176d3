//! The plugin's Envoy counters. Each request that the plugin handles lands in exactly one outcome
//! counter; `cache_hit` additionally marks an `allowed` request answered without a call.
//! Envoy exports them as `wasmcustom.easy_jwt.<name>` in `/stats`, `easy_jwt_<name>` in Prometheus.

/// One counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// Token accepted by the token server (or the cache): uid header set.
    Allowed,
    /// Token refused by the token server (401/403).
    Denied,
    /// No usable token in the request (missing, wrong scheme, empty, malformed).
    TokenMissing,
    /// Path matched `ignoreUrls`.
    Ignored,
    /// The configured anonymous token.
    Anonymous,
    /// Token server failed (dispatch error, timeout, 5xx, reset, bad answer) and the request was refused.
    TokenServerFailure,
    /// Token server failed and `failOpen` let the request through without a uid.
    FailOpen,
    /// An `allowed` request answered from the auth cache.
    CacheHit,
    /// Envoy refused a header edit the decision needed (the identity headers could not be set
    /// or a client's copy removed): the request was refused with a 500, never let through.
    InternalError,
    /// An auth call sent again after a connection failure, a reset or a 502/503/504
    /// (`tokenServerRetries`); counted per re-send, beside the request's one outcome.
    TokenServerRetry,
}

impl Stat {
    /// Every counter, in definition order.
    pub const ALL: [Stat; 10] = [
        Stat::Allowed,
        Stat::Denied,
        Stat::TokenMissing,
        Stat::Ignored,
        Stat::Anonymous,
        Stat::TokenServerFailure,
        Stat::FailOpen,
        Stat::CacheHit,
        Stat::InternalError,
        Stat::TokenServerRetry,
    ];

    /// The metric name passed to `proxy_define_metric`.
    pub fn name(self) -> &'static str {
        match self {
            Stat::Allowed => "easy_jwt.allowed",
            Stat::Denied => "easy_jwt.denied",
            Stat::TokenMissing => "easy_jwt.token_missing",
            Stat::Ignored => "easy_jwt.ignored",
            Stat::Anonymous => "easy_jwt.anonymous",
            Stat::TokenServerFailure => "easy_jwt.token_server_failure",
            Stat::FailOpen => "easy_jwt.fail_open",
            Stat::CacheHit => "easy_jwt.cache_hit",
            Stat::InternalError => "easy_jwt.internal_error",
            Stat::TokenServerRetry => "easy_jwt.token_server_retry",
        }
    }

    /// Position in [`Stat::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indices_follow_all() {
        for (position, stat) in Stat::ALL.iter().enumerate() {
            assert_eq!(stat.index(), position);
            assert!(stat.name().starts_with("easy_jwt."));
        }
        let names: std::collections::HashSet<_> = Stat::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), Stat::ALL.len(), "a name is used twice");
    }
}
