//! What the root context and every stream of one VM share: the counters, the auth cache glue
//! (per-VM map, then shared-data slots) and the in-flight calls that coalesce requests with the
//! same token.

use crate::actions::carry_out;
use crate::auth::{self, AuthResponse, Decision, Identity, Pending, Verdict};
use crate::cache::{self, AuthCache};
use crate::config::Config;
use crate::hostio::{self, Buffer, Map};
use crate::request::Attribute;
use crate::stats::Stat;
use log::warn;
use proxy_wasm::types::Action;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// Largest token-server answer read; a longer one is an invalid answer (fail closed).
const MAX_AUTH_BODY: usize = 64 * 1024;

/// Per-VM counters (ids are per VM; Envoy sums them across VMs by name).
#[derive(Debug, Default, Clone, Copy)]
pub struct Counters {
    pub ids: [Option<u32>; Stat::ALL.len()],
}

impl Counters {
    pub fn define() -> Counters {
        let mut counters = Counters::default();
        for stat in Stat::ALL {
            match hostio::define_counter(stat.name()) {
                Ok(id) => {
                    if let Some(slot) = counters.ids.get_mut(stat.index()) {
                        *slot = Some(id);
                    }
                }
                Err(status) => warn!("easy-jwt: cannot define counter {}: {status}", stat.name()),
            }
        }
        counters
    }

    pub fn count(&self, stat: Stat) {
        if let Some(Some(id)) = self.ids.get(stat.index()) {
            let _ = hostio::increment(*id);
        }
    }
}

/// A request waiting for another stream's call.
pub struct Follower {
    pub context_id: u32,
    pub config: Rc<Config>,
    pub pending: Pending,
}

/// Followers of one in-flight call; `orphaned` once the leader's stream has ended.
#[derive(Default)]
pub struct Flight {
    pub followers: Vec<Follower>,
    pub orphaned: bool,
}

/// What the root and every stream of one VM share.
#[derive(Default)]
pub struct Shared {
    pub counters: Counters,
    pub cache: RefCell<AuthCache>,
    pub flights: RefCell<HashMap<String, Flight>>,
    /// Stream attributes this VM's host was found not to serve (warned about once per VM).
    pub unserved: Cell<[bool; Attribute::ALL.len()]>,
}

/// A token-server answer read from the host.
pub struct Answer {
    pub status: Option<u16>,
    body: Vec<u8>,
}

impl Answer {
    pub fn read(body_size: usize) -> Answer {
        let status = hostio::header(Map::CallResponseHeaders, ":status")
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u16>().ok());
        let body = if body_size <= MAX_AUTH_BODY {
            hostio::buffer(Buffer::CallResponseBody, body_size)
        } else {
            warn!("easy-jwt: token server answer of {body_size} bytes ignored");
            Vec::new()
        };
        Answer { status, body }
    }

    pub fn view(&self) -> AuthResponse<'_> {
        AuthResponse {
            status: self.status,
            body: &self.body,
        }
    }
}

impl Shared {
    pub fn cache_key(config: &Config, token: &str) -> String {
        format!("{}:{token}", config.scope)
    }

    /// A cached identity: this VM's map first, then the shared slot.
    pub fn cached(&self, config: &Config, token: &str) -> Option<Identity> {
        let settings = config.cache;
        if !settings.enabled() {
            return None;
        }
        let now = hostio::now_secs();
        let key = Shared::cache_key(config, token);
        if let Some(identity) = self.cache.borrow_mut().get(&key, now) {
            return Some(identity);
        }
        if settings.shared_slots == 0 {
            return None;
        }
        let slot = cache::shared_key(&config.scope, token, settings.shared_slots);
        let (identity, expires_at) =
            cache::decode_shared(&hostio::shared_data(&slot)?, token, now)?;
        self.cache
            .borrow_mut()
            .insert(key, identity.clone(), expires_at, settings.max_entries);
        Some(identity)
    }

    /// Caches an allowed answer (never failures, denials or fail-open passes).
    pub fn remember(&self, config: &Config, token: &str, verdict: &Verdict) {
        let Verdict::Allowed(identity) = verdict else {
            return;
        };
        let settings = config.cache;
        if !settings.enabled() {
            return;
        }
        let Some(expires_at) = cache::expiry(token, hostio::now_secs(), settings.ttl_secs) else {
            return;
        };
        let key = Shared::cache_key(config, token);
        self.cache
            .borrow_mut()
            .insert(key, identity.clone(), expires_at, settings.max_entries);
        if settings.shared_slots > 0 {
            let slot = cache::shared_key(&config.scope, token, settings.shared_slots);
            let value = cache::encode_shared(token, identity, expires_at);
            if let Err(status) = hostio::set_shared_data(&slot, &value) {
                warn!("easy-jwt: cannot write shared cache slot: {status}");
            }
        }
    }

    /// Resolves every follower of `key` with `answer`, each under its own configuration.
    pub fn release(&self, key: &str, answer: &Answer) {
        let flight = self.flights.borrow_mut().remove(key);
        for follower in flight.map(|f| f.followers).unwrap_or_default() {
            if hostio::set_effective_context(follower.context_id).is_err() {
                continue;
            }
            let decision = auth::on_response(&follower.config, follower.pending, answer.view());
            self.finish(follower.context_id, decision);
        }
    }

    /// Fails every follower of `key` (the re-dispatch was refused).
    pub fn fail_followers(&self, key: &str) {
        let flight = self.flights.borrow_mut().remove(key);
        for follower in flight.map(|f| f.followers).unwrap_or_default() {
            if hostio::set_effective_context(follower.context_id).is_ok() {
                let decision = auth::on_dispatch_error(&follower.config, follower.pending);
                self.finish(follower.context_id, decision);
            }
        }
    }

    /// Carries out the decision that ends a paused request, on the effective context.
    pub fn finish(&self, context_id: u32, decision: Decision) {
        if carry_out(context_id, &self.counters, decision) == Action::Continue {
            if let Err(status) = hostio::resume_request() {
                warn!("#{context_id} easy-jwt: resume failed: {status}");
            }
        }
    }
}
