//! `envoy-bench` (`make bench`): instructions Envoy executes per request with plugin.wasm on each
//! of its paths, next to no filter, a no-op wasm filter, a minimal call-and-resume wasm filter,
//! Envoy's `jwt_authn` and a Lua filter making the same token-server call; then the artifact's
//! size. (A guest-side breakdown comes from callgrind's own function profile of the JIT code:
//! `--profile`.) Markdown on stdout, progress on stderr.
//!
//! One Envoy (`--concurrency 1`) runs under `valgrind --tool=callgrind --instr-atstart=no`, with
//! one listener per configuration, each answering from a `direct_response` route (no upstream).
//! For each path: fresh keep-alive connections, `--warmup` requests (checked: status and, through
//! a route that echoes it, the `x-auth-user` Envoy would send upstream), then instrumentation on
//! (`callgrind_control -i on`), `--requests` requests sent one at a time round-robin over
//! `--connections` connections, instrumentation off, dump; the figure is the dump's `totals:`
//! (every Envoy thread, V8's and LuaJIT's generated code included) divided by the requests. The
//! plugin's counters and the token server's request count are checked around every batch.
//! Stats are flushed only on admin requests and the watchdogs are slowed down, so nothing but the
//! requests (and Envoy's 0.5 s date-header timer) runs while instrumentation is on.
//!
//! The token server is the reference one (`deploy/token-server`, HS256 JWTs) on 127.0.0.1: its
//! work is outside Envoy's process and not counted; Envoy's side of the call is.
//!
//! `--profile <row>` keeps that row's callgrind dump and prints its top functions by self
//! instructions (`callgrind_annotate`), instructions per request by origin (JIT code, libc, the
//! Envoy binary — stripped, so its functions are addresses) and the functions that grew most
//! over no filter.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The plugin hands its counts to Envoy on a 100 ms timer (`proxy::counters::FLUSH_MS`); Envoy
/// under valgrind runs that timer late. Every batch waits this long after its warm-up (so the
/// counts read before it are complete) and after its last request, still instrumented (so the
/// flush of its own counts is measured, and counted by `check_counters`). Rows without the
/// plugin wait too: an idle Envoy runs the same timers for all of them.
const COUNTS_SETTLE: Duration = Duration::from_millis(500);

use clap::Parser;
use easy_jwt_bench::callgrind::{self, CallgrindEnvoy, FnKey, Launch, Resolver, Tools};
use easy_jwt_bench::scenario::{
    base64url, plugin_config, Auth, Shape, Tokens, API_PATH, IGNORED_PATH, TOKEN_CLUSTER,
};
use easy_jwt_bench::table::{int, ratio, signed, Table};
use easy_jwt_testbed::envoy::{newest, Bootstrap, EnvoyBin, Listener};
use easy_jwt_testbed::http::{Conn, Request, Response};
use serde_json::{json, Value};
use token_server::{BackgroundServer, Config, DEFAULT_SECRET};

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "envoy-bench",
    about = "Instructions per request of plugin.wasm in Envoy (callgrind), vs no filter, a no-op \
             wasm filter, a call-and-resume floor, jwt_authn and Lua; guest-side wasm \
             instructions and hostcalls; artifact size"
)]
struct Cli {
    /// The plugin module.
    #[arg(long, default_value = "plugin.wasm")]
    plugin: PathBuf,
    /// The call-and-resume floor filter (`cargo build --target wasm32-wasip1 --profile
    /// wasm-release -p call-floor-plugin`).
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/wasm-release/call_floor_plugin.wasm"
    )]
    call_floor: PathBuf,
    /// The header floor: easy-jwt's exports, one read of all request headers and one header
    /// replace per request, no logic (`-p header-floor-plugin`).
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/wasm-release/header_floor_plugin.wasm"
    )]
    header_floor: PathBuf,
    /// The SDK floor: a proxy-wasm SDK plugin that reads all request headers and replaces one
    /// per request, no logic (`-p sdk-floor-plugin`); measured reading `String`s and bytes.
    #[arg(
        long,
        default_value = "target/wasm32-wasip1/wasm-release/sdk_floor_plugin.wasm"
    )]
    sdk_floor: PathBuf,
    /// Envoy binary (default: the first of ENVOY_BINS / ENVOY / target/envoy/1.40.0/envoy).
    #[arg(long)]
    envoy: Option<PathBuf>,
    /// Base plugin configuration (the token server is set to the raw cluster `token-server`).
    #[arg(long, default_value = "deploy/plugin-config.json")]
    config: PathBuf,
    /// Measured requests per path.
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Unmeasured (checked) requests per path before its batch.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// Keep-alive connections per path (requests go one at a time, round-robin).
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Measure every path this many times (interleaved) and show the spread.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Only these rows (comma-separated keys; the no-filter rows they need are added). Keys:
    /// base_none, base_anon, base_jwt, noop, floor, header_floor, sdk_floor, sdk_floor_bytes,
    /// ignored, missing, anonymous, cache_hit,
    /// token_call, denied, jwt_missing, jwt_valid, lua_call.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Keep this row's callgrind dump and print its profile (top functions by self instructions).
    #[arg(long)]
    profile: Option<String>,
    /// Functions shown by --profile.
    #[arg(long, default_value_t = 30)]
    top: usize,
    /// valgrind to run (callgrind_control and callgrind_annotate are looked up next to it).
    #[arg(long, default_value = "valgrind")]
    valgrind: PathBuf,
    /// Where the bootstrap, Envoy's and valgrind's logs and the callgrind dumps go (emptied).
    #[arg(long, default_value = "target/envoy-bench")]
    out_dir: PathBuf,
    /// Seconds to wait for Envoy under valgrind to be ready.
    #[arg(long, default_value_t = 600)]
    start_timeout: u64,
}

