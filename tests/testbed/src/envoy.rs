//! The Envoy harness: find the binaries, build a v3 bootstrap, run Envoy and read its admin API.
//!
//! ```no_run
//! use easy_jwt_testbed::envoy::{binaries, Bootstrap, Envoy, Listener, Opts};
//! use easy_jwt_testbed::http::{Conn, Request};
//! let echo = easy_jwt_testbed::EchoServer::start("127.0.0.1:0").unwrap();
//! let bootstrap = Bootstrap::new()
//!     .cluster("echo", echo.addr())
//!     .listener(Listener::new("main").route("all", "/", "echo"));
//! let envoy = Envoy::start(&binaries()[0], &bootstrap, Opts::default()).unwrap();
//! let resp = Conn::open(envoy.listener_addr("main")).send(&Request::get("/x"));
//! assert_eq!(resp.status, 200);
//! ```
//!
//! Every Envoy runs with `--disable-hot-restart` (no shared memory, no base id), so any number
//! can run in parallel, in one process or several.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::http::{self, Request, Response};
use crate::workspace_root;

/// Versions [`binaries`] uses when `ENVOY_BINS` / `ENVOY` are not set (newest first).
pub const DEFAULT_VERSIONS: [&str; 2] = ["1.40.0", "1.36.2"];

/// How long [`Envoy::start`] waits for `/ready` to say `LIVE`.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The filter name Envoy registers the Wasm HTTP filter under.
pub const WASM_FILTER: &str = "envoy.filters.http.wasm";

/// One Envoy binary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvoyBin {
    /// Path of the executable.
    pub path: PathBuf,
    /// `1.40.0`, parsed from `envoy --version`.
    pub version: String,
}

impl EnvoyBin {
    /// The binary at `path`; panics (saying how to get one) if it is missing or does not run.
    pub fn new(path: impl Into<PathBuf>) -> EnvoyBin {
        let path = path.into();
        if !path.exists() {
            panic!(
                "Envoy not found at {}: run `make envoy` (or set ENVOY=/path/to/envoy)",
                path.display()
            );
        }
        let version = version_of(&path);
        EnvoyBin { path, version }
    }

    /// `(major, minor)` of the version, for feature checks (`(1, 40)`).
    pub fn minor_version(&self) -> (u32, u32) {
        let mut it = self
            .version
            .split('.')
            .map(|p| p.parse::<u32>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    }
}

impl fmt::Display for EnvoyBin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "envoy {} ({})", self.version, self.path.display())
    }
}

