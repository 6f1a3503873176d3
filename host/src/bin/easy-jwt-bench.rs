//! `easy-jwt-bench` (`make bench`): per-request cost of the real `plugin.wasm` against a no-op
//! plugin, through the host's synchronous driver, plus the artifact size.
//!
//! One process loads both modules, starts one `Vm` per path and drives every request as Envoy
//! would: `new_stream`, `on_request_headers` (end of stream), the token-server call answered
//! in-process with a canned `200 {"uid":N}` when the plugin makes one, then `end_stream`. Each
//! round runs every path in short interleaved slices, so noise from other processes on a shared
//! machine hits all paths alike; each path's figure is the median of its rounds. stdout gets exactly one `bench path=…` line per path and one `size bytes=…` line;
//! stderr gets the spread (min/max over the rounds).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use easy_jwt_host::vm::{CallOutcome, LogLevel, StreamProps, StreamState, VmConfig};
use easy_jwt_host::{Clock, HostEnv, ManualClock, Plugin, Vm};
use serde_json::Value;

/// The cluster `deploy/plugin-config.json` makes the plugin call.
const CLUSTER: &str = "outbound|9090||token-server.dns";
/// A JWT-shaped token (HS256 layout, `exp` in 2100) of realistic length; the plugin never
/// verifies the signature (the token server does), it only reads `exp` to bound its cache.
const TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ1aWQiOjQyLCJleHAiOjQxMDI0NDQ4MDB9.\
                     AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
/// The uid of the canned token-server answer.
const UID: u32 = 42;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "easy-jwt-bench",
    about = "Per-request cost of plugin.wasm vs a no-op plugin"
)]
struct Args {
    /// The release artifact.
    #[arg(long, default_value = "plugin.wasm")]
    plugin: PathBuf,
    /// The no-op baseline plugin.
    #[arg(long)]
    noop: PathBuf,
    /// Base plugin configuration (keys are overridden per path).
    #[arg(long, default_value = "deploy/plugin-config.json")]
    config: PathBuf,
    /// Measured rounds per path (the median is reported).
    #[arg(long, default_value_t = 25)]
    rounds: usize,
    /// Requests per path per round.
    #[arg(long, default_value_t = 4000)]
    requests: usize,
    /// Requests per slice: a round interleaves the paths slice by slice.
    #[arg(long, default_value_t = 250)]
    slice: usize,
    /// Unmeasured requests per path before the first round.
    #[arg(long, default_value_t = 2000)]
    warmup: usize,
}

/// How every request of a path must end (checked on every request, so a misconfigured path
/// fails the run instead of measuring the wrong thing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Goes upstream after this many token-server calls.
    Upstream { calls: usize },
    /// Answered locally with this status, no call.
    Reply { status: u16 },
    /// Still paused, pending or ended: never expected.
    Undecided,
}

