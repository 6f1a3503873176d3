//! Fuzz target `config`: see `easy_jwt_fuzz_oracles::targets::config` for the input format and the
//! invariants (the same oracle replays the corpus natively in `make test`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| easy_jwt_fuzz_oracles::targets::config::check(data));
