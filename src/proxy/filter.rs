//! The proxy-wasm contexts: Envoy callbacks become core inputs, core decisions become hostcalls.
//!
//! [`Root`] parses the configuration in `on_configure`; each [`Filter`] (one per HTTP stream)
//! asks the core for a decision on the request headers and again when the token server answers.
//! After a local reply it returns `Pause` and never resumes (docs/host-semantics.md §4).
//!
//! Calls are coalesced per VM: while a call for a token is in flight, later requests with the
//! same token wait for its answer instead of calling again. The stream that made the call (the
//! leader) resolves them with `proxy_set_effective_context`. If the leader's client goes away
//! first, its answer is dropped by the SDK (the context is gone), so the root re-dispatches the
//! call on its next tick and resolves the followers itself.

use crate::core::auth::{self, Pending, Step};
use crate::core::config::Config;
use crate::core::reply::Reply;
use crate::core::request::{Attribute, RequestView};
use crate::core::route_rules::RuleSet;
use crate::core::stats::Stat;
use crate::core::token;
use crate::proxy::actions::{dispatch, local_reply};
use crate::proxy::counters::Counters;
use crate::proxy::host::{Action, Host};
use crate::proxy::hostio;
use crate::proxy::vm_state::{Answer, Flight, Follower, VmState};
use ::core::cell::OnceCell;
use alloc::rc::Rc;
use alloc::{string::String, vec::Vec};
use log::{debug, error, info, warn};

/// Tick period while orphaned followers wait for the root to re-dispatch their call.
const ORPHAN_TICK_MS: u32 = 1;

/// The root context: configuration, counters, cache and in-flight calls of this VM.
pub struct Root {
    rules: Option<Rc<RuleSet>>,
    state: Rc<VmState>,
    /// Calls the root re-dispatched for orphaned followers (rare, a few): token id → flight key.
    calls: Vec<(u32, String)>,
}

impl Root {
    pub fn new(host: Rc<dyn Host>) -> Root {
        Root {
            rules: None,
            state: Rc::new(VmState::new(host, Counters::default())),
            calls: Vec::new(),
        }
    }
}

impl Root {
    /// An answer to a call the root made ([`Root::redispatch`]); others are ignored.
    pub fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(at) = self.calls.iter().position(|(token, _)| *token == token_id) else {
            return;
        };
        let (_, key) = self.calls.swap_remove(at);
        let answer = Answer::read(self.state.host(), body_size);
        let first = self.state.flights.borrow().get(&key).and_then(|flight| {
            flight
                .followers
                .first()
                .map(|f| (Rc::clone(&f.config), f.pending.clone()))
        });
        if let Some((config, pending)) = first {
            self.state
                .remember(&config, &pending, &auth::judge(&config, answer.view()));
        }
        self.state.release(&key, &answer);
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

    /// Re-dispatches the calls of orphaned followers, hands the pending counts to Envoy, then
    /// stops the timer.
    pub fn on_tick(&mut self) {
        let orphans: Vec<String> = self
            .state
            .flights
            .borrow()
            .iter()
            .filter(|(_, flight)| flight.orphaned)
            .map(|(key, _)| key.clone())
            .collect();
        for key in orphans {
            self.redispatch(key);
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

    /// Calls the token server for followers whose leader went away.
    fn redispatch(&mut self, key: String) {
        let call = {
            let mut flights = self.state.flights.borrow_mut();
            let Some(flight) = flights.get_mut(&key) else {
                return;
            };
            flight.orphaned = false;
            flight
                .followers
                .first()
                .map(|f| (Rc::clone(&f.config), f.pending.clone()))
        };
        let Some((config, pending)) = call else {
            self.state.flights.borrow_mut().remove(&key);
            return;
        };
        match dispatch(self.state.host(), &config, &pending) {
            Ok(token_id) => {
                self.calls.push((token_id, key));
            }
            Err(_) => self.state.fail_followers(&key),
        }
    }
}

/// Where one stream is in the auth flow.
enum Stage {
    Idle,
    /// This stream's call is in flight.
    Leading {
        token_id: u32,
        key: String,
        config: Rc<Config>,
        pending: Pending,
    },
    /// Waiting for another stream's call for the same token.
    Following {
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
    headers: OnceCell<Vec<u8>>,
}

/// Property paths of each stream attribute, in the order tried: upstream Envoy's name (the only
/// one since Envoy 1.33), then the name Higress's gateway still serves (docs/host-semantics.md §2).
fn property_paths(attribute: Attribute) -> [&'static str; 2] {
    match attribute {
        Attribute::RouteName => ["xds\0route_name", "route_name"],
        Attribute::ClusterName => ["xds\0cluster_name", "cluster_name"],
    }
}

impl RequestView for HostRequest<'_> {
    fn header(&self, name: &str) -> Option<&str> {
        let headers = self
            .headers
            .get_or_init(|| self.state.host.request_headers());
        ::core::str::from_utf8(hostio::first_value(headers, name)?).ok()
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
            "easy-jwt: the host gave neither `{}` nor `{legacy}` for a request (a gateway that serves neither, or a route without one): {} cannot match such requests (said once per VM)",
            path.replace('\0', "."),
            self.rules.rules_using(attribute).join(", ")
        );
    }
}

impl Filter {
    /// The answer to this stream's call (the host delivers it to the root; [`crate::proxy::abi`]
    /// finds this stream by the token).
    pub fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if !matches!(&self.stage, Stage::Leading { token_id: t, .. } if *t == token_id) {
            return;
        }
        let Stage::Leading {
            key,
            config,
            pending,
            ..
        } = ::core::mem::replace(&mut self.stage, Stage::Done)
        else {
            return;
        };
        let answer = Answer::read(self.state.host(), body_size);
        debug!(
            "#{} easy-jwt: token server answered {}",
            self.id,
            answer.status.unwrap_or(0)
        );
        let verdict = auth::judge(&config, answer.view());
        self.state.remember(&config, &pending, &verdict);
        // The answer arrives on the root context: act on this stream from here on.
        match self.state.host.set_effective_context(self.id) {
            Ok(()) => self
                .state
                .finish(self.id, auth::decide(&config, verdict, pending)),
            Err(status) => warn!("#{} easy-jwt: stream gone: {status}", self.id),
        }
        self.state.release(&key, &answer);
    }

