//! Byte-string helpers: equality eight bytes at a time (the hot path compares header names and
//! tokens of a few dozen bytes, where the wasm build's `memcmp` is a byte loop behind a call),
//! substring search and hex digits, without core's general string searcher (two-way search and
//! its panic formatting, about 6 KB of the artifact for the few fixed needles the plugin has).

/// The first position of `needle` in `haystack` (a plain scan: needles here are 2–3 bytes).
pub fn find(haystack: &str, needle: &str) -> Option<usize> {
    let (haystack, needle) = (haystack.as_bytes(), needle.as_bytes());
    if needle.is_empty() {
        return Some(0);
    }
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// The value of one hex digit.
pub fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Whether `a` and `b` hold the same bytes.
#[inline]
pub fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut left = a.chunks_exact(8);
    let mut right = b.chunks_exact(8);
    for (x, y) in (&mut left).zip(&mut right) {
        if word(x) != word(y) {
            return false;
        }
    }
    let (x, y) = (left.remainder(), right.remainder());
    let mut tail = (0u64, 0u64);
    for (i, (p, q)) in x.iter().zip(y).enumerate() {
        tail.0 |= u64::from(*p) << (8 * i);
        tail.1 |= u64::from(*q) << (8 * i);
    }
    tail.0 == tail.1
}

/// Eight bytes as a little-endian word.
fn word(bytes: &[u8]) -> u64 {
    let mut buffer = [0u8; 8];
    buffer.copy_from_slice(bytes);
    u64::from_le_bytes(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_agrees_with_str_find() {
        for (haystack, needle) in [
            ("a%3Bb", "%3B"),
            ("%3B", "%3B"),
            ("%3", "%3B"),
            ("x%s%s", "%s"),
            ("", "%s"),
            ("abc", ""),
            ("ééé%sé", "%s"),
        ] {
            assert_eq!(
                find(haystack, needle),
                haystack.find(needle),
                "{haystack} {needle}"
            );
        }
    }

    #[test]
    fn same_agrees_with_slice_equality() {
        let base = b"authorization: Bearer eyJhbGciOiJIUzI1NiJ9.x".to_vec();
        for len in 0..base.len() {
            let a = &base[..len];
            assert!(same(a, a));
            for i in 0..len {
                let mut b = a.to_vec();
                b[i] ^= 0x20;
                assert_eq!(same(a, &b), a == b.as_slice(), "len {len} byte {i}");
            }
            assert!(!same(a, &base[..(len + 1).min(base.len())]) || len == base.len());
        }
    }
}
