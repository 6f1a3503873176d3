//! The caller's identity as the token server gave it: what the uid header and the mapped
//! headers carry, and what the cache keeps.

use alloc::{string::String, vec::Vec};
/// Who the token server says the caller is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Decimal uid, the uid header's value.
    pub uid: String,
    /// Values of the `authResponseHeaders` fields, in configuration order (`None`: absent).
    pub fields: Vec<Option<String>>,
}
