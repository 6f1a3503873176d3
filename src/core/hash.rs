//! Small hashes: FNV-1a, stable, for cache-slot selection and configuration fingerprints; FxHash
//! for in-memory maps whose keys a client cannot choose (never for security: the full token is
//! always compared); keyed SipHash for the one map a client fills with keys of its choosing.

/// FNV-1a, 64 bit, over `parts` (each part followed by a separator byte).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in *part {
            hash ^= u64::from(*byte);
            hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
        }
        hash ^= 0xff;
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// FxHash (the hash rustc uses for its own maps) as a [`::core::hash::Hasher`]: eight bytes per
/// multiply, for maps whose keys an attacker cannot choose freely (the auth cache holds only
/// tokens the token server accepted; the adapter's maps are keyed by host-assigned ids): far
/// fewer instructions per lookup than SipHash, and than FNV's multiply per byte on a 1 KB JWT.
/// Maps keyed by arbitrary client input use [`SipBuild`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Fx(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Fx {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl ::core::hash::Hasher for Fx {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buffer = [0u8; 8];
            buffer.copy_from_slice(word);
            self.mix(u64::from_le_bytes(buffer));
        }
        let rest = words.remainder();
        if !rest.is_empty() {
            let mut buffer = [0u8; 8];
            for (slot, byte) in buffer.iter_mut().zip(rest) {
                *slot = *byte;
            }
            self.mix(u64::from_le_bytes(buffer));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.mix(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.mix(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.mix(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.mix(value as u64);
    }
}

/// The `BuildHasher` of [`Fx`].
pub type FxBuild = ::core::hash::BuildHasherDefault<Fx>;

/// SipHash-1-3 under per-VM random keys, for maps keyed by what a client sends (the token-server
/// calls in flight, keyed by token): without the keys nobody can prepare tokens that collide and
/// turn the map's lookups linear (hash flooding). It is what std's `HashMap` uses by default,
/// written out here because the crate is `no_std` in the VM and core offers only the slower,
/// deprecated SipHash-2-4.
#[derive(Debug, Clone, Copy)]
pub struct SipBuild {
    keys: [u64; 2],
}

impl SipBuild {
    /// A hasher family under `keys` (random per VM: `Host::random_keys`).
    pub fn new(keys: [u64; 2]) -> SipBuild {
        SipBuild { keys }
    }
}

impl ::core::hash::BuildHasher for SipBuild {
    type Hasher = Sip13;

    fn build_hasher(&self) -> Sip13 {
        let [k0, k1] = self.keys;
        Sip13 {
            v0: k0 ^ 0x736f_6d65_7073_6575,
            v1: k1 ^ 0x646f_7261_6e64_6f6d,
            v2: k0 ^ 0x6c79_6765_6e65_7261,
            v3: k1 ^ 0x7465_6462_7974_6573,
            tail: 0,
            tail_len: 0,
            length: 0,
        }
    }
}

/// SipHash-1-3 (Aumasson and Bernstein; one compression round per word, three to finalise) over
/// the bytes written, as one stream.
#[derive(Debug, Clone)]
pub struct Sip13 {
    v0: u64,
    v1: u64,
    v2: u64,
    v3: u64,
    /// Bytes of an incomplete word, little-endian, and how many.
    tail: u64,
    tail_len: u32,
    length: u64,
}

impl Sip13 {
    fn round(&mut self) {
        self.v0 = self.v0.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(13) ^ self.v0;
        self.v0 = self.v0.rotate_left(32);
        self.v2 = self.v2.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(16) ^ self.v2;
        self.v0 = self.v0.wrapping_add(self.v3);
        self.v3 = self.v3.rotate_left(21) ^ self.v0;
        self.v2 = self.v2.wrapping_add(self.v1);
        self.v1 = self.v1.rotate_left(17) ^ self.v2;
        self.v2 = self.v2.rotate_left(32);
    }

    fn compress(&mut self, word: u64) {
        self.v3 ^= word;
        self.round();
        self.v0 ^= word;
    }

    fn push(&mut self, byte: u8) {
        self.tail |= u64::from(byte) << (8 * self.tail_len);
        self.tail_len += 1;
        if self.tail_len == 8 {
            let word = self.tail;
            self.tail = 0;
            self.tail_len = 0;
            self.compress(word);
        }
    }
}

impl ::core::hash::Hasher for Sip13 {
    #[inline(never)]
    fn write(&mut self, mut bytes: &[u8]) {
        self.length = self.length.wrapping_add(bytes.len() as u64);
        while self.tail_len != 0 {
            let Some((byte, rest)) = bytes.split_first() else {
                return;
            };
            self.push(*byte);
            bytes = rest;
        }
        let mut words = bytes.chunks_exact(8);
        for word in &mut words {
            let mut buffer = [0u8; 8];
            buffer.copy_from_slice(word);
            self.compress(u64::from_le_bytes(buffer));
        }
        for byte in words.remainder() {
            self.push(*byte);
        }
    }

    #[inline(never)]
    fn finish(&self) -> u64 {
        let mut state = self.clone();
        let last = (self.length & 0xff) << 56 | self.tail;
        state.compress(last);
        state.v2 ^= 0xff;
        state.round();
        state.round();
        state.round();
        state.v0 ^ state.v1 ^ state.v2 ^ state.v3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sip13_is_std_default_hasher_under_zero_keys() {
        use ::core::hash::{BuildHasher, Hash, Hasher};
        // std's DefaultHasher::new() is SipHash-1-3 with both keys 0.
        let ours = SipBuild::new([0, 0]);
        for text in [
            "",
            "a",
            "token",
            "exactly8",
            "nine bytes",
            &"x".repeat(1000),
        ] {
            let mut std_hasher = std::hash::DefaultHasher::new();
            text.hash(&mut std_hasher);
            assert_eq!(ours.hash_one(text), std_hasher.finish(), "{text:?}");
        }
        // Several writes are one stream, wherever they split it.
        let mut split = ours.build_hasher();
        for part in ["ab", "cdefghij", "k", "", "lmnopqrstu"] {
            split.write(part.as_bytes());
        }
        let mut whole = ours.build_hasher();
        whole.write(b"abcdefghijklmnopqrstu");
        assert_eq!(split.finish(), whole.finish());
    }

    #[test]
    fn sip_keys_change_every_hash() {
        use ::core::hash::BuildHasher;
        let a = SipBuild::new([1, 2]);
        let b = SipBuild::new([3, 4]);
        assert_eq!(a.hash_one("token"), a.hash_one("token"));
        assert_ne!(a.hash_one("token"), b.hash_one("token"));
        assert_ne!(a.hash_one("token"), a.hash_one("tokeN"));
    }
    use std::hash::{BuildHasher, Hash};

    fn fx(value: impl Hash) -> u64 {
        FxBuild::default().hash_one(value)
    }

    #[test]
    fn fx_tells_apart_keys_that_differ_in_any_byte_or_length() {
        let token = "eyJhbGciOiJIUzI1NiJ9.eyJ1aWQiOjQyfQ.c2lnbmF0dXJl";
        let base = fx(token);
        for cut in 0..token.len() {
            assert_ne!(fx(token.get(..cut).unwrap()), base, "prefix of {cut} bytes");
        }
        let mut bytes = token.as_bytes().to_vec();
        for index in 0..bytes.len() {
            bytes[index] ^= 1;
            assert_ne!(
                fx(std::str::from_utf8(&bytes).unwrap()),
                base,
                "byte {index}"
            );
            bytes[index] ^= 1;
        }
        assert_eq!(fx(token), base, "deterministic");
    }
}
