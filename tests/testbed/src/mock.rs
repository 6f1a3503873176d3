//! A mock token server on raw Tokio TCP that answers `{"token":"…"}` by the token's prefix, so it
//! can misbehave (garbage, resets, hangs) and one instance serves many scenarios at once.
//!
//! | token                              | answer                                             |
//! |------------------------------------|----------------------------------------------------|
//! | `uid-<N>`, `uid-<N>-<anything>`    | `200 {"uid":N}` (`uid--5` gives -5)                |
//! | `uidstr-<S>…`                      | `200 {"uid":"S"}` (`S` up to the next `-`)         |
//! | `deny…`                            | `401 {"message":"mock denied"}`                    |
//! | `forbid…`                          | `403 {"message":"mock forbidden"}`                 |
//! | `e500…`                            | `500 {"message":"mock exploded"}`                  |
//! | `e502…`                            | `502`, empty body                                  |
//! | `e503…`, `e504…`                   | `503` / `504 {"message":"mock unavailable"}`       |
//! | `flaky-<N>-<fault>-…`              | the first N calls for this token behave like the   |
//! |                                    | token `<fault>` (`reset`, `e502`, `e503`, `e504`,  |
//! |                                    | `slow1500`: waits 1.5 s), later ones `200 {"uid":7}` |
//! | `garbage…`                         | `200 this is not json`                             |
//! | `nouid…`                           | `200 {"name":"x"}`                                 |
//! | `big…`                             | `200 {"uid":1,"pad":"xx…"}`, exactly 100 KiB       |
//! | `reset…`                           | TCP RST (SO_LINGER 0), no answer                   |
//! | `slow-<ms>-…`                      | waits `ms` milliseconds, then `200 {"uid":7}`      |
//! | `hang…`                            | never answers; the socket stays open until drop    |
//! | anything else (or no token)        | `401 {"message":"unknown mock token"}`             |
//!
//! Requests are HTTP/1.1 with a `content-length` or chunked body; connections are kept alive
//! (unless the request says `connection: close`). A call is counted and recorded once its request
//! has been read, before the answer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// Size of the `big…` answer body.
pub const BIG_BODY_BYTES: usize = 100 * 1024;

/// One request the mock received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    /// Request method.
    pub method: String,
    /// Request target (path and query).
    pub path: String,
    /// Header lines as received (names in their received case).
    pub headers: Vec<(String, String)>,
    /// Body (de-chunked).
    pub body: Vec<u8>,
}

impl Recorded {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `token` string of the JSON body, if there is one.
    pub fn token(&self) -> Option<String> {
        token_of(&self.body)
    }
}

#[derive(Default)]
struct State {
    calls: usize,
    per_token: HashMap<String, usize>,
    requests: Vec<Recorded>,
}

/// The mock server (own thread and Tokio runtime). Dropping it stops it and closes every socket,
/// hung ones included.
pub struct MockTokenServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MockTokenServer {
    /// Binds `127.0.0.1:0` and starts serving; panics if it cannot.
    pub fn start() -> MockTokenServer {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("mock token server: cannot bind 127.0.0.1:0");
        std_listener
            .set_nonblocking(true)
            .expect("mock token server: set_nonblocking");
        let addr = std_listener
            .local_addr()
            .expect("mock token server: local_addr");
        let state = Arc::new(Mutex::new(State::default()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread_state = Arc::clone(&state);
        let thread = std::thread::Builder::new()
            .name(format!("mock-token-server-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("mock token server: tokio runtime");
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener)
                        .expect("mock token server: tokio listener");
                    let accept = async {
                        loop {
                            match listener.accept().await {
                                Ok((stream, _)) => {
                                    tokio::spawn(serve_conn(stream, Arc::clone(&thread_state)));
                                }
                                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                            }
                        }
                    };
                    tokio::select! {
                        () = accept => {},
                        _ = rx => {},
                    }
                });
                // Dropping the runtime drops every connection task: hung sockets close here.
                drop(rt);
            })
            .expect("mock token server: spawn thread");
        MockTokenServer {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// HTTP requests received since start (or [`MockTokenServer::reset_counts`]).
    pub fn calls(&self) -> usize {
        self.state().calls
    }

    /// Requests received whose body carried exactly `token`.
    pub fn calls_for(&self, token: &str) -> usize {
        self.state().per_token.get(token).copied().unwrap_or(0)
    }

    /// Every request received, in arrival order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state().requests.clone()
    }

