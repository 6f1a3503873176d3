//! The auth-result cache: `token → identity` after a 200 from the token server, bounded in size,
//! expiring after `cacheTtlSeconds` and never past the token's own JWT `exp`.
//!
//! Two levels: a per-VM map ([`AuthCache`], FIFO eviction at `cacheMaxEntries`) and, shared by
//! every worker VM, a fixed number of proxy-wasm shared-data slots (Envoy can never delete shared
//! data, so memory is bounded by the slot count; a collision overwrites). A slot is found by a hash
//! of the token, and its value carries the whole token, compared in full before use, so one token
//! can never read another's entry. Failures and fail-open passes are never cached.

use crate::core::identity::Identity;
use crate::core::strict;
use std::collections::{HashMap, VecDeque};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::rc::Rc;

/// Cache settings of one configuration scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSettings {
    /// Seconds an answer is reused; 0 turns the cache off.
    pub ttl_secs: u64,
    /// Entries kept per VM.
    pub max_entries: usize,
    /// Shared-data slots across VMs; 0 keeps the cache per VM.
    pub shared_slots: u32,
}

impl CacheSettings {
    pub const DEFAULT_TTL_SECS: u64 = 30;
    pub const DEFAULT_MAX_ENTRIES: usize = 10_000;
    pub const DEFAULT_SHARED_SLOTS: u32 = 1024;

    pub fn enabled(&self) -> bool {
        self.ttl_secs > 0
    }
}

