//! The proxy-wasm adapter: Envoy callbacks become core inputs, core decisions become hostcalls.
//!
//! `Root` parses the configuration in `on_configure` and hands each stream an `Rc` of it;
//! `Filter` (one per HTTP stream) asks the core for a [`Decision`] on request headers and again
//! when the token server answers, and carries it out. After a local reply it returns `Pause` and
//! never resumes (host-semantics §4).

use crate::auth::{self, AuthResponse, Decision, Pending};
use crate::config::Config;
use crate::hostio::{self, Buffer, Map};
use crate::reply::Reply;
use crate::request::{HeaderEdit, RequestView};
use crate::rules::RuleSet;
use crate::stats::Stat;
use crate::token;
use log::{debug, error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use std::rc::Rc;

/// Largest token-server answer read; a longer one is an invalid answer (fail closed).
const MAX_AUTH_BODY: usize = 64 * 1024;

/// Per-VM counters (ids are per VM; Envoy sums them across VMs by name).
#[derive(Debug, Default)]
struct Counters {
    ids: [Option<u32>; Stat::ALL.len()],
}

impl Counters {
    fn define() -> Counters {
        let mut counters = Counters::default();
        for stat in Stat::ALL {
            match hostio::define_counter(stat.name()) {
                Ok(id) => {
                    if let Some(slot) = counters.ids.get_mut(stat.index()) {
                        *slot = Some(id);
                    }
                }
                Err(status) => warn!(
                    "easy-jwt: cannot define counter {}: {status:?}",
                    stat.name()
                ),
            }
        }
        counters
    }

    fn count(&self, stat: Stat) {
        if let Some(Some(id)) = self.ids.get(stat.index()) {
            let _ = hostio::increment(*id);
        }
    }
}

/// The root context: configuration and counters of this VM.
#[derive(Default)]
pub struct Root {
    rules: Option<Rc<RuleSet>>,
    counters: Rc<Counters>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let bytes = hostio::buffer(Buffer::PluginConfiguration, usize::MAX);
        match RuleSet::parse(&bytes) {
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
                if self.counters.ids.iter().all(Option::is_none) {
                    self.counters = Rc::new(Counters::define());
                }
                self.rules = Some(Rc::new(parsed.rules));
                true
            }
            Err(error) => {
                error!("easy-jwt: {error}");
                false
            }
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Filter {
            id: context_id,
            rules: self.rules.clone(),
            counters: Rc::clone(&self.counters),
            state: State::Idle,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

/// Where one stream is in the auth flow.
enum State {
    Idle,
    Waiting {
        token_id: u32,
        config: Rc<Config>,
        pending: Pending,
    },
    Done,
}

/// One HTTP stream.
pub struct Filter {
    id: u32,
    rules: Option<Rc<RuleSet>>,
    counters: Rc<Counters>,
    state: State,
}

/// The request headers, read through hostcalls (only the ones the core asks for).
struct HostRequest;

impl RequestView for HostRequest {
    fn header(&self, name: &str) -> Option<String> {
        hostio::header(Map::RequestHeaders, name).and_then(|bytes| String::from_utf8(bytes).ok())
    }

    fn property(&self, name: &str) -> Option<String> {
        hostio::property(name).and_then(|bytes| String::from_utf8(bytes).ok())
    }
}

impl Context for Filter {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let State::Waiting {
            token_id: expected, ..
        } = &self.state
        else {
            return;
        };
        if *expected != token_id {
            return;
        }
        let State::Waiting {
            config, pending, ..
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return;
        };
        let status = hostio::header(Map::CallResponseHeaders, ":status")
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u16>().ok());
        let body = if body_size <= MAX_AUTH_BODY {
            hostio::buffer(Buffer::CallResponseBody, body_size)
        } else {
            warn!(
                "#{} easy-jwt: token server answer of {body_size} bytes ignored",
                self.id
            );
            Vec::new()
        };
        debug!("#{} easy-jwt: token server answered {status:?}", self.id);
        let decision = auth::on_response(
            &config,
            pending,
            AuthResponse {
                status,
                body: &body,
            },
        );
        if self.carry_out(&config, decision) == Action::Continue {
            if let Err(status) = hostio::resume_request() {
                warn!("#{} easy-jwt: resume failed: {status:?}", self.id);
            }
        }
    }
}

impl HttpContext for Filter {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Some(rules) = self.rules.clone() else {
            error!(
                "#{} easy-jwt: request refused: the plugin is not configured",
                self.id
            );
            return self.local_reply(&not_configured(), "easy_jwt.not_configured");
        };
        let Some(config) = rules.select(&HostRequest).cloned() else {
            return Action::Continue;
        };
        let decision = auth::on_request(&config, &HostRequest);
        match decision {
            Decision::Call(call) => self.dispatch(config, call.body, call.pending),
            other => self.carry_out(&config, other),
        }
    }
}

