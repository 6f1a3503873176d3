//! A host made of plain data for the adapter's unit tests: streams with their headers, a clock,
//! shared data and counters (shareable between fake VMs), and a record of every effect: the
//! calls dispatched, the replies, the resumes, how many times each hostcall was made, and (with
//! [`capture_logs`]) every log line.
//!
//! Every failure it can stage is plain data set before the callback runs: a refused dispatch,
//! refused header edits, a failed header read, a refused shared-data write, refused counter
//! definitions.

use crate::proxy::host::{Call, Host, Status};
use log::{Level, LevelFilter, Log, Metadata, Record};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;

/// `BadArgument`, what Envoy answers for an unknown cluster or a gone stream.
pub const BAD_ARGUMENT: Status = Status(2);

/// `CasMismatch`, what `proxy_set_shared_data` answers when another VM wrote the key since the
/// compare-and-swap value was read.
pub const CAS_MISMATCH: Status = Status(8);

/// One dispatched call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dispatched {
    pub context: u32,
    pub token: u32,
    pub cluster: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The call's timeout, in ms (what `proxy_http_call` receives).
    pub timeout_ms: u64,
}

/// One local reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replied {
    pub context: u32,
    pub status: u16,
    pub details: String,
    pub body: Vec<u8>,
}

/// What every fake VM of one "Envoy" shares: shared data and counters by name.
#[derive(Debug, Default)]
pub struct Process {
    pub shared_data: RefCell<HashMap<String, Vec<u8>>>,
    pub counters: RefCell<BTreeMap<String, i64>>,
}

#[derive(Debug, Default)]
struct State {
    effective: u32,
    headers: HashMap<u32, Vec<(String, Vec<u8>)>>,
    properties: HashMap<u32, Vec<(String, Vec<u8>)>>,
    configuration: Vec<u8>,
    answer: Option<(Option<u16>, Vec<u8>)>,
    counter_names: Vec<String>,
    now: u64,
    /// Milliseconds past `now` (the retry budget's clock).
    millis: u64,
    clock_reads: usize,
    tick_ms: u32,
    next_token: u32,
    refuse_dispatch: Option<Status>,
    refuse_edits: bool,
    /// `request_headers` fails (the SDK's `get_map` error, read as no headers at all).
    fail_header_reads: bool,
    /// `set_shared_data` answers this status and writes nothing.
    refuse_shared_writes: Option<Status>,
    /// Counter names `define_counter` refuses (BadArgument).
    refused_counters: Vec<String>,
    /// Envoy's `wasm` log level, which `follow_log_level` applies (`None`: the level cannot be
    /// read, nothing changes).
    log_level: Option<LevelFilter>,
    /// How many times each [`Host`] method was called (each is one hostcall in Envoy).
    hostcalls: BTreeMap<&'static str, usize>,
    dispatched: Vec<Dispatched>,
    replies: Vec<Replied>,
    resumed: Vec<u32>,
}

/// The fake host of one VM.
#[derive(Debug)]
pub struct FakeHost {
    process: Rc<Process>,
    state: RefCell<State>,
}

impl FakeHost {
    /// A VM in its own process.
    pub fn new() -> Rc<FakeHost> {
        FakeHost::in_process(Rc::new(Process::default()))
    }

    /// Another VM of `process` (a second worker).
    pub fn in_process(process: Rc<Process>) -> Rc<FakeHost> {
        Rc::new(FakeHost {
            process,
            state: RefCell::new(State {
                now: 1_700_000_000,
                next_token: 1,
                ..State::default()
            }),
        })
    }

    pub fn process(&self) -> Rc<Process> {
        Rc::clone(&self.process)
    }

    pub fn set_configuration(&self, json: &str) {
        self.state.borrow_mut().configuration = json.as_bytes().to_vec();
    }

    /// Registers stream `context` with its request headers and makes it the effective one (what
    /// Envoy does before calling the stream's callbacks).
    pub fn stream(&self, context: u32, headers: &[(&str, &str)]) {
        let raw: Vec<(&str, &[u8])> = headers.iter().map(|(n, v)| (*n, v.as_bytes())).collect();
        self.stream_bytes(context, &raw);
    }

