//! The `token-server` binary: env configuration, access log, graceful SIGTERM.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// One blocking HTTP/1.1 exchange; returns (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

fn wait_ready(addr: SocketAddr, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("token-server exited early: {status}");
        }
        if TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("token-server did not listen on {addr} within 10s");
}

#[cfg(unix)]
#[test]
fn binary_reads_env_logs_requests_and_stops_on_sigterm() {
    // Reserve a free loopback port, then hand it to the binary.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_token-server"))
        .env("TOKEN_SECRET", "from-env")
        .env("TOKEN_TTL_SECONDS", "120")
        .env("TOKEN_SERVER_BIND", addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_ready(addr, &mut child);

    let (status, body) = http(addr, "POST", "/api/token/create", r#"{"uid":7}"#);
    assert_eq!(status, 200, "{body}");
    let token = serde_json::from_str::<serde_json::Value>(&body).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // Signed with TOKEN_SECRET, and exp = now + TOKEN_TTL_SECONDS.
    let now = token_server::now_unix();
    assert_eq!(token_server::verify("from-env", &token, now), Ok(7));
    assert!(token_server::verify("from-env", &token, now + 125).is_err());

    let (status, body) = http(
        addr,
        "POST",
        "/api/token/auth",
        &format!(r#"{{"token":"{token}"}}"#),
    );
    assert_eq!((status, body.as_str()), (200, r#"{"uid":7}"#));
    let (status, _) = http(addr, "POST", "/api/token/auth", r#"{"token":"x.y.z"}"#);
    assert_eq!(status, 401);

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("token-server ignored SIGTERM for 10s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");

    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("POST /api/token/create 200"), "{log}");
    assert!(log.contains("POST /api/token/auth 200"), "{log}");
    assert!(log.contains("POST /api/token/auth 401 malformed"), "{log}");
    assert!(
        !log.contains(&token),
        "the access log must not contain tokens:\n{log}"
    );
    assert!(
        !log.contains("from-env"),
        "the access log must not contain the secret"
    );
}
