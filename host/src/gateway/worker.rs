//! Worker threads: each owns one `Vm` (wasmtime stores never leave their thread) and drives the
//! streams of its connections from messages sent by the async side.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::client::{self, Fetched};
use super::LogSink;
use crate::env::HostEnv;
use crate::error::HostError;
use crate::plugin::Plugin;
use crate::vm::{CallOutcome, Event, LocalReply, StreamId, StreamProps, StreamState, Vm, VmConfig};

/// Upper bound on event-draining rounds after one message (a plugin cannot loop the worker).
const MAX_EVENT_ROUNDS: usize = 64;

/// A finished HTTP answer for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Header entries, pseudo headers already removed.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

/// What the worker tells the connection task to do next.
#[derive(Debug)]
pub enum Decision {
    /// Send this request upstream (Envoy-style headers as the plugin left them).
    Forward {
        /// Request headers including pseudo headers.
        headers: Vec<(String, String)>,
        /// Request body.
        body: Vec<u8>,
    },
    /// Answer the client with this.
    Respond(Reply),
}

/// Messages a worker thread receives.
pub enum Msg {
    /// A new client request (headers already Envoy-style).
    Request {
        /// Per-gateway unique request key.
        key: u64,
        /// `:method`, `:path`, `:authority`, `:scheme`, then the lowercase client headers.
        headers: Vec<(String, String)>,
        /// Whole request body (may be empty).
        body: Vec<u8>,
        /// Where the first decision goes.
        reply: oneshot::Sender<Decision>,
    },
    /// The upstream answered a forwarded request.
    Response {
        /// Request key.
        key: u64,
        /// The upstream answer.
        fetched: Fetched,
        /// Where the final answer goes.
        reply: oneshot::Sender<Decision>,
    },
    /// The client went away (or the connection task finished) before the stream ended.
    Disconnect {
        /// Request key.
        key: u64,
    },
    /// A dispatched `proxy_http_call` finished.
    CallDone {
        /// Token returned by `proxy_http_call`.
        token: u32,
        /// What Envoy would hand the plugin.
        outcome: CallOutcome,
    },
    /// Stop: end every open stream and exit the thread.
    Shutdown,
}

/// Gateway-wide counters, updated by the workers (observability for tests and operators).
#[derive(Debug, Default)]
pub struct Counters {
    /// Streams created and not yet ended.
    pub streams_open: AtomicUsize,
    /// Streams ended (on_log, on_done, on_delete ran).
    pub streams_ended: AtomicU64,
    /// `proxy_http_call`s started on the network.
    pub calls_dispatched: AtomicU64,
    /// Call outcomes handed back to a VM (including late ones for ended streams).
    pub calls_delivered: AtomicU64,
}

