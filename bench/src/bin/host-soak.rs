//! `host-soak`: a million requests through ONE VM of the real plugin, in the in-process host
//! (`cargo run --release -p easy-jwt-bench --bin host-soak`; `make soak` runs `envoy-soak`).
//!
//! Requests mix every path of the plugin — ignored, anonymous, missing or malformed token,
//! allowed / denied / failed calls (answered in-process, out of order, in batches), cache hits,
//! coalesced calls and clients that leave while paused — and every decided request is checked
//! against what it should have been. A second phase holds 10,000 requests paused at once, then
//! answers them. Prints requests, hung requests, traps, wrong outcomes, guest memory growth and
//! time; exits non-zero on any hung request, trap, wrong outcome or memory growth over 10%.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use easy_jwt_host::vm::{
    CallOutcome, HttpCall, LogLevel, StreamId, StreamProps, StreamState, VmConfig,
};
use easy_jwt_host::{Clock, HostEnv, ManualClock, Plugin, Vm};

const CLUSTER: &str = "outbound|9090||token-server.dns";
/// Requests per batch: begun together, their calls answered together in shuffled order.
const BATCH: usize = 64;
/// Allowed tokens drawn from this pool (more than the cache holds: evictions happen).
const ALLOW_POOL: u64 = 4_000;
/// Requests per simulated second (the cache TTL is 30 s, so entries expire during the run).
const REQUESTS_PER_SECOND: u64 = 500;
/// Memory is measured after this many requests, and compared at the end.
const WARM_UP: u64 = 10_000;
/// Requests paused at once in the second phase.
const PAUSED_AT_ONCE: usize = 10_000;
const MAX_GROWTH_PERCENT: f64 = 10.0;

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "host-soak",
    about = "One million requests through one plugin VM"
)]
struct Args {
    /// The plugin to soak.
    #[arg(long, default_value = "plugin.wasm")]
    plugin: PathBuf,
    /// Requests of the mixed phase.
    #[arg(long, default_value_t = 1_000_000)]
    requests: u64,
}

/// The configuration under test: the deployed one, failures told apart by their status.
fn plugin_config() -> Vec<u8> {
    serde_json::json!({
        "tokenServerFQDN": "token-server.dns",
        "tokenServerPort": 9090,
        "ignoreUrls": ["/healthz", "/public/*"],
        "anonymousToken": "AnonymousToken",
        "anonymousUID": 0,
        "responseErrorStatusCode": 401,
        "tokenServerFailureStatusCode": 503,
        "cacheTtlSeconds": 30,
        "cacheMaxEntries": 1000,
        "authResponseHeaders": {"role": "x-role"}
    })
    .to_string()
    .into_bytes()
}

/// A small deterministic PRNG (xorshift64*), so runs are reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.below(i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

/// What a request should end as.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expect {
    Upstream { uid: String },
    Reply { status: u16 },
}

/// One generated request and its expected outcome.
struct Plan {
    headers: Vec<(String, String)>,
    expect: Expect,
    /// The client leaves while the request is paused.
    leaves: bool,
}

fn request(path: &str, authorization: Option<String>) -> Vec<(String, String)> {
    let mut headers = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "api.example.com".to_string()),
        ("x-auth-user".to_string(), "1".to_string()),
    ];
    if let Some(value) = authorization {
        headers.push(("authorization".to_string(), value));
    }
    headers
}

/// Draws the next request of the mix.
fn plan(rng: &mut Rng) -> Plan {
    let roll = rng.below(100);
    let leaves = rng.below(200) == 0;
    let (headers, expect) = match roll {
        0..=9 => (request("/public/a/../b.css", None), uid("0")),
        10..=14 => (
            request("/api", Some("Bearer AnonymousToken".into())),
            uid("0"),
        ),
        15..=19 => (request("/api", None), reply(401)),
        20..=22 => (
            request("/public/../admin", Some("Basic x".into())),
            reply(401),
        ),
        23..=29 => (
            request("/api", Some(format!("Bearer deny-{}", rng.below(50)))),
            reply(401),
        ),
        30..=39 => (
            request("/api", Some(format!("Bearer fail-{}", rng.below(60)))),
            reply(503),
        ),
        _ => {
            let n = rng.below(ALLOW_POOL);
            (
                request("/api", Some(format!("Bearer allow-{n}"))),
                uid(&n.to_string()),
            )
        }
    };
    Plan {
        headers,
        expect,
        leaves,
    }
}

fn uid(value: &str) -> Expect {
    Expect::Upstream {
        uid: value.to_string(),
    }
}

fn reply(status: u16) -> Expect {
    Expect::Reply { status }
}

