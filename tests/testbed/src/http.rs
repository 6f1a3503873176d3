//! A small blocking HTTP/1.1 client with keep-alive, for talking to Envoy, its admin and the mocks.
//!
//! [`Conn`] keeps one socket open across [`Conn::send`] calls (reopening it only when the server
//! asked to close or closed it), so tests can check keep-alive behaviour. Responses framed by
//! `content-length`, `transfer-encoding: chunked` or the end of the connection are all read;
//! interim `1xx` answers are skipped. Every read times out after [`DEFAULT_TIMEOUT`].
//!
//! [`Conn::send`] panics on any I/O error (with the request line in the message); use
//! [`Conn::try_send`] when an error is the expected outcome (a reset, a closed connection).

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long a read waits before the request fails.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An HTTP/1.1 request to send.
///
/// A `host` header (`testbed`) is added when none is given, and `content-length` when the body is
/// not empty or the method usually carries one (unless `content-length` or `transfer-encoding` is
/// set). With `transfer-encoding: chunked` set, the body is sent as one chunk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `GET`, `POST`, …
    pub method: String,
    /// Request target: path and query, sent as is.
    pub path: String,
    /// Header lines in the order they are sent (repeats allowed).
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Header lines whose values are raw bytes (not UTF-8), sent after `headers`.
    pub raw_headers: Vec<(String, Vec<u8>)>,
}

impl Request {
    /// A request with any method.
    pub fn new(method: &str, path: &str) -> Request {
        Request {
            method: method.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            raw_headers: Vec::new(),
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Request {
        Request::new("GET", path)
    }

    /// `POST path` (empty body until [`Request::body`]).
    pub fn post(path: &str) -> Request {
        Request::new("POST", path)
    }

    /// Appends a header line (repeat the call for a repeated header).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Appends a header line whose value is raw bytes (a Latin-1 byte, say), sent as they are.
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Request {
        self.raw_headers.push((name.to_owned(), value.to_vec()));
        self
    }

    /// Appends `authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Request {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = body.into();
        self
    }

    /// `METHOD path`, for messages.
    pub fn request_line(&self) -> String {
        format!("{} {}", self.method, self.path)
    }

    fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    fn is_chunked(&self) -> bool {
        self.headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding")
                && v.to_ascii_lowercase().contains("chunked")
        })
    }

    /// The bytes on the wire.
    pub fn encode(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.path);
        if !self.has_header("host") {
            head.push_str("host: testbed\r\n");
        }
        for (name, value) in &self.headers {
            head.push_str(name);
            head.push_str(": ");
            head.push_str(value);
            head.push_str("\r\n");
        }
        let chunked = self.is_chunked();
        let wants_length =
            !self.body.is_empty() || matches!(self.method.as_str(), "POST" | "PUT" | "PATCH");
        if !chunked && wants_length && !self.has_header("content-length") {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        let mut out = head.into_bytes();
        for (name, value) in &self.raw_headers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        if chunked {
            if !self.body.is_empty() {
                out.extend_from_slice(format!("{:x}\r\n", self.body.len()).as_bytes());
                out.extend_from_slice(&self.body);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n\r\n");
        } else {
            out.extend_from_slice(&self.body);
        }
        out
    }
}

/// A response as received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Header lines as received (names in their received case), repeats kept.
    pub headers: Vec<(String, String)>,
    /// Body, de-chunked.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (showing status and body) if it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "response body is not JSON ({e}): status {}, body {:?}",
                self.status,
                self.text()
            )
        })
    }

    /// For a response from the echo server: every value the upstream received for header
    /// `name` (lowercase compare), in order. Panics if the body is not an echo.
    pub fn echoed_all(&self, name: &str) -> Vec<String> {
        let v = self.json();
        let pairs = v["headers"].as_array().unwrap_or_else(|| {
            panic!(
                "not an echo-server body (no `headers` array): status {}, body {:?}",
                self.status,
                self.text()
            )
        });
        let name = name.to_ascii_lowercase();
        pairs
            .iter()
            .filter(|p| p[0].as_str() == Some(name.as_str()))
            .filter_map(|p| p[1].as_str().map(str::to_owned))
            .collect()
    }

    /// For a response from the echo server: the first value the upstream received for header
    /// `name`, if any. Panics if the body is not an echo.
    pub fn echoed(&self, name: &str) -> Option<String> {
        self.echoed_all(name).into_iter().next()
    }
}

/// One keep-alive HTTP/1.1 connection.
pub struct Conn {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
    connects: usize,
    timeout: Duration,
}

fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    stream.set_nodelay(true)?;
    Ok(BufReader::with_capacity(64 * 1024, stream))
}

fn annotate(e: io::Error, req: &Request, addr: SocketAddr, timeout: Duration) -> io::Error {
    let kind = match e.kind() {
        io::ErrorKind::WouldBlock => io::ErrorKind::TimedOut,
        k => k,
    };
    let what = if kind == io::ErrorKind::TimedOut {
        format!("no answer within {timeout:?}")
    } else {
        e.to_string()
    };
    io::Error::new(kind, format!("{} to {addr}: {what}", req.request_line()))
}