impl Default for CacheSettings {
    fn default() -> Self {
        CacheSettings {
            ttl_secs: Self::DEFAULT_TTL_SECS,
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            shared_slots: Self::DEFAULT_SHARED_SLOTS,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    /// The identity in its packed text form ([`pack`]): one allocation per entry keeps a full,
    /// churning cache from fragmenting the guest heap.
    identity: Box<str>,
    expires_at: u64,
    generation: u64,
}

/// The per-VM cache. Keys are `scope` + token, so two configurations never share an entry.
/// The insertion queue shares each key with the map (`Rc<str>`), so a key is stored once.
///
/// With `forwardRequestContext` / `forwardHeaders` a key also holds the client's `:path` and
/// headers, so one valid token can insert keys of the client's choosing: the map is std's
/// `HashMap` with its default `RandomState` (SipHash under per-process random keys, seeded in
/// the VM through WASI `random_get`), which nobody can make collide without those keys.
#[derive(Debug, Default)]
pub struct AuthCache {
    entries: HashMap<Rc<str>, Entry>,
    order: VecDeque<(Rc<str>, u64)>,
    generation: u64,
    /// The bound the map was last sized for (see `reserve_for_churn`).
    reserved_for: usize,
}

impl AuthCache {
    /// A fresh identity for `key`, dropping it if expired.
    pub fn get(&mut self, key: &str, now: u64) -> Option<Identity> {
        let entry = self.entries.get(key)?;
        if entry.expires_at > now {
            return unpack(&entry.identity);
        }
        self.entries.remove(key);
        None
    }

    /// Stores an identity until `expires_at` (unix seconds), evicting the oldest entries when full.
    pub fn insert(&mut self, key: String, identity: Identity, expires_at: u64, max_entries: usize) {
        if max_entries == 0 {
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        let key: Rc<str> = match self.entries.get_key_value(key.as_str()) {
            Some((existing, _)) => Rc::clone(existing),
            None => {
                while self.entries.len() >= max_entries && self.evict_oldest() {}
                self.reserve_for_churn(max_entries);
                Rc::from(key)
            }
        };
        self.order.push_back((Rc::clone(&key), generation));
        self.entries.insert(
            key,
            Entry {
                identity: pack(&identity).into_boxed_str(),
                expires_at,
                generation,
            },
        );
        if self.order.len() > max_entries + max_entries / 4 + 16 {
            self.compact();
        }
    }

    /// Number of live (possibly expired, not yet dropped) entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Once the cache is full, sizes the map for twice its bound: std's map (a SwissTable)
    /// then always cleans up removed slots in place instead of doubling the table under
    /// insert/evict churn, so the guest memory of a full cache stays flat.
    /// Sized once per bound: `capacity()` shrinks as removed slots accumulate, and reserving
    /// again on that basis would itself double the table.
    fn reserve_for_churn(&mut self, max_entries: usize) {
        let full = self.entries.len() + 1 >= max_entries;
        if full && self.reserved_for != max_entries {
            self.reserved_for = max_entries;
            let wanted = max_entries.saturating_mul(2);
            self.entries
                .reserve(wanted.saturating_sub(self.entries.len()));
        }
    }

    fn evict_oldest(&mut self) -> bool {
        while let Some((key, generation)) = self.order.pop_front() {
            if self
                .entries
                .get(&*key)
                .is_some_and(|e| e.generation == generation)
            {
                self.entries.remove(&*key);
                return true;
            }
        }
        false
    }

    /// Drops queue records of overwritten or expired entries.
    fn compact(&mut self) {
        let entries = &self.entries;
        self.order.retain(|(key, generation)| {
            entries
                .get(&**key)
                .is_some_and(|e| e.generation == *generation)
        });
    }
}

/// When a fresh answer for `token` stops being valid: `now + ttl`, but never past the JWT `exp`.
/// `None` when the token is already expired (nothing to cache).
pub fn expiry(token: &str, now: u64, ttl_secs: u64) -> Option<u64> {
    let by_ttl = now.saturating_add(ttl_secs);
    match jwt_exp(token) {
        Some(exp) if exp <= now => None,
        Some(exp) => Some(by_ttl.min(exp)),
        None => Some(by_ttl),
    }
}

/// The `exp` claim of a JWT (RFC 7519 §4.1.4), read without verifying the signature: the token
/// server stays the authority, this only shortens how long its answer is reused.
pub fn jwt_exp(token: &str) -> Option<u64> {
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let claims = base64url_decode(payload)?;
    floor_u64(strict::object(&claims)?.get("exp")?.as_number()?)
}

/// The integer part of a non-negative JSON number (`1754386348`, `1754386348.9`,
/// `1.754386348e9`); `None` for a negative number or one beyond `u64`.
fn floor_u64(number: &serde_json::Number) -> Option<u64> {
    if let Some(integer) = number.as_u64() {
        return Some(integer);
    }
    let float = number.as_f64()?.floor();
    // 2^64 as f64 is exact; every f64 below it and >= 0 converts without saturating.
    (0.0..18_446_744_073_709_551_616.0)
        .contains(&float)
        .then_some(float as u64)
}

/// Unpadded base64url (RFC 4648 §5), as JWTs use.
fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer = 0u32;
    let mut bits = 0;
    for byte in text.trim_end_matches('=').bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    Some(out)
}

/// The shared-data key of the slot a subject (a token, or a token with its context) maps to.
///
/// Shared data is process-wide: every VM must pick the same slot for a subject, so the hash is
/// `DefaultHasher::new()` (SipHash under fixed keys: deterministic for one build of the plugin),
/// not a per-VM `RandomState`. A client can choose subjects that land on one slot; that is
/// harmless, because the key space is bounded by `cacheSharedSlots` (no memory grows) and a slot
/// holds its whole subject, compared before use (a collision only overwrites, costing a call).
pub fn shared_key(scope: &str, subject: &str, slots: u32) -> String {
    let mut hasher = DefaultHasher::new();
    (scope, subject).hash(&mut hasher);
    let slot = hasher.finish() % u64::from(slots.max(1));
    format!("easy-jwt.cache.{scope}.{slot}")
}

/// An identity as text: the uid, then each mapped field (`+value` present, `-` absent), one
/// per line. Uids and header values never contain a newline (validated before they get here).
fn pack(identity: &Identity) -> String {
    let mut out = identity.uid.clone();
    for field in &identity.fields {
        out.push('\n');
        match field {
            Some(value) => {
                out.push('+');
                out.push_str(value);
            }
            None => out.push('-'),
        }
    }
    out
}

fn unpack(text: &str) -> Option<Identity> {
    let mut lines = text.split('\n');
    let uid = lines.next()?.to_string();
    let fields = lines
        .map(|line| match line.strip_prefix('+') {
            Some(value) => Some(Some(value.to_string())),
            None => (line == "-").then_some(None),
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Identity { uid, fields })
}

/// The value stored in a shared slot: `expires_at`, the length of the subject (the token, or
/// the token with its forwarded context), then the subject and the packed identity. The length
/// prefix keeps the subject unambiguous whatever bytes it holds.
pub fn encode_shared(subject: &str, identity: &Identity, expires_at: u64) -> Vec<u8> {
    format!(
        "{expires_at}\n{}\n{subject}{}",
        subject.len(),
        pack(identity)
    )
    .into_bytes()
}

/// The identity in a shared slot, if the slot holds *this* subject and is fresh.
pub fn decode_shared(bytes: &[u8], subject: &str, now: u64) -> Option<(Identity, u64)> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (expires_at, rest) = text.split_once('\n')?;
    let (length, rest) = rest.split_once('\n')?;
    let expires_at: u64 = expires_at.parse().ok()?;
    let length: usize = length.parse().ok()?;
    let stored = rest.get(..length)?;
    let packed = rest.get(length..)?;
    if stored != subject || expires_at <= now {
        return None;
    }
    Some((unpack(packed)?, expires_at))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn id(uid: &str) -> Identity {
        Identity {
            uid: uid.into(),
            fields: vec![Some("admin".into()), None],
        }
    }

    /// An unsigned JWT with the given payload JSON.
    /// An unsigned JWT-shaped token `header.payload.sig`, the payload base64url-encoded.
    pub(crate) fn jwt(payload: &str) -> String {
        fn encode(bytes: &[u8]) -> String {
            const ALPHABET: &[u8; 64] =
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
            let mut out = String::new();
            for chunk in bytes.chunks(3) {
                let n = chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b))
                    << (8 * (3 - chunk.len()));
                for i in 0..=chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                }
            }
            out
        }
        format!(
            "{}.{}.sig",
            encode(br#"{"alg":"HS256"}"#),
            encode(payload.as_bytes())
        )
    }

