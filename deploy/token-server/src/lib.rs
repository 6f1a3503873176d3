//! Reference token server for the easy-jwt gateway plugin.
//!
//! It re-creates the token server of the Higress ebook (chapter 17, "HTTP 调用") whose source was
//! never published. The contract comes from what the ebook shows and what the Go plugin expects:
//!
//! * `POST /api/token/create` `{"uid":N}` → `200 {"token":"<JWT>"}`. The JWT is HS256 with header
//!   `{"alg":"HS256","typ":"JWT"}` and claims `{"UID":N,"exp":<unix secs>}`, byte for byte in
//!   the same layout as the ebook's example token (capital `UID`, no `iat`).
//! * `POST /api/token/auth` `{"token":"…"}` → `200 {"uid":N}`, or `401 {"message":"…"}` with one
//!   message per failure (missing, malformed, wrong algorithm, bad signature, expired, bad claims).
//!   The plugin copies `message` into its own error reply.
//! * `GET /healthz` → `200 ok`.
//! * Bodies that are not the expected JSON → `400 {"message":"…"}`, unknown paths → `404`,
//!   wrong methods → `405`, all with JSON bodies.
//!
//! Tests use [`router`], [`run`] or [`BackgroundServer`] in-process, and [`mint`] to make expired
//! or forged tokens.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Validation};
use serde::{Deserialize, Serialize};

/// Secret used when neither `--secret` nor `TOKEN_SECRET` is given. For local development only:
/// anyone who reads this source can forge tokens for a server that runs with it.
pub const DEFAULT_SECRET: &str = "easy-jwt-dev-secret-change-me";

/// Default token lifetime: one year, as in the original (its example token expires ~365 days
/// after it was minted).
pub const DEFAULT_TTL_SECONDS: u64 = 31_536_000;

/// Default listen address (the port the plugin configuration and McpBridge use).
pub const DEFAULT_BIND: &str = "0.0.0.0:9090";

/// Largest request body accepted (requests carry one small JSON object).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// base64url of `{"alg":"HS256","typ":"JWT"}`: the exact header golang-jwt writes, so our tokens
/// start with the same `eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.` as the ebook's.
const HEADER_B64: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// Server settings.
#[derive(Clone)]
pub struct Config {
    /// HMAC secret for HS256.
    pub secret: String,
    /// Lifetime of minted tokens (`exp = now + ttl`).
    pub ttl: Duration,
    /// Refuse (403 `path denied`) valid tokens whose request, as the plugin forwards it in
    /// `x-original-uri` (`forwardRequestContext`), starts with this prefix: a per-path decision.
    pub deny_path_prefix: Option<String>,
}

/// Redacts the secret, so a `{:?}` in a log or a test failure never prints it.
impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("secret", &"<redacted>")
            .field("ttl", &self.ttl)
            .field("deny_path_prefix", &self.deny_path_prefix)
            .finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            secret: DEFAULT_SECRET.to_owned(),
            ttl: Duration::from_secs(DEFAULT_TTL_SECONDS),
            deny_path_prefix: None,
        }
    }
}

/// Why a token was refused. `Display` is the message sent in the 401 body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AuthError {
    /// No `token` field, `null`, or an empty / blank string.
    Missing,
    /// Not three base64url parts, or a header that is not JSON.
    Malformed,
    /// A well-formed JWT whose `alg` is not HS256 (including `none`).
    WrongAlgorithm,
    /// The HMAC does not match (forged, or signed with another secret).
    BadSignature,
    /// Signature fine, but `exp` is at or before now.
    Expired,
    /// Signature fine, but the claims lack an integer `UID` or `exp`.
    InvalidClaims,
}

impl AuthError {
    /// A short stable name, used in the access log.
    pub fn kind(&self) -> &'static str {
        match self {
            AuthError::Missing => "missing",
            AuthError::Malformed => "malformed",
            AuthError::WrongAlgorithm => "wrong_algorithm",
            AuthError::BadSignature => "bad_signature",
            AuthError::Expired => "expired",
            AuthError::InvalidClaims => "invalid_claims",
        }
    }
}