/// One benchmarked path: its VM, its request and the expected outcome.
struct Bench {
    name: &'static str,
    vm: Vm,
    headers: Vec<(String, String)>,
    expect: Expect,
    samples: Vec<f64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("easy-jwt-bench: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Builds the paths, warms them up, measures the rounds and prints the report.
fn run(args: &Args) -> Result<(), String> {
    if args.rounds == 0 || args.requests == 0 || args.slice == 0 {
        return Err("--rounds, --requests and --slice must be at least 1".to_string());
    }
    let mut benches = build_benches(args)?;
    let answer = token_answer();
    for bench in &mut benches {
        drive(bench, args.warmup, &answer)?;
    }
    for _ in 0..args.rounds {
        round(&mut benches, args, &answer)?;
    }
    report(&benches, args)?;
    let size = std::fs::metadata(&args.plugin)
        .map_err(|e| format!("cannot stat {}: {e}", args.plugin.display()))?
        .len();
    println!("size bytes={size}");
    Ok(())
}

/// The no-op baseline first, then the plugin's paths, each in its own VM.
fn build_benches(args: &Args) -> Result<Vec<Bench>, String> {
    let noop = load(&args.noop)?;
    let plugin = load(&args.plugin)?;
    let base = read_config(&args.config)?;
    let env = HostEnv::with_clock(fixed_clock());
    let authed = request("/api/orders", Some(TOKEN));
    let no_call = Expect::Upstream { calls: 0 };
    let mut benches = vec![
        bench("noop", start(&noop, &env, &[])?, authed.clone(), no_call),
        bench(
            "ignored",
            start(&plugin, &env, &config(&base, &[])?)?,
            request("/public/app.js", None),
            no_call,
        ),
        bench(
            "anonymous",
            start(&plugin, &env, &config(&base, &[])?)?,
            request("/api/orders", Some("AnonymousToken")),
            no_call,
        ),
        bench(
            "missing_token",
            start(&plugin, &env, &config(&base, &[])?)?,
            request("/api/orders", None),
            Expect::Reply { status: 401 },
        ),
    ];
    let cached = config(&base, &[("cacheTtlSeconds", Value::from(3600))])?;
    let mut cache_hit = bench(
        "cache_hit",
        start(&plugin, &env, &cached)?,
        authed.clone(),
        Expect::Upstream { calls: 1 },
    );
    drive(&mut cache_hit, 1, &token_answer())?; // fills the cache
    cache_hit.expect = no_call;
    benches.push(cache_hit);
    let uncached = config(&base, &[("cacheTtlSeconds", Value::from(0))])?;
    benches.push(bench(
        "token_call",
        start(&plugin, &env, &uncached)?,
        authed,
        Expect::Upstream { calls: 1 },
    ));
    Ok(benches)
}

fn bench(name: &'static str, vm: Vm, headers: Vec<(String, String)>, expect: Expect) -> Bench {
    Bench {
        name,
        vm,
        headers,
        expect,
        samples: Vec::new(),
    }
}

fn load(path: &Path) -> Result<Plugin, String> {
    Plugin::load(path).map_err(|e| format!("cannot load {}: {e}", path.display()))
}

/// A manual clock at the current wall time: JWT `exp` checks make sense and cache entries
/// never expire during the run.
fn fixed_clock() -> Arc<dyn Clock> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos();
    Arc::new(ManualClock::new(u64::try_from(now).unwrap_or(u64::MAX)))
}

/// A configured VM at Envoy's default `info` log level (the plugin's per-request debug lines are
/// dropped as in production).
fn start(plugin: &Plugin, env: &HostEnv, configuration: &[u8]) -> Result<Vm, String> {
    let cfg = VmConfig {
        plugin_configuration: configuration.to_vec(),
        clusters: [CLUSTER.to_string()].into(),
        log_level: LogLevel::Info,
        ..VmConfig::default()
    };
    let vm = Vm::start(plugin, env, cfg).map_err(|e| format!("VM does not start: {e}"))?;
    if !vm.configured() {
        return Err(format!("configuration rejected: {:?}", vm.logs()));
    }
    Ok(vm)
}

fn read_config(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))
}

/// `base` with `overrides` set, serialized.
fn config(base: &Value, overrides: &[(&str, Value)]) -> Result<Vec<u8>, String> {
    let mut merged = base.clone();
    let object = merged
        .as_object_mut()
        .ok_or_else(|| "the base configuration is not a JSON object".to_string())?;
    for (key, value) in overrides {
        object.insert((*key).to_string(), value.clone());
    }
    Ok(merged.to_string().into_bytes())
}