    /// Whether the stream waits for a call's answer (its own, or another stream's it follows).
    pub fn is_waiting(&self) -> bool {
        matches!(self.stage, Stage::Leading { .. } | Stage::Following { .. })
    }

    /// The token of this stream's call while it is in flight.
    pub fn call_token(&self) -> Option<u32> {
        match self.stage {
            Stage::Leading { token_id, .. } => Some(token_id),
            _ => None,
        }
    }

    /// The stream has ended: leave its call (to the root) or its flight.
    pub fn on_done(&mut self) -> bool {
        match ::core::mem::replace(&mut self.stage, Stage::Done) {
            Stage::Leading { key, .. } => self.abandon(&key),
            Stage::Following { key } => self.unfollow(&key),
            Stage::Idle | Stage::Done => {}
        }
        true
    }

    /// A stream the VM cannot serve (its root does not exist, or the host re-entered the VM):
    /// refused with a local 503, never let through unchecked.
    pub fn refuse_unknown(host: &dyn Host, context_id: u32) -> Action {
        error!("#{context_id} easy-jwt: request refused: no context for this stream");
        local_reply(
            host,
            context_id,
            &not_configured(),
            "easy_jwt.not_configured",
        )
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

    /// Cache, then an in-flight call for the same token, then a call of our own.
    fn check_token(&mut self, config: Rc<Config>, pending: Pending) -> Action {
        if let Some(identity) = self.state.cached(&config, &pending) {
            self.state.count(Stat::CacheHit);
            self.stage = Stage::Done;
            let decision = auth::allow(&config, &identity, pending.strip);
            return self.state.carry_out(self.id, decision);
        }
        let key = VmState::cache_key(&config, &pending);
        if let Some(flight) = self.state.flights.borrow_mut().get_mut(&key) {
            flight.followers.push(Follower {
                context_id: self.id,
                config,
                pending,
            });
            self.stage = Stage::Following { key };
            return Action::Pause;
        }
        debug!(
            "#{} easy-jwt: checking token {} with cluster {}",
            self.id,
            token::redact(&pending.token),
            config.token_server.cluster
        );
        match dispatch(self.state.host(), &config, &pending) {
            Ok(token_id) => {
                self.state
                    .flights
                    .borrow_mut()
                    .insert(key.clone(), Flight::default());
                self.stage = Stage::Leading {
                    token_id,
                    key,
                    config,
                    pending,
                };
                Action::Pause
            }
            Err(_) => {
                self.stage = Stage::Done;
                let decision = auth::on_dispatch_error(&config, pending);
                self.state.carry_out(self.id, decision)
            }
        }
    }

    /// The leader's stream ended before its answer: hand the followers to the root.
    fn abandon(&self, key: &str) {
        let mut flights = self.state.flights.borrow_mut();
        let Some(flight) = flights.get_mut(key) else {
            return;
        };
        if flight.followers.is_empty() {
            flights.remove(key);
            return;
        }
        flight.orphaned = true;
        drop(flights);
        self.state.want_tick(ORPHAN_TICK_MS);
    }

    /// A follower's stream ended: it no longer waits.
    fn unfollow(&self, key: &str) {
        if let Some(flight) = self.state.flights.borrow_mut().get_mut(key) {
            flight.followers.retain(|f| f.context_id != self.id);
        }
    }
}

fn not_configured() -> Reply {
    Reply {
        status: 503,
        body: br#"{"message":"authentication plugin not configured"}"#.to_vec(),
    }
}