impl std::fmt::Display for AuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthError::Missing => "token is missing",
            AuthError::Malformed => "token is malformed",
            AuthError::WrongAlgorithm => "token algorithm is not HS256",
            AuthError::BadSignature => "token signature is invalid",
            AuthError::Expired => "token is expired",
            AuthError::InvalidClaims => "token claims are invalid",
        })
    }
}

impl std::error::Error for AuthError {}

/// JWT claims, in the original's key order and spelling.
#[derive(Serialize, Deserialize, Debug)]
struct Claims {
    #[serde(rename = "UID")]
    uid: i64,
    exp: i64,
}

/// Seconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Mints an HS256 JWT `{"UID":uid,"exp":exp_unix_secs}` signed with `secret`.
///
/// No check is made on `exp_unix_secs`, so tests can mint already-expired tokens, and signing
/// with another secret gives a forged one.
pub fn mint(secret: &str, uid: i64, exp_unix_secs: i64) -> String {
    let claims = format!(r#"{{"UID":{uid},"exp":{exp_unix_secs}}}"#);
    let signing_input = format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(claims));
    let key = EncodingKey::from_secret(secret.as_bytes());
    // HMAC accepts keys of any length, so HS256 signing cannot fail; this is not request input.
    #[allow(clippy::expect_used)]
    let signature = jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key, Algorithm::HS256)
        .expect("HS256 signing is infallible");
    format!("{signing_input}.{signature}")
}

/// Verifies `token` against `secret` at time `now` (Unix seconds) and returns its `UID`.
///
/// Checks, in order: present, well-formed, `alg` is HS256, signature, claims, expiry. A token is
/// expired when `now >= exp` (RFC 7519 §4.1.4), with no leeway.
pub fn verify(secret: &str, token: &str, now: i64) -> Result<i64, AuthError> {
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Malformed)?;
    if header.alg != Algorithm::HS256 {
        return Err(AuthError::WrongAlgorithm);
    }
    let mut validation = Validation::new(Algorithm::HS256);
    // Expiry is checked below against the caller's `now`, so tests can pin the clock.
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.required_spec_claims = ["exp".to_owned()].into_iter().collect();
    let key = DecodingKey::from_secret(secret.as_bytes());
    let data =
        jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| match e.kind() {
            ErrorKind::InvalidSignature => AuthError::BadSignature,
            ErrorKind::InvalidAlgorithm => AuthError::WrongAlgorithm,
            ErrorKind::ExpiredSignature => AuthError::Expired,
            ErrorKind::MissingRequiredClaim(_)
            | ErrorKind::InvalidClaimFormat(_)
            | ErrorKind::Json(_) => AuthError::InvalidClaims,
            _ => AuthError::Malformed,
        })?;
    if now >= data.claims.exp {
        return Err(AuthError::Expired);
    }
    Ok(data.claims.uid)
}

#[derive(Deserialize)]
struct CreateRequest {
    uid: i64,
}

#[derive(Serialize)]
struct CreateResponse {
    token: String,
}

#[derive(Deserialize)]
struct AuthRequest {
    #[serde(default)]
    token: Option<String>,
}

#[derive(Serialize)]
struct AuthResponse {
    uid: i64,
}

#[derive(Serialize)]
struct ErrorBody {
    message: String,
}

/// Extra detail the handlers attach to a response for the access-log line.
#[derive(Clone, Copy)]
struct LogNote(&'static str);

fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        message: message.into(),
    };
    (status, Json(body)).into_response()
}

/// Turns axum's plain-text JSON rejections into `400 {"message":…}` (413 for oversized bodies).
fn rejection_response(rejection: JsonRejection) -> Response {
    let status = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        StatusCode::PAYLOAD_TOO_LARGE
    } else {
        StatusCode::BAD_REQUEST
    };
    let mut resp = error_response(status, rejection.body_text());
    resp.extensions_mut().insert(LogNote("bad_request"));
    resp
}

async fn create(
    State(cfg): State<Config>,
    body: Result<Json<CreateRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(rejection) => return rejection_response(rejection),
    };
    let ttl = i64::try_from(cfg.ttl.as_secs()).unwrap_or(i64::MAX);
    let exp = now_unix().saturating_add(ttl);
    let token = mint(&cfg.secret, req.uid, exp);
    (StatusCode::OK, Json(CreateResponse { token })).into_response()
}

