//! The guest-side breakdown: wasm instructions (wasmtime fuel) and hostcalls per request, in the
//! in-process host (`easy-jwt-host`, [`Plugin::load_metered`]).
//!
//! Every path runs in its own VM, configured like the Envoy run (same plugin configuration, the
//! token server as the raw cluster `token-server`, Envoy's default `info` log level), and every
//! request goes through what Envoy calls for it with a `direct_response` route behind the
//! filter: context create, request headers (end of stream), the token-server answer when the
//! filter makes a call (answered in-process: `200 {"uid":N}`, or `401` to a forged token),
//! response headers and body (or the local reply's), log, done, delete. The counts are exact
//! (wasmtime counts one unit of fuel per wasm operator, none for `nop`/`drop`/`block`/`loop`/
//! `end`…), so one run is enough; `hostcalls` counts every wasm → host call (`proxy_*` and WASI).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use easy_jwt_host::vm::{CallOutcome, LogLevel, StreamProps, StreamState, VmConfig};
use easy_jwt_host::{HostEnv, ManualClock, Plugin, Vm};

use crate::scenario::{Auth, Tokens, API_PATH, IGNORED_PATH, TOKEN_CLUSTER};

/// The wasm module a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Module {
    /// `noop_plugin.wasm`: every callback returns Continue.
    Noop,
    /// `call_floor_plugin.wasm`: one call per request, one header set on the answer.
    CallFloor,
    /// `header_floor_plugin.wasm`: easy-jwt's exports, one read of all headers, one replace.
    HeaderFloor,
    /// The plugin under test.
    Plugin,
}

/// How every request of a case must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Continues upstream after `calls` token-server calls.
    Upstream { calls: usize },
    /// Answered locally with `status` after `calls` token-server calls.
    Reply { status: u16, calls: usize },
}

/// One guest-side path.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// Row name (the same as the Envoy table's row of that path).
    pub name: &'static str,
    pub module: Module,
    pub path: &'static str,
    pub auth: Auth,
    pub expect: Expect,
}

/// The paths measured, in table order.
pub const CASES: [Case; 9] = [
    Case {
        name: "no-op wasm filter",
        module: Module::Noop,
        path: API_PATH,
        auth: Auth::Cached,
        expect: Expect::Upstream { calls: 0 },
    },
    Case {
        name: "call floor (call + resume)",
        module: Module::CallFloor,
        path: API_PATH,
        auth: Auth::Fresh,
        expect: Expect::Upstream { calls: 1 },
    },
    Case {
        name: "header floor (read all + replace one)",
        module: Module::HeaderFloor,
        path: API_PATH,
        auth: Auth::Anonymous,
        expect: Expect::Upstream { calls: 0 },
    },
    Case {
        name: "easy-jwt: ignored URL",
        module: Module::Plugin,
        path: IGNORED_PATH,
        auth: Auth::None,
        expect: Expect::Upstream { calls: 0 },
    },
    Case {
        name: "easy-jwt: missing token",
        module: Module::Plugin,
        path: API_PATH,
        auth: Auth::None,
        expect: Expect::Reply {
            status: 401,
            calls: 0,
        },
    },
    Case {
        name: "easy-jwt: anonymous token",
        module: Module::Plugin,
        path: API_PATH,
        auth: Auth::Anonymous,
        expect: Expect::Upstream { calls: 0 },
    },
    Case {
        name: "easy-jwt: cache hit",
        module: Module::Plugin,
        path: API_PATH,
        auth: Auth::Cached,
        expect: Expect::Upstream { calls: 0 },
    },
    Case {
        name: "easy-jwt: token call",
        module: Module::Plugin,
        path: API_PATH,
        auth: Auth::Fresh,
        expect: Expect::Upstream { calls: 1 },
    },
    Case {
        name: "easy-jwt: denied (401)",
        module: Module::Plugin,
        path: API_PATH,
        auth: Auth::Forged,
        expect: Expect::Reply {
            status: 401,
            calls: 1,
        },
    },
];

