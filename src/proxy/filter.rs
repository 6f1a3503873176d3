//! The plugin's contexts, free of the SDK: [`Root`] (one per plugin instance in a VM) parses the
//! configuration in `on_configure`; each [`Filter`] (one per HTTP stream) asks the core for a
//! decision on the request headers, and the call's answer resolves it ([`crate::proxy::flights`]).
//! `proxy::context` hands them Envoy's callbacks through the SDK; the unit tests call them
//! directly over the fake host. After a local reply a stream returns `Pause` and is never
//! resumed (docs/host-semantics.md §4).

use crate::core::auth::{self, Pending, Step};
use crate::core::config::Config;
use crate::core::reply::Reply;
use crate::core::request::{Attribute, RequestView};
use crate::core::route_rules::RuleSet;
use crate::core::stats::Stat;
use crate::core::token;
use crate::proxy::actions::{dispatch, local_reply};
use crate::proxy::counters::Counters;
use crate::proxy::flights::{Left, Waiter};
use crate::proxy::host::{Action, Host};
use crate::proxy::vm_state::VmState;
use log::{debug, error, info, warn};
use std::cell::OnceCell;
use std::rc::Rc;

/// Tick period while orphaned waiters wait for the root to call again.
const ORPHAN_TICK_MS: u32 = 1;

/// The root context: configuration, counters, cache and calls in flight of this VM.
pub struct Root {
    id: u32,
    rules: Option<Rc<RuleSet>>,
    state: Rc<VmState>,
}

impl Root {
    /// Root context `id` of a VM on `host`.
    pub fn new(id: u32, host: Rc<dyn Host>) -> Root {
        Root {
            id,
            rules: None,
            state: Rc::new(VmState::new(host, Counters::default())),
        }
    }

    /// The answer to a call the root made for orphaned waiters ([`Root::on_tick`]).
    pub fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        self.state.land(self.id, token_id, body_size);
    }

    /// Parses the plugin configuration; false (with the error logged) refuses it.
    pub fn on_configure(&mut self, _size: usize) -> bool {
        let host = Rc::clone(&self.state.host);
        host.follow_log_level();
        match RuleSet::parse(&host.plugin_configuration()) {
            Ok(parsed) => {
                for warning in &parsed.warnings {
                    warn!("easy-jwt: {warning}");
                }
                info!(
                    "easy-jwt: configured ({} rules, global config {})",
                    parsed.rules.rule_count(),
                    if parsed.rules.has_global() {
                        "on"
                    } else {
                        "off"
                    }
                );
                // Counts of the old configuration go to Envoy now; the ids stay (per VM).
                self.state.counters.flush(&*host);
                let counters = if self.state.counters.is_defined() {
                    self.state.counters.ids_only()
                } else {
                    Counters::define(&*host)
                };
                self.state = Rc::new(VmState::new(host, counters));
                self.rules = Some(Rc::new(parsed.rules));
                true
            }
            Err(error) => {
                error!("easy-jwt: {error}");
                false
            }
        }
    }

    /// Calls again for orphaned waiters, hands the pending counts to Envoy, then stops the
    /// timer.
    pub fn on_tick(&mut self) {
        let orphans = self.state.flights.borrow().orphans();
        for key in orphans {
            self.call_again(&key);
        }
        self.state.ticked();
    }

    /// The context of a new HTTP stream.
    pub fn filter(&self, context_id: u32) -> Filter {
        Filter {
            id: context_id,
            rules: self.rules.clone(),
            state: Rc::clone(&self.state),
            stage: Stage::Idle,
        }
    }

    /// Makes the call of an orphaned flight again, from the root: its answer comes here.
    fn call_again(&mut self, key: &str) {
        let call = {
            let flights = self.state.flights.borrow();
            let first = flights.first_waiter(key);
            first.map(|w| (Rc::clone(&w.config), w.pending.clone()))
        };
        let Some((config, pending)) = call else {
            return;
        };
        // The budget starts before the call is sent, so Envoy's timeout never outlasts it.
        let retries = self.state.retries(&config);
        let timeout = config.token_server.timeout;
        match dispatch(self.state.host(), &config, &pending, timeout) {
            Ok(token_id) => {
                let flights = &mut self.state.flights.borrow_mut();
                flights.restart(key, token_id, self.id, retries);
            }
            Err(_) => {
                let flight = self.state.flights.borrow_mut().abandon(key);
                if let Some(flight) = flight {
                    self.state.fail(flight);
                }
            }
        }
    }
}

/// Where one stream is in the auth flow.
enum Stage {
    Idle,
    /// Paused in the flight of this key (its own call, or another stream's).
    Waiting {
        key: String,
    },
    Done,
}

/// One HTTP stream.
pub struct Filter {
    id: u32,
    rules: Option<Rc<RuleSet>>,
    state: Rc<VmState>,
    stage: Stage,
}

/// The request, read through the host: every header in one read, on the first lookup (each
/// value the host returns costs a call into the VM's allocator, docs/host-semantics.md §2).
struct HostRequest<'a> {
    rules: &'a RuleSet,
    state: &'a VmState,
    headers: OnceCell<Vec<(String, Vec<u8>)>>,
}