/// The request context the plugin forwards with `forwardRequestContext` (absent: `-`).
const CONTEXT_HEADERS: [&str; 3] = ["x-original-method", "x-original-uri", "x-forwarded-host"];

async fn auth(
    State(cfg): State<Config>,
    headers: HeaderMap,
    body: Result<Json<AuthRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(rejection) => return rejection_response(rejection),
    };
    let context: Vec<&str> = CONTEXT_HEADERS
        .iter()
        .map(|name| {
            headers
                .get(*name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
        })
        .collect();
    log::info!("auth request context: {}", context.join(" "));
    let token = req.token.unwrap_or_default();
    match verify(&cfg.secret, &token, now_unix()) {
        Ok(_) if denied_path(&cfg, &headers) => {
            let mut resp = error_response(StatusCode::FORBIDDEN, "path denied");
            resp.extensions_mut().insert(LogNote("path_denied"));
            resp
        }
        Ok(uid) => (StatusCode::OK, Json(AuthResponse { uid })).into_response(),
        Err(err) => {
            let mut resp = error_response(StatusCode::UNAUTHORIZED, err.to_string());
            resp.extensions_mut().insert(LogNote(err.kind()));
            resp
        }
    }
}

/// Whether the forwarded `x-original-uri` falls under the configured denied prefix.
fn denied_path(cfg: &Config, headers: &HeaderMap) -> bool {
    let Some(prefix) = cfg.deny_path_prefix.as_deref() else {
        return false;
    };
    headers
        .get("x-original-uri")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|uri| uri.starts_with(prefix))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found() -> Response {
    error_response(StatusCode::NOT_FOUND, "not found")
}

async fn method_not_allowed() -> Response {
    error_response(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
}

/// One `log::info!` line per request: method, path (never the query), status, note, latency.
/// Tokens travel only in bodies, which are never logged.
async fn access_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let resp = next.run(req).await;
    let note = resp.extensions().get::<LogNote>().map_or("-", |n| n.0);
    log::info!(
        "{method} {path} {} {note} {:.1}ms",
        resp.status().as_u16(),
        start.elapsed().as_secs_f64() * 1000.0
    );
    resp
}

/// The HTTP API (see the crate docs).
pub fn router(cfg: Config) -> Router {
    Router::new()
        .route("/api/token/create", post(create))
        .route("/api/token/auth", post(auth))
        .route("/healthz", get(healthz))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn(access_log))
        .with_state(cfg)
}

/// Serves [`router`] on `listener` until `shutdown` completes, then drains in-flight requests.
pub async fn run(
    listener: tokio::net::TcpListener,
    cfg: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(cfg))
        .with_graceful_shutdown(shutdown)
        .await
}

/// A server on its own thread and Tokio runtime, for synchronous tests.
///
/// Dropping it (or calling [`BackgroundServer::stop`]) shuts the server down and joins the thread.
pub struct BackgroundServer {
    addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<std::io::Result<()>>>,
}

impl BackgroundServer {
    /// Binds `127.0.0.1:0` and starts serving; the address is known when this returns.
    pub fn start(cfg: Config) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0", cfg)
    }

    /// Binds `bind` and starts serving.
    pub fn start_on(bind: &str, cfg: Config) -> std::io::Result<Self> {
        let std_listener = std::net::TcpListener::bind(bind)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("token-server-{}", addr.port()))
            .spawn(move || {
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(std_listener)?;
                    run(listener, cfg, async {
                        // Either an explicit stop or the sender being dropped ends the server.
                        let _ = rx.await;
                    })
                    .await
                })
            })?;
        Ok(Self {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The bound address (`127.0.0.1:<ephemeral port>` for [`BackgroundServer::start`]).
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
                .unwrap_or_else(|_| Err(std::io::Error::other("token-server thread panicked"))),
            None => Ok(()),
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        let _ = self.stop_inner();
    }
}

