//! The admin listener, like Envoy's: `GET /stats` (one `name: value` per line, names without the
//! `wasmcustom.` prefix, as Envoy's `/stats` prints them) and `GET /ready`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::metrics::Metrics;

/// Serves admin requests until `shutdown` flips.
pub async fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                if let Ok((stream, _)) = accepted {
                    let metrics = metrics.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(req, metrics.clone()));
                        let conn = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service);
                        let _ = conn.await;
                    });
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Routes one admin request.
async fn handle(
    req: Request<Incoming>,
    metrics: Arc<Metrics>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let response = match (req.method(), req.uri().path()) {
        (&Method::GET, "/stats") => text(StatusCode::OK, stats_text(&metrics)),
        (&Method::GET, "/ready") => text(StatusCode::OK, "LIVE\n".to_string()),
        _ => text(StatusCode::NOT_FOUND, "not found\n".to_string()),
    };
    Ok(response)
}

/// Every metric as `name: value` lines, sorted by name.
pub fn stats_text(metrics: &Metrics) -> String {
    let mut lines: Vec<String> = metrics
        .snapshot()
        .into_iter()
        .map(|(name, _kind, value)| {
            let name = name.strip_prefix("wasmcustom.").unwrap_or(&name);
            format!("{name}: {value}\n")
        })
        .collect();
    lines.sort();
    lines.concat()
}

/// A text/plain answer.
fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = hyper::header::HeaderValue::from_str("text/plain") {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    response
}