    #[test]
    fn hit_miss_and_ttl_expiry() {
        let mut cache = AuthCache::default();
        assert_eq!(cache.get("a", 100), None);
        cache.insert("a".into(), id("1"), 130, 10);
        assert_eq!(cache.get("a", 129), Some(id("1")));
        assert_eq!(cache.get("a", 130), None);
        assert!(cache.is_empty());
    }

    #[test]
    fn eviction_is_oldest_first_and_bounded() {
        let mut cache = AuthCache::default();
        for n in 0..5 {
            cache.insert(format!("k{n}"), id(&n.to_string()), 1000, 3);
        }
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("k0", 0), None);
        assert_eq!(cache.get("k1", 0), None);
        assert_eq!(cache.get("k4", 0), Some(id("4")));
        // Overwriting an entry does not evict another one.
        cache.insert("k4".into(), id("44"), 1000, 3);
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("k2", 0), Some(id("2")));
        for round in 0..100 {
            cache.insert("k4".into(), id("x"), 1000 + round, 3);
        }
        assert!(
            cache.order.len() <= 3 + 16 + 1,
            "stale queue records are compacted"
        );
    }

    #[test]
    fn zero_capacity_stores_nothing() {
        let mut cache = AuthCache::default();
        cache.insert("a".into(), id("1"), 10, 0);
        assert!(cache.is_empty());
    }

    #[test]
    fn jwt_exp_is_read_without_verification() {
        assert_eq!(
            jwt_exp(&jwt(r#"{"UID":1,"exp":1754386348}"#)),
            Some(1754386348)
        );
        assert_eq!(jwt_exp(&jwt(r#"{"UID":1}"#)), None);
        assert_eq!(jwt_exp(&jwt(r#"{"exp":"soon"}"#)), None);
        assert_eq!(jwt_exp(&jwt(r#"{"exp":-5}"#)), None);
        assert_eq!(jwt_exp(&jwt(r#"{"exp":1754386348.9}"#)), Some(1754386348));
        assert_eq!(jwt_exp(&jwt(r#"{"exp":1e400}"#)), None);
        assert_eq!(jwt_exp(&jwt(r#"{"exp":1.754386348e9}"#)), Some(1754386348));
        assert_eq!(
            jwt_exp(&jwt(r#"{"exp":18446744073709551615}"#)),
            Some(u64::MAX)
        );
        assert_eq!(
            jwt_exp(&jwt(r#"{"exp":1e19}"#)),
            Some(10_000_000_000_000_000_000)
        );
        assert_eq!(jwt_exp(&jwt(r#"{"exp":1e20}"#)), None);
        assert_eq!(jwt_exp(&jwt(r#"{"exp":-0.5}"#)), None);
        // Ambiguous claims are not read.
        assert_eq!(jwt_exp(&jwt(r#"{"exp":1,"exp":2}"#)), None);
        assert_eq!(jwt_exp("opaque-token"), None);
        assert_eq!(jwt_exp("a.b!.c"), None);
        assert_eq!(jwt_exp("a.b.c.d"), None);
    }

    #[test]
    fn expiry_never_passes_exp() {
        let token = jwt(r#"{"exp":1010}"#);
        assert_eq!(expiry(&token, 1000, 30), Some(1010));
        assert_eq!(expiry(&token, 1000, 5), Some(1005));
        assert_eq!(expiry(&token, 1010, 30), None);
        assert_eq!(expiry("opaque", 1000, 30), Some(1030));
    }

    #[test]
    fn shared_slots_compare_the_whole_token() {
        let bytes = encode_shared("tok-a", &id("7"), 2000);
        assert_eq!(decode_shared(&bytes, "tok-a", 1000), Some((id("7"), 2000)));
        assert_eq!(decode_shared(&bytes, "tok-b", 1000), None);
        assert_eq!(decode_shared(&bytes, "tok-a", 2000), None);
        assert_eq!(decode_shared(b"garbage", "tok-a", 0), None);
        assert_eq!(decode_shared(b"5\ntok-a\n1\n?", "tok-a", 0), None);
        // A subject is compared whole, whatever it holds: no prefix or newline trick matches.
        let tricky = encode_shared("x\n1", &id("7"), 2000);
        assert_eq!(decode_shared(&tricky, "x", 1000), None);
        assert_eq!(decode_shared(&tricky, "x\n1", 1000), Some((id("7"), 2000)));
        let bare = Identity {
            uid: "3".into(),
            fields: vec![],
        };
        assert_eq!(
            decode_shared(&encode_shared("t", &bare, 9), "t", 1),
            Some((bare, 9))
        );
    }

    #[test]
    fn shared_keys_are_bounded_by_slots() {
        let keys: std::collections::HashSet<_> = (0..1000)
            .map(|n| shared_key("s", &format!("t{n}"), 8))
            .collect();
        assert!(keys.len() <= 8);
        assert_ne!(
            shared_key("s1", "t", 1 << 20),
            shared_key("s2", "t", 1 << 20)
        );
    }
}
