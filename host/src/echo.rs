//! Built-in echo upstream: answers every request with 200 and a JSON picture of what it received.
//!
//! # Format
//! ```json
//! {"method": "GET", "path": "/a?b=1", "headers": [["host", "x"], ["x-n", "1"], ["x-n", "2"]]}
//! ```
//! `headers` is a list of `[name, value]` pairs with lowercase names, one pair per header entry in
//! the order received, so a repeated header shows up as several pairs (tests count duplicates).
//! This mirrors the echo-server behind the Higress quick-start.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Content type of every echo answer.
pub const CONTENT_TYPE: &str = "application/json";

/// The JSON body the echo upstream answers for one request (see the module docs for the format).
pub fn body(method: &str, path: &str, headers: &[(String, String)]) -> Vec<u8> {
    let pairs: Vec<serde_json::Value> = headers
        .iter()
        .map(|(name, value)| serde_json::json!([name.to_ascii_lowercase(), value]))
        .collect();
    let doc = serde_json::json!({ "method": method, "path": path, "headers": pairs });
    doc.to_string().into_bytes()
}

/// The full echo answer: status 200, `content-type: application/json`, and [`body`].
pub fn respond(
    method: &str,
    path: &str,
    headers: &[(String, String)],
) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let headers_out = vec![("content-type".to_string(), CONTENT_TYPE.to_string())];
    (200, headers_out, body(method, path, headers))
}

/// Serves the echo upstream on `listener` (HTTP/1.1) until an accept error; each connection runs
/// as its own task. Tests abort the returned future's task to stop it.
///
/// # Errors
/// The I/O error of a failed `accept`.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let service = service_fn(handle);
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            // A client that goes away mid-request is not an echo-server error.
            let _ = conn.await;
        });
    }
}

/// One echo request: headers in `HeaderMap` order (grouped by name, names in arrival order).
async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let headers: Vec<(String, String)> = req
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_string(), value)
        })
        .collect();
    let path = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_string(), |pq| pq.as_str().to_string());
    let bytes = body(req.method().as_str(), &path, &headers);
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    if let Ok(value) = hyper::header::HeaderValue::from_str(CONTENT_TYPE) {
        response
            .headers_mut()
            .insert(hyper::header::CONTENT_TYPE, value);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_keeps_every_entry_in_order() {
        let headers = vec![
            ("X-A".to_string(), "1".to_string()),
            ("x-a".to_string(), "2".to_string()),
        ];
        let doc: serde_json::Value =
            serde_json::from_slice(&body("GET", "/p?q=1", &headers)).unwrap();
        assert_eq!(doc["method"], "GET");
        assert_eq!(doc["path"], "/p?q=1");
        assert_eq!(
            doc["headers"],
            serde_json::json!([["x-a", "1"], ["x-a", "2"]])
        );
    }
}