/// The in-process token server: the answer follows from the token's name.
fn answer(call: &HttpCall) -> CallOutcome {
    let token = serde_json::from_slice::<serde_json::Value>(&call.body)
        .ok()
        .and_then(|body| {
            body.get("token")
                .and_then(|t| t.as_str())
                .map(str::to_string)
        })
        .unwrap_or_default();
    let (kind, n) = token.split_once('-').unwrap_or((token.as_str(), "0"));
    let number: u64 = n.parse().unwrap_or(0);
    match kind {
        "allow" => response(200, &format!(r#"{{"uid":{n},"role":"r{n}"}}"#)),
        "deny" => response(401, r#"{"message":"invalid token"}"#),
        _ => match number % 6 {
            0 => CallOutcome::Timeout,
            1 => CallOutcome::ConnectFailure,
            2 => CallOutcome::Reset,
            3 => response(200, "garbage"),
            4 => response(500, "<html>oops</html>"),
            _ => response(503, r#"{"message":"down"}"#),
        },
    }
}

fn response(status: u16, body: &str) -> CallOutcome {
    CallOutcome::Response {
        headers: vec![
            (":status".to_string(), status.to_string()),
            ("content-type".to_string(), "application/json".to_string()),
        ],
        body: body.as_bytes().to_vec(),
        trailers: Vec::new(),
    }
}

/// Running totals.
#[derive(Debug, Default)]
struct Tally {
    requests: u64,
    hung: u64,
    wrong: u64,
    left: u64,
    calls: u64,
    first_wrong: Option<String>,
}

impl Tally {
    fn wrong(&mut self, what: String) {
        self.wrong += 1;
        if self.first_wrong.is_none() {
            self.first_wrong = Some(what);
        }
    }
}

/// One VM and its simulated clock.
struct Soak {
    vm: Vm,
    clock: Arc<ManualClock>,
    rng: Rng,
    tally: Tally,
    /// Guest memory every 100,000 requests of the mix (shows whether growth levels off).
    samples: Vec<(u64, usize)>,
}

impl Soak {
    fn start(plugin: &Plugin) -> Result<Soak, String> {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?;
        let nanos = u64::try_from(start.as_nanos()).map_err(|e| e.to_string())?;
        let clock = Arc::new(ManualClock::new(nanos));
        let env = HostEnv::with_clock(clock.clone() as Arc<dyn Clock>);
        let cfg = VmConfig {
            plugin_configuration: plugin_config(),
            clusters: [CLUSTER.to_string()].into(),
            log_level: LogLevel::Warn,
            ..VmConfig::default()
        };
        let vm = Vm::start(plugin, &env, cfg).map_err(|e| format!("VM start: {e}"))?;
        if !vm.configured() {
            return Err(format!("configuration rejected: {:?}", vm.logs()));
        }
        Ok(Soak {
            vm,
            clock,
            rng: Rng(0x9E37_79B9_7F4A_7C15),
            tally: Tally::default(),
            samples: Vec::new(),
        })
    }

    /// Runs one batch: begin every request, let some clients leave, answer the calls shuffled
    /// (ticks included, for re-dispatched orphaned calls), then check and end every stream.
    fn batch(&mut self, size: usize) {
        let plans: Vec<Plan> = (0..size).map(|_| plan(&mut self.rng)).collect();
        let mut streams = Vec::with_capacity(size);
        for plan in plans {
            let id = self.vm.new_stream(StreamProps::default());
            self.vm.on_request_headers(id, plan.headers.clone(), true);
            if plan.leaves && self.vm.state(id) == StreamState::Paused {
                self.vm.end_stream(id);
                self.tally.left += 1;
                continue;
            }
            streams.push((id, plan.expect));
        }
        self.answer_all();
        for (id, expect) in streams {
            self.check(id, &expect);
            self.vm.end_stream(id);
        }
        self.tally.requests += size as u64;
        self.vm.take_logs();
    }

    /// Answers calls, shuffled, until none is pending (at most a few rounds of ticks).
    fn answer_all(&mut self) {
        for _ in 0..16 {
            let mut calls = self.vm.take_calls();
            if calls.is_empty() {
                if self.vm.tick_period().is_none() {
                    return;
                }
                self.vm.tick();
                continue;
            }
            self.rng.shuffle(&mut calls);
            for call in calls {
                let outcome = answer(&call);
                self.tally.calls += 1;
                self.vm.deliver_call(call.token, outcome);
            }
            self.vm.take_events();
        }
    }

    fn check(&mut self, id: StreamId, expect: &Expect) {
        let state = self.vm.state(id);
        let got = match &state {
            StreamState::Paused | StreamState::Pending => {
                self.tally.hung += 1;
                return;
            }
            StreamState::Continued => {
                let headers = self.vm.request_headers(id);
                let uids: Vec<&str> = headers
                    .iter()
                    .filter(|(name, _)| name == "x-auth-user")
                    .map(|(_, value)| value.as_str())
                    .collect();
                match uids.as_slice() {
                    [one] => uid(one),
                    other => {
                        let what = format!("{id:?}: x-auth-user {other:?}");
                        self.tally.wrong(what);
                        return;
                    }
                }
            }
            StreamState::LocalReply(local) => reply(local.status),
            StreamState::Ended => reply(0),
        };
        if got != *expect {
            self.tally
                .wrong(format!("{id:?}: expected {expect:?}, got {state:?}"));
        }
    }

    /// The mixed phase; returns guest memory after the warm-up.
    fn mixed(&mut self, requests: u64) -> usize {
        let mut warm_memory = self.vm.memory_bytes();
        let mut last_second = 0;
        while self.tally.requests < requests {
            let left = usize::try_from(requests - self.tally.requests).unwrap_or(BATCH);
            self.batch(left.min(BATCH));
            let second = self.tally.requests / REQUESTS_PER_SECOND;
            if second > last_second {
                self.clock
                    .advance(Duration::from_secs(second - last_second));
                last_second = second;
            }
            if self.tally.requests % 100_000 < BATCH as u64 {
                self.samples
                    .push((self.tally.requests, self.vm.memory_bytes()));
            }
            if self.tally.requests <= WARM_UP {
                warm_memory = self.vm.memory_bytes();
            }
            if self.vm.failed().is_some() {
                break;
            }
        }
        warm_memory
    }

    /// 10,000 requests paused at once (distinct and repeated tokens), then answered in reverse.
    fn paused_at_once(&mut self) -> usize {
        let mut streams = Vec::with_capacity(PAUSED_AT_ONCE);
        for i in 0..PAUSED_AT_ONCE {
            let n = 1_000_000 + i % 9_000;
            let id = self.vm.new_stream(StreamProps::default());
            let headers = request("/api", Some(format!("Bearer allow-{n}")));
            self.vm.on_request_headers(id, headers, true);
            streams.push((id, uid(&n.to_string())));
        }
        let paused = streams
            .iter()
            .filter(|(id, _)| self.vm.state(*id) == StreamState::Paused)
            .count();
        let mut calls = self.vm.take_calls();
        calls.reverse();
        for call in calls {
            let outcome = answer(&call);
            self.tally.calls += 1;
            self.vm.deliver_call(call.token, outcome);
        }
        self.vm.take_events();
        for (id, expect) in streams {
            self.check(id, &expect);
            self.vm.end_stream(id);
        }
        self.tally.requests += PAUSED_AT_ONCE as u64;
        self.vm.take_logs();
        paused
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn run(args: &Args) -> Result<bool, String> {
    let plugin =
        Plugin::load(&args.plugin).map_err(|e| format!("{}: {e}", args.plugin.display()))?;
    let mut soak = Soak::start(&plugin)?;
    let started = Instant::now();
    let warm = soak.mixed(args.requests);
    let mixed_time = started.elapsed();
    let end = soak.vm.memory_bytes();
    let phase = Instant::now();
    let paused = soak.paused_at_once();
    let after_paused = soak.vm.memory_bytes();
    let growth = (end as f64 - warm as f64) * 100.0 / (warm.max(1) as f64);
    let hung = soak.tally.hung + soak.vm.pending_calls() as u64;
    let trap = soak.vm.failed().map(str::to_string);
    let tally = &soak.tally;
    println!("easy-jwt soak: one VM of {}", args.plugin.display());
    println!(
        "  requests            {} ({} mixed + {PAUSED_AT_ONCE} paused at once)",
        tally.requests, args.requests
    );
    println!("  token-server calls  {}", tally.calls);
    println!("  clients gone paused {}", tally.left);
    println!("  hung (paused)       {hung}");
    println!("  traps               {}", trap.as_deref().unwrap_or("0"));
    println!("  wrong outcomes      {}", tally.wrong);
    if let Some(first) = &tally.first_wrong {
        println!("    first: {first}");
    }
    println!("  guest memory        {:.2} MiB after {WARM_UP} requests, {:.2} MiB at the end of the mix ({growth:+.1}%)", mib(warm), mib(end));
    let samples: Vec<String> = soak
        .samples
        .iter()
        .map(|(n, bytes)| format!("{}k:{:.2}", n / 1000, mib(*bytes)))
        .collect();
    println!("  memory samples MiB  {}", samples.join(" "));
    println!("  paused at once      {paused} of {PAUSED_AT_ONCE}, all answered in {:.2?}; memory then {:.2} MiB", phase.elapsed(), mib(after_paused));
    println!(
        "  time                {:.2?} mixed ({:.0} req/s), {:.2?} total",
        mixed_time,
        args.requests as f64 / mixed_time.as_secs_f64().max(1e-9),
        started.elapsed()
    );
    Ok(hung == 0
        && trap.is_none()
        && tally.wrong == 0
        && paused == PAUSED_AT_ONCE
        && growth <= MAX_GROWTH_PERCENT)
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("host-soak: FAILED (hung request, trap, wrong outcome or memory growth > {MAX_GROWTH_PERCENT}%)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("host-soak: {error}");
            ExitCode::FAILURE
        }
    }
}
