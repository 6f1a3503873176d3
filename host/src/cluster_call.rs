//! Performs a VM's `proxy_http_call` against a real HTTP/1.1 server, with Envoy's outcome mapping
//! (docs/host-semantics.md §3): how the test harness answers calls to its clusters.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{HeaderName, HeaderValue};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::types::{CallOutcome, HttpCall};

/// Headers that describe the hop, not the message; hyper writes its own framing.
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "content-length",
    "keep-alive",
    "proxy-connection",
    "te",
    "transfer-encoding",
    "upgrade",
];

/// A complete upstream answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// HTTP status code.
    pub status: u16,
    /// Lowercase header names, every entry (no `:status`).
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
    /// Trailers, if the upstream sent any.
    pub trailers: Vec<(String, String)>,
}

impl Fetched {
    /// Headers as the plugin sees them: `:status` first, then every entry.
    pub fn headers_with_status(&self) -> Vec<(String, String)> {
        let mut out = Vec::with_capacity(self.headers.len() + 1);
        out.push((":status".to_string(), self.status.to_string()));
        out.extend(self.headers.iter().cloned());
        out
    }
}

/// Why a fetch produced no complete answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// Connect failed, or the connection broke before response headers.
    Connect(String),
    /// The connection broke after response headers, while reading the body.
    Reset(String),
    /// The whole exchange took longer than the timeout.
    Timeout,
}

/// Sends one request to `addr` described by Envoy-style `headers` (`:method`, `:path` and
/// `:authority` become method, path and `Host`; other pseudo headers and hop-by-hop headers are
/// dropped) and reads the whole answer. `timeout` bounds connect, headers and body together.
pub async fn fetch(
    addr: SocketAddr,
    headers: &[(String, String)],
    body: Vec<u8>,
    timeout: Option<Duration>,
) -> Result<Fetched, FetchError> {
    let request = build_request(addr, headers, body);
    match timeout {
        None => exchange(addr, request).await,
        Some(limit) => tokio::time::timeout(limit, exchange(addr, request))
            .await
            .unwrap_or(Err(FetchError::Timeout)),
    }
}

/// Performs a dispatched `proxy_http_call` against `addr` (`None`: no such cluster address) and
/// maps the result to what Envoy hands the plugin (§3).
pub async fn perform_call(addr: Option<SocketAddr>, call: HttpCall) -> CallOutcome {
    let Some(addr) = addr else {
        return CallOutcome::ConnectFailure;
    };
    let timeout = (call.timeout_ms > 0).then(|| Duration::from_millis(u64::from(call.timeout_ms)));
    match fetch(addr, &call.headers, call.body, timeout).await {
        Ok(fetched) => CallOutcome::Response {
            headers: fetched.headers_with_status(),
            body: fetched.body,
            trailers: fetched.trailers,
        },
        Err(FetchError::Timeout) => CallOutcome::Timeout,
        Err(FetchError::Connect(_)) => CallOutcome::ConnectFailure,
        Err(FetchError::Reset(_)) => CallOutcome::Reset,
    }
}

/// Connects, sends `request` and collects the answer.
async fn exchange(addr: SocketAddr, request: Request<Full<Bytes>>) -> Result<Fetched, FetchError> {
    let connect_err = |e: &dyn std::fmt::Display| FetchError::Connect(e.to_string());
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| connect_err(&e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| connect_err(&e))?;
    let driver = tokio::spawn(async move {
        // Errors surface through `send_request` or the body stream.
        let _ = conn.await;
    });
    let result = read_response(&mut sender, request).await;
    driver.abort();
    result
}

/// Sends and reads: errors before headers are connect failures, after headers resets.
async fn read_response(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<Fetched, FetchError> {
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| FetchError::Connect(e.to_string()))?;
    let status = response.status().as_u16();
    let headers = header_pairs(response.headers());
    let collected = response
        .into_body()
        .collect()
        .await
        .map_err(|e| FetchError::Reset(e.to_string()))?;
    let trailers = collected.trailers().map(header_pairs).unwrap_or_default();
    Ok(Fetched {
        status,
        headers,
        body: collected.to_bytes().to_vec(),
        trailers,
    })
}

/// Every entry of `map` as lowercase (name, value) pairs; non-UTF-8 bytes are replaced.
fn header_pairs(map: &hyper::HeaderMap) -> Vec<(String, String)> {
    map.iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_string(), value)
        })
        .collect()
}

/// Builds the wire request from Envoy-style headers; invalid names or values are skipped.
fn build_request(
    addr: SocketAddr,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Request<Full<Bytes>> {
    let pseudo = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    let method = pseudo(":method")
        .and_then(|m| Method::from_bytes(m.as_bytes()).ok())
        .unwrap_or(Method::GET);
    let path = pseudo(":path").filter(|p| !p.is_empty()).unwrap_or("/");
    let host = pseudo(":authority").map_or_else(|| addr.to_string(), str::to_string);
    let mut request = Request::new(Full::new(Bytes::from(body)));
    *request.method_mut() = method;
    if let Ok(uri) = path.parse() {
        *request.uri_mut() = uri;
    }
    let map = request.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&host) {
        map.insert(hyper::header::HOST, value);
    }
    for (name, value) in headers.iter().filter(|(k, _)| forwardable(k)) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            map.append(n, v);
        }
    }
    request
}

/// True for headers that travel to the next hop: not pseudo, not `host`, not hop-by-hop.
fn forwardable(name: &str) -> bool {
    !name.starts_with(':')
        && !name.eq_ignore_ascii_case("host")
        && !HOP_BY_HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn pseudo_headers_become_request_line_and_host() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let headers = pairs(&[
            (":method", "POST"),
            (":path", "/api/x?y=1"),
            (":authority", "token-server"),
            ("x-a", "1"),
            ("x-a", "2"),
            ("content-length", "99"),
        ]);
        let req = build_request(addr, &headers, b"hi".to_vec());
        assert_eq!(req.method(), Method::POST);
        assert_eq!(req.uri().to_string(), "/api/x?y=1");
        assert_eq!(req.headers()["host"], "token-server");
        assert_eq!(req.headers().get_all("x-a").iter().count(), 2);
        assert!(req.headers().get("content-length").is_none());
    }

    #[tokio::test]
    async fn closed_port_is_a_connect_failure() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let got = fetch(addr, &[], Vec::new(), Some(Duration::from_secs(5))).await;
        assert!(matches!(got, Err(FetchError::Connect(_))), "{got:?}");
    }
}
