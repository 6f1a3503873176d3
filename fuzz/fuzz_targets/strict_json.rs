//! Fuzz target `strict_json`: see `easy_jwt_fuzz_oracles::targets::strict_json` for the invariants (the same
//! oracle replays the corpus natively in `make test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| easy_jwt_fuzz_oracles::targets::strict_json::check(data));