    /// [`FakeHost::stream`] with raw header values (a client may send any byte).
    pub fn stream_bytes(&self, context: u32, headers: &[(&str, &[u8])]) {
        let mut state = self.state.borrow_mut();
        let headers = headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_vec()))
            .collect();
        state.headers.insert(context, headers);
        state.effective = context;
    }

    pub fn property(&self, context: u32, path: &str, value: &str) {
        let mut state = self.state.borrow_mut();
        let list = state.properties.entry(context).or_default();
        list.push((path.to_string(), value.as_bytes().to_vec()));
    }

    /// Stream `context` is gone from Envoy (its client left): hostcalls on it are refused.
    pub fn end(&self, context: u32) {
        self.state.borrow_mut().headers.remove(&context);
    }

    /// Makes `context` the effective one (Envoy does so before each callback).
    pub fn enter(&self, context: u32) {
        self.state.borrow_mut().effective = context;
    }

    /// The answer of the call being delivered (`None` status: a reset).
    pub fn answer(&self, status: Option<u16>, body: &str) {
        self.state.borrow_mut().answer = Some((status, body.as_bytes().to_vec()));
    }

    /// How many times the plugin read the clock.
    pub fn clock_reads(&self) -> usize {
        self.state.borrow().clock_reads
    }

    /// Moves the clock `ms` milliseconds on.
    pub fn advance_ms(&self, ms: u64) {
        let mut state = self.state.borrow_mut();
        let total = state.millis + ms;
        state.now += total / 1000;
        state.millis = total % 1000;
    }

    pub fn advance(&self, seconds: u64) {
        self.state.borrow_mut().now += seconds;
    }

    pub fn refuse_dispatch(&self, status: Status) {
        self.state.borrow_mut().refuse_dispatch = Some(status);
    }

    pub fn refuse_edits(&self) {
        self.state.borrow_mut().refuse_edits = true;
    }

    /// Reading the request headers fails from now on.
    pub fn fail_header_reads(&self) {
        self.state.borrow_mut().fail_header_reads = true;
    }

    /// `set_shared_data` answers `status` (e.g. [`CAS_MISMATCH`]) from now on, writing nothing.
    pub fn refuse_shared_writes(&self, status: Status) {
        self.state.borrow_mut().refuse_shared_writes = Some(status);
    }

    /// `define_counter(name)` is refused from now on.
    pub fn refuse_counter(&self, name: &str) {
        self.state
            .borrow_mut()
            .refused_counters
            .push(name.to_string());
    }

    /// Envoy's `wasm` log level, applied by the plugin's next `follow_log_level`.
    pub fn set_log_level(&self, level: LevelFilter) {
        self.state.borrow_mut().log_level = Some(level);
    }

    /// How many times each [`Host`] method was called since the last reset, by method name.
    pub fn hostcalls(&self) -> BTreeMap<&'static str, usize> {
        self.state.borrow().hostcalls.clone()
    }

    /// Forgets the hostcall counts.
    pub fn reset_hostcalls(&self) {
        self.state.borrow_mut().hostcalls.clear();
    }

    /// Counts one call of [`Host`] method `name`.
    fn hostcall(&self, name: &'static str) {
        *self.state.borrow_mut().hostcalls.entry(name).or_default() += 1;
    }

    pub fn dispatched(&self) -> Vec<Dispatched> {
        self.state.borrow().dispatched.clone()
    }

    pub fn replies(&self) -> Vec<Replied> {
        self.state.borrow().replies.clone()
    }

    pub fn resumed(&self) -> Vec<u32> {
        self.state.borrow().resumed.clone()
    }

    pub fn tick_ms(&self) -> u32 {
        self.state.borrow().tick_ms
    }

    /// Every value of a request header of stream `context`, after the plugin's edits.
    pub fn header_values(&self, context: u32, name: &str) -> Vec<String> {
        let state = self.state.borrow();
        state
            .headers
            .get(&context)
            .map(|headers| {
                headers
                    .iter()
                    .filter(|(n, _)| n == name)
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A counter by its full name (`easy_jwt.allowed`), 0 when never incremented.
    pub fn counter(&self, name: &str) -> i64 {
        self.process
            .counters
            .borrow()
            .get(name)
            .copied()
            .unwrap_or(0)
    }

    fn edit(&self, name: &str, value: Option<&str>) -> Result<(), Status> {
        let mut state = self.state.borrow_mut();
        if state.refuse_edits {
            return Err(BAD_ARGUMENT);
        }
        let effective = state.effective;
        let headers = state.headers.get_mut(&effective).ok_or(BAD_ARGUMENT)?;
        headers.retain(|(n, _)| n != name);
        if let Some(value) = value {
            headers.push((name.to_string(), value.as_bytes().to_vec()));
        }
        Ok(())
    }
}

impl Host for FakeHost {
    fn request_headers(&self) -> Vec<(String, Vec<u8>)> {
        self.hostcall("request_headers");
        let state = self.state.borrow();
        if state.fail_header_reads {
            // `Envoy::request_headers` reads a failed `get_map` as no headers.
            return Vec::new();
        }
        let headers = state.headers.get(&state.effective);
        let pairs = headers.map(|list| list.iter().map(|(n, v)| (n.clone(), v.clone())));
        pairs.map(Iterator::collect).unwrap_or_default()
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        self.hostcall("property");
        let state = self.state.borrow();
        let list = state.properties.get(&state.effective)?;
        let dotted = path.join(".");
        let (_, value) = list.iter().find(|(p, _)| *p == dotted)?;
        Some(value.clone())
    }

    fn plugin_configuration(&self) -> Vec<u8> {
        self.hostcall("plugin_configuration");
        self.state.borrow().configuration.clone()
    }

    fn call_status(&self) -> Option<u16> {
        self.hostcall("call_status");
        self.state.borrow().answer.as_ref()?.0
    }

    fn call_body(&self, max: usize) -> Vec<u8> {
        self.hostcall("call_body");
        let state = self.state.borrow();
        let body = state.answer.as_ref().map(|(_, b)| b.as_slice());
        body.unwrap_or_default().iter().take(max).copied().collect()
    }

    fn set_request_header(&self, name: &str, value: &str) -> Result<(), Status> {
        self.hostcall("set_request_header");
        self.edit(name, Some(value))
    }

    fn remove_request_header(&self, name: &str) -> Result<(), Status> {
        self.hostcall("remove_request_header");
        self.edit(name, None)
    }

    fn send_local_reply(
        &self,
        status: u16,
        details: &str,
        body: &[u8],
        _headers: &[(&str, &str)],
    ) -> Result<(), Status> {
        self.hostcall("send_local_reply");
        let mut state = self.state.borrow_mut();
        let context = state.effective;
        state.replies.push(Replied {
            context,
            status,
            details: details.to_string(),
            body: body.to_vec(),
        });
        Ok(())
    }

    fn resume_request(&self) -> Result<(), Status> {
        self.hostcall("resume_request");
        let mut state = self.state.borrow_mut();
        let context = state.effective;
        state.resumed.push(context);
        Ok(())
    }

    fn set_effective_context(&self, context_id: u32) -> Result<(), Status> {
        self.hostcall("set_effective_context");
        let mut state = self.state.borrow_mut();
        if !state.headers.contains_key(&context_id) {
            return Err(BAD_ARGUMENT);
        }
        state.effective = context_id;
        Ok(())
    }

    fn dispatch(&self, call: &Call) -> Result<u32, Status> {
        self.hostcall("dispatch");
        let mut state = self.state.borrow_mut();
        if let Some(status) = state.refuse_dispatch {
            return Err(status);
        }
        let token = state.next_token;
        state.next_token += 1;
        let context = state.effective;
        state.dispatched.push(Dispatched {
            context,
            token,
            cluster: call.cluster.to_string(),
            headers: call
                .headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            body: call.body.to_vec(),
            timeout_ms: u64::try_from(call.timeout.as_millis()).unwrap_or(u64::MAX),
        });
        Ok(token)
    }

    fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        self.hostcall("shared_data");
        self.process.shared_data.borrow().get(key).cloned()
    }

    fn set_shared_data(&self, key: &str, value: &[u8]) -> Result<(), Status> {
        self.hostcall("set_shared_data");
        if let Some(status) = self.state.borrow().refuse_shared_writes {
            return Err(status);
        }
        let mut data = self.process.shared_data.borrow_mut();
        data.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn define_counter(&self, name: &str) -> Result<u32, Status> {
        self.hostcall("define_counter");
        let mut state = self.state.borrow_mut();
        if state.refused_counters.iter().any(|refused| refused == name) {
            return Err(BAD_ARGUMENT);
        }
        state.counter_names.push(name.to_string());
        Ok(u32::try_from(state.counter_names.len()).unwrap_or(u32::MAX))
    }

    fn increment(&self, id: u32, offset: u64) -> Result<(), Status> {
        self.hostcall("increment");
        let state = self.state.borrow();
        let index = usize::try_from(id).map_err(|_| BAD_ARGUMENT)?;
        let name = state
            .counter_names
            .get(index.wrapping_sub(1))
            .ok_or(BAD_ARGUMENT)?;
        *self
            .process
            .counters
            .borrow_mut()
            .entry(name.clone())
            .or_default() += i64::try_from(offset).map_err(|_| BAD_ARGUMENT)?;
        Ok(())
    }

    fn now_secs(&self) -> u64 {
        self.hostcall("now_secs");
        let mut state = self.state.borrow_mut();
        state.clock_reads += 1;
        state.now
    }

    fn now_ms(&self) -> u64 {
        self.hostcall("now_ms");
        let state = self.state.borrow();
        state.now * 1000 + state.millis
    }

    /// What `Envoy::follow_log_level` does with `log::set_max_level`, for this test thread only
    /// (tests run in parallel): records above the level are not sent (see [`capture_logs`]).
    fn follow_log_level(&self) {
        self.hostcall("follow_log_level");
        if let Some(level) = self.state.borrow().log_level {
            HOST_LEVEL.with(|host_level| host_level.set(level));
        }
    }

    fn set_tick_period_ms(&self, period: u32) -> Result<(), Status> {
        self.hostcall("set_tick_period_ms");
        self.state.borrow_mut().tick_ms = period;
        Ok(())
    }
}

/// One log line as the plugin sent it to the host (`proxy_log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub level: Level,
    pub text: String,
}

thread_local! {
    /// The lines of this test thread, once [`capture_logs`] started capturing.
    static LINES: RefCell<Option<Vec<Line>>> = const { RefCell::new(None) };
    /// The level the fake host's `follow_log_level` applied on this thread.
    static HOST_LEVEL: Cell<LevelFilter> = const { Cell::new(LevelFilter::Trace) };
}

/// The test process's logger: records each line into the calling thread's [`LINES`], if that
/// thread captures, and only up to the level the fake host applied on that thread.
struct Capture;

static CAPTURE: Capture = Capture;

impl Log for Capture {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= HOST_LEVEL.with(Cell::get)
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        LINES.with(|lines| {
            if let Some(lines) = lines.borrow_mut().as_mut() {
                lines.push(Line {
                    level: record.level(),
                    text: record.args().to_string(),
                });
            }
        });
    }

    fn flush(&self) {}
}

/// Starts capturing this thread's log lines (from nothing, at every level until a fake host's
/// `follow_log_level` says otherwise). The logger is installed once per test process, with the
/// global maximum level at `Trace`; threads that never call this record nothing.
pub fn capture_logs() {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        // Only this module installs a logger in the test process.
        if log::set_logger(&CAPTURE).is_ok() {
            log::set_max_level(LevelFilter::Trace);
        }
    });
    HOST_LEVEL.with(|level| level.set(LevelFilter::Trace));
    LINES.with(|lines| *lines.borrow_mut() = Some(Vec::new()));
}

/// The lines this thread logged since [`capture_logs`].
pub fn logged() -> Vec<Line> {
    LINES.with(|lines| lines.borrow().clone().unwrap_or_default())
}
