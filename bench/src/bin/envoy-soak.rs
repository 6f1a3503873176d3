//! `envoy-soak`: the plugin in a real Envoy under mixed keep-alive traffic, every answer checked,
//! Envoy's `server.memory_allocated` watched for growth.
//!
//! It starts the reference token server, an echo upstream and Envoy (through the testbed
//! harness) with `plugin.wasm` on one listener, then sends `--requests` requests over
//! `--connections` keep-alive connections, one thread each:
//!
//! | share | kind       | request                                   | expected                     |
//! |-------|------------|-------------------------------------------|------------------------------|
//! | 20 %  | ignored    | `GET /public/soak/<i>`                    | 200, `x-auth-user: 0`        |
//! | 20 %  | missing    | `GET /api/soak/<i>`, no token             | 401                          |
//! | 10 %  | anonymous  | `Bearer AnonymousToken`                   | 200, `x-auth-user: 0`        |
//! | 40 %  | cache hit  | `Bearer <one of 50 tokens minted first>`  | 200, `x-auth-user: <its uid>`|
//! | 10 %  | new token  | `Bearer <a token never sent before>`      | 200, `x-auth-user: <its uid>`|
//!
//! One request in 7 also carries a forged `x-auth-user: 666`, which the plugin must replace.
//! The exit status is non-zero on any wrong outcome, any error, a plugin counter that disagrees
//! with what was sent, or `server.memory_allocated` growing more than 10 % from the warm-up
//! sample (after the first 5 % of requests) to the end. The gauge is read fresh from the admin
//! `/memory` endpoint (`/stats` refreshes it only every 5 s); the process RSS, which also covers
//! the Wasm VMs' memory, is printed alongside for information.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use clap::Parser;
use easy_jwt_testbed::envoy::{newest, Bootstrap, Envoy, EnvoyBin, Listener, Opts};
use easy_jwt_testbed::http::{Conn, Request};
use easy_jwt_testbed::{workspace_root, EchoServer};
use token_server::{mint, now_unix, BackgroundServer, Config, DEFAULT_SECRET};

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "envoy-soak",
    about = "Soak plugin.wasm in a real Envoy: mixed traffic, outcome checks, memory growth"
)]
struct Cli {
    /// The plugin module.
    #[arg(long)]
    plugin: PathBuf,
    /// Requests to send in total.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
    /// Envoy binary (default: the first of ENVOY_BINS / ENVOY / target/envoy/1.40.0/envoy).
    #[arg(long)]
    envoy: Option<PathBuf>,
    /// Envoy worker threads.
    #[arg(long, default_value_t = 2)]
    concurrency: u32,
    /// Client keep-alive connections (one thread each).
    #[arg(long, default_value_t = 16)]
    connections: u64,
    /// Envoy log level (also for the wasm component).
    #[arg(long, default_value = "warning", value_parser = ["trace", "debug", "info", "warning", "error", "critical", "off"])]
    log_level: String,
}