impl Filter {
    /// Sends the auth call and pauses; a dispatch error is a token-server failure.
    fn dispatch(&mut self, config: Rc<Config>, body: Vec<u8>, pending: Pending) -> Action {
        let server = &config.token_server;
        let headers = vec![
            (":method", "POST"),
            (":path", server.path.as_str()),
            (":authority", server.authority.as_str()),
            ("content-type", "application/json"),
        ];
        debug!(
            "#{} easy-jwt: checking token {} with cluster {}",
            self.id,
            token::redact(&pending.token),
            server.cluster
        );
        match hostcalls::dispatch_http_call(
            &server.cluster,
            headers,
            Some(&body),
            vec![],
            server.timeout,
        ) {
            Ok(token_id) => {
                self.state = State::Waiting {
                    token_id,
                    config,
                    pending,
                };
                Action::Pause
            }
            Err(status) => {
                error!(
                    "#{} easy-jwt: cannot call the token server: Envoy refused cluster `{}` ({status:?}). \
                     The cluster must exist in Envoy: on Higress register the service in the McpBridge \
                     named `default` (or set global.onlyPushRouteCluster=false); on plain Envoy add it \
                     to the clusters of envoy.yaml",
                    self.id, server.cluster
                );
                let decision = auth::on_dispatch_error(&config, pending);
                self.carry_out(&config, decision)
            }
        }
    }

    /// Applies a final decision; returns `Continue` when the request may go on.
    fn carry_out(&mut self, config: &Config, decision: Decision) -> Action {
        self.state = State::Done;
        match decision {
            Decision::Continue { edits, stat } => {
                self.counters.count(stat);
                self.apply_edits(&edits);
                Action::Continue
            }
            Decision::Reply { reply, stat } => {
                self.counters.count(stat);
                debug!(
                    "#{} easy-jwt: {:?}: replying {}",
                    self.id, stat, reply.status
                );
                self.local_reply(&reply, details(stat))
            }
            Decision::Call(call) => {
                // Only `on_request` asks for a call, and it is dispatched before reaching here.
                let decision = auth::on_dispatch_error(config, call.pending);
                self.carry_out(config, decision)
            }
        }
    }

    fn apply_edits(&self, edits: &[HeaderEdit]) {
        for edit in edits {
            let result = match edit {
                HeaderEdit::Set(name, value) => {
                    hostio::replace_header(Map::RequestHeaders, name, value)
                }
                HeaderEdit::Remove(name) => hostio::remove_header(Map::RequestHeaders, name),
            };
            if let Err(status) = result {
                warn!(
                    "#{} easy-jwt: header edit {edit:?} failed: {status:?}",
                    self.id
                );
            }
        }
    }

    fn local_reply(&mut self, reply: &Reply, details: &str) -> Action {
        self.state = State::Done;
        if let Err(status) =
            hostio::send_local_response(reply.status, details, &reply.body, &Reply::HEADERS)
        {
            warn!("#{} easy-jwt: local reply failed: {status:?}", self.id);
        }
        Action::Pause
    }
}

fn not_configured() -> Reply {
    Reply {
        status: 503,
        body: br#"{"message":"authentication plugin not configured"}"#.to_vec(),
    }
}

/// Envoy response-code details for each refusal.
fn details(stat: Stat) -> &'static str {
    match stat {
        Stat::TokenMissing => "easy_jwt.token_missing",
        Stat::Denied => "easy_jwt.denied",
        _ => "easy_jwt.token_server_failure",
    }
}
