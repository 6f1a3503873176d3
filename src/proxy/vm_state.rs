//! Per-VM state shared by the root context and every stream of one VM: the host, the counters,
//! the auth cache glue (this VM's map, then the proxy-wasm shared-data slots every VM sees) and
//! the calls in flight ([`Flights`]) that coalesce requests with the same token.

use crate::core::auth::{self, AuthResponse, Decision, Pending, Verdict};
use crate::core::cache::{self, AuthCache};
use crate::core::config::Config;
use crate::core::identity::Identity;
use crate::core::request::Attribute;
use crate::core::stats::Stat;
use crate::proxy::actions::carry_out;
use crate::proxy::actions::dispatch;
use crate::proxy::counters::{Counters, FLUSH_MS};
use crate::proxy::flights::{Flight, Flights, Retries, Waiter};
use crate::proxy::host::Action;
use crate::proxy::host::Host;
use log::{debug, warn};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// Largest token-server answer read; a longer one is an invalid answer (fail closed).
pub const MAX_AUTH_BODY: usize = 64 * 1024;

/// What the root and every stream of one VM share.
pub struct VmState {
    pub host: Rc<dyn Host>,
    pub counters: Counters,
    pub cache: RefCell<AuthCache>,
    /// The calls in flight and the requests waiting for them.
    pub flights: RefCell<Flights>,
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

    /// A cached identity under `key` ([`VmState::cache_key`]): this VM's map first, then the
    /// shared slot.
    pub fn cached(&self, key: &str, config: &Config, pending: &Pending) -> Option<Identity> {
        let settings = config.cache;
        if !settings.enabled() {
            return None;
        }
        let now = self.now();
        if let Some(identity) = self.cache.borrow_mut().get(key, now) {
            return Some(identity);
        }
        if settings.shared_slots == 0 {
            return None;
        }
        let subject = pending.subject();
        let slot = cache::shared_key(&config.scope, subject, settings.shared_slots);
        let (identity, expires_at) =
            cache::decode_shared(&self.host.shared_data(&slot)?, subject, now)?;
        self.cache.borrow_mut().insert(
            key.to_string(),
            identity.clone(),
            expires_at,
            settings.max_entries,
        );
        Some(identity)
    }

    /// Caches an allowed answer under `key` (never failures, denials or fail-open passes).
    pub fn remember(&self, key: String, config: &Config, pending: &Pending, verdict: &Verdict) {
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

    /// The answer to call `token` is being delivered: sends the call again if the answer is a
    /// failure worth retrying and the flight has retries and time left (false: the waiters
    /// wait on); otherwise caches it and resolves every request that waits for it, each under
    /// its own configuration (true). An unknown token (every waiter left) is ignored.
    /// `current` is the context whose callback delivers the answer (already the effective one).
    pub fn land(&self, current: u32, token: u32, body_size: usize) -> bool {
        let Some((key, flight)) = self.flights.borrow_mut().land(token) else {
            return true;
        };
        let answer = Answer::read(self.host(), body_size);
        let (key, flight) = if auth::retryable(answer.view()) {
            match self.resend(key, flight) {
                Ok(()) => return false,
                Err(given_back) => given_back,
            }
        } else {
            (key, flight)
        };
        debug!(
            "easy-jwt: token server answered {} for {} request(s)",
            answer.status.unwrap_or(0),
            flight.waiters.len()
        );
        // One verdict per configuration: requests of one scope share it (judging parses the
        // answer).
        let Some(first) = flight.waiters.first() else {
            return true;
        };
        let config = Rc::clone(&first.config);
        let verdict = auth::judge(&config, answer.view());
        self.remember(key, &config, &first.pending, &verdict);
        let verdict_for = |waiter: &Waiter| {
            if Rc::ptr_eq(&waiter.config, &config) {
                verdict.clone()
            } else {
                auth::judge(&waiter.config, answer.view())
            }
        };
        // The receiving stream first: it is the effective context already.
        let (own, others): (Vec<_>, Vec<_>) = flight
            .waiters
            .into_iter()
            .partition(|waiter| waiter.context_id == current);
        for waiter in own {
            let decision = auth::decide(&waiter.config, verdict_for(&waiter), waiter.pending);
            self.finish(waiter.context_id, decision);
        }
        for waiter in others {
            if let Err(status) = self.host.set_effective_context(waiter.context_id) {
                warn!("#{} easy-jwt: stream gone: {status}", waiter.context_id);
                continue;
            }
            let decision = auth::decide(&waiter.config, verdict_for(&waiter), waiter.pending);
            self.finish(waiter.context_id, decision);
        }
        true
    }

    /// The retries of a new exchange under `config`: `None` without `tokenServerRetries` (no
    /// clock read then).
    pub fn retries(&self, config: &Config) -> Option<Retries> {
        let server = &config.token_server;
        (server.retries > 0).then(|| Retries {
            left: server.retries,
            deadline_ms: self
                .host
                .now_ms()
                .saturating_add(u64::try_from(server.timeout.as_millis()).unwrap_or(u64::MAX)),
        })
    }

    /// Sends the call of a landed flight again, with what is left of its budget; gives the
    /// flight and its key back when it has no retry or no time left, or the call cannot be made.
    fn resend(&self, key: String, mut flight: Flight) -> Result<(), (String, Flight)> {
        let Some(retries) = flight.retries.filter(|r| r.left > 0) else {
            return Err((key, flight));
        };
        let Some(first) = flight.waiters.first() else {
            return Err((key, flight));
        };
        // Envoy's timers run on a monotonic millisecond clock and may fire a little before the
        // wall clock the budget is kept in: an attempt ended by the budget can leave a few
        // milliseconds. A re-send needs a tenth of the budget at least to be worth making.
        let budget_ms =
            u64::try_from(first.config.token_server.timeout.as_millis()).unwrap_or(u64::MAX);
        let left_ms = retries.deadline_ms.saturating_sub(self.host.now_ms());
        if left_ms == 0 || left_ms < budget_ms / 10 {
            return Err((key, flight));
        }
        let timeout = Duration::from_millis(left_ms);
        match dispatch(self.host(), &first.config, &first.pending, timeout) {
            Ok(token) => {
                debug!("easy-jwt: token server call sent again ({left_ms} ms left)");
                self.count(Stat::TokenServerRetry);
                flight.retries = Some(Retries {
                    left: retries.left - 1,
                    ..retries
                });
                self.flights.borrow_mut().resend(key, token, flight);
                Ok(())
            }
            Err(_) => Err((key, flight)),
        }
    }

    /// Fails every waiter of `flight` closed (the call could not be made).
    pub fn fail(&self, flight: Flight) {
        for waiter in flight.waiters {
            if self.host.set_effective_context(waiter.context_id).is_ok() {
                let decision = auth::on_dispatch_error(&waiter.config, waiter.pending);
                self.finish(waiter.context_id, decision);
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