fn version_of(path: &Path) -> String {
    static CACHE: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(v) = cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .get(path)
    {
        return v.clone();
    }
    let out = Command::new(path)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{} --version`: {e}", path.display()));
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let version = parse_version(&text).unwrap_or_else(|| {
        panic!(
            "cannot find a version in the output of `{} --version`: {text:?}",
            path.display()
        )
    });
    cache
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(path.to_owned(), version.clone());
    version
}

/// `1.40.0` from `envoy  version: 9e55…/1.40.0/Clean/RELEASE/BoringSSL`.
pub fn parse_version(text: &str) -> Option<String> {
    let after = text.split("version:").nth(1)?;
    let word = after.split_whitespace().next()?;
    word.split('/')
        .find(|p| {
            let parts: Vec<&str> = p.split('.').collect();
            parts.len() >= 2
                && parts
                    .iter()
                    .all(|x| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// The Envoy binaries to test against: the space-separated paths in `ENVOY_BINS`, else the one in
/// `ENVOY`, else `<root>/target/envoy/{1.40.0,1.36.2}/envoy`. Panics if one is missing.
pub fn binaries() -> Vec<EnvoyBin> {
    let from_env = std::env::var("ENVOY_BINS")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| std::env::var("ENVOY").ok().filter(|s| !s.trim().is_empty()));
    let paths: Vec<PathBuf> = match from_env {
        Some(list) => list.split_whitespace().map(PathBuf::from).collect(),
        None => DEFAULT_VERSIONS
            .iter()
            .map(|v| workspace_root().join("target/envoy").join(v).join("envoy"))
            .collect(),
    };
    paths.into_iter().map(EnvoyBin::new).collect()
}

/// The first of [`binaries`] (the newest, by default).
pub fn newest() -> EnvoyBin {
    binaries()
        .into_iter()
        .next()
        .expect("ENVOY_BINS lists no Envoy binary")
}

/// An Envoy v3 bootstrap (static clusters and listeners; admin on `127.0.0.1:0`).
#[derive(Clone, Debug, Default)]
pub struct Bootstrap {
    clusters: Vec<Value>,
    listeners: Vec<Listener>,
}

impl Bootstrap {
    /// An empty bootstrap.
    pub fn new() -> Bootstrap {
        Bootstrap::default()
    }

    /// A STATIC HTTP/1.1 cluster with one endpoint (connect timeout 1 s).
    pub fn cluster(self, name: &str, addr: SocketAddr) -> Bootstrap {
        self.raw_cluster(json!({
            "name": name,
            "type": "STATIC",
            "connect_timeout": "1s",
            "lb_policy": "ROUND_ROBIN",
            "load_assignment": {
                "cluster_name": name,
                "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                    "address": addr.ip().to_string(),
                    "port_value": addr.port(),
                }}}}]}],
            },
            "typed_extension_protocol_options": {
                "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                    "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                    "explicit_http_config": {"http_protocol_options": {}},
                },
            },
        }))
    }

    /// Any cluster, as Envoy JSON.
    pub fn raw_cluster(mut self, cluster: Value) -> Bootstrap {
        self.clusters.push(cluster);
        self
    }

    /// Adds a listener.
    pub fn listener(mut self, listener: Listener) -> Bootstrap {
        self.listeners.push(listener);
        self
    }

    /// The bootstrap as Envoy JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "node": {"id": "testbed", "cluster": "testbed"},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {
                "listeners": self.listeners.iter().map(Listener::to_json).collect::<Vec<_>>(),
                "clusters": self.clusters,
            },
        })
    }
}

#[derive(Clone, Debug)]
struct VirtualHost {
    name: String,
    domains: Vec<String>,
    routes: Vec<Value>,
}

/// An HTTP listener on `127.0.0.1:0`: its http filters (router always last) and route table.
///
/// Routes go to the current virtual host (the default one, `*`, until
/// [`Listener::virtual_host`] starts another) and match in the order they were added. A virtual
/// host left without routes is dropped when rendering.
#[derive(Clone, Debug)]
pub struct Listener {
    name: String,
    filters: Vec<Value>,
    vhosts: Vec<VirtualHost>,
    hcm_extra: serde_json::Map<String, Value>,
    buffer_limit: Option<u32>,
}

impl Listener {
    /// A listener named `name` (also the HCM `stat_prefix`), no filters, no routes.
    pub fn new(name: &str) -> Listener {
        Listener {
            name: name.to_owned(),
            filters: Vec::new(),
            vhosts: vec![VirtualHost {
                name: format!("{name}_default"),
                domains: vec!["*".to_owned()],
                routes: Vec::new(),
            }],
            hcm_extra: serde_json::Map::new(),
            buffer_limit: None,
        }
    }

    /// The listener name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Adds the easy-jwt Wasm filter as in the repository's `envoy.yaml`: name and root id
    /// `easy-jwt`, V8, code from `plugin` on disk, `config` as a `StringValue`, fail closed.
    pub fn wasm(self, plugin: impl AsRef<Path>, config: &str) -> Listener {
        let filename = plugin.as_ref().to_string_lossy().into_owned();
        self.filter(json!({
            "name": WASM_FILTER,
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                "config": {
                    "name": "easy-jwt",
                    "root_id": "easy-jwt",
                    "vm_config": {
                        "runtime": "envoy.wasm.runtime.v8",
                        "code": {"local": {"filename": filename}},
                    },
                    "configuration": {
                        "@type": "type.googleapis.com/google.protobuf.StringValue",
                        "value": config,
                    },
                    "fail_open": false,
                },
            },
        }))
    }

    fn last_wasm_config(&mut self) -> &mut serde_json::Map<String, Value> {
        let name = self.name.clone();
        self.filters
            .iter_mut()
            .rev()
            .find(|f| f["name"] == WASM_FILTER)
            .and_then(|f| f["typed_config"]["config"].as_object_mut())
            .unwrap_or_else(|| panic!("listener {name}: call .wasm(…) before changing it"))
    }

    /// Sets `vm_config.vm_id` of the last Wasm filter added (filters with the same id and code
    /// share one VM, across listeners too).
    pub fn wasm_vm_id(mut self, id: &str) -> Listener {
        let cfg = self.last_wasm_config();
        cfg["vm_config"]["vm_id"] = json!(id);
        self
    }

    /// Sets `fail_open` of the last Wasm filter added.
    pub fn wasm_fail_open(mut self, fail_open: bool) -> Listener {
        let cfg = self.last_wasm_config();
        cfg.insert("fail_open".to_owned(), json!(fail_open));
        self
    }

    /// Sets the plugin `name` (and `root_id`) of the last Wasm filter added.
    pub fn wasm_name(mut self, name: &str, root_id: &str) -> Listener {
        let cfg = self.last_wasm_config();
        cfg.insert("name".to_owned(), json!(name));
        cfg.insert("root_id".to_owned(), json!(root_id));
        self
    }

    /// Adds an `envoy.filters.http.lua` filter running `code` (defines `envoy_on_request` etc.).
    pub fn lua(self, code: &str) -> Listener {
        self.filter(json!({
            "name": "envoy.filters.http.lua",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                "default_source_code": {"inline_string": code},
            },
        }))
    }

    /// Adds any http filter (`{"name":…, "typed_config":{…}}`), before the router.
    pub fn filter(mut self, filter: Value) -> Listener {
        self.filters.push(filter);
        self
    }

    fn current_vhost(&mut self) -> &mut VirtualHost {
        if self.vhosts.is_empty() {
            self.vhosts.push(VirtualHost {
                name: format!("{}_default", self.name),
                domains: vec!["*".to_owned()],
                routes: Vec::new(),
            });
        }
        self.vhosts.last_mut().expect("a virtual host exists")
    }

    /// Appends a route `name` sending paths starting with `prefix` to `cluster`.
    pub fn route(self, name: &str, prefix: &str, cluster: &str) -> Listener {
        self.raw_route(json!({
            "name": name,
            "match": {"prefix": prefix},
            "route": {"cluster": cluster},
        }))
    }

    /// Appends a route `name` answering paths starting with `prefix` itself.
    pub fn direct_response(self, name: &str, prefix: &str, status: u16, body: &str) -> Listener {
        self.raw_route(json!({
            "name": name,
            "match": {"prefix": prefix},
            "direct_response": {"status": status, "body": {"inline_string": body}},
        }))
    }

    /// Appends any route (Envoy JSON) to the current virtual host.
    pub fn raw_route(mut self, route: Value) -> Listener {
        self.current_vhost().routes.push(route);
        self
    }

    /// Sets the domains of the current virtual host (default `["*"]`).
    pub fn domains(mut self, domains: &[&str]) -> Listener {
        self.current_vhost().domains = domains.iter().map(|d| (*d).to_owned()).collect();
        self
    }

    /// Starts another virtual host; later routes go to it.
    pub fn virtual_host(mut self, name: &str, domains: &[&str]) -> Listener {
        self.vhosts.push(VirtualHost {
            name: name.to_owned(),
            domains: domains.iter().map(|d| (*d).to_owned()).collect(),
            routes: Vec::new(),
        });
        self
    }

    /// Sets any field of the HttpConnectionManager (e.g. `stream_idle_timeout`).
    pub fn hcm_field(mut self, key: &str, value: Value) -> Listener {
        self.hcm_extra.insert(key.to_owned(), value);
        self
    }

    /// Sets the listener's `per_connection_buffer_limit_bytes` (Envoy's default is 1 MiB; bodies
    /// stream through with flow control either way).
    pub fn buffer_limit(mut self, bytes: u32) -> Listener {
        self.buffer_limit = Some(bytes);
        self
    }

    /// The listener as Envoy JSON.
    pub fn to_json(&self) -> Value {
        let mut filters = self.filters.clone();
        filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }));
        let mut vhosts: Vec<&VirtualHost> = self
            .vhosts
            .iter()
            .filter(|v| !v.routes.is_empty())
            .collect();
        if vhosts.is_empty() {
            vhosts = self.vhosts.iter().take(1).collect();
        }
        let vhosts: Vec<Value> = vhosts
            .iter()
            .map(|v| json!({"name": v.name, "domains": v.domains, "routes": v.routes}))
            .collect();
        let mut hcm = json!({
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": self.name,
            "codec_type": "AUTO",
            "max_request_headers_kb": 96,
            "route_config": {"name": format!("{}_routes", self.name), "virtual_hosts": vhosts},
            "http_filters": filters,
        });
        if let Some(obj) = hcm.as_object_mut() {
            for (k, v) in &self.hcm_extra {
                obj.insert(k.clone(), v.clone());
            }
        }
        let mut listener = json!({
            "name": self.name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": hcm,
            }]}],
        });
        if let Some(limit) = self.buffer_limit {
            listener["per_connection_buffer_limit_bytes"] = json!(limit);
        }
        listener
    }
}

/// Process options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opts {
    /// Worker threads (`--concurrency`).
    pub concurrency: u32,
    /// `--log-level`, also used for the `wasm` component unless `wasm_log_level` is set.
    pub log_level: &'static str,
    /// `--component-log-level wasm:<level>` when it differs from `log_level` (the plugin's debug
    /// lines without the rest of Envoy's).
    pub wasm_log_level: Option<&'static str>,
}

impl Default for Opts {
    fn default() -> Opts {
        Opts {
            concurrency: 1,
            log_level: "info",
            wasm_log_level: None,
        }
    }
}

/// Envoy did not become `LIVE`: it exited (a rejected configuration) or timed out.
pub struct StartError {
    /// The exit status, or `None` if it was still running at the timeout (it has been killed).
    pub status: Option<ExitStatus>,
    /// Why the start failed, in a few words.
    pub reason: String,
    /// The Envoy log file followed by whatever it wrote on stderr and stdout.
    pub log: String,
}

impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl StartError {
    /// The log lines at level warning, error or critical, and what Envoy wrote on stderr/stdout
    /// (where it prints the reason a configuration was rejected).
    pub fn important_lines(&self) -> Vec<&str> {
        let mut out = Vec::new();
        let mut in_streams = false;
        for line in self.log.lines() {
            if line.starts_with("--- std") {
                in_streams = true;
            }
            if in_streams
                || line.contains("][warning][")
                || line.contains("][error][")
                || line.contains("][critical][")
            {
                out.push(line);
            }
        }
        out
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Envoy did not start: {}", self.reason)?;
        match self.status {
            Some(s) => writeln!(f, "exit status: {s}")?,
            None => writeln!(f, "still running at the timeout; killed")?,
        }
        writeln!(
            f,
            "--- Envoy warnings and errors (full text in StartError::log) ---"
        )?;
        for line in self.important_lines() {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for StartError {}

/// A running Envoy. Dropping it stops it (SIGTERM, SIGKILL after 2 s) and removes its directory,
/// unless the thread is panicking (a failing test) or `TESTBED_KEEP` is set, in which case the
/// directory (bootstrap, log) stays under `target/testbed/` and its path is printed.
pub struct Envoy {
    child: Child,
    dir: PathBuf,
    admin: SocketAddr,
    listeners: BTreeMap<String, SocketAddr>,
    bin: EnvoyBin,
}

fn unique_dir() -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    workspace_root()
        .join("target/testbed")
        .join(format!("{}-{n}-{nanos:09}", std::process::id()))
}

fn read_text(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn admin_get(admin: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<Response> {
    let mut conn = http::Conn::try_open(admin)?;
    conn.set_timeout(timeout);
    conn.try_send(&Request::get(path).header("connection", "close"))
}

fn kill_and_wait(child: &mut Child) -> Option<ExitStatus> {
    if let Ok(Some(status)) = child.try_wait() {
        return Some(status);
    }
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().ok()
}

fn parse_listeners(v: &Value) -> BTreeMap<String, SocketAddr> {
    let mut out = BTreeMap::new();
    for l in v["listener_statuses"].as_array().into_iter().flatten() {
        let sa = &l["local_address"]["socket_address"];
        let (Some(name), Some(ip), Some(port)) = (
            l["name"].as_str(),
            sa["address"].as_str(),
            sa["port_value"].as_u64(),
        ) else {
            continue;
        };
        if let Ok(addr) = format!("{ip}:{port}").parse() {
            out.insert(name.to_owned(), addr);
        }
    }
    out
}

impl Envoy {
    /// Writes `bootstrap` to a fresh directory under `<root>/target/testbed/`, runs `bin` on it
    /// and waits (up to [`START_TIMEOUT`]) until the admin `/ready` says `LIVE`.
    pub fn start(bin: &EnvoyBin, bootstrap: &Bootstrap, opts: Opts) -> Result<Envoy, StartError> {
        let dir = unique_dir();
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        let config = dir.join("bootstrap.json");
        let text = serde_json::to_string_pretty(&bootstrap.to_json()).expect("JSON renders");
        fs::write(&config, text)
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", config.display()));
        let admin_file = dir.join("admin-address");
        let log_file = dir.join("envoy.log");
        let stdout = fs::File::create(dir.join("stdout.txt")).expect("create stdout.txt");
        let stderr = fs::File::create(dir.join("stderr.txt")).expect("create stderr.txt");
        let mut child = Command::new(&bin.path)
            .arg("-c")
            .arg(&config)
            .arg("--admin-address-path")
            .arg(&admin_file)
            .arg("--concurrency")
            .arg(opts.concurrency.to_string())
            .arg("--disable-hot-restart")
            .arg("--log-level")
            .arg(opts.log_level)
            .arg("--component-log-level")
            .arg(format!(
                "wasm:{}",
                opts.wasm_log_level.unwrap_or(opts.log_level)
            ))
            .arg("--log-path")
            .arg(&log_file)
            // The log file reaches the disk within 50 ms (Envoy's default is 10 s), for tests
            // that read it while Envoy runs.
            .arg("--file-flush-interval-msec")
            .arg("50")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));

        let collect_log = |dir: &Path| {
            let mut log = read_text(&dir.join("envoy.log"));
            for extra in ["stderr.txt", "stdout.txt"] {
                let text = read_text(&dir.join(extra));
                if !text.trim().is_empty() {
                    log.push_str(&format!("--- {extra} ---\n{text}"));
                }
            }
            log
        };
        let fail = |child: &mut Child, reason: String| {
            let status = kill_and_wait(child);
            let log = collect_log(&dir);
            if std::env::var_os("TESTBED_KEEP").is_none() {
                let _ = fs::remove_dir_all(&dir);
            }
            StartError {
                status,
                reason,
                log,
            }
        };

        let deadline = Instant::now() + START_TIMEOUT;
        let mut admin: Option<SocketAddr> = None;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(fail(&mut child, format!("Envoy exited ({status})")));
            }
            if Instant::now() > deadline {
                return Err(fail(
                    &mut child,
                    format!("not LIVE within {START_TIMEOUT:?}"),
                ));
            }
            if admin.is_none() {
                admin = read_text(&admin_file).trim().parse().ok();
            }
            if let Some(addr) = admin {
                if let Ok(resp) = admin_get(addr, "/ready", Duration::from_secs(2)) {
                    if resp.status == 200 && resp.text().trim() == "LIVE" {
                        break;
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let admin = admin.expect("admin address known once LIVE");
        let listeners = match admin_get(admin, "/listeners?format=json", Duration::from_secs(10)) {
            Ok(resp) if resp.status == 200 => parse_listeners(&resp.json()),
            other => {
                return Err(fail(
                    &mut child,
                    format!("admin /listeners?format=json failed: {other:?}"),
                ))
            }
        };
        Ok(Envoy {
            child,
            dir,
            admin,
            listeners,
            bin: bin.clone(),
        })
    }

    /// The binary this Envoy runs.
    pub fn bin(&self) -> &EnvoyBin {
        &self.bin
    }

    /// The admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// The bound address of listener `name`; panics if there is none.
    pub fn listener_addr(&self, name: &str) -> SocketAddr {
        self.listeners.get(name).copied().unwrap_or_else(|| {
            panic!(
                "Envoy has no listener named {name:?} (it has {:?})",
                self.listeners.keys().collect::<Vec<_>>()
            )
        })
    }

    /// Every listener's bound address, by name.
    pub fn listener_addrs(&self) -> BTreeMap<String, SocketAddr> {
        self.listeners.clone()
    }

    /// `GET path` on the admin API; panics on an I/O error.
    pub fn admin(&self, path: &str) -> Response {
        admin_get(self.admin, path, http::DEFAULT_TIMEOUT).unwrap_or_else(|e| {
            panic!(
                "Envoy admin {path} failed: {e}\n--- log ---\n{}",
                self.log()
            )
        })
    }

    /// `POST path` on the admin API (e.g. `/reset_counters`); panics on an I/O error.
    pub fn admin_post(&self, path: &str) -> Response {
        http::try_send(
            self.admin,
            &Request::post(path).header("connection", "close"),
        )
        .unwrap_or_else(|e| panic!("Envoy admin POST {path} failed: {e}"))
    }

    /// Every counter and gauge (admin `/stats?format=json`), by name. Histograms are left out.
    /// The plugin's counters are `wasmcustom.easy_jwt.<name>`.
    pub fn stats(&self) -> BTreeMap<String, i64> {
        let resp = self.admin("/stats?format=json");
        assert_eq!(resp.status, 200, "admin /stats: {}", resp.text());
        let v = resp.json();
        let mut out = BTreeMap::new();
        for s in v["stats"].as_array().into_iter().flatten() {
            if let (Some(name), Some(value)) = (s["name"].as_str(), s["value"].as_i64()) {
                out.insert(name.to_owned(), value);
            }
        }
        out
    }

    /// One counter or gauge.
    pub fn stat(&self, name: &str) -> Option<i64> {
        self.stats().get(name).copied()
    }

    /// Bytes allocated through Envoy's allocator now (admin `/memory`, `allocated`). This is the
    /// value of the `server.memory_allocated` gauge, read fresh: the gauge in `/stats` is only
    /// refreshed at each stats flush (every 5 s by default).
    pub fn memory_allocated(&self) -> i64 {
        let resp = self.admin("/memory");
        let v = resp.json();
        let field = &v["allocated"];
        field
            .as_i64()
            .or_else(|| field.as_str().and_then(|s| s.parse().ok()))
            .unwrap_or_else(|| panic!("admin /memory has no `allocated`: {}", resp.text()))
    }

    /// Resident set size of the Envoy process (`VmRSS` of `/proc/<pid>/status`), in bytes. It
    /// includes what the Wasm VMs use, which [`Envoy::memory_allocated`] does not.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }

    /// Polls [`Envoy::stat`] until it equals `want` (up to 5 s); returns the last value seen.
    pub fn wait_for_stat(&self, name: &str, want: i64) -> Option<i64> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let v = self.stat(name);
            if v == Some(want) || Instant::now() > deadline {
                return v;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The Envoy log so far.
    pub fn log(&self) -> String {
        read_text(&self.dir.join("envoy.log"))
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The directory holding `bootstrap.json`, `envoy.log`, `stdout.txt`, `stderr.txt`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// This Envoy for the rest of the process: a test binary's shared Envoy, kept in a static
    /// (which Rust never drops). It is stopped (SIGTERM, SIGKILL after 2 s) when the process
    /// exits, and its directory removed unless `TESTBED_KEEP` is set.
    pub fn keep_until_exit(self) -> &'static Envoy {
        let envoy: &'static Envoy = Box::leak(Box::new(self));
        at_exit::register(envoy.child.id(), envoy.dir.clone());
        envoy
    }

    /// Stops Envoy (SIGTERM, then SIGKILL after 2 s) and returns its exit status.
    pub fn stop(mut self) -> Option<ExitStatus> {
        kill_and_wait(&mut self.child)
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        kill_and_wait(&mut self.child);
        if std::thread::panicking() || std::env::var_os("TESTBED_KEEP").is_some() {
            eprintln!("Envoy files kept in {}", self.dir.display());
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Stops the Envoys of [`Envoy::keep_until_exit`] when the process exits (`atexit`: after the
/// test harness's `main` returns or calls `exit`).
mod at_exit {
    use std::path::PathBuf;
    use std::sync::{Mutex, Once};
    use std::time::{Duration, Instant};

    static KEPT: Mutex<Vec<(u32, PathBuf)>> = Mutex::new(Vec::new());
    static HOOK: Once = Once::new();
    const SIGTERM: i32 = 15;
    const SIGKILL: i32 = 9;
    const WNOHANG: i32 = 1;

    extern "C" {
        fn atexit(callback: extern "C" fn()) -> i32;
        fn kill(pid: i32, signal: i32) -> i32;
        fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    }

    pub fn register(pid: u32, dir: PathBuf) {
        KEPT.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((pid, dir));
        // SAFETY: registers a plain `extern "C" fn` with libc.
        HOOK.call_once(|| unsafe {
            atexit(stop_all);
        });
    }

    extern "C" fn stop_all() {
        let kept = std::mem::take(
            &mut *KEPT
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for (pid, _) in &kept {
            // SAFETY: signals our own child process.
            unsafe { kill(*pid as i32, SIGTERM) };
        }
        for (pid, dir) in kept {
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut status = 0;
            // SAFETY: reaps our own child; `status` outlives the call.
            while unsafe { waitpid(pid as i32, &mut status, WNOHANG) } == 0 {
                if Instant::now() > deadline {
                    // SAFETY: as above.
                    unsafe {
                        kill(pid as i32, SIGKILL);
                        waitpid(pid as i32, &mut status, 0);
                    }
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if std::env::var_os("TESTBED_KEEP").is_none() {
                let _ = std::fs::remove_dir_all(&dir);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_envoy_version_output() {
        let text = "\nenvoy  version: 9e5580933739775e8bce696a57a2e1bc99368f23/1.40.0/Clean/RELEASE/BoringSSL\n\n";
        assert_eq!(parse_version(text).as_deref(), Some("1.40.0"));
        assert_eq!(parse_version("nothing"), None);
    }

    #[test]
    fn empty_default_vhost_is_dropped_when_others_have_routes() {
        let l = Listener::new("l")
            .virtual_host("a", &["a.example"])
            .direct_response("r", "/", 200, "a");
        let v = l.to_json();
        let vhosts =
            &v["filter_chains"][0]["filters"][0]["typed_config"]["route_config"]["virtual_hosts"];
        assert_eq!(vhosts.as_array().map(Vec::len), Some(1));
        assert_eq!(vhosts[0]["name"], "a");
    }

    #[test]
    fn router_is_last_and_vm_id_lands_on_the_wasm_filter() {
        let l = Listener::new("l")
            .wasm("/p.wasm", "{}")
            .wasm_vm_id("shared")
            .lua("function envoy_on_request(h) end");
        let v = l.to_json();
        let filters = v["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
            .as_array()
            .cloned()
            .unwrap();
        assert_eq!(filters.len(), 3);
        assert_eq!(filters[2]["name"], "envoy.filters.http.router");
        assert_eq!(
            filters[0]["typed_config"]["config"]["vm_config"]["vm_id"],
            "shared"
        );
    }
}