/// Command-line / environment configuration of the `token-server` binary.
#[derive(clap::Parser, Clone)]
#[command(
    name = "token-server",
    version,
    about = "Reference token server for easy-jwt"
)]
pub struct Cli {
    /// HMAC secret for HS256 tokens. The default is a public development secret: set a real one.
    #[arg(long, env = "TOKEN_SECRET", default_value = DEFAULT_SECRET, hide_env_values = true)]
    pub secret: String,

    /// Lifetime of minted tokens, in seconds (default: one year).
    #[arg(
        long,
        env = "TOKEN_TTL_SECONDS",
        default_value_t = DEFAULT_TTL_SECONDS,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub ttl_seconds: u64,

    /// Address to listen on.
    #[arg(long, env = "TOKEN_SERVER_BIND", default_value = DEFAULT_BIND)]
    pub bind: String,

    /// Refuse valid tokens (403 `path denied`) when the forwarded `x-original-uri` starts with
    /// this prefix (the plugin sends it with `forwardRequestContext: true`).
    #[arg(long, env = "TOKEN_DENY_PATH_PREFIX")]
    pub deny_path_prefix: Option<String>,
}

impl Cli {
    /// The server [`Config`] these options describe.
    pub fn config(&self) -> Config {
        Config {
            secret: self.secret.clone(),
            ttl: Duration::from_secs(self.ttl_seconds),
            deny_path_prefix: self.deny_path_prefix.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser as _;

    const SECRET: &str = "unit-test-secret";

    #[test]
    fn the_denied_prefix_applies_to_the_forwarded_uri_only() {
        let cfg = Config {
            deny_path_prefix: Some("/admin".into()),
            ..Config::default()
        };
        let mut headers = HeaderMap::new();
        assert!(
            !denied_path(&cfg, &headers),
            "no forwarded context: allowed"
        );
        headers.insert("x-original-uri", "/admin/users?x=1".parse().unwrap());
        assert!(denied_path(&cfg, &headers));
        headers.insert("x-original-uri", "/api/admin".parse().unwrap());
        assert!(!denied_path(&cfg, &headers));
        assert!(!denied_path(&Config::default(), &headers));
    }

    #[test]
    fn mint_matches_the_ebook_token_layout() {
        // The ebook's token for uid 100: header and payload segments must be identical.
        let token = mint(SECRET, 100, 1_754_386_348);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0], "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9");
        assert_eq!(parts[1], "eyJVSUQiOjEwMCwiZXhwIjoxNzU0Mzg2MzQ4fQ");
        let header = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
        assert_eq!(header, br#"{"alg":"HS256","typ":"JWT"}"#);
    }

    #[test]
    fn mint_is_a_standard_hs256_jwt() {
        // Cross-check with jsonwebtoken's own encoder/decoder: same claims, valid signature.
        let token = mint(SECRET, 42, 2_000_000_000);
        let mut v = Validation::new(Algorithm::HS256);
        v.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(SECRET.as_bytes()),
            &v,
        )
        .unwrap();
        assert_eq!(
            data.claims,
            serde_json::json!({"UID": 42, "exp": 2_000_000_000})
        );
    }

    #[test]
    fn verify_round_trip_and_negative_uid() {
        let now = 1_700_000_000;
        assert_eq!(verify(SECRET, &mint(SECRET, 7, now + 60), now), Ok(7));
        assert_eq!(verify(SECRET, &mint(SECRET, -3, now + 60), now), Ok(-3));
        assert_eq!(verify(SECRET, &mint(SECRET, 0, now + 1), now), Ok(0));
    }

    #[test]
    fn verify_expiry_boundary() {
        let token = mint(SECRET, 7, 1_000);
        assert_eq!(verify(SECRET, &token, 999), Ok(7));
        assert_eq!(verify(SECRET, &token, 1_000), Err(AuthError::Expired));
        assert_eq!(verify(SECRET, &token, 5_000), Err(AuthError::Expired));
    }

