//! Fuzz target `token`: see `easy_jwt_fuzz_oracles::targets::token` for the input format and the
//! invariants (the same oracle replays the corpus natively in `make test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| easy_jwt_fuzz_oracles::targets::token::check(data));