/// What to load.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub plugin: PathBuf,
    pub noop: PathBuf,
    /// `None` skips the call-floor row.
    pub call_floor: Option<PathBuf>,
    /// `None` skips the header-floor row.
    pub header_floor: Option<PathBuf>,
    /// The plugin configuration ([`crate::scenario::plugin_config`]).
    pub config: String,
}

/// One measured path.
#[derive(Debug, Clone)]
pub struct Row {
    pub name: &'static str,
    /// Wasm instructions per request (wasmtime fuel).
    pub instructions: f64,
    /// Hostcalls per request.
    pub hostcalls: f64,
    /// Requests measured.
    pub requests: usize,
}

/// Requests between two runs of the root's tick: the plugin hands its counts to Envoy on a 100 ms
/// timer, so this is a VM serving 1,000 requests a second (the tick's share grows as load falls).
pub const REQUESTS_PER_TICK: usize = 100;

/// Measures every case of [`CASES`] (`warmup` unmeasured requests first, then `requests`, with the
/// root's tick run every [`REQUESTS_PER_TICK`] and counted in).
pub fn measure(inputs: &Inputs, warmup: usize, requests: usize) -> Result<Vec<Row>, String> {
    if requests == 0 {
        return Err("the guest side needs at least 1 request per path".to_string());
    }
    let load = |path: &PathBuf| {
        Plugin::load_metered(path).map_err(|e| format!("cannot load {}: {e}", path.display()))
    };
    let plugin = load(&inputs.plugin)?;
    let noop = load(&inputs.noop)?;
    let floor = match &inputs.call_floor {
        Some(p) => Some(load(p)?),
        None => None,
    };
    let header_floor = match &inputs.header_floor {
        Some(p) => Some(load(p)?),
        None => None,
    };
    let env = HostEnv::with_clock(fixed_clock());
    let mut tokens = Tokens::new(9_000_000);
    let mut rows = Vec::new();
    for case in CASES {
        let (module, config) = match case.module {
            Module::Noop => (&noop, String::new()),
            Module::CallFloor => match &floor {
                Some(f) => (f, TOKEN_CLUSTER.to_string()),
                None => continue,
            },
            Module::HeaderFloor => match &header_floor {
                Some(f) => (f, String::new()),
                None => continue,
            },
            Module::Plugin => (&plugin, inputs.config.clone()),
        };
        let mut vm = start(module, &env, config.as_bytes())?;
        let mut runner = Runner {
            case,
            tokens: &mut tokens,
        };
        if case.auth == Auth::Cached && case.module == Module::Plugin {
            // Fills the cache: the first request of the cached token calls the token server.
            runner.request(&mut vm, Some(Expect::Upstream { calls: 1 }))?;
        }
        for _ in 0..warmup {
            runner.request(&mut vm, None)?;
        }
        vm.tick();
        let fuel0 = vm.fuel_consumed().unwrap_or(0);
        let calls0 = vm.hostcalls().unwrap_or(0);
        for i in 1..=requests {
            runner.request(&mut vm, None)?;
            if i % REQUESTS_PER_TICK == 0 {
                vm.tick();
            }
        }
        let fuel = vm.fuel_consumed().unwrap_or(0).saturating_sub(fuel0);
        let calls = vm.hostcalls().unwrap_or(0).saturating_sub(calls0);
        rows.push(Row {
            name: case.name,
            instructions: fuel as f64 / requests as f64,
            hostcalls: calls as f64 / requests as f64,
            requests,
        });
    }
    Ok(rows)
}

/// A manual clock at the current wall time: JWT `exp` checks make sense and cache entries never
/// expire during the run.
fn fixed_clock() -> Arc<ManualClock> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    Arc::new(ManualClock::new(u64::try_from(now).unwrap_or(u64::MAX)))
}

/// A configured VM at Envoy's default `info` log level.
fn start(plugin: &Plugin, env: &HostEnv, configuration: &[u8]) -> Result<Vm, String> {
    let cfg = VmConfig {
        plugin_configuration: configuration.to_vec(),
        clusters: [TOKEN_CLUSTER.to_string()].into(),
        log_level: LogLevel::Info,
        ..VmConfig::default()
    };
    let vm = Vm::start(plugin, env, cfg).map_err(|e| format!("VM does not start: {e}"))?;
    if !vm.configured() {
        return Err(format!("configuration rejected: {:?}", vm.logs()));
    }
    Ok(vm)
}

