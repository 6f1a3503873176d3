//! FNV-1a: a small, stable hash for cache-slot selection and configuration fingerprints
//! (never for security: the full token is always compared).

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
