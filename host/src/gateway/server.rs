//! The data-plane listener: accepts HTTP/1.1 connections, assigns them to workers round-robin and
//! turns each request into worker messages (Envoy-style headers in, decisions out).

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderName, HeaderValue};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use super::client::{self, Fetched};
use super::worker::{Decision, Msg, Reply};
use super::Upstream;
use crate::echo;

/// Largest request body the gateway buffers (Envoy's default buffer limits are similar).
const MAX_REQUEST_BODY: usize = 32 * 1024 * 1024;

/// How long shutdown waits for in-flight connections to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by every connection.
pub struct Shared {
    /// One sender per worker thread.
    pub workers: Vec<mpsc::Sender<Msg>>,
    /// Where continued requests go.
    pub upstream: Upstream,
    next_key: AtomicU64,
    next_worker: AtomicUsize,
}

impl Shared {
    /// Shared state for `workers` and `upstream`.
    pub fn new(workers: Vec<mpsc::Sender<Msg>>, upstream: Upstream) -> Shared {
        Shared {
            workers,
            upstream,
            next_key: AtomicU64::new(1),
            next_worker: AtomicUsize::new(0),
        }
    }

    /// The next worker in round-robin order.
    fn pick_worker(&self) -> Option<mpsc::Sender<Msg>> {
        let n = self.next_worker.fetch_add(1, Ordering::Relaxed);
        let count = self.workers.len().max(1);
        self.workers.get(n % count).cloned()
    }
}

/// Accepts connections until `shutdown` flips, then drains open connections gracefully.
pub async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let stop = shutdown.clone();
                    connections.spawn(serve_connection(stream, shared.clone(), stop));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        connections.abort_all();
    }
}

/// Serves one connection on its round-robin worker; finishes the exchange in flight on shutdown.
async fn serve_connection(stream: TcpStream, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let Some(worker) = shared.pick_worker() else {
        return;
    };
    let service = service_fn(move |req| handle(req, worker.clone(), shared.clone()));
    let conn =
        hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
}

/// Tells the worker the client is gone if the request future is dropped before it completes
/// (hyper drops it when the client disconnects).
struct DisconnectGuard {
    key: u64,
    worker: mpsc::Sender<Msg>,
    armed: bool,
}

impl Drop for DisconnectGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.worker.send(Msg::Disconnect { key: self.key });
        }
    }
}

/// One client request, start to finish.
async fn handle(
    req: Request<Incoming>,
    worker: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers = envoy_headers(&req);
    let body = match Limited::new(req.into_body(), MAX_REQUEST_BODY)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => return Ok(plain(StatusCode::PAYLOAD_TOO_LARGE, "request body")),
    };
    let key = shared.next_key.fetch_add(1, Ordering::Relaxed);
    let mut guard = DisconnectGuard {
        key,
        worker: worker.clone(),
        armed: true,
    };
    let (tx, rx) = oneshot::channel();
    let request = Msg::Request {
        key,
        headers,
        body,
        reply: tx,
    };
    let decision = ask(&worker, request, rx).await;
    let response = match decision {
        Some(Decision::Respond(reply)) => to_response(reply),
        Some(Decision::Forward { headers, body }) => {
            let fetched = send_upstream(&shared.upstream, headers, body).await;
            let (tx, rx) = oneshot::channel();
            let msg = Msg::Response {
                key,
                fetched,
                reply: tx,
            };
            match ask(&worker, msg, rx).await {
                Some(Decision::Respond(reply)) => to_response(reply),
                _ => plain(StatusCode::INTERNAL_SERVER_ERROR, "gateway worker"),
            }
        }
        None => plain(StatusCode::SERVICE_UNAVAILABLE, "gateway worker"),
    };
    guard.armed = false;
    Ok(response)
}

/// Sends `msg` and waits for the worker's decision; `None` if the worker is gone.
async fn ask(
    worker: &mpsc::Sender<Msg>,
    msg: Msg,
    rx: oneshot::Receiver<Decision>,
) -> Option<Decision> {
    worker.send(msg).ok()?;
    rx.await.ok()
}

/// The request as Envoy hands it to a filter: `:method`, `:path`, `:authority` (from `Host`),
/// `:scheme`, then every other header with its lowercase name (`host` becomes `:authority`).
pub fn envoy_headers<B>(req: &Request<B>) -> Vec<(String, String)> {
    let authority = req
        .headers()
        .get(hyper::header::HOST)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string());
    let mut out = vec![
        (":method".to_string(), req.method().as_str().to_string()),
        (":path".to_string(), path),
        (":authority".to_string(), authority),
        (":scheme".to_string(), "http".to_string()),
    ];
    let rest = client::header_pairs(req.headers());
    out.extend(rest.into_iter().filter(|(k, _)| k != "host"));
    out
}

/// Sends a continued request to the upstream; failures become Envoy's router 503.
async fn send_upstream(
    upstream: &Upstream,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
) -> Fetched {
    match upstream {
        Upstream::Echo => echo_fetch(&headers, &body),
        Upstream::Http(addr) => client::fetch(*addr, &headers, body, None)
            .await
            .unwrap_or_else(|_| client::connect_failure_reply()),
    }
}

/// The built-in echo upstream, answering in-process with what the wire would have carried:
/// `host`, the forwardable headers, and `content-length` for a non-empty body.
fn echo_fetch(headers: &[(String, String)], body: &[u8]) -> Fetched {
    let find = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let method = find(":method").unwrap_or_else(|| "GET".to_string());
    let path = find(":path").unwrap_or_else(|| "/".to_string());
    let mut wire = vec![("host".to_string(), find(":authority").unwrap_or_default())];
    wire.extend(
        headers
            .iter()
            .filter(|(k, _)| client::forwardable(k))
            .cloned(),
    );
    if !body.is_empty() {
        wire.push(("content-length".to_string(), body.len().to_string()));
    }
    let (status, headers, body) = echo::respond(&method, &path, &wire);
    Fetched {
        status,
        headers,
        body,
        trailers: Vec::new(),
    }
}

/// A worker reply as a hyper response; framing headers are recomputed by hyper.
fn to_response(reply: Reply) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(reply.body)));
    *response.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let map = response.headers_mut();
    for (name, value) in reply.headers.iter().filter(|(k, _)| client::forwardable(k)) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            map.append(n, v);
        }
    }
    response
}

/// A short text/plain answer produced by the gateway itself.
fn plain(status: StatusCode, what: &str) -> Response<Full<Bytes>> {
    let text = format!(
        "{} ({what})\n",
        status.canonical_reason().unwrap_or("error")
    );
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoy_headers_put_pseudo_headers_first_and_host_as_authority() {
        let req = Request::builder()
            .method("POST")
            .uri("/a?b=1")
            .header("Host", "example.com")
            .header("X-Dup", "1")
            .header("x-dup", "2")
            .body(())
            .unwrap();
        let got = envoy_headers(&req);
        let want: Vec<(String, String)> = [
            (":method", "POST"),
            (":path", "/a?b=1"),
            (":authority", "example.com"),
            (":scheme", "http"),
            ("x-dup", "1"),
            ("x-dup", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn echo_fetch_reports_wire_headers() {
        let headers: Vec<(String, String)> = [
            (":method", "GET"),
            (":path", "/x"),
            (":authority", "h"),
            ("x-a", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let fetched = echo_fetch(&headers, b"");
        let doc: serde_json::Value = serde_json::from_slice(&fetched.body).unwrap();
        assert_eq!(
            doc["headers"],
            serde_json::json!([["host", "h"], ["x-a", "1"]])
        );
        assert_eq!(doc["path"], "/x");
    }
}