impl Counters {
    fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// Everything a worker needs to build its VM and serve.
pub struct WorkerSetup {
    /// Worker number (0-based), used for log lines.
    pub index: usize,
    /// The compiled plugin.
    pub plugin: Arc<Plugin>,
    /// Process-wide state shared by every VM.
    pub env: HostEnv,
    /// This worker's VM configuration.
    pub vm_config: VmConfig,
    /// `route_name` property of every stream.
    pub route_name: Option<String>,
    /// `cluster_name` property of every stream.
    pub cluster_name: Option<String>,
    /// Addresses of the clusters `proxy_http_call` may target.
    pub clusters: Arc<BTreeMap<String, SocketAddr>>,
    /// Runtime the dispatched calls run on.
    pub runtime: tokio::runtime::Handle,
    /// Receives every plugin log line.
    pub sink: Option<LogSink>,
    /// Gateway-wide counters.
    pub counters: Arc<Counters>,
}

/// The async side's handle on one worker thread.
pub struct WorkerHandle {
    /// Message channel into the worker.
    pub tx: mpsc::Sender<Msg>,
    thread: JoinHandle<()>,
}

impl WorkerHandle {
    /// Asks the worker to stop and waits for its thread (on a blocking-friendly thread).
    pub async fn stop(self) {
        let _ = self.tx.send(Msg::Shutdown);
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
}

/// Starts a worker thread; resolves once its VM has started and been configured.
///
/// # Errors
/// The VM failed to start, or its `on_configure` returned false.
pub async fn spawn(setup: WorkerSetup) -> Result<WorkerHandle, HostError> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = oneshot::channel();
    let self_tx = tx.clone();
    let name = format!("wasm-worker-{}", setup.index);
    let thread = std::thread::Builder::new()
        .name(name)
        .spawn(move || run(setup, self_tx, rx, ready_tx))
        .map_err(|e| HostError::Io(format!("cannot spawn worker thread: {e}")))?;
    match ready_rx.await {
        Ok(Ok(())) => Ok(WorkerHandle { tx, thread }),
        Ok(Err(e)) => {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            Err(e)
        }
        Err(_) => Err(HostError::Other(
            "worker thread died while starting its VM".to_string(),
        )),
    }
}

/// Thread body: start the VM, report readiness, then serve messages until shutdown.
fn run(
    setup: WorkerSetup,
    tx: mpsc::Sender<Msg>,
    rx: mpsc::Receiver<Msg>,
    ready: oneshot::Sender<Result<(), HostError>>,
) {
    let vm = match start_vm(&setup) {
        Ok(vm) => vm,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let mut worker = Worker::new(setup, vm, tx);
    worker.flush();
    if ready.send(Ok(())).is_err() {
        return;
    }
    worker.serve(&rx);
}

/// Starts and configures this worker's VM, forwarding its start-up logs.
fn start_vm(setup: &WorkerSetup) -> Result<Vm, HostError> {
    let mut vm = Vm::start(&setup.plugin, &setup.env, setup.vm_config.clone())?;
    let logs = vm.take_logs();
    if let Some(sink) = &setup.sink {
        logs.iter().for_each(|record| sink(setup.index, record));
    }
    if vm.configured() {
        Ok(vm)
    } else {
        Err(super::configure_error(setup.index, &logs, vm.failed()))
    }
}

/// The root context's tick timer (`proxy_set_tick_period_milliseconds`, re-armed after each
/// tick as Envoy does, §2).
#[derive(Default)]
struct Timer {
    period: Option<Duration>,
    next: Option<Instant>,
}

impl Timer {
    /// When the next tick is due for the VM's current `period` (re-armed when it changes).
    fn deadline(&mut self, period: Option<Duration>) -> Option<Instant> {
        if period != self.period {
            self.period = period;
            self.next = period.map(|p| Instant::now() + p);
        }
        self.next
    }

    /// A tick ran: arm the next one.
    fn fired(&mut self) {
        self.next = self.period.map(|p| Instant::now() + p);
    }
}

/// Where one open stream is; the VM buffers bodies while the plugin pauses (§4).
enum Phase {
    /// Request callbacks running; Continued means forward upstream.
    Request,
    /// Forwarded; waiting for the upstream answer from the connection task.
    Upstream,
    /// Response callbacks running on this upstream answer; Continued means answer the client.
    Response { status: u16 },
}

/// One open stream.
struct Active {
    id: StreamId,
    phase: Phase,
    reply: Option<oneshot::Sender<Decision>>,
}

/// A worker thread's state: its VM and the streams of its connections.
struct Worker {
    index: usize,
    vm: Vm,
    tx: mpsc::Sender<Msg>,
    streams: HashMap<u64, Active>,
    keys: HashMap<u32, u64>,
    /// Final answers of streams that ended while their request was upstream, by request key;
    /// handed out when the upstream answer (or the disconnect) arrives.
    orphans: HashMap<u64, Decision>,
    route_name: Option<String>,
    cluster_name: Option<String>,
    clusters: Arc<BTreeMap<String, SocketAddr>>,
    runtime: tokio::runtime::Handle,
    sink: Option<LogSink>,
    counters: Arc<Counters>,
}

impl Worker {
    fn new(setup: WorkerSetup, vm: Vm, tx: mpsc::Sender<Msg>) -> Worker {
        Worker {
            index: setup.index,
            vm,
            tx,
            streams: HashMap::new(),
            keys: HashMap::new(),
            orphans: HashMap::new(),
            route_name: setup.route_name,
            cluster_name: setup.cluster_name,
            clusters: setup.clusters,
            runtime: setup.runtime,
            sink: setup.sink,
            counters: setup.counters,
        }
    }

    /// Message loop with the root context's timer; returns on `Shutdown` or when every sender
    /// is gone, after ending the open streams.
    fn serve(&mut self, rx: &mpsc::Receiver<Msg>) {
        let mut timer = Timer::default();
        loop {
            let received = match timer.deadline(self.vm.tick_period()) {
                None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                // A due tick goes first, so a busy worker cannot starve its timer.
                Some(at) if at <= Instant::now() => Err(mpsc::RecvTimeoutError::Timeout),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match received {
                Ok(Msg::Shutdown) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Ok(msg) => self.handle(msg),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    timer.fired();
                    self.vm.tick();
                    self.flush();
                }
            }
            self.drain_events();
        }
        self.end_all();
    }

    fn handle(&mut self, msg: Msg) {
        match msg {
            Msg::Request {
                key,
                headers,
                body,
                reply,
            } => self.on_request(key, headers, body, reply),
            Msg::Response {
                key,
                fetched,
                reply,
            } => self.on_response(key, fetched, reply),
            Msg::Disconnect { key } => self.on_disconnect(key),
            Msg::CallDone { token, outcome } => {
                let events = self.vm.deliver_call(token, outcome);
                Counters::bump(&self.counters.calls_delivered);
                self.flush();
                self.apply(events);
            }
            Msg::Shutdown => {}
        }
    }

    fn on_request(
        &mut self,
        key: u64,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        reply: oneshot::Sender<Decision>,
    ) {
        let props = StreamProps {
            route_name: self.route_name.clone(),
            cluster_name: self.cluster_name.clone(),
            extra: Vec::new(),
        };
        let id = self.vm.new_stream(props);
        let end_of_stream = body.is_empty();
        self.keys.insert(id.0, key);
        self.counters.streams_open.fetch_add(1, Ordering::Relaxed);
        let phase = Phase::Request;
        let reply = Some(reply);
        self.streams.insert(key, Active { id, phase, reply });
        self.vm.on_request_headers(id, headers, end_of_stream);
        if !end_of_stream {
            self.vm.on_request_body(id, &body, true);
        }
        self.flush();
        self.advance(key);
    }

    fn on_response(&mut self, key: u64, fetched: Fetched, reply: oneshot::Sender<Decision>) {
        if let Some(decision) = self.orphans.remove(&key) {
            let _ = reply.send(decision);
            return;
        }
        let Some(active) = self.streams.get_mut(&key) else {
            return;
        };
        let id = active.id;
        let end_of_stream = fetched.body.is_empty();
        let headers = fetched.headers_with_status();
        active.phase = Phase::Response {
            status: fetched.status,
        };
        active.reply = Some(reply);
        self.vm.on_response_headers(id, headers, end_of_stream);
        if !end_of_stream {
            self.vm.on_response_body(id, &fetched.body, true);
        }
        self.flush();
        self.advance(key);
    }

    fn on_disconnect(&mut self, key: u64) {
        self.orphans.remove(&key);
        if let Some(active) = self.streams.remove(&key) {
            self.keys.remove(&active.id.0);
            self.end_stream(active.id);
            self.flush();
        }
    }

    /// Applies the events of a VM call: each names a stream whose state may have moved.
    fn apply(&mut self, events: Vec<Event>) {
        for event in events {
            let id = match event {
                Event::Resumed(id) | Event::LocalReply(id, _) => id,
            };
            if let Some(key) = self.keys.get(&id.0).copied() {
                self.advance(key);
            }
        }
    }

    /// Applies events the VM queued (resumes from calls, local replies), bounded.
    fn drain_events(&mut self) {
        for _ in 0..MAX_EVENT_ROUNDS {
            let events = self.vm.take_events();
            if events.is_empty() {
                return;
            }
            self.apply(events);
        }
    }

    /// Moves a stream forward as far as its VM state allows (state-driven, so repeats are
    /// harmless): waits while pending or paused, forwards or answers once continued.
    fn advance(&mut self, key: u64) {
        let Some(active) = self.streams.get(&key) else {
            return;
        };
        let id = active.id;
        match (self.vm.state(id), &active.phase) {
            (StreamState::LocalReply(local), _) => self.finish(key, local_reply(local)),
            (StreamState::Ended, _) => self.forget(key),
            (StreamState::Continued, Phase::Request) => self.forward(key, id),
            (StreamState::Continued, Phase::Response { status }) => {
                let status = *status;
                self.respond_upstream(key, id, status);
            }
            (StreamState::Pending | StreamState::Paused | StreamState::Continued, _) => {}
        }
    }

    /// Hands the (possibly modified) request to the connection task for the upstream.
    fn forward(&mut self, key: u64, id: StreamId) {
        let headers = self.vm.request_headers(id);
        let body = self.vm.take_request_body(id);
        let Some(active) = self.streams.get_mut(&key) else {
            return;
        };
        active.phase = Phase::Upstream;
        let sent = active
            .reply
            .take()
            .is_some_and(|reply| reply.send(Decision::Forward { headers, body }).is_ok());
        if !sent {
            self.on_disconnect(key);
        }
    }

    /// Sends the upstream answer as the plugin left it, then ends the stream.
    fn respond_upstream(&mut self, key: u64, id: StreamId, upstream_status: u16) {
        let headers = self.vm.response_headers(id);
        let status = status_of(&headers).unwrap_or(upstream_status);
        let reply = Reply {
            status,
            headers: strip_pseudo(headers),
            body: self.vm.take_response_body(id),
        };
        self.finish(key, Decision::Respond(reply));
    }

    /// Sends the final decision, then ends the stream (on_log, on_done, on_delete).
    fn finish(&mut self, key: u64, decision: Decision) {
        let Some(mut active) = self.streams.remove(&key) else {
            return;
        };
        self.keys.remove(&active.id.0);
        match active.reply.take() {
            Some(reply) => {
                let _ = reply.send(decision);
            }
            // Answered locally while the request is upstream (e.g. from a call response):
            // Envoy drops the upstream answer and sends the local reply.
            None if matches!(active.phase, Phase::Upstream) => {
                self.orphans.insert(key, decision);
            }
            None => {}
        }
        self.end_stream(active.id);
        self.flush();
    }

    /// Ends a stream in the VM (no-op if the VM already dropped it) and counts it.
    fn end_stream(&mut self, id: StreamId) {
        self.vm.end_stream(id);
        self.counters.streams_open.fetch_sub(1, Ordering::Relaxed);
        Counters::bump(&self.counters.streams_ended);
    }

    /// Drops a stream the VM already ended; the connection task sees a closed channel.
    fn forget(&mut self, key: u64) {
        if let Some(active) = self.streams.remove(&key) {
            self.keys.remove(&active.id.0);
            self.counters.streams_open.fetch_sub(1, Ordering::Relaxed);
            Counters::bump(&self.counters.streams_ended);
        }
    }

    /// Ends every open stream (gateway shutdown).
    fn end_all(&mut self) {
        let keys: Vec<u64> = self.streams.keys().copied().collect();
        keys.into_iter().for_each(|key| self.on_disconnect(key));
    }

    /// After every VM call: start dispatched calls, pass log lines on.
    fn flush(&mut self) {
        for call in self.vm.take_calls() {
            let addr = self.clusters.get(&call.cluster).copied();
            let tx = self.tx.clone();
            Counters::bump(&self.counters.calls_dispatched);
            self.runtime.spawn(async move {
                let token = call.token;
                let outcome = client::perform_call(addr, call).await;
                // A stopped worker no longer wants the answer.
                let _ = tx.send(Msg::CallDone { token, outcome });
            });
        }
        let logs = self.vm.take_logs();
        if let Some(sink) = &self.sink {
            logs.iter().for_each(|record| sink(self.index, record));
        }
    }
}

/// A plugin local reply as a client answer.
fn local_reply(local: LocalReply) -> Decision {
    Decision::Respond(Reply {
        status: local.status,
        headers: strip_pseudo(local.headers),
        body: local.body,
    })
}

/// The `:status` pseudo header as a number.
fn status_of(headers: &[(String, String)]) -> Option<u16> {
    headers
        .iter()
        .find(|(k, _)| k == ":status")
        .and_then(|(_, v)| v.trim().parse().ok())
}

/// Drops `:`-prefixed entries.
fn strip_pseudo(headers: Vec<(String, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .filter(|(k, _)| !k.starts_with(':'))
        .collect()
}
