//! The async gateway: a real HTTP/1.1 listener in front of one `Vm` per worker thread, a real
//! upstream (built-in echo or HTTP), and real HTTP/1.1 cluster calls for `proxy_http_call`.
//!
//! # Layout
//! - [`client`] — one-shot HTTP/1.1 client and Envoy's call-outcome mapping (host-semantics §3).
//! - `server` — data-plane listener; connections go to workers round-robin.
//! - `worker` — worker threads, each owning its `Vm` and the streams of its connections.
//! - `admin` — `GET /stats` and `GET /ready`.
//!
//! # Start-up (host-semantics §1)
//! The plugin is compiled once; a throw-away canary VM validates the configuration, then each
//! worker thread starts and configures its own VM. All VMs share one [`HostEnv`], so shared data
//! and metrics are process-wide while Rust globals and root-context state are per worker.

pub mod client;

mod admin;
mod server;
mod worker;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::clock::Clock;
use crate::env::HostEnv;
use crate::error::HostError;
use crate::plugin::Plugin;
use crate::vm::{LogLevel, LogRecord, Vm, VmConfig};

pub use admin::stats_text;
pub use server::envoy_headers;
pub use worker::Counters;

/// Receives every plugin log line with the number of the worker whose VM wrote it
/// ([`CANARY_WORKER`] for the validation VM).
pub type LogSink = Arc<dyn Fn(usize, &LogRecord) + Send + Sync>;

/// Worker number reported to the [`LogSink`] for the canary (validation) VM.
pub const CANARY_WORKER: usize = usize::MAX;

/// Where requests the plugin lets through go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upstream {
    /// The built-in echo upstream (see [`crate::echo`]), answered in-process.
    Echo,
    /// A real HTTP/1.1 server.
    Http(SocketAddr),
}

/// Everything [`Gateway::start`] needs.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Path of the plugin `.wasm`.
    pub plugin: PathBuf,
    /// An already compiled plugin to use instead of compiling `plugin` (tests share one
    /// compilation across gateways this way).
    pub compiled: Option<Plugin>,
    /// Plugin configuration (buffer 7), usually JSON.
    pub plugin_configuration: Vec<u8>,
    /// Data-plane address; port 0 picks a free port (see [`Gateway::local_addr`]).
    pub listen: SocketAddr,
    /// Admin address (`/stats`, `/ready`); `None` disables it.
    pub admin: Option<SocketAddr>,
    /// Where continued requests go.
    pub upstream: Upstream,
    /// `proxy_http_call` targets by cluster name (real HTTP/1.1).
    pub clusters: BTreeMap<String, SocketAddr>,
    /// Worker threads, one VM each (at least 1).
    pub workers: usize,
    /// `route_name` property of every stream.
    pub route_name: Option<String>,
    /// `cluster_name` property of every stream.
    pub cluster_name: Option<String>,
    /// VM failure policy (host-semantics §1): false = 503 `wasm_fail_stream`.
    pub fail_open: bool,
    /// Receives every plugin log line.
    pub log_sink: Option<LogSink>,
    /// Level of the emulated `wasm` logger (`--component-log-level wasm:<level>` in Envoy): the
    /// plugin's `proxy_get_log_level` answer; lines below it are dropped.
    pub log_level: LogLevel,
    /// Clock of the shared [`HostEnv`]; `None` = system clock.
    pub clock: Option<Arc<dyn Clock>>,
}

impl GatewayConfig {
    /// A configuration with defaults: not precompiled, `127.0.0.1:0`, no admin, echo upstream, no clusters,
    /// 2 workers, fail closed, no log sink, trace log level, system clock.
    pub fn new(plugin: impl Into<PathBuf>, plugin_configuration: impl Into<Vec<u8>>) -> Self {
        GatewayConfig {
            plugin: plugin.into(),
            compiled: None,
            plugin_configuration: plugin_configuration.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin: None,
            upstream: Upstream::Echo,
            clusters: BTreeMap::new(),
            workers: 2,
            route_name: None,
            cluster_name: None,
            fail_open: false,
            log_sink: None,
            log_level: LogLevel::Trace,
            clock: None,
        }
    }

    /// The VM configuration every worker (and the canary) starts with.
    fn vm_config(&self) -> VmConfig {
        VmConfig {
            plugin_configuration: self.plugin_configuration.clone(),
            clusters: self.clusters.keys().cloned().collect(),
            fail_open: self.fail_open,
            log_level: self.log_level,
            ..VmConfig::default()
        }
    }
}

/// A running gateway. Dropping it signals shutdown without waiting; prefer [`Gateway::shutdown`].
pub struct Gateway {
    local_addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    env: HostEnv,
    counters: Arc<Counters>,
    shutdown_tx: watch::Sender<bool>,
    accept: Option<JoinHandle<()>>,
    admin: Option<JoinHandle<()>>,
    workers: Vec<worker::WorkerHandle>,
}