    /// Forgets the counts and recorded requests.
    pub fn reset_counts(&self) {
        let mut s = self.state();
        s.calls = 0;
        s.per_token.clear();
        s.requests.clear();
    }
}

impl Drop for MockTokenServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn token_of(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v.get("token")?.as_str().map(str::to_owned)
}

/// What to do for one request.
enum Answer {
    Reply(u16, &'static str, Vec<u8>),
    Reset,
    Hang,
}

fn json(status: u16, body: &str) -> Answer {
    Answer::Reply(status, "application/json", body.as_bytes().to_vec())
}

/// The segment after `prefix` up to the next `-` (or the end).
fn segment<'a>(token: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = token.strip_prefix(prefix)?;
    Some(rest.split('-').next().unwrap_or(rest))
}

/// `N` of `uid-<N>` / `uid-<N>-…`; `uid--5` is -5.
fn uid_number(token: &str) -> Option<i64> {
    let rest = token.strip_prefix("uid-")?;
    match rest.strip_prefix('-') {
        Some(neg) => segment(neg, "")?.parse::<i64>().ok().map(|n| -n),
        None => segment(rest, "")?.parse::<i64>().ok(),
    }
}

/// The behaviour table (see the module docs). `slow-` is handled by the caller (it needs to wait).
fn answer_for(token: &str) -> Answer {
    if let Some(s) = segment(token, "uidstr-") {
        return json(200, &serde_json::json!({ "uid": s }).to_string());
    }
    if let Some(n) = uid_number(token) {
        return json(200, &format!(r#"{{"uid":{n}}}"#));
    }
    if token.starts_with("deny") {
        return json(401, r#"{"message":"mock denied"}"#);
    }
    if token.starts_with("forbid") {
        return json(403, r#"{"message":"mock forbidden"}"#);
    }
    if token.starts_with("e500") {
        return json(500, r#"{"message":"mock exploded"}"#);
    }
    if token.starts_with("e502") {
        return Answer::Reply(502, "application/json", Vec::new());
    }
    if token.starts_with("e503") {
        return json(503, r#"{"message":"mock unavailable"}"#);
    }
    if token.starts_with("e504") {
        return json(504, r#"{"message":"mock unavailable"}"#);
    }
    if token.starts_with("garbage") {
        return Answer::Reply(200, "text/plain", b"this is not json".to_vec());
    }
    if token.starts_with("nouid") {
        return json(200, r#"{"name":"x"}"#);
    }
    if token.starts_with("big") {
        let frame = r#"{"uid":1,"pad":""}"#.len();
        let pad = "x".repeat(BIG_BODY_BYTES - frame);
        return json(200, &format!(r#"{{"uid":1,"pad":"{pad}"}}"#));
    }
    if token.starts_with("reset") {
        return Answer::Reset;
    }
    if token.starts_with("slow-") {
        return json(200, r#"{"uid":7}"#);
    }
    if token.starts_with("hang") {
        return Answer::Hang;
    }
    json(401, r#"{"message":"unknown mock token"}"#)
}

/// What the `nth` call (from 1) for `token` behaves like: a `flaky-<N>-<fault>-…` token is its
/// fault for the first N calls and `uid-7` after them; any other token is itself.
fn effective_token(token: &str, nth: usize) -> String {
    let Some(rest) = token.strip_prefix("flaky-") else {
        return token.to_string();
    };
    let mut parts = rest.splitn(3, '-');
    let failing = parts
        .next()
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    let fault = parts.next().unwrap_or("");
    if nth > failing {
        return "uid-7".to_string();
    }
    match fault {
        "slow1500" => "slow-1500-".to_string(),
        other => other.to_string(),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Other",
    }
}

async fn read_line(r: &mut BufReader<TcpStream>) -> Option<String> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line).await.ok()?;
    if n == 0 || line.len() > 64 * 1024 {
        return None;
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

/// Reads one request; `None` at end of connection or on a malformed request.
async fn read_request(r: &mut BufReader<TcpStream>) -> Option<Recorded> {
    let mut line = read_line(r).await?;
    while line.is_empty() {
        line = read_line(r).await?;
    }
    let mut parts = line.split(' ');
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        let h = read_line(r).await?;
        if h.is_empty() {
            break;
        }
        let (n, v) = h.split_once(':')?;
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
    let mut rec = Recorded {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    let chunked = rec
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        loop {
            let size_line = read_line(r).await?;
            let size = usize::from_str_radix(size_line.split(';').next()?.trim(), 16).ok()?;
            if size == 0 {
                while !read_line(r).await?.is_empty() {}
                break;
            }
            let start = rec.body.len();
            rec.body.resize(start + size, 0);
            r.read_exact(&mut rec.body[start..]).await.ok()?;
            read_line(r).await?;
        }
    } else if let Some(len) = rec.header("content-length") {
        let len: usize = len.parse().ok()?;
        if len > 16 * 1024 * 1024 {
            return None;
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).await.ok()?;
        rec.body = body;
    }
    Some(rec)
}

async fn serve_conn(stream: TcpStream, state: Arc<Mutex<State>>) {
    let _ = stream.set_nodelay(true);
    let mut r = BufReader::new(stream);
    while let Some(rec) = read_request(&mut r).await {
        let token = rec.token().unwrap_or_default();
        let close = rec
            .header("connection")
            .is_some_and(|v| v.to_ascii_lowercase().contains("close"));
        let nth = {
            let mut s = state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            s.calls += 1;
            let nth = s.per_token.entry(token.clone()).or_insert(0);
            *nth += 1;
            let nth = *nth;
            s.requests.push(rec);
            nth
        };
        let token = effective_token(&token, nth);
        if let Some(ms) = segment(&token, "slow-").and_then(|s| s.parse::<u64>().ok()) {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        match answer_for(&token) {
            Answer::Reset => {
                let _ = r.get_ref().set_zero_linger();
                return;
            }
            Answer::Hang => {
                // Keep the socket (and this task) until the server is dropped.
                std::future::pending::<()>().await;
            }
            Answer::Reply(status, content_type, body) => {
                let mut out = format!(
                    "HTTP/1.1 {status} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{}\r\n",
                    reason(status),
                    body.len(),
                    if close { "connection: close\r\n" } else { "" },
                )
                .into_bytes();
                out.extend_from_slice(&body);
                if r.get_mut().write_all(&out).await.is_err() {
                    return;
                }
                if close {
                    let _ = r.get_mut().shutdown().await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_body_is_exactly_100_kib_of_json() {
        let Answer::Reply(200, _, body) = answer_for("big-1") else {
            panic!("big should answer 200");
        };
        assert_eq!(body.len(), BIG_BODY_BYTES);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["uid"], 1);
    }

    #[test]
    fn uid_prefixes() {
        let Answer::Reply(200, _, body) = answer_for("uid-42-abc") else {
            panic!("uid-42-abc")
        };
        assert_eq!(body, br#"{"uid":42}"#);
        let Answer::Reply(200, _, body) = answer_for("uidstr-9-x") else {
            panic!("uidstr-9-x")
        };
        assert_eq!(body, br#"{"uid":"9"}"#);
        let Answer::Reply(200, _, body) = answer_for("uid--5-x") else {
            panic!("uid--5-x")
        };
        assert_eq!(body, br#"{"uid":-5}"#);
        assert!(matches!(answer_for("uid-x"), Answer::Reply(401, _, _)));
        assert_eq!(effective_token("flaky-2-e503-a", 1), "e503");
        assert_eq!(effective_token("flaky-2-e503-a", 2), "e503");
        assert_eq!(effective_token("flaky-2-e503-a", 3), "uid-7");
        assert_eq!(effective_token("flaky-1-slow1500-a", 1), "slow-1500-");
        assert_eq!(effective_token("deny-a", 5), "deny-a");
        assert!(matches!(answer_for(""), Answer::Reply(401, _, _)));
    }
}
