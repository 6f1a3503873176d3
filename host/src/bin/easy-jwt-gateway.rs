//! `easy-jwt-gateway`: runs a proxy-wasm plugin (easy-jwt by default) in the emulated
//! Envoy/Higress gateway — real HTTP listener, upstream and cluster calls (`make dev`).

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use easy_jwt_host::gateway::{Gateway, GatewayConfig, LogSink, Upstream, CANARY_WORKER};
use easy_jwt_host::vm::{LogLevel, LogRecord};

/// Command-line flags.
#[derive(Debug, Parser)]
#[command(
    name = "easy-jwt-gateway",
    about = "Run a proxy-wasm plugin behind a real HTTP listener, Envoy-style"
)]
struct Args {
    /// Plugin module (.wasm).
    #[arg(long, default_value = "plugin.wasm")]
    plugin: PathBuf,
    /// Plugin configuration JSON file (handed to on_configure).
    #[arg(long, default_value = "deploy/plugin-config.json")]
    config: PathBuf,
    /// Data-plane listen address.
    #[arg(long, default_value = "127.0.0.1:10000")]
    listen: SocketAddr,
    /// Admin listen address (GET /stats, GET /ready).
    #[arg(long, default_value = "127.0.0.1:9901")]
    admin: SocketAddr,
    /// Upstream for requests the plugin lets through: `echo` (built in) or HOST:PORT.
    #[arg(long, default_value = "echo", value_parser = parse_upstream)]
    upstream: Upstream,
    /// Cluster reachable by proxy_http_call, as NAME=HOST:PORT (repeatable).
    #[arg(
        long = "cluster",
        value_name = "NAME=HOST:PORT",
        value_parser = parse_cluster,
        default_value = "outbound|9090||token-server.dns=127.0.0.1:9090"
    )]
    clusters: Vec<(String, SocketAddr)>,
    /// Worker threads (one VM each).
    #[arg(long, default_value_t = 2)]
    workers: usize,
    /// `route_name` property of every request.
    #[arg(long)]
    route_name: Option<String>,
    /// `cluster_name` property of every request.
    #[arg(long)]
    cluster_name: Option<String>,
    /// Skip the plugin instead of answering 503 once its VM has failed.
    #[arg(long)]
    fail_open: bool,
    /// Level of the `wasm` logger (trace, debug, info, warn, error, critical), as Envoy's
    /// `--component-log-level wasm:<level>`; the plugin skips lines below it.
    #[arg(long, default_value = "debug", value_parser = parse_log_level)]
    log_level: LogLevel,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("easy-jwt-gateway: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the gateway, prints how to use it, serves until Ctrl-C/SIGTERM, stops gracefully.
async fn run(args: Args) -> Result<(), String> {
    let configuration = std::fs::read(&args.config).map_err(|e| {
        format!(
            "cannot read plugin configuration {}: {e}",
            args.config.display()
        )
    })?;
    let cfg = gateway_config(&args, configuration);
    let gateway = Gateway::start(cfg).await.map_err(|e| e.to_string())?;
    print_banner(&args, &gateway);
    wait_for_signal().await;
    println!("easy-jwt-gateway: shutting down");
    gateway.shutdown().await;
    Ok(())
}

/// The gateway configuration the flags describe.
fn gateway_config(args: &Args, plugin_configuration: Vec<u8>) -> GatewayConfig {
    let clusters: BTreeMap<String, SocketAddr> = args.clusters.iter().cloned().collect();
    let mut cfg = GatewayConfig::new(args.plugin.clone(), plugin_configuration);
    cfg.listen = args.listen;
    cfg.admin = Some(args.admin);
    cfg.upstream = args.upstream;
    cfg.clusters = clusters;
    cfg.workers = args.workers.max(1);
    cfg.route_name = args.route_name.clone();
    cfg.cluster_name = args.cluster_name.clone();
    cfg.fail_open = args.fail_open;
    cfg.log_level = args.log_level;
    let sink: LogSink = Arc::new(print_log);
    cfg.log_sink = Some(sink);
    cfg
}

/// Prints one plugin log line as `[worker N] [level] message`.
fn print_log(worker: usize, record: &LogRecord) {
    let level = record.level.as_str();
    if worker == CANARY_WORKER {
        println!("[canary] [{level}] {}", record.message);
    } else {
        println!("[worker {worker}] [{level}] {}", record.message);
    }
}

/// The listen address and ready-to-paste curl commands with the real addresses.
fn print_banner(args: &Args, gateway: &Gateway) {
    let listen = gateway.local_addr();
    let admin = gateway
        .admin_addr()
        .map_or_else(|| args.admin.to_string(), |a| a.to_string());
    let upstream = match args.upstream {
        Upstream::Echo => "echo (built in)".to_string(),
        Upstream::Http(addr) => addr.to_string(),
    };
    println!("easy-jwt-gateway listening on http://{listen}");
    println!(
        "  plugin {} ({} workers), upstream {upstream}",
        args.plugin.display(),
        args.workers.max(1)
    );
    for (name, addr) in &args.clusters {
        println!("  cluster {name} -> {addr}");
    }
    println!("\nTry:");
    if let Some(token_server) = token_server(&args.clusters) {
        println!("  # create a token");
        println!(
            "  curl -s -X POST http://{token_server}/api/token/create -H 'content-type: application/json' -d '{{\"uid\":100}}'"
        );
    }
    println!("  # call the gateway without a token");
    println!("  curl -i http://{listen}/");
    println!("  # call it with the token");
    println!("  curl -i http://{listen}/ -H \"Authorization: Bearer <token>\"");
    println!("  # plugin metrics");
    println!("  curl -s http://{admin}/stats\n");
}

/// The token server's address: the cluster whose name mentions it, else the first one.
fn token_server(clusters: &[(String, SocketAddr)]) -> Option<SocketAddr> {
    clusters
        .iter()
        .find(|(name, _)| name.contains("token-server"))
        .or_else(|| clusters.first())
        .map(|(_, addr)| *addr)
}

/// Resolves when Ctrl-C or (on Unix) SIGTERM arrives.
async fn wait_for_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// `echo` or HOST:PORT.
fn parse_upstream(text: &str) -> Result<Upstream, String> {
    if text.eq_ignore_ascii_case("echo") {
        Ok(Upstream::Echo)
    } else {
        resolve(text).map(Upstream::Http)
    }
}

/// NAME=HOST:PORT (the name may contain `|`, as Istio cluster names do).
fn parse_cluster(text: &str) -> Result<(String, SocketAddr), String> {
    let (name, addr) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("expected NAME=HOST:PORT, got {text:?}"))?;
    if name.is_empty() {
        return Err(format!("empty cluster name in {text:?}"));
    }
    Ok((name.to_string(), resolve(addr)?))
}

/// HOST:PORT to the first address it resolves to.
fn resolve(text: &str) -> Result<SocketAddr, String> {
    text.to_socket_addrs()
        .map_err(|e| format!("bad address {text:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("address {text:?} resolves to nothing"))
}

/// `--log-level` values, named as Envoy names them.
fn parse_log_level(text: &str) -> Result<LogLevel, String> {
    match text {
        "trace" => Ok(LogLevel::Trace),
        "debug" => Ok(LogLevel::Debug),
        "info" => Ok(LogLevel::Info),
        "warn" | "warning" => Ok(LogLevel::Warn),
        "error" => Ok(LogLevel::Error),
        "critical" => Ok(LogLevel::Critical),
        other => Err(format!(
            "unknown log level `{other}` (trace, debug, info, warn, error, critical)"
        )),
    }
}
