//! The serialized header-map format of proxy-wasm (docs/host-semantics.md §2).
//!
//! All integers are u32 little-endian: the pair count N, then N (key length, value length)
//! pairs, then for each pair the key bytes + NUL and the value bytes + NUL.

/// Largest map the host accepts from the guest (cpp-host `limits.h`).
pub const MAX_MAP_BYTES: usize = 1 << 20;
/// Largest number of pairs the host accepts from the guest (cpp-host `limits.h`).
pub const MAX_MAP_PAIRS: usize = 1024;

/// Encodes pairs; an empty list encodes to an empty byte string (returned to the guest as ptr=0).
pub fn encode<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Vec<u8> {
    if pairs.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    push_u32(&mut out, pairs.len());
    for (k, v) in pairs {
        push_u32(&mut out, k.as_ref().len());
        push_u32(&mut out, v.as_ref().len());
    }
    for (k, v) in pairs {
        out.extend_from_slice(k.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

fn push_u32(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes());
}

/// Decodes a guest-provided map. Bad input, more than 1 MiB or more than 1024 pairs silently
/// becomes an empty map, as in cpp-host (§2).
pub fn decode(data: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    if data.len() > MAX_MAP_BYTES {
        return Vec::new();
    }
    decode_checked(data).unwrap_or_default()
}

fn decode_checked(data: &[u8]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    let mut reader = Reader { data, pos: 0 };
    let count = reader.u32()? as usize;
    if count > MAX_MAP_PAIRS {
        return None;
    }
    let mut sizes = Vec::with_capacity(count);
    for _ in 0..count {
        sizes.push((reader.u32()? as usize, reader.u32()? as usize));
    }
    let mut pairs = Vec::with_capacity(count);
    for (klen, vlen) in sizes {
        let key = reader.take(klen)?.to_vec();
        reader.nul()?;
        let value = reader.take(vlen)?.to_vec();
        reader.nul()?;
        pairs.push((key, value));
    }
    Some(pairs)
}

/// Decodes a guest map into strings (invalid UTF-8 is replaced, as header values are text).
pub fn decode_strings(data: &[u8]) -> Vec<(String, String)> {
    decode(data)
        .into_iter()
        .map(|(k, v)| {
            (
                String::from_utf8_lossy(&k).into_owned(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect()
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.pos.checked_add(n)?;
        let slice = self.data.get(self.pos..end)?;
        self.pos = end;
        Some(slice)
    }

    fn u32(&mut self) -> Option<u32> {
        let bytes: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_le_bytes(bytes))
    }

    fn nul(&mut self) -> Option<()> {
        (self.take(1)? == [0]).then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let pairs = vec![(":path", "/a"), ("x", "")];
        let decoded = decode_strings(&encode(&pairs));
        assert_eq!(
            decoded,
            vec![
                (":path".to_string(), "/a".to_string()),
                ("x".into(), "".into())
            ]
        );
    }

    #[test]
    fn empty_map_encodes_to_nothing() {
        assert!(encode::<&str, &str>(&[]).is_empty());
    }

    #[test]
    fn spec_example_with_real_bytes() {
        // §2: the spec's worked example, with '1' = 0x31 and '2' = 0x32.
        let bytes = [1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0x31, 0, 0x32, 0];
        assert_eq!(decode(&bytes), vec![(b"1".to_vec(), b"2".to_vec())]);
    }

    #[test]
    fn bad_input_becomes_empty() {
        assert!(decode(&[1, 0, 0, 0]).is_empty());
        assert!(decode(&[1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0x31, 1, 0x32, 0]).is_empty());
        let mut too_many = (MAX_MAP_PAIRS as u32 + 1).to_le_bytes().to_vec();
        too_many.extend(vec![0; 8 * (MAX_MAP_PAIRS + 1)]);
        assert!(decode(&too_many).is_empty());
    }
}