/// How a row's responses must look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// 200 from the route; `x-auth-user` as given (`None`: not checked).
    Ok(Uid),
    /// A local reply with this status.
    Refused(u16),
}

/// The `x-auth-user` Envoy sends upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Uid {
    /// Not checked (no filter sets it).
    Any,
    /// This value.
    Is(i64),
    /// The uid of the request's token.
    OfToken,
}

/// Which counters a batch of `n` requests must move by `n` (the rest of the watched ones by 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moves {
    Nothing,
    /// `wasmcustom.easy_jwt.<name>` (and the token server's requests when `calls`).
    Plugin(&'static str, bool),
    /// The token server's requests only.
    Calls,
    /// `http.jwt.jwt_authn.<name>`.
    Jwt(&'static str),
}

/// One measured path.
#[derive(Debug, Clone, Copy)]
struct Row {
    key: &'static str,
    name: &'static str,
    listener: &'static str,
    path: &'static str,
    auth: Auth,
    outcome: Outcome,
    moves: Moves,
}

const ROWS: [Row; 17] = [
    Row {
        key: "base_none",
        name: "no filter (no token)",
        listener: "base",
        path: API_PATH,
        auth: Auth::None,
        outcome: Outcome::Ok(Uid::Any),
        moves: Moves::Nothing,
    },
    Row {
        key: "base_anon",
        name: "no filter (anonymous token)",
        listener: "base",
        path: API_PATH,
        auth: Auth::Anonymous,
        outcome: Outcome::Ok(Uid::Any),
        moves: Moves::Nothing,
    },
    Row {
        key: "base_jwt",
        name: "no filter (JWT)",
        listener: "base",
        path: API_PATH,
        auth: Auth::Cached,
        outcome: Outcome::Ok(Uid::Any),
        moves: Moves::Nothing,
    },
    Row {
        key: "noop",
        name: "no-op wasm filter",
        listener: "noop",
        path: API_PATH,
        auth: Auth::Cached,
        outcome: Outcome::Ok(Uid::Any),
        moves: Moves::Nothing,
    },
    Row {
        key: "floor",
        name: "call floor (call + resume)",
        listener: "floor",
        path: API_PATH,
        auth: Auth::Fresh,
        outcome: Outcome::Ok(Uid::Is(1)),
        moves: Moves::Calls,
    },
    Row {
        key: "header_floor",
        name: "header floor (read all + replace one)",
        listener: "header_floor",
        path: API_PATH,
        auth: Auth::Anonymous,
        outcome: Outcome::Ok(Uid::Is(0)),
        moves: Moves::Nothing,
    },
    Row {
        key: "sdk_floor",
        name: "SDK floor (read all as String + replace one)",
        listener: "sdk_floor",
        path: API_PATH,
        auth: Auth::Anonymous,
        outcome: Outcome::Ok(Uid::Is(0)),
        moves: Moves::Nothing,
    },
    Row {
        key: "sdk_floor_bytes",
        name: "SDK floor (read all as bytes + replace one)",
        listener: "sdk_floor_bytes",
        path: API_PATH,
        auth: Auth::Anonymous,
        outcome: Outcome::Ok(Uid::Is(0)),
        moves: Moves::Nothing,
    },
    Row {
        key: "ignored",
        name: "easy-jwt: ignored URL",
        listener: "plugin",
        path: IGNORED_PATH,
        auth: Auth::None,
        outcome: Outcome::Ok(Uid::Is(0)),
        moves: Moves::Plugin("ignored", false),
    },
    Row {
        key: "missing",
        name: "easy-jwt: missing token",
        listener: "plugin",
        path: API_PATH,
        auth: Auth::None,
        outcome: Outcome::Refused(401),
        moves: Moves::Plugin("token_missing", false),
    },
    Row {
        key: "anonymous",
        name: "easy-jwt: anonymous token",
        listener: "plugin",
        path: API_PATH,
        auth: Auth::Anonymous,
        outcome: Outcome::Ok(Uid::Is(0)),
        moves: Moves::Plugin("anonymous", false),
    },
    Row {
        key: "cache_hit",
        name: "easy-jwt: cache hit",
        listener: "plugin",
        path: API_PATH,
        auth: Auth::Cached,
        outcome: Outcome::Ok(Uid::OfToken),
        moves: Moves::Plugin("cache_hit", false),
    },
    Row {
        key: "token_call",
        name: "easy-jwt: token call",
        listener: "plugin",
        path: API_PATH,
        auth: Auth::Fresh,
        outcome: Outcome::Ok(Uid::OfToken),
        moves: Moves::Plugin("allowed", true),
    },
    Row {
        key: "denied",
        name: "easy-jwt: denied (401)",
        listener: "plugin",
        path: API_PATH,
        auth: Auth::Forged,
        outcome: Outcome::Refused(401),
        moves: Moves::Plugin("denied", true),
    },
    Row {
        key: "jwt_missing",
        name: "jwt_authn: missing token",
        listener: "jwt",
        path: API_PATH,
        auth: Auth::None,
        outcome: Outcome::Refused(401),
        moves: Moves::Jwt("denied"),
    },
    Row {
        key: "jwt_valid",
        name: "jwt_authn: valid JWT",
        listener: "jwt",
        path: API_PATH,
        auth: Auth::Cached,
        outcome: Outcome::Ok(Uid::OfToken),
        moves: Moves::Jwt("allowed"),
    },
    Row {
        key: "lua_call",
        name: "Lua: token call",
        listener: "lua",
        path: API_PATH,
        auth: Auth::Fresh,
        outcome: Outcome::Ok(Uid::OfToken),
        moves: Moves::Calls,
    },
];

/// The header that routes a (warm-up) request to the route echoing `x-auth-user`.
const CHECK_HEADER: &str = "x-bench-check";
/// The response header carrying the `x-auth-user` Envoy would have sent upstream.
const ECHO_HEADER: &str = "x-bench-auth-user";
/// Token-call timeout in every filter: generous, Envoy runs ~50× slower under valgrind.
const CALL_TIMEOUT_MS: u64 = 30_000;

/// The Lua filter: the same token-server call as the plugin's, uid into `x-auth-user`.
const LUA: &str = r#"
function envoy_on_request(handle)
  local auth = handle:headers():get("authorization")
  if auth == nil or string.sub(auth, 1, 7) ~= "Bearer " then
    handle:respond({[":status"] = "401", ["content-type"] = "application/json"},
      '{"message":"missing token"}')
    return
  end
  local token = string.sub(auth, 8)
  local headers, body = handle:httpCall("token-server", {
      [":method"] = "POST",
      [":path"] = "/api/token/auth",
      [":authority"] = "token-server",
      ["content-type"] = "application/json",
    }, '{"token":"' .. token .. '"}', TIMEOUT_MS)
  local uid = nil
  if headers[":status"] == "200" then
    uid = string.match(body, '"uid"%s*:%s*"?(%d+)')
  end
  if uid == nil then
    handle:respond({[":status"] = "401", ["content-type"] = "application/json"},
      '{"message":"invalid token"}')
    return
  end
  handle:headers():replace("x-auth-user", uid)
end
"#;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let tools = match Tools::find(&cli.valgrind) {
        Ok(t) => t,
        Err(e) => {
            println!("valgrind not found: apt-get install valgrind");
            eprintln!("envoy-bench: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&cli, &tools) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("envoy-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// One batch's result.
#[derive(Debug, Clone)]
struct Measured {
    /// Instructions per request, one per repeat.
    per_request: Vec<f64>,
    /// The last repeat's dump.
    dump: PathBuf,
}

impl Measured {
    fn mean(&self) -> f64 {
        self.per_request.iter().sum::<f64>() / self.per_request.len().max(1) as f64
    }

    /// (max - min) / mean.
    fn spread(&self) -> f64 {
        let min = self
            .per_request
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let max = self
            .per_request
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        (max - min) / self.mean().max(1.0)
    }
}

fn run(cli: &Cli, tools: &Tools) -> Result<(), String> {
    if cli.requests == 0 || cli.connections == 0 || cli.repeat == 0 {
        return Err("--requests, --connections and --repeat must be at least 1".into());
    }
    let plugin = existing(&cli.plugin, "run `make build`")?;
    let floor = existing(
        &cli.call_floor,
        "build it: cargo build --target wasm32-wasip1 --profile wasm-release -p call-floor-plugin",
    )?;
    let header_floor = existing(
        &cli.header_floor,
        "build it: cargo build --target wasm32-wasip1 --profile wasm-release -p header-floor-plugin",
    )?;
    let sdk_floor = existing(
        &cli.sdk_floor,
        "build it: cargo build --target wasm32-wasip1 --profile wasm-release -p sdk-floor-plugin",
    )?;
    let rows = selected_rows(cli)?;
    if let Some(p) = &cli.profile {
        if !rows.iter().any(|r| r.key == p) {
            return Err(format!(
                "--profile {p}: no such row (see --help for the keys)"
            ));
        }
    }
    let mut config: Value = serde_json::from_str(&plugin_config(&cli.config)?)
        .map_err(|e| format!("plugin configuration: {e}"))?;
    if let Some(obj) = config.as_object_mut() {
        obj.insert("tokenServerTimeoutMs".into(), json!(CALL_TIMEOUT_MS));
    }
    let config = config.to_string();

    let bin = match &cli.envoy {
        Some(p) => EnvoyBin::new(p.clone()),
        None => newest(),
    };
    let token_server =
        BackgroundServer::start(Config::default()).map_err(|e| format!("token server: {e}"))?;
    let floors = Floors {
        call: &floor,
        header: &header_floor,
        sdk: &sdk_floor,
    };
    let bootstrap = bootstrap(&plugin, &floors, &config, token_server.addr());
    let out_dir =
        std::path::absolute(&cli.out_dir).map_err(|e| format!("{}: {e}", cli.out_dir.display()))?;
    eprintln!(
        "envoy-bench: starting {bin} under {} (callgrind) in {}…",
        tools.version,
        out_dir.display()
    );
    let mut envoy = CallgrindEnvoy::start(
        tools,
        &Launch {
            envoy: &bin.path,
            bootstrap: &bootstrap,
            dir: &out_dir,
            timeout: Duration::from_secs(cli.start_timeout),
            log_level: "warning",
        },
    )?;

    let mut tokens = Tokens::new(0);
    let mut results: BTreeMap<&'static str, Measured> = BTreeMap::new();
    for rep in 0..cli.repeat {
        for row in &rows {
            let (per_request, dump) = measure_row(&mut envoy, row, &mut tokens, cli)?;
            eprintln!(
                "envoy-bench: {:<30} {:>12} instructions/request{}",
                row.name,
                int(per_request),
                if cli.repeat > 1 {
                    format!(" (repeat {}/{})", rep + 1, cli.repeat)
                } else {
                    String::new()
                }
            );
            let entry = results.entry(row.key).or_insert_with(|| Measured {
                per_request: Vec::new(),
                dump: dump.clone(),
            });
            entry.per_request.push(per_request);
            entry.dump = dump;
        }
    }
    write_index(&out_dir, &rows, &results)?;

    println!("## easy-jwt in Envoy: instructions per request\n");
    println!(
        "{bin}, `--concurrency 1`, under {} (callgrind: every Envoy thread, V8's and LuaJIT's \
         generated code included). Per path: {} requests, one at a time over {} keep-alive \
         connections, after {} warm-up; {}. Every route is a `direct_response` (no upstream). \
         Token server: the reference one (`deploy/token-server`, HS256) on {}, outside Envoy's \
         process (not counted; Envoy's side of each call is). \"added\" is over no filter with \
         the same request (same token length).\n",
        tools.version,
        cli.requests,
        cli.connections,
        cli.warmup,
        if cli.repeat > 1 {
            format!("mean of {} interleaved repeats", cli.repeat)
        } else {
            "one batch".to_string()
        },
        token_server.addr()
    );
    println!("{}", envoy_table(&rows, &results, cli.repeat > 1));

    let size = std::fs::metadata(&plugin)
        .map_err(|e| format!("cannot stat {}: {e}", plugin.display()))?
        .len();
    println!("## Artifact\n");
    println!("{}: {} bytes\n", cli.plugin.display(), int(size as f64));

    if let Some(key) = &cli.profile {
        let resolver = Resolver::new(&bin.path, envoy.maps());
        profile(tools, &resolver, key, &rows, &results, cli, &out_dir)?;
    }
    eprintln!(
        "envoy-bench: callgrind dumps and logs in {} (dumps.txt maps rows to dumps)",
        out_dir.display()
    );
    drop(envoy);
    drop(token_server);
    Ok(())
}

fn existing(path: &Path, hint: &str) -> Result<PathBuf, String> {
    path.canonicalize()
        .map_err(|e| format!("{}: {e} ({hint})", path.display()))
}

/// `--only` (plus the no-filter rows and references the chosen rows are compared with), else all.
fn selected_rows(cli: &Cli) -> Result<Vec<Row>, String> {
    if cli.only.is_empty() {
        return Ok(ROWS.to_vec());
    }
    let mut keys: Vec<&str> = Vec::new();
    for k in &cli.only {
        let row = ROWS
            .iter()
            .find(|r| r.key == k.as_str())
            .ok_or_else(|| format!("--only {k}: no such row (see --help for the keys)"))?;
        keys.push(row.key);
        keys.push(baseline_key(row.auth.shape()));
        if row.listener != "base" {
            keys.push("noop");
            keys.push("base_jwt");
        }
    }
    Ok(ROWS
        .iter()
        .filter(|r| keys.contains(&r.key))
        .copied()
        .collect())
}

fn baseline_key(shape: Shape) -> &'static str {
    match shape {
        Shape::NoToken => "base_none",
        Shape::Anonymous => "base_anon",
        Shape::Jwt => "base_jwt",
    }
}

/// The floor plugins: what Envoy charges any plugin that calls, or that reads and sets headers.
struct Floors<'a> {
    call: &'a Path,
    header: &'a Path,
    sdk: &'a Path,
}

/// The bootstrap: the token server's cluster and one listener per configuration, each routing
/// every request to a `direct_response` (the `x-bench-check` route also echoes `x-auth-user`).
fn bootstrap(plugin: &Path, floors: &Floors, config: &str, token_server: SocketAddr) -> Value {
    let routes = |l: Listener| {
        l.raw_route(json!({
            "name": "check",
            "match": {"prefix": "/", "headers": [{"name": CHECK_HEADER, "present_match": true}]},
            "direct_response": {"status": 200, "body": {"inline_string": "ok"}},
            "response_headers_to_add": [{"header": {
                "key": ECHO_HEADER, "value": "%REQ(x-auth-user)%"}}],
        }))
        .direct_response("all", "/", 200, "ok")
    };
    let jwks = json!({"keys": [{
        "kty": "oct",
        "alg": "HS256",
        "k": base64url(DEFAULT_SECRET.as_bytes()),
    }]});
    let jwt_authn = json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"token-server": {
                "local_jwks": {"inline_string": jwks.to_string()},
                "from_headers": [{"name": "authorization", "value_prefix": "Bearer "}],
                "claim_to_headers": [{"header_name": "x-auth-user", "claim_name": "UID"}],
            }},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "token-server"}}],
        },
    });
    let lua = LUA.replace("TIMEOUT_MS", &CALL_TIMEOUT_MS.to_string());
    let floor_config = TOKEN_CLUSTER.to_string();
    let bootstrap = Bootstrap::new()
        .raw_cluster(json!({
            "name": TOKEN_CLUSTER,
            "type": "STATIC",
            "connect_timeout": "10s",
            "lb_policy": "ROUND_ROBIN",
            "load_assignment": {
                "cluster_name": TOKEN_CLUSTER,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": token_server.ip().to_string(),
                    "port_value": token_server.port(),
                }}}}]}],
            },
        }))
        .listener(routes(Listener::new("base")))
        .listener(routes(
            Listener::new("noop")
                .wasm(floors.sdk, "noop")
                .wasm_name("noop", "noop")
                .wasm_vm_id("sdk-floor"),
        ))
        .listener(routes(
            Listener::new("floor")
                .wasm(floors.call, &floor_config)
                .wasm_name("call-floor", "call-floor"),
        ))
        .listener(routes(
            Listener::new("header_floor")
                .wasm(floors.header, "")
                .wasm_name("header-floor", "header-floor"),
        ))
        // The no-op filter and the two SDK floors are one module and share one VM (three root
        // contexts): valgrind bounds the address space and V8 reserves a large part of it per
        // Wasm instance, so with one VM more the plugin's instance on the worker failed to start.
        .listener(routes(
            Listener::new("sdk_floor")
                .wasm(floors.sdk, "string")
                .wasm_name("sdk-floor", "sdk-floor")
                .wasm_vm_id("sdk-floor"),
        ))
        .listener(routes(
            Listener::new("sdk_floor_bytes")
                .wasm(floors.sdk, "bytes")
                .wasm_name("sdk-floor-bytes", "sdk-floor-bytes")
                .wasm_vm_id("sdk-floor"),
        ))
        .listener(routes(Listener::new("plugin").wasm(plugin, config)))
        .listener(routes(Listener::new("jwt").filter(jwt_authn)))
        .listener(routes(Listener::new("lua").lua(&lua)));
    let mut v = bootstrap.to_json();
    // Nothing periodic while instrumentation is on: stats are flushed when the admin asks (the
    // bench reads /stats between batches), the watchdogs wake up once an hour.
    if let Some(obj) = v.as_object_mut() {
        obj.insert("stats_flush_on_admin".into(), json!(true));
        let dog = json!({"miss_timeout": "3600s", "megamiss_timeout": "3600s"});
        obj.insert(
            "watchdogs".into(),
            json!({"main_thread_watchdog": dog, "worker_watchdog": dog}),
        );
    }
    v
}

