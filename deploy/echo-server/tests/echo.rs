//! The echo server over real sockets: the JSON shape, body counting, `x-echo-bytes`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use echo_server::EchoServer;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// Sends `head` (request line + headers, without the blank line) and `body` with
/// `connection: close`, returns (status line, headers, body).
fn exchange(server: &EchoServer, head: &str, body: &[u8]) -> (String, String, Vec<u8>) {
    let mut s = TcpStream::connect(server.addr()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut req = format!("{head}\r\nconnection: close\r\n\r\n").into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let (status, headers) = head.split_once("\r\n").unwrap();
    (
        status.to_owned(),
        headers.to_lowercase(),
        raw[split + 4..].to_vec(),
    )
}

#[test]
fn echoes_method_path_and_header_pairs_compactly() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let (status, headers, body) = exchange(
        &server,
        "GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-N: 1\r\nx-n: 2",
        b"",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("content-type: application/json"),
        "{headers}"
    );
    let text = String::from_utf8(body).unwrap();
    assert_eq!(
        text,
        r#"{"method":"GET","path":"/a?b=1","headers":[["host","x"],["x-n","1"],["x-n","2"],["connection","close"]],"body_bytes":0}"#
    );
}

#[test]
fn healthz_is_echoed_too() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let (status, _, body) = exchange(&server, "DELETE /healthz HTTP/1.1\r\nhost: h", b"");
    assert_eq!(status, "HTTP/1.1 200 OK");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["method"], "DELETE");
    assert_eq!(v["path"], "/healthz");
}

#[test]
fn counts_a_one_mib_post_body() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let body = vec![b'a'; 1 << 20];
    let (status, _, resp) = exchange(
        &server,
        &format!(
            "POST /upload HTTP/1.1\r\nhost: h\r\ncontent-length: {}",
            body.len()
        ),
        &body,
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    let v: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(v["body_bytes"], 1 << 20);
    assert_eq!(v["method"], "POST");
}

#[test]
fn counts_a_chunked_body() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let (_, _, resp) = exchange(
        &server,
        "PUT /c HTTP/1.1\r\nhost: h\r\ntransfer-encoding: chunked",
        b"5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n",
    );
    let v: serde_json::Value = serde_json::from_slice(&resp).unwrap();
    assert_eq!(v["body_bytes"], 8);
}

#[test]
fn x_echo_bytes_sends_that_many_x() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let (status, headers, body) = exchange(
        &server,
        "GET /big HTTP/1.1\r\nhost: h\r\nx-echo-bytes: 3000000",
        b"",
    );
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(
        headers.contains("content-type: application/octet-stream"),
        "{headers}"
    );
    assert_eq!(body.len(), 3_000_000);
    assert!(body.iter().all(|b| *b == b'x'));

    let (status, _, body) = exchange(
        &server,
        "GET /big HTTP/1.1\r\nhost: h\r\nx-echo-bytes: 67108865",
        b"",
    );
    assert_eq!(status, "HTTP/1.1 400 Bad Request");
    assert!(String::from_utf8(body).unwrap().contains("x-echo-bytes"));
}

#[test]
fn keep_alive_and_stop() {
    let server = EchoServer::start("127.0.0.1:0").unwrap();
    let addr = server.addr();
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    for _ in 0..2 {
        s.write_all(b"GET / HTTP/1.1\r\nhost: h\r\n\r\n").unwrap();
        let mut buf = [0u8; 4096];
        let n = s.read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200 OK"));
    }
    server.stop().unwrap();
    assert!(TcpStream::connect(addr).is_err());
}