/// Number of tokens minted up front for cache hits.
const POOL: usize = 50;
/// First uid of the pool; new tokens use uids from `NEW_UID_BASE`.
const POOL_UID_BASE: i64 = 1_000;
const NEW_UID_BASE: i64 = 10_000_000;
/// Allowed growth of `server.memory_allocated` from warm-up to the end.
const MAX_GROWTH: f64 = 0.10;
/// The listener / cluster names.
const LISTENER: &str = "soak";
const TOKEN_CLUSTER: &str = "token-server";

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Ignored,
    Missing,
    Anonymous,
    CacheHit,
    NewToken,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Ignored,
        Kind::Missing,
        Kind::Anonymous,
        Kind::CacheHit,
        Kind::NewToken,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Ignored => "ignored",
            Kind::Missing => "missing",
            Kind::Anonymous => "anonymous",
            Kind::CacheHit => "cache_hit",
            Kind::NewToken => "new_token",
        }
    }

    /// From a number in 0..100.
    fn pick(r: u64) -> Kind {
        match r {
            0..=19 => Kind::Ignored,
            20..=39 => Kind::Missing,
            40..=49 => Kind::Anonymous,
            50..=89 => Kind::CacheHit,
            _ => Kind::NewToken,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// splitmix64: a tiny deterministic generator (no dependency).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// Per-thread tallies, merged at the end.
#[derive(Default)]
struct Tally {
    sent: [u64; 5],
    wrong: [u64; 5],
    errors: u64,
    examples: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        for k in Kind::ALL {
            let i = k.index();
            if let (Some(a), Some(b)) = (self.sent.get_mut(i), other.sent.get(i)) {
                *a += b;
            }
            if let (Some(a), Some(b)) = (self.wrong.get_mut(i), other.wrong.get(i)) {
                *a += b;
            }
        }
        self.errors += other.errors;
        for e in other.examples {
            if self.examples.len() < 10 {
                self.examples.push(e);
            }
        }
    }

    fn note(&mut self, example: String) {
        if self.examples.len() < 10 {
            self.examples.push(example);
        }
    }
}

fn bump(counts: &mut [u64; 5], kind: Kind) {
    if let Some(c) = counts.get_mut(kind.index()) {
        *c += 1;
    }
}

/// The plugin configuration: `deploy/plugin-config.json` with the token server reached through
/// the cluster `token-server` and a 30 s cache.
fn plugin_config() -> Result<String, String> {
    let path = workspace_root().join("deploy/plugin-config.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| format!("{} is not a JSON object", path.display()))?;
    obj.remove("tokenServerFQDN");
    obj.remove("tokenServerPort");
    obj.insert("tokenServerCluster".into(), TOKEN_CLUSTER.into());
    obj.insert("cacheTtlSeconds".into(), 30.into());
    Ok(v.to_string())
}

struct Plan<'a> {
    total: u64,
    pool: &'a [(String, i64)],
    next_new: &'a AtomicU64,
    done: &'a AtomicU64,
}

/// One client thread: `count` requests on one keep-alive connection.
fn client(plan: &Plan<'_>, addr: std::net::SocketAddr, seed: u64, count: u64) -> Tally {
    let mut tally = Tally::default();
    let mut rng = Rng(seed);
    let mut conn = match Conn::try_open(addr) {
        Ok(c) => c,
        Err(e) => {
            tally.errors += count;
            tally.note(format!("cannot connect to {addr}: {e}"));
            plan.done.fetch_add(count, Ordering::Relaxed);
            return tally;
        }
    };
    let exp = now_unix() + 24 * 3600;
    for n in 0..count {
        let kind = Kind::pick(rng.next() % 100);
        let forge = rng.next().is_multiple_of(7);
        let id = seed.wrapping_mul(1_000_000_007).wrapping_add(n);
        let (mut req, expected): (Request, Option<i64>) = match kind {
            Kind::Ignored => (Request::get(&format!("/public/soak/{id}")), Some(0)),
            Kind::Missing => (Request::get(&format!("/api/soak/{id}")), None),
            Kind::Anonymous => (
                Request::get(&format!("/api/soak/{id}")).bearer("AnonymousToken"),
                Some(0),
            ),
            Kind::CacheHit => {
                let i = usize::try_from(rng.next() % POOL as u64).unwrap_or(0);
                let (token, uid) = plan.pool.get(i).cloned().unwrap_or_default();
                (
                    Request::get(&format!("/api/soak/{id}")).bearer(&token),
                    Some(uid),
                )
            }
            Kind::NewToken => {
                let k = plan.next_new.fetch_add(1, Ordering::Relaxed);
                let uid = NEW_UID_BASE + i64::try_from(k).unwrap_or(0);
                (
                    Request::get(&format!("/api/soak/{id}")).bearer(&mint(
                        DEFAULT_SECRET,
                        uid,
                        exp,
                    )),
                    Some(uid),
                )
            }
        };
        if forge {
            req = req.header("x-auth-user", "666");
        }
        bump(&mut tally.sent, kind);
        match conn.try_send(&req) {
            Err(e) => {
                tally.errors += 1;
                tally.note(format!("{}: {e}", kind.name()));
            }
            Ok(resp) => {
                let ok = match expected {
                    None => resp.status == 401,
                    Some(uid) => {
                        resp.status == 200
                            && serde_json::from_slice::<serde_json::Value>(&resp.body)
                                .ok()
                                .and_then(|v| {
                                    v.get("headers").and_then(|h| h.as_array()).map(|pairs| {
                                        pairs
                                            .iter()
                                            .filter(|p| {
                                                p.get(0).and_then(|n| n.as_str())
                                                    == Some("x-auth-user")
                                            })
                                            .filter_map(|p| {
                                                p.get(1).and_then(|v| v.as_str()).map(str::to_owned)
                                            })
                                            .collect::<Vec<_>>()
                                    })
                                })
                                == Some(vec![uid.to_string()])
                    }
                };
                if !ok {
                    bump(&mut tally.wrong, kind);
                    tally.note(format!(
                        "{} {} (forged uid: {forge}): expected {}, got {} {}",
                        kind.name(),
                        req.request_line(),
                        expected.map_or_else(|| "401".to_owned(), |u| format!("200 uid {u}")),
                        resp.status,
                        String::from_utf8_lossy(resp.body.get(..300).unwrap_or(&resp.body)),
                    ));
                }
            }
        }
        plan.done.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

/// Memory samples: (label, requests done, memory_allocated bytes, RSS bytes).
type Samples = Vec<(String, u64, i64, u64)>;

fn sample(envoy: &Envoy, label: String, done: u64) -> (String, u64, i64, u64) {
    (
        label,
        done,
        envoy.memory_allocated(),
        envoy.rss_bytes().unwrap_or(0),
    )
}

fn sampler(envoy: &Envoy, plan: &Plan<'_>, samples: &Mutex<Samples>, stop: &AtomicU64) {
    let total = plan.total.max(1);
    // Warm-up at 5 %, then every 10 %.
    let mut marks: Vec<(String, u64)> = vec![("warm-up 5%".to_owned(), total / 20)];
    for p in 1..=9 {
        marks.push((format!("{}%", p * 10), total * p / 10));
    }
    let mut next = 0usize;
    while stop.load(Ordering::Relaxed) == 0 {
        let done = plan.done.load(Ordering::Relaxed);
        while let Some((label, mark)) = marks.get(next) {
            if done < *mark {
                break;
            }
            let taken = sample(envoy, label.clone(), done);
            if let Ok(mut s) = samples.lock() {
                s.push(taken);
            }
            next += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("envoy-soak: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> Result<bool, String> {
    let plugin = cli
        .plugin
        .canonicalize()
        .map_err(|e| format!("plugin {}: {e} (run `make build`)", cli.plugin.display()))?;
    let bin = match &cli.envoy {
        Some(p) => EnvoyBin::new(p.clone()),
        None => newest(),
    };
    if cli.connections == 0 {
        return Err("--connections must be at least 1".into());
    }
    let log_level: &'static str = match cli.log_level.as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "error" => "error",
        "critical" => "critical",
        "off" => "off",
        _ => "warning",
    };

    let token_server =
        BackgroundServer::start(Config::default()).map_err(|e| format!("token server: {e}"))?;
    let echo = EchoServer::start("127.0.0.1:0").map_err(|e| format!("echo server: {e}"))?;
    let config = plugin_config()?;
    let bootstrap = Bootstrap::new()
        .cluster(TOKEN_CLUSTER, token_server.addr())
        .cluster("echo", echo.addr())
        .listener(
            Listener::new(LISTENER)
                .wasm(&plugin, &config)
                .route("all", "/", "echo"),
        );
    let envoy = Envoy::start(
        &bin,
        &bootstrap,
        Opts {
            concurrency: cli.concurrency,
            log_level,
            ..Opts::default()
        },
    )
    .map_err(|e| e.to_string())?;
    let addr = envoy.listener_addr(LISTENER);
    println!(
        "envoy-soak: {bin}, --concurrency {}, plugin {} ({} bytes)",
        cli.concurrency,
        plugin.display(),
        std::fs::metadata(&plugin).map(|m| m.len()).unwrap_or(0)
    );
    println!("plugin configuration: {config}");
    println!(
        "{} requests over {} connections to {addr}; token server {}, echo {}",
        cli.requests,
        cli.connections,
        token_server.addr(),
        echo.addr()
    );

    let exp = now_unix() + 24 * 3600;
    let pool: Vec<(String, i64)> = (0..POOL)
        .map(|i| {
            let uid = POOL_UID_BASE + i64::try_from(i).unwrap_or(0);
            (mint(DEFAULT_SECRET, uid, exp), uid)
        })
        .collect();
    let next_new = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let plan = Plan {
        total: cli.requests,
        pool: &pool,
        next_new: &next_new,
        done: &done,
    };
    let samples: Mutex<Samples> = Mutex::new(Vec::new());
    let stop = AtomicU64::new(0);

    let started = Instant::now();
    let mut tally = Tally::default();
    std::thread::scope(|s| {
        let sampler_handle = s.spawn(|| sampler(&envoy, &plan, &samples, &stop));
        let per = cli.requests / cli.connections;
        let extra = cli.requests % cli.connections;
        let handles: Vec<_> = (0..cli.connections)
            .map(|t| {
                let count = per + u64::from(t < extra);
                let plan = &plan;
                s.spawn(move || client(plan, addr, t + 1, count))
            })
            .collect();
        for h in handles {
            match h.join() {
                Ok(t) => tally.merge(t),
                Err(_) => {
                    tally.errors += 1;
                    tally.note("a client thread panicked".to_owned());
                }
            }
        }
        stop.store(1, Ordering::Relaxed);
        let _ = sampler_handle.join();
    });
    let elapsed = started.elapsed();
    let mut samples = samples.into_inner().unwrap_or_default();
    samples.push(sample(
        &envoy,
        "end".to_owned(),
        done.load(Ordering::Relaxed),
    ));

    // The plugin hands its counts to Envoy on a 100 ms timer: let the last ones arrive.
    std::thread::sleep(Duration::from_millis(500));
    let stats = envoy.stats();
    let plugin_stats: BTreeMap<&str, i64> = stats
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("wasmcustom.").map(|n| (n, *v)))
        .collect();
    let counter = |name: &str| plugin_stats.get(name).copied().unwrap_or(0);
    let sent = |k: Kind| {
        i64::try_from(tally.sent.get(k.index()).copied().unwrap_or(0)).unwrap_or(i64::MAX)
    };

    // ---- summary
    let wrong_total: u64 = tally.wrong.iter().sum();
    let secs = elapsed.as_secs_f64().max(1e-9);
    println!();
    println!("requests:      {}", tally.sent.iter().sum::<u64>());
    for k in Kind::ALL {
        println!(
            "  {:<12} {:>9} sent, {} wrong",
            k.name(),
            tally.sent.get(k.index()).copied().unwrap_or(0),
            tally.wrong.get(k.index()).copied().unwrap_or(0)
        );
    }
    println!("wrong outcomes: {wrong_total}");
    println!("errors:         {}", tally.errors);
    for e in &tally.examples {
        println!("  e.g. {e}");
    }
    println!(
        "elapsed:        {:.1} s ({:.0} req/s)",
        elapsed.as_secs_f64(),
        cli.requests as f64 / secs
    );

    println!("server.memory_allocated (admin /memory) and process RSS samples:");
    for (label, at, bytes, rss) in &samples {
        println!(
            "  {label:<11} after {at:>9} requests: {bytes:>12} bytes allocated, RSS {rss:>12}"
        );
    }
    let first = samples.first().map(|s| s.2);
    let last = samples.last().map(|s| s.2);
    let max = samples.iter().map(|s| s.2).max();
    let rss_first = samples.first().map(|s| s.3);
    let rss_last = samples.last().map(|s| s.3);
    let growth = match (first, last) {
        (Some(f), Some(l)) if f > 0 => Some((l - f) as f64 / f as f64),
        _ => None,
    };
    println!(
        "memory_allocated: first {} last {} max {} growth {}",
        first.map_or("-".into(), |v| v.to_string()),
        last.map_or("-".into(), |v| v.to_string()),
        max.map_or("-".into(), |v| v.to_string()),
        growth.map_or("-".into(), |g| format!("{:+.2} %", g * 100.0)),
    );

    if let (Some(f), Some(l)) = (rss_first, rss_last) {
        println!(
            "RSS (informative, includes the Wasm VMs): first {f} last {l} growth {:+.2} %",
            (l as f64 - f as f64) / (f.max(1) as f64) * 100.0
        );
    }
    println!("plugin counters:");
    for (k, v) in &plugin_stats {
        println!("  {k:<34} {v}");
    }
    println!(
        "token server calls (cluster.{TOKEN_CLUSTER}.upstream_rq_total): {}",
        stats
            .get(&format!("cluster.{TOKEN_CLUSTER}.upstream_rq_total"))
            .copied()
            .unwrap_or(0)
    );

    let mut mismatches = Vec::new();
    let checks = [
        ("easy_jwt.ignored", sent(Kind::Ignored)),
        ("easy_jwt.token_missing", sent(Kind::Missing)),
        ("easy_jwt.anonymous", sent(Kind::Anonymous)),
        (
            "easy_jwt.allowed",
            sent(Kind::CacheHit).saturating_add(sent(Kind::NewToken)),
        ),
        ("easy_jwt.denied", 0),
        ("easy_jwt.token_server_failure", 0),
        ("easy_jwt.fail_open", 0),
    ];
    if tally.errors == 0 {
        for (name, want) in checks {
            if counter(name) != want {
                mismatches.push(format!("{name} = {} but {want} expected", counter(name)));
            }
        }
    }
    for m in &mismatches {
        println!("counter mismatch: {m}");
    }

    let mut ok = true;
    if wrong_total > 0 || tally.errors > 0 {
        println!(
            "FAIL: {wrong_total} wrong outcomes, {} errors",
            tally.errors
        );
        ok = false;
    }
    if !mismatches.is_empty() {
        println!("FAIL: plugin counters disagree with the traffic sent");
        ok = false;
    }
    match growth {
        Some(g) if g > MAX_GROWTH => {
            println!(
                "FAIL: server.memory_allocated grew {:.2} % (limit {:.0} %)",
                g * 100.0,
                MAX_GROWTH * 100.0
            );
            ok = false;
        }
        Some(_) => {}
        None => {
            println!("FAIL: no server.memory_allocated samples");
            ok = false;
        }
    }
    if ok {
        println!("PASS");
    }
    drop(envoy);
    drop(echo);
    drop(token_server);
    Ok(ok)
}