struct Runner<'a> {
    case: Case,
    tokens: &'a mut Tokens,
}

impl Runner<'_> {
    /// One whole request as Envoy drives it; checks it ends as `expect` (else the case's).
    fn request(&mut self, vm: &mut Vm, expect: Option<Expect>) -> Result<(), String> {
        let expect = expect.unwrap_or(self.case.expect);
        let (authorization, uid) = self.tokens.authorization(self.case.auth);
        let headers = request_headers(self.case.path, authorization);
        let id = vm.new_stream(StreamProps::default());
        let mut state = vm.on_request_headers(id, headers, true);
        let mut calls = 0;
        if matches!(state, StreamState::Paused) {
            for call in vm.take_calls() {
                calls += 1;
                vm.deliver_call(call.token, answer(uid));
            }
            state = vm.state(id);
        }
        let got = match &state {
            StreamState::Continued => {
                let sent_uid = vm
                    .request_headers(id)
                    .into_iter()
                    .find(|(k, _)| k == "x-auth-user")
                    .map(|(_, v)| v);
                let want_uid = match (self.case.module, self.case.auth) {
                    (Module::Plugin, Auth::None) => Some("0".to_string()), // ignored URL
                    (Module::Plugin, _) => uid.map(|u| u.to_string()),
                    (Module::CallFloor, _) => Some("1".to_string()),
                    (Module::HeaderFloor, _) => Some("0".to_string()),
                    (Module::Noop, _) => None,
                };
                if sent_uid != want_uid {
                    return Err(format!(
                        "{}: x-auth-user upstream is {sent_uid:?}, expected {want_uid:?}",
                        self.case.name
                    ));
                }
                vm.on_response_headers(id, response_headers(), false);
                vm.on_response_body(id, b"ok", true);
                Some(Expect::Upstream { calls })
            }
            StreamState::LocalReply(reply) => Some(Expect::Reply {
                status: reply.status,
                calls,
            }),
            StreamState::Pending | StreamState::Paused | StreamState::Ended => None,
        };
        vm.end_stream(id);
        vm.take_events();
        vm.take_logs();
        if got != Some(expect) {
            return Err(format!(
                "{}: expected {expect:?}, got {state:?} after {calls} calls (VM failed: {:?})",
                self.case.name,
                vm.failed()
            ));
        }
        Ok(())
    }
}

/// The request headers as Envoy hands them to the filter (`x-request-id` and
/// `x-forwarded-proto` added by the connection manager).
fn request_headers(path: &str, authorization: Option<String>) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = [
        (":authority", "testbed"),
        (":path", path),
        (":method", "GET"),
        (":scheme", "http"),
        ("user-agent", "envoy-bench/1"),
        ("accept", "*/*"),
        ("x-forwarded-proto", "http"),
        ("x-request-id", "0b7a1f0e-6c1d-4c5e-9f51-3d2a8c7e4b10"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect();
    if let Some(value) = authorization {
        headers.push(("authorization".to_string(), value));
    }
    headers
}

/// The `direct_response` route's answer headers.
fn response_headers() -> Vec<(String, String)> {
    [
        (":status", "200"),
        ("content-length", "2"),
        ("content-type", "text/plain"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect()
}

/// The token server's answer: `200 {"uid":N}` for a valid token, else its 401.
fn answer(uid: Option<i64>) -> CallOutcome {
    let (status, body) = match uid {
        Some(uid) => ("200", format!("{{\"uid\":{uid}}}")),
        None => (
            "401",
            "{\"message\":\"token signature is invalid\"}".to_string(),
        ),
    };
    CallOutcome::Response {
        headers: vec![
            (":status".to_string(), status.to_string()),
            ("content-type".to_string(), "application/json".to_string()),
            ("content-length".to_string(), body.len().to_string()),
        ],
        body: body.into_bytes(),
        trailers: Vec::new(),
    }
}
