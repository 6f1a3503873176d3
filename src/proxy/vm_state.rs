//! Per-VM state shared by the root context and every stream of one VM: the host, the counters,
//! the auth cache glue (this VM's map, then the proxy-wasm shared-data slots every VM sees) and
//! the in-flight calls that coalesce requests with the same token.

use crate::core::auth::{self, AuthResponse, Decision, Pending, Verdict};
use crate::core::cache::{self, AuthCache};
use crate::core::config::Config;
use crate::core::identity::Identity;
use crate::core::request::Attribute;
use crate::core::stats::Stat;
use crate::proxy::actions::carry_out;
use crate::proxy::counters::{Counters, FLUSH_MS};
use crate::proxy::host::Action;
use crate::proxy::host::Host;
use ::core::cell::{Cell, RefCell};
use alloc::rc::Rc;
use alloc::{string::String, vec::Vec};
use log::warn;
use std::collections::HashMap;

/// Largest token-server answer read; a longer one is an invalid answer (fail closed).
pub const MAX_AUTH_BODY: usize = 64 * 1024;

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
pub struct VmState {
    pub host: Rc<dyn Host>,
    pub counters: Counters,
    pub cache: RefCell<AuthCache>,
    /// In-flight calls by cache key: a token any client picks, hence keyed SipHash (the cache
    /// only ever holds tokens the token server accepted, and hashes with FxHash).
    pub flights: RefCell<HashMap<String, Flight>>,
    /// Stream attributes this VM's host was found not to serve (warned about once per VM).
    pub unserved: Cell<[bool; Attribute::ALL.len()]>,
    /// The root's tick period asked for (ms, 0: disarmed).
    tick_ms: Cell<u32>,
    /// The clock as read since the root's last tick (`None` after it): see [`VmState::now`].
    clock: Cell<Option<u64>>,
}

/// A token-server answer read from the host.
pub struct Answer {
    pub status: Option<u16>,
    body: Vec<u8>,
}