impl Gateway {
    /// Compiles the plugin, validates the configuration with a canary VM, starts the worker
    /// threads (one configured VM each) and the listeners. Must run inside a multi-thread tokio
    /// runtime.
    ///
    /// # Errors
    /// The plugin cannot be loaded, a VM fails to start, `on_configure` returns false (the
    /// message includes the VM's log lines), or a listener cannot bind.
    pub async fn start(cfg: GatewayConfig) -> Result<Gateway, HostError> {
        let plugin = match cfg.compiled.clone() {
            Some(compiled) => Arc::new(compiled),
            None => Arc::new(load_plugin(cfg.plugin.clone()).await?),
        };
        let env = cfg
            .clock
            .clone()
            .map_or_else(HostEnv::new, HostEnv::with_clock);
        canary(plugin.clone(), env.clone(), &cfg).await?;
        let listener = bind(cfg.listen, "listen").await?;
        let data_addr = bound_addr(&listener)?;
        let admin_listener = match cfg.admin {
            Some(addr) => Some(bind(addr, "admin").await?),
            None => None,
        };
        let admin_addr = admin_listener.as_ref().map(bound_addr).transpose()?;
        let counters = Arc::new(Counters::default());
        let workers = start_workers(&plugin, &env, &cfg, &counters).await?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let senders = workers.iter().map(|w| w.tx.clone()).collect();
        let shared = Arc::new(server::Shared::new(senders, cfg.upstream));
        let accept = tokio::spawn(server::accept_loop(listener, shared, shutdown_rx.clone()));
        let admin = admin_listener.map(|listener| {
            let metrics = env.metrics.clone();
            tokio::spawn(admin::serve(listener, metrics, shutdown_rx))
        });
        Ok(Gateway {
            local_addr: data_addr,
            admin_addr,
            env,
            counters,
            shutdown_tx,
            accept: Some(accept),
            admin,
            workers,
        })
    }

    /// The bound data-plane address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound admin address, if the admin listener is enabled.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Metrics and shared data of this gateway.
    pub fn env(&self) -> &HostEnv {
        &self.env
    }

    /// Stream and call counters of all workers.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Graceful stop: no new connections, in-flight exchanges finish (bounded), open streams end
    /// (on_log, on_done, on_delete), worker threads exit.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown_tx.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
        if let Some(admin) = self.admin.take() {
            let _ = admin.await;
        }
        for worker in std::mem::take(&mut self.workers) {
            worker.stop().await;
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.shutdown_tx.send(true);
        for worker in &self.workers {
            let _ = worker.tx.send(worker::Msg::Shutdown);
        }
    }
}

/// Compiles the plugin off the async threads.
async fn load_plugin(path: PathBuf) -> Result<Plugin, HostError> {
    tokio::task::spawn_blocking(move || Plugin::load(&path))
        .await
        .map_err(|e| HostError::Other(format!("plugin loader task failed: {e}")))?
}

/// Runs the throw-away validation VM: start, vm_start, configure, then drop it.
async fn canary(plugin: Arc<Plugin>, env: HostEnv, cfg: &GatewayConfig) -> Result<(), HostError> {
    let vm_config = cfg.vm_config();
    let sink = cfg.log_sink.clone();
    tokio::task::spawn_blocking(move || {
        let mut vm = Vm::start(&plugin, &env, vm_config)?;
        let logs = vm.take_logs();
        if let Some(sink) = &sink {
            logs.iter().for_each(|record| sink(CANARY_WORKER, record));
        }
        if vm.configured() {
            Ok(())
        } else {
            Err(configure_error(CANARY_WORKER, &logs, vm.failed()))
        }
    })
    .await
    .map_err(|e| HostError::Other(format!("canary task failed: {e}")))?
}

/// Starts the worker threads one by one; on failure stops those already running.
async fn start_workers(
    plugin: &Arc<Plugin>,
    env: &HostEnv,
    cfg: &GatewayConfig,
    counters: &Arc<Counters>,
) -> Result<Vec<worker::WorkerHandle>, HostError> {
    let clusters = Arc::new(cfg.clusters.clone());
    let runtime = tokio::runtime::Handle::current();
    let mut started = Vec::new();
    for index in 0..cfg.workers.max(1) {
        let setup = worker::WorkerSetup {
            index,
            plugin: plugin.clone(),
            env: env.clone(),
            vm_config: cfg.vm_config(),
            route_name: cfg.route_name.clone(),
            cluster_name: cfg.cluster_name.clone(),
            clusters: clusters.clone(),
            runtime: runtime.clone(),
            sink: cfg.log_sink.clone(),
            counters: counters.clone(),
        };
        match worker::spawn(setup).await {
            Ok(handle) => started.push(handle),
            Err(e) => {
                for handle in started {
                    handle.stop().await;
                }
                return Err(e);
            }
        }
    }
    Ok(started)
}

/// The error for a VM whose `on_configure` returned false, with its log lines.
fn configure_error(worker: usize, logs: &[LogRecord], trap: Option<&str>) -> HostError {
    let who = if worker == CANARY_WORKER {
        "canary VM".to_string()
    } else {
        format!("worker {worker} VM")
    };
    let mut message = format!("plugin configuration rejected: on_configure returned false ({who})");
    if let Some(trap) = trap {
        message.push_str(&format!("; VM failed: {trap}"));
    }
    for record in logs {
        message.push_str(&format!(
            "\n  [{}] {}",
            record.level.as_str(),
            record.message
        ));
    }
    HostError::Other(message)
}

/// Binds a listener, naming which one failed.
async fn bind(addr: SocketAddr, what: &str) -> Result<TcpListener, HostError> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| HostError::Io(format!("cannot bind {what} address {addr}: {e}")))
}

/// The address a listener actually bound.
fn bound_addr(listener: &TcpListener) -> Result<SocketAddr, HostError> {
    listener
        .local_addr()
        .map_err(|e| HostError::Io(format!("listener has no local address: {e}")))
}