    #[test]
    fn verify_bad_signature() {
        let token = mint("another-secret", 7, i64::MAX);
        assert_eq!(verify(SECRET, &token, 0), Err(AuthError::BadSignature));
        // Tampered payload with the original signature.
        let good = mint(SECRET, 7, 2_000_000_000);
        let parts: Vec<&str> = good.split('.').collect();
        let forged_payload = URL_SAFE_NO_PAD.encode(r#"{"UID":1,"exp":2000000000}"#);
        let forged = format!("{}.{}.{}", parts[0], forged_payload, parts[2]);
        assert_eq!(verify(SECRET, &forged, 0), Err(AuthError::BadSignature));
    }

    #[test]
    fn verify_expired_but_forged_reports_signature_first() {
        let token = mint("another-secret", 7, 10);
        assert_eq!(verify(SECRET, &token, 100), Err(AuthError::BadSignature));
    }

    #[test]
    fn verify_missing_and_malformed() {
        assert_eq!(verify(SECRET, "", 0), Err(AuthError::Missing));
        assert_eq!(verify(SECRET, "   ", 0), Err(AuthError::Missing));
        for bad in [
            "abc",
            "a.b",
            "a.b.c",
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9",
            "!!!.???.***",
            "eyJub3QiOiJqc29uIn0.e30.sig",
        ] {
            assert_eq!(verify(SECRET, bad, 0), Err(AuthError::Malformed), "{bad}");
        }
    }

    #[test]
    fn verify_rejects_other_algorithms() {
        // alg "none" with an empty signature: the classic bypass.
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(r#"{"UID":1,"exp":9999999999}"#);
        let none = format!("{header}.{payload}.");
        assert_ne!(verify(SECRET, &none, 0), Ok(1));
        // A real HS512 token from jsonwebtoken: well-formed but the wrong algorithm.
        let hs512 = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(Algorithm::HS512),
            &serde_json::json!({"UID": 1, "exp": 9_999_999_999_i64}),
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert_eq!(verify(SECRET, &hs512, 0), Err(AuthError::WrongAlgorithm));
    }

    #[test]
    fn verify_invalid_claims() {
        let sign = |claims: &str| {
            let input = format!("{HEADER_B64}.{}", URL_SAFE_NO_PAD.encode(claims));
            let sig = jsonwebtoken::crypto::sign(
                input.as_bytes(),
                &EncodingKey::from_secret(SECRET.as_bytes()),
                Algorithm::HS256,
            )
            .unwrap();
            format!("{input}.{sig}")
        };
        for claims in [
            r#"{"exp":9999999999}"#,
            r#"{"UID":5}"#,
            r#"{"uid":5,"exp":9999999999}"#,
            r#"{"UID":"5","exp":9999999999}"#,
            r#"not json"#,
        ] {
            assert_eq!(
                verify(SECRET, &sign(claims), 0),
                Err(AuthError::InvalidClaims),
                "{claims}"
            );
        }
    }

    #[test]
    fn messages_are_distinct() {
        let all = [
            AuthError::Missing,
            AuthError::Malformed,
            AuthError::WrongAlgorithm,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::InvalidClaims,
        ];
        let msgs: std::collections::HashSet<String> = all.iter().map(|e| e.to_string()).collect();
        assert_eq!(msgs.len(), all.len());
        let kinds: std::collections::HashSet<&str> = all.iter().map(|e| e.kind()).collect();
        assert_eq!(kinds.len(), all.len());
    }

    #[test]
    fn cli_defaults_and_flags() {
        // Flags win over the environment, so this holds whatever TOKEN_* the shell sets.
        let cli = Cli::try_parse_from([
            "token-server",
            "--secret",
            "s3",
            "--ttl-seconds",
            "60",
            "--bind",
            "127.0.0.1:1",
        ])
        .unwrap();
        assert_eq!(cli.secret, "s3");
        assert_eq!(cli.config().ttl, Duration::from_secs(60));
        assert_eq!(cli.bind, "127.0.0.1:1");
        assert!(Cli::try_parse_from(["token-server", "--ttl-seconds", "0"]).is_err());
        let d = Config::default();
        assert_eq!(d.ttl, Duration::from_secs(31_536_000));
        assert_eq!(d.secret, DEFAULT_SECRET);
        assert!(!format!("{d:?}").contains(DEFAULT_SECRET));
    }
}