/// A typical API request as Envoy hands it to the filter.
fn request(path: &str, token: Option<&str>) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = [
        (":method", "GET"),
        (":path", path),
        (":authority", "api.example.com"),
        (":scheme", "https"),
        ("user-agent", "easy-jwt-bench/1"),
        ("accept", "application/json"),
        ("x-request-id", "0b7a1f0e-6c1d-4c5e-9f51-3d2a8c7e4b10"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
    .collect();
    if let Some(token) = token {
        headers.push(("authorization".to_string(), format!("Bearer {token}")));
    }
    headers
}

/// The token server's canned answer.
fn token_answer() -> CallOutcome {
    CallOutcome::Response {
        headers: vec![
            (":status".to_string(), "200".to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ],
        body: format!("{{\"uid\":{UID}}}").into_bytes(),
        trailers: Vec::new(),
    }
}

/// One measured round: `requests` per path, in interleaved slices; records ns/request per path.
fn round(benches: &mut [Bench], args: &Args, answer: &CallOutcome) -> Result<(), String> {
    let mut spent = vec![Duration::ZERO; benches.len()];
    let mut done = 0;
    while done < args.requests {
        let n = args.slice.min(args.requests - done);
        for (bench, total) in benches.iter_mut().zip(spent.iter_mut()) {
            *total += drive(bench, n, answer)?;
        }
        done += n;
    }
    for (bench, total) in benches.iter_mut().zip(spent) {
        bench
            .samples
            .push(total.as_nanos() as f64 / args.requests as f64);
    }
    Ok(())
}

/// Runs `n` requests of `bench`; returns the time they took.
fn drive(bench: &mut Bench, n: usize, answer: &CallOutcome) -> Result<Duration, String> {
    let started = Instant::now();
    for _ in 0..n {
        let got = one_request(&mut bench.vm, &bench.headers, answer);
        if got != bench.expect {
            return Err(format!(
                "path {}: expected {:?}, got {got:?} (vm failed: {:?})",
                bench.name,
                bench.expect,
                bench.vm.failed()
            ));
        }
    }
    let elapsed = started.elapsed();
    bench.vm.take_logs();
    Ok(elapsed)
}

/// One whole request through the sync driver; its outcome as an `Expect`.
fn one_request(vm: &mut Vm, headers: &[(String, String)], answer: &CallOutcome) -> Expect {
    let id = vm.new_stream(StreamProps::default());
    let mut state = vm.on_request_headers(id, headers.to_vec(), true);
    let mut calls = 0;
    if matches!(state, StreamState::Paused) {
        for call in vm.take_calls() {
            calls += 1;
            vm.deliver_call(call.token, answer.clone());
        }
        state = vm.state(id);
    }
    vm.end_stream(id);
    vm.take_events();
    match state {
        StreamState::LocalReply(reply) => Expect::Reply {
            status: reply.status,
        },
        StreamState::Continued => Expect::Upstream { calls },
        StreamState::Pending | StreamState::Paused | StreamState::Ended => Expect::Undecided,
    }
}

/// One stdout line per path, the spread on stderr. `ns_per_req` is the median over the rounds;
/// `ratio_vs_noop` the median of the per-round ratios to the no-op (paired within a round, so
/// a busy moment of the machine cancels out).
fn report(benches: &[Bench], args: &Args) -> Result<(), String> {
    let noop = benches
        .first()
        .map(|b| b.samples.clone())
        .ok_or_else(|| "no no-op samples".to_string())?;
    eprintln!(
        "easy-jwt-bench: {} rounds x {} requests per path in slices of {} (after {} warm-up); \
         ns_per_req = median of rounds, ratio = median of per-round ratios",
        args.rounds, args.requests, args.slice, args.warmup
    );
    for bench in benches {
        let med = median(&bench.samples).ok_or_else(|| format!("no samples for {}", bench.name))?;
        let ratios: Vec<f64> = bench
            .samples
            .iter()
            .zip(&noop)
            .map(|(path, base)| path / base)
            .collect();
        let ratio = median(&ratios).ok_or_else(|| format!("no ratios for {}", bench.name))?;
        println!(
            "bench path={} ns_per_req={med:.0} ratio_vs_noop={ratio:.2}",
            bench.name
        );
        let (min, max) = spread(&bench.samples);
        let (rmin, rmax) = spread(&ratios);
        eprintln!(
            "  spread path={} ns/req min={min:.0} max={max:.0}, ratio min={rmin:.2} max={rmax:.2}",
            bench.name
        );
    }
    Ok(())
}

fn median(samples: &[f64]) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

fn spread(samples: &[f64]) -> (f64, f64) {
    let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (min, max)
}
