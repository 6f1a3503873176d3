//! Small non-cryptographic hashes: FNV-1a, stable, for cache-slot selection and configuration
//! fingerprints; FxHash for in-memory maps (never for security: the full token is always
//! compared).

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

/// FxHash (the hash rustc uses for its own maps) as a [`std::hash::Hasher`]: eight bytes per
/// multiply, for maps whose keys an attacker cannot choose freely (the auth cache holds only
/// tokens the token server accepted; the adapter's maps are keyed by host-assigned ids): far
/// fewer instructions per lookup than SipHash, and than FNV's multiply per byte on a 1 KB JWT.
/// Maps keyed by arbitrary client input keep the standard hasher.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fx(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Fx {
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl std::hash::Hasher for Fx {
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
pub type FxBuild = std::hash::BuildHasherDefault<Fx>;

#[cfg(test)]
mod tests {
    use super::*;
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