impl Conn {
    /// Connects to `addr`; panics if it cannot.
    pub fn open(addr: SocketAddr) -> Conn {
        Conn::try_open(addr).unwrap_or_else(|e| panic!("cannot connect to {addr}: {e}"))
    }

    /// Connects to `addr`.
    pub fn try_open(addr: SocketAddr) -> io::Result<Conn> {
        let stream = connect(addr, DEFAULT_TIMEOUT)?;
        Ok(Conn {
            addr,
            stream: Some(stream),
            connects: 1,
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// Changes the read/write timeout (for this and later sockets).
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
        if let Some(s) = &self.stream {
            let _ = s.get_ref().set_read_timeout(Some(timeout));
            let _ = s.get_ref().set_write_timeout(Some(timeout));
        }
    }

    /// The server address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many sockets this connection has opened so far (1 while keep-alive held).
    pub fn connects(&self) -> usize {
        self.connects
    }

    /// Whether a socket is currently open (false after the server closed it or an error).
    pub fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Local address of the current socket.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.stream
            .as_ref()
            .and_then(|s| s.get_ref().local_addr().ok())
    }

    /// Sends `req` and reads the answer; panics on any error, naming the request.
    pub fn send(&mut self, req: &Request) -> Response {
        self.try_send(req)
            .unwrap_or_else(|e| panic!("HTTP request failed: {e}"))
    }

    /// Sends `req` and reads the answer. On error the socket is dropped (the next send reconnects).
    /// The error's message starts with the request line; a read timeout is `TimedOut`.
    pub fn try_send(&mut self, req: &Request) -> io::Result<Response> {
        let result = self.exchange(req);
        if result.is_err() {
            self.stream = None;
        }
        result.map_err(|e| annotate(e, req, self.addr, self.timeout))
    }

    fn exchange(&mut self, req: &Request) -> io::Result<Response> {
        let mut stream = match self.stream.take() {
            Some(s) => s,
            None => {
                let s = connect(self.addr, self.timeout)?;
                self.connects += 1;
                s
            }
        };
        let bytes = req.encode();
        if let Err(write_err) = stream
            .get_mut()
            .write_all(&bytes)
            .and_then(|()| stream.get_mut().flush())
        {
            // The server may have answered early (e.g. a 401 before the body) and closed: return
            // that answer if there is one.
            return match read_response(&mut stream, &req.method) {
                Ok((resp, _)) => Ok(resp),
                Err(_) => Err(write_err),
            };
        }
        let (resp, keep) = read_response(&mut stream, &req.method)?;
        if keep {
            self.stream = Some(stream);
        }
        Ok(resp)
    }
}

/// One-shot: opens a connection, sends `req`, returns the answer; panics on error.
pub fn send(addr: SocketAddr, req: &Request) -> Response {
    Conn::open(addr).send(req)
}

/// One-shot: opens a connection, sends `req`, returns the answer.
pub fn try_send(addr: SocketAddr, req: &Request) -> io::Result<Response> {
    Conn::try_open(addr)?.try_send(req)
}

fn read_line(r: &mut BufReader<TcpStream>) -> io::Result<String> {
    let mut line = Vec::new();
    let n = r.read_until(b'\n', &mut line)?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        ));
    }
    if line.len() > 1024 * 1024 {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads one response; returns it and whether the connection may be reused.
fn read_response(r: &mut BufReader<TcpStream>, method: &str) -> io::Result<(Response, bool)> {
    loop {
        let status_line = read_line(r)?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {status_line:?}")))?;
        if !version.starts_with("HTTP/1.") {
            return Err(bad(format!("bad status line {status_line:?}")));
        }
        let mut headers = Vec::new();
        loop {
            let line = read_line(r)?;
            if line.is_empty() {
                break;
            }
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| bad(format!("bad header line {line:?}")))?;
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
        if (100..200).contains(&status) && status != 101 {
            continue;
        }
        let mut resp = Response {
            status,
            headers,
            body: Vec::new(),
        };
        let connection = resp.header("connection").map(str::to_ascii_lowercase);
        let mut keep = match connection.as_deref() {
            Some(c) if c.contains("close") => false,
            Some(c) if c.contains("keep-alive") => true,
            _ => version != "HTTP/1.0",
        };
        let chunked = resp
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        if method == "HEAD" || status == 204 || status == 304 {
            // No body.
        } else if chunked {
            resp.body = read_chunked(r)?;
        } else if let Some(len) = resp.header("content-length") {
            let len: usize = len
                .parse()
                .map_err(|_| bad(format!("bad content-length {len:?}")))?;
            let mut body = vec![0u8; len];
            r.read_exact(&mut body)?;
            resp.body = body;
        } else {
            r.read_to_end(&mut resp.body)?;
            keep = false;
        }
        return Ok((resp, keep));
    }
}

fn read_chunked(r: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line = read_line(r)?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| bad(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailers, then the blank line.
            while !read_line(r)?.is_empty() {}
            return Ok(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..])?;
        let crlf = read_line(r)?;
        if !crlf.is_empty() {
            return Err(bad(format!("missing CRLF after chunk, got {crlf:?}")));
        }
    }
}