/// Warm-up, then one measured batch of `row`; returns instructions per request and the dump.
fn measure_row(
    envoy: &mut CallgrindEnvoy,
    row: &Row,
    tokens: &mut Tokens,
    cli: &Cli,
) -> Result<(f64, PathBuf), String> {
    let addr = envoy.listener(row.listener)?;
    let mut conns = Vec::new();
    for _ in 0..cli.connections {
        let mut c = Conn::try_open(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        c.set_timeout(Duration::from_secs(120));
        conns.push(c);
    }
    for i in 0..cli.warmup {
        send(&mut conns, i, row, tokens, true)?;
    }
    std::thread::sleep(COUNTS_SETTLE);
    let before = envoy.stats()?;
    envoy.zero()?;
    envoy.instrument(true)?;
    let mut result = Ok(());
    for i in 0..cli.requests {
        if let Err(e) = send(&mut conns, i, row, tokens, false) {
            result = Err(e);
            break;
        }
    }
    std::thread::sleep(COUNTS_SETTLE);
    envoy.instrument(false)?;
    let dump = envoy.dump()?;
    result?;
    drop(conns);
    let after = envoy.stats()?;
    check_counters(row, &before, &after, cli.requests)?;
    let total = callgrind::totals(&dump)?;
    Ok((total as f64 / cli.requests as f64, dump))
}

/// Sends request `i` of `row` on connection `i % n`; checks the status (and, with `check`, the
/// echoed `x-auth-user`).
fn send(
    conns: &mut [Conn],
    i: usize,
    row: &Row,
    tokens: &mut Tokens,
    check: bool,
) -> Result<(), String> {
    let n = conns.len().max(1);
    let conn = conns
        .get_mut(i % n)
        .ok_or_else(|| "no connection".to_string())?;
    let (authorization, uid) = tokens.authorization(row.auth);
    let mut req = Request::get(row.path)
        .header("user-agent", "envoy-bench/1")
        .header("accept", "*/*");
    if let Some(a) = authorization {
        req = req.header("authorization", &a);
    }
    if check {
        req = req.header(CHECK_HEADER, "1");
    }
    let resp = conn
        .try_send(&req)
        .map_err(|e| format!("{}: {e}", row.name))?;
    check_response(row, &resp, uid, check)
}

fn check_response(row: &Row, resp: &Response, uid: Option<i64>, check: bool) -> Result<(), String> {
    let fail = |what: String| {
        Err(format!(
            "{}: {what} (got {} {:?}, body {})",
            row.name,
            resp.status,
            resp.headers,
            String::from_utf8_lossy(resp.body.get(..200).unwrap_or(&resp.body))
        ))
    };
    match row.outcome {
        Outcome::Refused(status) => {
            if resp.status != status {
                return fail(format!("expected {status}"));
            }
        }
        Outcome::Ok(want) => {
            if resp.status != 200 {
                return fail("expected 200".to_string());
            }
            if check {
                let want = match want {
                    Uid::Any => None,
                    Uid::Is(v) => Some(v),
                    Uid::OfToken => uid,
                };
                if let Some(want) = want {
                    let got = resp.header(ECHO_HEADER);
                    if got != Some(want.to_string().as_str()) {
                        return fail(format!("expected x-auth-user {want}, echoed {got:?}"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The counters a batch of `n` requests of `row` must have moved (and those it must not have).
fn check_counters(
    row: &Row,
    before: &BTreeMap<String, i64>,
    after: &BTreeMap<String, i64>,
    n: usize,
) -> Result<(), String> {
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let delta =
        |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    let calls = format!("cluster.{TOKEN_CLUSTER}.upstream_rq_total");
    let mut want: Vec<(String, i64)> = Vec::new();
    let plugin_counters = [
        "allowed",
        "denied",
        "token_missing",
        "ignored",
        "anonymous",
        "cache_hit",
        "token_server_failure",
    ];
    let call_count = match row.moves {
        Moves::Nothing | Moves::Jwt(_) => 0,
        Moves::Calls => n,
        Moves::Plugin(_, calls) => {
            if calls {
                n
            } else {
                0
            }
        }
    };
    want.push((calls, call_count));
    for c in plugin_counters {
        let moved = match row.moves {
            Moves::Plugin(name, _) => name == c || (name == "cache_hit" && c == "allowed"),
            _ => false,
        };
        want.push((
            format!("wasmcustom.easy_jwt.{c}"),
            if moved { n } else { 0 },
        ));
    }
    if let Moves::Jwt(name) = row.moves {
        want.push((format!("http.jwt.jwt_authn.{name}"), n));
    }
    let wrong: Vec<String> = want
        .iter()
        .filter(|(name, v)| delta(name) != *v)
        .map(|(name, v)| format!("{name} moved by {} (expected {v})", delta(name)))
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(format!("{}: {}", row.name, wrong.join("; ")))
    }
}

fn write_index(
    dir: &Path,
    rows: &[Row],
    results: &BTreeMap<&'static str, Measured>,
) -> Result<(), String> {
    let mut text = String::new();
    for row in rows {
        if let Some(m) = results.get(row.key) {
            text.push_str(&format!(
                "{}\t{}\t{:.1}\n",
                row.key,
                m.dump.display(),
                m.mean()
            ));
        }
    }
    std::fs::write(dir.join("dumps.txt"), text).map_err(|e| format!("dumps.txt: {e}"))
}

/// The markdown table of the Envoy figures, with the ratios and targets.
fn envoy_table(rows: &[Row], results: &BTreeMap<&'static str, Measured>, spread: bool) -> String {
    let mean = |key: &str| results.get(key).map(Measured::mean);
    let added =
        |row: &Row| -> Option<f64> { Some(mean(row.key)? - mean(baseline_key(row.auth.shape()))?) };
    let added_of = |key: &str| ROWS.iter().find(|r| r.key == key).and_then(added);
    let noop_added = added_of("noop");
    let mut columns = vec![
        "path",
        ">instructions/request",
        ">added",
        ">× no-op's added",
        "× reference's added",
        "target",
    ];
    if spread {
        columns.push(">spread");
    }
    let mut table = Table::new(&columns);
    for row in rows {
        let Some(m) = results.get(row.key) else {
            continue;
        };
        let is_base = row.listener == "base";
        let add = added(row);
        let reference = match row.key {
            "cache_hit" => Some(("jwt_authn valid JWT", added_of("jwt_valid"))),
            "token_call" | "floor" => Some(("Lua token call", added_of("lua_call"))),
            "missing" => Some(("jwt_authn missing", added_of("jwt_missing"))),
            "anonymous" | "ignored" => Some(("SDK floor", added_of("sdk_floor"))),
            _ => None,
        };
        let ref_ratio = reference.and_then(|(name, r)| Some((name, add? / r?)));
        // What the plugin's own logic may add over what the SDK charges any such plugin: the
        // SDK header floor for decisions in the request headers, the SDK call floor for a call.
        let over = |floor: &str, limit: f64| {
            let over = add? - added_of(floor)?;
            Some(verdict(
                over <= limit,
                &format!("{floor} {} ≤ +{}", signed(over), int(limit)),
            ))
        };
        let target = match row.key {
            "ignored" | "missing" | "anonymous" => over("sdk_floor", 4_000.0),
            "cache_hit" => over("sdk_floor", 8_000.0),
            "token_call" => over("floor", 50_000.0),
            _ => None,
        };
        let mut cells = vec![
            row.name.to_string(),
            int(m.mean()),
            if is_base {
                "(baseline)".to_string()
            } else {
                add.map(signed).unwrap_or_default()
            },
            match (add, noop_added) {
                (Some(a), Some(n)) if !is_base && n.abs() > 0.0 => ratio(a / n),
                _ => String::new(),
            },
            ref_ratio
                .map(|(name, r)| format!("{} {name}", ratio(r)))
                .unwrap_or_default(),
            target.unwrap_or_default(),
        ];
        if spread {
            cells.push(format!("{:.3} %", m.spread() * 100.0));
        }
        table.row(cells);
    }
    table.render()
}

fn verdict(met: bool, target: &str) -> String {
    format!("{target} {}", if met { "✔" } else { "✘" })
}

/// `--profile`: the row's top functions (callgrind_annotate), its instructions per request by
/// origin, and the functions that grew most over no filter with the same request.
fn profile(
    tools: &Tools,
    resolver: &Resolver,
    key: &str,
    rows: &[Row],
    results: &BTreeMap<&'static str, Measured>,
    cli: &Cli,
    out_dir: &Path,
) -> Result<(), String> {
    let row = rows
        .iter()
        .find(|r| r.key == key)
        .ok_or_else(|| format!("--profile {key}: not measured"))?;
    let measured = results
        .get(row.key)
        .ok_or_else(|| format!("--profile {key}: not measured"))?;
    let kept = out_dir.join(format!("profile-{key}.callgrind"));
    std::fs::copy(&measured.dump, &kept).map_err(|e| format!("{}: {e}", kept.display()))?;
    let n = cli.requests as f64;
    println!("## Profile: {} ({} requests)\n", row.name, cli.requests);
    println!(
        "callgrind dump: {} (`callgrind_annotate {}`; the Envoy binary is stripped: its \
         functions show as addresses, `???` objects are generated code: V8's wasm, LuaJIT's \
         traces).\n",
        kept.display(),
        kept.display()
    );
    println!(
        "Top {} functions by self instructions, whole batch (callgrind_annotate --inclusive=no):\n",
        cli.top
    );
    println!("```");
    for line in callgrind::annotate(tools, &kept, cli.top)? {
        println!("{}", annotated(resolver, &line));
    }
    println!("```\n");

    let costs = callgrind::self_costs(&kept)?;
    let base_key = baseline_key(row.auth.shape());
    let base = match results.get(base_key) {
        Some(m) if base_key != row.key => Some(callgrind::self_costs(&m.dump)?),
        _ => None,
    };
    let by_origin = |c: &HashMap<FnKey, u64>| {
        let mut out: BTreeMap<String, u64> = BTreeMap::new();
        for (k, v) in c {
            *out.entry(resolver.origin(k)).or_default() += v;
        }
        out
    };
    let origins = by_origin(&costs);
    let base_origins = base.as_ref().map(by_origin).unwrap_or_default();
    let mut names: Vec<&String> = origins.keys().chain(base_origins.keys()).collect();
    names.sort();
    names.dedup();
    let mut table = Table::new(&["origin", ">instructions/request", ">no filter", ">added"]);
    for name in names {
        let a = origins.get(name).copied().unwrap_or(0) as f64 / n;
        let b = base_origins.get(name).copied().unwrap_or(0) as f64 / n;
        table.row(vec![name.clone(), int(a), int(b), signed(a - b)]);
    }
    println!("Self instructions per request by origin (no filter: {base_key}):\n");
    println!("{}", table.render());

    if let Some(base) = &base {
        let mut diff: Vec<(&FnKey, f64, f64)> = costs
            .keys()
            .chain(base.keys())
            .map(|k| {
                let a = costs.get(k).copied().unwrap_or(0) as f64 / n;
                let b = base.get(k).copied().unwrap_or(0) as f64 / n;
                (k, a, b)
            })
            .collect();
        diff.sort_by(|x, y| (y.1 - y.2).total_cmp(&(x.1 - x.2)).then(x.0.cmp(y.0)));
        diff.dedup_by(|x, y| x.0 == y.0);
        let mut table = Table::new(&["function", "origin", ">per request", ">no filter", ">added"]);
        for (k, a, b) in diff.iter().take(cli.top) {
            table.row(vec![
                resolver.label(k),
                resolver.origin(k),
                int(*a),
                int(*b),
                signed(a - b),
            ]);
        }
        println!(
            "Top {} functions by self instructions added per request over no filter:\n",
            cli.top
        );
        println!("{}", table.render());
    }
    Ok(())
}

/// A `callgrind_annotate` function line with where the function comes from (and its name, when
/// the binary exports one) appended: `… [???]  ← tcmalloc: free`.
fn annotated(resolver: &Resolver, line: &str) -> String {
    let parsed = line.split_once(")  ").and_then(|(_, rest)| {
        let (file_fn, object) = rest.rsplit_once(" [")?;
        let object = object.strip_suffix(']')?;
        let function = file_fn.split_once(':').map_or(file_fn, |(_, f)| f);
        Some(FnKey {
            object: object.to_string(),
            function: function.to_string(),
        })
    });
    match parsed {
        Some(key) => {
            let label = resolver.label(&key);
            if label == key.function {
                format!("{line}  ← {}", resolver.origin(&key))
            } else {
                format!("{line}  ← {}: {label}", resolver.origin(&key))
            }
        }
        None => line.to_string(),
    }
}