impl Answer {
    /// Reads the answer being delivered; a body over [`MAX_AUTH_BODY`] is not read.
    pub fn read(host: &dyn Host, body_size: usize) -> Answer {
        let status = host.call_status();
        let body = if body_size <= MAX_AUTH_BODY {
            host.call_body(body_size)
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

impl VmState {
    pub fn new(host: Rc<dyn Host>, counters: Counters) -> VmState {
        VmState {
            host,
            counters,
            cache: RefCell::default(),
            flights: RefCell::default(),
            unserved: Cell::default(),
            tick_ms: Cell::new(0),
            clock: Cell::new(None),
        }
    }

    /// Wall-clock seconds for TTL and `exp` checks. Read from the host once per tick period:
    /// every request that counts arms the root's tick (within [`FLUSH_MS`]), and the tick
    /// forgets the reading, so a reading is never older than the pending tick (0.1 s, plus any
    /// timer lateness), far below the second TTLs and `exp` are kept in.
    pub fn now(&self) -> u64 {
        if let Some(now) = self.clock.get() {
            return now;
        }
        let now = self.host.now_secs();
        self.clock.set(Some(now));
        // The reading must not outlive a tick: make sure one is armed.
        self.want_tick(FLUSH_MS);
        now
    }

    /// Counts `stat`; the root's tick hands the count to Envoy within [`FLUSH_MS`].
    pub fn count(&self, stat: Stat) {
        self.counters.count(stat);
        self.want_tick(FLUSH_MS);
    }

    /// Makes the root's tick fire within `period` ms (a shorter period already armed stays).
    pub fn want_tick(&self, period: u32) {
        let armed = self.tick_ms.get();
        if armed != 0 && armed <= period {
            return;
        }
        match self.host.set_tick_period_ms(period) {
            Ok(()) => self.tick_ms.set(period),
            Err(status) => warn!("easy-jwt: cannot arm the tick timer: {status}"),
        }
    }

    /// The root's tick ran: forgets the clock reading, hands the pending counts to Envoy and
    /// disarms the timer (the next count, clock reading or orphaned call arms it again).
    pub fn ticked(&self) {
        self.clock.set(None);
        self.counters.flush(self.host());
        match self.host.set_tick_period_ms(0) {
            Ok(()) => self.tick_ms.set(0),
            Err(status) => warn!("easy-jwt: cannot stop the tick timer: {status}"),
        }
    }

    pub fn host(&self) -> &dyn Host {
        &*self.host
    }

    /// The key of the per-VM cache and of coalescing: the scope and the request's subject.
    pub fn cache_key(config: &Config, pending: &Pending) -> String {
        let subject = pending.subject();
        let mut key = String::with_capacity(config.scope.len() + 1 + subject.len());
        key.push_str(&config.scope);
        key.push(':');
        key.push_str(subject);
        key
    }

    /// A cached identity: this VM's map first, then the shared slot.
    pub fn cached(&self, config: &Config, pending: &Pending) -> Option<Identity> {
        let settings = config.cache;
        if !settings.enabled() {
            return None;
        }
        let now = self.now();
        let key = VmState::cache_key(config, pending);
        if let Some(identity) = self.cache.borrow_mut().get(&key, now) {
            return Some(identity);
        }
        if settings.shared_slots == 0 {
            return None;
        }
        let subject = pending.subject();
        let slot = cache::shared_key(&config.scope, subject, settings.shared_slots);
        let (identity, expires_at) =
            cache::decode_shared(&self.host.shared_data(&slot)?, subject, now)?;
        self.cache
            .borrow_mut()
            .insert(key, identity.clone(), expires_at, settings.max_entries);
        Some(identity)
    }

    /// Caches an allowed answer (never failures, denials or fail-open passes).
    pub fn remember(&self, config: &Config, pending: &Pending, verdict: &Verdict) {
        let Verdict::Allowed(identity) = verdict else {
            return;
        };
        let settings = config.cache;
        if !settings.enabled() {
            return;
        }
        let Some(expires_at) = cache::expiry(&pending.token, self.now(), settings.ttl_secs) else {
            return;
        };
        let key = VmState::cache_key(config, pending);
        self.cache
            .borrow_mut()
            .insert(key, identity.clone(), expires_at, settings.max_entries);
        if settings.shared_slots > 0 {
            let subject = pending.subject();
            let slot = cache::shared_key(&config.scope, subject, settings.shared_slots);
            let value = cache::encode_shared(subject, identity, expires_at);
            if let Err(status) = self.host.set_shared_data(&slot, &value) {
                warn!("easy-jwt: cannot write shared cache slot: {status}");
            }
        }
    }

    /// Resolves every follower of `key` with `answer`, each under its own configuration.
    pub fn release(&self, key: &str, answer: &Answer) {
        let flight = self.flights.borrow_mut().remove(key);
        for follower in flight.map(|f| f.followers).unwrap_or_default() {
            if self
                .host
                .set_effective_context(follower.context_id)
                .is_err()
            {
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
            if self.host.set_effective_context(follower.context_id).is_ok() {
                let decision = auth::on_dispatch_error(&follower.config, follower.pending);
                self.finish(follower.context_id, decision);
            }
        }
    }

    /// Carries out a decision on the effective context (a request not paused yet).
    pub fn carry_out(&self, context_id: u32, decision: Decision) -> Action {
        let action = carry_out(self.host(), context_id, &self.counters, decision);
        self.want_tick(FLUSH_MS);
        action
    }

    /// Carries out the decision that ends a paused request, on the effective context.
    pub fn finish(&self, context_id: u32, decision: Decision) {
        if self.carry_out(context_id, decision) == Action::Continue {
            if let Err(status) = self.host.resume_request() {
                warn!("#{context_id} easy-jwt: resume failed: {status}");
            }
        }
    }
}
