//! Fuzz target `json`: see `easy_jwt_fuzz_oracles::targets::json` for the invariants (the same
//! oracle replays the corpus natively in `make test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| easy_jwt_fuzz_oracles::targets::json::check(data));
