//! Echo upstream for the easy-jwt gateway: `make dev`, the end-to-end tests and the soak put it
//! behind Envoy, so what the plugin forwarded (notably `x-auth-user`) is visible to the client.
//!
//! Every request, whatever its method and path (`/healthz` included), gets
//! `200 application/json` with a compact JSON body:
//!
//! ```text
//! {"method":"GET","path":"/a?b=1","headers":[["host","x"],["x-n","1"],["x-n","2"]],"body_bytes":0}
//! ```
//!
//! * `path` is the request target's path and query, as received.
//! * `headers` holds one `[name, value]` pair per header line, names in lowercase. Names come in
//!   the order they were first seen; the values of a repeated name are together, in received
//!   order (HTTP's header map keeps no finer order than that: `a, b, a` is reported `a, a, b`).
//!   Values that are not UTF-8 are decoded lossily.
//! * `body_bytes` is the size of the request body, which is always read to the end (streamed and
//!   counted, never held in memory, so any size works).
//!
//! A request carrying `x-echo-bytes: N` (`N` ≤ [`MAX_ECHO_BYTES`]) is answered instead with `N`
//! bytes of `x` as `application/octet-stream`, for large-response tests; a bad `N` gets
//! `400 {"message":…}`.
//!
//! Tests use [`EchoServer`] (own thread and runtime); the binary uses [`serve`].

use std::future::Future;
use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt as _;
use serde::Serialize;

/// Largest body an `x-echo-bytes` request may ask for (64 MiB).
pub const MAX_ECHO_BYTES: usize = 64 * 1024 * 1024;

/// Default listen address of the binary.
pub const DEFAULT_BIND: &str = "127.0.0.1:3000";

/// Request header asking for a body of that many `x` bytes instead of the JSON echo.
pub const ECHO_BYTES_HEADER: &str = "x-echo-bytes";

/// Reads `body` to the end and returns how many bytes it held (errors end the count early).
async fn count_body(body: Body) -> u64 {
    let mut body = body;
    let mut total: u64 = 0;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    total = total.saturating_add(u64::try_from(data.len()).unwrap_or(u64::MAX));
                }
            }
            Err(_) => break,
        }
    }
    total
}

/// The echo body; fields serialize in this order (`method`, `path`, `headers`, `body_bytes`).
#[derive(Serialize)]
struct Echo {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body_bytes: u64,
}

fn json_response(status: StatusCode, body: &impl Serialize) -> Response {
    let text = serde_json::to_string(body).unwrap_or_else(|_| String::from("{}"));
    let mut resp = (status, text).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// The one handler: echo the request, or send `x-echo-bytes` bytes.
async fn echo(req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let method = parts.method.as_str().to_owned();
    let path = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.as_str().to_owned(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            )
        })
        .collect();
    let echo_bytes = parts.headers.get(ECHO_BYTES_HEADER).map(|v| {
        v.to_str()
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .filter(|n| *n <= MAX_ECHO_BYTES)
    });
    let body_bytes = count_body(body).await;
    match echo_bytes {
        None => json_response(
            StatusCode::OK,
            &Echo {
                method,
                path,
                headers,
                body_bytes,
            },
        ),
        Some(Some(n)) => {
            let mut resp = (StatusCode::OK, vec![b'x'; n]).into_response();
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            resp
        }
        Some(None) => json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({
                "message": format!("{ECHO_BYTES_HEADER} must be an integer <= {MAX_ECHO_BYTES}")
            }),
        ),
    }
}

/// The HTTP service: every method and path goes to the echo handler.
pub fn router() -> Router {
    Router::new().fallback(echo)
}

/// Serves on `listener` forever (until the task is dropped or an accept loop error).
pub async fn serve(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    axum::serve(listener, router()).await
}

/// Serves on `listener` until `shutdown` completes, then finishes in-flight requests.
pub async fn serve_with_shutdown(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
}

/// An echo server on its own thread and Tokio runtime, for tests and tools.
///
/// The socket is bound (and accepting into its backlog) when [`EchoServer::start`] returns, so
/// it is ready at once. Dropping it stops the server and joins the thread; connections still
/// open are closed.
pub struct EchoServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl EchoServer {
    /// Binds `bind` (`"127.0.0.1:0"` picks a free port) and starts serving.
    pub fn start(bind: &str) -> std::io::Result<EchoServer> {
        let std_listener = std::net::TcpListener::bind(bind)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name(format!("echo-server-{}", addr.port()))
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("echo-server-{}", addr.port()))
            .spawn(move || {
                let result = rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener)?;
                    tokio::select! {
                        r = serve(listener) => r,
                        // An explicit stop or the sender being dropped ends the server.
                        _ = rx => Ok(()),
                    }
                });
                // Drops the connection tasks still running (keep-alive sockets) at once.
                rt.shutdown_background();
                result
            })?;
        Ok(EchoServer {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the server and returns what its serve loop returned.
    pub fn stop(mut self) -> std::io::Result<()> {
        self.stop_inner()
    }

    fn stop_inner(&mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.thread.take() {
            Some(handle) => handle
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("echo-server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for EchoServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Command-line / environment configuration of the `echo-server` binary.
#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "echo-server",
    version,
    about = "Echo upstream for easy-jwt: answers every request with its method, path, headers and body size as JSON"
)]
pub struct Cli {
    /// Address to listen on.
    #[arg(long, env = "ECHO_SERVER_BIND", default_value = DEFAULT_BIND)]
    pub bind: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    #[test]
    fn cli_default_and_flag() {
        let cli = Cli::try_parse_from(["echo-server", "--bind", "127.0.0.1:1"]).unwrap();
        assert_eq!(cli.bind, "127.0.0.1:1");
    }
}
