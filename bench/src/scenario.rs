//! What the Envoy measurements share: the request paths, the tokens, the
//! plugin configuration and the targets the figures are read against.

use std::path::Path;

use token_server::{mint, now_unix, DEFAULT_SECRET};

/// The token server's cluster (a raw Envoy cluster; `tokenServerCluster` in the plugin config).
pub const TOKEN_CLUSTER: &str = "token-server";
/// The path every authenticated request asks for.
pub const API_PATH: &str = "/api/orders/42";
/// A path under `ignoreUrls` (`/public/*` in `deploy/plugin-config.json`), as long as
/// [`API_PATH`] so the baseline request costs the same.
pub const IGNORED_PATH: &str = "/public/orders";
/// `anonymousToken` of `deploy/plugin-config.json`.
pub const ANONYMOUS_TOKEN: &str = "AnonymousToken";
/// The uid in the one token cache-hit requests send.
pub const CACHED_UID: i64 = 4_200_000;
/// Fresh tokens get uids from here on (7 digits, so every token has the same length).
pub const FRESH_UID_BASE: i64 = 5_000_000;
/// The secret forged tokens are signed with (the token server answers 401 to them).
pub const FORGED_SECRET: &str = "not-the-token-server-secret";

/// Which `Authorization` a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// None.
    None,
    /// `Bearer AnonymousToken`.
    Anonymous,
    /// `Bearer <one valid JWT>`, the same on every request.
    Cached,
    /// `Bearer <a valid JWT never sent before>`.
    Fresh,
    /// `Bearer <a JWT signed with another secret, never sent before>`: the token server says 401.
    Forged,
}

impl Auth {
    /// The request shape whose no-filter cost this one is compared with: requests carrying
    /// tokens of the same length cost Envoy the same without a filter.
    pub fn shape(self) -> Shape {
        match self {
            Auth::None => Shape::NoToken,
            Auth::Anonymous => Shape::Anonymous,
            Auth::Cached | Auth::Fresh | Auth::Forged => Shape::Jwt,
        }
    }
}

/// The three request shapes the baseline (no filter) is measured with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Shape {
    /// No `Authorization`.
    NoToken,
    /// `Authorization: Bearer AnonymousToken`.
    Anonymous,
    /// `Authorization: Bearer <HS256 JWT>` (155 bytes).
    Jwt,
}

/// Mints the tokens of a run: one cached token, then fresh (or forged) ones, all of the same
/// length, valid for a day.
#[derive(Debug)]
pub struct Tokens {
    exp: i64,
    next: i64,
    cached: String,
}

impl Tokens {
    /// Tokens expiring a day from now; fresh uids start at `FRESH_UID_BASE + offset`.
    pub fn new(offset: i64) -> Tokens {
        let exp = now_unix() + 24 * 3600;
        Tokens {
            exp,
            next: FRESH_UID_BASE + offset,
            cached: mint(DEFAULT_SECRET, CACHED_UID, exp),
        }
    }

    /// The `Authorization` value for `auth` (a new token for `Fresh` and `Forged`), and the uid
    /// the token server answers with (`None` when it answers 401 or is not asked).
    pub fn authorization(&mut self, auth: Auth) -> (Option<String>, Option<i64>) {
        match auth {
            Auth::None => (None, None),
            Auth::Anonymous => (Some(format!("Bearer {ANONYMOUS_TOKEN}")), Some(0)),
            Auth::Cached => (Some(format!("Bearer {}", self.cached)), Some(CACHED_UID)),
            Auth::Fresh => {
                let uid = self.bump();
                (
                    Some(format!("Bearer {}", mint(DEFAULT_SECRET, uid, self.exp))),
                    Some(uid),
                )
            }
            Auth::Forged => {
                let uid = self.bump();
                (
                    Some(format!("Bearer {}", mint(FORGED_SECRET, uid, self.exp))),
                    None,
                )
            }
        }
    }

    fn bump(&mut self) -> i64 {
        let uid = self.next;
        self.next += 1;
        uid
    }
}

/// The plugin configuration both measurements run: `deploy/plugin-config.json` (ignoreUrls
/// `/healthz` and `/public/*`, anonymousToken, 401 replies, the default 30 s cache), with the
/// token server reached through the raw cluster [`TOKEN_CLUSTER`].
pub fn plugin_config(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| format!("{} is not a JSON object", path.display()))?;
    obj.remove("tokenServerFQDN");
    obj.remove("tokenServerPort");
    obj.insert("tokenServerCluster".into(), TOKEN_CLUSTER.into());
    Ok(v.to_string())
}

/// base64url without padding (RFC 4648 §5), for the JWKS `k` of an HS256 secret.
pub fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let index = (n >> (18 - 6 * i)) & 63;
            if let Some(&c) = ALPHABET.get(index as usize) {
                out.push(char::from(c));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc4648_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(b"fooba"), "Zm9vYmE");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn tokens_of_a_kind_have_one_length() {
        let mut t = Tokens::new(0);
        let a = t.authorization(Auth::Fresh).0.unwrap_or_default();
        let b = t.authorization(Auth::Fresh).0.unwrap_or_default();
        let c = t.authorization(Auth::Cached).0.unwrap_or_default();
        let d = t.authorization(Auth::Forged).0.unwrap_or_default();
        assert_ne!(a, b);
        assert_eq!(a.len(), b.len());
        assert_eq!(a.len(), c.len());
        assert_eq!(a.len(), d.len());
        assert_eq!(IGNORED_PATH.len(), API_PATH.len());
    }
}
