//! The token server over real HTTP/1.1 on 127.0.0.1:0, with a tiny raw-TCP client.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::Duration;

use token_server::{mint, now_unix, run, BackgroundServer, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const SECRET: &str = "integration-secret";

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start() -> Self {
        Self::start_with(Config {
            secret: SECRET.to_owned(),
            ttl: Duration::from_secs(3600),
            deny_path_prefix: None,
        })
        .await
    }

    async fn start_with(cfg: Config) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(run(listener, cfg, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task,
        }
    }

    async fn shutdown(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("server stops within 5s")
            .unwrap()
            .unwrap();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }

    fn message(&self) -> String {
        self.json()["message"].as_str().unwrap().to_owned()
    }
}

/// Sends one HTTP/1.1 request (`Connection: close`) and reads the whole reply.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Reply {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: token-server.dns\r\nConnection: close\r\n");
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut raw))
        .await
        .expect("reply within 5s")
        .unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("header/body separator");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    let reply = Reply {
        status,
        headers,
        body: body.to_owned(),
    };
    assert!(
        reply.header("transfer-encoding").is_none(),
        "client expects content-length bodies"
    );
    if let Some(len) = reply.header("content-length") {
        assert_eq!(len.parse::<usize>().unwrap(), reply.body.len());
    }
    reply
}

async fn post_json(addr: SocketAddr, path: &str, body: &str) -> Reply {
    request(addr, "POST", path, Some("application/json"), body).await
}

async fn create_token(addr: SocketAddr, uid: i64) -> String {
    let r = post_json(addr, "/api/token/create", &format!(r#"{{"uid":{uid}}}"#)).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    r.json()["token"].as_str().unwrap().to_owned()
}

async fn auth(addr: SocketAddr, token: &str) -> Reply {
    let body = serde_json::json!({ "token": token }).to_string();
    post_json(addr, "/api/token/auth", &body).await
}

#[tokio::test]
async fn create_then_auth_round_trip() {
    let srv = Server::start().await;
    let before = now_unix();
    let token = create_token(srv.addr, 100).await;
    assert!(token.starts_with("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    // exp = now + ttl (3600 s here).
    let payload = token.split('.').nth(1).unwrap();
    use base64::Engine as _;
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["UID"], 100);
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp >= before + 3600 && exp <= now_unix() + 3600, "{exp}");

    let r = auth(srv.addr, &token).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), serde_json::json!({"uid": 100}));
    srv.shutdown().await;
}

#[tokio::test]
async fn auth_accepts_tokens_minted_by_the_library() {
    let srv = Server::start().await;
    let r = auth(srv.addr, &mint(SECRET, 4242, now_unix() + 60)).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["uid"], 4242);
    srv.shutdown().await;
}

#[tokio::test]
async fn expired_token_is_401() {
    let srv = Server::start().await;
    let r = auth(srv.addr, &mint(SECRET, 1, now_unix() - 10)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.message(), "token is expired");
    srv.shutdown().await;
}

#[tokio::test]
async fn bad_signature_is_401() {
    let srv = Server::start().await;
    let r = auth(srv.addr, &mint("not-the-secret", 1, now_unix() + 60)).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.message(), "token signature is invalid");
    srv.shutdown().await;
}

#[tokio::test]
async fn malformed_token_is_401() {
    let srv = Server::start().await;
    for bad in ["garbage", "a.b.c", "Bearer x.y.z"] {
        let r = auth(srv.addr, bad).await;
        assert_eq!(r.status, 401, "{bad}");
        assert_eq!(r.message(), "token is malformed", "{bad}");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn missing_or_empty_token_is_401() {
    let srv = Server::start().await;
    for body in [
        r#"{}"#,
        r#"{"token":""}"#,
        r#"{"token":null}"#,
        r#"{"token":"  "}"#,
    ] {
        let r = post_json(srv.addr, "/api/token/auth", body).await;
        assert_eq!(r.status, 401, "{body}");
        assert_eq!(r.message(), "token is missing", "{body}");
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn bad_json_is_400_with_json_body() {
    let srv = Server::start().await;
    let cases: [(&str, Option<&str>, &str); 7] = [
        ("/api/token/auth", Some("application/json"), "{not json"),
        ("/api/token/auth", Some("application/json"), ""),
        (
            "/api/token/auth",
            Some("application/json"),
            r#"{"token":123}"#,
        ),
        ("/api/token/auth", Some("text/plain"), r#"{"token":"x"}"#),
        ("/api/token/auth", None, r#"{"token":"x"}"#),
        (
            "/api/token/create",
            Some("application/json"),
            r#"{"uid":"abc"}"#,
        ),
        ("/api/token/create", Some("application/json"), r#"{}"#),
    ];
    for (path, ct, body) in cases {
        let r = request(srv.addr, "POST", path, ct, body).await;
        assert_eq!(r.status, 400, "{path} {ct:?} {body}: {}", r.body);
        assert!(r
            .header("content-type")
            .unwrap()
            .starts_with("application/json"));
        assert!(!r.message().is_empty());
    }
    srv.shutdown().await;
}

#[tokio::test]
async fn oversized_body_is_413_json() {
    let srv = Server::start().await;
    let big = format!(
        r#"{{"token":"{}"}}"#,
        "a".repeat(token_server::MAX_BODY_BYTES)
    );
    let r = post_json(srv.addr, "/api/token/auth", &big).await;
    assert_eq!(r.status, 413);
    assert!(!r.message().is_empty());
    srv.shutdown().await;
}

#[tokio::test]
async fn healthz_is_ok() {
    let srv = Server::start().await;
    let r = request(srv.addr, "GET", "/healthz", None, "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, "ok");
    srv.shutdown().await;
}

#[tokio::test]
async fn unknown_path_and_wrong_method_are_json() {
    let srv = Server::start().await;
    let r = request(srv.addr, "GET", "/nope", None, "").await;
    assert_eq!(r.status, 404);
    assert_eq!(r.message(), "not found");
    let r = request(srv.addr, "GET", "/api/token/auth", None, "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.message(), "method not allowed");
    srv.shutdown().await;
}

#[tokio::test]
async fn tokens_from_another_secret_fail_across_servers() {
    let a = Server::start().await;
    let b = Server::start_with(Config {
        secret: "other".to_owned(),
        ttl: Duration::from_secs(60),
        deny_path_prefix: None,
    })
    .await;
    let token = create_token(b.addr, 9).await;
    assert_eq!(auth(b.addr, &token).await.status, 200);
    let r = auth(a.addr, &token).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.message(), "token signature is invalid");
    a.shutdown().await;
    b.shutdown().await;
}

#[test]
fn background_server_for_sync_tests() {
    let srv = BackgroundServer::start(Config {
        secret: SECRET.to_owned(),
        ttl: Duration::from_secs(60),
        deny_path_prefix: None,
    })
    .unwrap();
    let addr = srv.addr();
    assert!(addr.ip().is_loopback());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let r = rt.block_on(request(addr, "GET", "/healthz", None, ""));
    assert_eq!(r.status, 200);
    srv.stop().unwrap();
    // After stop the port refuses connections.
    assert!(std::net::TcpStream::connect(addr).is_err());
}