/// Property paths of each stream attribute, in the order tried: upstream Envoy's name (the only
/// one since Envoy 1.33), then the name Higress's gateway still serves (docs/host-semantics.md §2).
fn property_paths(attribute: Attribute) -> [&'static [&'static str]; 2] {
    match attribute {
        Attribute::RouteName => [&["xds", "route_name"], &["route_name"]],
        Attribute::ClusterName => [&["xds", "cluster_name"], &["cluster_name"]],
    }
}

impl RequestView for HostRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        let headers = self
            .headers
            .get_or_init(|| self.state.host.request_headers());
        let (_, value) = headers
            .iter()
            .find(|(found, _)| found.eq_ignore_ascii_case(name))?;
        // A value that is not UTF-8 (a client may send any byte) reads as absent.
        std::str::from_utf8(value).ok()
    }

    fn attribute(&self, attribute: Attribute) -> Option<String> {
        let value = property_paths(attribute)
            .into_iter()
            .find_map(|path| self.state.host.property(path))
            .and_then(|bytes| String::from_utf8(bytes).ok());
        if value.is_none() {
            self.unserved(attribute);
        }
        value
    }
}

impl HostRequest<'_> {
    /// The host gave neither name of `attribute`: the rules that match on it cannot match this
    /// request, and on a gateway that serves neither name they never match. Said once per VM.
    fn unserved(&self, attribute: Attribute) {
        let mut unserved = self.state.unserved.get();
        let Some(seen) = unserved.get_mut(attribute as usize) else {
            return;
        };
        if *seen {
            return;
        }
        *seen = true;
        self.state.unserved.set(unserved);
        let [path, legacy] = property_paths(attribute);
        warn!(
            "easy-jwt: the host gave neither `{}` nor `{}` for a request (a gateway that serves neither, or a route without one): {} cannot match such requests (said once per VM)",
            path.join("."),
            legacy.join("."),
            self.rules.rules_using(attribute).join(", ")
        );
    }
}

impl Filter {
    /// The answer to this stream's call: lands its flight (this stream and every request that
    /// joined it).
    pub fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if self.state.land(self.id, token_id, body_size) {
            self.stage = Stage::Done;
        }
    }

    /// The stream has ended: it leaves the flight it waits in (an orphaned flight wakes the
    /// root, which calls again for the waiters left).
    pub fn on_done(&mut self) -> bool {
        if let Stage::Waiting { key } = std::mem::replace(&mut self.stage, Stage::Done) {
            let left = self.state.flights.borrow_mut().leave(&key, self.id);
            if left == Left::Orphaned {
                self.state.want_tick(ORPHAN_TICK_MS);
            }
        }
        true
    }

    /// Decides on the request headers: continue, pause for a call, or answer locally.
    pub fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(rules) = self.rules.clone() else {
            error!(
                "#{} easy-jwt: request refused: the plugin is not configured",
                self.id
            );
            self.stage = Stage::Done;
            return local_reply(
                self.state.host(),
                self.id,
                &not_configured(),
                "easy_jwt.not_configured",
            );
        };
        let request = HostRequest {
            rules: &rules,
            state: &self.state,
            headers: OnceCell::new(),
        };
        let Some(config) = rules.select(&request).cloned() else {
            return Action::Continue;
        };
        match auth::on_request(&config, &request) {
            Step::Call(pending) => self.check_token(config, pending),
            Step::Decided(decision) => {
                self.stage = Stage::Done;
                self.state.carry_out(self.id, decision)
            }
        }
    }

    /// Cache, then a call in flight for the same token, then a call of our own.
    fn check_token(&mut self, config: Rc<Config>, pending: Pending) -> Action {
        let key = VmState::cache_key(&config, &pending);
        if let Some(identity) = self.state.cached(&key, &config, &pending) {
            self.state.count(Stat::CacheHit);
            self.stage = Stage::Done;
            let decision = auth::allow(&config, &identity, pending.strip);
            return self.state.carry_out(self.id, decision);
        }
        let waiter = Waiter {
            context_id: self.id,
            config,
            pending,
        };
        let joined = self.state.flights.borrow_mut().join(&key, waiter);
        let Err(waiter) = joined else {
            self.stage = Stage::Waiting { key };
            return Action::Pause;
        };
        debug!(
            "#{} easy-jwt: checking token {} with cluster {}",
            self.id,
            token::redact(&waiter.pending.token),
            waiter.config.token_server.cluster
        );
        let config = &waiter.config;
        // The budget starts before the call is sent, so Envoy's timeout never outlasts it.
        let retries = self.state.retries(config);
        let timeout = config.token_server.timeout;
        match dispatch(self.state.host(), config, &waiter.pending, timeout) {
            Ok(token_id) => {
                let flights = &mut self.state.flights.borrow_mut();
                flights.start(key.clone(), token_id, self.id, retries, waiter);
                self.stage = Stage::Waiting { key };
                Action::Pause
            }
            Err(_) => {
                self.stage = Stage::Done;
                let decision = auth::on_dispatch_error(&waiter.config, waiter.pending);
                self.state.carry_out(self.id, decision)
            }
        }
    }
}

fn not_configured() -> Reply {
    Reply {
        status: 503,
        body: br#"{"message":"authentication plugin not configured"}"#.to_vec(),
    }
}
